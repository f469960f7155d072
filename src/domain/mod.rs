//! Pure types and rules of the product, free of IO: ids, amounts, windows, meters, limits, events.

pub mod audit;
pub mod balances;
pub mod customers;
pub mod events;
pub mod ids;
pub mod limit_reservations;
pub mod limits;
pub mod meters;
pub mod projects;
pub mod quantity;
pub mod recent_windows;
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

    /// The same error for a field nested under `prefix` (`events[3]`), so paths are built only
    /// for errors, never for every valid field.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            FieldError::Missing { field } => FieldError::Missing { field: path(prefix, &field) },
            FieldError::Invalid { field, message } => FieldError::Invalid { field: path(prefix, &field), message },
        }
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
/// Most dimensions an event, a check or a query may carry, and most pairs a filter may hold:
/// every one is matched against every limit, so the count bounds the work of a request.
pub const MAX_DIMENSIONS: usize = 32;

/// Refuses control characters (NUL, newlines, escapes …) in an identifier, name or parameter:
/// they cannot be shown, PostgreSQL cannot store a NUL, and both databases must agree.
pub fn refuse_control_characters(value: &str, field: &str) -> Result<(), FieldError> {
    if has_control_characters(value) {
        return Err(control_characters(field));
    }
    Ok(())
}

fn has_control_characters(value: &str) -> bool {
    value.chars().any(char::is_control)
}

fn control_characters(field: impl Into<String>) -> FieldError {
    FieldError::invalid(field, NO_CONTROL_CHARACTERS)
}

/// A trimmed text of at most `max` characters, `None` when absent or empty, refused if it holds
/// a control character that `allowed` does not accept.
fn checked_text(
    value: Option<String>,
    field: &str,
    max: usize,
    allowed: fn(char) -> bool,
    refusal: &str,
) -> Result<Option<String>, FieldError> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::invalid(field, format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(FieldError::invalid(field, refusal));
    }
    // Most texts arrive without surrounding blanks: keep them as they came.
    if trimmed.len() == value.len() {
        return Ok(Some(value));
    }
    Ok(Some(trimmed.to_string()))
}

const NO_CONTROL_CHARACTERS: &str = "must not contain control characters";

/// A required, trimmed, non-empty text of at most `max` characters, without control characters.
pub fn required_text(value: Option<String>, field: &str, max: usize) -> Result<String, FieldError> {
    optional_text(value, field, max)?.ok_or_else(|| FieldError::missing(field))
}

/// An optional text of at most `max` characters, without control characters; empty becomes
/// `None`.
pub fn optional_text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, FieldError> {
    checked_text(value, field, max, |_| false, NO_CONTROL_CHARACTERS)
}

/// A description: like [`required_text`] or [`optional_text`] (by `required`), but line breaks
/// and tabs are kept, since a ledger note may span lines; other control characters are refused.
pub fn description_text(
    value: Option<String>,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, FieldError> {
    let text = checked_text(
        value,
        field,
        max,
        |c| matches!(c, '\n' | '\r' | '\t'),
        "must not contain control characters other than line breaks and tabs",
    )?;
    match text {
        None if required => Err(FieldError::missing(field)),
        text => Ok(text),
    }
}

/// Refuses a list or map of more than `max` entries, naming the field.
pub fn at_most(count: usize, max: usize, field: &str, what: &str) -> Result<(), FieldError> {
    if count > max {
        return Err(FieldError::invalid(field, format!("must hold at most {max} {what}, got {count}")));
    }
    Ok(())
}

/// A whole number as JSON may carry it: `5` or `5.0` (many clients serialise every number as
/// a float). `None` for fractions, and for floats beyond 2^53 where they stop being exact.
pub fn integral(number: &serde_json::Number) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    number.as_i64().or_else(|| {
        let float = number.as_f64()?;
        (float.fract() == 0.0 && float.abs() <= EXACT).then_some(float as i64)
    })
}

/// A whole-number request field that also accepts integral floats (`5.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

impl<'de> serde::Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        integral(&number)
            .map(WholeNumber)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {number}")))
    }
}

/// Validates a string → string map of dimensions or filters.
pub fn validate_dimensions(
    map: Option<BTreeMap<String, String>>,
    field: &str,
) -> Result<BTreeMap<String, String>, FieldError> {
    let map = map.unwrap_or_default();
    at_most(map.len(), MAX_DIMENSIONS, field, "pairs")?;
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
        // The field's name is only built for a refusal: this runs for every pair of every check.
        if has_control_characters(value) {
            return Err(control_characters(format!("{field}.{key}")));
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
