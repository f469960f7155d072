//! Dashboard operators, their failed-login counts and service settings (sessions: `sessions.rs`).

use super::{conflict_on_unique, with_store, Db, DbResult, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub email: String,
    pub password_hash: String,
}

const COUNT_OPERATORS: &str = "select count(*) from operators";
const INSERT_OPERATOR: &str = "insert into operators (id, email, password_hash, created_at) values ($1, $2, $3, $4)";
const SELECT_OPERATOR_BY_EMAIL: &str = "select id, email, password_hash from operators where email = $1";
// Makes sure the key's row exists and locks it for the transaction (PostgreSQL takes the row
// lock in `do update`; SQLite's write transaction is already exclusive), returning its counts.
const LOCK_THROTTLE: &str = "insert into login_throttle (key, failures, last_failure_at, expires_at) \
     values ($1, 0, 0, $2) on conflict (key) do update set expires_at = login_throttle.expires_at \
     returning failures, last_failure_at, expires_at";
const CLAIM_FAILURE: &str =
    "update login_throttle set failures = $2, last_failure_at = $3, expires_at = $4 where key = $1";
const RELEASE_FAILURE: &str = "update login_throttle set failures = failures - 1 where key = $1 and failures > 0";
const CLEAR_THROTTLE: &str = "delete from login_throttle where key = $1";
const DELETE_EXPIRED_THROTTLES: &str = "delete from login_throttle where expires_at <= $1";
// On PostgreSQL rows a claim holds are skipped, so the clean-up never waits on (or deadlocks
// with) a login in progress; SQLite's writers are serial anyway.
const DELETE_EXPIRED_THROTTLES_PG: &str = "delete from login_throttle where key in \
     (select key from login_throttle where expires_at <= $1 for update skip locked)";
// The `first_operator` setting is a marker row that makes concurrent first-run setups queue
// behind one another: whichever inserts it first creates the operator; the others create nothing.
const FIRST_OPERATOR_MARKER: &str = "first_operator";
const SELECT_SETTING: &str = "select value from settings where name = $1";
const INSERT_SETTING_IF_MISSING: &str =
    "insert into settings (name, value) values ($1, $2) on conflict (name) do nothing";

impl Db {
    pub async fn operator_count(&self) -> DbResult<i64> {
        Ok(with_store!(self, s => sqlx::query_scalar(COUNT_OPERATORS).fetch_one(s.pool()).await)?)
    }

    pub async fn create_operator(&self, id: &str, email: &str, password_hash: &str, now_ms: i64) -> DbResult<()> {
        with_store!(self, s => sqlx::query(INSERT_OPERATOR)
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .bind(now_ms)
            .execute(s.pool())
            .await
            .map(|_| ()))
        .map_err(|e| conflict_on_unique(e, format!("an operator {email} already exists")))
    }

    /// Creates the first operator, unless one exists or another setup is creating it at the
    /// same moment; false if this one did not.
    pub async fn create_first_operator(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> DbResult<bool> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let claimed = sqlx::query(INSERT_SETTING_IF_MISSING)
                .bind(FIRST_OPERATOR_MARKER)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            // Operators made before the marker existed (or by `limitry admin create`) count too.
            let existing: i64 = sqlx::query_scalar(COUNT_OPERATORS).fetch_one(&mut *tx).await?;
            if !claimed || existing > 0 {
                // Dropping the transaction rolls it back.
                drop(tx);
                return Ok(false);
            }
            sqlx::query(INSERT_OPERATOR).bind(id).bind(email).bind(password_hash).bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn operator_by_email(&self, email: &str) -> DbResult<Option<Operator>> {
        let row: Option<(String, String, String)> = with_store!(self, s => sqlx::query_as(SELECT_OPERATOR_BY_EMAIL).bind(email).fetch_optional(s.pool()).await)?;
        Ok(row.map(|(id, email, password_hash)| Operator { id, email, password_hash }))
    }

    /// Counts a login attempt as a failure before its password is checked, under every key
    /// at once, unless a key must still wait: one transaction, so concurrent attempts each see
    /// the ones before them. Each key comes with the failures it allows freely; `wait` decides
    /// from those, the key's failures and its last failure (Unix ms). Keys are locked in the
    /// order given (callers give a fixed order). Returns the longest
    /// wait when refused.
    pub async fn claim_login_attempt(
        &self,
        counters: &[(&str, i64)],
        now_ms: i64,
        expires_at: i64,
        wait: impl Fn(i64, i64, i64) -> Option<i64>,
    ) -> DbResult<Result<(), i64>> {
        // Rows nobody has touched for a while go first, outside the claim's transaction.
        match self {
            Db::Sqlite(s) => sqlx::query(DELETE_EXPIRED_THROTTLES).bind(now_ms).execute(s.pool()).await.map(|_| ())?,
            Db::Postgres(s) => {
                sqlx::query(DELETE_EXPIRED_THROTTLES_PG).bind(now_ms).execute(s.pool()).await.map(|_| ())?
            }
        };
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let mut counts = Vec::with_capacity(counters.len());
            let mut longest_wait = None;
            for &(key, free) in counters {
                let (failures, last, row_expires): (i64, i64, i64) =
                    sqlx::query_as(LOCK_THROTTLE).bind(key).bind(expires_at).fetch_one(&mut *tx).await?;
                // A row past its expiry is a clean slate even before it is deleted.
                let failures = if row_expires <= now_ms { 0 } else { failures };
                if let Some(ms) = wait(free, failures, last) {
                    longest_wait = longest_wait.max(Some(ms));
                }
                counts.push(failures);
            }
            if let Some(ms) = longest_wait {
                // Dropping the transaction rolls it back.
                drop(tx);
                return Ok(Err(ms));
            }
            for (&(key, _), failures) in counters.iter().zip(counts) {
                sqlx::query(CLAIM_FAILURE).bind(key).bind(failures + 1).bind(now_ms).bind(expires_at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// After a successful login: forgets `clear` and takes back the claimed failure of `release`.
    pub async fn settle_login_success(&self, clear: &str, release: &str) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(RELEASE_FAILURE).bind(release).execute(&mut *tx).await?;
            sqlx::query(CLEAR_THROTTLE).bind(clear).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A setting, stored as `candidate` the first time it is asked for; every later call (and
    /// every other instance) gets the first value.
    pub async fn setting_or_insert(&self, name: &str, candidate: &str) -> DbResult<String> {
        with_store!(self, s => {
            sqlx::query(INSERT_SETTING_IF_MISSING).bind(name).bind(candidate).execute(s.pool()).await?;
            Ok(sqlx::query_scalar(SELECT_SETTING).bind(name).fetch_one(s.pool()).await?)
        })
    }
}
