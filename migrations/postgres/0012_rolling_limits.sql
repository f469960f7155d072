-- Rolling limits count a sliding window (the last hour, 24 hours, 30 days…) instead of calendar
-- windows; their counters hold one bucket each (window_start is the bucket's start).
alter table limits add column rolling boolean not null default false;
