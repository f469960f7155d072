-- Events kept in their primary key's B-tree: a group of records writes one B-tree's pages
-- instead of the rowid table's and its primary-key index's.
-- Without a rowid the events have no insertion order, which marked the events whose counters are
-- in memory only (see `UnsavedCounters`). Such events now carry the mark of the unsaved
-- counters they fed, and the table that stands for those counters holds that mark while they
-- are unsaved. A mark is drawn at random for each run of unsaved counters, so events marked in
-- an earlier run, whose counters were saved since, never match a later one.
create table events_without_rowid (
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
    unsaved_counters_mark integer,
    primary key (project_id, occurred_at, id)
) without rowid;
create table unsaved_counters (mark integer not null);
-- Counters unsaved at the last stop stay to be counted again: their events take mark 0.
insert into events_without_rowid
    (id, project_id, customer_id, event_type, occurred_at, metric_values, dimensions, properties,
     idempotency_key, created_at, unsaved_counters_mark)
select id, project_id, customer_id, event_type, occurred_at, metric_values, dimensions, properties,
       idempotency_key, created_at,
       case when rowid >= (select min(events_rowid) from unsaved_counters_since) then 0 end
from events;
insert into unsaved_counters (mark) select 0 from unsaved_counters_since limit 1;
drop table unsaved_counters_since;
drop table events;
alter table events_without_rowid rename to events;
create unique index events_by_idempotency_key on events (project_id, idempotency_key)
    where idempotency_key is not null;
