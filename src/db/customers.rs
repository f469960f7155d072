//! Customers: lookup by internal id or `externalId`, implicit creation, CRUD.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use std::collections::HashMap;

use super::{
    conflict_on_unique, ms_to_time, numbered_list, placeholder_rows, statement_chunks, with_store, Db, DbError,
    DbResult, PgStore, SqliteStore, Store, WriteTx, ROWS_PER_STATEMENT,
};
use crate::domain::customers::{parse_billing_anchor, Customer, CUSTOMER_ID_PREFIX};
use crate::domain::ids::new_id;
use crate::domain::limits::counted_limits;

#[derive(sqlx::FromRow)]
pub(crate) struct CustomerRow {
    id: String,
    project_id: String,
    external_id: String,
    name: Option<String>,
    email: Option<String>,
    metadata: String,
    timezone: Option<String>,
    billing_cycle_start: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = DbError;
    fn try_from(row: CustomerRow) -> DbResult<Customer> {
        Ok(Customer {
            id: row.id,
            project_id: row.project_id,
            external_id: row.external_id,
            name: row.name,
            email: row.email,
            metadata: serde_json::from_str(&row.metadata)?,
            timezone: row.timezone,
            billing_cycle_start: row
                .billing_cycle_start
                .map(|d| parse_billing_anchor(&d, "billingCycleStart"))
                .transpose()
                .map_err(|e| DbError::Corrupt(format!("{e:?}")))?,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
        })
    }
}

macro_rules! customer_columns {
    () => {
        "id, project_id, external_id, name, email, metadata, timezone, billing_cycle_start, created_at, updated_at"
    };
}

const SELECT_CUSTOMER_BY_ID: &str =
    concat!("select ", customer_columns!(), " from customers where project_id = $1 and id = $2");
const SELECT_CUSTOMER_BY_EXTERNAL_ID: &str =
    concat!("select ", customer_columns!(), " from customers where project_id = $1 and external_id = $2");
const SELECT_CUSTOMERS_PAGE: &str = concat!(
    "select ",
    customer_columns!(),
    " from customers where project_id = $1 and id > $2 \
     and ($3 = '' or lower(external_id) like $3 escape '\\' or lower(coalesce(name, '')) like $3 escape '\\' \
          or lower(coalesce(email, '')) like $3 escape '\\') \
     order by id limit $4"
);
const INSERT_CUSTOMER: &str = "insert into customers \
     (id, project_id, external_id, name, email, metadata, timezone, billing_cycle_start, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
const SELECT_CUSTOMERS_BY_EXTERNAL_IDS: &str =
    concat!("select ", customer_columns!(), " from customers where project_id = $1 and external_id in");
const INSERT_CUSTOMERS_IF_MISSING: &str =
    "insert into customers (id, project_id, external_id, created_at, updated_at) values";
const INSERT_CUSTOMER_IF_MISSING: &str = "insert into customers \
     (id, project_id, external_id, metadata, created_at, updated_at) values ($1, $2, $3, '{}', $4, $4) \
     on conflict (project_id, external_id) do nothing";
const UPDATE_CUSTOMER: &str = "update customers set name = $3, email = $4, metadata = $5, timezone = $6, \
     billing_cycle_start = $7, updated_at = $8 where project_id = $1 and id = $2";
const DELETE_CUSTOMER_COUNTERS: &str = "delete from usage_counters where customer_id = $1";
const DELETE_CUSTOMER_LIMIT_COUNTERS: &str =
    "delete from usage_counters where limit_id in (select id from limits where customer_id = $1)";
const DELETE_CUSTOMER_LIMITS: &str = "delete from limits where customer_id = $1";
// Within the customer's project, which SQLite finds by the events' primary key (it keeps no
// index of events by customer).
const DELETE_CUSTOMER_EVENTS: &str =
    "delete from events where project_id = (select project_id from customers where id = $1) and customer_id = $1";
const DELETE_CUSTOMER_RESERVATION_ENTRIES: &str = "delete from limit_reservation_entries \
     where reservation_id in (select id from limit_reservations where customer_id = $1)";
const DELETE_CUSTOMER_HOLDS: &str = "delete from limit_holds where customer_id = $1";
const DELETE_CUSTOMER_RESERVATIONS: &str = "delete from limit_reservations where customer_id = $1";
const DELETE_CUSTOMER: &str = "delete from customers where id = $1";
const COUNT_CUSTOMER_BALANCES: &str = "select count(*) from balances where customer_id = $1";

/// Fields of a customer as stored; the API layer validates them.
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: serde_json::Value,
    pub timezone: Option<String>,
    pub billing_cycle_start: Option<chrono::NaiveDate>,
}

macro_rules! customer_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Finds a customer by id or `externalId`, creating it by `externalId` if missing.
            pub(crate) async fn ensure_customer_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                reference: &str,
                now_ms: i64,
            ) -> DbResult<Customer> {
                if reference.starts_with(CUSTOMER_ID_PREFIX) {
                    let row = sqlx::query_as::<_, CustomerRow>(SELECT_CUSTOMER_BY_ID)
                        .bind(project_id)
                        .bind(reference)
                        .fetch_optional(&mut **tx)
                        .await?;
                    // An internal id names an existing customer; it never becomes an externalId.
                    return match row {
                        Some(row) => row.try_into(),
                        None => Err(DbError::NotFound { resource: "customer", id: reference.to_string() }),
                    };
                }
                let inserted = sqlx::query(INSERT_CUSTOMER_IF_MISSING)
                    .bind(new_id("cust", now_ms))
                    .bind(project_id)
                    .bind(reference)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                if inserted.rows_affected() > 0 {
                    self.announce_customers_created_tx(tx, project_id).await?;
                }
                sqlx::query_as::<_, CustomerRow>(SELECT_CUSTOMER_BY_EXTERNAL_ID)
                    .bind(project_id)
                    .bind(reference)
                    .fetch_one(&mut **tx)
                    .await?
                    .try_into()
            }

            /// `ensure_customer_tx` for many references at once, in a few statements: the
            /// record path's cost must not grow with one round trip per customer.
            pub(crate) async fn ensure_customers_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                references: &[&str],
                now_ms: i64,
            ) -> DbResult<(HashMap<String, Customer>, bool)> {
                let mut found = HashMap::with_capacity(references.len());
                let mut created = false;
                let (internal, external): (Vec<&str>, Vec<&str>) =
                    references.iter().partition(|r| r.starts_with(CUSTOMER_ID_PREFIX));
                for reference in internal {
                    let customer = self.ensure_customer_tx(tx, project_id, reference, now_ms).await?;
                    found.insert(reference.to_string(), customer);
                }
                for chunk in statement_chunks(&external, ROWS_PER_STATEMENT) {
                    let select = format!("{SELECT_CUSTOMERS_BY_EXTERNAL_IDS} ({})", numbered_list(2, chunk.len()));
                    let mut missing: Vec<&str> = chunk.to_vec();
                    for attempt in 0..2 {
                        if missing.is_empty() {
                            break;
                        }
                        if attempt == 1 {
                            // Sorted input keeps the insert order stable across concurrent batches.
                            let insert = format!(
                                "{INSERT_CUSTOMERS_IF_MISSING} {} on conflict (project_id, external_id) do nothing",
                                placeholder_rows(<$store as Store>::POSTGRES, missing.len(), 5, 1)
                            );
                            let mut query = sqlx::query(&insert);
                            for reference in &missing {
                                query = query
                                    .bind(new_id("cust", now_ms))
                                    .bind(project_id)
                                    .bind(*reference)
                                    .bind(now_ms)
                                    .bind(now_ms);
                            }
                            created |= query.execute(&mut **tx).await?.rows_affected() > 0;
                        }
                        let mut query = sqlx::query_as::<_, CustomerRow>(&select).bind(project_id);
                        for reference in chunk {
                            query = query.bind(*reference);
                        }
                        for row in query.fetch_all(&mut **tx).await? {
                            let customer = Customer::try_from(row)?;
                            found.insert(customer.external_id.clone(), customer);
                        }
                        missing.retain(|r| !found.contains_key(*r));
                    }
                }
                if created {
                    self.announce_customers_created_tx(tx, project_id).await?;
                }
                Ok((found, created))
            }
        }
    };
}
customer_transaction_helpers!(SqliteStore, Sqlite);
customer_transaction_helpers!(PgStore, Postgres);

impl Db {
    /// A customer by internal id (`cust_…`) or `externalId`.
    pub async fn customer(&self, project_id: &str, reference: &str) -> DbResult<Option<Customer>> {
        let row = with_store!(self, s => {
            let mut row = None;
            if reference.starts_with(CUSTOMER_ID_PREFIX) {
                row = sqlx::query_as::<_, CustomerRow>(SELECT_CUSTOMER_BY_ID)
                    .bind(project_id)
                    .bind(reference)
                    .fetch_optional(s.pool())
                    .await?;
            }
            if row.is_none() {
                row = sqlx::query_as::<_, CustomerRow>(SELECT_CUSTOMER_BY_EXTERNAL_ID)
                    .bind(project_id)
                    .bind(reference)
                    .fetch_optional(s.pool())
                    .await?;
            }
            row
        });
        row.map(Customer::try_from).transpose()
    }

    /// The customer, created by `externalId` on first use.
    pub async fn ensure_customer(&self, project_id: &str, reference: &str, now_ms: i64) -> DbResult<Customer> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let customer = s.ensure_customer_tx(&mut tx, project_id, reference, now_ms).await?;
            tx.commit().await?;
            Ok(customer)
        })
    }

    pub async fn create_customer(
        &self,
        project_id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> DbResult<Customer> {
        let id = new_id("cust", now.timestamp_millis());
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(INSERT_CUSTOMER)
                .bind(&id)
                .bind(project_id)
                .bind(&fields.external_id)
                .bind(&fields.name)
                .bind(&fields.email)
                .bind(fields.metadata.to_string())
                .bind(&fields.timezone)
                .bind(fields.billing_cycle_start.map(|d| d.to_string()))
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_on_unique(e, format!("a customer with externalId {} already exists", fields.external_id)))?;
            s.announce_customers_created_tx(&mut tx, project_id).await?;
            tx.commit().await?;
        });
        self.customer(project_id, &id).await?.ok_or(DbError::NotFound { resource: "customer", id })
    }

    /// Lists customers in creation order after the cursor, optionally matching a search text.
    pub async fn customers_page(
        &self,
        project_id: &str,
        after: Option<&str>,
        search: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<Customer>> {
        let pattern = search
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", like_escape(&s.to_lowercase())))
            .unwrap_or_default();
        let rows = with_store!(self, s => sqlx::query_as::<_, CustomerRow>(SELECT_CUSTOMERS_PAGE)
            .bind(project_id)
            .bind(after.unwrap_or(""))
            .bind(pattern)
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Customer::try_from).collect()
    }

    /// Updates a customer; when its timezone or billing anchor moves, its current window
    /// counters are rebuilt in the same transaction so checks stay exact.
    pub async fn update_customer(
        &self,
        project: &super::projects::Project,
        before: &Customer,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> DbResult<Customer> {
        let windows_move =
            before.timezone != fields.timezone || before.billing_cycle_start != fields.billing_cycle_start;
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            s.lock_project(&mut tx, &project.id, true).await?;
            sqlx::query(UPDATE_CUSTOMER)
                .bind(&project.id)
                .bind(&before.id)
                .bind(&fields.name)
                .bind(&fields.email)
                .bind(fields.metadata.to_string())
                .bind(&fields.timezone)
                .bind(fields.billing_cycle_start.map(|d| d.to_string()))
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            if windows_move {
                let after = Customer {
                    timezone: fields.timezone.clone(),
                    billing_cycle_start: fields.billing_cycle_start,
                    ..before.clone()
                };
                let (limits, meters) = s.limits_and_meters_tx(&mut tx, &project.id).await?;
                for limit in counted_limits(&limits, &before.id) {
                    if let Some(meter) = meters.iter().find(|m| m.id == limit.meter_id) {
                        s.rebuild_counters_tx(&mut tx, project, limit, meter, Some(&after), now).await?;
                    }
                }
            }
            tx.commit().await?;
        });
        self.customer(&project.id, &before.id)
            .await?
            .ok_or_else(|| DbError::NotFound { resource: "customer", id: before.id.clone() })
    }

    /// Deletes a customer with its events, its own limits and their counters. A customer
    /// holding balances is kept: money ledgers are never deleted.
    pub async fn delete_customer(&self, project_id: &str, customer_id: &str) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            // Waits for the project's recorders to finish, so none inserts an event for this
            // customer between the deletes (an event left without its customer) or locks rows
            // in the opposite order (a deadlock); later recorders see it gone.
            s.lock_project(&mut tx, project_id, true).await?;
            let balances: i64 = sqlx::query_scalar(COUNT_CUSTOMER_BALANCES).bind(customer_id).fetch_one(&mut *tx).await?;
            if balances > 0 {
                return Err(DbError::Conflict(format!(
                    "customer {customer_id} holds {balances} balance(s); customers with a ledger cannot be deleted"
                )));
            }
            for sql in [
                DELETE_CUSTOMER_COUNTERS,
                DELETE_CUSTOMER_LIMIT_COUNTERS,
                DELETE_CUSTOMER_LIMITS,
                DELETE_CUSTOMER_EVENTS,
                DELETE_CUSTOMER_RESERVATION_ENTRIES,
                DELETE_CUSTOMER_HOLDS,
                DELETE_CUSTOMER_RESERVATIONS,
                DELETE_CUSTOMER,
            ] {
                sqlx::query(sql).bind(customer_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Escapes a search text for `like … escape '\'`, so `%` and `_` match themselves.
fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
