//! Customers: who is metered, with the timezone and billing anchor their windows follow.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::FieldError;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub project_id: String,
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// IANA name; windows fall back to the project's timezone when unset.
    pub timezone: Option<String>,
    pub billing_cycle_start: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Prefix of internal customer ids; an `externalId` may not start with it, or it could
/// shadow another customer's id.
pub const CUSTOMER_ID_PREFIX: &str = "cust_";

impl Customer {
    /// A customer that does not exist yet, as a check sees it: no usage, no own limits, the
    /// project's timezone. Its `id` is empty and its `externalId` is the reference.
    pub fn not_yet_created(project_id: &str, external_id: &str, now: DateTime<Utc>) -> Customer {
        Customer {
            id: String::new(),
            project_id: project_id.to_string(),
            external_id: external_id.to_string(),
            name: None,
            email: None,
            metadata: serde_json::Value::Object(Default::default()),
            timezone: None,
            billing_cycle_start: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The zone this customer's day, week, month and year windows follow.
    pub fn window_zone(&self, project_zone: Tz) -> Tz {
        self.timezone.as_deref().and_then(|tz| tz.parse().ok()).unwrap_or(project_zone)
    }
}

/// Longest `externalId` accepted.
pub const MAX_EXTERNAL_ID: usize = 256;

/// Refuses an `externalId` that looks like an internal id.
pub fn validate_external_id(external_id: &str, field: &str) -> Result<(), FieldError> {
    if external_id.starts_with(CUSTOMER_ID_PREFIX) {
        return Err(FieldError::invalid(
            field,
            format!("must not start with {CUSTOMER_ID_PREFIX}, the prefix of internal ids"),
        ));
    }
    Ok(())
}

/// Parses `billingCycleStart`: a `YYYY-MM-DD` date, or an ISO 8601 date-time (RFC 3339, or
/// without an offset) whose date (as written, in its own offset) anchors the cycle.
pub fn parse_billing_anchor(value: &str, field: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .or_else(|_| DateTime::parse_from_rfc3339(value).map(|at| at.date_naive()))
        // A date-time without an offset, as Python's `datetime.isoformat()` writes a naive one.
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.date()))
        .map_err(|_| FieldError::invalid(field, "must be a date as YYYY-MM-DD or an ISO 8601 date-time"))
}

/// Checks an email address loosely: one `@` with text on both sides.
pub fn validate_email(email: &str, field: &str) -> Result<(), FieldError> {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') => Ok(()),
        _ => Err(FieldError::invalid(field, "must be an email address")),
    }
}
