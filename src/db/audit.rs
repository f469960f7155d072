//! The audit log's rows: one per operator action, written inside the change's own transaction
//! where the change has one here (`insert_audit_tx`), else right after it commits
//! (`insert_audit`); read newest first, a page at a time, optionally of one kind.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::{ms_to_time, with_store, Db, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::audit::{AuditChange, AuditEntry};
use crate::domain::ids::new_id;

const INSERT_AUDIT: &str = "insert into audit_log (id, project_id, created_at, actor, kind, action, subject_id, \
     summary) values ($1, $2, $3, $4, $5, $6, $7, $8)";
// Ids are ULIDs, so `id` orders entries by time; the cursor is the last id shown.
const SELECT_AUDIT_PAGE: &str = "select id, project_id, created_at, actor, kind, action, subject_id, summary \
     from audit_log where project_id = $1 and ($2 = '' or kind = $2) and ($3 = '' or id < $3) \
     order by id desc limit $4";

const SELECT_CUSTOMER_REFERENCE: &str = "select external_id from customers where id = $1";

type Row = (String, String, i64, String, String, String, String, String);

macro_rules! audit_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Logs a change inside the transaction that makes it: both commit, or neither.
            pub(crate) async fn insert_audit_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                actor: &str,
                change: &AuditChange,
                now: DateTime<Utc>,
            ) -> DbResult<()> {
                let now_ms = now.timestamp_millis();
                sqlx::query(INSERT_AUDIT)
                    .bind(new_id("aud", now_ms))
                    .bind(project_id)
                    .bind(now_ms)
                    .bind(actor)
                    .bind(change.kind.as_str())
                    .bind(change.action)
                    .bind(&change.subject_id)
                    .bind(&change.summary)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// A customer's externalId, read on the transaction's own connection: a change
            /// holding row locks must not wait for a second connection to name its customer.
            pub(crate) async fn customer_reference_tx(
                &self,
                tx: &mut WriteTx<$database>,
                customer_id: &str,
            ) -> DbResult<Option<String>> {
                Ok(sqlx::query_scalar(SELECT_CUSTOMER_REFERENCE).bind(customer_id).fetch_optional(&mut **tx).await?)
            }
        }
    };
}
audit_transaction_helpers!(SqliteStore, Sqlite);
audit_transaction_helpers!(PgStore, Postgres);

impl Db {
    /// Logs a change that has already committed, in a transaction of its own.
    pub async fn insert_audit(
        &self,
        project_id: &str,
        actor: &str,
        change: &AuditChange,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            s.insert_audit_tx(&mut tx, project_id, actor, change, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A project's entries newest first, of one kind (`kind`, as `AuditKind::as_str`) or all,
    /// older than the entry `before` when given.
    pub async fn audit_page(
        &self,
        project_id: &str,
        kind: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<AuditEntry>> {
        let rows: Vec<Row> = with_store!(self, s => sqlx::query_as(SELECT_AUDIT_PAGE)
            .bind(project_id)
            .bind(kind.unwrap_or(""))
            .bind(before.unwrap_or(""))
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, project_id, created_at, actor, kind, action, subject_id, summary)| AuditEntry {
                id,
                project_id,
                created_at: ms_to_time(created_at),
                actor,
                kind,
                action,
                subject_id,
                summary,
            })
            .collect())
    }
}
