//! API rate limits: each key's own limits, and the shared request counters per key and fixed
//! window that every instance adds its local counts to.

use std::collections::HashMap;

use sqlx::postgres::PgConnection;
use sqlx::ConnectOptions;

use super::{placeholder_rows, with_store, Db, DbError, DbResult, Store, ROWS_PER_STATEMENT};

/// A key's own rate limits as stored: `None` follows the service's default, `Some(0)` means
/// no limit for this key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyRateLimits {
    pub per_minute: Option<i64>,
    pub per_day: Option<i64>,
}

/// Requests counted in one key's fixed window: `window_seconds` long, starting at
/// `window_start` (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RateWindow {
    pub key_id: String,
    pub window_seconds: i64,
    pub window_start: i64,
}

const SELECT_KEY_RATE_LIMITS: &str = "select rate_limit_per_minute, rate_limit_per_day from api_keys where id = $1";
const SELECT_PROJECT_KEY_RATE_LIMITS: &str =
    "select id, rate_limit_per_minute, rate_limit_per_day from api_keys where project_id = $1";
const SET_KEY_RATE_LIMITS: &str =
    "update api_keys set rate_limit_per_minute = $3, rate_limit_per_day = $4 where id = $1 and project_id = $2";
const SELECT_RATE_COUNT: &str =
    "select count from api_rate_counters where key_id = $1 and window_seconds = $2 and window_start = $3";
// Followed by `($1, $2, $3, $4), …` rows, then `ADD_RATE_COUNTS_CONFLICT`.
const INSERT_RATE_COUNTS: &str = "insert into api_rate_counters (key_id, window_seconds, window_start, count) values";
const ADD_RATE_COUNTS_CONFLICT: &str = "on conflict (key_id, window_seconds, window_start) do update \
     set count = api_rate_counters.count + excluded.count returning key_id, window_seconds, window_start, count";
const TAKE_BACK_RATE_COUNT: &str = "update api_rate_counters set count = count - $4 \
     where key_id = $1 and window_seconds = $2 and window_start = $3";
const DELETE_RATE_COUNTS_BEFORE: &str = "delete from api_rate_counters where window_start < $1";
// Counts need not survive a crash of the database server: losing the last few milliseconds of
// them costs nothing, waiting for a disk flush at every batch would.
const ASYNC_COMMIT: &str = "set local synchronous_commit to off";
const SYNCHRONOUS_COMMIT: &str = "synchronous_commit";

/// A PostgreSQL connection of its own for the frequent batches of counts (every 10 ms by
/// default), outside the pool: a pooled batch costs six round trips (a ping when taken from the
/// pool, `begin`, `set local`, the update, `commit`, a ping when given back), each waking this
/// process and a database backend, while this costs one. Counts need not survive a crash of the
/// database server, so the connection commits without waiting for the disk.
pub struct RateCountConnection {
    connection: PgConnection,
}

impl RateCountConnection {
    /// Adds counts to windows (an amount of 0 only reads) and answers each window's shared
    /// total afterwards, in the order given, like `Db::add_rate_counts`. Each statement commits
    /// on its own: the rows are independent sums, and one statement holds up to
    /// `ROWS_PER_STATEMENT` of them. After an error, drop the connection and open another.
    pub async fn add_rate_counts(&mut self, additions: &[(RateWindow, i64)]) -> DbResult<Vec<i64>> {
        let sorted = in_key_order(additions);
        let mut totals: HashMap<RateWindow, i64> = HashMap::with_capacity(additions.len());
        for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
            let sql = add_rate_counts_sql(true, chunk.len());
            let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(&sql);
            for (window, amount) in chunk {
                query = query.bind(&window.key_id).bind(window.window_seconds).bind(window.window_start).bind(*amount);
            }
            for (key_id, window_seconds, window_start, count) in query.fetch_all(&mut self.connection).await? {
                totals.insert(RateWindow { key_id, window_seconds, window_start }, count);
            }
        }
        Ok(additions.iter().map(|(window, _)| totals.get(window).copied().unwrap_or(0)).collect())
    }
}

/// Rows are written in key order, so instances adding to the same windows at once take their
/// rows in the same order.
fn in_key_order(additions: &[(RateWindow, i64)]) -> Vec<&(RateWindow, i64)> {
    let mut sorted: Vec<&(RateWindow, i64)> = additions.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
}

fn add_rate_counts_sql(postgres: bool, rows: usize) -> String {
    format!("{INSERT_RATE_COUNTS} {} {ADD_RATE_COUNTS_CONFLICT}", placeholder_rows(postgres, rows, 4, 1))
}

impl Db {
    /// A connection of its own for batches of counts (PostgreSQL); `None` on SQLite, where
    /// batches are rare and go through the pool.
    pub async fn rate_count_connection(&self) -> DbResult<Option<RateCountConnection>> {
        let Db::Postgres(store) = self else { return Ok(None) };
        let options = (*store.pool().connect_options()).clone().options([(SYNCHRONOUS_COMMIT, "off")]);
        let connection = options.connect().await?;
        Ok(Some(RateCountConnection { connection }))
    }

    /// A key's own rate limits (defaults if the key is unknown).
    pub async fn key_rate_limits(&self, key_id: &str) -> DbResult<KeyRateLimits> {
        let row: Option<(Option<i64>, Option<i64>)> = with_store!(self, s => sqlx::query_as(SELECT_KEY_RATE_LIMITS)
            .bind(key_id)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(|(per_minute, per_day)| KeyRateLimits { per_minute, per_day }).unwrap_or_default())
    }

    /// The own rate limits of every key of a project, by key id.
    pub async fn project_key_rate_limits(&self, project_id: &str) -> DbResult<HashMap<String, KeyRateLimits>> {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = with_store!(self, s => sqlx::query_as(SELECT_PROJECT_KEY_RATE_LIMITS)
                .bind(project_id)
                .fetch_all(s.pool())
                .await)?;
        Ok(rows.into_iter().map(|(id, per_minute, per_day)| (id, KeyRateLimits { per_minute, per_day })).collect())
    }

    /// Sets a key's own rate limits; an id that names no key of the project is not found.
    pub async fn set_key_rate_limits(&self, project_id: &str, key_id: &str, limits: KeyRateLimits) -> DbResult<()> {
        let changed = with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let done = sqlx::query(SET_KEY_RATE_LIMITS)
                .bind(key_id)
                .bind(project_id)
                .bind(limits.per_minute)
                .bind(limits.per_day)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done.rows_affected()
        });
        if changed == 0 {
            return Err(DbError::NotFound { resource: "api_key", id: key_id.to_string() });
        }
        Ok(())
    }

    /// The shared count of one window (0 if nothing was counted yet).
    pub async fn rate_count(&self, window: &RateWindow) -> DbResult<i64> {
        let count: Option<i64> = with_store!(self, s => sqlx::query_scalar(SELECT_RATE_COUNT)
            .bind(&window.key_id)
            .bind(window.window_seconds)
            .bind(window.window_start)
            .fetch_optional(s.pool())
            .await)?;
        Ok(count.unwrap_or(0))
    }

    /// Adds counts to windows (an amount of 0 only reads) and answers each window's shared
    /// total afterwards, in the order given, in one transaction.
    pub async fn add_rate_counts(&self, additions: &[(RateWindow, i64)]) -> DbResult<Vec<i64>> {
        let sorted = in_key_order(additions);
        let mut totals: HashMap<RateWindow, i64> = HashMap::with_capacity(additions.len());
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            if s.is_postgres() {
                sqlx::query(ASYNC_COMMIT).execute(&mut *tx).await?;
            }
            for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
                let sql = add_rate_counts_sql(s.is_postgres(), chunk.len());
                let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(&sql);
                for (window, amount) in chunk {
                    query = query.bind(&window.key_id).bind(window.window_seconds).bind(window.window_start).bind(*amount);
                }
                for (key_id, window_seconds, window_start, count) in query.fetch_all(&mut *tx).await? {
                    totals.insert(RateWindow { key_id, window_seconds, window_start }, count);
                }
            }
            tx.commit().await?;
        });
        Ok(additions.iter().map(|(window, _)| totals.get(window).copied().unwrap_or(0)).collect())
    }

    /// Takes back counts added for requests that were then refused.
    pub async fn take_back_rate_counts(&self, windows: &[(RateWindow, i64)]) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            for (window, amount) in windows {
                sqlx::query(TAKE_BACK_RATE_COUNT)
                    .bind(&window.key_id)
                    .bind(window.window_seconds)
                    .bind(window.window_start)
                    .bind(*amount)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets counts of windows that started before `before_ms`.
    pub async fn delete_rate_counts_before(&self, before_ms: i64) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(DELETE_RATE_COUNTS_BEFORE).bind(before_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
