-- Fewer index writes per recorded event, the cost that bounds batched recording:
-- * the primary key (project_id, occurred_at, id) is the index the events list, the exports and
--   the activity counts read, so no separate index on id alone is kept;
-- * the idempotency index holds only events that carry a key (most carry none);
-- * no foreign keys: the recording transaction ensures the customer in the same transaction, and
--   deleting a customer deletes its events first, under the lock recorders take.
alter table events drop constraint events_project_id_fkey;
alter table events drop constraint events_customer_id_fkey;
alter table events drop constraint events_project_id_idempotency_key_key;
create unique index events_by_idempotency_key on events (project_id, idempotency_key)
    where idempotency_key is not null;
alter table events drop constraint events_pkey;
drop index events_by_project_time;
alter table events add primary key (project_id, occurred_at, id);
