-- Balances keep the dimension filters they were created with (as limits do: a JSON object of
-- strings), and operators hold personal access tokens (stored only as a hash) that reach every
-- project, choosing one per request with the X-Project header.
alter table balances add column dimension_filters text not null default '{}';

create table personal_access_tokens (
    id text primary key,
    operator_id text not null references operators(id),
    name text not null,
    token_hash text not null unique,
    token_prefix text not null,
    created_at bigint not null,
    last_used_at bigint,
    revoked_at bigint
);
create index personal_access_tokens_by_operator on personal_access_tokens (operator_id);
