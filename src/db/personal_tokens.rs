//! Personal access tokens of operators: stored as a hash with a short displayable prefix,
//! never the secret itself.

use chrono::{DateTime, Utc};

use super::{conflict_on_unique, ms_to_time, with_store, Db, DbError, DbResult, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct PersonalToken {
    pub id: String,
    pub operator_id: String,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct PersonalTokenRow {
    id: String,
    operator_id: String,
    name: String,
    token_prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<PersonalTokenRow> for PersonalToken {
    fn from(row: PersonalTokenRow) -> Self {
        PersonalToken {
            id: row.id,
            operator_id: row.operator_id,
            name: row.name,
            token_prefix: row.token_prefix,
            created_at: ms_to_time(row.created_at),
            last_used_at: row.last_used_at.map(ms_to_time),
            revoked_at: row.revoked_at.map(ms_to_time),
        }
    }
}

const INSERT_TOKEN: &str = "insert into personal_access_tokens \
     (id, operator_id, name, token_hash, token_prefix, created_at) values ($1, $2, $3, $4, $5, $6)";
const SELECT_TOKEN_BY_HASH: &str = "select id, operator_id, name, token_prefix, created_at, last_used_at, revoked_at \
     from personal_access_tokens where token_hash = $1";
const SELECT_OPERATOR_TOKENS: &str = "select id, operator_id, name, token_prefix, created_at, last_used_at, \
     revoked_at from personal_access_tokens where operator_id = $1 order by id";
const REVOKE_TOKEN: &str =
    "update personal_access_tokens set revoked_at = $3 where id = $1 and operator_id = $2 and revoked_at is null";
const TOKEN_EXISTS: &str = "select count(*) from personal_access_tokens where id = $1 and operator_id = $2";
const TOUCH_TOKEN: &str = "update personal_access_tokens set last_used_at = $2 where id = $1";

/// What `create_personal_token` stores.
pub struct NewPersonalToken<'a> {
    pub id: &'a str,
    pub operator_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub now_ms: i64,
}

impl Db {
    pub async fn create_personal_token(&self, token: NewPersonalToken<'_>) -> DbResult<()> {
        with_store!(self, s => sqlx::query(INSERT_TOKEN)
            .bind(token.id)
            .bind(token.operator_id)
            .bind(token.name)
            .bind(token.token_hash)
            .bind(token.token_prefix)
            .bind(token.now_ms)
            .execute(s.pool())
            .await.map(|_| ()))
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                DbError::NotFound { resource: "operator", id: token.operator_id.to_string() }
            }
            _ => conflict_on_unique(e, "a personal access token with this hash already exists"),
        })?;
        Ok(())
    }

    pub async fn personal_token_by_hash(&self, hash: &str) -> DbResult<Option<PersonalToken>> {
        let row = with_store!(self, s => sqlx::query_as::<_, PersonalTokenRow>(SELECT_TOKEN_BY_HASH)
            .bind(hash)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(PersonalToken::from))
    }

    /// One operator's tokens, revoked ones included, oldest first.
    pub async fn operator_personal_tokens(&self, operator_id: &str) -> DbResult<Vec<PersonalToken>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, PersonalTokenRow>(SELECT_OPERATOR_TOKENS)
            .bind(operator_id)
            .fetch_all(s.pool())
            .await)?;
        Ok(rows.into_iter().map(PersonalToken::from).collect())
    }

    /// Revokes one of the operator's tokens; revoking twice is harmless, another operator's
    /// token or an unknown id is not found.
    pub async fn revoke_personal_token(&self, operator_id: &str, id: &str, now_ms: i64) -> DbResult<()> {
        let exists: i64 = with_store!(self, s => sqlx::query_scalar(TOKEN_EXISTS)
            .bind(id)
            .bind(operator_id)
            .fetch_one(s.pool())
            .await)?;
        if exists == 0 {
            return Err(DbError::NotFound { resource: "personal_access_token", id: id.to_string() });
        }
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(REVOKE_TOKEN).bind(id).bind(operator_id).bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn touch_personal_token(&self, id: &str, now_ms: i64) -> DbResult<()> {
        // Through the writer queue like every write (see `touch_key`).
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(TOUCH_TOKEN).bind(id).bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
