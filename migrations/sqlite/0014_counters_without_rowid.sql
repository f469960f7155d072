-- Window counters are only ever found by their key, so they are stored in the key's own
-- B-tree: a counter update then changes one page instead of two (the table's and its key
-- index's), which halves the pages a recording transaction writes to the WAL for its counters.
-- (PostgreSQL keeps its heap and index: it has no such table kind.)
create table usage_counters_by_key (
    limit_id text not null references limits(id),
    customer_id text not null,
    window_start bigint not null,
    value bigint not null,
    latest_at bigint not null,
    version integer not null default 1,
    primary key (limit_id, customer_id, window_start)
) without rowid;
insert into usage_counters_by_key (limit_id, customer_id, window_start, value, latest_at, version)
select limit_id, customer_id, window_start, value, latest_at, version from usage_counters;
drop table usage_counters;
alter table usage_counters_by_key rename to usage_counters;
