-- Every change to a window counter moves its version, so what is held in memory keeps the
-- newest state whatever order it hears of changes in.
alter table usage_counters add column version integer not null default 1;
