//! Rows of reservations on limits: the reservation, its holds (one per limit, present only
//! while it is held) and its audit trail. `engine::reservations` composes them.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Postgres, Sqlite};

use super::{ms_to_time, numbered_list, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::balances::ReservationStatus;
use crate::domain::ids::new_id;
use crate::domain::limit_reservations::{Hold, LimitReservation, ReservationEntry};
use crate::domain::quantity::Quantity;

/// The PostgreSQL channel on which a change to a customer's holds is announced (the payload is
/// the customer id), so every instance forgets the holds it keeps for that customer.
pub const HOLDS_CHANNEL: &str = "limitry_holds";

const INSERT_RESERVATION: &str = "insert into limit_reservations (id, project_id, customer_id, requested, \
     dimensions, limit_ids, status, balance_reservations, expires_at, created_at) \
     values ($1, $2, $3, $4, $5, $6, 'held', $7, $8, $9)";
const INSERT_HOLD: &str =
    "insert into limit_holds (reservation_id, limit_id, customer_id, amount, expires_at) values ($1, $2, $3, $4, $5)";
const INSERT_ENTRY: &str = "insert into limit_reservation_entries (id, reservation_id, kind, expires_at, event_id, \
     created_at) values ($1, $2, $3, $4, $5, $6)";
const RESERVATION_COLUMNS: &str = "id, customer_id, requested, dimensions, limit_ids, status, \
     balance_reservations, event_id, expires_at, created_at, settled_at";
const SETTLE_RESERVATION: &str = "update limit_reservations set status = $2, event_id = $3, settled_at = $4 \
     where id = $1 and status = 'held'";
const DELETE_HOLDS: &str = "delete from limit_holds where reservation_id = $1";
const EXTEND_RESERVATION: &str = "update limit_reservations set expires_at = $2 where id = $1 and status = 'held'";
const EXTEND_HOLDS: &str = "update limit_holds set expires_at = $2 where reservation_id = $1";
const EXTEND_BALANCE_HOLD: &str = "update reservations set expires_at = $2 where id = $1 and status = 'held'";
const SELECT_HELD_ON_LIMIT: &str = "select customer_id, cast(sum(amount) as bigint) from limit_holds \
     where limit_id = $1 and expires_at > $2 group by customer_id";
/// Followed by the customers' ids as a list; expired holds too, until swept.
const SELECT_HOLDS: &str =
    "select customer_id, reservation_id, limit_id, amount, expires_at from limit_holds where customer_id in";
const SELECT_ENTRIES: &str = "select kind, expires_at, event_id, created_at from limit_reservation_entries \
     where reservation_id = $1 order by created_at, id";
const SELECT_DUE: &str =
    "select project_id, id from limit_reservations where status = 'held' and expires_at <= $1 order by expires_at limit 100";

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: String,
    customer_id: String,
    requested: i64,
    dimensions: String,
    limit_ids: String,
    status: String,
    balance_reservations: String,
    event_id: Option<String>,
    expires_at: i64,
    created_at: i64,
    settled_at: Option<i64>,
}

impl ReservationRow {
    fn into_reservation(self, entries: Vec<ReservationEntry>) -> DbResult<LimitReservation> {
        Ok(LimitReservation {
            status: ReservationStatus::parse(&self.status)
                .ok_or_else(|| DbError::Corrupt(format!("reservation status {}", self.status)))?,
            id: self.id,
            customer_id: self.customer_id,
            requested: Quantity(self.requested),
            dimensions: serde_json::from_str(&self.dimensions)?,
            limit_ids: serde_json::from_str(&self.limit_ids)?,
            balance_reservation_ids: serde_json::from_str(&self.balance_reservations)?,
            event_id: self.event_id,
            expires_at: ms_to_time(self.expires_at),
            created_at: ms_to_time(self.created_at),
            settled_at: self.settled_at.map(ms_to_time),
            entries,
        })
    }
}

/// A reservation about to be written with its holds.
pub struct NewLimitReservation<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub customer_id: &'a str,
    pub requested: Quantity,
    pub dimensions: &'a BTreeMap<String, String>,
    pub limit_ids: &'a [&'a str],
    pub balance_reservation_ids: &'a [String],
    pub expires_at_ms: i64,
}

/// A reservation locked for a settling transaction.
pub struct LockedReservation {
    pub customer_id: String,
    pub status: ReservationStatus,
    pub expires_at_ms: i64,
    pub balance_reservation_ids: Vec<String>,
}

macro_rules! reservation_rows {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Writes a held reservation, one hold per limit and its first audit entry.
            pub(crate) async fn insert_limit_reservation_tx(
                &self,
                tx: &mut WriteTx<$database>,
                new: &NewLimitReservation<'_>,
                now_ms: i64,
            ) -> DbResult<()> {
                sqlx::query(INSERT_RESERVATION)
                    .bind(new.id)
                    .bind(new.project_id)
                    .bind(new.customer_id)
                    .bind(new.requested.0)
                    .bind(serde_json::to_string(new.dimensions)?)
                    .bind(serde_json::to_string(new.limit_ids)?)
                    .bind(serde_json::to_string(new.balance_reservation_ids)?)
                    .bind(new.expires_at_ms)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                for limit_id in new.limit_ids {
                    sqlx::query(INSERT_HOLD)
                        .bind(new.id)
                        .bind(*limit_id)
                        .bind(new.customer_id)
                        .bind(new.requested.0)
                        .bind(new.expires_at_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                self.insert_reservation_entry_tx(tx, new.id, "reserved", Some(new.expires_at_ms), None, now_ms).await
            }

            pub(crate) async fn insert_reservation_entry_tx(
                &self,
                tx: &mut WriteTx<$database>,
                reservation_id: &str,
                kind: &str,
                expires_at_ms: Option<i64>,
                event_id: Option<&str>,
                now_ms: i64,
            ) -> DbResult<()> {
                sqlx::query(INSERT_ENTRY)
                    .bind(new_id("lrev", now_ms))
                    .bind(reservation_id)
                    .bind(kind)
                    .bind(expires_at_ms)
                    .bind(event_id)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Locks the reservation for the transaction (`for update` on PostgreSQL; the
            /// single writer on SQLite).
            pub(crate) async fn lock_limit_reservation_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                id: &str,
            ) -> DbResult<Option<LockedReservation>> {
                let sql = format!(
                    "select {RESERVATION_COLUMNS} from limit_reservations where project_id = $1 and id = $2{}",
                    if self.is_postgres() { " for update" } else { "" }
                );
                let Some(row) = sqlx::query_as::<_, ReservationRow>(&sql)
                    .bind(project_id)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(LockedReservation {
                    status: ReservationStatus::parse(&row.status)
                        .ok_or_else(|| DbError::Corrupt(format!("reservation status {}", row.status)))?,
                    customer_id: row.customer_id,
                    expires_at_ms: row.expires_at,
                    balance_reservation_ids: serde_json::from_str(&row.balance_reservations)?,
                }))
            }

            /// Ends a held reservation: its holds go, and the trail says how. False if it was
            /// no longer held.
            pub(crate) async fn settle_limit_reservation_tx(
                &self,
                tx: &mut WriteTx<$database>,
                id: &str,
                status: ReservationStatus,
                event_id: Option<&str>,
                now_ms: i64,
            ) -> DbResult<bool> {
                let settled = sqlx::query(SETTLE_RESERVATION)
                    .bind(id)
                    .bind(status.as_str())
                    .bind(event_id)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                if settled.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(DELETE_HOLDS).bind(id).execute(&mut **tx).await?;
                self.insert_reservation_entry_tx(tx, id, status.as_str(), None, event_id, now_ms).await?;
                Ok(true)
            }

            /// Moves a held reservation's expiry, with its holds and its balance holds.
            pub(crate) async fn extend_limit_reservation_tx(
                &self,
                tx: &mut WriteTx<$database>,
                id: &str,
                balance_reservation_ids: &[String],
                expires_at_ms: i64,
                now_ms: i64,
            ) -> DbResult<()> {
                sqlx::query(EXTEND_RESERVATION).bind(id).bind(expires_at_ms).execute(&mut **tx).await?;
                sqlx::query(EXTEND_HOLDS).bind(id).bind(expires_at_ms).execute(&mut **tx).await?;
                for balance_reservation in balance_reservation_ids {
                    sqlx::query(EXTEND_BALANCE_HOLD)
                        .bind(balance_reservation)
                        .bind(expires_at_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                self.insert_reservation_entry_tx(tx, id, "extended", Some(expires_at_ms), None, now_ms).await
            }

            /// Every hold of these customers (expired ones too, until swept), by customer id;
            /// a customer without holds has an empty list.
            pub(crate) async fn customers_holds_tx(
                &self,
                tx: &mut WriteTx<$database>,
                customer_ids: &[&str],
            ) -> DbResult<HashMap<String, Vec<Hold>>> {
                if customer_ids.is_empty() {
                    return Ok(HashMap::new());
                }
                let sql = format!("{SELECT_HOLDS} ({})", numbered_list(1, customer_ids.len()));
                let mut query = sqlx::query_as::<_, HoldRow>(&sql);
                for customer_id in customer_ids {
                    query = query.bind(*customer_id);
                }
                Ok(holds_by_customer(customer_ids, query.fetch_all(&mut **tx).await?))
            }
        }
    };
}
reservation_rows!(SqliteStore, Sqlite);
reservation_rows!(PgStore, Postgres);

/// `SELECT_HOLDS`' columns.
type HoldRow = (String, String, String, i64, i64);

/// The rows' holds by customer id, with an empty list for each of `customer_ids` that has none.
fn holds_by_customer(customer_ids: &[&str], rows: Vec<HoldRow>) -> HashMap<String, Vec<Hold>> {
    let mut holds: HashMap<String, Vec<Hold>> = customer_ids.iter().map(|id| (id.to_string(), Vec::new())).collect();
    for (customer_id, reservation_id, limit_id, amount, expires_at_ms) in rows {
        let hold = Hold { reservation_id, limit_id, amount: Quantity(amount), expires_at_ms };
        holds.entry(customer_id).or_default().push(hold);
    }
    holds
}

impl PgStore {
    /// Tells every instance that a customer's holds changed, when the transaction commits.
    pub(crate) async fn announce_holds_tx(&self, tx: &mut WriteTx<Postgres>, customer_id: &str) -> DbResult<()> {
        sqlx::query(super::NOTIFY).bind(HOLDS_CHANNEL).bind(customer_id).execute(&mut **tx).await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Nobody else shares the file: there is no one to tell.
    pub(crate) async fn announce_holds_tx(&self, _tx: &mut WriteTx<Sqlite>, _customer_id: &str) -> DbResult<()> {
        Ok(())
    }
}

impl Db {
    /// Every hold of a customer's, live or not yet swept.
    pub async fn customer_holds(&self, customer_id: &str) -> DbResult<Vec<Hold>> {
        let sql = format!("{SELECT_HOLDS} ($1)");
        let rows = with_store!(self, s => sqlx::query_as(&sql).bind(customer_id).fetch_all(s.pool()).await)?;
        Ok(holds_by_customer(&[customer_id], rows).remove(customer_id).unwrap_or_default())
    }

    /// What live holds add to one limit, by customer id.
    pub async fn held_on_limit(&self, limit_id: &str, now_ms: i64) -> DbResult<HashMap<String, Quantity>> {
        let rows: Vec<(String, i64)> = with_store!(self, s => sqlx::query_as(SELECT_HELD_ON_LIMIT)
            .bind(limit_id)
            .bind(now_ms)
            .fetch_all(s.pool())
            .await)?;
        Ok(rows.into_iter().map(|(customer, amount)| (customer, Quantity(amount))).collect())
    }

    /// A reservation with the limits it holds and its audit trail.
    pub async fn limit_reservation(&self, project_id: &str, id: &str) -> DbResult<Option<LimitReservation>> {
        with_store!(self, s => {
            let sql = format!("select {RESERVATION_COLUMNS} from limit_reservations where project_id = $1 and id = $2");
            let Some(row) = sqlx::query_as::<_, ReservationRow>(&sql).bind(project_id).bind(id).fetch_optional(s.pool()).await? else {
                return Ok(None);
            };
            let entries: Vec<(String, Option<i64>, Option<String>, i64)> =
                sqlx::query_as(SELECT_ENTRIES).bind(id).fetch_all(s.pool()).await?;
            let entries = entries
                .into_iter()
                .map(|(kind, expires_at, event_id, created_at)| ReservationEntry {
                    kind,
                    expires_at: expires_at.map(ms_to_time),
                    event_id,
                    created_at: ms_to_time(created_at),
                })
                .collect();
            row.into_reservation(entries).map(Some)
        })
    }

    /// A customer's reservations holding capacity at `now_ms` (the dashboard's "in flight"),
    /// newest first, without their trails.
    pub async fn live_reservations_of_customer(
        &self,
        customer_id: &str,
        now_ms: i64,
        limit: i64,
    ) -> DbResult<Vec<LimitReservation>> {
        let sql = format!(
            "select {RESERVATION_COLUMNS} from limit_reservations where customer_id = $1 and status = 'held' \
             and expires_at > $2 order by created_at desc, id desc limit $3"
        );
        let rows = with_store!(self, s => sqlx::query_as::<_, ReservationRow>(&sql)
            .bind(customer_id)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(|row| row.into_reservation(Vec::new())).collect()
    }

    /// Held reservations whose time is up: (project id, reservation id), oldest first.
    pub async fn due_limit_reservations(&self, now_ms: i64) -> DbResult<Vec<(String, String)>> {
        Ok(with_store!(self, s => sqlx::query_as(SELECT_DUE).bind(now_ms).fetch_all(s.pool()).await)?)
    }
}
