//! Personal access tokens (`limitry_pat_…`): an operator's own credential for the command
//! line, scripts and automation. A token reaches every project its operator can reach in the
//! dashboard (every project), so each request names its project in the `X-Project` header.
//!
//! Tokens are looked up in the database on every request, so a revocation holds from the next
//! request on; they serve scripts, not the hot path, which API keys serve from memory.

use std::sync::Arc;

use axum::http::HeaderMap;
use rand::distributions::Alphanumeric;
use rand::Rng;

use super::keys::hash_key;
use crate::db::personal_tokens::NewPersonalToken;
use crate::db::projects::Project;
use crate::db::{Db, DbResult};
use crate::domain::ids::new_id;
use crate::error::AppError;

pub const TOKEN_PREFIX: &str = "limitry_pat_";
/// The header that picks the project a token's request acts on.
pub const PROJECT_HEADER: &str = "x-project";
/// `last_used_at` is written at most this often per token.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// A new token: its id and the secret, which is shown once and never stored.
pub struct CreatedToken {
    pub id: String,
    pub secret: String,
}

pub async fn create_personal_token(db: &Db, operator_id: &str, name: &str, now_ms: i64) -> DbResult<CreatedToken> {
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(43).map(char::from).collect();
    let secret = format!("{TOKEN_PREFIX}{random}");
    let id = new_id("pat", now_ms);
    db.create_personal_token(NewPersonalToken {
        id: &id,
        operator_id,
        name,
        token_hash: &hash_key(&secret),
        token_prefix: &secret[..TOKEN_PREFIX.len() + 4],
        now_ms,
    })
    .await?;
    Ok(CreatedToken { id, secret })
}

/// The project a request made with a personal access token acts on: the token must exist and
/// not be revoked, and `X-Project` must name an existing project.
pub async fn authenticate_personal_token(
    db: &Db,
    secret: &str,
    headers: &HeaderMap,
    now_ms: i64,
) -> Result<Arc<Project>, AppError> {
    let Some(token) = db.personal_token_by_hash(&hash_key(secret)).await? else {
        return Err(AppError::InvalidApiKey);
    };
    if token.revoked_at.is_some() {
        tracing::info!(token_id = %token.id, "revoked personal access token used");
        return Err(AppError::ExpiredApiKey);
    }
    let project_id = match headers.get(PROJECT_HEADER).map(|value| value.to_str()) {
        None => return Err(AppError::MissingField { field: "X-Project".into() }),
        Some(Ok(id)) if !id.trim().is_empty() => id.trim(),
        Some(_) => {
            return Err(AppError::InvalidField { field: "X-Project".into(), message: "must be a project id".into() })
        }
    };
    let project = db.project(project_id).await?.ok_or_else(|| AppError::not_found("project", project_id))?;
    let stale = token.last_used_at.is_none_or(|at| now_ms - at.timestamp_millis() >= TOUCH_INTERVAL_MS);
    if stale {
        let (db, id) = (db.clone(), token.id.clone());
        tokio::spawn(async move {
            if let Err(err) = db.touch_personal_token(&id, now_ms).await {
                tracing::warn!(error = %err, "could not record personal access token use");
            }
        });
    }
    Ok(Arc::new(project))
}
