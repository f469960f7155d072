//! The hot path: recording usage into window counters and judging checks from them. Owns
//! the in-memory state and is the only place that decides allowed or denied.

pub mod cache;
pub mod query;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::db::events::RecordedEvent;
use crate::db::projects::Project;
use crate::db::{Db, DbResult};
use crate::domain::customers::Customer;
use crate::domain::events::NewEvent;
use crate::domain::limits::{governing_limits, Limit, LimitStatus};
use crate::domain::meters::Counter;
use crate::domain::quantity::Quantity;
use crate::domain::usage::CounterKey;
use crate::domain::windows::window_containing;
use cache::{Cache, WriteGuard};

/// The answer to "may this customer do more work now?".
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    pub allowed: bool,
    /// Why not, when not allowed: `limit_exceeded` or `insufficient_balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub customer_id: String,
    pub limits: Vec<LimitStatus>,
    /// Present when the check named balances: whether each can cover its amount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub balances: Vec<BalanceStatus>,
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
    cache: Option<Arc<Cache>>,
    max_backdate: Duration,
}

impl Engine {
    pub fn new(db: Db, clock: Arc<dyn Clock>, max_backdate_days: u32) -> Self {
        let cache = db.is_exclusive().then(|| Arc::new(Cache::default()));
        Engine { db, clock, cache, max_backdate: Duration::days(i64::from(max_backdate_days)) }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn max_backdate(&self) -> Duration {
        self.max_backdate
    }

    /// Announces a write that may change what the check path reads. Finish it with the
    /// counter changes, or drop it to invalidate the cache (after a configuration change).
    pub fn begin_write(&self) -> WriteGuard {
        match &self.cache {
            Some(cache) => cache.begin_write(),
            None => WriteGuard::none(),
        }
    }

    /// Records validated events atomically and folds them into the live counters.
    pub async fn record(&self, project: &Project, events: &[NewEvent]) -> DbResult<Vec<RecordedEvent>> {
        let guard = self.begin_write();
        let outcome = self.db.record_events(project, events, self.now()).await?;
        guard.finish_with_counters(&outcome.counter_updates);
        Ok(outcome.events)
    }

    /// Judges a check from the pre-aggregated counters; never reads raw events.
    pub async fn check(&self, project: &Project, query: &CheckQuery<'_>) -> DbResult<CheckResponse> {
        let now = self.now();
        let customer = self.customer_for_check(project, query.customer_ref, now).await?;
        let limits = self.limits(project).await?;
        let zone = customer.window_zone(project.timezone);
        let applicable: Vec<&Limit> = governing_limits(&limits, &customer.id)
            .into_iter()
            .filter(|limit| limit.applies_to_check(query.dimensions))
            .collect();
        let windows: Vec<_> = applicable
            .iter()
            .map(|limit| window_containing(limit.period, now, zone, customer.billing_cycle_start))
            .collect();
        let keys: Vec<CounterKey> = applicable
            .iter()
            .zip(&windows)
            .map(|(limit, window)| CounterKey {
                limit_id: limit.id.clone(),
                customer_id: customer.id.clone(),
                window_start: window.start_ms(),
            })
            .collect();
        let counters = self.counters(keys).await?;
        let statuses: Vec<LimitStatus> = applicable
            .iter()
            .zip(&windows)
            .zip(counters)
            .map(|((limit, window), counter)| {
                LimitStatus::new(limit, counter.map_or(Quantity::ZERO, |c| c.value), window)
            })
            .collect();
        let within_limits = statuses.iter().all(|status| status.passes(query.requested));
        let mut balances = Vec::with_capacity(query.balances.len());
        for requirement in query.balances {
            let balance = self.db.balance_by_name(&project.id, &customer.id, &requirement.name).await?;
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
        Ok(CheckResponse {
            allowed: reason.is_none(),
            reason,
            customer_id: customer.id.clone(),
            limits: statuses,
            balances,
        })
    }

    /// The customer a check names, created on first use.
    async fn customer_for_check(
        &self,
        project: &Project,
        reference: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Arc<Customer>> {
        if let Some(customer) = self.cache.as_ref().and_then(|c| c.customer(&project.id, reference)) {
            return Ok(customer);
        }
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        let customer = match self.db.customer(&project.id, reference).await? {
            Some(customer) => customer,
            // A new customer changes nothing the cache holds (absences are not cached), so this
            // write needs no announcement.
            None => self.db.ensure_customer(&project.id, reference, now.timestamp_millis()).await?,
        };
        let customer = Arc::new(customer);
        if let Some(cache) = &self.cache {
            cache.fill_customer(ticket, &project.id, reference, customer.clone());
        }
        Ok(customer)
    }

    async fn limits(&self, project: &Project) -> DbResult<Arc<Vec<Limit>>> {
        if let Some(limits) = self.cache.as_ref().and_then(|c| c.limits(&project.id)) {
            return Ok(limits);
        }
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        let limits = Arc::new(self.db.all_limits(&project.id).await?);
        if let Some(cache) = &self.cache {
            cache.fill_limits(ticket, &project.id, limits.clone());
        }
        Ok(limits)
    }

    async fn counters(&self, keys: Vec<CounterKey>) -> DbResult<Vec<Option<Counter>>> {
        let cached = match &self.cache {
            Some(cache) => cache.counters(&keys),
            None => vec![None; keys.len()],
        };
        if cached.iter().all(Option::is_some) {
            return Ok(cached.into_iter().flatten().collect());
        }
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        let mut counters = Vec::with_capacity(keys.len());
        for (key, cached) in keys.into_iter().zip(cached) {
            let counter = match cached {
                Some(counter) => counter,
                None => {
                    let counter = self.db.counter(&key).await?;
                    if let Some(cache) = &self.cache {
                        cache.fill_counter(ticket, key, counter);
                    }
                    counter
                }
            };
            counters.push(counter);
        }
        Ok(counters)
    }
}
