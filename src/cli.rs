//! Command-line administration: API keys, run against the same database as the service.

use crate::auth::keys::create_key;
use crate::auth::operators::create_operator;
use crate::clock::{Clock, SystemClock};
use crate::config::{AdminCommand, DatabaseArgs, KeysCommand, ProjectsCommand};
use crate::db::projects::DEFAULT_PROJECT_ID;
use crate::db::rate_limits::KeyRateLimits;
use crate::db::Db;
use crate::domain::audit::{Actor, AuditChange, AuditKind};
use crate::domain::projects::NewProject;
use crate::domain::FieldError;

async fn connect(database: &DatabaseArgs, now_ms: i64) -> anyhow::Result<Db> {
    let db = Db::connect(&database.url()).await?;
    db.ensure_default_project(now_ms).await?;
    Ok(db)
}

/// Runs a `projects` subcommand. `create` prints only the new id on stdout.
pub async fn projects(command: ProjectsCommand, database: &DatabaseArgs) -> anyhow::Result<()> {
    let now_ms = SystemClock.now().timestamp_millis();
    let db = connect(database, now_ms).await?;
    match command {
        ProjectsCommand::Create { name, timezone } => {
            // The same checks as the dashboard's "New project" form.
            let new = NewProject::parse(&name, &timezone).map_err(|err| match err {
                FieldError::Missing { field } => anyhow::anyhow!("--{field} must not be empty"),
                FieldError::Invalid { field, message } => anyhow::anyhow!("--{field} {message}"),
            })?;
            let project = db.create_project(&new, now_ms).await?;
            println!("{}", project.id);
        }
        ProjectsCommand::List => {
            for project in db.projects().await? {
                println!("{}\t{}\t{}", project.id, project.name, project.timezone);
            }
        }
    }
    db.close().await;
    Ok(())
}

/// Runs a `keys` subcommand. The new secret is the only line written to stdout.
pub async fn keys(command: KeysCommand, database: &DatabaseArgs) -> anyhow::Result<()> {
    let now_ms = SystemClock.now().timestamp_millis();
    let db = connect(database, now_ms).await?;
    match command {
        KeysCommand::Create { name, project, rate_limit_per_minute, rate_limit_per_day } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty() && name.len() <= 128, "--name must be 1 to 128 characters");
            let limits = KeyRateLimits {
                per_minute: rate_limit_per_minute.map(i64::try_from).transpose()?,
                per_day: rate_limit_per_day.map(i64::try_from).transpose()?,
            };
            let project = project.as_deref().unwrap_or(DEFAULT_PROJECT_ID);
            let key = create_key(&db, project, name, now_ms).await?;
            if limits != KeyRateLimits::default() {
                db.set_key_rate_limits(project, &key.id, limits).await?;
            }
            let change = AuditChange::new(AuditKind::ApiKey, "created", &key.id, format!("API key {name} created"));
            db.insert_audit(project, &Actor::CommandLine.label(), &change, SystemClock.now()).await?;
            eprintln!(
                "Created API key {} ({name}) for project {project}. Store it now: it is not shown again.",
                key.id
            );
            println!("{}", key.secret);
        }
        KeysCommand::List => {
            let mut limits = std::collections::HashMap::new();
            for project in db.projects().await? {
                limits.extend(db.project_key_rate_limits(&project.id).await?);
            }
            for key in db.keys(None).await? {
                let status = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_string(),
                };
                let last_used = key.last_used_at.map_or("never".to_string(), |at| at.to_rfc3339());
                let own = limits.get(&key.id).copied().unwrap_or_default();
                let rate = format!("{}/min, {}/day", rate_text(own.per_minute), rate_text(own.per_day));
                println!(
                    "{}\t{}\t{}…\t{}\tlast used {}\t{}",
                    key.id, key.name, key.key_prefix, status, last_used, rate
                );
            }
        }
        KeysCommand::Revoke { id } => {
            db.revoke_key(None, &id, now_ms).await?;
            if let Some(key) = db.keys(None).await?.into_iter().find(|k| k.id == id) {
                let summary = format!("API key {} revoked", key.name);
                let change = AuditChange::new(AuditKind::ApiKey, "revoked", &id, summary);
                db.insert_audit(&key.project_id, &Actor::CommandLine.label(), &change, SystemClock.now()).await?;
            }
            eprintln!("Revoked {id}.");
        }
    }
    db.close().await;
    Ok(())
}

/// Runs an `admin` subcommand.
pub async fn admin(command: AdminCommand, database: &DatabaseArgs) -> anyhow::Result<()> {
    let now_ms = SystemClock.now().timestamp_millis();
    let db = connect(database, now_ms).await?;
    match command {
        AdminCommand::Create { email, password } => {
            let email = create_operator(&db, &email, &password, now_ms).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("Created operator {email}.");
        }
    }
    db.close().await;
    Ok(())
}

/// A key's own rate limit as the command line shows it.
fn rate_text(limit: Option<i64>) -> String {
    match limit {
        None => "default".to_string(),
        Some(0) => "unlimited".to_string(),
        Some(n) => n.to_string(),
    }
}
