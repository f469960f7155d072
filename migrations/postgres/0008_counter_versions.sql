-- Every change to a window counter moves its version, so instances that hold counters in
-- memory keep the newest state whatever order they hear of changes in.
alter table usage_counters add column version bigint not null default 1;
