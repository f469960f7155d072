//! Balances: creation, the atomic ledger operations (credit, debit, hold, commit, release,
//! expire) with stored answers for idempotent retries, and ledger reads.
//!
//! Every operation locks the balance row for its transaction (`for update` on PostgreSQL; the
//! single writer on SQLite), decides with the pure rules of `domain::balances`, then writes the
//! new funds and one ledger entry per change. Due holds of the balance expire first, so what is
//! available never counts a hold past its expiry.

use chrono::{DateTime, Duration, Utc};
use sqlx::{Postgres, Sqlite};

use super::{conflict_on_unique, ms_to_time, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::balances::{
    self, Balance, Change, Insufficient, LedgerTransaction, Reservation, ReservationStatus, TransactionKind,
};
use crate::domain::ids::new_id;
use crate::domain::webhooks::EventType;

macro_rules! balance_columns {
    () => {
        "id, customer_id, name, unit, current_balance, minimum_balance, held_balance, low_balance_threshold, \
         created_at, updated_at"
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
const SELECT_CUSTOMER_BALANCES: &str =
    concat!("select ", balance_columns!(), " from balances where project_id = $1 and customer_id = $2 order by name");
const LOCK_BALANCE_POSTGRES: &str = concat!("select ", balance_columns!(), " from balances where id = $1 for update");
// SQLite has no row locks; its single writer already excludes every other transaction.
const LOCK_BALANCE_SQLITE: &str = concat!("select ", balance_columns!(), " from balances where id = $1");
const INSERT_BALANCE: &str = "insert into balances (id, project_id, customer_id, name, unit, current_balance, \
     minimum_balance, held_balance, low_balance_threshold, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, 0, $6, 0, $7, $8, $8)";
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
    customer_id: String,
    name: String,
    unit: String,
    current_balance: i64,
    minimum_balance: i64,
    held_balance: i64,
    low_balance_threshold: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<BalanceRow> for Balance {
    fn from(row: BalanceRow) -> Balance {
        Balance {
            available_balance: row.current_balance - row.minimum_balance - row.held_balance,
            id: row.id,
            customer_id: row.customer_id,
            name: row.name,
            unit: row.unit,
            current_balance: row.current_balance,
            minimum_balance: row.minimum_balance,
            held_balance: row.held_balance,
            low_balance_threshold: row.low_balance_threshold,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
        }
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
        Ok(LedgerTransaction {
            kind: TransactionKind::parse(&row.kind).ok_or_else(|| DbError::Corrupt(format!("kind {}", row.kind)))?,
            id: row.id,
            balance_id: row.balance_id,
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
}

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

/// An idempotency key and what identifies the request it was first used with.
pub struct IdempotencyClaim<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// A first answer, or the stored answer to an earlier request with the same key.
pub enum Idempotent<T> {
    Fresh(T),
    Replayed { status: u16, body: String },
}

macro_rules! balance_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            async fn lock_balance_tx(&self, tx: &mut WriteTx<$database>, id: &str) -> DbResult<Option<Balance>> {
                let sql = if <$store as Store>::POSTGRES { LOCK_BALANCE_POSTGRES } else { LOCK_BALANCE_SQLITE };
                let row = sqlx::query_as::<_, BalanceRow>(sql).bind(id).fetch_optional(&mut **tx).await?;
                Ok(row.map(Balance::from))
            }

            /// Writes a change's new funds and its ledger entry.
            #[allow(clippy::too_many_arguments)]
            async fn write_change_tx(
                &self,
                tx: &mut WriteTx<$database>,
                balance: &Balance,
                change: &Change,
                description: Option<&str>,
                reference: Option<&str>,
                reservation_id: Option<&str>,
                now: DateTime<Utc>,
            ) -> DbResult<(Balance, LedgerTransaction)> {
                let funds = balance.funds().apply(change).map_err(|_| DbError::OutOfRange {
                    field: "amount".into(),
                    message: format!(
                        "would take the balance or its holds beyond ±{}, the largest balance",
                        balances::MAX_BALANCE
                    ),
                })?;
                let now_ms = now.timestamp_millis();
                sqlx::query(UPDATE_FUNDS)
                    .bind(&balance.id)
                    .bind(funds.current)
                    .bind(funds.held)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                let transaction = LedgerTransaction {
                    id: new_id("txn", now_ms),
                    balance_id: balance.id.clone(),
                    kind: change.kind,
                    amount: change.amount,
                    hold_change: change.hold_change,
                    description: description.map(str::to_string),
                    reference: reference.map(str::to_string),
                    balance_after: funds.current,
                    held_after: funds.held,
                    reservation_id: reservation_id.map(str::to_string),
                    created_at: ms_to_time(now_ms),
                };
                sqlx::query(INSERT_TRANSACTION)
                    .bind(&transaction.id)
                    .bind(&transaction.balance_id)
                    .bind(transaction.kind.as_str())
                    .bind(transaction.amount)
                    .bind(transaction.hold_change)
                    .bind(&transaction.description)
                    .bind(&transaction.reference)
                    .bind(transaction.balance_after)
                    .bind(transaction.held_after)
                    .bind(&transaction.reservation_id)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                let updated = Balance {
                    current_balance: funds.current,
                    held_balance: funds.held,
                    available_balance: funds.available(),
                    updated_at: ms_to_time(now_ms),
                    ..balance.clone()
                };
                Ok((updated, transaction))
            }

            /// Expires the balance's holds that are due, each once, with a ledger entry.
            async fn expire_due_holds_tx(
                &self,
                tx: &mut WriteTx<$database>,
                mut balance: Balance,
                now: DateTime<Utc>,
            ) -> DbResult<Balance> {
                let due: Vec<(String, i64)> = sqlx::query_as(SELECT_DUE_HOLDS)
                    .bind(&balance.id)
                    .bind(now.timestamp_millis())
                    .fetch_all(&mut **tx)
                    .await?;
                for (reservation_id, amount) in due {
                    let settled = sqlx::query(SETTLE_RESERVATION)
                        .bind(&reservation_id)
                        .bind(ReservationStatus::Expired.as_str())
                        .bind(None::<i64>)
                        .bind(now.timestamp_millis())
                        .execute(&mut **tx)
                        .await?;
                    if settled.rows_affected() == 1 {
                        let change = balances::release(amount, TransactionKind::Expire);
                        let description = Some("Reservation expired");
                        balance = self
                            .write_change_tx(tx, &balance, &change, description, None, Some(&reservation_id), now)
                            .await?
                            .0;
                    }
                }
                Ok(balance)
            }

            /// Claims the key for this transaction, or finds the answer stored under it.
            async fn claim_idempotency_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                claim: &IdempotencyClaim<'_>,
                now: DateTime<Utc>,
            ) -> DbResult<Option<(u16, String)>> {
                let inserted = sqlx::query(CLAIM_IDEMPOTENCY_KEY)
                    .bind(project_id)
                    .bind(claim.key)
                    .bind(claim.fingerprint)
                    .bind(now.timestamp_millis())
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

            async fn reservation_tx(
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

            /// Runs one operation inside the caller's transaction, then raises or re-arms the
            /// low-balance alert.
            async fn operate_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                operation: &BalanceOperation<'_>,
                now: DateTime<Utc>,
            ) -> DbResult<OperationResult> {
                let result = self.operate_inner_tx(tx, project_id, operation, now).await?;
                self.track_low_balance_tx(tx, project_id, &result.balance, now).await?;
                Ok(result)
            }

            /// `balance.low` fires when what is available falls below the balance's
            /// threshold, once, and re-arms when a credit (or a released hold) lifts it again.
            async fn track_low_balance_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                balance: &Balance,
                now: DateTime<Utc>,
            ) -> DbResult<()> {
                let Some(threshold) = balance.low_balance_threshold else { return Ok(()) };
                let alerted: i64 = sqlx::query_scalar(SELECT_LOW_ALERTED).bind(&balance.id).fetch_one(&mut **tx).await?;
                let low = balance.available_balance < threshold;
                if low == (alerted != 0) {
                    return Ok(());
                }
                sqlx::query(SET_LOW_ALERTED).bind(&balance.id).bind(i64::from(low)).execute(&mut **tx).await?;
                if low {
                    let external_id: String =
                        sqlx::query_scalar(SELECT_CUSTOMER_EXTERNAL_ID).bind(&balance.customer_id).fetch_one(&mut **tx).await?;
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
                    self.enqueue_tx(tx, project_id, EventType::BalanceLow, data, None, now).await?;
                }
                Ok(())
            }

            async fn operate_inner_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                operation: &BalanceOperation<'_>,
                now: DateTime<Utc>,
            ) -> DbResult<OperationResult> {
                let (balance_id, reservation) = match operation {
                    BalanceOperation::Credit { balance_id, .. }
                    | BalanceOperation::Debit { balance_id, .. }
                    | BalanceOperation::Reserve { balance_id, .. } => (balance_id.to_string(), None),
                    BalanceOperation::Commit { reservation_id, .. } | BalanceOperation::Release { reservation_id } => {
                        let reservation = self.reservation_tx(tx, project_id, reservation_id).await?;
                        (reservation.balance_id.clone(), Some(reservation))
                    }
                };
                let balance = self
                    .lock_balance_tx(tx, &balance_id)
                    .await?
                    .ok_or_else(|| DbError::NotFound { resource: "balance", id: balance_id.clone() })?;
                let balance = self.expire_due_holds_tx(tx, balance, now).await?;
                let unchanged = |balance: Balance, refused: Option<Insufficient>| OperationResult {
                    balance,
                    transaction: None,
                    reservation: None,
                    refused,
                    taken: None,
                };
                match *operation {
                    BalanceOperation::Credit { amount, description, reference, .. } => {
                        let (balance, transaction) = self
                            .write_change_tx(
                                tx,
                                &balance,
                                &balances::credit(amount),
                                Some(description),
                                reference,
                                None,
                                now,
                            )
                            .await?;
                        Ok(OperationResult { transaction: Some(transaction), ..unchanged(balance, None) })
                    }
                    BalanceOperation::Debit { amount, description, reference, .. } => {
                        match balances::debit(&balance.funds(), amount) {
                            Err(short) => Ok(unchanged(balance, Some(short))),
                            Ok(change) => {
                                let (balance, transaction) = self
                                    .write_change_tx(tx, &balance, &change, description, reference, None, now)
                                    .await?;
                                Ok(OperationResult { transaction: Some(transaction), ..unchanged(balance, None) })
                            }
                        }
                    }
                    BalanceOperation::Reserve { amount, ttl_seconds, description, reference, .. } => {
                        match balances::hold(&balance.funds(), amount) {
                            Err(short) => Ok(unchanged(balance, Some(short))),
                            Ok(change) => {
                                let now_ms = now.timestamp_millis();
                                let reservation = Reservation {
                                    id: new_id("res", now_ms),
                                    balance_id: balance.id.clone(),
                                    amount,
                                    status: ReservationStatus::Held,
                                    committed_amount: None,
                                    description: description.map(str::to_string),
                                    reference: reference.map(str::to_string),
                                    expires_at: ms_to_time(now_ms) + Duration::seconds(ttl_seconds),
                                    created_at: ms_to_time(now_ms),
                                    settled_at: None,
                                };
                                sqlx::query(INSERT_RESERVATION)
                                    .bind(&reservation.id)
                                    .bind(&reservation.balance_id)
                                    .bind(amount)
                                    .bind(description)
                                    .bind(reference)
                                    .bind(reservation.expires_at.timestamp_millis())
                                    .bind(now_ms)
                                    .execute(&mut **tx)
                                    .await?;
                                let (balance, transaction) = self
                                    .write_change_tx(
                                        tx,
                                        &balance,
                                        &change,
                                        description,
                                        reference,
                                        Some(&reservation.id),
                                        now,
                                    )
                                    .await?;
                                Ok(OperationResult {
                                    transaction: Some(transaction),
                                    reservation: Some(reservation),
                                    ..unchanged(balance, None)
                                })
                            }
                        }
                    }
                    BalanceOperation::Commit { actual, description, .. } => {
                        self.settle_tx(tx, project_id, balance, reservation, Some(actual), description, now).await
                    }
                    BalanceOperation::Release { .. } => {
                        self.settle_tx(tx, project_id, balance, reservation, None, None, now).await
                    }
                }
            }

            /// Commits (with the actual amount) or releases a hold.
            #[allow(clippy::too_many_arguments)]
            async fn settle_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                balance: Balance,
                reservation: Option<Reservation>,
                actual: Option<i64>,
                description: Option<&str>,
                now: DateTime<Utc>,
            ) -> DbResult<OperationResult> {
                let reservation = reservation.ok_or_else(|| DbError::Corrupt("reservation".into()))?;
                // Re-read under the balance lock: a concurrent settlement or the expiry sweep
                // may just have settled it.
                let reservation = self.reservation_tx(tx, project_id, &reservation.id).await?;
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
                    None => (
                        balances::release(reservation.amount, TransactionKind::Release),
                        None,
                        ReservationStatus::Released,
                    ),
                };
                sqlx::query(SETTLE_RESERVATION)
                    .bind(&reservation.id)
                    .bind(status.as_str())
                    .bind(taken)
                    .bind(now.timestamp_millis())
                    .execute(&mut **tx)
                    .await?;
                let description = description.or(reservation.description.as_deref());
                let (balance, transaction) = self
                    .write_change_tx(
                        tx,
                        &balance,
                        &change,
                        description,
                        reservation.reference.as_deref(),
                        Some(&reservation.id),
                        now,
                    )
                    .await?;
                let reservation = Reservation { status, committed_amount: taken, settled_at: Some(now), ..reservation };
                Ok(OperationResult {
                    balance,
                    transaction: Some(transaction),
                    reservation: Some(reservation),
                    refused: None,
                    taken,
                })
            }
        }
    };
}
balance_transaction_helpers!(SqliteStore, Sqlite);
balance_transaction_helpers!(PgStore, Postgres);

impl Db {
    /// Creates a balance; a positive initial balance is its first ledger entry (a credit).
    pub async fn create_balance(
        &self,
        project_id: &str,
        customer_id: &str,
        new: &NewBalance<'_>,
        now: DateTime<Utc>,
    ) -> DbResult<Balance> {
        let now_ms = now.timestamp_millis();
        let id = new_id("bal", now_ms);
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(INSERT_BALANCE)
                .bind(&id)
                .bind(project_id)
                .bind(customer_id)
                .bind(new.name)
                .bind(new.unit)
                .bind(new.minimum_balance)
                .bind(new.low_balance_threshold)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_on_unique(e, format!("the customer already has a balance named {}", new.name)))?;
            let mut balance = s.lock_balance_tx(&mut tx, &id).await?.ok_or_else(|| DbError::Corrupt("new balance".into()))?;
            if new.initial_balance != 0 {
                let change = balances::credit(new.initial_balance);
                balance = s.write_change_tx(&mut tx, &balance, &change, Some("Initial balance"), None, None, now).await?.0;
            }
            tx.commit().await?;
            Ok(balance)
        })
    }

    pub async fn balance(&self, project_id: &str, id: &str) -> DbResult<Option<Balance>> {
        let row = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_BALANCE)
            .bind(project_id)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(Balance::from))
    }

    pub async fn balance_by_name(&self, project_id: &str, customer_id: &str, name: &str) -> DbResult<Option<Balance>> {
        let row = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_BALANCE_BY_NAME)
            .bind(project_id)
            .bind(customer_id)
            .bind(name)
            .fetch_optional(s.pool())
            .await)?;
        Ok(row.map(Balance::from))
    }

    pub async fn customer_balances(&self, project_id: &str, customer_id: &str) -> DbResult<Vec<Balance>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, BalanceRow>(SELECT_CUSTOMER_BALANCES)
            .bind(project_id)
            .bind(customer_id)
            .fetch_all(s.pool())
            .await)?;
        Ok(rows.into_iter().map(Balance::from).collect())
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

    /// Runs one ledger operation atomically. With an idempotency claim, a retry gets the first
    /// answer back (`render` makes the answer that is stored) and changes nothing again.
    pub async fn operate_balance(
        &self,
        project_id: &str,
        operation: &BalanceOperation<'_>,
        claim: Option<&IdempotencyClaim<'_>>,
        now: DateTime<Utc>,
        render: impl FnOnce(&OperationResult) -> (u16, String),
    ) -> DbResult<Idempotent<OperationResult>> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            if let Some(claim) = claim {
                if let Some((status, body)) = s.claim_idempotency_tx(&mut tx, project_id, claim, now).await? {
                    return Ok(Idempotent::Replayed { status, body });
                }
            }
            let result = s.operate_tx(&mut tx, project_id, operation, now).await?;
            if let Some(claim) = claim {
                let (status, body) = render(&result);
                sqlx::query(STORE_IDEMPOTENT_ANSWER)
                    .bind(project_id)
                    .bind(claim.key)
                    .bind(i64::from(status))
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Idempotent::Fresh(result))
        })
    }

    /// Expires every hold that is due, each exactly once; returns how many balances it touched.
    pub async fn expire_due_holds(&self, now: DateTime<Utc>) -> DbResult<usize> {
        let balance_ids: Vec<String> = with_store!(self, s => sqlx::query_scalar(SELECT_BALANCES_WITH_DUE_HOLDS)
            .bind(now.timestamp_millis())
            .fetch_all(s.pool())
            .await)?;
        for balance_id in &balance_ids {
            with_store!(self, s => {
                let mut tx = s.begin_write().await?;
                if let Some(balance) = s.lock_balance_tx(&mut tx, balance_id).await? {
                    s.expire_due_holds_tx(&mut tx, balance, now).await?;
                }
                tx.commit().await?;
            });
        }
        Ok(balance_ids.len())
    }
}
