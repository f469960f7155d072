-- Fewer index writes per recorded event, the cost that bounds batched recording:
-- * the primary key (project_id, occurred_at, id) is the index the events list, the exports and
--   the activity counts read, so no separate index on id alone is kept;
-- * the idempotency index holds only events that carry a key (most carry none);
-- * no foreign keys: the recording transaction ensures the customer in the same transaction, and
--   deleting a customer deletes its events first, under the lock recorders take.
-- SQLite cannot drop constraints, so the table is rebuilt.
create table events_rebuilt (
    id text not null,
    project_id text not null,
    customer_id text not null,
    event_type text not null,
    occurred_at bigint not null,
    metric_values text not null,
    dimensions text not null,
    properties text not null,
    idempotency_key text,
    created_at bigint not null,
    primary key (project_id, occurred_at, id)
);
insert into events_rebuilt
    (id, project_id, customer_id, event_type, occurred_at, metric_values, dimensions, properties,
     idempotency_key, created_at)
select id, project_id, customer_id, event_type, occurred_at, metric_values, dimensions, properties,
       idempotency_key, created_at
from events;
drop table events;
alter table events_rebuilt rename to events;
create index events_by_customer_time on events (customer_id, occurred_at);
create unique index events_by_idempotency_key on events (project_id, idempotency_key)
    where idempotency_key is not null;
