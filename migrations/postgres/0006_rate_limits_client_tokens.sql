-- Per-key API rate limits (null: the configured default; 0: no limit for this key), their
-- shared window counters, and client tokens for browsers (stored only as a hash).
alter table api_keys add column rate_limit_per_minute bigint;
alter table api_keys add column rate_limit_per_day bigint;

-- One row per key and fixed window; every instance adds its local count in batches.
create table api_rate_counters (
    key_id text not null,
    window_seconds bigint not null,
    window_start bigint not null,
    count bigint not null,
    primary key (key_id, window_seconds, window_start)
);
create index api_rate_counters_by_start on api_rate_counters (window_start);

create table client_tokens (
    id text primary key,
    project_id text not null references projects(id),
    customer_ref text not null,
    token_hash text not null unique,
    context text not null,
    server_context text not null,
    created_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint
);
create index client_tokens_by_expiry on client_tokens (expires_at);
