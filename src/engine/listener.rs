//! Hearing other instances' changes on a shared PostgreSQL database.
//!
//! Every change to limits, meters or customers announces itself on `db::RULES_CHANNEL` in its
//! own transaction (`Db::lock_project`), so PostgreSQL delivers the announcement exactly when the
//! change commits. This task listens and clears the engine's copies on each one. While it is not
//! connected, announcements could be missed, so the copies are not trusted: every check reads
//! the database until the listener is back, then starts from an empty cache.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Engine;

/// Wait before connecting again after the listener's connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Starts listening (PostgreSQL only; `None` on SQLite, whose only writer is this process).
pub fn spawn(engine: Arc<Engine>) -> Option<JoinHandle<()>> {
    if engine.db().is_exclusive() {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            match engine.db().listen_for_rule_changes().await {
                Ok(Some(mut listener)) => {
                    engine.cache().set_accepting(true);
                    tracing::info!("listening for other instances' changes");
                    // `try_recv` answers `Ok(None)` when the connection is lost, before it
                    // reconnects: from then on, announcements may have been missed.
                    while let Ok(Some(_announcement)) = listener.try_recv().await {
                        engine.cache().clear();
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
