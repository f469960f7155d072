-- Tenants, keys, customers, meters, limits, raw events and pre-aggregated window counters.
create table projects (
    id text primary key,
    name text not null,
    timezone text not null default 'UTC',
    created_at bigint not null
);

create table api_keys (
    id text primary key,
    project_id text not null references projects(id),
    name text not null,
    key_hash text not null unique,
    key_prefix text not null,
    created_at bigint not null,
    last_used_at bigint,
    revoked_at bigint
);

create table customers (
    id text primary key,
    project_id text not null references projects(id),
    external_id text not null,
    name text,
    email text,
    metadata text not null default '{}',
    timezone text,
    billing_cycle_start text,
    created_at bigint not null,
    updated_at bigint not null,
    unique (project_id, external_id)
);

create table meters (
    id text primary key,
    project_id text not null references projects(id),
    name text not null,
    description text,
    aggregation text not null,
    field text not null,
    event_filter text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index meters_by_project on meters (project_id);

create table limits (
    id text primary key,
    project_id text not null references projects(id),
    name text not null,
    meter_id text not null references meters(id),
    limit_value bigint not null,
    period text not null,
    customer_id text references customers(id),
    dimension_filters text not null,
    alert_thresholds text not null,
    fail_mode text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index limits_by_project on limits (project_id);

create table events (
    id text primary key,
    project_id text not null references projects(id),
    customer_id text not null references customers(id),
    event_type text not null,
    occurred_at bigint not null,
    metric_values text not null,
    dimensions text not null,
    properties text not null,
    idempotency_key text,
    created_at bigint not null,
    unique (project_id, idempotency_key)
);
create index events_by_project_time on events (project_id, occurred_at, id);
create index events_by_customer_time on events (customer_id, occurred_at);

-- One row per limit, customer and window: the check path reads only these.
create table usage_counters (
    limit_id text not null references limits(id),
    customer_id text not null,
    window_start bigint not null,
    value bigint not null,
    latest_at bigint not null,
    primary key (limit_id, customer_id, window_start)
);
