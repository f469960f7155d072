//! How one event feeds the window counters of the limits it counts toward.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::customers::Customer;
use super::limits::{counted_limits, governing_limits, Limit, LimitStatus};
use super::meters::{Aggregation, Counter, Meter};
use super::quantity::Quantity;
use super::webhooks::{reached_thresholds, EventType};
use super::windows::{Period, Window};

/// Identifies one counter: a limit's usage by one customer in one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    pub limit_id: String,
    pub customer_id: String,
    /// Window start in Unix milliseconds (0 for `all_time`).
    pub window_start: i64,
}

/// A change to fold into a counter with the limit's meter aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterUpdate {
    pub key: CounterKey,
    pub aggregation: Aggregation,
    pub counter: Counter,
}

impl CounterUpdate {
    /// The counter once this update is folded into its stored state (`None`: no row yet),
    /// exactly as the database's upsert stores it.
    pub fn apply_to(&self, current: Option<StoredCounter>) -> StoredCounter {
        StoredCounter {
            counter: self.aggregation.merge(current.map(|stored| stored.counter), self.counter),
            version: current.map_or(1, |stored| stored.version + 1),
        }
    }
}

/// A counter as stored, with the version its latest change gave it: of two states of one
/// counter, the higher version is the newer, whichever was heard of first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCounter {
    pub counter: Counter,
    pub version: i64,
}

/// What an event describes, as far as counters care.
#[derive(Clone, Copy)]
pub struct Usage<'a> {
    pub event_type: &'a str,
    pub dimensions: &'a BTreeMap<String, String>,
    pub quantities: &'a BTreeMap<String, Quantity>,
    pub occurred_at: DateTime<Utc>,
}

/// One event's change to one counter, its key borrowed from the limit and the customer: a
/// `CounterUpdate` before its key is owned. A group folds its events' contributions into one
/// update per counter and so clones each key once, not once per event.
#[derive(Debug, Clone, Copy)]
pub struct Contribution<'a> {
    pub limit_id: &'a str,
    pub customer_id: &'a str,
    pub window_start: i64,
    pub aggregation: Aggregation,
    pub counter: Counter,
}

impl Contribution<'_> {
    pub fn to_update(&self) -> CounterUpdate {
        CounterUpdate {
            key: CounterKey {
                limit_id: self.limit_id.to_string(),
                customer_id: self.customer_id.to_string(),
                window_start: self.window_start,
            },
            aggregation: self.aggregation,
            counter: self.counter,
        }
    }

    /// The order of `CounterKey`. Most keys a group compares borrow the same limit's or the same
    /// customer's id, which are equal without reading them.
    pub fn key_cmp(&self, other: &Contribution<'_>) -> Ordering {
        let ids = |a: &str, b: &str| if std::ptr::eq(a, b) { Ordering::Equal } else { a.cmp(b) };
        ids(self.limit_id, other.limit_id)
            .then_with(|| ids(self.customer_id, other.customer_id))
            .then(self.window_start.cmp(&other.window_start))
    }
}

impl CounterUpdate {
    pub fn contribution(&self) -> Contribution<'_> {
        Contribution {
            limit_id: &self.key.limit_id,
            customer_id: &self.key.customer_id,
            window_start: self.key.window_start,
            aggregation: self.aggregation,
            counter: self.counter,
        }
    }
}

/// What one event contributes to counters: one contribution per limit it counts toward, in
/// the window of the event's own timestamp (so backdated events land where they belong).
pub fn contributions<'a>(
    limits: &'a [Limit],
    meters: &'a HashMap<&str, &Meter>,
    customer: &'a Customer,
    project_zone: Tz,
    usage: Usage<'a>,
) -> impl Iterator<Item = Contribution<'a>> + 'a {
    let zone = customer.window_zone(project_zone);
    counted_limits(limits, &customer.id)
        // Only reservations in flight count toward a concurrency limit.
        .filter(move |limit| limit.period != Period::Concurrent && limit.counts(usage.dimensions))
        .filter_map(move |limit| {
            let meter = meters.get(limit.meter_id.as_str())?;
            if !meter.matches(usage.event_type, usage.dimensions) {
                return None;
            }
            let value = meter.contribution(usage.quantities)?;
            Some(Contribution {
                limit_id: &limit.id,
                customer_id: &customer.id,
                window_start: limit.counter_start_ms(usage.occurred_at, zone, customer.billing_cycle_start),
                aggregation: meter.aggregation,
                counter: Counter { value, latest_at: usage.occurred_at.timestamp_millis() },
            })
        })
}

/// The counter updates one event causes (see `contributions`).
pub fn counter_updates(
    limits: &[Limit],
    meters: &HashMap<&str, &Meter>,
    customer: &Customer,
    project_zone: Tz,
    usage: &Usage<'_>,
) -> Vec<CounterUpdate> {
    contributions(limits, meters, customer, project_zone, *usage).map(|c| c.to_update()).collect()
}

/// Folds many updates into one per counter, in key order: fewer writes, and a fixed lock
/// order so concurrent transactions cannot deadlock.
pub fn merge_updates(updates: impl IntoIterator<Item = CounterUpdate>) -> Vec<CounterUpdate> {
    let mut updates: Vec<CounterUpdate> = updates.into_iter().collect();
    fold_by_counter(&mut updates, CounterUpdate::contribution, |update| &mut update.counter);
    updates
}

/// `merge_updates` of borrowed contributions: each counter's key is cloned once.
pub fn merge_contributions<'a>(contributions: impl IntoIterator<Item = Contribution<'a>>) -> Vec<CounterUpdate> {
    let mut contributions: Vec<Contribution<'a>> = contributions.into_iter().collect();
    fold_by_counter(&mut contributions, |contribution| *contribution, |contribution| &mut contribution.counter);
    contributions.iter().map(Contribution::to_update).collect()
}

/// Sorts changes into key order and folds each counter's changes into its first, in place.
/// Sorting a vector and folding neighbours allocates once, where a map allocated per key: it
/// showed in the group commit's profile. The sort is stable, so changes to one counter fold in
/// the order they came.
fn fold_by_counter<T>(
    changes: &mut Vec<T>,
    key: for<'x> fn(&'x T) -> Contribution<'x>,
    counter: fn(&mut T) -> &mut Counter,
) {
    changes.sort_by(|a, b| key(a).key_cmp(&key(b)));
    changes.dedup_by(|later, kept| {
        let (later, kept_key) = (key(later), key(kept));
        if later.key_cmp(&kept_key) != Ordering::Equal {
            return false;
        }
        let aggregation = kept_key.aggregation;
        let kept = counter(kept);
        *kept = aggregation.merge(Some(*kept), later.counter);
        true
    });
}

/// One alert of a limit for one customer and window: it fires once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub limit_id: String,
    pub customer_id: String,
    pub window_start: i64,
    pub threshold: u8,
}

/// A limit alert whose threshold a counter has reached.
#[derive(Debug, Clone, PartialEq)]
pub struct DueAlert {
    pub threshold: u8,
    pub event_type: EventType,
    pub data: serde_json::Value,
}

/// Usage as a whole percentage of the limit, rounded down, so that it is at least every
/// threshold reached (`used ≥ threshold% of limit`) and never claims one not yet reached.
pub fn usage_percentage(used: Quantity, limit: Quantity) -> i64 {
    if limit.0 <= 0 {
        return 0;
    }
    let percent = (i128::from(used.0) * 100).div_euclid(i128::from(limit.0));
    i64::try_from(percent).unwrap_or(i64::MAX)
}

/// The alerts a counter's new value calls for: the thresholds of a limit that governs the
/// customer, reached in the current window. Whether each already fired is the caller's to
/// check, once per threshold, customer and window. Rolling limits have none here: see
/// `rolling_due_alerts`.
pub fn due_alerts(
    limits: &[Limit],
    limit: &Limit,
    customer: &Customer,
    project_zone: Tz,
    window_start: i64,
    used: Quantity,
    now: DateTime<Utc>,
) -> Vec<DueAlert> {
    if limit.rolling
        || limit.alert_thresholds.is_empty()
        || !governing_limits(limits, &customer.id).iter().any(|l| l.id == limit.id)
    {
        return Vec::new();
    }
    let window = limit.window_at(now, customer.window_zone(project_zone), customer.billing_cycle_start);
    if window.start_ms() != window_start {
        return Vec::new(); // a backdated event in a past window: nothing to warn about now
    }
    let reached = reached_thresholds(&limit.alert_thresholds, used, limit.limit_value);
    alerts_of(limit, customer, used, &window, window.reset_unix_seconds(), reached)
}

/// The alerts a rolling limit's window calls for once a record took its usage from `before`
/// to what `buckets` (`(start in Unix ms, value)`) hold at `now`: the thresholds it crossed
/// (`before < threshold ≤ after`), keyed by the bucket of `now` (the caller's `window_start`
/// of their `AlertKey`), so that each crossing fires once and a later one fires again.
pub fn rolling_due_alerts(
    limits: &[Limit],
    limit: &Limit,
    customer: &Customer,
    before: Quantity,
    buckets: &[(i64, Quantity)],
    now: DateTime<Utc>,
) -> Vec<DueAlert> {
    let Some(rolling) = limit.rolling_window() else { return Vec::new() };
    if limit.alert_thresholds.is_empty() || !governing_limits(limits, &customer.id).iter().any(|l| l.id == limit.id) {
        return Vec::new();
    }
    let status = LimitStatus::rolling(limit, rolling, now, buckets, Quantity::ZERO, None);
    let reached_before = reached_thresholds(&limit.alert_thresholds, before, limit.limit_value);
    let crossed = reached_thresholds(&limit.alert_thresholds, status.used, limit.limit_value)
        .into_iter()
        .filter(|threshold| !reached_before.contains(threshold))
        .collect();
    alerts_of(limit, customer, status.used, &rolling.window_at(now), status.reset, crossed)
}

fn alerts_of(
    limit: &Limit,
    customer: &Customer,
    used: Quantity,
    window: &Window,
    reset: Option<i64>,
    thresholds: Vec<u8>,
) -> Vec<DueAlert> {
    let remaining = Quantity(limit.limit_value.0.saturating_sub(used.0).max(0));
    thresholds
        .into_iter()
        .map(|threshold| DueAlert {
            threshold,
            event_type: if threshold >= 100 { EventType::LimitExceeded } else { EventType::LimitThresholdReached },
            data: serde_json::json!({
                "limitId": limit.id,
                "limitName": limit.name,
                "meterId": limit.meter_id,
                "period": limit.period.as_str(),
                "threshold": threshold,
                "customerId": customer.id,
                "customerExternalId": customer.external_id,
                "used": used,
                // Limitry's documented names for the same figures, beside ours.
                "currentUsage": used,
                "percentage": usage_percentage(used, limit.limit_value),
                "remaining": remaining,
                "limit": limit.limit_value,
                "windowStart": window.start,
                "windowEnd": window.end,
                "reset": reset,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_folds_into_the_stored_state_as_the_upsert_does() {
        let update = |aggregation, value, latest_at| CounterUpdate {
            key: CounterKey { limit_id: "lmt".into(), customer_id: "cust".into(), window_start: 0 },
            aggregation,
            counter: Counter { value: Quantity(value), latest_at },
        };
        let stored = |value, latest_at, version| StoredCounter {
            counter: Counter { value: Quantity(value), latest_at },
            version,
        };
        // A first contribution is stored as it is, at version 1.
        assert_eq!(update(Aggregation::Sum, 5, 10).apply_to(None), stored(5, 10, 1));
        // Later ones fold in by the meter's aggregation and move the version on.
        assert_eq!(update(Aggregation::Sum, 5, 10).apply_to(Some(stored(7, 20, 3))), stored(12, 20, 4));
        assert_eq!(update(Aggregation::Max, 5, 30).apply_to(Some(stored(7, 20, 3))), stored(7, 30, 4));
        assert_eq!(update(Aggregation::Latest, 5, 20).apply_to(Some(stored(7, 20, 3))), stored(5, 20, 4));
        assert_eq!(update(Aggregation::Latest, 5, 19).apply_to(Some(stored(7, 20, 3))), stored(7, 20, 4));
    }

    #[test]
    fn updates_merge_into_one_per_counter_in_key_order_folded_in_arrival_order() {
        let update = |limit_id: &str, customer_id: &str, aggregation, value, latest_at| CounterUpdate {
            key: CounterKey { limit_id: limit_id.into(), customer_id: customer_id.into(), window_start: 0 },
            aggregation,
            counter: Counter { value: Quantity(value), latest_at },
        };
        let merged = merge_updates([
            update("lmt_b", "cust_1", Aggregation::Sum, 5, 10),
            update("lmt_a", "cust_2", Aggregation::Latest, 1, 30),
            update("lmt_a", "cust_1", Aggregation::Max, 4, 10),
            update("lmt_b", "cust_1", Aggregation::Sum, 7, 20),
            update("lmt_a", "cust_2", Aggregation::Latest, 2, 30),
            update("lmt_a", "cust_1", Aggregation::Max, 3, 15),
        ]);
        let folded: Vec<(&str, &str, i64, i64)> = merged
            .iter()
            .map(|u| (u.key.limit_id.as_str(), u.key.customer_id.as_str(), u.counter.value.0, u.counter.latest_at))
            .collect();
        // A tie of `latest` goes to the later arrival, as in the database.
        assert_eq!(folded, [("lmt_a", "cust_1", 4, 15), ("lmt_a", "cust_2", 2, 30), ("lmt_b", "cust_1", 12, 20)]);
    }

    #[test]
    fn the_percentage_rounds_down_so_it_never_claims_a_threshold_not_reached() {
        let limit = Quantity(100_000_000); // 100,000 units in thousandths
        assert_eq!(usage_percentage(Quantity(82_000_000), limit), 82);
        assert_eq!(usage_percentage(Quantity(79_999_999), limit), 79);
        assert_eq!(usage_percentage(Quantity(250_000_000), limit), 250);
        assert_eq!(usage_percentage(Quantity(0), limit), 0);
    }
}
