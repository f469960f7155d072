-- Every recording group updates the counters it touches in place. An update is HOT (no new
-- index entry, and the unique check that `on conflict` makes follows a short chain) only if
-- the row's page has room for the new version; full pages made nearly every counter update
-- write a new entry into the primary key, whose dead entries later unique checks then had to
-- visit. Half-full pages leave room for one new version of each row until the page is pruned.
-- Pages already full get room as their rows move, or at the next `vacuum full`.
alter table usage_counters set (fillfactor = 50);
