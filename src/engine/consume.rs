//! Consume: judging a check and recording its usage in one atomic step, so that concurrent
//! requests cannot together take a limit past its value.
//!
//! A consume goes through the group-commit writer like any record. Inside the transaction,
//! once its counters are upserted, the judge compares each counter a consumed event fed with
//! the limit's value; on PostgreSQL the upsert holds the counter's row until the transaction
//! ends, so what the judge sees is exact even with other instances recording on the same
//! database. A rolling limit is judged by its whole window, read in the transaction under the
//! lock its recorders take in turn (see `Db::record_events_judged`). A consume that does not
//! fit rolls the transaction back; in a group the requests are then committed one by one, so
//! only the consume that does not fit is refused. Holds of reservations count as used: a
//! reserve takes the same locks (see `reservations`).

use std::sync::Arc;

use super::{CheckQuery, CheckResponse, Engine};
use crate::db::events::PendingRecord;
use crate::db::projects::Project;
use crate::db::{DbError, DbResult};
use crate::domain::events::NewEvent;
use crate::domain::limits::governing_limits;
use crate::domain::meters::Aggregation;
use crate::domain::quantity::Quantity;
use crate::domain::usage::{contributions, Contribution, StoredCounter, Usage};

/// Refuses the pending record if, with a consumed event (`consumed[i]` for `events[i]`), any
/// limit governing its customer and counting it would be past its value. Duplicates of an
/// earlier idempotency key add nothing and pass.
pub(crate) fn judge_consumes(pending: &PendingRecord<'_>, consumed: &[bool]) -> DbResult<()> {
    // The group's updates are in key order (`merge_contributions`), the stored states beside them.
    debug_assert!(pending.updates.is_sorted_by(|a, b| a.key < b.key));
    let stored = |contribution: &Contribution<'_>| -> Option<StoredCounter> {
        let at = pending.updates.binary_search_by(|update| update.contribution().key_cmp(contribution)).ok()?;
        pending.stored.get(at).copied()
    };
    for ((event, recorded), consume) in pending.events.iter().zip(pending.recorded).zip(consumed) {
        if !consume || recorded.duplicate {
            continue;
        }
        let Some(customer) = pending.customers.get(&event.customer_ref) else { continue };
        let governing = governing_limits(pending.limits, &customer.id);
        let usage = Usage {
            event_type: &event.event_type,
            dimensions: &event.dimensions,
            quantities: &event.quantities,
            occurred_at: event.occurred_at,
        };
        for own in contributions(pending.limits, pending.meters, customer, pending.project.timezone, usage) {
            let Some(limit) = governing.iter().find(|limit| limit.id == own.limit_id) else { continue };
            let held = pending
                .held
                .iter()
                .find(|(limit_id, customer_id, _)| *limit_id == limit.id && *customer_id == customer.id)
                .map_or(Quantity::ZERO, |(_, _, amount)| *amount);
            // A rolling limit counts its whole window, not the bucket; reservations' live
            // holds count as used.
            let recorded =
                pending.rolling_usage(own.limit_id, own.customer_id).or_else(|| stored(&own).map(|s| s.counter.value));
            let after = recorded.map(|recorded| recorded.saturating_add(held));
            // A group's counters hold every event of it: for `max` and `latest`, whose final
            // value need not include this event's, its own value must fit too.
            let own_too_large = matches!(own.aggregation, Aggregation::Max | Aggregation::Latest)
                && own.counter.value > limit.limit_value;
            if own_too_large || after.is_none_or(|after| after > limit.limit_value) {
                return Err(DbError::WouldExceedLimit { limit_id: limit.id.clone() });
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Judges and records in one atomic step: `event` is recorded if and only if, with it,
    /// every limit governing the customer whose meter counts it stays within its value. The
    /// answer lists the limits of `query` as they stand afterwards, and the event's id when
    /// it was recorded; a retry with the same idempotency key is recorded once.
    pub async fn consume(
        &self,
        project: &Arc<Project>,
        query: &CheckQuery<'_>,
        event: NewEvent,
    ) -> DbResult<CheckResponse> {
        let recorded = match self.committer.consume(project.clone(), vec![event]).await {
            Ok(recorded) => recorded.into_iter().next(),
            Err(DbError::WouldExceedLimit { .. }) => None,
            Err(other) => return Err(other),
        };
        if let Some(event) = &recorded {
            self.metrics.events_recorded(usize::from(event.duplicate), usize::from(!event.duplicate));
        }
        let mut answer = self.check(project, query).await?;
        match recorded {
            Some(event) => {
                answer.allowed = true;
                answer.reason = None;
                answer.event_id = Some(event.id);
                answer.duplicate = Some(event.duplicate);
            }
            None => {
                answer.allowed = false;
                answer.reason = Some("limit_exceeded".to_string());
            }
        }
        Ok(answer)
    }
}
