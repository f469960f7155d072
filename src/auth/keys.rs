//! API keys: generation, hashing, and the cached lookup behind Bearer authentication.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::db::keys::{ApiKey, NewApiKey};
use crate::db::projects::Project;
use crate::db::{Db, DbResult};
use crate::domain::ids::new_id;
use crate::error::AppError;
use crate::server::AppState;

pub const KEY_PREFIX: &str = "limitry_sk_";

/// Revocations made by another process (the CLI) are honoured within this long.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per key, off the request path.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The stored form of a secret. Keys carry 256 bits of randomness, so a plain SHA-256 is
/// enough; a slow password hash would only slow every request.
pub fn hash_key(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: its id and the secret, which is shown once and never stored.
pub struct CreatedKey {
    pub id: String,
    pub secret: String,
}

pub async fn create_key(db: &Db, project_id: &str, name: &str, now_ms: i64) -> DbResult<CreatedKey> {
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(43).map(char::from).collect();
    let secret = format!("{KEY_PREFIX}{random}");
    let id = new_id("key", now_ms);
    db.create_key(NewApiKey {
        id: &id,
        project_id,
        name,
        key_hash: &hash_key(&secret),
        key_prefix: &secret[..KEY_PREFIX.len() + 4],
        now_ms,
    })
    .await?;
    Ok(CreatedKey { id, secret })
}

#[derive(Clone)]
struct Cached {
    key: Option<ApiKey>,
    project: Option<Arc<Project>>,
    fetched: Instant,
    touched: Instant,
}

/// Resolves Bearer secrets to projects, remembering answers briefly so that authentication
/// costs no database read on the hot path.
#[derive(Default)]
pub struct KeyAuthenticator {
    cache: RwLock<HashMap<String, Cached>>,
}

impl KeyAuthenticator {
    pub async fn authenticate(&self, db: &Db, secret: &str, now_ms: i64) -> Result<Arc<Project>, AppError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Err(AppError::InvalidApiKey);
        }
        let hash = hash_key(secret);
        let cached = self.cache.read().ok().and_then(|c| c.get(&hash).cloned());
        let mut entry = match cached {
            Some(entry) if entry.fetched.elapsed() < CACHE_TTL => entry,
            _ => {
                let key = db.key_by_hash(&hash).await?;
                let project = match &key {
                    Some(key) => db.project(&key.project_id).await?.map(Arc::new),
                    None => None,
                };
                let entry = Cached { key, project, fetched: Instant::now(), touched: Instant::now() - TOUCH_INTERVAL };
                if let Ok(mut cache) = self.cache.write() {
                    cache.insert(hash.clone(), entry.clone());
                }
                entry
            }
        };
        let (Some(key), Some(project)) = (&entry.key, &entry.project) else {
            return Err(AppError::InvalidApiKey);
        };
        if key.revoked_at.is_some() {
            return Err(AppError::ExpiredApiKey);
        }
        if entry.touched.elapsed() >= TOUCH_INTERVAL {
            entry.touched = Instant::now();
            if let Ok(mut cache) = self.cache.write() {
                cache.insert(hash, entry.clone());
            }
            let (db, id) = (db.clone(), key.id.clone());
            tokio::spawn(async move {
                if let Err(err) = db.touch_key(&id, now_ms).await {
                    tracing::warn!(error = %err, "could not record API key use");
                }
            });
        }
        Ok(project.clone())
    }

    /// Forgets cached answers, after a revocation in this process.
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }
}

/// The project of the calling API key.
pub struct ApiProject(pub Arc<Project>);

impl FromRequestParts<AppState> for ApiProject {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(AppError::MissingApiKey)?;
        let value = header.to_str().map_err(|_| AppError::InvalidApiKey)?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AppError::InvalidApiKey)?
            .trim();
        if secret.is_empty() {
            return Err(AppError::MissingApiKey);
        }
        let now_ms = state.engine.now().timestamp_millis();
        state.keys.authenticate(state.engine.db(), secret, now_ms).await.map(ApiProject)
    }
}
