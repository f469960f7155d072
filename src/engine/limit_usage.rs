//! Who is closest to a limit: every governed customer's usage in their current window.

use std::collections::BTreeMap;

use chrono::Duration;

use super::Engine;
use crate::db::projects::Project;
use crate::db::DbResult;
use crate::domain::customers::Customer;
use crate::domain::limits::{governing_limits, Limit, LimitStatus};
use crate::domain::quantity::Quantity;
use crate::domain::windows::{Period, Rolling};

/// One customer's state under a limit in their current window.
pub struct CustomerLimitUsage {
    pub customer: Customer,
    pub status: LimitStatus,
    pub window_start: chrono::DateTime<chrono::Utc>,
}

/// How far back a customer's current window can start, whatever their timezone and billing
/// anchor: the longest window of the period and a day for the widest timezone offsets.
fn longest_window(period: Period) -> Option<Duration> {
    let longest = match period {
        Period::Minute => Duration::minutes(1),
        Period::Hour => Duration::hours(1),
        Period::Day => Duration::hours(25),
        Period::Week => Duration::days(7) + Duration::hours(1),
        Period::Month => Duration::days(31) + Duration::hours(1),
        Period::Annual => Duration::days(366) + Duration::hours(1),
        Period::AllTime | Period::Concurrent => return None,
    };
    Some(longest + Duration::days(1))
}

impl Engine {
    /// The customers `limit` governs that have usage in their current window (reservations'
    /// live holds included), most used first, at most `count` of them. Read from the stored
    /// counters and holds, never from events.
    pub async fn limit_usage(
        &self,
        project: &Project,
        limit: &Limit,
        count: usize,
    ) -> DbResult<Vec<CustomerLimitUsage>> {
        let now = self.now();
        if let Some(rolling) = limit.rolling_window() {
            return self.rolling_limit_usage(project, limit, rolling, count).await;
        }
        let since_ms = longest_window(limit.period).map_or(i64::MIN, |back| (now - back).timestamp_millis());
        let limits = self.db.all_limits(&project.id).await?;
        let held = self.db.held_on_limit(&limit.id, now.timestamp_millis()).await?;
        let usage: Vec<CustomerLimitUsage> = self
            .db
            .limit_counters_since(&limit.id, since_ms)
            .await?
            .into_iter()
            .filter_map(|(customer, window_start, used)| {
                // A default overridden by the customer's own limit does not govern them.
                if !governing_limits(&limits, &customer.id).iter().any(|governing| governing.id == limit.id) {
                    return None;
                }
                let zone = customer.window_zone(project.timezone);
                let window = limit.window_at(now, zone, customer.billing_cycle_start);
                let held = held.get(&customer.id).copied().unwrap_or_default();
                (window.start_ms() == window_start).then(|| CustomerLimitUsage {
                    status: LimitStatus::new(limit, used, held, &window),
                    window_start: window.start,
                    customer,
                })
            })
            // A reserve leaves a counter of nothing behind: that is no usage.
            .filter(|entry| !entry.status.used.is_zero())
            .collect();
        Ok(most_used(usage, count))
    }

    /// `limit_usage` of a rolling limit: every customer's buckets in the window at now.
    async fn rolling_limit_usage(
        &self,
        project: &Project,
        limit: &Limit,
        rolling: Rolling,
        count: usize,
    ) -> DbResult<Vec<CustomerLimitUsage>> {
        let now = self.now();
        let window = rolling.window_at(now);
        let limits = self.db.all_limits(&project.id).await?;
        let mut customers: BTreeMap<String, (Customer, Vec<(i64, Quantity)>)> = BTreeMap::new();
        for (customer, window_start, used) in self.db.limit_counters_since(&limit.id, window.start_ms()).await? {
            if rolling.holds(now, window_start) {
                customers
                    .entry(customer.id.clone())
                    .or_insert_with(|| (customer, Vec::new()))
                    .1
                    .push((window_start, used));
            }
        }
        let usage = customers
            .into_values()
            .filter(|(customer, _)| {
                governing_limits(&limits, &customer.id).iter().any(|governing| governing.id == limit.id)
            })
            .map(|(customer, buckets)| CustomerLimitUsage {
                status: LimitStatus::rolling(limit, rolling, now, &buckets, Quantity::ZERO, None),
                window_start: window.start,
                customer,
            })
            .collect();
        Ok(most_used(usage, count))
    }
}

/// The `count` customers closest to the limit, most used first.
fn most_used(mut usage: Vec<CustomerLimitUsage>, count: usize) -> Vec<CustomerLimitUsage> {
    usage.sort_by(|a, b| b.status.used.cmp(&a.status.used).then_with(|| a.customer.id.cmp(&b.customer.id)));
    usage.truncate(count);
    usage
}
