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

#[cfg(test)]
mod tests {
    use super::*;

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
