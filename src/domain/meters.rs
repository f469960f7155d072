//! Meters turn matching events into one number per window: sum, count, max or latest.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::quantity::{Quantity, Total};
use super::{is_valid_key, validate_dimensions, FieldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Count,
    Max,
    Latest,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
            Aggregation::Max => "max",
            Aggregation::Latest => "latest",
        }
    }

    pub fn parse(s: &str) -> Option<Aggregation> {
        match s {
            "sum" => Some(Aggregation::Sum),
            "count" => Some(Aggregation::Count),
            "max" => Some(Aggregation::Max),
            "latest" => Some(Aggregation::Latest),
            _ => None,
        }
    }

    /// Folds one contribution into a window's counter. Associative, so contributions can be
    /// pre-merged per counter before they reach the database.
    pub fn merge(self, current: Option<Counter>, next: Counter) -> Counter {
        let Some(current) = current else { return next };
        let (value, latest_at) =
            self.fold((current.value, current.latest_at), (next.value, next.latest_at), Quantity::saturating_add);
        Counter { value, latest_at }
    }

    /// The one folding rule, for window counters (`Quantity`) and reports (`Total`) alike:
    /// a value and the time of its newest contribution, folded with the next.
    fn fold<T: Copy + Ord>(self, current: (T, i64), next: (T, i64), add: impl FnOnce(T, T) -> T) -> (T, i64) {
        let value = match self {
            Aggregation::Sum | Aggregation::Count => add(current.0, next.0),
            Aggregation::Max => current.0.max(next.0),
            // Ties go to the later arrival, like the database upsert.
            Aggregation::Latest if next.1 >= current.1 => next.0,
            Aggregation::Latest => current.0,
        };
        (value, current.1.max(next.1))
    }
}

/// The running value of one meter over one window, with the newest contributing event's time
/// (Unix ms), which `latest` needs to order out-of-order arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub value: Quantity,
    pub latest_at: i64,
}

/// Which events a meter sees: all pairs must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
}

impl EventFilter {
    pub fn matches(&self, event_type: &str, dimensions: &BTreeMap<String, String>) -> bool {
        self.event_type.as_deref().is_none_or(|t| t == event_type)
            && self.dimensions.iter().all(|(k, v)| dimensions.get(k) == Some(v))
    }

    pub fn validate(self, field: &str) -> Result<EventFilter, FieldError> {
        let event_type = super::optional_text(self.event_type, &format!("{field}.eventType"), 128)?;
        let dimensions = validate_dimensions(Some(self.dimensions), &format!("{field}.dimensions"))?;
        Ok(EventFilter { event_type, dimensions })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meter {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub aggregation: Aggregation,
    /// `values.<key>`, or `*` for `count`.
    pub field: String,
    pub event_filter: EventFilter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Meter {
    pub fn matches(&self, event_type: &str, dimensions: &BTreeMap<String, String>) -> bool {
        self.event_filter.matches(event_type, dimensions)
    }

    /// What one event adds to this meter, or `None` if it carries no value for the field.
    pub fn contribution(&self, values: &BTreeMap<String, Quantity>) -> Option<Quantity> {
        match self.aggregation {
            Aggregation::Count => Some(Quantity::ONE),
            _ => self.value_key().and_then(|key| values.get(key).copied()),
        }
    }

    fn value_key(&self) -> Option<&str> {
        self.field.strip_prefix("values.")
    }
}

/// Checks a meter's `field` against its aggregation; `count` defaults to `*`.
pub fn validate_field(aggregation: Aggregation, field: Option<String>) -> Result<String, FieldError> {
    match (aggregation, field.as_deref()) {
        (Aggregation::Count, None | Some("*")) => Ok("*".into()),
        (_, None) => Err(FieldError::missing("field")),
        (_, Some(f)) => match f.strip_prefix("values.") {
            Some(key) if is_valid_key(key) => Ok(f.to_string()),
            _ => Err(FieldError::invalid(
                "field",
                "must be values.<key> with a key of [A-Za-z0-9_]{1,64}, or * for count",
            )),
        },
    }
}

/// Folds events into one value the way a meter's counters would, but in 128 bits: a report
/// may span far more usage than one window counter holds.
#[derive(Debug, Clone, Copy)]
pub struct Accumulator {
    aggregation: Aggregation,
    /// The value so far and the newest contributing event's time.
    state: Option<(Total, i64)>,
}

impl Accumulator {
    pub fn new(aggregation: Aggregation) -> Self {
        Accumulator { aggregation, state: None }
    }

    pub fn add(&mut self, value: Quantity, at_ms: i64) {
        let next = (Total::from(value), at_ms);
        self.state = Some(match self.state {
            None => next,
            // Sums of values of at most 10^15 thousandths: i128 holds 10^23 of them.
            Some(current) => self.aggregation.fold(current, next, |a, b| Total(a.0 + b.0)),
        });
    }

    /// The meter's value; zero when nothing matched.
    pub fn value(&self) -> Total {
        self.state.map_or(Total::ZERO, |(value, _)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(value: i64, latest_at: i64) -> Counter {
        Counter { value: Quantity(value), latest_at }
    }

    #[test]
    fn latest_keeps_the_value_of_the_newest_event_even_when_it_arrives_first() {
        let merged = Aggregation::Latest.merge(Some(counter(7, 200)), counter(3, 100));
        assert_eq!(merged, counter(7, 200));
        let merged = Aggregation::Latest.merge(Some(counter(7, 200)), counter(3, 300));
        assert_eq!(merged, counter(3, 300));
    }

    #[test]
    fn reports_sum_exactly_past_what_a_counter_holds() {
        let mut sum = Accumulator::new(Aggregation::Sum);
        for at in 0..20 {
            sum.add(Quantity(i64::MAX / 2), at);
        }
        assert_eq!(sum.value(), Total(i128::from(i64::MAX / 2) * 20));
        let mut latest = Accumulator::new(Aggregation::Latest);
        latest.add(Quantity(7), 200);
        latest.add(Quantity(3), 100);
        assert_eq!(latest.value(), Total(7));
    }

    #[test]
    fn max_and_sum_fold_as_expected() {
        assert_eq!(Aggregation::Max.merge(Some(counter(7, 1)), counter(3, 2)).value, Quantity(7));
        assert_eq!(Aggregation::Sum.merge(Some(counter(7, 1)), counter(3, 2)).value, Quantity(10));
    }

    #[test]
    fn count_meters_need_no_field_and_others_need_a_values_key() {
        assert_eq!(validate_field(Aggregation::Count, None).unwrap(), "*");
        assert!(validate_field(Aggregation::Sum, None).is_err());
        assert!(validate_field(Aggregation::Sum, Some("tokens".into())).is_err());
        assert_eq!(validate_field(Aggregation::Sum, Some("values.tokens".into())).unwrap(), "values.tokens");
    }
}
