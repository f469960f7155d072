//! Exact usage amounts: event values may be fractional, counters and limits never are floats.

use serde::{Serialize, Serializer};

/// An amount of a meter's unit held as an integer number of thousandths.
///
/// Event values are rounded half away from zero to three decimals when they enter a counter,
/// so sums are exact and identical on every database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(pub i64);

/// Largest magnitude accepted from the wire, well inside `i64` thousandths after summing.
const MAX_ABS: f64 = 1e12;

impl Quantity {
    /// Thousandths per unit.
    pub const SCALE: i64 = 1000;
    /// One unit: what a `count` meter adds per event.
    pub const ONE: Quantity = Quantity(Self::SCALE);
    pub const ZERO: Quantity = Quantity(0);
    /// Largest magnitude of a window counter: 10^15 units. A counter sums at most a batch of
    /// values of at most 10^12 each on top of it, so the database arithmetic stays inside
    /// `i64`; recording that would take a counter past it is refused.
    pub const MAX_COUNTER: Quantity = Quantity(1_000_000_000_000_000_000);

    /// Whether a counter may hold this value.
    pub fn in_counter_range(self) -> bool {
        self.0.checked_abs().is_some_and(|v| v <= Self::MAX_COUNTER.0)
    }

    /// Converts a wire number, refusing NaN, infinities and magnitudes above 10^12.
    pub fn from_f64(value: f64) -> Option<Quantity> {
        if !value.is_finite() || value.abs() > MAX_ABS {
            return None;
        }
        Some(Quantity((value * Self::SCALE as f64).round() as i64))
    }

    /// The amount as a JSON number: an integer when whole, else a decimal.
    pub fn to_json(self) -> serde_json::Number {
        if self.0 % Self::SCALE == 0 {
            serde_json::Number::from(self.0 / Self::SCALE)
        } else {
            serde_json::Number::from_f64(self.0 as f64 / Self::SCALE as f64)
                .unwrap_or_else(|| serde_json::Number::from(0))
        }
    }

    pub fn saturating_sub(self, other: Quantity) -> Quantity {
        Quantity(self.0.saturating_sub(other.0))
    }

    /// Whether nothing is held (for answers that leave out zeros).
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    pub fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(other.0))
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// A meter's value over any range, summed from raw events in 128 bits (thousandths), so
/// reports stay exact far past what one window counter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Total(pub i128);

impl Total {
    pub const ZERO: Total = Total(0);

    /// The value as a float, for charts only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Quantity::SCALE as f64
    }
}

impl From<Quantity> for Total {
    fn from(value: Quantity) -> Total {
        Total(i128::from(value.0))
    }
}

impl std::fmt::Display for Total {
    /// Exact decimal text: an integer when whole, else up to three decimals.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = i128::from(Quantity::SCALE);
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (whole, fraction) = (magnitude / scale as u128, magnitude % scale as u128);
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let decimals = format!("{fraction:03}");
            write!(f, "{sign}{whole}.{}", decimals.trim_end_matches('0'))
        }
    }
}

impl Serialize for Total {
    /// A JSON number with every digit, never rounded through a float.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_string();
        let raw = serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_print_every_digit() {
        let huge = Total(i128::from(i64::MAX) * 10 + 5);
        assert_eq!(huge.to_string(), "92233720368547758.075");
        assert_eq!(serde_json::to_string(&huge).unwrap(), "92233720368547758.075");
        assert_eq!(serde_json::to_string(&Total(-1_500)).unwrap(), "-1.5");
        assert_eq!(serde_json::to_string(&Total(10_000_000_000_000_000_000)).unwrap(), "10000000000000000");
    }

    #[test]
    fn counters_hold_up_to_ten_to_the_fifteen_units() {
        assert!(Quantity::MAX_COUNTER.in_counter_range());
        assert!(Quantity(-Quantity::MAX_COUNTER.0).in_counter_range());
        assert!(!Quantity(Quantity::MAX_COUNTER.0 + 1).in_counter_range());
        assert!(!Quantity(i64::MIN).in_counter_range());
    }

    #[test]
    fn whole_values_stay_integers_on_the_wire() {
        assert_eq!(Quantity::from_f64(512.0).unwrap().to_json().to_string(), "512");
        assert_eq!(Quantity::from_f64(0.25).unwrap().to_json().to_string(), "0.25");
    }

    #[test]
    fn fractions_round_half_away_from_zero_to_thousandths() {
        assert_eq!(Quantity::from_f64(0.0005), Some(Quantity(1)));
        assert_eq!(Quantity::from_f64(-0.0005), Some(Quantity(-1)));
        assert_eq!(Quantity::from_f64(1.2344), Some(Quantity(1234)));
    }

    #[test]
    fn non_finite_and_huge_values_are_refused() {
        assert_eq!(Quantity::from_f64(f64::NAN), None);
        assert_eq!(Quantity::from_f64(f64::INFINITY), None);
        assert_eq!(Quantity::from_f64(2e12), None);
    }
}
