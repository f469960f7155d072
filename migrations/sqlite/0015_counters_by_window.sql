-- Counters keyed window first. A window's counters are written together (by every customer
-- recording in it) and past windows are never written again, so a limit's current counters now
-- sit side by side in a few pages, instead of one page per customer among that customer's past
-- windows: a group of records writes those few pages. The index by customer serves the reads
-- that walk one customer's windows (rolling buckets, pruning); updating a counter's value
-- leaves it untouched.
create table usage_counters_by_window (
    limit_id text not null references limits(id),
    customer_id text not null,
    window_start bigint not null,
    value bigint not null,
    latest_at bigint not null,
    version integer not null default 1,
    primary key (limit_id, window_start, customer_id)
) without rowid;
insert into usage_counters_by_window (limit_id, customer_id, window_start, value, latest_at, version)
select limit_id, customer_id, window_start, value, latest_at, version from usage_counters;
drop table usage_counters;
alter table usage_counters_by_window rename to usage_counters;
create index usage_counters_by_customer on usage_counters (limit_id, customer_id, window_start);
drop index events_by_customer_time;
