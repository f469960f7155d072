//! Limits: CRUD; every change rebuilds the limit's current window counters in the same
//! transaction, so a check never sees a limit without its usage.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::meters::MeterRow;
use super::projects::Project;
use super::{ms_to_time, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::limits::{FailMode, Limit};
use crate::domain::meters::Meter;
use crate::domain::quantity::Quantity;
use crate::domain::windows::Period;

#[derive(sqlx::FromRow)]
pub(crate) struct LimitRow {
    id: String,
    project_id: String,
    name: String,
    meter_id: String,
    limit_value: i64,
    period: String,
    customer_id: Option<String>,
    dimension_filters: String,
    alert_thresholds: String,
    fail_mode: String,
    rolling: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<LimitRow> for Limit {
    type Error = DbError;
    fn try_from(row: LimitRow) -> DbResult<Limit> {
        Ok(Limit {
            period: Period::parse(&row.period).ok_or_else(|| DbError::Corrupt(format!("period {}", row.period)))?,
            fail_mode: FailMode::parse(&row.fail_mode)
                .ok_or_else(|| DbError::Corrupt(format!("fail mode {}", row.fail_mode)))?,
            dimension_filters: serde_json::from_str(&row.dimension_filters)?,
            alert_thresholds: serde_json::from_str(&row.alert_thresholds)?,
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            meter_id: row.meter_id,
            limit_value: Quantity(row.limit_value),
            rolling: row.rolling,
            customer_id: row.customer_id,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
        })
    }
}

macro_rules! limit_columns {
    () => {
        "id, project_id, name, meter_id, limit_value, period, customer_id, dimension_filters, \
         alert_thresholds, fail_mode, rolling, created_at, updated_at"
    };
}

const SELECT_LIMIT: &str = concat!("select ", limit_columns!(), " from limits where project_id = $1 and id = $2");
const SELECT_LIMITS_PAGE: &str = concat!(
    "select ",
    limit_columns!(),
    " from limits where project_id = $1 and id > $2 and ($3 = '' or customer_id = $3) order by id limit $4"
);
const SELECT_ALL_LIMITS: &str = concat!("select ", limit_columns!(), " from limits where project_id = $1 order by id");
const INSERT_LIMIT: &str = "insert into limits \
     (id, project_id, name, meter_id, limit_value, period, customer_id, dimension_filters, alert_thresholds, \
      fail_mode, created_at, updated_at, rolling) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
// Binds the same thirteen parameters as INSERT_LIMIT so one call site serves both; PostgreSQL
// refuses unused parameters, hence the harmless `created_at = $11`.
const UPDATE_LIMIT: &str = "update limits set name = $3, meter_id = $4, limit_value = $5, period = $6, \
     customer_id = $7, dimension_filters = $8, alert_thresholds = $9, fail_mode = $10, updated_at = $12, \
     rolling = $13 where project_id = $2 and id = $1 and created_at = $11";
const DELETE_LIMIT_COUNTERS: &str = "delete from usage_counters where limit_id = $1";
const DELETE_LIMIT: &str = "delete from limits where project_id = $1 and id = $2";
// Reservations keep their trail; only what they hold on the limit goes with it.
const DELETE_LIMIT_HOLDS: &str = "delete from limit_holds where limit_id = $1";

macro_rules! limit_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// A project's limits and meters, read inside a write transaction.
            pub(crate) async fn limits_and_meters_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
            ) -> DbResult<(Vec<Limit>, Vec<Meter>)> {
                let limits = sqlx::query_as::<_, LimitRow>(SELECT_ALL_LIMITS)
                    .bind(project_id)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .map(Limit::try_from)
                    .collect::<DbResult<Vec<_>>>()?;
                if limits.is_empty() {
                    return Ok((limits, Vec::new()));
                }
                let meters = sqlx::query_as::<_, MeterRow>(super::meters::SELECT_ALL_METERS)
                    .bind(project_id)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .map(Meter::try_from)
                    .collect::<DbResult<Vec<_>>>()?;
                Ok((limits, meters))
            }
        }
    };
}
limit_transaction_helpers!(SqliteStore, Sqlite);
limit_transaction_helpers!(PgStore, Postgres);

impl Db {
    pub async fn limit(&self, project_id: &str, id: &str) -> DbResult<Option<Limit>> {
        let row = with_store!(self, s => sqlx::query_as::<_, LimitRow>(SELECT_LIMIT)
            .bind(project_id)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        row.map(Limit::try_from).transpose()
    }

    /// Limits in creation order after the cursor; only one customer's own when asked.
    pub async fn limits_page(
        &self,
        project_id: &str,
        after: Option<&str>,
        customer_id: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<Limit>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, LimitRow>(SELECT_LIMITS_PAGE)
            .bind(project_id)
            .bind(after.unwrap_or(""))
            .bind(customer_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Limit::try_from).collect()
    }

    pub async fn all_limits(&self, project_id: &str) -> DbResult<Vec<Limit>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, LimitRow>(SELECT_ALL_LIMITS)
            .bind(project_id)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Limit::try_from).collect()
    }

    /// Inserts or updates a limit and rebuilds its counters for the current windows from the
    /// recorded events, all in one transaction.
    pub async fn save_limit(
        &self,
        project: &Project,
        limit: &Limit,
        meter: &Meter,
        is_new: bool,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        let sql = if is_new { INSERT_LIMIT } else { UPDATE_LIMIT };
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            s.lock_project(&mut tx, &project.id, true).await?;
            sqlx::query(sql)
                .bind(&limit.id)
                .bind(&project.id)
                .bind(&limit.name)
                .bind(&limit.meter_id)
                .bind(limit.limit_value.0)
                .bind(limit.period.as_str())
                .bind(&limit.customer_id)
                .bind(serde_json::to_string(&limit.dimension_filters)?)
                .bind(serde_json::to_string(&limit.alert_thresholds)?)
                .bind(limit.fail_mode.as_str())
                .bind(limit.created_at.timestamp_millis())
                .bind(limit.updated_at.timestamp_millis())
                .bind(limit.rolling)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        DbError::Conflict("the limit's meter or customer no longer exists".into())
                    }
                    _ => DbError::Sqlx(e),
                })?;
            s.rebuild_counters_tx(&mut tx, project, limit, meter, None, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn delete_limit(&self, project_id: &str, id: &str) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            // Like create and update: no recorder may add to this limit's counters meanwhile.
            s.lock_project(&mut tx, project_id, true).await?;
            sqlx::query(DELETE_LIMIT_COUNTERS).bind(id).execute(&mut *tx).await?;
            sqlx::query(DELETE_LIMIT_HOLDS).bind(id).execute(&mut *tx).await?;
            sqlx::query(DELETE_LIMIT).bind(project_id).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
