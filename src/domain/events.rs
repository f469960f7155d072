//! Events: one unit of usage as sent by the application, validated before anything is written.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customers::MAX_EXTERNAL_ID;
use super::quantity::Quantity;
use super::{is_valid_key, required_text, validate_dimensions, FieldError};

/// How far ahead of the server's clock an event may be stamped, for client clock skew.
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);
/// Longest accepted idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;
/// Most entries of `values` one event may carry: each is matched against every meter.
pub const MAX_VALUES: usize = 64;

/// An event as the application sends it; every field optional here so that a missing one is
/// reported by name.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventInput {
    /// The customer's `externalId` (or internal `cust_…` id); created on first use.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub customer_id: Option<String>,
    /// At most 128 characters.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub event_type: Option<String>,
    /// At most 64 values, each within ±10^12.
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    pub values: Option<BTreeMap<String, serde_json::Number>>,
    /// At most 32 pairs.
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Free JSON, not metered.
    #[schema(value_type = Option<serde_json::Value>)]
    pub properties: Option<serde_json::Value>,
    /// RFC 3339; defaults to now.
    pub timestamp: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A validated event ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub customer_ref: String,
    pub event_type: String,
    pub values: BTreeMap<String, serde_json::Number>,
    /// `values` as exact counter amounts.
    pub quantities: BTreeMap<String, Quantity>,
    pub dimensions: BTreeMap<String, String>,
    pub properties: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

impl EventInput {
    /// Validates against `now`: at most `max_backdate` in the past, at most five minutes ahead.
    pub fn validate(self, prefix: &str, now: DateTime<Utc>, max_backdate: Duration) -> Result<NewEvent, FieldError> {
        self.validate_fields(now, max_backdate).map_err(|err| err.under(prefix))
    }

    fn validate_fields(self, now: DateTime<Utc>, max_backdate: Duration) -> Result<NewEvent, FieldError> {
        let customer_ref = required_text(self.customer_id, "customerId", MAX_EXTERNAL_ID)?;
        let event_type = required_text(self.event_type, "eventType", 128)?;
        let values = self.values.unwrap_or_default();
        super::at_most(values.len(), MAX_VALUES, "values", "values")?;
        let mut quantities = BTreeMap::new();
        for (key, number) in &values {
            let field = || format!("values.{}", super::truncate(key, 70));
            if !is_valid_key(key) {
                return Err(FieldError::invalid(field(), "keys must match [A-Za-z0-9_]{1,64}"));
            }
            let quantity = number
                .as_f64()
                .and_then(Quantity::from_f64)
                .ok_or_else(|| FieldError::invalid(field(), "must be a number between -1e12 and 1e12"))?;
            quantities.insert(key.clone(), quantity);
        }
        let dimensions = validate_dimensions(self.dimensions, "dimensions")?;
        let properties = self.properties.unwrap_or_else(|| serde_json::json!({}));
        let occurred_at = match self.timestamp {
            None => now,
            Some(text) => parse_timestamp(&text, "timestamp", now, max_backdate)?,
        };
        let idempotency_key = match self.idempotency_key {
            Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY => {
                return Err(FieldError::invalid(
                    "idempotencyKey",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
                ))
            }
            Some(key) if key.chars().any(char::is_control) => {
                return Err(FieldError::invalid("idempotencyKey", "must not contain control characters"))
            }
            Some(key) => Some(key),
            None => None,
        };
        Ok(NewEvent {
            customer_ref,
            event_type,
            values,
            quantities,
            dimensions,
            properties,
            occurred_at,
            idempotency_key,
        })
    }
}

fn parse_timestamp(
    text: &str,
    field: &str,
    now: DateTime<Utc>,
    max_backdate: Duration,
) -> Result<DateTime<Utc>, FieldError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| FieldError::invalid(field, "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z"))?
        .with_timezone(&Utc);
    if at > now + MAX_FUTURE_SKEW {
        return Err(FieldError::invalid(field, "must not be more than 5 minutes in the future"));
    }
    if at < now - max_backdate {
        return Err(FieldError::invalid(
            field,
            format!("must not be more than {} days in the past", max_backdate.num_days()),
        ));
    }
    Ok(at)
}

/// A recorded event as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    /// Internal customer id (`cust_…`).
    pub customer_id: String,
    pub customer_external_id: String,
    pub event_type: String,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub values: BTreeMap<String, serde_json::Number>,
    pub dimensions: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    pub timestamp: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> EventInput {
        EventInput {
            customer_id: Some("acme".into()),
            event_type: Some("llm.completion".into()),
            values: Some(BTreeMap::from([("tokens".into(), 512.into())])),
            ..Default::default()
        }
    }

    #[test]
    fn a_future_timestamp_beyond_five_minutes_is_rejected_by_name() {
        let now = Utc::now();
        let mut event = input();
        event.timestamp = Some((now + Duration::minutes(6)).to_rfc3339());
        let err = event.validate("events[1]", now, Duration::days(35)).unwrap_err();
        assert_eq!(err.field(), "events[1].timestamp");
        let mut event = input();
        event.timestamp = Some((now + Duration::minutes(4)).to_rfc3339());
        assert!(event.validate("", now, Duration::days(35)).is_ok());
    }

    #[test]
    fn backdating_is_allowed_within_the_window_only() {
        let now = Utc::now();
        let mut event = input();
        event.timestamp = Some((now - Duration::days(34)).to_rfc3339());
        assert!(event.validate("", now, Duration::days(35)).is_ok());
        let mut event = input();
        event.timestamp = Some((now - Duration::days(36)).to_rfc3339());
        assert_eq!(event.validate("", now, Duration::days(35)).unwrap_err().field(), "timestamp");
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let now = Utc::now();
        let mut event = input();
        event.customer_id = None;
        assert_eq!(event.validate("", now, Duration::days(35)).unwrap_err(), FieldError::missing("customerId"));
        let mut event = input();
        event.dimensions = Some(BTreeMap::from([("bad key".into(), "x".into())]));
        assert_eq!(event.validate("", now, Duration::days(35)).unwrap_err().field(), "dimensions.bad key");
    }
}
