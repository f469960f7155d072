-- Groups of records committed from memory store their events and leave their counters in
-- memory, saved together a little later (see `UnsavedCounters`). While some are unsaved, this
-- table holds one row: the rowid of the first event whose counters are in memory only. Saving
-- deletes it; after a crash, the counters of the events from it on are counted again.
create table unsaved_counters_since (events_rowid integer not null);
