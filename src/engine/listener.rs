//! Hearing other instances' changes on a shared PostgreSQL database.
//!
//! Every change to limits, meters or customers announces itself on `db::RULES_CHANNEL` in its
//! own transaction (`Db::lock_project`), and every recording transaction announces the counters
//! it changed, as stored, on `db::counters::COUNTERS_CHANNEL`; PostgreSQL delivers both when,
//! and only if, the transaction commits, in commit order. This task listens: a rules change
//! clears the engine's copies, counters are stored (the newest version wins), a change to a
//! customer's reservations (`db::limit_reservations::HOLDS_CHANNEL`) forgets its holds. While it is not
//! connected, announcements could be missed, so the copies are not trusted: every check reads
//! the database until the listener is back, then starts from an empty cache.
//!
//! How current the copies are: every tenth of a second the instance announces its own clock
//! on `db::HEARTBEAT_CHANNEL`. Hearing its own announcement of instant `t` means every change
//! committed before `t` has been heard, since announcements arrive in commit order; `t` is the
//! `asOf` of checks answered from memory.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgNotification;
use tokio::task::JoinHandle;

use super::Engine;
use crate::db::counters::{decode_counters, COUNTERS_CHANNEL};
use crate::db::limit_reservations::HOLDS_CHANNEL;
use crate::db::{ms_to_time, CUSTOMERS_CHANNEL, HEARTBEAT_CHANNEL, RULES_CHANNEL};

/// Wait before connecting again after the listener's connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How often the instance announces its clock, which bounds the staleness `asOf` admits when
/// nothing else is slow.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// Starts listening (PostgreSQL only; `None` on SQLite, whose only writer is this process).
pub fn spawn(engine: Arc<Engine>) -> Option<JoinHandle<()>> {
    if engine.db().is_exclusive() {
        return None;
    }
    Some(tokio::spawn(async move {
        // Stopped with the listener: aborting this task drops the guard.
        let _heartbeats = AbortOnDrop(tokio::spawn(heartbeats(engine.clone())));
        loop {
            match engine.db().listen_for_changes().await {
                Ok(Some(mut listener)) => {
                    // From here on every commit is heard, and the copies start empty: they
                    // hold nothing older than this instant.
                    let connected_at = engine.now();
                    engine.cache().set_accepting(true);
                    engine.cache().heard_through(connected_at);
                    tracing::info!("listening for other instances' changes");
                    // `try_recv` answers `Ok(None)` when the connection is lost, before it
                    // reconnects: from then on, announcements may have been missed.
                    while let Ok(Some(announcement)) = listener.try_recv().await {
                        hear(&engine, &announcement);
                    }
                    engine.cache().set_accepting(false);
                    tracing::warn!("lost the connection that hears other instances' changes; reading the database until it is back");
                }
                Ok(None) => return,
                Err(err) => {
                    engine.cache().set_accepting(false);
                    tracing::warn!(error = %err, "cannot listen for other instances' changes; reading the database");
                }
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }))
}

fn hear(engine: &Engine, announcement: &PgNotification) {
    let cache = engine.cache();
    match announcement.channel() {
        RULES_CHANNEL => cache.clear(),
        CUSTOMERS_CHANNEL => cache.forget_absences(),
        HOLDS_CHANNEL => cache.forget_holds(announcement.payload()),
        COUNTERS_CHANNEL => match decode_counters(announcement.payload()) {
            Ok(counters) => cache.hear_counters(counters),
            Err(err) => {
                // Not ours to read: trust nothing held rather than miss a change.
                tracing::warn!(error = %err, "unreadable counter announcement");
                cache.clear();
            }
        },
        HEARTBEAT_CHANNEL => {
            let heard = announcement.payload().split_once(' ');
            if let Some((instance, millis)) = heard.filter(|(instance, _)| *instance == engine.instance()) {
                if let Ok(millis) = millis.parse::<i64>() {
                    tracing::trace!(instance, "heard own heartbeat");
                    cache.heard_through(ms_to_time(millis));
                }
            }
        }
        _ => {}
    }
}

async fn heartbeats(engine: Arc<Engine>) {
    let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Read before announcing: every change committed before it commits before the
        // announcement, so it is heard first.
        let now = engine.now();
        if let Err(err) = engine.db().announce_heartbeat(engine.instance(), now.timestamp_millis()).await {
            tracing::debug!(error = %err, "heartbeat not announced");
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
