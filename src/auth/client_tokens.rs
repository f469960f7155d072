//! Client tokens: short-lived bearer tokens a backend mints so that a browser can act for one
//! customer on the `/v1/client/…` routes and nowhere else. Stored only as a hash.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::auth::keys::{bearer_secret, hash_key, KEY_PREFIX};
use crate::db::client_tokens::{ClientToken, NewClientToken};
use crate::db::projects::Project;
use crate::db::{Db, DbResult};
use crate::domain::ids::new_id;
use crate::error::AppError;
use crate::server::AppState;

pub const TOKEN_PREFIX: &str = "limitry_ct_";
/// Lifetime bounds in seconds, and the default.
pub const MIN_TTL_SECONDS: i64 = 1;
pub const MAX_TTL_SECONDS: i64 = 86_400;
pub const DEFAULT_TTL_SECONDS: i64 = 3_600;

/// A validated request for a token.
pub struct TokenGrant {
    pub customer_ref: String,
    pub context: serde_json::Value,
    pub server_context: serde_json::Value,
    pub ttl_seconds: i64,
}

/// A new token: the secret is shown once and never stored.
pub struct MintedToken {
    pub id: String,
    pub secret: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

pub async fn mint_client_token(db: &Db, project_id: &str, grant: &TokenGrant, now_ms: i64) -> DbResult<MintedToken> {
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(43).map(char::from).collect();
    let secret = format!("{TOKEN_PREFIX}{random}");
    let id = new_id("ct", now_ms);
    let expires_ms = now_ms + grant.ttl_seconds * 1000;
    db.insert_client_token(NewClientToken {
        id: &id,
        project_id,
        customer_ref: &grant.customer_ref,
        token_hash: &hash_key(&secret),
        context: &grant.context,
        server_context: &grant.server_context,
        now_ms,
        expires_ms,
    })
    .await?;
    Ok(MintedToken { id, secret, expires_at: crate::db::ms_to_time(expires_ms) })
}

/// The calling client token, valid now, and its project.
pub struct ClientCaller {
    pub token: ClientToken,
    pub project: Arc<Project>,
}

impl FromRequestParts<AppState> for ClientCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secret = bearer_secret(&parts.headers)?;
        if secret.starts_with(KEY_PREFIX) {
            // An API key must never travel to a browser: say so rather than accept it.
            return Err(AppError::InsufficientPermissions(
                "the /v1/client/… routes take a client token (limitry_ct_…), not an API key".into(),
            ));
        }
        if !secret.starts_with(TOKEN_PREFIX) {
            return Err(AppError::InvalidApiKey);
        }
        let db = state.engine.db();
        let Some(token) = db.client_token_by_hash(&hash_key(secret)).await? else {
            return Err(AppError::InvalidApiKey);
        };
        if token.revoked_at.is_some() {
            return Err(AppError::ExpiredClientToken("this client token has been revoked"));
        }
        if token.expires_at <= state.engine.now() {
            return Err(AppError::ExpiredClientToken("this client token has expired: ask your backend for a new one"));
        }
        let project = db.project(&token.project_id).await?.ok_or(AppError::InvalidApiKey)?;
        Ok(ClientCaller { token, project: Arc::new(project) })
    }
}

/// Expired tokens are kept a day (so a late call still hears "expired"), then deleted.
const KEEP_EXPIRED: chrono::Duration = chrono::Duration::days(1);
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes tokens a day after they expired.
pub fn spawn_sweeper(engine: Arc<crate::engine::Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let before = (engine.now() - KEEP_EXPIRED).timestamp_millis();
            if let Err(err) = engine.db().delete_client_tokens_expired_before(before).await {
                tracing::warn!(error = %err, "could not delete expired client tokens");
            }
        }
    })
}
