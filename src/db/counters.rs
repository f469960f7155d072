//! Pre-aggregated usage: one counter per limit, customer and window. The check path reads
//! these and never the raw events.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::customers::CustomerRow;
use super::events::UsageRow;
use super::projects::Project;
use super::{placeholder_rows, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::{Aggregation, Counter, Meter};
use crate::domain::quantity::Quantity;
use crate::domain::usage::{counter_updates, merge_updates, CounterKey, CounterUpdate, Usage};
use crate::domain::windows::window_containing;

// Followed by `((limit_id, window_start), …)` pairs.
const SELECT_COUNTERS_OF_CUSTOMER: &str = "select limit_id, window_start, value, latest_at from usage_counters \
     where customer_id = $1 and (limit_id, window_start) in";
const DELETE_COUNTERS_OF_LIMIT: &str = "delete from usage_counters where limit_id = $1";
const DELETE_COUNTERS_OF_LIMIT_AND_CUSTOMER: &str =
    "delete from usage_counters where limit_id = $1 and customer_id = $2";
// The customers a limit governs: its own customer, or (for a default, `$2` empty) all of them.
const SELECT_GOVERNED_CUSTOMERS: &str = concat!(
    "select id, external_id, name, email, metadata, timezone, billing_cycle_start, created_at, updated_at ",
    "from customers where project_id = $1 and ($2 = '' or id = $2)"
);
const SELECT_CUSTOMER_USAGE_SINCE: &str = "select event_type, metric_values, dimensions, occurred_at from events \
     where customer_id = $1 and occurred_at >= $2 and occurred_at < $3";

// Multi-row upserts: `INSERT_COUNTERS` and `($1, …, $5), …` rows, then the aggregation's
// conflict clause. Rows come merged (one per key) and in key order, so concurrent writers on
// PostgreSQL take counter rows in the same order.
const INSERT_COUNTERS: &str =
    "insert into usage_counters (limit_id, customer_id, window_start, value, latest_at) values";
const LATER_LATEST_AT: &str = "latest_at = case when excluded.latest_at > usage_counters.latest_at \
     then excluded.latest_at else usage_counters.latest_at end returning limit_id, customer_id, window_start, value";
const ON_CONFLICT_SUM: &str =
    "on conflict (limit_id, customer_id, window_start) do update set value = usage_counters.value + excluded.value,";
const ON_CONFLICT_MAX: &str = "on conflict (limit_id, customer_id, window_start) do update set \
     value = case when excluded.value > usage_counters.value then excluded.value else usage_counters.value end,";
// Ties go to the later arrival, as in `Aggregation::merge`.
const ON_CONFLICT_LATEST: &str = "on conflict (limit_id, customer_id, window_start) do update set \
     value = case when excluded.latest_at >= usage_counters.latest_at then excluded.value \
     else usage_counters.value end,";
/// Counter rows per statement: 5 parameters each, far under both databases' limits.
const COUNTERS_PER_STATEMENT: usize = 200;

/// Why a write that would take a limit's window counter past its range was refused.
pub fn counter_range_message(limit_id: &str) -> String {
    format!(
        "recording this would take the usage counter of limit {limit_id} beyond ±{}, the largest a window counter holds",
        Quantity::MAX_COUNTER
    )
}

fn on_conflict(aggregation: Aggregation) -> &'static str {
    match aggregation {
        Aggregation::Sum | Aggregation::Count => ON_CONFLICT_SUM,
        Aggregation::Max => ON_CONFLICT_MAX,
        Aggregation::Latest => ON_CONFLICT_LATEST,
    }
}

macro_rules! counter_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Folds updates into their counters, a few hundred per statement; callers pass
            /// them merged and in key order. Returns each counter's new value, in that order.
            pub(crate) async fn apply_counter_updates_tx(
                &self,
                tx: &mut WriteTx<$database>,
                updates: &[CounterUpdate],
            ) -> DbResult<Vec<Quantity>> {
                let mut stored: HashMap<(String, String, i64), i64> = HashMap::with_capacity(updates.len());
                for aggregation in [Aggregation::Sum, Aggregation::Count, Aggregation::Max, Aggregation::Latest] {
                    let same: Vec<&CounterUpdate> = updates.iter().filter(|u| u.aggregation == aggregation).collect();
                    for chunk in same.chunks(COUNTERS_PER_STATEMENT) {
                        let sql = format!(
                            "{INSERT_COUNTERS} {} {} {LATER_LATEST_AT}",
                            placeholder_rows(<$store as Store>::POSTGRES, chunk.len(), 5, 1),
                            on_conflict(aggregation)
                        );
                        let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(&sql);
                        for update in chunk {
                            query = query
                                .bind(&update.key.limit_id)
                                .bind(&update.key.customer_id)
                                .bind(update.key.window_start)
                                .bind(update.counter.value.0)
                                .bind(update.counter.latest_at);
                        }
                        for (limit_id, customer_id, window_start, value) in query.fetch_all(&mut **tx).await? {
                            stored.insert((limit_id, customer_id, window_start), value);
                        }
                    }
                }
                updates
                    .iter()
                    .map(|update| {
                        let key = &update.key;
                        let value = stored
                            .get(&(key.limit_id.clone(), key.customer_id.clone(), key.window_start))
                            .map(|&v| Quantity(v))
                            .ok_or_else(|| {
                                DbError::Corrupt(format!("counter of limit {} not upserted", key.limit_id))
                            })?;
                        if !value.in_counter_range() {
                            return Err(DbError::CounterOutOfRange { limit_id: key.limit_id.clone() });
                        }
                        Ok(value)
                    })
                    .collect()
            }

            /// Recomputes a limit's counters for the current windows from recorded events:
            /// for every customer it governs, or only `only_customer`.
            pub(crate) async fn rebuild_counters_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project: &Project,
                limit: &Limit,
                meter: &Meter,
                only_customer: Option<&Customer>,
                now: DateTime<Utc>,
            ) -> DbResult<()> {
                let customers: Vec<Customer> = match only_customer {
                    Some(customer) => {
                        sqlx::query(DELETE_COUNTERS_OF_LIMIT_AND_CUSTOMER)
                            .bind(&limit.id)
                            .bind(&customer.id)
                            .execute(&mut **tx)
                            .await?;
                        vec![customer.clone()]
                    }
                    None => {
                        sqlx::query(DELETE_COUNTERS_OF_LIMIT).bind(&limit.id).execute(&mut **tx).await?;
                        sqlx::query_as::<_, CustomerRow>(SELECT_GOVERNED_CUSTOMERS)
                            .bind(&project.id)
                            .bind(limit.customer_id.as_deref().unwrap_or(""))
                            .fetch_all(&mut **tx)
                            .await?
                            .into_iter()
                            .map(Customer::try_from)
                            .collect::<DbResult<Vec<_>>>()?
                    }
                };
                let limits = std::slice::from_ref(limit);
                let meters = HashMap::from([(meter.id.as_str(), meter)]);
                for customer in customers.iter().filter(|c| limit.customer_id.as_ref().is_none_or(|id| *id == c.id)) {
                    let window = window_containing(
                        limit.period,
                        now,
                        customer.window_zone(project.timezone),
                        customer.billing_cycle_start,
                    );
                    let rows = sqlx::query_as::<_, UsageRow>(SELECT_CUSTOMER_USAGE_SINCE)
                        .bind(&customer.id)
                        .bind(window.start_ms())
                        .bind(window.end.map_or(i64::MAX, |end| end.timestamp_millis()))
                        .fetch_all(&mut **tx)
                        .await?;
                    let mut updates = Vec::new();
                    for row in rows {
                        let usage = row.decode()?;
                        let dimensions: &BTreeMap<String, String> = &usage.dimensions;
                        updates.extend(counter_updates(
                            limits,
                            &meters,
                            customer,
                            project.timezone,
                            &Usage {
                                event_type: &usage.event_type,
                                dimensions,
                                quantities: &usage.quantities,
                                occurred_at: usage.occurred_at,
                            },
                        ));
                    }
                    self.apply_counter_updates_tx(tx, &merge_updates(updates)).await?;
                }
                Ok(())
            }
        }
    };
}
counter_transaction_helpers!(SqliteStore, Sqlite);
counter_transaction_helpers!(PgStore, Postgres);

impl Db {
    /// One customer's counters for the keys (which all name that customer), in one query;
    /// `None` where no event has fed one yet.
    pub async fn counters(&self, customer_id: &str, keys: &[CounterKey]) -> DbResult<Vec<Option<Counter>>> {
        let pairs: Vec<String> = (0..keys.len()).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
        let sql = format!("{SELECT_COUNTERS_OF_CUSTOMER} ({})", pairs.join(", "));
        let rows: Vec<(String, i64, i64, i64)> = with_store!(self, s => {
            let mut query = sqlx::query_as(&sql).bind(customer_id);
            for key in keys {
                query = query.bind(&key.limit_id).bind(key.window_start);
            }
            query.fetch_all(s.pool()).await
        })?;
        Ok(keys
            .iter()
            .map(|key| {
                rows.iter()
                    .find(|(limit_id, window_start, ..)| *limit_id == key.limit_id && *window_start == key.window_start)
                    .map(|&(_, _, value, latest_at)| Counter { value: Quantity(value), latest_at })
            })
            .collect())
    }
}
