//! Group commit: concurrent records share transactions.
//!
//! Every record and batch is queued to one writer per engine. The writer takes what is
//! queued (up to `MAX_GROUP_EVENTS`), commits it per project in one transaction, and only then
//! answers each request with its own results, so a 200 still means committed. While a group
//! commits the next one gathers, so no timer is needed: the busier the service, the larger the
//! groups, and one sync covers them all. The writer runs on a thread of its own, so a client
//! that hangs up cannot cut a commit short: its events are committed or not as a whole, like
//! everyone's.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, Notify};

use super::cache::Cache;
use super::consume::judge_consumes;
use crate::clock::Clock;
use crate::db::counters::SAVE_UNSAVED_AFTER;
use crate::db::events::{PendingRecord, RecordMemory, RecordedEvent};
use crate::db::projects::Project;
use crate::db::{Db, DbError, DbResult, WriterSlot};
use crate::domain::events::NewEvent;
use crate::domain::usage::{AlertKey, CounterUpdate};
use crate::telemetry::RecordGroups;

/// Most events one group commits; a request is never split, so a group may exceed it by one
/// request's batch.
const MAX_GROUP_EVENTS: usize = 2_000;
/// Requests that may wait for the writer before new ones wait to be queued.
const QUEUE_DEPTH: usize = 4_096;

/// One request's events and where its answer goes.
struct Submission {
    project: Arc<Project>,
    events: Vec<NewEvent>,
    /// A consume: recorded only if every limit governing it stays within its value, judged
    /// inside the transaction (see `consume`).
    consume: bool,
    reply: oneshot::Sender<DbResult<Vec<RecordedEvent>>>,
}

/// The queue in front of the writer.
pub(crate) struct GroupCommitter {
    queue: mpsc::Sender<Submission>,
    closing: Arc<Notify>,
    /// Answers once the writer has stopped.
    writer: Mutex<Option<oneshot::Receiver<()>>>,
}

impl GroupCommitter {
    /// Starts the writer; it stops once closed (or the committer dropped) and the queue drained.
    pub(crate) fn start(db: Db, cache: Arc<Cache>, clock: Arc<dyn Clock>, groups: RecordGroups) -> GroupCommitter {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let closing = Arc::new(Notify::new());
        let groups = write_groups(Arc::new(Writer { db, cache, clock, groups }), receiver, closing.clone());
        let (stopped, writer) = oneshot::channel();
        let run = async move {
            groups.await;
            let _ = stopped.send(());
        };
        // The writer has a thread and a runtime of its own. On SQLite, a group committed at
        // once runs its statements on it, instead of handing them to SQLite's thread and
        // waiting to be woken (see `SqliteStore::record_at_once`). On PostgreSQL, the answer
        // to a group's statement wakes it at once, where on the service's runtime it waited
        // for a turn behind the requests' tasks: under checks and records at once, records
        // went two fifths faster. Either way the writer's waits stay out of the service's runtime.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let started = runtime.and_then(|runtime| {
            std::thread::Builder::new().name("limitry-writer".into()).spawn(move || runtime.block_on(run))
        });
        started.expect("the group commit's writer thread starts");
        GroupCommitter { queue, closing, writer: Mutex::new(Some(writer)) }
    }

    /// Requests queued and not yet taken by the writer.
    pub(crate) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Refuses new records, commits every queued one and waits for the writer to stop.
    pub(crate) async fn close(&self) {
        self.closing.notify_one();
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }

    /// Records the events with whatever else is queued, answering once they are committed.
    pub(crate) async fn record(&self, project: Arc<Project>, events: Vec<NewEvent>) -> DbResult<Vec<RecordedEvent>> {
        self.submit(project, events, false).await
    }

    /// Records the events only if every limit governing them stays within its value with
    /// them; otherwise `DbError::WouldExceedLimit` and nothing is written.
    pub(crate) async fn consume(&self, project: Arc<Project>, events: Vec<NewEvent>) -> DbResult<Vec<RecordedEvent>> {
        self.submit(project, events, true).await
    }

    async fn submit(
        &self,
        project: Arc<Project>,
        events: Vec<NewEvent>,
        consume: bool,
    ) -> DbResult<Vec<RecordedEvent>> {
        let (reply, answer) = oneshot::channel();
        let lost = || DbError::Corrupt("the record was not committed: its group failed unexpectedly".into());
        self.queue.send(Submission { project, events, consume, reply }).await.map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }
}

struct Writer {
    db: Db,
    cache: Arc<Cache>,
    clock: Arc<dyn Clock>,
    groups: RecordGroups,
}

async fn write_groups(writer: Arc<Writer>, mut queue: mpsc::Receiver<Submission>, closing: Arc<Notify>) {
    loop {
        let first = tokio::select! {
            first = queue.recv() => match first {
                Some(first) => first,
                None => break,
            },
            // Closing refuses new submissions; those already queued are still received and
            // committed, then `recv` ends the loop.
            () = closing.notified() => {
                queue.close();
                continue;
            }
            // Counters that groups left in memory are saved once the queue has been idle a
            // while (see `UnsavedCounters`).
            () = idle_with_unsaved_counters(&writer.db) => {
                if let Err(err) = writer.db.save_counters().await {
                    tracing::warn!(error = %err, "saving counters failed; the next write saves them");
                }
                continue;
            }
        };
        let mut queued = first.events.len();
        let mut group = vec![first];
        while queued < MAX_GROUP_EVENTS {
            let Ok(next) = queue.try_recv() else { break };
            queued += next.events.len();
            group.push(next);
        }
        // One transaction per project: a project's limits decide its counters.
        while !group.is_empty() {
            let project_id = group[0].project.id.clone();
            let (same, rest): (Vec<_>, Vec<_>) = group.into_iter().partition(|s| s.project.id == project_id);
            group = rest;
            // A panic (the release build checks overflow) fails this group's requests, whose
            // answers are dropped, and never stops the writer.
            if AssertUnwindSafe(writer.commit(same)).catch_unwind().await.is_err() {
                tracing::error!("a group commit failed unexpectedly; its requests were answered with an error");
            }
        }
    }
    // The recording connections were opened on this thread's runtime: they are closed on it
    // too, before it ends.
    writer.db.close_recording().await;
}

/// Ends after `SAVE_UNSAVED_AFTER` if counter states wait to be saved; never otherwise.
async fn idle_with_unsaved_counters(db: &Db) {
    match db.has_unsaved_counters() {
        true => tokio::time::sleep(SAVE_UNSAVED_AFTER).await,
        false => std::future::pending().await,
    }
}

impl Writer {
    async fn commit(&self, submissions: Vec<Submission>) {
        let project = submissions[0].project.clone();
        let mut sizes = Vec::with_capacity(submissions.len());
        let mut replies = Vec::with_capacity(submissions.len());
        let mut events = Vec::with_capacity(submissions.iter().map(|s| s.events.len()).sum());
        let mut consumed = Vec::with_capacity(events.capacity());
        for submission in submissions {
            sizes.push(submission.events.len());
            replies.push(submission.reply);
            consumed.extend(std::iter::repeat_n(submission.consume, submission.events.len()));
            events.extend(submission.events);
        }
        if replies.len() > 1 {
            // A consume that does not fit fails the group, whose requests are then judged one
            // by one below.
            if let Ok(mut recorded) = self.record(&project, &events, &consumed).await {
                for (reply, size) in replies.into_iter().zip(sizes) {
                    let rest = recorded.split_off(size);
                    let _ = reply.send(Ok(std::mem::replace(&mut recorded, rest)));
                }
                return;
            }
            // The group failed as a whole (one request's usage out of range, an unknown
            // customer id…): nothing of it was written. Commit each request alone, so one
            // request's refusal never fails its neighbours and each gets its own answer.
        }
        let mut rest = events.as_slice();
        let mut rest_consumed = consumed.as_slice();
        for (reply, size) in replies.into_iter().zip(sizes) {
            let (own, after) = rest.split_at(size);
            let (own_consumed, after_consumed) = rest_consumed.split_at(size);
            rest = after;
            rest_consumed = after_consumed;
            let _ = reply.send(self.record(&project, own, own_consumed).await);
        }
    }

    /// One transaction, stored in the check path's memory before the writer slot is given up.
    async fn record(&self, project: &Project, events: &[NewEvent], consumed: &[bool]) -> DbResult<Vec<RecordedEvent>> {
        // Taken before the transaction: a configuration change that commits meanwhile may
        // rewrite the counters this one stores.
        let permit = self.cache.permit();
        let already_fired = |alert: &AlertKey| self.cache.has_fired(alert);
        // Rules and customers are remembered as of a rules version, which tells whether another
        // instance changed them since; counters only by the database's only writer.
        let exclusive = self.db.is_exclusive();
        let remembered = |held: &WriterSlot, references: &[&str], version: Option<i64>| {
            self.cache.remembered(held, &project.id, references, version)
        };
        let counters = |held: &WriterSlot, updates: &[CounterUpdate]| match exclusive {
            true => self.cache.remembered_counters(held, updates),
            false => None,
        };
        let live_holds = |held: &WriterSlot, customer_ids: &[&str], now_ms: i64| match exclusive {
            true => self.cache.remembered_held(held, customer_ids, now_ms),
            false => None,
        };
        let rules_version = || self.cache.recording_version(&project.id);
        let memory = RecordMemory {
            rules_version: &rules_version,
            already_fired: &already_fired,
            remembered: &remembered,
            counters: &counters,
            held: &live_holds,
        };
        let now = self.clock.now();
        let outcome = match consumed.contains(&true) {
            false => self.db.record_events(project, events, now, &memory).await?,
            true => {
                let judge = |pending: &PendingRecord<'_>| judge_consumes(pending, consumed);
                self.db.record_events_judged(project, events, now, &memory, &judge).await?
            }
        };
        self.groups.committed(outcome.from_memory);
        self.cache.store_counters(&outcome.writer, permit, &outcome.counters);
        for (customer_id, holds) in outcome.holds_read {
            self.cache.fill_holds(&outcome.writer, permit, &customer_id, holds);
        }
        self.cache.store_fired(&outcome.writer, permit, outcome.alerts);
        let (rules, version) = (outcome.rules_read, outcome.rules_version);
        self.cache.fill_recording(&outcome.writer, permit, &project.id, rules, version, &outcome.customers_read);
        if exclusive {
            // Read under the writer slot: exact for checks too.
            for (reference, customer) in &outcome.customers_read {
                self.cache.fill_customer(&outcome.writer, permit, &project.id, reference, customer.clone());
            }
            // The writer slot is still held: no reader can remember an absence meanwhile.
            self.cache.forget_absent(&outcome.writer, &project.id, events.iter().map(|e| e.customer_ref.as_str()));
        } else if outcome.created_customers {
            self.cache.forget_absences();
        }
        Ok(outcome.events)
    }
}
