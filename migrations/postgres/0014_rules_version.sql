-- Every change to a project's limits, meters or customers moves its rules version, in the
-- changing transaction, under the project's exclusive lock. A recording transaction reads it
-- under the shared lock: when it equals the version of the rules an instance holds in memory,
-- nothing of them has changed since, whatever the instance's listener has heard so far, and
-- the transaction need not read them again.
alter table projects add column rules_version bigint not null default 0;
