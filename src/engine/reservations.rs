//! Reservations on limits: `mode: reserve` holds capacity on every limit governing a check
//! (and on the balances it names) until the work is committed with its actual usage, released,
//! or the hold expires.
//!
//! A reserve runs in one transaction: it locks the customer's counter rows of the limits it
//! judges (an upsert that adds nothing: the same rows a consume's upsert locks, so on
//! PostgreSQL reserves and consumes of one customer on any instance take turns), reads the
//! live holds, judges `used + held + requested` against each limit, and writes the holds. A
//! hold counts for every check and consume until its expiry, exactly: past it, it counts
//! nothing, whether or not the sweeper has marked it expired yet.
//!
//! A commit records the actual usage as an event first (through the group commit, with the
//! reservation's id as its idempotency key unless the event names one), then settles the
//! reservation and its balance holds in one transaction. If the process dies between the two,
//! the event is recorded and the hold lasts until its expiry; a retried commit records nothing
//! twice and settles it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::balances::{operate, track_low_balance, BalanceOperation, Idempotent};
use super::{BalanceRequirement, BalanceStatus, CheckQuery, CheckResponse, Engine};
use crate::db::balances::{IdempotencyClaim, LedgerRows};
use crate::db::limit_reservations::NewLimitReservation;
use crate::db::projects::Project;
use crate::db::{with_store, DbError, DbResult, Store, WriterSlot};
use crate::domain::balances::ReservationStatus;
use crate::domain::events::NewEvent;
use crate::domain::ids::new_id;
use crate::domain::limit_reservations::{held_by_limit, Hold, LimitReservation, ReservationEntry};
use crate::domain::limits::{governing_limits, Limit, LimitStatus};
use crate::domain::meters::{Aggregation, Counter};
use crate::domain::quantity::Quantity;
use crate::domain::usage::{merge_updates, CounterKey, CounterUpdate};

/// What to reserve: the check's customer, dimensions and balances, `requested` on each limit.
pub struct ReserveQuery<'a> {
    pub check: CheckQuery<'a>,
    pub requested: Quantity,
    pub ttl_seconds: i64,
}

/// How a reservation ends before its expiry.
pub enum Settlement<'a> {
    /// The work was done: `event` is its actual usage; balances are taken at the amounts
    /// named (by balance name), or at what they hold.
    Commit {
        event: NewEvent,
        balances: &'a [BalanceRequirement],
    },
    Release,
    Extend {
        ttl_seconds: i64,
    },
}

impl Settlement<'_> {
    /// As metrics and errors name it.
    pub fn name(&self) -> &'static str {
        match self {
            Settlement::Commit { .. } => "commit",
            Settlement::Release => "release",
            Settlement::Extend { .. } => "extend",
        }
    }
}

fn not_held(id: &str, status: ReservationStatus) -> DbError {
    DbError::Conflict(format!("reservation {id} is {}, no longer held", status.as_str()))
}

impl Engine {
    /// The holds of a customer's reservations: from memory, else in one query.
    pub(super) async fn holds(&self, customer_id: &str, read_database: &mut bool) -> DbResult<Arc<Vec<Hold>>> {
        if let Some(holds) = self.cache.holds(customer_id) {
            return Ok(holds);
        }
        *read_database = true;
        let permit = self.cache.permit();
        let slot = self.db.writer_slot().await;
        let holds = Arc::new(self.db.customer_holds(customer_id).await?);
        self.cache.fill_holds(&slot, permit, customer_id, holds.clone());
        Ok(holds)
    }

    /// After a committed change to a customer's reservations: what the check path holds of
    /// them is forgotten (on SQLite before any other writer or filling reader runs).
    fn holds_changed(&self, slot: &WriterSlot, customer_id: &str) {
        match self.db.is_exclusive() {
            true => self.cache.forget_holds_written(slot, customer_id),
            false => self.cache.forget_holds(customer_id),
        }
    }

    /// Holds `requested` on every limit governing the check, and each named balance's amount,
    /// for `ttl_seconds`, if all of them have room; otherwise nothing is held and the answer
    /// says why. With an idempotency claim, a retry gets the first answer back and holds
    /// nothing again (`render` makes the answer that is stored).
    pub async fn reserve(
        &self,
        project: &Arc<Project>,
        query: &ReserveQuery<'_>,
        claim: Option<&IdempotencyClaim<'_>>,
        render: impl FnOnce(&CheckResponse) -> (u16, String) + Send,
    ) -> DbResult<Idempotent<CheckResponse>> {
        let now = self.now();
        let now_ms = now.timestamp_millis();
        let expires_at = now + Duration::seconds(query.ttl_seconds);
        let check = &query.check;
        let permit = self.cache.permit();
        let outcome: DbResult<Idempotent<CheckResponse>> = with_store!(&self.db, s => {
            let mut tx = s.begin_write().await?;
            if let Some(claim) = claim {
                if let Some((status, body)) = s.claim_idempotency(&mut tx, &project.id, claim, now_ms).await? {
                    return Ok(Idempotent::Replayed { status, body });
                }
            }
            s.lock_project(&mut tx, &project.id, false).await?;
            let (limits, _meters) = s.limits_and_meters_tx(&mut tx, &project.id).await?;
            let (customers, created_customers) =
                s.ensure_customers_tx(&mut tx, &project.id, &[check.customer_ref], now_ms).await?;
            let customer = customers
                .get(check.customer_ref)
                .ok_or_else(|| DbError::Corrupt(format!("customer {} not ensured", check.customer_ref)))?;
            let zone = customer.window_zone(project.timezone);
            let applicable: Vec<&Limit> = governing_limits(&limits, &customer.id)
                .into_iter()
                .filter(|limit| limit.applies_to_check(check.dimensions))
                .collect();
            let anchor = customer.billing_cycle_start;
            let windows: Vec<_> = applicable.iter().map(|limit| limit.window_at(now, zone, anchor)).collect();
            // Adding nothing locks the rows (PostgreSQL) and reads them as they stand; a rolling
            // limit's window is read whole, under the lock its recorders take first.
            let touches = merge_updates(applicable.iter().map(|limit| CounterUpdate {
                key: CounterKey {
                    limit_id: limit.id.clone(),
                    customer_id: customer.id.clone(),
                    window_start: limit.counter_start_ms(now, zone, anchor),
                },
                aggregation: Aggregation::Sum,
                counter: Counter { value: Quantity::ZERO, latest_at: 0 },
            }));
            let mut rolling = s.begin_rolling_tx(&mut tx, &limits, &touches, now, |_| true).await?;
            let stored = s.apply_counter_updates_tx(&mut tx, &touches).await?;
            s.finish_rolling_tx(&mut tx, &limits, &mut rolling, &touches, &stored, now).await?;
            let counters: Vec<(CounterKey, _)> = touches.into_iter().map(|touch| touch.key).zip(stored).collect();
            let holds = s.customers_holds_tx(&mut tx, &[customer.id.as_str()]).await?.remove(&customer.id);
            let holds = holds.unwrap_or_default();
            let held = held_by_limit(&holds, now_ms);
            let status_of = |limit: &Limit, window, extra: Quantity| {
                let held = held.get(limit.id.as_str()).copied().unwrap_or_default().saturating_add(extra);
                let buckets = rolling.get(&(limit.id.clone(), customer.id.clone()));
                let buckets = buckets.map(|w| w.buckets.as_slice()).unwrap_or_default();
                let recorded = counters
                    .iter()
                    .find(|(key, _)| key.limit_id == limit.id)
                    .map_or(Quantity::ZERO, |(_, stored)| stored.counter.value);
                LimitStatus::at(limit, now, window, recorded, buckets, held, Some(query.requested))
            };
            let before: Vec<LimitStatus> =
                applicable.iter().zip(&windows).map(|(limit, window)| status_of(limit, window, Quantity::ZERO)).collect();
            let refused = |reason: &str, limits: Vec<LimitStatus>, balances: Vec<BalanceStatus>| CheckResponse {
                allowed: false,
                reason: Some(reason.to_string()),
                customer_id: customer.id.clone(),
                limits,
                balances,
                as_of: now,
                event_id: None,
                duplicate: None,
                reservation_id: None,
                expires_at: None,
            };
            if !before.iter().all(|status| status.passes(Some(query.requested))) {
                // Nothing was written that must stay: the transaction rolls back when dropped.
                return Ok(Idempotent::Fresh(refused("limit_exceeded", before, Vec::new())));
            }
            let id = new_id("lres", now_ms);
            let mut balances = Vec::with_capacity(check.balances.len());
            let mut balance_reservations = Vec::with_capacity(check.balances.len());
            let mut short = false;
            for requirement in check.balances {
                let Some(balance) = self.db.balance_by_name(&project.id, &customer.id, &requirement.name).await? else {
                    short = true;
                    balances.push(BalanceStatus {
                        name: requirement.name.clone(),
                        balance_id: None,
                        amount: requirement.amount,
                        available_balance: 0,
                        sufficient: false,
                    });
                    continue;
                };
                let operation = BalanceOperation::Reserve {
                    balance_id: &balance.id,
                    amount: requirement.amount,
                    ttl_seconds: query.ttl_seconds,
                    description: Some("Held by a limit reservation"),
                    reference: Some(&id),
                };
                let result = operate(s, &mut tx, &project.id, &operation, now).await?;
                short |= result.refused.is_some();
                track_low_balance(s, &mut tx, &project.id, &result.balance, now).await?;
                balances.push(BalanceStatus {
                    name: requirement.name.clone(),
                    balance_id: Some(balance.id.clone()),
                    amount: requirement.amount,
                    available_balance: result.balance.available_balance,
                    sufficient: result.refused.is_none(),
                });
                balance_reservations.extend(result.reservation.map(|r| r.id));
            }
            if short {
                return Ok(Idempotent::Fresh(refused("insufficient_balance", before, balances)));
            }
            let limit_ids: Vec<&str> = applicable.iter().map(|limit| limit.id.as_str()).collect();
            s.insert_limit_reservation_tx(&mut tx, &NewLimitReservation {
                id: &id,
                project_id: &project.id,
                customer_id: &customer.id,
                requested: query.requested,
                dimensions: check.dimensions,
                limit_ids: &limit_ids,
                balance_reservation_ids: &balance_reservations,
                expires_at_ms: expires_at.timestamp_millis(),
            }, now_ms).await?;
            s.announce_counters_tx(&mut tx, &counters).await?;
            s.announce_holds_tx(&mut tx, &customer.id).await?;
            let answer = CheckResponse {
                allowed: true,
                reason: None,
                customer_id: customer.id.clone(),
                limits: applicable.iter().zip(&windows).map(|(limit, window)| status_of(limit, window, query.requested)).collect(),
                balances,
                as_of: now,
                event_id: None,
                duplicate: None,
                reservation_id: Some(id),
                expires_at: Some(expires_at),
            };
            if let Some(claim) = claim {
                s.store_idempotent_answer(&mut tx, &project.id, claim.key, render(&answer)).await?;
            }
            let writer = tx.commit_holding_slot().await?;
            self.cache.store_counters(&writer, permit, &counters);
            self.holds_changed(&writer, &customer.id);
            if created_customers {
                match self.db.is_exclusive() {
                    true => self.cache.forget_absent(&writer, &project.id, std::iter::once(check.customer_ref)),
                    false => self.cache.forget_absences(),
                }
            }
            Ok(Idempotent::Fresh(answer))
        });
        let outcome = outcome?;
        if let Idempotent::Fresh(answer) = &outcome {
            self.metrics.check_answered(true, answer.reason.as_deref());
        }
        Ok(outcome)
    }

    /// Commits, releases or extends a held reservation. A reservation that is no longer held
    /// (settled, or past its expiry) is a conflict; one past its expiry is marked expired.
    pub async fn settle_reservation(
        &self,
        project: &Arc<Project>,
        id: &str,
        settlement: Settlement<'_>,
        claim: Option<&IdempotencyClaim<'_>>,
        render: impl FnOnce(&LimitReservation) -> (u16, String) + Send,
    ) -> DbResult<Idempotent<LimitReservation>> {
        let before = self
            .db
            .limit_reservation(&project.id, id)
            .await?
            .ok_or_else(|| DbError::NotFound { resource: "reservation", id: id.to_string() })?;
        let (event, balance_amounts, ttl_seconds) = match settlement {
            Settlement::Commit { event, balances } => (Some(event), balances, None),
            Settlement::Release => (None, &[][..], None),
            Settlement::Extend { ttl_seconds } => (None, &[][..], Some(ttl_seconds)),
        };
        if before.status != ReservationStatus::Held {
            // A retry of a settlement that completed gets its first answer; otherwise a
            // reservation no longer held changes nothing and records nothing.
            if let Some(claim) = claim {
                let replayed = with_store!(&self.db, s => {
                    let mut tx = s.begin_write().await?;
                    s.claim_idempotency(&mut tx, &project.id, claim, self.now().timestamp_millis()).await?
                });
                if let Some((status, body)) = replayed {
                    return Ok(Idempotent::Replayed { status, body });
                }
            }
            return Err(not_held(id, before.status));
        }
        let recorded = match event {
            Some(mut event) => {
                event.customer_ref.clone_from(&before.customer_id);
                event.idempotency_key.get_or_insert_with(|| id.to_string());
                let project = project.clone();
                self.record(&project, vec![event]).await?.pop()
            }
            None => None,
        };
        let now = self.now();
        let now_ms = now.timestamp_millis();
        with_store!(&self.db, s => {
            let mut tx = s.begin_write().await?;
            if let Some(claim) = claim {
                if let Some((status, body)) = s.claim_idempotency(&mut tx, &project.id, claim, now_ms).await? {
                    return Ok(Idempotent::Replayed { status, body });
                }
            }
            let locked = s
                .lock_limit_reservation_tx(&mut tx, &project.id, id)
                .await?
                .ok_or_else(|| DbError::NotFound { resource: "reservation", id: id.to_string() })?;
            if locked.status != ReservationStatus::Held {
                return Err(not_held(id, locked.status));
            }
            if locked.expires_at_ms <= now_ms {
                // Past its expiry it held nothing any more; the sweeper would mark it so.
                s.settle_limit_reservation_tx(&mut tx, id, ReservationStatus::Expired, None, now_ms).await?;
                s.announce_holds_tx(&mut tx, &locked.customer_id).await?;
                let writer = tx.commit_holding_slot().await?;
                self.holds_changed(&writer, &locked.customer_id);
                return Err(not_held(id, ReservationStatus::Expired));
            }
            let mut after = before.clone();
            let entry = |kind: &str, expires_at: Option<DateTime<Utc>>, event_id: Option<String>| ReservationEntry {
                kind: kind.to_string(),
                expires_at,
                event_id,
                created_at: now,
            };
            match ttl_seconds {
                Some(ttl_seconds) => {
                    let expires_at = now + Duration::seconds(ttl_seconds);
                    let until = expires_at.timestamp_millis();
                    s.extend_limit_reservation_tx(&mut tx, id, &locked.balance_reservation_ids, until, now_ms).await?;
                    after.expires_at = expires_at;
                    after.entries.push(entry("extended", Some(expires_at), None));
                }
                None => {
                    let (status, event_id) = match &recorded {
                        Some(event) => (ReservationStatus::Committed, Some(event.id.clone())),
                        None => (ReservationStatus::Released, None),
                    };
                    s.settle_limit_reservation_tx(&mut tx, id, status, event_id.as_deref(), now_ms).await?;
                    for balance_reservation in &locked.balance_reservation_ids {
                        let operation = match status {
                            ReservationStatus::Committed => {
                                let held = s.reservation(&mut tx, &project.id, balance_reservation).await?;
                                let balance = s
                                    .lock_balance(&mut tx, &held.balance_id)
                                    .await?
                                    .ok_or_else(|| DbError::NotFound { resource: "balance", id: held.balance_id.clone() })?;
                                let actual = balance_amounts
                                    .iter()
                                    .find(|named| named.name == balance.name)
                                    .map_or(held.amount, |named| named.amount);
                                BalanceOperation::Commit {
                                    reservation_id: balance_reservation,
                                    actual,
                                    description: Some("Committed with a limit reservation"),
                                }
                            }
                            _ => BalanceOperation::Release { reservation_id: balance_reservation },
                        };
                        let result = operate(s, &mut tx, &project.id, &operation, now).await?;
                        track_low_balance(s, &mut tx, &project.id, &result.balance, now).await?;
                    }
                    after.status = status;
                    after.event_id.clone_from(&event_id);
                    after.settled_at = Some(now);
                    after.entries.push(entry(status.as_str(), None, event_id));
                }
            }
            s.announce_holds_tx(&mut tx, &locked.customer_id).await?;
            if let Some(claim) = claim {
                s.store_idempotent_answer(&mut tx, &project.id, claim.key, render(&after)).await?;
            }
            let writer = tx.commit_holding_slot().await?;
            self.holds_changed(&writer, &locked.customer_id);
            Ok(Idempotent::Fresh(after))
        })
    }

    /// Marks every held reservation past its expiry as expired, each exactly once; returns
    /// how many. Their capacity came back at the expiry already: this writes the trail.
    pub async fn expire_due_reservations(&self) -> DbResult<usize> {
        let now = self.now();
        let now_ms = now.timestamp_millis();
        let mut expired = 0;
        for (project_id, id) in self.db.due_limit_reservations(now_ms).await? {
            expired += with_store!(&self.db, s => {
                let mut tx = s.begin_write().await?;
                let Some(locked) = s.lock_limit_reservation_tx(&mut tx, &project_id, &id).await? else { continue };
                if locked.status != ReservationStatus::Held || locked.expires_at_ms > now_ms {
                    continue;
                }
                s.settle_limit_reservation_tx(&mut tx, &id, ReservationStatus::Expired, None, now_ms).await?;
                s.announce_holds_tx(&mut tx, &locked.customer_id).await?;
                let writer = tx.commit_holding_slot().await?;
                self.holds_changed(&writer, &locked.customer_id);
                1
            });
        }
        Ok(expired)
    }

    /// A reservation with its trail.
    pub async fn reservation(&self, project: &Project, id: &str) -> DbResult<LimitReservation> {
        self.db
            .limit_reservation(&project.id, id)
            .await?
            .ok_or_else(|| DbError::NotFound { resource: "reservation", id: id.to_string() })
    }
}
