-- A rotated webhook secret keeps signing beside the new one until its grace period ends, and
-- operators' changes are written to an audit log (who did what, when), newest first by id.
alter table webhook_endpoints add column previous_secret text;
alter table webhook_endpoints add column previous_secret_expires_at bigint;

create table audit_log (
    id text primary key,
    project_id text not null,
    created_at bigint not null,
    actor text not null,
    kind text not null,
    action text not null,
    subject_id text not null,
    summary text not null
);
create index audit_log_by_project on audit_log (project_id, id);
create index audit_log_by_kind on audit_log (project_id, kind, id);
