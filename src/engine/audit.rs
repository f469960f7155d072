//! Writing the audit log. Changes whose transaction is the engine's own (balance credits and
//! debits, secret rotation in `db::webhooks`) log inside it; every other change is logged by
//! [`Engine::log_change`] right after it commits, by the shared function that made it.

use super::Engine;
use crate::domain::audit::{Actor, AuditChange};

impl Engine {
    /// Logs a change that has committed. The change stands whatever happens here: a failure
    /// to log is reported in the service log (at error level) rather than to the caller, who
    /// would otherwise retry a change that was made.
    pub async fn log_change(&self, project_id: &str, actor: &Actor, change: AuditChange) {
        if let Err(err) = self.db.insert_audit(project_id, &actor.label(), &change, self.now()).await {
            tracing::error!(
                error = %err,
                actor = %actor.label(),
                kind = change.kind.as_str(),
                action = change.action,
                subject = %change.subject_id,
                "could not write an audit log entry"
            );
        }
    }
}
