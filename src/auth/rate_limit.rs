//! Per-key API rate limits: requests per minute and per day (UTC), in fixed windows, with
//! counts shared by every instance on one database.
//!
//! Each instance counts locally and adds its counts to a shared row per key and window in
//! batches (every flush interval, 10 ms by default), reading the shared total back with each
//! batch. A request is counted locally while the known total is out of the limit's last tenth
//! and this instance holds back less than a quarter of the room it knows is left; otherwise
//! it goes, with what is held back, to the shared row in one atomic update whose total decides
//! it. A known total at the limit refuses locally. On SQLite the service is the only instance,
//! so its local count is the shared count and batches only keep counts across a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::keys::{bearer_secret, KEY_PREFIX};
use crate::clock::Clock;
use crate::config::RateLimitSettings;
use crate::db::rate_limits::{KeyRateLimits, RateCountConnection, RateWindow};
use crate::db::{Db, DbResult};
use crate::error::AppError;
use crate::server::AppState;

const MINUTE_SECONDS: i64 = 60;
const DAY_SECONDS: i64 = 86_400;
/// Every this many flushes, the shared totals of every window used in the last minute are read
/// back too, so an instance that stopped adding to a key still hears what the others counted.
const REFRESH_EVERY: u32 = 10;
/// On SQLite counts are written only to survive a restart: no need to do it often.
const SQLITE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often windows that ended are forgotten, in memory and in the database.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// One key's count in its current window of one length.
#[derive(Debug, Default)]
struct WindowCount {
    /// Unix ms; 0 before the first request.
    start_ms: i64,
    /// The shared total as last read (this instance's flushed counts included): a lower
    /// bound of the true total, which only grows within a window.
    known: i64,
    /// Counted here, not yet sent to the shared row.
    pending: i64,
    /// Sent to the shared row, not yet answered.
    in_flight: i64,
    /// When a request last used it (Unix ms).
    used_ms: i64,
}

impl WindowCount {
    /// What this instance knows was admitted: never more than the true total.
    fn admitted(&self) -> i64 {
        self.known + self.pending
    }

    /// The most that may have been counted, requests on their way to the shared row included.
    fn estimate(&self) -> i64 {
        self.known + self.in_flight + self.pending
    }

    /// Moves what is pending (and `extra`) onto the way to the shared row; the amount sent.
    fn send(&mut self, extra: i64) -> i64 {
        let amount = self.pending + extra;
        self.pending = 0;
        self.in_flight += amount;
        amount
    }

    /// The shared row answered a send of `amount` made in the window starting `start_ms`:
    /// with its `total`, or not at all (then `kept` of it stays pending, to send again).
    fn settle(&mut self, start_ms: i64, amount: i64, total: Option<i64>, kept: i64) {
        if self.start_ms != start_ms {
            return;
        }
        self.in_flight -= amount;
        match total {
            Some(total) => self.known = self.known.max(total),
            None => self.pending += kept,
        }
    }

    /// Whether one more request may be counted here without asking the shared row (several
    /// instances): while the known total stays out of the limit's last tenth, and this
    /// instance's unshared count within a quarter of what it knows is left before that tenth.
    /// Each instance so holds back at most a quarter of the room it last saw, a share that
    /// shrinks with every exchange as the total nears the limit.
    fn may_count_locally(&self, limit: i64) -> bool {
        let room = limit - limit / 10 - self.known;
        self.estimate() < limit - limit / 10 && self.pending + self.in_flight < room / 4
    }
}

/// A key's minute and day counts.
#[derive(Default)]
struct KeyCounts {
    windows: Mutex<[WindowCount; 2]>,
}

/// What the answer tells the caller about the limit closest to being reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: i64,
    pub remaining: i64,
    /// Seconds until the window resets.
    pub reset_seconds: i64,
}

impl RateLimitStatus {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from(self.reset_seconds));
    }
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No limit applies to the key.
    Unlimited,
    Allowed(RateLimitStatus),
    /// Over a limit: retry after `retry_after` seconds.
    Refused {
        status: RateLimitStatus,
        retry_after: i64,
    },
}

/// The limits that apply to one key: its own, else the configured default.
#[derive(Debug, Clone, Copy)]
struct Effective {
    /// Per window length (minute, day).
    limits: [Option<i64>; 2],
}

pub struct RateLimiter {
    defaults: RateLimitSettings,
    db: Db,
    clock: Arc<dyn Clock>,
    /// Several instances may share the database (PostgreSQL).
    shared: bool,
    keys: RwLock<HashMap<String, Arc<KeyCounts>>>,
    /// The batches' own connection (PostgreSQL), opened at the first batch and again after
    /// an error. Only one batch runs at a time.
    batch_connection: tokio::sync::Mutex<Option<RateCountConnection>>,
}

impl RateLimiter {
    pub fn new(defaults: RateLimitSettings, db: Db, clock: Arc<dyn Clock>) -> RateLimiter {
        let shared = !db.is_exclusive();
        RateLimiter { defaults, db, clock, shared, keys: RwLock::default(), batch_connection: Default::default() }
    }

    fn effective(&self, own: KeyRateLimits) -> Effective {
        let pick = |own: Option<i64>, default: Option<u64>| match own {
            Some(0) => None,
            Some(n) => Some(n),
            None => default.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
        };
        Effective { limits: [pick(own.per_minute, self.defaults.per_minute), pick(own.per_day, self.defaults.per_day)] }
    }

    fn counts_of(&self, key_id: &str) -> Arc<KeyCounts> {
        if let Some(counts) = self.keys.read().ok().and_then(|keys| keys.get(key_id).cloned()) {
            return counts;
        }
        let mut keys = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.entry(key_id.to_string()).or_default().clone()
    }

    /// Counts one request of a key and decides it. Fails open: if the shared counters cannot
    /// be read, the request is decided on what this instance knows.
    pub async fn admit(&self, key_id: &str, own: KeyRateLimits) -> Admission {
        let effective = self.effective(own);
        if effective.limits.iter().all(Option::is_none) {
            return Admission::Unlimited;
        }
        let now_ms = self.clock.now().timestamp_millis();
        let starts = [window_start(now_ms, MINUTE_SECONDS), window_start(now_ms, DAY_SECONDS)];
        let counts = self.counts_of(key_id);
        self.load_new_windows(key_id, &counts, &effective, starts).await;

        // Decide locally if every limited window is far enough from its limit.
        let mut over = false;
        let mut near = false;
        {
            let mut windows = lock(&counts);
            for (i, window) in windows.iter_mut().enumerate() {
                let Some(limit) = effective.limits[i] else { continue };
                window.used_ms = now_ms;
                // Alone on the database, everything on its way is admitted already.
                let used = if self.shared { window.admitted() } else { window.estimate() };
                if used >= limit {
                    over = true;
                } else if self.shared && !window.may_count_locally(limit) {
                    near = true;
                }
            }
            if !over && !near {
                for (i, window) in windows.iter_mut().enumerate() {
                    if effective.limits[i].is_some() {
                        window.pending += 1;
                    }
                }
                return self.answer(&windows, &effective, now_ms, false);
            }
            if over || !self.shared {
                return self.answer(&windows, &effective, now_ms, true);
            }
        }
        self.admit_on_shared_row(key_id, &counts, &effective, now_ms).await
    }

    /// Near the limit on a shared database: this request and what is pending go to the shared
    /// row in one atomic update, and the total decides.
    async fn admit_on_shared_row(
        &self,
        key_id: &str,
        counts: &KeyCounts,
        effective: &Effective,
        now_ms: i64,
    ) -> Admission {
        let mut additions = Vec::with_capacity(2);
        {
            let mut windows = lock(counts);
            for (i, window) in windows.iter_mut().enumerate() {
                if effective.limits[i].is_some() {
                    additions.push((i, self.window_id(key_id, i, window.start_ms), window.send(1)));
                }
            }
        }
        let rows: Vec<(RateWindow, i64)> = additions.iter().map(|(_, w, n)| (w.clone(), *n)).collect();
        let totals = match self.db.add_rate_counts(&rows).await {
            Ok(totals) => totals,
            Err(err) => {
                tracing::warn!(error = %err, "could not update shared rate counters; deciding locally");
                let mut windows = lock(counts);
                for (i, window, amount) in &additions {
                    windows[*i].settle(window.window_start, *amount, None, *amount);
                }
                return self.answer(&windows, effective, now_ms, false);
            }
        };
        let refused =
            additions.iter().zip(&totals).any(|((i, _, _), total)| effective.limits[*i].is_some_and(|l| *total > l));
        if refused {
            // A refused request is not counted.
            let take_back: Vec<(RateWindow, i64)> = additions.iter().map(|(_, w, _)| (w.clone(), 1)).collect();
            if let Err(err) = self.db.take_back_rate_counts(&take_back).await {
                tracing::warn!(error = %err, "could not take back a refused request's count");
            }
        }
        let mut windows = lock(counts);
        for ((i, window, amount), total) in additions.iter().zip(&totals) {
            windows[*i].settle(window.window_start, *amount, Some(total - i64::from(refused)), 0);
        }
        self.answer(&windows, effective, now_ms, refused)
    }

    /// Makes sure every limited window of the key is the current one, reading the shared
    /// count of a window this instance has not counted in yet.
    async fn load_new_windows(&self, key_id: &str, counts: &KeyCounts, effective: &Effective, starts: [i64; 2]) {
        let stale: Vec<usize> = {
            let windows = lock(counts);
            (0..2).filter(|&i| effective.limits[i].is_some() && windows[i].start_ms < starts[i]).collect()
        };
        for i in stale {
            let window = self.window_id(key_id, i, starts[i]);
            let known = match self.db.rate_count(&window).await {
                Ok(count) => count,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read a shared rate counter; counting from zero");
                    0
                }
            };
            let mut windows = lock(counts);
            let count = &mut windows[i];
            if count.start_ms < starts[i] {
                *count = WindowCount { start_ms: starts[i], known, ..WindowCount::default() };
            } else if count.start_ms == starts[i] {
                count.known = count.known.max(known);
            }
        }
    }

    fn window_id(&self, key_id: &str, index: usize, start_ms: i64) -> RateWindow {
        RateWindow { key_id: key_id.to_string(), window_seconds: WINDOW_SECONDS[index], window_start: start_ms }
    }

    /// The status of the limit closest to being reached; if refused, of the one to wait for.
    fn answer(&self, windows: &[WindowCount; 2], effective: &Effective, now_ms: i64, refused: bool) -> Admission {
        let mut closest: Option<RateLimitStatus> = None;
        let mut retry_after = 0;
        for (i, window) in windows.iter().enumerate() {
            let Some(limit) = effective.limits[i] else { continue };
            let end_ms = window.start_ms + WINDOW_SECONDS[i] * 1000;
            let reset_seconds = ((end_ms - now_ms).max(0) + 999) / 1000;
            let remaining = (limit - window.estimate()).max(0);
            if refused && window.estimate() >= limit {
                retry_after = retry_after.max(reset_seconds.max(1));
            }
            let status = RateLimitStatus { limit, remaining, reset_seconds };
            if closest.is_none_or(|c| remaining < c.remaining) {
                closest = Some(status);
            }
        }
        let Some(mut status) = closest else { return Admission::Unlimited };
        if refused {
            status.remaining = 0;
            // The window that refused is the one to report.
            if let Some((i, window)) =
                windows.iter().enumerate().find(|(i, w)| effective.limits[*i].is_some_and(|l| w.estimate() >= l))
            {
                let end_ms = window.start_ms + WINDOW_SECONDS[i] * 1000;
                status.limit = effective.limits[i].unwrap_or(status.limit);
                status.reset_seconds = ((end_ms - now_ms).max(0) + 999) / 1000;
            }
            return Admission::Refused { status, retry_after: retry_after.max(1) };
        }
        Admission::Allowed(status)
    }

    /// Adds what was counted locally to the shared rows and reads the totals back; with
    /// `refresh_all`, also reads back every window used in the last minute.
    pub async fn flush(&self, refresh_all: bool) {
        let recently = self.clock.now().timestamp_millis() - MINUTE_SECONDS * 1000;
        let keys: Vec<(String, Arc<KeyCounts>)> = match self.keys.read() {
            Ok(keys) => keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        let mut additions: Vec<(RateWindow, i64)> = Vec::new();
        let mut owners: Vec<(Arc<KeyCounts>, usize)> = Vec::new();
        for (key_id, counts) in &keys {
            let mut windows = lock(counts);
            for (i, window) in windows.iter_mut().enumerate() {
                if window.start_ms == 0 || !(window.pending > 0 || (refresh_all && window.used_ms >= recently)) {
                    continue;
                }
                additions.push((self.window_id(key_id, i, window.start_ms), window.send(0)));
                owners.push((counts.clone(), i));
            }
        }
        if additions.is_empty() {
            return;
        }
        let totals = match self.add_batch(&additions).await {
            Ok(totals) => totals.into_iter().map(Some).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "could not add to shared rate counters; will retry");
                vec![None; additions.len()]
            }
        };
        for (((counts, i), (window, amount)), total) in owners.iter().zip(&additions).zip(totals) {
            lock(counts)[*i].settle(window.window_start, *amount, total, *amount);
        }
    }

    /// Sends a batch over the batches' own connection (PostgreSQL), opening it if needed, or
    /// through the pool (SQLite, or while no connection of its own can be opened).
    async fn add_batch(&self, additions: &[(RateWindow, i64)]) -> DbResult<Vec<i64>> {
        let mut held = self.batch_connection.lock().await;
        if held.is_none() {
            match self.db.rate_count_connection().await {
                Ok(connection) => *held = connection,
                Err(err) => {
                    tracing::warn!(error = %err, "could not open a connection for rate counters; using the pool")
                }
            }
        }
        let Some(connection) = held.as_mut() else { return self.db.add_rate_counts(additions).await };
        let totals = connection.add_rate_counts(additions).await;
        if totals.is_err() {
            // The connection may be broken: the next batch opens another.
            *held = None;
        }
        totals
    }

    /// Forgets keys whose windows all ended, and shared counts older than a day's window.
    async fn prune(&self) {
        let now_ms = self.clock.now().timestamp_millis();
        let day_start = window_start(now_ms, DAY_SECONDS);
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|_, counts| {
                let windows = lock(counts);
                windows.iter().any(|w| w.pending > 0 || w.in_flight > 0) || windows[1].start_ms >= day_start
            });
        }
        if let Err(err) = self.db.delete_rate_counts_before(day_start - DAY_SECONDS * 1000).await {
            tracing::warn!(error = %err, "could not delete old rate counters");
        }
    }

    /// The configured default per minute and per day (`None`: unlimited).
    pub fn defaults(&self) -> (Option<u64>, Option<u64>) {
        (self.defaults.per_minute, self.defaults.per_day)
    }
}

const WINDOW_SECONDS: [i64; 2] = [MINUTE_SECONDS, DAY_SECONDS];

/// Largest per-key limit accepted.
pub const MAX_KEY_LIMIT: i64 = 1_000_000_000_000;

/// A key's own limit as an operator types it: empty follows the default, `0` is no limit.
pub fn parse_key_limit(text: Option<&str>, field: &str) -> Result<Option<i64>, crate::domain::FieldError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (0..=MAX_KEY_LIMIT).contains(&n) => Ok(Some(n)),
            _ => Err(crate::domain::FieldError::invalid(
                field,
                format!("must be a whole number from 0 (no limit) to {MAX_KEY_LIMIT}, or empty for the default"),
            )),
        },
    }
}

fn window_start(now_ms: i64, seconds: i64) -> i64 {
    now_ms - now_ms.rem_euclid(seconds * 1000)
}

fn lock(counts: &KeyCounts) -> std::sync::MutexGuard<'_, [WindowCount; 2]> {
    counts.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Flushes local counts in the background, every flush interval.
pub fn spawn_flusher(limiter: Arc<RateLimiter>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = match limiter.shared {
            true => limiter.defaults.flush_interval,
            false => limiter.defaults.flush_interval.max(SQLITE_FLUSH_INTERVAL),
        };
        let mut ticks: u32 = 0;
        let mut pruned = Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            ticks = ticks.wrapping_add(1);
            limiter.flush(limiter.shared && ticks.is_multiple_of(REFRESH_EVERY)).await;
            if pruned.elapsed() >= PRUNE_INTERVAL {
                pruned = Instant::now();
                limiter.prune().await;
            }
        }
    })
}

/// Counts every request made with an API key against the key's limits: over a limit it is
/// answered 429 `rate_limit_exceeded` with `Retry-After`; otherwise the answer carries the
/// `RateLimit-*` headers when a limit applies. Requests without a valid API key pass through
/// untouched, to be refused by the handler's own authentication as before.
pub async fn limit_api_keys(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let secret = match bearer_secret(request.headers()) {
        Ok(secret) if secret.starts_with(KEY_PREFIX) => secret,
        _ => return next.run(request).await,
    };
    let Ok(key) = state.keys.authenticate_key(state.engine.db(), secret, state.engine.clock()).await else {
        return next.run(request).await;
    };
    let admission = state.rate_limits.admit(&key.key_id, key.rate_limits).await;
    request.extensions_mut().insert(key);
    match admission {
        Admission::Unlimited => next.run(request).await,
        Admission::Allowed(status) => {
            let mut response = next.run(request).await;
            status.write_headers(response.headers_mut());
            response
        }
        Admission::Refused { status, retry_after } => {
            let mut response = AppError::RateLimited { retry_after }.into_response();
            status.write_headers(response.headers_mut());
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_on_the_minute_and_at_midnight_utc() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:34:56.789Z").unwrap().timestamp_millis();
        let minute = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:34:00Z").unwrap().timestamp_millis();
        let day = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z").unwrap().timestamp_millis();
        assert_eq!(window_start(at, MINUTE_SECONDS), minute);
        assert_eq!(window_start(at, DAY_SECONDS), day);
        assert_eq!(window_start(minute, MINUTE_SECONDS), minute, "a window includes its start");
    }

    #[test]
    fn an_instance_counts_locally_only_far_from_the_limit_and_within_its_share() {
        let mut window = WindowCount { start_ms: 1, known: 0, ..WindowCount::default() };
        // 1000: the last tenth starts at 900; a quarter of the 900 left is 225.
        for _ in 0..225 {
            assert!(window.may_count_locally(1000));
            window.pending += 1;
        }
        assert!(!window.may_count_locally(1000), "a quarter of the room is held back: share it first");
        let sent = window.send(0);
        window.settle(1, sent, Some(800), 0);
        assert_eq!((window.known, window.pending, window.in_flight), (800, 0, 0));
        // 100 left before the last tenth: a quarter is 25.
        window.pending = 24;
        assert!(window.may_count_locally(1000));
        window.pending = 25;
        assert!(!window.may_count_locally(1000));
        window.settle(1, 0, Some(900), 0);
        window.pending = 0;
        assert!(!window.may_count_locally(1000), "the last tenth is decided on the shared row");
        // Tiny limits always ask the shared row.
        assert!(!WindowCount::default().may_count_locally(3));
    }

    #[test]
    fn a_failed_send_keeps_its_count_and_a_settled_one_of_an_old_window_is_dropped() {
        let mut window = WindowCount { start_ms: 1, known: 10, pending: 3, ..WindowCount::default() };
        let sent = window.send(1);
        assert_eq!((sent, window.pending, window.in_flight, window.estimate()), (4, 0, 4, 14));
        window.settle(1, sent, None, 3);
        assert_eq!((window.pending, window.in_flight), (3, 0));
        let sent = window.send(0);
        window.start_ms = 2;
        window.in_flight = 0;
        window.settle(1, sent, Some(500), 0);
        assert_eq!(window.known, 10, "a new window ignores the old one's total");
    }

    #[test]
    fn key_limits_typed_by_operators() {
        assert_eq!(parse_key_limit(None, "f").unwrap(), None);
        assert_eq!(parse_key_limit(Some("  "), "f").unwrap(), None);
        assert_eq!(parse_key_limit(Some("0"), "f").unwrap(), Some(0));
        assert_eq!(parse_key_limit(Some("1000"), "f").unwrap(), Some(1000));
        for bad in ["-1", "1.5", "x", "1000000000001"] {
            assert_eq!(parse_key_limit(Some(bad), "f").unwrap_err().field(), "f", "{bad}");
        }
    }
}
