-- Dashboard sessions move to tower-sessions: its SQLx store keeps one row per session, laid
-- out as `PostgresStore::migrate` of tower-sessions-sqlx-store 0.15 would create it (in our
-- own schema rather than its `tower_sessions` one). Sessions of the earlier table end here;
-- operators sign in once more.
drop table operator_sessions;

create table dashboard_sessions (
    id text primary key not null,
    data bytea not null,
    expiry_date timestamptz not null
);
