//! Limits cap a meter over a period; which limits govern a customer and how a check is judged.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::quantity::Quantity;
use super::recent_windows;
use super::windows::{Period, Rolling, Window};

/// What a client should do when the service cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

impl FailMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Open => "open",
            FailMode::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<FailMode> {
        match s {
            "open" => Some(FailMode::Open),
            "closed" => Some(FailMode::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub meter_id: String,
    #[schema(value_type = f64)]
    pub limit_value: Quantity,
    pub period: Period,
    /// A sliding window over the last `period` (see `Period::rolling` for its resolution)
    /// rather than calendar windows.
    pub rolling: bool,
    /// `None`: the project-wide default for every customer.
    pub customer_id: Option<String>,
    pub dimension_filters: BTreeMap<String, String>,
    /// Percentages; `null` when the limit has none, as Limitry documents it.
    #[serde(serialize_with = "none_when_empty")]
    #[schema(value_type = Option<Vec<u8>>)]
    pub alert_thresholds: Vec<u8>,
    pub fail_mode: FailMode,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn none_when_empty<S: serde::Serializer>(thresholds: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    if thresholds.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.collect_seq(thresholds)
    }
}

impl Limit {
    /// Whether an event with these dimensions counts toward this limit: every filter must match.
    pub fn counts(&self, dimensions: &BTreeMap<String, String>) -> bool {
        self.dimension_filters.iter().all(|(k, v)| dimensions.get(k) == Some(v))
    }

    /// Whether a check with these dimensions is subject to this limit: no filter contradicts
    /// them (a dimension the check does not name contradicts nothing).
    pub fn applies_to_check(&self, dimensions: &BTreeMap<String, String>) -> bool {
        self.dimension_filters.iter().all(|(k, v)| dimensions.get(k).is_none_or(|d| d == v))
    }

    /// The sliding window of a rolling limit; `None` for calendar windows.
    pub fn rolling_window(&self) -> Option<Rolling> {
        self.period.rolling().filter(|_| self.rolling)
    }

    /// The window the limit counts at `at`, for a customer in `zone` with `anchor`.
    pub fn window_at(&self, at: DateTime<Utc>, zone: Tz, anchor: Option<NaiveDate>) -> Window {
        match self.rolling_window() {
            Some(rolling) => rolling.window_at(at),
            None => recent_windows::window_at(self.period, at, zone, anchor),
        }
    }

    /// The counter that usage occurring at `at` feeds, by its window start in Unix ms: its
    /// calendar window's, or for a rolling limit its bucket's.
    pub fn counter_start_ms(&self, at: DateTime<Utc>, zone: Tz, anchor: Option<NaiveDate>) -> i64 {
        match self.rolling_window() {
            Some(rolling) => rolling.bucket_start_ms(at),
            None => recent_windows::window_at(self.period, at, zone, anchor).start_ms(),
        }
    }

    /// A customer's own limit overrides a default with the same meter, period and filters.
    fn overrides(&self, default: &Limit) -> bool {
        self.meter_id == default.meter_id
            && self.period == default.period
            && self.dimension_filters == default.dimension_filters
    }
}

/// The limits that govern a customer: their own, plus every project default they do not override.
pub fn governing_limits<'a>(limits: &'a [Limit], customer_id: &str) -> Vec<&'a Limit> {
    let own: Vec<&Limit> = limits.iter().filter(|l| l.customer_id.as_deref() == Some(customer_id)).collect();
    let defaults = limits.iter().filter(|l| l.customer_id.is_none()).filter(|d| !own.iter().any(|o| o.overrides(d)));
    own.iter().copied().chain(defaults).collect()
}

/// The limits whose counters an event of this customer feeds: their own and every default,
/// overridden or not, so that removing an override leaves an exact default counter behind.
pub fn counted_limits<'a>(limits: &'a [Limit], customer_id: &'a str) -> impl Iterator<Item = &'a Limit> {
    limits.iter().filter(move |l| l.customer_id.as_deref().is_none_or(|c| c == customer_id))
}

/// One limit's state in a check answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitStatus {
    pub id: String,
    pub name: String,
    pub meter_id: String,
    pub period: Period,
    #[schema(value_type = f64)]
    pub limit: Quantity,
    /// Recorded usage plus what reservations hold (see `held`).
    #[schema(value_type = f64)]
    pub used: Quantity,
    /// Of `used`, what reservations in flight hold on this limit; left out when nothing is held.
    #[serde(skip_serializing_if = "Quantity::is_zero")]
    #[schema(value_type = Option<f64>)]
    pub held: Quantity,
    #[schema(value_type = f64)]
    pub remaining: Quantity,
    pub exceeded: bool,
    /// Window end in Unix seconds; null for `all_time`. For a rolling limit, when enough usage
    /// will have left the window for the next request (`requested`, or any while the limit is
    /// reached) to pass; when it passes now, when the oldest usage leaves.
    pub reset: Option<i64>,
    pub fail_mode: FailMode,
}

impl LimitStatus {
    /// The status with `recorded` usage in the window and `held` by reservations in flight.
    pub fn new(limit: &Limit, recorded: Quantity, held: Quantity, window: &Window) -> Self {
        let used = recorded.saturating_add(held);
        LimitStatus {
            id: limit.id.clone(),
            name: limit.name.clone(),
            meter_id: limit.meter_id.clone(),
            period: limit.period,
            limit: limit.limit_value,
            used,
            held,
            remaining: limit.limit_value.saturating_sub(used).max(Quantity::ZERO),
            exceeded: used >= limit.limit_value,
            reset: window.reset_unix_seconds(),
            fail_mode: limit.fail_mode,
        }
    }

    /// A rolling limit's state at `at` from its buckets (`(start in Unix ms, value)`, those
    /// outside the window ignored): `reset` is when the next request (of `requested`, or any
    /// while the limit is reached) may go through, see `Rolling::reset`.
    pub fn rolling(
        limit: &Limit,
        rolling: Rolling,
        at: DateTime<Utc>,
        buckets: &[(i64, Quantity)],
        held: Quantity,
        requested: Option<Quantity>,
    ) -> Self {
        let mut status = LimitStatus::new(limit, rolling.total(at, buckets), held, &rolling.window_at(at));
        let fits_beside_holds = |used: Quantity| fits(used.saturating_add(held), limit.limit_value, requested);
        status.reset = Some(rolling.reset(at, buckets, fits_beside_holds));
        status
    }

    /// The status at `at` of a limit whose window (`window`, for a calendar window) holds
    /// `recorded` usage, or, for a rolling limit, `buckets` (see `rolling`), beside `held`:
    /// what a check and a reservation both report.
    pub fn at(
        limit: &Limit,
        at: DateTime<Utc>,
        window: &Window,
        recorded: Quantity,
        buckets: &[(i64, Quantity)],
        held: Quantity,
        requested: Option<Quantity>,
    ) -> Self {
        match limit.rolling_window() {
            Some(rolling) => LimitStatus::rolling(limit, rolling, at, buckets, held, requested),
            None => LimitStatus::new(limit, recorded, held, window),
        }
    }

    /// Whether this limit lets the work through: under the limit, or with `requested`, room
    /// for all of it.
    pub fn passes(&self, requested: Option<Quantity>) -> bool {
        fits(self.used, self.limit, requested)
    }
}

fn fits(used: Quantity, limit: Quantity, requested: Option<Quantity>) -> bool {
    match requested {
        Some(requested) => used.saturating_add(requested) <= limit,
        None => used < limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(id: &str, customer: Option<&str>, filters: &[(&str, &str)]) -> Limit {
        Limit {
            id: id.into(),
            project_id: "proj_test".into(),
            name: id.into(),
            meter_id: "mtr_1".into(),
            limit_value: Quantity(100_000),
            period: Period::Day,
            rolling: false,
            customer_id: customer.map(Into::into),
            dimension_filters: filters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            alert_thresholds: vec![],
            fail_mode: FailMode::Open,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_customer_limit_overrides_the_default_with_the_same_scope_only() {
        let limits = vec![
            limit("default", None, &[]),
            limit("default_gpt4", None, &[("model", "gpt-4o")]),
            limit("own", Some("cust_a"), &[]),
        ];
        let ids: Vec<_> = governing_limits(&limits, "cust_a").iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["own", "default_gpt4"]);
        let ids: Vec<_> = governing_limits(&limits, "cust_b").iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["default", "default_gpt4"]);
    }

    #[test]
    fn checks_are_subject_to_limits_their_dimensions_do_not_contradict() {
        let l = limit("l", None, &[("model", "gpt-4o")]);
        assert!(l.applies_to_check(&dims(&[])));
        assert!(l.applies_to_check(&dims(&[("model", "gpt-4o")])));
        assert!(!l.applies_to_check(&dims(&[("model", "claude")])));
        assert!(!l.counts(&dims(&[])));
        assert!(l.counts(&dims(&[("model", "gpt-4o"), ("feature", "chat")])));
    }

    #[test]
    fn requested_passes_only_when_it_fits_entirely() {
        let l = limit("l", None, &[]);
        let window = Window { start: DateTime::UNIX_EPOCH, end: None };
        let status = LimitStatus::new(&l, Quantity(80_000), Quantity(10_000), &window);
        assert!(status.passes(None));
        assert!(status.passes(Some(Quantity(10_000))));
        assert!(!status.passes(Some(Quantity(10_001))));
        let status = LimitStatus::new(&l, Quantity(100_000), Quantity::ZERO, &window);
        assert!(status.exceeded);
        assert_eq!(status.remaining, Quantity::ZERO);
    }
}
