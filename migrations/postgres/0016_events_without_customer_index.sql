-- Events keep no index by customer on PostgreSQL either (SQLite dropped it in its migration
-- 0015). It took one entry per event on a page among that customer's events, a random place
-- in the index: about a third of what inserting a group's events cost the server, and of
-- their log. Nothing on the hot path reads it: listing and exporting events read the
-- project's events by time (a customer filter is applied as they are read), rebuilding
-- counters reads the project's events in the windows once, and deleting a customer reads its
-- project's events.
drop index if exists events_by_customer_time;
