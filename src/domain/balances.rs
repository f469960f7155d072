//! Prepaid balances as pure rules: what is available, and what each ledger operation changes.
//!
//! Amounts are whole units of the balance's unit (`i64`), never floats. Every change is one
//! ledger transaction whose `amount` is the signed change of `currentBalance` and whose
//! `holdChange` is the signed change of the held total, so a balance always equals the sum of
//! its ledger's amounts and its holds the sum of their hold changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;

/// Largest amount accepted in one operation (10^15).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// Largest magnitude of `currentBalance` and of the held total (10^18). With amounts and
/// minimums bounded by `MAX_AMOUNT`, every derived figure (`availableBalance` included) stays
/// far inside `i64`, so no sum on a money path can wrap.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000_000;
/// Reservation lifetime when none is asked for, and the longest allowed.
pub const DEFAULT_TTL_SECONDS: i64 = 300;
pub const MAX_TTL_SECONDS: i64 = 3600;

/// The money side of a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Funds {
    pub current: i64,
    /// 0: no overdraft; negative: overdraft down to it; positive: a reserve that cannot be spent.
    pub minimum: i64,
    pub held: i64,
}

impl Funds {
    /// What can still be debited or held. Negative when a reserve is not covered.
    pub fn available(&self) -> i64 {
        self.current - self.minimum - self.held
    }

    /// The funds after `change`, or `OutOfRange` if the balance or the held total would leave
    /// ±`MAX_BALANCE`; such a change is refused whole.
    pub fn apply(&self, change: &Change) -> Result<Funds, OutOfRange> {
        let current = self.current.checked_add(change.amount).filter(|c| c.abs() <= MAX_BALANCE);
        let held = self.held.checked_add(change.hold_change).filter(|h| (0..=MAX_BALANCE).contains(h));
        match (current, held) {
            (Some(current), Some(held)) => Ok(Funds { current, held, ..*self }),
            _ => Err(OutOfRange),
        }
    }
}

/// A change that would take a balance or its holds past ±`MAX_BALANCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Credit,
    Debit,
    Hold,
    Commit,
    Release,
    Expire,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Credit => "credit",
            TransactionKind::Debit => "debit",
            TransactionKind::Hold => "hold",
            TransactionKind::Commit => "commit",
            TransactionKind::Release => "release",
            TransactionKind::Expire => "expire",
        }
    }

    pub fn parse(s: &str) -> Option<TransactionKind> {
        [Self::Credit, Self::Debit, Self::Hold, Self::Commit, Self::Release, Self::Expire]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One change to a balance, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub kind: TransactionKind,
    /// Signed change of `currentBalance`.
    pub amount: i64,
    /// Signed change of the held total.
    pub hold_change: i64,
}

/// Not enough available to debit or hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insufficient {
    pub available: i64,
}

pub fn credit(amount: i64) -> Change {
    Change { kind: TransactionKind::Credit, amount, hold_change: 0 }
}

/// Deducts all of `amount` or nothing.
pub fn debit(funds: &Funds, amount: i64) -> Result<Change, Insufficient> {
    if amount > funds.available() {
        return Err(Insufficient { available: funds.available() });
    }
    Ok(Change { kind: TransactionKind::Debit, amount: -amount, hold_change: 0 })
}

/// Holds all of `amount` or nothing; a hold counts against what is available.
pub fn hold(funds: &Funds, amount: i64) -> Result<Change, Insufficient> {
    if amount > funds.available() {
        return Err(Insufficient { available: funds.available() });
    }
    Ok(Change { kind: TransactionKind::Hold, amount: 0, hold_change: amount })
}

/// Gives a hold back, by request (`Release`) or because it ran out (`Expire`).
pub fn release(held: i64, kind: TransactionKind) -> Change {
    Change { kind, amount: 0, hold_change: -held }
}

/// Settles a hold with the actual amount: the hold is released and the actual debited. Up to
/// the hold is always covered; beyond it, only what is available once the hold is released
/// is taken, never more. Returns the change and the amount taken.
pub fn commit(funds: &Funds, held: i64, actual: i64) -> (Change, i64) {
    let can_take = (funds.available() + held).max(0);
    let taken = actual.min(can_take.max(held.min(actual)));
    (Change { kind: TransactionKind::Commit, amount: -taken, hold_change: -held }, taken)
}

/// Validates a positive whole amount.
pub fn positive_amount(value: &serde_json::Number, field: &str) -> Result<i64, FieldError> {
    whole_amount(value, field).and_then(|a| {
        if a > 0 {
            Ok(a)
        } else {
            Err(FieldError::invalid(field, "must be greater than 0"))
        }
    })
}

/// Validates a whole amount (any sign) within ±`MAX_AMOUNT`.
pub fn whole_amount(value: &serde_json::Number, field: &str) -> Result<i64, FieldError> {
    match super::integral(value) {
        // A range test, not `abs()`: the absolute value of i64::MIN does not exist.
        Some(a) if (-MAX_AMOUNT..=MAX_AMOUNT).contains(&a) => Ok(a),
        _ => Err(FieldError::invalid(field, format!("must be a whole number of at most {MAX_AMOUNT} in size"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ReservationStatus> {
        [Self::Held, Self::Committed, Self::Released, Self::Expired].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub id: String,
    pub project_id: String,
    pub customer_id: String,
    pub name: String,
    pub unit: String,
    pub current_balance: i64,
    pub minimum_balance: i64,
    pub held_balance: i64,
    /// `currentBalance − minimumBalance − heldBalance`.
    pub available_balance: i64,
    pub low_balance_threshold: Option<i64>,
    /// Dimension pairs the balance is scoped to, as given on creation; stored and returned,
    /// never used to pick a balance (a balance is named by its customer and `name`).
    pub dimension_filters: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Balance {
    pub fn funds(&self) -> Funds {
        Funds { current: self.current_balance, minimum: self.minimum_balance, held: self.held_balance }
    }
}

/// The unsigned size of a ledger entry: what moved the balance, or else what moved the holds.
pub fn unsigned_amount(kind: TransactionKind, amount: i64, hold_change: i64) -> i64 {
    match kind {
        TransactionKind::Hold | TransactionKind::Release | TransactionKind::Expire => hold_change.abs(),
        TransactionKind::Credit | TransactionKind::Debit | TransactionKind::Commit => amount.abs(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerTransaction {
    pub id: String,
    pub balance_id: String,
    #[serde(rename = "type")]
    pub kind: TransactionKind,
    /// Signed change of the balance: credits positive, debits and commits negative, so a
    /// balance equals the sum of its ledger's amounts.
    pub amount: i64,
    /// The size of the operation, never negative: `|amount|`, or `|holdChange|` for a hold,
    /// release or expiry. Limitry's documented ledger shows this figure as `amount`.
    pub unsigned_amount: i64,
    /// Signed change of the held total: holds positive, their settlement negative.
    pub hold_change: i64,
    pub description: Option<String>,
    pub reference: Option<String>,
    pub balance_after: i64,
    pub held_after: i64,
    pub reservation_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub id: String,
    pub balance_id: String,
    pub amount: i64,
    pub status: ReservationStatus,
    /// What a commit actually debited.
    pub committed_amount: Option<i64>,
    pub description: Option<String>,
    pub reference: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funds(current: i64, minimum: i64, held: i64) -> Funds {
        Funds { current, minimum, held }
    }

    #[test]
    fn overdraft_floors_and_reserves_shape_what_is_available() {
        assert_eq!(funds(100, 0, 0).available(), 100);
        assert_eq!(funds(100, -50, 0).available(), 150);
        assert_eq!(funds(100, 30, 20).available(), 50);
        assert_eq!(funds(10, 30, 0).available(), -20);
    }

    #[test]
    fn a_debit_takes_all_or_nothing() {
        assert_eq!(debit(&funds(100, 0, 0), 100).unwrap().amount, -100);
        assert_eq!(debit(&funds(100, 0, 0), 101), Err(Insufficient { available: 100 }));
        assert!(debit(&funds(0, -50, 0), 50).is_ok());
        assert!(debit(&funds(100, 0, 60), 41).is_err());
    }

    #[test]
    fn committing_more_than_the_hold_takes_only_what_is_available() {
        let f = funds(100, 0, 30); // 70 available besides the hold of 30
        assert_eq!(commit(&f, 30, 20), (Change { kind: TransactionKind::Commit, amount: -20, hold_change: -30 }, 20));
        assert_eq!(commit(&f, 30, 90).1, 90);
        assert_eq!(commit(&f, 30, 150).1, 100);
        let settled = f.apply(&commit(&f, 30, 150).0);
        assert_eq!(settled, Ok(funds(0, 0, 0)));
    }

    #[test]
    fn the_hold_itself_is_always_covered_even_under_an_uncovered_reserve() {
        let f = funds(50, 100, 30); // available −80
        assert_eq!(commit(&f, 30, 30).1, 30);
        assert_eq!(commit(&f, 30, 40).1, 30);
    }

    #[test]
    fn a_change_past_the_largest_balance_is_refused_not_wrapped() {
        let full = funds(MAX_BALANCE - 5, 0, 0);
        assert_eq!(full.apply(&credit(5)), Ok(funds(MAX_BALANCE, 0, 0)));
        assert_eq!(full.apply(&credit(6)), Err(OutOfRange));
        assert_eq!(funds(i64::MAX, 0, 0).apply(&credit(1)), Err(OutOfRange));
        let holding = Change { kind: TransactionKind::Hold, amount: 0, hold_change: 1 };
        assert_eq!(funds(0, -MAX_AMOUNT, MAX_BALANCE).apply(&holding), Err(OutOfRange));
    }

    #[test]
    fn the_unsigned_amount_is_the_size_of_what_moved() {
        assert_eq!(unsigned_amount(TransactionKind::Debit, -100, 0), 100);
        assert_eq!(unsigned_amount(TransactionKind::Credit, 500, 0), 500);
        assert_eq!(unsigned_amount(TransactionKind::Commit, -20, -30), 20);
        assert_eq!(unsigned_amount(TransactionKind::Hold, 0, 30), 30);
        assert_eq!(unsigned_amount(TransactionKind::Expire, 0, -30), 30);
    }

    #[test]
    fn amounts_must_be_whole_and_positive() {
        assert!(positive_amount(&serde_json::Number::from(0), "amount").is_err());
        assert!(positive_amount(&serde_json::Number::from_f64(1.5).unwrap(), "amount").is_err());
        assert_eq!(positive_amount(&serde_json::Number::from(7), "amount"), Ok(7));
    }
}
