//! Reservations on limits: capacity held against the limits governing a check until the work
//! is committed with its actual usage, released, or the hold expires.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::balances::ReservationStatus;
use super::quantity::Quantity;

/// A hold on one limit, as the check path counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reservation_id: String,
    pub limit_id: String,
    pub amount: Quantity,
    pub expires_at_ms: i64,
}

/// What the holds of one customer add to each limit at `now_ms`: expired holds count nothing,
/// so capacity comes back the instant a hold expires, whether or not it was swept yet.
pub fn held_by_limit(holds: &[Hold], now_ms: i64) -> HashMap<&str, Quantity> {
    let mut held: HashMap<&str, Quantity> = HashMap::new();
    for hold in holds.iter().filter(|hold| hold.expires_at_ms > now_ms) {
        let total = held.entry(hold.limit_id.as_str()).or_default();
        *total = total.saturating_add(hold.amount);
    }
    held
}

/// What one customer's holds add to each limit at `now_ms`, as `(limit id, customer id,
/// amount)`.
pub fn held_amounts(customer_id: &str, holds: &[Hold], now_ms: i64) -> Vec<(String, String, Quantity)> {
    held_by_limit(holds, now_ms)
        .into_iter()
        .map(|(limit_id, amount)| (limit_id.to_string(), customer_id.to_string(), amount))
        .collect()
}

/// A reservation's state, with its holds and audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitReservation {
    /// `lres_…`
    pub id: String,
    pub customer_id: String,
    /// What each limit holds, in its meter's units.
    #[schema(value_type = f64)]
    pub requested: Quantity,
    pub dimensions: BTreeMap<String, String>,
    pub status: ReservationStatus,
    /// The limits it holds capacity on while `held`.
    pub limit_ids: Vec<String>,
    /// The balance holds (`res_…`) it settles with it.
    pub balance_reservation_ids: Vec<String>,
    /// The event a commit recorded.
    pub event_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// Every change, oldest first.
    pub entries: Vec<ReservationEntry>,
}

/// One line of a reservation's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationEntry {
    /// reserved, extended, committed, released or expired.
    pub kind: String,
    /// For reserved and extended: until when it holds from then on.
    pub expires_at: Option<DateTime<Utc>>,
    /// For committed: the event recorded.
    pub event_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(limit: &str, amount: i64, expires_at_ms: i64) -> Hold {
        Hold { reservation_id: "lres".into(), limit_id: limit.into(), amount: Quantity(amount), expires_at_ms }
    }

    #[test]
    fn holds_count_until_the_instant_they_expire() {
        let holds = [hold("a", 5, 1_000), hold("a", 7, 2_000), hold("b", 1, 1_000)];
        let at = |now| {
            let held = held_by_limit(&holds, now);
            (held.get("a").copied(), held.get("b").copied())
        };
        assert_eq!(at(999), (Some(Quantity(12)), Some(Quantity(1))));
        assert_eq!(at(1_000), (Some(Quantity(7)), None));
        assert_eq!(at(2_000), (None, None));
    }
}
