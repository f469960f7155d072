//! Meters: CRUD. A meter in use by a limit cannot be deleted.

use chrono::{DateTime, Utc};

use super::{ms_to_time, with_store, Db, DbError, DbResult, Store};
use crate::domain::meters::{Aggregation, EventFilter, Meter};

#[derive(sqlx::FromRow)]
pub(crate) struct MeterRow {
    id: String,
    project_id: String,
    name: String,
    description: Option<String>,
    aggregation: String,
    field: String,
    event_filter: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<MeterRow> for Meter {
    type Error = DbError;
    fn try_from(row: MeterRow) -> DbResult<Meter> {
        Ok(Meter {
            aggregation: Aggregation::parse(&row.aggregation)
                .ok_or_else(|| DbError::Corrupt(format!("aggregation {}", row.aggregation)))?,
            event_filter: serde_json::from_str::<EventFilter>(&row.event_filter)?,
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            description: row.description,
            field: row.field,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
        })
    }
}

macro_rules! meter_columns {
    () => {
        "id, project_id, name, description, aggregation, field, event_filter, created_at, updated_at"
    };
}

const SELECT_METER: &str = concat!("select ", meter_columns!(), " from meters where project_id = $1 and id = $2");
const SELECT_METERS_PAGE: &str =
    concat!("select ", meter_columns!(), " from meters where project_id = $1 and id > $2 order by id limit $3");
pub(crate) const SELECT_ALL_METERS: &str =
    concat!("select ", meter_columns!(), " from meters where project_id = $1 order by id");
const INSERT_METER: &str = "insert into meters \
     (id, project_id, name, description, aggregation, field, event_filter, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
const UPDATE_METER: &str = "update meters set name = $3, description = $4, aggregation = $5, field = $6, \
     event_filter = $7, updated_at = $8 where project_id = $1 and id = $2";
const COUNT_METER_LIMITS: &str = "select count(*) from limits where meter_id = $1";
const DELETE_METER: &str = "delete from meters where project_id = $1 and id = $2";

impl Db {
    pub async fn meter(&self, project_id: &str, id: &str) -> DbResult<Option<Meter>> {
        let row = with_store!(self, s => sqlx::query_as::<_, MeterRow>(SELECT_METER)
            .bind(project_id)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        row.map(Meter::try_from).transpose()
    }

    pub async fn meters_page(&self, project_id: &str, after: Option<&str>, limit: i64) -> DbResult<Vec<Meter>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, MeterRow>(SELECT_METERS_PAGE)
            .bind(project_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Meter::try_from).collect()
    }

    pub async fn all_meters(&self, project_id: &str) -> DbResult<Vec<Meter>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, MeterRow>(SELECT_ALL_METERS)
            .bind(project_id)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Meter::try_from).collect()
    }

    pub async fn create_meter(&self, project_id: &str, meter: &Meter) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(INSERT_METER)
                .bind(&meter.id)
                .bind(project_id)
                .bind(&meter.name)
                .bind(&meter.description)
                .bind(meter.aggregation.as_str())
                .bind(&meter.field)
                .bind(serde_json::to_string(&meter.event_filter)?)
                .bind(meter.created_at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Saves a changed meter and rebuilds the counters of every limit on it, since what the
    /// meter counts may have changed.
    pub async fn update_meter(
        &self,
        project: &super::projects::Project,
        meter: &Meter,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            s.lock_project(&mut tx, &project.id, true).await?;
            sqlx::query(UPDATE_METER)
                .bind(&project.id)
                .bind(&meter.id)
                .bind(&meter.name)
                .bind(&meter.description)
                .bind(meter.aggregation.as_str())
                .bind(&meter.field)
                .bind(serde_json::to_string(&meter.event_filter)?)
                .bind(meter.updated_at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            let (limits, _) = s.limits_and_meters_tx(&mut tx, &project.id).await?;
            for limit in limits.iter().filter(|l| l.meter_id == meter.id) {
                s.rebuild_counters_tx(&mut tx, project, limit, meter, None, now).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn delete_meter(&self, project_id: &str, id: &str) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let in_use: i64 = sqlx::query_scalar(COUNT_METER_LIMITS).bind(id).fetch_one(&mut *tx).await?;
            if in_use > 0 {
                return Err(DbError::Conflict(format!("meter {id} is used by {in_use} limit(s); delete them first")));
            }
            sqlx::query(DELETE_METER).bind(project_id).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
