//! The ledger's atomic operations: credit, debit, hold, commit, release and expiry, with
//! stored answers for idempotent retries.
//!
//! Every operation locks the balance row for its transaction (`for update` on PostgreSQL; the
//! single writer on SQLite), decides with the pure rules of `domain::balances`, then writes the
//! new funds and one ledger entry per change. Due holds of the balance expire first, so what is
//! available never counts a hold past its expiry. The rows are `db::balances::LedgerRows`.

use chrono::{DateTime, Duration, Utc};

use super::Engine;
use crate::db::balances::{IdempotencyClaim, LedgerRows, NewBalance};
use crate::db::projects::Project;
use crate::db::{with_store, DbError, DbResult, Store, WriteTx};
use crate::domain::audit::{Actor, AuditChange, AuditKind};
use crate::domain::balances::{
    self, Balance, Change, Insufficient, LedgerTransaction, Reservation, ReservationStatus, TransactionKind,
};
use crate::domain::ids::new_id;
use crate::domain::webhooks::EventType;

/// A ledger operation on one balance or reservation.
pub enum BalanceOperation<'a> {
    Credit {
        balance_id: &'a str,
        amount: i64,
        description: &'a str,
        reference: Option<&'a str>,
    },
    Debit {
        balance_id: &'a str,
        amount: i64,
        description: Option<&'a str>,
        reference: Option<&'a str>,
    },
    Reserve {
        balance_id: &'a str,
        amount: i64,
        ttl_seconds: i64,
        description: Option<&'a str>,
        reference: Option<&'a str>,
    },
    Commit {
        reservation_id: &'a str,
        actual: i64,
        description: Option<&'a str>,
    },
    Release {
        reservation_id: &'a str,
    },
}

impl BalanceOperation<'_> {
    /// As metrics name it.
    pub fn name(&self) -> &'static str {
        match self {
            BalanceOperation::Credit { .. } => "credit",
            BalanceOperation::Debit { .. } => "debit",
            BalanceOperation::Reserve { .. } => "reserve",
            BalanceOperation::Commit { .. } => "commit",
            BalanceOperation::Release { .. } => "release",
        }
    }
}

/// What an operation did. `refused` is set (and nothing changed) when funds were short.
#[derive(Debug, Clone)]
pub struct OperationResult {
    pub balance: Balance,
    pub transaction: Option<LedgerTransaction>,
    pub reservation: Option<Reservation>,
    pub refused: Option<Insufficient>,
    /// For a commit: what was actually debited.
    pub taken: Option<i64>,
}

/// A first answer, or the stored answer to an earlier request with the same key.
pub enum Idempotent<T> {
    Fresh(T),
    Replayed { status: u16, body: String },
}

impl Engine {
    /// Creates a balance for a customer, creating the customer if the reference names none
    /// yet (which the check path may remember as absent). A positive initial balance is its
    /// first ledger entry (a credit).
    pub async fn create_balance(
        &self,
        project: &Project,
        customer_ref: &str,
        new: &NewBalance<'_>,
        actor: &Actor,
    ) -> DbResult<Balance> {
        let now = self.now();
        let customer = match self.db.customer(&project.id, customer_ref).await? {
            Some(customer) => customer,
            None => {
                let _clears_copies = self.begin_write();
                self.db.ensure_customer(&project.id, customer_ref, now.timestamp_millis()).await?
            }
        };
        let id = new_id("bal", now.timestamp_millis());
        with_store!(&self.db, s => {
            let mut tx = s.begin_write().await?;
            s.insert_balance(&mut tx, &project.id, &customer.id, &id, new, now.timestamp_millis()).await?;
            let mut balance = s.lock_balance(&mut tx, &id).await?.ok_or_else(|| DbError::Corrupt("new balance".into()))?;
            if new.initial_balance != 0 {
                let change = balances::credit(new.initial_balance);
                balance = write_change(s, &mut tx, &balance, &change, Some("Initial balance"), None, None, now).await?.0;
            }
            let summary = format!(
                "Balance {} created for customer {} with {} {}",
                balance.name, customer.external_id, new.initial_balance, balance.unit
            );
            let change = AuditChange::new(AuditKind::Balance, "created", &balance.id, summary);
            s.insert_audit_tx(&mut tx, &project.id, &actor.label(), &change, now).await?;
            tx.commit().await?;
            Ok(balance)
        })
    }

    /// Runs one ledger operation atomically. With an idempotency claim, a retry gets the first
    /// answer back (`render` makes the answer that is stored) and changes nothing again.
    /// Credits and debits are written to the audit log in the same transaction, as `actor`'s.
    pub async fn operate_balance(
        &self,
        project: &Project,
        operation: &BalanceOperation<'_>,
        claim: Option<&IdempotencyClaim<'_>>,
        actor: &Actor,
        render: impl FnOnce(&OperationResult) -> (u16, String) + Send,
    ) -> DbResult<Idempotent<OperationResult>> {
        let outcome = self.operate_once(project, operation, claim, actor, render).await?;
        let answered = match &outcome {
            Idempotent::Fresh(result) if result.refused.is_some() => "insufficient_balance",
            Idempotent::Fresh(_) => "applied",
            Idempotent::Replayed { .. } => "replayed",
        };
        self.metrics.balance_operation(operation.name(), answered);
        Ok(outcome)
    }

    async fn operate_once(
        &self,
        project: &Project,
        operation: &BalanceOperation<'_>,
        claim: Option<&IdempotencyClaim<'_>>,
        actor: &Actor,
        render: impl FnOnce(&OperationResult) -> (u16, String) + Send,
    ) -> DbResult<Idempotent<OperationResult>> {
        let now = self.now();
        with_store!(&self.db, s => {
            let mut tx = s.begin_write().await?;
            if let Some(claim) = claim {
                if let Some((status, body)) = s.claim_idempotency(&mut tx, &project.id, claim, now.timestamp_millis()).await? {
                    return Ok(Idempotent::Replayed { status, body });
                }
            }
            let result = operate(s, &mut tx, &project.id, operation, now).await?;
            track_low_balance(s, &mut tx, &project.id, &result.balance, now).await?;
            if let Some(change_naming) = audit_change(operation, &result) {
                let customer = s.customer_reference_tx(&mut tx, &result.balance.customer_id).await?;
                let change = change_naming(customer.as_deref().unwrap_or(&result.balance.customer_id));
                s.insert_audit_tx(&mut tx, &project.id, &actor.label(), &change, now).await?;
            }
            if let Some(claim) = claim {
                s.store_idempotent_answer(&mut tx, &project.id, claim.key, render(&result)).await?;
            }
            tx.commit().await?;
            Ok(Idempotent::Fresh(result))
        })
    }

    /// Expires every hold that is due, each exactly once; returns how many balances it touched.
    pub async fn expire_due_holds(&self) -> DbResult<usize> {
        let now = self.now();
        let balance_ids = self.db.balances_with_due_holds(now).await?;
        for balance_id in &balance_ids {
            with_store!(&self.db, s => {
                let mut tx = s.begin_write().await?;
                if let Some(balance) = s.lock_balance(&mut tx, balance_id).await? {
                    expire_due_holds(s, &mut tx, balance, now).await?;
                }
                tx.commit().await?;
            });
        }
        Ok(balance_ids.len())
    }
}

/// The audit entry of a balance movement, given the customer's externalId: credits and debits
/// that moved money (a refused debit moved none). Holds and their commits are the product's
/// metering at work, kept in the ledger only.
fn audit_change<'a>(
    operation: &BalanceOperation<'a>,
    result: &OperationResult,
) -> Option<impl FnOnce(&str) -> AuditChange + 'a> {
    let (action, verb, preposition, amount, description) = match operation {
        _ if result.refused.is_some() => return None,
        BalanceOperation::Credit { amount, description, .. } => {
            ("credited", "Credited", "to", *amount, Some(*description))
        }
        BalanceOperation::Debit { amount, description, .. } => ("debited", "Debited", "from", *amount, *description),
        _ => return None,
    };
    let balance = result.balance.clone();
    Some(move |customer: &str| {
        let mut summary = format!(
            "{verb} {amount} {} {preposition} balance {} of customer {customer}; {} {} after",
            balance.unit, balance.name, balance.current_balance, balance.unit
        );
        if let Some(description) = description.filter(|d| !d.is_empty()) {
            summary.push_str(&format!(" ({description})"));
        }
        AuditChange::new(AuditKind::Balance, action, &balance.id, summary)
    })
}

/// Writes a change's new funds and its ledger entry.
#[allow(clippy::too_many_arguments)]
async fn write_change<S: LedgerRows>(
    s: &S,
    tx: &mut WriteTx<S::Database>,
    balance: &Balance,
    change: &Change,
    description: Option<&str>,
    reference: Option<&str>,
    reservation_id: Option<&str>,
    now: DateTime<Utc>,
) -> DbResult<(Balance, LedgerTransaction)> {
    let funds = balance.funds().apply(change).map_err(|_| DbError::OutOfRange {
        field: "amount".into(),
        message: format!("would take the balance or its holds beyond ±{}, the largest balance", balances::MAX_BALANCE),
    })?;
    let now_ms = now.timestamp_millis();
    s.write_funds(tx, &balance.id, &funds, now_ms).await?;
    let entry = LedgerTransaction {
        id: new_id("txn", now_ms),
        balance_id: balance.id.clone(),
        kind: change.kind,
        amount: change.amount,
        unsigned_amount: balances::unsigned_amount(change.kind, change.amount, change.hold_change),
        hold_change: change.hold_change,
        description: description.map(str::to_string),
        reference: reference.map(str::to_string),
        balance_after: funds.current,
        held_after: funds.held,
        reservation_id: reservation_id.map(str::to_string),
        created_at: crate::db::ms_to_time(now_ms),
    };
    s.insert_ledger_entry(tx, &entry).await?;
    let updated = Balance {
        current_balance: funds.current,
        held_balance: funds.held,
        available_balance: funds.available(),
        updated_at: entry.created_at,
        ..balance.clone()
    };
    Ok((updated, entry))
}

/// Expires the balance's holds that are due, each once, with a ledger entry.
async fn expire_due_holds<S: LedgerRows>(
    s: &S,
    tx: &mut WriteTx<S::Database>,
    mut balance: Balance,
    now: DateTime<Utc>,
) -> DbResult<Balance> {
    let now_ms = now.timestamp_millis();
    for (reservation_id, amount) in s.due_holds(tx, &balance.id, now_ms).await? {
        if s.settle_reservation(tx, &reservation_id, ReservationStatus::Expired, None, now_ms).await? {
            let change = balances::release(amount, TransactionKind::Expire);
            let description = Some("Reservation expired");
            balance = write_change(s, tx, &balance, &change, description, None, Some(&reservation_id), now).await?.0;
        }
    }
    Ok(balance)
}

/// `balance.low` fires when what is available falls below the balance's threshold, once, and
/// re-arms when a credit (or a released hold) lifts it again.
pub(super) async fn track_low_balance<S: LedgerRows>(
    s: &S,
    tx: &mut WriteTx<S::Database>,
    project_id: &str,
    balance: &Balance,
    now: DateTime<Utc>,
) -> DbResult<()> {
    let Some(threshold) = balance.low_balance_threshold else { return Ok(()) };
    let low = balance.available_balance < threshold;
    if low == s.low_alerted(tx, &balance.id).await? {
        return Ok(());
    }
    s.set_low_alerted(tx, &balance.id, low).await?;
    if low {
        let external_id = s.customer_external_id(tx, &balance.customer_id).await?;
        let data = serde_json::json!({
            "balanceId": balance.id,
            "name": balance.name,
            "unit": balance.unit,
            "customerId": balance.customer_id,
            "customerExternalId": external_id,
            "currentBalance": balance.current_balance,
            "availableBalance": balance.available_balance,
            "lowBalanceThreshold": threshold,
        });
        s.enqueue_event(tx, project_id, EventType::BalanceLow, data, now).await?;
    }
    Ok(())
}

/// One operation inside the caller's transaction.
pub(super) async fn operate<S: LedgerRows>(
    s: &S,
    tx: &mut WriteTx<S::Database>,
    project_id: &str,
    operation: &BalanceOperation<'_>,
    now: DateTime<Utc>,
) -> DbResult<OperationResult> {
    let (balance_id, reservation) = match operation {
        BalanceOperation::Credit { balance_id, .. }
        | BalanceOperation::Debit { balance_id, .. }
        | BalanceOperation::Reserve { balance_id, .. } => (balance_id.to_string(), None),
        BalanceOperation::Commit { reservation_id, .. } | BalanceOperation::Release { reservation_id } => {
            let reservation = s.reservation(tx, project_id, reservation_id).await?;
            (reservation.balance_id.clone(), Some(reservation))
        }
    };
    let balance = s
        .lock_balance(tx, &balance_id)
        .await?
        .ok_or_else(|| DbError::NotFound { resource: "balance", id: balance_id.clone() })?;
    let balance = expire_due_holds(s, tx, balance, now).await?;
    let unchanged = |balance: Balance, refused: Option<Insufficient>| OperationResult {
        balance,
        transaction: None,
        reservation: None,
        refused,
        taken: None,
    };
    match *operation {
        BalanceOperation::Credit { amount, description, reference, .. } => {
            let change = balances::credit(amount);
            let (balance, entry) =
                write_change(s, tx, &balance, &change, Some(description), reference, None, now).await?;
            Ok(OperationResult { transaction: Some(entry), ..unchanged(balance, None) })
        }
        BalanceOperation::Debit { amount, description, reference, .. } => {
            match balances::debit(&balance.funds(), amount) {
                Err(short) => Ok(unchanged(balance, Some(short))),
                Ok(change) => {
                    let (balance, entry) =
                        write_change(s, tx, &balance, &change, description, reference, None, now).await?;
                    Ok(OperationResult { transaction: Some(entry), ..unchanged(balance, None) })
                }
            }
        }
        BalanceOperation::Reserve { amount, ttl_seconds, description, reference, .. } => {
            match balances::hold(&balance.funds(), amount) {
                Err(short) => Ok(unchanged(balance, Some(short))),
                Ok(change) => {
                    let now_ms = now.timestamp_millis();
                    let created_at = crate::db::ms_to_time(now_ms);
                    let reservation = Reservation {
                        id: new_id("res", now_ms),
                        balance_id: balance.id.clone(),
                        amount,
                        status: ReservationStatus::Held,
                        committed_amount: None,
                        description: description.map(str::to_string),
                        reference: reference.map(str::to_string),
                        expires_at: created_at + Duration::seconds(ttl_seconds),
                        created_at,
                        settled_at: None,
                    };
                    s.insert_reservation(tx, &reservation).await?;
                    let held_by = Some(reservation.id.as_str());
                    let (balance, entry) =
                        write_change(s, tx, &balance, &change, description, reference, held_by, now).await?;
                    Ok(OperationResult {
                        transaction: Some(entry),
                        reservation: Some(reservation),
                        ..unchanged(balance, None)
                    })
                }
            }
        }
        BalanceOperation::Commit { actual, description, .. } => {
            settle(s, tx, project_id, balance, reservation, Some(actual), description, now).await
        }
        BalanceOperation::Release { .. } => settle(s, tx, project_id, balance, reservation, None, None, now).await,
    }
}

/// Commits (with the actual amount) or releases a hold.
#[allow(clippy::too_many_arguments)]
async fn settle<S: LedgerRows>(
    s: &S,
    tx: &mut WriteTx<S::Database>,
    project_id: &str,
    balance: Balance,
    reservation: Option<Reservation>,
    actual: Option<i64>,
    description: Option<&str>,
    now: DateTime<Utc>,
) -> DbResult<OperationResult> {
    let reservation = reservation.ok_or_else(|| DbError::Corrupt("reservation".into()))?;
    // Re-read under the balance lock: a concurrent settlement or the expiry sweep may just
    // have settled it.
    let reservation = s.reservation(tx, project_id, &reservation.id).await?;
    if reservation.status != ReservationStatus::Held {
        return Err(DbError::Conflict(format!(
            "reservation {} is already {}",
            reservation.id,
            reservation.status.as_str()
        )));
    }
    let (change, taken, status) = match actual {
        Some(actual) => {
            let (change, taken) = balances::commit(&balance.funds(), reservation.amount, actual);
            (change, Some(taken), ReservationStatus::Committed)
        }
        None => (balances::release(reservation.amount, TransactionKind::Release), None, ReservationStatus::Released),
    };
    s.settle_reservation(tx, &reservation.id, status, taken, now.timestamp_millis()).await?;
    let description = description.or(reservation.description.as_deref());
    let reference = reservation.reference.as_deref();
    let (balance, entry) =
        write_change(s, tx, &balance, &change, description, reference, Some(&reservation.id), now).await?;
    let reservation = Reservation { status, committed_amount: taken, settled_at: Some(now), ..reservation };
    Ok(OperationResult { balance, transaction: Some(entry), reservation: Some(reservation), refused: None, taken })
}
