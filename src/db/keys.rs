//! API keys: stored as a hash with a short displayable prefix, never the secret itself.

use chrono::{DateTime, Utc};

use super::{conflict_on_unique, ms_to_time, with_store, Db, DbError, DbResult, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// The first characters of the secret, to tell keys apart.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    project_id: String,
    name: String,
    key_prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            key_prefix: row.key_prefix,
            created_at: ms_to_time(row.created_at),
            last_used_at: row.last_used_at.map(ms_to_time),
            revoked_at: row.revoked_at.map(ms_to_time),
        }
    }
}

const INSERT_KEY: &str = "insert into api_keys (id, project_id, name, key_hash, key_prefix, created_at) \
     values ($1, $2, $3, $4, $5, $6)";
const SELECT_KEY_BY_HASH: &str = "select id, project_id, name, key_prefix, created_at, last_used_at, revoked_at \
     from api_keys where key_hash = $1";
// `$1` empty: every project's keys.
const SELECT_KEYS: &str = "select id, project_id, name, key_prefix, created_at, last_used_at, revoked_at \
     from api_keys where ($1 = '' or project_id = $1) order by id";
const REVOKE_KEY: &str = "update api_keys set revoked_at = $2 where id = $1 and revoked_at is null";
const KEY_EXISTS: &str = "select count(*) from api_keys where id = $1 and ($2 = '' or project_id = $2)";
const TOUCH_KEY: &str = "update api_keys set last_used_at = $2 where id = $1";

/// What `create_key` stores.
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub key_prefix: &'a str,
    pub now_ms: i64,
}

impl Db {
    pub async fn create_key(&self, key: NewApiKey<'_>) -> DbResult<()> {
        with_store!(self, s => sqlx::query(INSERT_KEY)
            .bind(key.id)
            .bind(key.project_id)
            .bind(key.name)
            .bind(key.key_hash)
            .bind(key.key_prefix)
            .bind(key.now_ms)
            .execute(s.pool())
            .await.map(|_| ()))
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                DbError::NotFound { resource: "project", id: key.project_id.to_string() }
            }
            _ => conflict_on_unique(e, "an API key with this hash already exists"),
        })?;
        Ok(())
    }

    pub async fn key_by_hash(&self, hash: &str) -> DbResult<Option<ApiKey>> {
        let row = with_store!(self, s => sqlx::query_as::<_, ApiKeyRow>(SELECT_KEY_BY_HASH)
            .bind(hash)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(ApiKey::from))
    }

    /// The keys of one project, or of every project (`None`, for the command line).
    pub async fn keys(&self, project_id: Option<&str>) -> DbResult<Vec<ApiKey>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, ApiKeyRow>(SELECT_KEYS)
            .bind(project_id.unwrap_or(""))
            .fetch_all(s.pool())
            .await)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key (of `project_id` only, when given); revoking twice is harmless, an unknown
    /// id is not found.
    pub async fn revoke_key(&self, project_id: Option<&str>, id: &str, now_ms: i64) -> DbResult<()> {
        let exists: i64 = with_store!(self, s => sqlx::query_scalar(KEY_EXISTS)
            .bind(id)
            .bind(project_id.unwrap_or(""))
            .fetch_one(s.pool())
            .await)?;
        if exists == 0 {
            return Err(DbError::NotFound { resource: "api_key", id: id.to_string() });
        }
        with_store!(self, s => sqlx::query(REVOKE_KEY).bind(id).bind(now_ms).execute(s.pool()).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn touch_key(&self, id: &str, now_ms: i64) -> DbResult<()> {
        // Through the writer queue like every write: on SQLite a bare statement would spin on
        // the busy timeout behind a stream of group commits.
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(TOUCH_KEY).bind(id).bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
