//! The hot path: recording usage into window counters and judging checks from them. Owns
//! the in-memory state and is the only place that decides allowed or denied.

pub mod audit;
pub mod balances;
pub mod cache;
mod consume;
mod group_commit;
pub mod limit_usage;
pub mod listener;
pub mod query;
pub mod reservations;
mod rolling;
pub mod rules;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::db::events::RecordedEvent;
use crate::db::projects::Project;
use crate::db::{Db, DbError, DbResult};
use crate::domain::customers::{Customer, CUSTOMER_ID_PREFIX};
use crate::domain::events::NewEvent;
use crate::domain::limit_reservations::held_by_limit;
use crate::domain::limits::{governing_limits, Limit, LimitStatus};
use crate::domain::meters::Counter;
use crate::domain::quantity::Quantity;
use crate::domain::recent_windows;
use crate::domain::usage::CounterKey;
use crate::telemetry::Metrics;
use cache::{Cache, WriteGuard};
use group_commit::GroupCommitter;

/// The answer to "may this customer do more work now?".
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    pub allowed: bool,
    /// Why not, when not allowed: `limit_exceeded` or `insufficient_balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The customer's `cust_…` id; the `externalId` as sent while no usage has been recorded
    /// for it (it is created by its first record).
    pub customer_id: String,
    pub limits: Vec<LimitStatus>,
    /// Present when the check named balances: whether each can cover its amount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub balances: Vec<BalanceStatus>,
    /// The instant up to which the usage this answer counted is known to be current: every
    /// record acknowledged before it is included. On SQLite the instance's memory is the
    /// truth, so it is the time of the check; on PostgreSQL, where other instances record too,
    /// it is how far this instance has heard their changes (typically a few milliseconds to a
    /// tenth of a second behind), or the time of the check when the counters were read.
    #[serde(serialize_with = "rfc3339")]
    pub as_of: DateTime<Utc>,
    /// With `mode: consume`, when the event was recorded: its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// With `mode: consume`, when the event was recorded: whether its idempotency key was
    /// seen before (then it counted once, the first time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// With `mode: reserve`, when allowed: the `lres_…` reservation holding `requested` on
    /// every limit listed (and each balance's amount), to commit, release or extend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// With `mode: reserve`, when allowed: when the holds lapse unless extended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The form `DateTime`'s own `Serialize` writes, at a fraction of its cost: that one goes
/// through `Display` a digit at a time, which showed in every check's profile.
fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A balance the work will draw on, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRequirement {
    pub name: String,
    pub amount: i64,
}

/// Whether a named balance covers the amount a check asked about.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceStatus {
    pub name: String,
    /// Null when the customer has no balance of that name (then it is not sufficient).
    pub balance_id: Option<String>,
    pub amount: i64,
    pub available_balance: i64,
    pub sufficient: bool,
}

/// What a check asks about.
pub struct CheckQuery<'a> {
    pub customer_ref: &'a str,
    pub dimensions: &'a BTreeMap<String, String>,
    pub requested: Option<Quantity>,
    pub balances: &'a [BalanceRequirement],
}

pub struct Engine {
    db: Db,
    clock: Arc<dyn Clock>,
    /// Customers, limits and counters.
    cache: Arc<Cache>,
    /// Names this instance among those sharing a PostgreSQL database.
    instance: String,
    committer: GroupCommitter,
    metrics: Metrics,
    max_backdate: Duration,
}

impl Engine {
    /// Starts the engine's writer, on a thread of its own.
    pub fn new(db: Db, clock: Arc<dyn Clock>, max_backdate_days: u32) -> Self {
        // The only writer may trust its memory from the start; an instance sharing PostgreSQL
        // only once its listener hears the others (see `listener`).
        let cache = Arc::new(Cache::new(db.is_exclusive()));
        let metrics = Metrics::default();
        let committer = GroupCommitter::start(db.clone(), cache.clone(), clock.clone(), metrics.record_groups());
        let max_backdate = Duration::days(i64::from(max_backdate_days));
        let instance = format!("{:016x}", rand::random::<u64>());
        Engine { db, clock, cache, instance, committer, metrics, max_backdate }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The clock itself, for work that reads it only now and then.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// How many customers and counters the check path holds in memory.
    pub fn cache_sizes(&self) -> (usize, usize) {
        self.cache.sizes()
    }

    /// What this engine measured, for `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where other instances' changes arrive (PostgreSQL).
    pub(crate) fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    pub fn max_backdate(&self) -> Duration {
        self.max_backdate
    }

    /// Guards a configuration change: dropped once the change committed (or failed), it clears
    /// what the check path holds in memory, which then reloads on demand.
    pub fn begin_write(&self) -> WriteGuard {
        self.cache.invalidate_after()
    }

    /// Records validated events atomically, sharing the transaction with concurrent records
    /// (group commit), and folds them into the live counters. Answers once committed.
    pub async fn record(&self, project: &Arc<Project>, events: Vec<NewEvent>) -> DbResult<Vec<RecordedEvent>> {
        let recorded = self.committer.record(project.clone(), events).await?;
        let duplicates = recorded.iter().filter(|event| event.duplicate).count();
        self.metrics.events_recorded(duplicates, recorded.len() - duplicates);
        Ok(recorded)
    }

    /// Record requests waiting for the next group commit.
    pub fn record_queue_depth(&self) -> usize {
        self.committer.queued()
    }

    /// Commits what is queued for the writer and stops it; records after this fail. Call once
    /// no request can arrive any more (the listeners are drained).
    pub async fn shutdown(&self) {
        self.committer.close().await;
    }

    /// Judges a check from the pre-aggregated counters; never reads raw events.
    pub async fn check(&self, project: &Project, query: &CheckQuery<'_>) -> DbResult<CheckResponse> {
        let now = self.now();
        // Whether anything had to be read from the database: the share of checks answered
        // from memory alone is what keeps the hot path fast.
        let mut read_database = false;
        // A customer nobody has recorded usage for yet has none: it is answered as zero usage
        // under the project's defaults, and only recording creates it, so checks with random
        // ids cannot fill the database.
        let mut customer_read = false;
        let (customer, known) = match self.customer_for_check(project, query.customer_ref, &mut customer_read).await? {
            Some(customer) => (customer, true),
            None if query.customer_ref.starts_with(CUSTOMER_ID_PREFIX) => {
                return Err(DbError::NotFound { resource: "customer", id: query.customer_ref.to_string() })
            }
            None => (Arc::new(Customer::not_yet_created(&project.id, query.customer_ref, now)), false),
        };
        read_database |= customer_read;
        let limits = self.limits(project, &mut read_database).await?;
        let zone = customer.window_zone(project.timezone);
        let mut applicable: Vec<&Limit> = governing_limits(&limits, &customer.id);
        applicable.retain(|limit| limit.applies_to_check(query.dimensions));
        let windows: Vec<_> = applicable
            .iter()
            .map(|limit| recent_windows::window_at(limit.period, now, zone, customer.billing_cycle_start))
            .collect();
        // Rolling limits are judged from their buckets (`rolling_buckets`), not one counter.
        let keys: Vec<CounterKey> = applicable
            .iter()
            .zip(&windows)
            .filter(|(limit, _)| limit.rolling_window().is_none())
            .map(|(limit, window)| CounterKey {
                limit_id: limit.id.clone(),
                customer_id: customer.id.clone(),
                window_start: window.start_ms(),
            })
            .collect();
        let mut counters_read = false;
        let counters =
            if known { self.counters(&customer.id, keys, &mut counters_read).await? } else { vec![None; keys.len()] };
        let rolling = self.rolling_buckets(&customer.id, known, &applicable, now, &mut counters_read).await?;
        read_database |= counters_read;
        // Usage known from memory (counters, or that the customer has none yet) on a shared
        // database is as current as what was heard.
        let usage_from_memory = match known {
            true => !applicable.is_empty() && !counters_read,
            false => !customer_read,
        };
        let as_of = match usage_from_memory && !self.db.is_exclusive() {
            true => self.cache.current_through().map_or(now, |heard| heard.min(now)),
            false => now,
        };
        let holds = match known && !applicable.is_empty() {
            true => Some(self.holds(&customer.id, &mut read_database).await?),
            false => None,
        };
        let held = holds.as_deref().map(|holds| held_by_limit(holds, now.timestamp_millis())).unwrap_or_default();
        let (mut counters, mut rolling) = (counters.into_iter(), rolling.into_iter());
        let statuses: Vec<LimitStatus> = applicable
            .iter()
            .zip(&windows)
            .map(|(limit, window)| {
                let held = held.get(limit.id.as_str()).copied().unwrap_or_default();
                // Counters and buckets come in the order of the limits that have them.
                let (recorded, buckets) = match limit.rolling_window() {
                    Some(_) => (Quantity::ZERO, rolling.next().unwrap_or_default()),
                    None => (counters.next().flatten().map_or(Quantity::ZERO, |c| c.value), Vec::new()),
                };
                LimitStatus::at(limit, now, window, recorded, &buckets, held, query.requested)
            })
            .collect();
        let within_limits = statuses.iter().all(|status| status.passes(query.requested));
        let mut balances = Vec::with_capacity(query.balances.len());
        for requirement in query.balances {
            let balance = match known {
                true => self.db.balance_by_name(&project.id, &customer.id, &requirement.name).await?,
                false => None,
            };
            let available_balance = balance.as_ref().map_or(0, |b| b.funds().available());
            balances.push(BalanceStatus {
                name: requirement.name.clone(),
                balance_id: balance.map(|b| b.id),
                amount: requirement.amount,
                available_balance,
                sufficient: requirement.amount <= available_balance,
            });
        }
        let funded = balances.iter().all(|b| b.sufficient && b.balance_id.is_some());
        let reason = match (within_limits, funded) {
            (false, _) => Some("limit_exceeded".to_string()),
            (true, false) => Some("insufficient_balance".to_string()),
            (true, true) => None,
        };
        self.metrics.check_answered(read_database || !balances.is_empty(), reason.as_deref());
        Ok(CheckResponse {
            allowed: reason.is_none(),
            reason,
            customer_id: if known { customer.id.clone() } else { customer.external_id.clone() },
            limits: statuses,
            balances,
            as_of,
            event_id: None,
            duplicate: None,
            reservation_id: None,
            expires_at: None,
        })
    }

    /// The customer a check names, if it exists. Absences are remembered too, and forgotten
    /// when a customer is created (here, or announced by another instance).
    async fn customer_for_check(
        &self,
        project: &Project,
        reference: &str,
        read_database: &mut bool,
    ) -> DbResult<Option<Arc<Customer>>> {
        if let Some(known) = self.cache.customer(&project.id, reference) {
            return Ok(known);
        }
        *read_database = true;
        let permit = self.cache.permit();
        let slot = self.db.writer_slot().await;
        let Some(customer) = self.db.customer(&project.id, reference).await? else {
            // Remembered until a creation: by this instance's records, or announced by others.
            self.cache.fill_absent(&slot, permit, &project.id, reference);
            return Ok(None);
        };
        let customer = Arc::new(customer);
        self.cache.fill_customer(&slot, permit, &project.id, reference, customer.clone());
        Ok(Some(customer))
    }

    async fn limits(&self, project: &Project, read_database: &mut bool) -> DbResult<Arc<Vec<Limit>>> {
        if let Some(limits) = self.cache.limits(&project.id) {
            return Ok(limits);
        }
        *read_database = true;
        let permit = self.cache.permit();
        let slot = self.db.writer_slot().await;
        let limits = Arc::new(self.db.all_limits(&project.id).await?);
        self.cache.fill_limits(&slot, permit, &project.id, limits.clone());
        Ok(limits)
    }

    /// The counters of one customer's keys: from memory, else in one query.
    async fn counters(
        &self,
        customer_id: &str,
        keys: Vec<CounterKey>,
        read_database: &mut bool,
    ) -> DbResult<Vec<Option<Counter>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cached = self.cache.counters(&keys);
        if cached.iter().all(Option::is_some) {
            return Ok(cached.into_iter().flatten().map(|held| held.map(|s| s.counter)).collect());
        }
        *read_database = true;
        let permit = self.cache.permit();
        let slot = self.db.writer_slot().await;
        let counters = self.db.counters(customer_id, &keys).await?;
        for (key, counter) in keys.into_iter().zip(&counters) {
            self.cache.fill_counter(&slot, permit, key, *counter);
        }
        Ok(counters.into_iter().map(|stored| stored.map(|s| s.counter)).collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    #[derive(Serialize)]
    struct Written(#[serde(serialize_with = "super::rfc3339")] DateTime<Utc>);

    #[test]
    fn as_of_is_written_exactly_as_date_times_write_themselves() {
        for millis in [0, 1_795_564_800_000, 1_795_564_800_123, 1_795_564_859_999, -86_400_001] {
            let at = DateTime::from_timestamp_millis(millis).unwrap();
            assert_eq!(serde_json::to_string(&Written(at)).unwrap(), serde_json::to_string(&at).unwrap());
        }
        let finer = DateTime::from_timestamp(1_795_564_800, 123_456_789).unwrap();
        assert_eq!(serde_json::to_string(&Written(finer)).unwrap(), serde_json::to_string(&finer).unwrap());
    }
}
