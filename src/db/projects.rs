//! Projects (tenants) and the service-wide counts shown on the status page.

use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::{with_store, Db, DbResult, Store};
use crate::domain::ids::new_id;
use crate::domain::projects::NewProject;

/// The project every fresh installation starts with.
pub const DEFAULT_PROJECT_ID: &str = "proj_default";

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "UTC")]
    pub timezone: Tz,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    timezone: String,
}

impl From<ProjectRow> for Project {
    fn from(row: ProjectRow) -> Self {
        Project { id: row.id, name: row.name, timezone: row.timezone.parse().unwrap_or(Tz::UTC) }
    }
}

/// Row counts for the status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub customers: i64,
    pub events: i64,
    pub meters: i64,
    pub limits: i64,
}

const INSERT_DEFAULT_PROJECT: &str = "insert into projects (id, name, timezone, created_at) \
     values ($1, 'Default project', 'UTC', $2) on conflict (id) do nothing";
const INSERT_PROJECT: &str = "insert into projects (id, name, timezone, created_at) values ($1, $2, $3, $4)";
const SELECT_PROJECTS: &str = "select id, name, timezone from projects order by id";
const SELECT_PROJECT: &str = "select id, name, timezone from projects where id = $1";
const COUNT_ROWS: &str = "select \
     (select count(*) from customers) as customers, \
     (select count(*) from events) as events, \
     (select count(*) from meters) as meters, \
     (select count(*) from limits) as limits";
const COUNT_PROJECT_ROWS: &str = "select \
     (select count(*) from customers where project_id = $1) as customers, \
     (select count(*) from events where project_id = $1) as events, \
     (select count(*) from meters where project_id = $1) as meters, \
     (select count(*) from limits where project_id = $1) as limits";

impl Db {
    pub async fn ensure_default_project(&self, now_ms: i64) -> DbResult<()> {
        with_store!(self, s => sqlx::query(INSERT_DEFAULT_PROJECT)
            .bind(DEFAULT_PROJECT_ID)
            .bind(now_ms)
            .execute(s.pool())
            .await.map(|_| ()))?;
        Ok(())
    }

    /// Stores a checked new project (see `NewProject::parse`, the one way to make one).
    pub async fn create_project(&self, new: &NewProject, now_ms: i64) -> DbResult<Project> {
        let project = Project { id: new_id("proj", now_ms), name: new.name().to_string(), timezone: new.timezone() };
        with_store!(self, s => sqlx::query(INSERT_PROJECT)
            .bind(&project.id)
            .bind(&project.name)
            .bind(project.timezone.name())
            .bind(now_ms)
            .execute(s.pool())
            .await
            .map(|_| ()))?;
        Ok(project)
    }

    pub async fn projects(&self) -> DbResult<Vec<Project>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, ProjectRow>(SELECT_PROJECTS).fetch_all(s.pool()).await)?;
        Ok(rows.into_iter().map(Project::from).collect())
    }

    pub async fn project(&self, id: &str) -> DbResult<Option<Project>> {
        let row = with_store!(self, s => sqlx::query_as::<_, ProjectRow>(SELECT_PROJECT)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(Project::from))
    }

    pub async fn counts(&self) -> DbResult<Counts> {
        let (customers, events, meters, limits) = with_store!(self, s =>
            sqlx::query_as::<_, (i64, i64, i64, i64)>(COUNT_ROWS).fetch_one(s.pool()).await)?;
        Ok(Counts { customers, events, meters, limits })
    }

    /// The same counts within one project.
    pub async fn project_counts(&self, project_id: &str) -> DbResult<Counts> {
        let (customers, events, meters, limits) = with_store!(self, s =>
            sqlx::query_as::<_, (i64, i64, i64, i64)>(COUNT_PROJECT_ROWS).bind(project_id).fetch_one(s.pool()).await)?;
        Ok(Counts { customers, events, meters, limits })
    }
}
