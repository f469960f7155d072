-- Login throttling keyed by an email at a client address and by the address alone (so nobody
-- can lock an operator out from elsewhere), with an expiry so abandoned rows are removed.
drop table login_failures;

create table login_throttle (
    key text primary key,
    failures bigint not null,
    last_failure_at bigint not null,
    expires_at bigint not null
);
create index login_throttle_by_expiry on login_throttle (expires_at);
