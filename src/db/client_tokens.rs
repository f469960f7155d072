//! Client tokens: stored as a hash with the customer they act for and their contexts.

use chrono::{DateTime, Utc};

use super::{ms_to_time, with_store, Db, DbError, DbResult, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct ClientToken {
    pub id: String,
    pub project_id: String,
    /// The customer as the token was minted for: an externalId or a `cust_…` id.
    pub customer_ref: String,
    pub context: serde_json::Value,
    pub server_context: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ClientTokenRow {
    id: String,
    project_id: String,
    customer_ref: String,
    context: String,
    server_context: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ClientTokenRow> for ClientToken {
    type Error = DbError;

    fn try_from(row: ClientTokenRow) -> DbResult<Self> {
        Ok(ClientToken {
            id: row.id,
            project_id: row.project_id,
            customer_ref: row.customer_ref,
            context: serde_json::from_str(&row.context)?,
            server_context: serde_json::from_str(&row.server_context)?,
            created_at: ms_to_time(row.created_at),
            expires_at: ms_to_time(row.expires_at),
            revoked_at: row.revoked_at.map(ms_to_time),
        })
    }
}

/// What `mint_client_token` stores.
pub struct NewClientToken<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub customer_ref: &'a str,
    pub token_hash: &'a str,
    pub context: &'a serde_json::Value,
    pub server_context: &'a serde_json::Value,
    pub now_ms: i64,
    pub expires_ms: i64,
}

const INSERT_CLIENT_TOKEN: &str = "insert into client_tokens \
     (id, project_id, customer_ref, token_hash, context, server_context, created_at, expires_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8)";
const CLIENT_TOKEN_COLUMNS: &str =
    "select id, project_id, customer_ref, context, server_context, created_at, expires_at, revoked_at from client_tokens";
const REVOKE_CLIENT_TOKEN: &str =
    "update client_tokens set revoked_at = $3 where id = $1 and project_id = $2 and revoked_at is null";
const CLIENT_TOKEN_EXISTS: &str = "select count(*) from client_tokens where id = $1 and project_id = $2";
const DELETE_CLIENT_TOKENS_EXPIRED_BEFORE: &str = "delete from client_tokens where expires_at < $1";

impl Db {
    pub async fn insert_client_token(&self, token: NewClientToken<'_>) -> DbResult<()> {
        let context = serde_json::to_string(token.context)?;
        let server_context = serde_json::to_string(token.server_context)?;
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(INSERT_CLIENT_TOKEN)
                .bind(token.id)
                .bind(token.project_id)
                .bind(token.customer_ref)
                .bind(token.token_hash)
                .bind(&context)
                .bind(&server_context)
                .bind(token.now_ms)
                .bind(token.expires_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn client_token_by_hash(&self, hash: &str) -> DbResult<Option<ClientToken>> {
        let sql = format!("{CLIENT_TOKEN_COLUMNS} where token_hash = $1");
        let row = with_store!(self, s => sqlx::query_as::<_, ClientTokenRow>(&sql)
            .bind(hash)
            .fetch_optional(s.pool())
            .await)?;
        row.map(ClientToken::try_from).transpose()
    }

    pub async fn client_token(&self, project_id: &str, id: &str) -> DbResult<Option<ClientToken>> {
        let sql = format!("{CLIENT_TOKEN_COLUMNS} where id = $1 and project_id = $2");
        let row = with_store!(self, s => sqlx::query_as::<_, ClientTokenRow>(&sql)
            .bind(id)
            .bind(project_id)
            .fetch_optional(s.pool())
            .await)?;
        row.map(ClientToken::try_from).transpose()
    }

    /// Revokes a token of the project; revoking twice is harmless, an unknown id is not found.
    pub async fn revoke_client_token(&self, project_id: &str, id: &str, now_ms: i64) -> DbResult<()> {
        let exists: i64 = with_store!(self, s => sqlx::query_scalar(CLIENT_TOKEN_EXISTS)
            .bind(id)
            .bind(project_id)
            .fetch_one(s.pool())
            .await)?;
        if exists == 0 {
            return Err(DbError::NotFound { resource: "client_token", id: id.to_string() });
        }
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(REVOKE_CLIENT_TOKEN).bind(id).bind(project_id).bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets tokens that expired before `before_ms`.
    pub async fn delete_client_tokens_expired_before(&self, before_ms: i64) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(DELETE_CLIENT_TOKENS_EXPIRED_BEFORE).bind(before_ms).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
