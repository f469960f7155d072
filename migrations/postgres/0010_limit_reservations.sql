-- Reservations on limits: capacity held for a customer against the limits governing a check,
-- until committed with the actual usage, released, or expired. Each hold counts as used by
-- every other check and consume while it lasts; `entries` is the reservation's audit trail.
create table limit_reservations (
    id text primary key,
    project_id text not null references projects(id),
    customer_id text not null references customers(id),
    requested bigint not null,
    dimensions text not null,
    -- The limits it held capacity on (a JSON array), kept after its holds are gone.
    limit_ids text not null,
    status text not null,
    -- The balance holds (`res_…` ids, a JSON array) that one commit or release settles too.
    balance_reservations text not null,
    event_id text,
    expires_at bigint not null,
    created_at bigint not null,
    settled_at bigint
);
create index limit_reservations_due on limit_reservations (status, expires_at);
create index limit_reservations_by_customer on limit_reservations (customer_id, status);

-- What one reservation holds on one limit; rows exist only while the reservation is held.
create table limit_holds (
    reservation_id text not null references limit_reservations(id),
    limit_id text not null,
    customer_id text not null,
    amount bigint not null,
    expires_at bigint not null,
    primary key (reservation_id, limit_id)
);
create index limit_holds_by_customer on limit_holds (customer_id, limit_id);

create table limit_reservation_entries (
    id text primary key,
    reservation_id text not null references limit_reservations(id),
    kind text not null,
    expires_at bigint,
    event_id text,
    created_at bigint not null
);
create index limit_reservation_entries_by_reservation on limit_reservation_entries (reservation_id, id);
