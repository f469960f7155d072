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

impl Customer {
    /// The zone this customer's day, week, month and year windows follow.
    pub fn window_zone(&self, project_zone: Tz) -> Tz {
        self.timezone.as_deref().and_then(|tz| tz.parse().ok()).unwrap_or(project_zone)
    }
}

/// Longest `externalId` accepted.
pub const MAX_EXTERNAL_ID: usize = 256;

/// Parses `billingCycleStart` (`YYYY-MM-DD`).
pub fn parse_billing_anchor(value: &str, field: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| FieldError::invalid(field, "must be a date as YYYY-MM-DD"))
}

/// Checks an email address loosely: one `@` with text on both sides.
pub fn validate_email(email: &str, field: &str) -> Result<(), FieldError> {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') => Ok(()),
        _ => Err(FieldError::invalid(field, "must be an email address")),
    }
}
