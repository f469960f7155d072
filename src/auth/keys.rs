//! API keys: generation, hashing, and the cached lookup behind Bearer authentication.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::db::keys::NewApiKey;
use crate::db::projects::Project;
use crate::db::rate_limits::KeyRateLimits;
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
    hex::encode(Sha256::digest(secret.as_bytes()))
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

/// Most keys remembered at once. Only keys that exist are remembered, so this bounds memory
/// against a deployment with very many keys, not against guessing (guesses are never kept).
const MAX_CACHED_KEYS: usize = 10_000;

/// What an existing key resolved to, shared by every request that presents it.
struct Cached {
    key_id: Arc<str>,
    /// `None` if the key's project is gone.
    project: Option<Arc<Project>>,
    /// The key may no longer be used.
    revoked: bool,
    rate_limits: KeyRateLimits,
    fetched: Instant,
    /// When `last_used_at` was last written (ms on the process's monotonic clock).
    touched_ms: AtomicI64,
}

/// Resolves Bearer secrets to projects, remembering answers briefly so that authentication
/// costs no database read (and no allocation) on the hot path.
pub struct KeyAuthenticator {
    cache: RwLock<HashMap<String, Arc<Cached>>>,
    started: Instant,
}

impl Default for KeyAuthenticator {
    fn default() -> Self {
        KeyAuthenticator { cache: RwLock::default(), started: Instant::now() }
    }
}

/// Who an API key request comes from: the key, its project and its own rate limits.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub key_id: Arc<str>,
    pub project: Arc<Project>,
    pub rate_limits: KeyRateLimits,
}

impl KeyAuthenticator {
    pub async fn authenticate(&self, db: &Db, secret: &str, clock: &dyn Clock) -> Result<Arc<Project>, AppError> {
        self.authenticate_key(db, secret, clock).await.map(|key| key.project)
    }

    /// `clock` is read only to record when a key was used, about once a minute per key.
    pub async fn authenticate_key(
        &self,
        db: &Db,
        secret: &str,
        clock: &dyn Clock,
    ) -> Result<AuthenticatedKey, AppError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Err(AppError::InvalidApiKey);
        }
        // Remembered by the secret itself: hashing it would cost more than all the rest of
        // authentication, and the secret is in this process's memory with every request anyway.
        let cached = self.cache.read().ok().and_then(|c| c.get(secret).cloned());
        let started = Instant::now();
        let entry = match cached {
            Some(entry) if started.saturating_duration_since(entry.fetched) < CACHE_TTL => entry,
            stale => {
                // A secret that matches no key is not remembered: anyone can send endless
                // random ones, and memory must not grow with them.
                let Some(key) = db.key_by_hash(&hash_key(secret)).await? else {
                    tracing::info!(key_prefix = %key_prefix(secret), "invalid API key");
                    return Err(AppError::InvalidApiKey);
                };
                let project = db.project(&key.project_id).await?.map(Arc::new);
                let rate_limits = db.key_rate_limits(&key.id).await?;
                // A key read again keeps its mark, so `last_used_at` is still written at most
                // once an interval, not once per read.
                let never = self.elapsed_ms(started) - TOUCH_INTERVAL.as_millis() as i64;
                let touched = stale.map_or(never, |stale| stale.touched_ms.load(Ordering::Relaxed));
                let entry = Arc::new(Cached {
                    revoked: key.revoked_at.is_some(),
                    rate_limits,
                    key_id: key.id.into(),
                    project,
                    fetched: Instant::now(),
                    touched_ms: AtomicI64::new(touched),
                });
                if let Ok(mut cache) = self.cache.write() {
                    if cache.len() >= MAX_CACHED_KEYS {
                        cache.retain(|_, cached| cached.fetched.elapsed() < CACHE_TTL);
                        if cache.len() >= MAX_CACHED_KEYS {
                            cache.clear();
                        }
                    }
                    cache.insert(secret.to_string(), entry.clone());
                }
                entry
            }
        };
        let (key_id, Some(project)) = (&entry.key_id, &entry.project) else {
            return Err(AppError::InvalidApiKey);
        };
        if entry.revoked {
            tracing::info!(key_id = %key_id, "revoked API key used");
            return Err(AppError::ExpiredApiKey);
        }
        let now = self.elapsed_ms(started);
        let touched = entry.touched_ms.load(Ordering::Relaxed);
        // Only the request that moves the mark writes, so a burst writes once.
        if now - touched >= TOUCH_INTERVAL.as_millis() as i64
            && entry.touched_ms.compare_exchange(touched, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let (db, id, now_ms) = (db.clone(), key_id.clone(), clock.now().timestamp_millis());
            tokio::spawn(async move {
                if let Err(err) = db.touch_key(&id, now_ms).await {
                    tracing::warn!(error = %err, "could not record API key use");
                }
            });
        }
        Ok(AuthenticatedKey { key_id: key_id.clone(), project: project.clone(), rate_limits: entry.rate_limits })
    }

    /// How many keys are remembered now.
    pub fn cached_keys(&self) -> usize {
        self.cache.read().map_or(0, |cache| cache.len())
    }

    /// Milliseconds from this authenticator's start to `at`.
    fn elapsed_ms(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.started).as_millis() as i64
    }

    /// Forgets cached answers, after a revocation in this process.
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }
}

/// The public start of a secret (`limitry_sk_` and four characters), safe to log.
fn key_prefix(secret: &str) -> &str {
    public_prefix(secret, KEY_PREFIX)
}

/// The public start of a secret: its `prefix` and four characters, as stored beside its hash.
pub fn public_prefix<'a>(secret: &'a str, prefix: &str) -> &'a str {
    let end = secret.char_indices().nth(prefix.len() + 4).map_or(secret.len(), |(at, _)| at);
    &secret[..end]
}

/// The secret of an `Authorization: Bearer …` header.
pub fn bearer_secret(headers: &axum::http::HeaderMap) -> Result<&str, AppError> {
    let header = headers.get(axum::http::header::AUTHORIZATION).ok_or(AppError::MissingApiKey)?;
    let value = header.to_str().map_err(|_| AppError::InvalidApiKey)?;
    let secret =
        value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(AppError::InvalidApiKey)?.trim();
    if secret.is_empty() {
        return Err(AppError::MissingApiKey);
    }
    Ok(secret)
}

/// The project of the calling API key.
pub struct ApiProject(pub Arc<Project>);

impl FromRequestParts<AppState> for ApiProject {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Already authenticated by the rate limiter in front of the API.
        if let Some(key) = parts.extensions.get::<AuthenticatedKey>() {
            return Ok(ApiProject(key.project.clone()));
        }
        let secret = bearer_secret(&parts.headers)?;
        if secret.starts_with(crate::auth::client_tokens::TOKEN_PREFIX) {
            return Err(AppError::InsufficientPermissions(
                "a client token reaches only the /v1/client/… routes: use an API key".into(),
            ));
        }
        if secret.starts_with(crate::auth::personal_tokens::TOKEN_PREFIX) {
            let (db, now_ms) = (state.engine.db(), state.engine.now().timestamp_millis());
            return crate::auth::personal_tokens::authenticate_personal_token(db, secret, &parts.headers, now_ms)
                .await
                .map(ApiProject);
        }
        state.keys.authenticate(state.engine.db(), secret, state.engine.clock()).await.map(ApiProject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::projects::NewProject;

    #[tokio::test]
    async fn a_key_read_again_keeps_when_its_use_was_last_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display())).await.unwrap();
        let project = db.create_project(&NewProject::parse("keys", "").unwrap(), 0).await.unwrap();
        let key = create_key(&db, &project.id, "app", 0).await.unwrap();
        let authenticator = KeyAuthenticator::default();
        let mark = || authenticator.cache.read().unwrap()[&key.secret].touched_ms.load(Ordering::Relaxed);
        authenticator.authenticate(&db, &key.secret, &SystemClock).await.unwrap();
        let first_use = mark();
        // The remembered answer expires, as it does every few seconds under load.
        let expired = Instant::now().checked_sub(CACHE_TTL * 2).unwrap();
        let stale = {
            let cache = authenticator.cache.read().unwrap();
            let entry = &cache[&key.secret];
            Cached {
                key_id: entry.key_id.clone(),
                project: entry.project.clone(),
                revoked: entry.revoked,
                rate_limits: entry.rate_limits,
                fetched: expired,
                touched_ms: AtomicI64::new(first_use),
            }
        };
        authenticator.cache.write().unwrap().insert(key.secret.clone(), Arc::new(stale));
        authenticator.authenticate(&db, &key.secret, &SystemClock).await.unwrap();
        assert_eq!(mark(), first_use, "read again, the key is not written again before the interval is up");
    }

    #[test]
    fn keys_are_stored_as_lower_case_hex_sha256() {
        // Stored hashes must keep matching the keys issued before.
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
