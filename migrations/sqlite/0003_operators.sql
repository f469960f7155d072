-- Dashboard operators, their sessions, failed-login tracking and service-wide settings.
create table operators (
    id text primary key,
    email text not null unique,
    password_hash text not null,
    created_at bigint not null
);

create table operator_sessions (
    id_hash text primary key,
    operator_id text not null references operators(id),
    csrf_token text not null,
    flash text,
    created_at bigint not null,
    expires_at bigint not null
);
create index operator_sessions_by_operator on operator_sessions (operator_id);

create table login_failures (
    email text primary key,
    failures bigint not null,
    last_failure_at bigint not null
);

create table settings (
    name text primary key,
    value text not null
);
