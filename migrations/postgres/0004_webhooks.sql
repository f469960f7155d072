-- Webhook endpoints, the durable outbox (events and one delivery per endpoint), every delivery
-- attempt, and what alerts already fired so each fires once.
create table webhook_endpoints (
    id text primary key,
    project_id text not null references projects(id),
    url text not null,
    description text,
    event_types text not null,
    enabled bigint not null,
    secret text not null,
    summary_frequency text,
    failing_since bigint,
    disabled_reason text,
    created_at bigint not null,
    updated_at bigint not null
);
create index webhook_endpoints_by_project on webhook_endpoints (project_id);

create table webhook_events (
    id text primary key,
    project_id text not null references projects(id),
    event_type text not null,
    payload text not null,
    created_at bigint not null
);

create table webhook_deliveries (
    id text primary key,
    event_id text not null references webhook_events(id),
    endpoint_id text not null references webhook_endpoints(id),
    status text not null,
    attempts bigint not null,
    next_attempt_at bigint not null,
    last_attempt_at bigint,
    last_status_code bigint,
    created_at bigint not null
);
create index webhook_deliveries_due on webhook_deliveries (status, next_attempt_at);
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, id);

create table webhook_attempts (
    id text primary key,
    delivery_id text not null references webhook_deliveries(id),
    attempted_at bigint not null,
    status_code bigint,
    error text,
    duration_ms bigint not null,
    response_body text
);
create index webhook_attempts_by_delivery on webhook_attempts (delivery_id, id);

create table alerts_fired (
    limit_id text not null,
    customer_id text not null,
    window_start bigint not null,
    threshold bigint not null,
    fired_at bigint not null,
    primary key (limit_id, customer_id, window_start, threshold)
);

create table usage_summaries_sent (
    endpoint_id text not null,
    period_start bigint not null,
    primary key (endpoint_id, period_start)
);

alter table balances add column low_balance_alerted bigint not null default 0;
