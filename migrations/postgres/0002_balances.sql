-- Prepaid balances, their append-only ledger, holds, and stored answers for idempotent retries.
create table balances (
    id text primary key,
    project_id text not null references projects(id),
    customer_id text not null references customers(id),
    name text not null,
    unit text not null,
    current_balance bigint not null,
    minimum_balance bigint not null,
    held_balance bigint not null,
    low_balance_threshold bigint,
    created_at bigint not null,
    updated_at bigint not null,
    unique (customer_id, name)
);

create table balance_transactions (
    id text primary key,
    balance_id text not null references balances(id),
    kind text not null,
    amount bigint not null,
    hold_change bigint not null,
    description text,
    reference text,
    balance_after bigint not null,
    held_after bigint not null,
    reservation_id text,
    created_at bigint not null
);
create index balance_transactions_by_balance on balance_transactions (balance_id, id);

create table reservations (
    id text primary key,
    balance_id text not null references balances(id),
    amount bigint not null,
    status text not null,
    committed_amount bigint,
    description text,
    reference text,
    expires_at bigint not null,
    created_at bigint not null,
    settled_at bigint
);
create index reservations_due on reservations (status, expires_at);
create index reservations_by_balance on reservations (balance_id, status);

create table idempotency_keys (
    project_id text not null,
    idempotency_key text not null,
    fingerprint text not null,
    status_code bigint not null,
    response text not null,
    created_at bigint not null,
    primary key (project_id, idempotency_key)
);
