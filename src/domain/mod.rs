//! Pure types and rules of the product, free of IO: ids, amounts, windows, meters, limits, events.

pub mod balances;
pub mod customers;
pub mod events;
pub mod ids;
pub mod limits;
pub mod meters;
pub mod quantity;
pub mod usage;
pub mod webhooks;
pub mod windows;

use std::collections::BTreeMap;

/// A rejected input, naming the offending field with its JSON path (`events[3].customerId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    Missing { field: String },
    Invalid { field: String, message: String },
}

impl FieldError {
    pub fn missing(field: impl Into<String>) -> Self {
        FieldError::Missing { field: field.into() }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn field(&self) -> &str {
        match self {
            FieldError::Missing { field } | FieldError::Invalid { field, .. } => field,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::Missing { field } => write!(f, "missing required field: {field}"),
            FieldError::Invalid { field, message } => write!(f, "invalid value for {field}: {message}"),
        }
    }
}

impl std::error::Error for FieldError {}

/// Joins a path prefix and a field name: `("events[2]", "eventType")` → `events[2].eventType`.
pub fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Keys of dimensions, values and filters: `[A-Za-z0-9_]{1,64}`.
pub fn is_valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Longest dimension value accepted.
pub const MAX_DIMENSION_VALUE: usize = 256;

/// A required, trimmed, non-empty text of at most `max` characters.
pub fn required_text(value: Option<String>, field: &str, max: usize) -> Result<String, FieldError> {
    let value = value.ok_or_else(|| FieldError::missing(field))?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::missing(field));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(trimmed.to_string())
}

/// An optional text of at most `max` characters; empty becomes `None`.
pub fn optional_text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, FieldError> {
    match value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => {
            Err(FieldError::invalid(field, format!("must be at most {max} characters")))
        }
        other => Ok(other),
    }
}

/// Validates a string → string map of dimensions or filters.
pub fn validate_dimensions(
    map: Option<BTreeMap<String, String>>,
    field: &str,
) -> Result<BTreeMap<String, String>, FieldError> {
    let map = map.unwrap_or_default();
    for (key, value) in &map {
        if !is_valid_key(key) {
            return Err(FieldError::invalid(
                format!("{field}.{}", truncate(key, 70)),
                "keys must match [A-Za-z0-9_]{1,64}",
            ));
        }
        if value.chars().count() > MAX_DIMENSION_VALUE {
            return Err(FieldError::invalid(
                format!("{field}.{key}"),
                format!("values must be at most {MAX_DIMENSION_VALUE} characters"),
            ));
        }
    }
    Ok(map)
}

/// The first `max` characters of a text, for echoing bad input back without echoing all of it.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Parses an IANA timezone name.
pub fn parse_timezone(name: &str, field: &str) -> Result<chrono_tz::Tz, FieldError> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| FieldError::invalid(field, "must be an IANA timezone such as Europe/Paris"))
}
