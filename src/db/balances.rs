//! Balances, their ledgers, holds and stored idempotent answers: the rows. The atomic ledger
//! operations that compose them are the engine's (`engine::balances`).

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::{conflict_on_unique, ms_to_time, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::balances::{
    unsigned_amount, Balance, Funds, LedgerTransaction, Reservation, ReservationStatus, TransactionKind,
};
use crate::domain::webhooks::EventType;

macro_rules! balance_columns {
    () => {
        "id, project_id, customer_id, name, unit, current_balance, minimum_balance, held_balance, \
         low_balance_threshold, dimension_filters, created_at, updated_at"
    };
}
macro_rules! transaction_columns {
    () => {
        "id, balance_id, kind, amount, hold_change, description, reference, balance_after, held_after, \
         reservation_id, created_at"
    };
}
macro_rules! reservation_columns {
    () => {
        "r.id, r.balance_id, r.amount, r.status, r.committed_amount, r.description, r.reference, r.expires_at, \
         r.created_at, r.settled_at"
    };
}

const SELECT_BALANCE: &str = concat!("select ", balance_columns!(), " from balances where project_id = $1 and id = $2");
const SELECT_BALANCE_BY_NAME: &str =
    concat!("select ", balance_columns!(), " from balances where project_id = $1 and customer_id = $2 and name = $3");
const SELECT_PROJECT_BALANCES: &str =
    concat!("select ", balance_columns!(), " from balances where project_id = $1 order by customer_id, name");
const SELECT_CUSTOMER_BALANCES: &str =
    concat!("select ", balance_columns!(), " from balances where project_id = $1 and customer_id = $2 order by name");
const LOCK_BALANCE_POSTGRES: &str = concat!("select ", balance_columns!(), " from balances where id = $1 for update");
// SQLite has no row locks; its single writer already excludes every other transaction.
const LOCK_BALANCE_SQLITE: &str = concat!("select ", balance_columns!(), " from balances where id = $1");
const INSERT_BALANCE: &str = "insert into balances (id, project_id, customer_id, name, unit, current_balance, \
     minimum_balance, held_balance, low_balance_threshold, dimension_filters, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, 0, $6, 0, $7, $8, $9, $9)";
const UPDATE_FUNDS: &str = "update balances set current_balance = $2, held_balance = $3, updated_at = $4 where id = $1";
const INSERT_TRANSACTION: &str = concat!(
    "insert into balance_transactions (",
    transaction_columns!(),
    ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
const SELECT_TRANSACTIONS_PAGE: &str = concat!(
    "select ",
    transaction_columns!(),
    " from balance_transactions where balance_id = $1 and ($2 = '' or id < $2) order by id desc limit $3"
);
const INSERT_RESERVATION: &str = "insert into reservations (id, balance_id, amount, status, description, \
     reference, expires_at, created_at) values ($1, $2, $3, 'held', $4, $5, $6, $7)";
const SELECT_RESERVATION: &str = concat!(
    "select ",
    reservation_columns!(),
    " from reservations r join balances b on b.id = r.balance_id where b.project_id = $1 and r.id = $2"
);
const SETTLE_RESERVATION: &str = "update reservations set status = $2, committed_amount = $3, settled_at = $4 \
     where id = $1 and status = 'held'";
const SELECT_DUE_HOLDS: &str = "select id, amount from reservations \
     where balance_id = $1 and status = 'held' and expires_at <= $2 order by id";
const SELECT_BALANCES_WITH_DUE_HOLDS: &str =
    "select distinct balance_id from reservations where status = 'held' and expires_at <= $1 limit 100";
const SELECT_LOW_ALERTED: &str = "select low_balance_alerted from balances where id = $1";
const SET_LOW_ALERTED: &str = "update balances set low_balance_alerted = $2 where id = $1";
const SELECT_CUSTOMER_EXTERNAL_ID: &str = "select external_id from customers where id = $1";
const CLAIM_IDEMPOTENCY_KEY: &str = "insert into idempotency_keys \
     (project_id, idempotency_key, fingerprint, status_code, response, created_at) values ($1, $2, $3, 0, '', $4) \
     on conflict (project_id, idempotency_key) do nothing";
const SELECT_IDEMPOTENCY_KEY: &str =
    "select fingerprint, status_code, response from idempotency_keys where project_id = $1 and idempotency_key = $2";
const STORE_IDEMPOTENT_ANSWER: &str =
    "update idempotency_keys set status_code = $3, response = $4 where project_id = $1 and idempotency_key = $2";

#[derive(sqlx::FromRow)]
struct BalanceRow {
    id: String,
    project_id: String,
    customer_id: String,
    name: String,
    unit: String,
    current_balance: i64,
    minimum_balance: i64,
    held_balance: i64,
    low_balance_threshold: Option<i64>,
    dimension_filters: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<BalanceRow> for Balance {
    type Error = DbError;
    fn try_from(row: BalanceRow) -> DbResult<Balance> {
        Ok(Balance {
            available_balance: row.current_balance - row.minimum_balance - row.held_balance,
            dimension_filters: serde_json::from_str(&row.dimension_filters)?,
            id: row.id,
            project_id: row.project_id,
            customer_id: row.customer_id,
            name: row.name,
            unit: row.unit,
            current_balance: row.current_balance,
            minimum_balance: row.minimum_balance,
            held_balance: row.held_balance,
            low_balance_threshold: row.low_balance_threshold,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: String,
    balance_id: String,
    kind: String,
    amount: i64,
    hold_change: i64,
    description: Option<String>,
    reference: Option<String>,
    balance_after: i64,
    held_after: i64,
    reservation_id: Option<String>,
    created_at: i64,
}

impl TryFrom<TransactionRow> for LedgerTransaction {
    type Error = DbError;
    fn try_from(row: TransactionRow) -> DbResult<LedgerTransaction> {
        let kind = TransactionKind::parse(&row.kind).ok_or_else(|| DbError::Corrupt(format!("kind {}", row.kind)))?;
        Ok(LedgerTransaction {
            kind,
            id: row.id,
            balance_id: row.balance_id,
            unsigned_amount: unsigned_amount(kind, row.amount, row.hold_change),
            amount: row.amount,
            hold_change: row.hold_change,
            description: row.description,
            reference: row.reference,
            balance_after: row.balance_after,
            held_after: row.held_after,
            reservation_id: row.reservation_id,
            created_at: ms_to_time(row.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: String,
    balance_id: String,
    amount: i64,
    status: String,
    committed_amount: Option<i64>,
    description: Option<String>,
    reference: Option<String>,
    expires_at: i64,
    created_at: i64,
    settled_at: Option<i64>,
}

impl TryFrom<ReservationRow> for Reservation {
    type Error = DbError;
    fn try_from(row: ReservationRow) -> DbResult<Reservation> {
        Ok(Reservation {
            status: ReservationStatus::parse(&row.status)
                .ok_or_else(|| DbError::Corrupt(format!("status {}", row.status)))?,
            id: row.id,
            balance_id: row.balance_id,
            amount: row.amount,
            committed_amount: row.committed_amount,
            description: row.description,
            reference: row.reference,
            expires_at: ms_to_time(row.expires_at),
            created_at: ms_to_time(row.created_at),
            settled_at: row.settled_at.map(ms_to_time),
        })
    }
}

/// What a new balance starts with; validated by the caller.
pub struct NewBalance<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub initial_balance: i64,
    pub minimum_balance: i64,
    pub low_balance_threshold: Option<i64>,
    pub dimension_filters: &'a BTreeMap<String, String>,
}

/// An idempotency key and what identifies the request it was first used with.
pub struct IdempotencyClaim<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// The row operations of the ledger inside a write transaction, for both backends; the
/// engine composes them into atomic operations (`engine::balances`).
pub trait LedgerRows: Store + Sync {
    /// Locks the balance row for the transaction (`for update` on PostgreSQL; the single
    /// writer on SQLite).
    fn lock_balance(
        &self,
        tx: &mut WriteTx<Self::Database>,
        id: &str,
    ) -> impl Future<Output = DbResult<Option<Balance>>> + Send;
    fn insert_balance(
        &self,
        tx: &mut WriteTx<Self::Database>,
        project_id: &str,
        customer_id: &str,
        id: &str,
        new: &NewBalance<'_>,
        now_ms: i64,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn write_funds(
        &self,
        tx: &mut WriteTx<Self::Database>,
        balance_id: &str,
        funds: &Funds,
        now_ms: i64,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn insert_ledger_entry(
        &self,
        tx: &mut WriteTx<Self::Database>,
        entry: &LedgerTransaction,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn insert_reservation(
        &self,
        tx: &mut WriteTx<Self::Database>,
        reservation: &Reservation,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn reservation(
        &self,
        tx: &mut WriteTx<Self::Database>,
        project_id: &str,
        id: &str,
    ) -> impl Future<Output = DbResult<Reservation>> + Send;
    /// The balance's holds due at `now_ms`: (reservation id, amount).
    fn due_holds(
        &self,
        tx: &mut WriteTx<Self::Database>,
        balance_id: &str,
        now_ms: i64,
    ) -> impl Future<Output = DbResult<Vec<(String, i64)>>> + Send;
    /// Settles a hold that is still held; false if it no longer was.
    fn settle_reservation(
        &self,
        tx: &mut WriteTx<Self::Database>,
        id: &str,
        status: ReservationStatus,
        committed: Option<i64>,
        now_ms: i64,
    ) -> impl Future<Output = DbResult<bool>> + Send;
    /// Claims the key for this transaction, or finds the answer stored under it; a key used
    /// with a different request is a conflict.
    fn claim_idempotency(
        &self,
        tx: &mut WriteTx<Self::Database>,
        project_id: &str,
        claim: &IdempotencyClaim<'_>,
        now_ms: i64,
    ) -> impl Future<Output = DbResult<Option<(u16, String)>>> + Send;
    fn store_idempotent_answer(
        &self,
        tx: &mut WriteTx<Self::Database>,
        project_id: &str,
        key: &str,
        answer: (u16, String),
    ) -> impl Future<Output = DbResult<()>> + Send;
    /// Whether `balance.low` fired and has not re-armed.
    fn low_alerted(
        &self,
        tx: &mut WriteTx<Self::Database>,
        balance_id: &str,
    ) -> impl Future<Output = DbResult<bool>> + Send;
    fn set_low_alerted(
        &self,
        tx: &mut WriteTx<Self::Database>,
        balance_id: &str,
        alerted: bool,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn customer_external_id(
        &self,
        tx: &mut WriteTx<Self::Database>,
        customer_id: &str,
    ) -> impl Future<Output = DbResult<String>> + Send;
    /// Queues a webhook event for the project's endpoints (see `Db::enqueue`).
    fn enqueue_event(
        &self,
        tx: &mut WriteTx<Self::Database>,
        project_id: &str,
        event_type: EventType,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> impl Future<Output = DbResult<Option<String>>> + Send;
}

macro_rules! ledger_rows {
    ($store:ty, $database:ty) => {
        impl LedgerRows for $store {
            async fn lock_balance(&self, tx: &mut WriteTx<$database>, id: &str) -> DbResult<Option<Balance>> {
                let sql = if <$store as Store>::POSTGRES { LOCK_BALANCE_POSTGRES } else { LOCK_BALANCE_SQLITE };
                let row = sqlx::query_as::<_, BalanceRow>(sql).bind(id).fetch_optional(&mut **tx).await?;
                row.map(Balance::try_from).transpose()
            }

            async fn insert_balance(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                customer_id: &str,
                id: &str,
                new: &NewBalance<'_>,
                now_ms: i64,
            ) -> DbResult<()> {
                sqlx::query(INSERT_BALANCE)
                    .bind(id)
                    .bind(project_id)
                    .bind(customer_id)
                    .bind(new.name)
                    .bind(new.unit)
                    .bind(new.minimum_balance)
                    .bind(new.low_balance_threshold)
                    .bind(serde_json::to_string(new.dimension_filters)?)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| {
                        conflict_on_unique(e, format!("the customer already has a balance named {}", new.name))
                    })?;
                Ok(())
            }

            async fn write_funds(
                &self,
                tx: &mut WriteTx<$database>,
                balance_id: &str,
                funds: &Funds,
                now_ms: i64,
            ) -> DbResult<()> {
                sqlx::query(UPDATE_FUNDS)
                    .bind(balance_id)
                    .bind(funds.current)
                    .bind(funds.held)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn insert_ledger_entry(
                &self,
                tx: &mut WriteTx<$database>,
                entry: &LedgerTransaction,
            ) -> DbResult<()> {
                sqlx::query(INSERT_TRANSACTION)
                    .bind(&entry.id)
                    .bind(&entry.balance_id)
                    .bind(entry.kind.as_str())
                    .bind(entry.amount)
                    .bind(entry.hold_change)
                    .bind(&entry.description)
                    .bind(&entry.reference)
                    .bind(entry.balance_after)
                    .bind(entry.held_after)
                    .bind(&entry.reservation_id)
                    .bind(entry.created_at.timestamp_millis())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn insert_reservation(&self, tx: &mut WriteTx<$database>, reservation: &Reservation) -> DbResult<()> {
                sqlx::query(INSERT_RESERVATION)
                    .bind(&reservation.id)
                    .bind(&reservation.balance_id)
                    .bind(reservation.amount)
                    .bind(&reservation.description)
                    .bind(&reservation.reference)
                    .bind(reservation.expires_at.timestamp_millis())
                    .bind(reservation.created_at.timestamp_millis())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn reservation(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                id: &str,
            ) -> DbResult<Reservation> {
                sqlx::query_as::<_, ReservationRow>(SELECT_RESERVATION)
                    .bind(project_id)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| DbError::NotFound { resource: "reservation", id: id.to_string() })?
                    .try_into()
            }

            async fn due_holds(
                &self,
                tx: &mut WriteTx<$database>,
                balance_id: &str,
                now_ms: i64,
            ) -> DbResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(SELECT_DUE_HOLDS).bind(balance_id).bind(now_ms).fetch_all(&mut **tx).await?)
            }

            async fn settle_reservation(
                &self,
                tx: &mut WriteTx<$database>,
                id: &str,
                status: ReservationStatus,
                committed: Option<i64>,
                now_ms: i64,
            ) -> DbResult<bool> {
                let settled = sqlx::query(SETTLE_RESERVATION)
                    .bind(id)
                    .bind(status.as_str())
                    .bind(committed)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(settled.rows_affected() == 1)
            }

            async fn claim_idempotency(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                claim: &IdempotencyClaim<'_>,
                now_ms: i64,
            ) -> DbResult<Option<(u16, String)>> {
                let inserted = sqlx::query(CLAIM_IDEMPOTENCY_KEY)
                    .bind(project_id)
                    .bind(claim.key)
                    .bind(claim.fingerprint)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                if inserted.rows_affected() == 1 {
                    return Ok(None);
                }
                let (fingerprint, status, body): (String, i64, String) = sqlx::query_as(SELECT_IDEMPOTENCY_KEY)
                    .bind(project_id)
                    .bind(claim.key)
                    .fetch_one(&mut **tx)
                    .await?;
                if fingerprint != claim.fingerprint {
                    return Err(DbError::Conflict(
                        "this Idempotency-Key was already used for a different request".into(),
                    ));
                }
                Ok(Some((u16::try_from(status).unwrap_or(200), body)))
            }

            async fn store_idempotent_answer(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                key: &str,
                (status, body): (u16, String),
            ) -> DbResult<()> {
                sqlx::query(STORE_IDEMPOTENT_ANSWER)
                    .bind(project_id)
                    .bind(key)
                    .bind(i64::from(status))
                    .bind(body)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn low_alerted(&self, tx: &mut WriteTx<$database>, balance_id: &str) -> DbResult<bool> {
                let alerted: i64 = sqlx::query_scalar(SELECT_LOW_ALERTED).bind(balance_id).fetch_one(&mut **tx).await?;
                Ok(alerted != 0)
            }

            async fn set_low_alerted(
                &self,
                tx: &mut WriteTx<$database>,
                balance_id: &str,
                alerted: bool,
            ) -> DbResult<()> {
                sqlx::query(SET_LOW_ALERTED).bind(balance_id).bind(i64::from(alerted)).execute(&mut **tx).await?;
                Ok(())
            }

            async fn customer_external_id(&self, tx: &mut WriteTx<$database>, customer_id: &str) -> DbResult<String> {
                Ok(sqlx::query_scalar(SELECT_CUSTOMER_EXTERNAL_ID).bind(customer_id).fetch_one(&mut **tx).await?)
            }

            async fn enqueue_event(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                event_type: EventType,
                data: serde_json::Value,
                now: DateTime<Utc>,
            ) -> DbResult<Option<String>> {
                self.enqueue_tx(tx, project_id, event_type, data, None, now).await
            }
        }
    };
}
ledger_rows!(SqliteStore, Sqlite);
ledger_rows!(PgStore, Postgres);

impl Db {
    pub async fn balance(&self, project_id: &str, id: &str) -> DbResult<Option<Balance>> {
        let row = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_BALANCE)
            .bind(project_id)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        row.map(Balance::try_from).transpose()
    }

    pub async fn balance_by_name(&self, project_id: &str, customer_id: &str, name: &str) -> DbResult<Option<Balance>> {
        let row = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_BALANCE_BY_NAME)
            .bind(project_id)
            .bind(customer_id)
            .bind(name)
            .fetch_optional(s.pool())
            .await)?;
        row.map(Balance::try_from).transpose()
    }

    /// Every balance of a project, by customer then name.
    pub async fn project_balances(&self, project_id: &str) -> DbResult<Vec<Balance>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_PROJECT_BALANCES)
            .bind(project_id)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Balance::try_from).collect()
    }

    pub async fn customer_balances(&self, project_id: &str, customer_id: &str) -> DbResult<Vec<Balance>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_CUSTOMER_BALANCES)
            .bind(project_id)
            .bind(customer_id)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Balance::try_from).collect()
    }

    /// The ledger, newest first, after the cursor.
    pub async fn transactions_page(
        &self,
        balance_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<LedgerTransaction>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, TransactionRow>(SELECT_TRANSACTIONS_PAGE)
            .bind(balance_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(LedgerTransaction::try_from).collect()
    }

    /// Balances with holds past their expiry (a hundred at most).
    pub async fn balances_with_due_holds(&self, now: DateTime<Utc>) -> DbResult<Vec<String>> {
        Ok(with_store!(self, s => sqlx::query_scalar(SELECT_BALANCES_WITH_DUE_HOLDS)
            .bind(now.timestamp_millis())
            .fetch_all(s.pool())
            .await)?)
    }
}
