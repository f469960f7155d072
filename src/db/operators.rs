//! Dashboard operators, their sessions, failed-login counts and service settings.

use super::{conflict_on_unique, with_store, Db, DbResult, Store};

/// A signed-in operator's session, as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    pub id_hash: String,
    pub operator_id: String,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub email: String,
    pub password_hash: String,
}

const COUNT_OPERATORS: &str = "select count(*) from operators";
const INSERT_OPERATOR: &str = "insert into operators (id, email, password_hash, created_at) values ($1, $2, $3, $4)";
const SELECT_OPERATOR_BY_EMAIL: &str = "select id, email, password_hash from operators where email = $1";
const INSERT_SESSION: &str =
    "insert into operator_sessions (id_hash, operator_id, csrf_token, created_at, expires_at) \
     values ($1, $2, $3, $4, $5)";
const SELECT_SESSION: &str = "select s.id_hash, s.operator_id, o.email, s.csrf_token, s.expires_at \
     from operator_sessions s join operators o on o.id = s.operator_id where s.id_hash = $1 and s.expires_at > $2";
const DELETE_SESSION: &str = "delete from operator_sessions where id_hash = $1";
const DELETE_EXPIRED_SESSIONS: &str = "delete from operator_sessions where expires_at <= $1";
const SET_FLASH: &str = "update operator_sessions set flash = $2 where id_hash = $1";
const SELECT_FLASH: &str = "select flash from operator_sessions where id_hash = $1";
const CLEAR_FLASH: &str = "update operator_sessions set flash = null where id_hash = $1";
const SELECT_LOGIN_FAILURES: &str = "select failures, last_failure_at from login_failures where email = $1";
const RECORD_LOGIN_FAILURE: &str = "insert into login_failures (email, failures, last_failure_at) values ($1, 1, $2) \
     on conflict (email) do update set failures = login_failures.failures + 1, last_failure_at = excluded.last_failure_at";
const CLEAR_LOGIN_FAILURES: &str = "delete from login_failures where email = $1";
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

    pub async fn operator_by_email(&self, email: &str) -> DbResult<Option<Operator>> {
        let row: Option<(String, String, String)> = with_store!(self, s => sqlx::query_as(SELECT_OPERATOR_BY_EMAIL).bind(email).fetch_optional(s.pool()).await)?;
        Ok(row.map(|(id, email, password_hash)| Operator { id, email, password_hash }))
    }

    pub async fn create_session(&self, session: &OperatorSession, now_ms: i64) -> DbResult<()> {
        with_store!(self, s => {
            sqlx::query(DELETE_EXPIRED_SESSIONS).bind(now_ms).execute(s.pool()).await?;
            sqlx::query(INSERT_SESSION)
                .bind(&session.id_hash)
                .bind(&session.operator_id)
                .bind(&session.csrf_token)
                .bind(now_ms)
                .bind(session.expires_at)
                .execute(s.pool())
                .await?;
        });
        Ok(())
    }

    pub async fn session(&self, id_hash: &str, now_ms: i64) -> DbResult<Option<OperatorSession>> {
        let row: Option<(String, String, String, String, i64)> = with_store!(self, s => sqlx::query_as(SELECT_SESSION)
            .bind(id_hash)
            .bind(now_ms)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(|(id_hash, operator_id, email, csrf_token, expires_at)| OperatorSession {
            id_hash,
            operator_id,
            email,
            csrf_token,
            expires_at,
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> DbResult<()> {
        with_store!(self, s => sqlx::query(DELETE_SESSION).bind(id_hash).execute(s.pool()).await.map(|_| ()))?;
        Ok(())
    }

    /// Leaves a message for the session's next page, e.g. a new key's secret, shown once.
    pub async fn set_flash(&self, id_hash: &str, message: &str) -> DbResult<()> {
        with_store!(self, s => sqlx::query(SET_FLASH).bind(id_hash).bind(message).execute(s.pool()).await.map(|_| ()))?;
        Ok(())
    }

    /// Reads and forgets the session's flash message.
    pub async fn take_flash(&self, id_hash: &str) -> DbResult<Option<String>> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let flash: Option<Option<String>> =
                sqlx::query_scalar(SELECT_FLASH).bind(id_hash).fetch_optional(&mut *tx).await?;
            sqlx::query(CLEAR_FLASH).bind(id_hash).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(flash.flatten())
        })
    }

    /// Consecutive failed logins for an email and the time of the last one (Unix ms).
    pub async fn login_failures(&self, email: &str) -> DbResult<(i64, i64)> {
        let row: Option<(i64, i64)> =
            with_store!(self, s => sqlx::query_as(SELECT_LOGIN_FAILURES).bind(email).fetch_optional(s.pool()).await)?;
        Ok(row.unwrap_or((0, 0)))
    }

    pub async fn record_login_failure(&self, email: &str, now_ms: i64) -> DbResult<()> {
        with_store!(self, s => sqlx::query(RECORD_LOGIN_FAILURE).bind(email).bind(now_ms).execute(s.pool()).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, email: &str) -> DbResult<()> {
        with_store!(self, s => sqlx::query(CLEAR_LOGIN_FAILURES).bind(email).execute(s.pool()).await.map(|_| ()))?;
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
