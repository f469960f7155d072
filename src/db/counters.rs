//! Pre-aggregated usage: one counter per limit, customer and window. The check path reads
//! these and never the raw events.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use rand::Rng;
use sqlx::{Postgres, Sqlite};

use super::customers::CustomerRow;
use super::events::UsageRow;
use super::projects::Project;
use super::{with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::{Aggregation, Counter, Meter};
use crate::domain::quantity::Quantity;
use crate::domain::usage::{counter_updates, merge_updates, CounterKey, CounterUpdate, StoredCounter};
use crate::domain::windows::Rolling;

// Followed by ` or `-joined `(limit_id = $n and window_start = $n+1 and customer_id = $1)`:
// whole keys, each found by the primary key.
const SELECT_COUNTERS_OF_CUSTOMER: &str =
    "select limit_id, window_start, value, latest_at, version from usage_counters where";
const DELETE_COUNTERS_OF_LIMIT: &str = "delete from usage_counters where limit_id = $1";
const DELETE_COUNTERS_OF_LIMIT_AND_CUSTOMER: &str =
    "delete from usage_counters where limit_id = $1 and customer_id = $2";
// The customers a limit governs: its own customer, or (for a default, `$2` empty) all of them.
const SELECT_GOVERNED_CUSTOMERS: &str = concat!(
    "select id, project_id, external_id, name, email, metadata, timezone, billing_cycle_start, created_at, \
     updated_at ",
    "from customers where project_id = $1 and ($2 = '' or id = $2)"
);
// A limit's counters from `$2` on, with their customers.
const SELECT_LIMIT_COUNTERS_SINCE: &str = concat!(
    "select c.id, c.project_id, c.external_id, c.name, c.email, c.metadata, c.timezone, c.billing_cycle_start, ",
    "c.created_at, c.updated_at, u.window_start, u.value from usage_counters u join customers c on c.id = u.customer_id ",
    "where u.limit_id = $1 and u.window_start >= $2"
);
// The usage recorded in a project in a span of time, of every customer or of one (`$4`), read by
// the primary key: events keep no index by customer.
macro_rules! select_usage_between {
    () => {
        "select customer_id, event_type, metric_values, dimensions, occurred_at from events \
         where project_id = $1 and occurred_at >= $2 and occurred_at < $3"
    };
}
const SELECT_USAGE_BETWEEN: &str = select_usage_between!();
const SELECT_CUSTOMER_USAGE_BETWEEN: &str = concat!(select_usage_between!(), " and customer_id = $4");
/// Counter updates gathered while events are read before they are merged, bounding what a
/// rebuild holds to about the number of counters it writes.
const UPDATES_BEFORE_MERGE: usize = 10_000;

/// An event's usage with its customer, as a rebuild reads it.
#[derive(sqlx::FromRow)]
struct CustomerUsageRow {
    customer_id: String,
    #[sqlx(flatten)]
    usage: UsageRow,
}

// Multi-row upserts: `INSERT_COUNTERS` and the rows (`UPSERT_COUNTER_JSON_ROWS` on SQLite,
// `COUNTER_ARRAYS` on PostgreSQL), then the aggregation's conflict clause. Rows come merged
// (one per key) and in key order, so concurrent writers on PostgreSQL take counter rows in the
// same order.
const INSERT_COUNTERS: &str = "insert into usage_counters (limit_id, customer_id, window_start, value, latest_at)";
const COUNTER_ARRAYS: &str = "select * from unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[])";
// Every change moves the version: instances holding counters in memory keep the newest.
const LATER_LATEST_AT: &str = "latest_at = case when excluded.latest_at > usage_counters.latest_at \
     then excluded.latest_at else usage_counters.latest_at end, version = usage_counters.version + 1 \
     returning limit_id, customer_id, window_start, value, latest_at, version";
const ON_CONFLICT_SUM: &str =
    "on conflict (limit_id, customer_id, window_start) do update set value = usage_counters.value + excluded.value,";
const ON_CONFLICT_MAX: &str = "on conflict (limit_id, customer_id, window_start) do update set \
     value = case when excluded.value > usage_counters.value then excluded.value else usage_counters.value end,";
// Ties go to the later arrival, as in `Aggregation::merge`.
const ON_CONFLICT_LATEST: &str = "on conflict (limit_id, customer_id, window_start) do update set \
     value = case when excluded.latest_at >= usage_counters.latest_at then excluded.value \
     else usage_counters.value end,";
// SQLite: the rows as one JSON array bound to a parameter, so that the text is the same for any
// number of rows. (`where true` lets SQLite read the upsert clause that follows as one.)
// `[limit_id, customer_id, window_start, value, latest_at]` rows.
const UPSERT_COUNTER_JSON_ROWS: &str = "select r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, \
     r.value ->> 4 from json_each($1) as r where true";
// Counters whose next state is known already, as `[limit_id, customer_id, window_start, value,
// latest_at, version]` rows (see `counter_json_rows`) in the named parameter.
macro_rules! store_counter_json_rows {
    ($rows:literal) => {
        concat!(
            "insert into usage_counters (limit_id, customer_id, window_start, value, latest_at, version) ",
            "select r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5 ",
            "from json_each(",
            $rows,
            ") as r where true ",
            "on conflict (limit_id, customer_id, window_start) do update set ",
            "value = excluded.value, latest_at = excluded.latest_at, version = excluded.version"
        )
    };
}

// Rolling windows' buckets: followed by ` or `-joined
// `(limit_id = $n and customer_id = $n+1 and window_start >= $n+2)`, one per window.
const SELECT_BUCKETS: &str =
    "select limit_id, customer_id, window_start, value, latest_at, version from usage_counters";
// SQLite, knowing nothing of how many customers share a window, would otherwise walk a limit's
// windows by the primary key, through every customer's buckets.
const SQLITE_BUCKETS_BY_CUSTOMER: &str = "indexed by usage_counters_by_customer";
/// Windows per bucket query: 3 parameters each.
const WINDOWS_PER_STATEMENT: usize = 200;
const PRUNE_BUCKETS: &str = "delete from usage_counters where limit_id = $1 and customer_id = $2 and window_start < $3";
// One transaction-scoped lock per rolling window (limit and customer), taken in the order
// given: recorders of one window take turns, wherever they run.
const LOCK_ROLLING_WINDOWS: &str = "select pg_advisory_xact_lock(hashtextextended(k.key, 0)) \
     from unnest($1::text[]) with ordinality as k(key, n) order by k.n";
/// Buckets are deleted once they are this many window lengths old: long after any check
/// or record could still count them, even with clocks a little apart.
const PRUNE_AFTER_WINDOWS: i64 = 2;

/// Where one customer's rolling window of one limit begins: `(limit id, customer id, first
/// bucket start in Unix ms)`.
type BucketRange<'a> = (&'a str, &'a str, i64);
type BucketRow = (String, String, i64, i64, i64, i64);

fn buckets_sql(postgres: bool, windows: usize) -> String {
    let ranges: Vec<String> = (0..windows)
        .map(|i| {
            format!("(limit_id = ${} and customer_id = ${} and window_start >= ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)
        })
        .collect();
    let by_customer = if postgres { "" } else { SQLITE_BUCKETS_BY_CUSTOMER };
    format!("{SELECT_BUCKETS} {by_customer} where {}", ranges.join(" or "))
}

fn bucket_of(row: BucketRow) -> (CounterKey, StoredCounter) {
    let (limit_id, customer_id, window_start, value, latest_at, version) = row;
    let counter = Counter { value: Quantity(value), latest_at };
    (CounterKey { limit_id, customer_id, window_start }, StoredCounter { counter, version })
}

/// A rolling limit's window for one customer, as a recording transaction sees it at its `now`.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    pub rolling: Rolling,
    /// The window's usage before the transaction.
    pub before: Quantity,
    /// `(bucket start in Unix ms, value)`: the window's buckets, once the transaction commits.
    pub buckets: Vec<(i64, Quantity)>,
}

/// Rolling windows by `(limit id, customer id)`.
pub type RollingWindows = BTreeMap<(String, String), RollingWindow>;

/// The rolling windows counter updates touch, in key order.
fn touched_windows<'a>(
    limits: &'a [Limit],
    updates: &'a [CounterUpdate],
) -> BTreeMap<(&'a str, &'a str), (&'a Limit, Rolling)> {
    if !limits.iter().any(|limit| limit.rolling) {
        return BTreeMap::new(); // the usual case: nothing to look up per update
    }
    updates
        .iter()
        .filter_map(|update| {
            let limit = limits.iter().find(|l| l.id == update.key.limit_id)?;
            let rolling = limit.rolling_window()?;
            Some(((update.key.limit_id.as_str(), update.key.customer_id.as_str()), (limit, rolling)))
        })
        .collect()
}

/// The PostgreSQL channel on which a recording transaction announces the counters it changed,
/// as stored, so every instance can keep them in memory; PostgreSQL delivers the announcements
/// when, and only if, the transaction commits, in commit order.
pub const COUNTERS_CHANNEL: &str = "limitry_counters";
const ANNOUNCE_COUNTERS: &str = "select pg_notify($1, payload) from unnest($2::text[]) as payload";
/// PostgreSQL refuses payloads of 8,000 bytes or more.
pub(crate) const MAX_ANNOUNCEMENT_BYTES: usize = 7_000;

/// Announcements: one line per counter, `limit customer window_start value latest_at version`,
/// each payload under PostgreSQL's size limit.
fn encode_counters(counters: &[(CounterKey, StoredCounter)]) -> Vec<String> {
    let mut payloads = vec![String::new()];
    for (key, stored) in counters {
        let line = format!(
            "{} {} {} {} {} {}",
            key.limit_id,
            key.customer_id,
            key.window_start,
            stored.counter.value.0,
            stored.counter.latest_at,
            stored.version
        );
        let current = payloads.last_mut().expect("never empty");
        if !current.is_empty() && current.len() + 1 + line.len() > MAX_ANNOUNCEMENT_BYTES {
            payloads.push(line);
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&line);
        }
    }
    payloads.retain(|payload| !payload.is_empty());
    payloads
}

/// Reads an announcement made by `announce_counters_tx`.
pub fn decode_counters(payload: &str) -> DbResult<Vec<(CounterKey, StoredCounter)>> {
    let corrupt = || DbError::Corrupt(format!("counter announcement: {payload:.80}"));
    payload
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [limit_id, customer_id, window_start, value, latest_at, version] = fields[..] else {
                return Err(corrupt());
            };
            let number = |text: &str| text.parse::<i64>().map_err(|_| corrupt());
            let key = CounterKey {
                limit_id: limit_id.to_string(),
                customer_id: customer_id.to_string(),
                window_start: number(window_start)?,
            };
            let counter = Counter { value: Quantity(number(value)?), latest_at: number(latest_at)? };
            Ok((key, StoredCounter { counter, version: number(version)? }))
        })
        .collect()
}

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
            /// them merged and in key order. Returns each counter as stored now, in that order.
            pub(crate) async fn apply_counter_updates_tx(
                &self,
                tx: &mut WriteTx<$database>,
                updates: &[CounterUpdate],
            ) -> DbResult<Vec<StoredCounter>> {
                let mut stored: HashMap<(String, String, i64), StoredCounter> = HashMap::with_capacity(updates.len());
                for aggregation in [Aggregation::Sum, Aggregation::Count, Aggregation::Max, Aggregation::Latest] {
                    let same: Vec<&CounterUpdate> = updates.iter().filter(|u| u.aggregation == aggregation).collect();
                    if same.is_empty() {
                        continue;
                    }
                    for (limit_id, customer_id, window_start, value, latest_at, version) in
                        self.upsert_counters_tx(tx, aggregation, &same).await?
                    {
                        let counter = Counter { value: Quantity(value), latest_at };
                        stored.insert((limit_id, customer_id, window_start), StoredCounter { counter, version });
                    }
                }
                updates
                    .iter()
                    .map(|update| {
                        let key = &update.key;
                        let stored = stored
                            .get(&(key.limit_id.clone(), key.customer_id.clone(), key.window_start))
                            .copied()
                            .ok_or_else(|| {
                                DbError::Corrupt(format!("counter of limit {} not upserted", key.limit_id))
                            })?;
                        if !stored.counter.value.in_counter_range() {
                            return Err(DbError::CounterOutOfRange { limit_id: key.limit_id.clone() });
                        }
                        Ok(stored)
                    })
                    .collect()
            }

            /// Reads buckets of rolling windows, each from its first bucket on.
            async fn buckets_tx(
                &self,
                tx: &mut WriteTx<$database>,
                ranges: &[BucketRange<'_>],
            ) -> DbResult<Vec<(CounterKey, StoredCounter)>> {
                let mut buckets = Vec::new();
                for chunk in ranges.chunks(WINDOWS_PER_STATEMENT) {
                    let sql = buckets_sql(<$store as Store>::POSTGRES, chunk.len());
                    let mut query = sqlx::query_as::<_, BucketRow>(&sql);
                    for (limit_id, customer_id, from_ms) in chunk {
                        query = query.bind(*limit_id).bind(*customer_id).bind(*from_ms);
                    }
                    buckets.extend(query.fetch_all(&mut **tx).await?.into_iter().map(bucket_of));
                }
                Ok(buckets)
            }

            /// Before `updates` are applied: makes recorders of the same rolling windows take
            /// turns (on PostgreSQL; SQLite has one writer), and reads the windows at `now` of
            /// the limits `read` picks, for a judge or for alerts.
            pub(crate) async fn begin_rolling_tx(
                &self,
                tx: &mut WriteTx<$database>,
                limits: &[Limit],
                updates: &[CounterUpdate],
                now: DateTime<Utc>,
                read: impl Fn(&Limit) -> bool,
            ) -> DbResult<RollingWindows> {
                let touched = touched_windows(limits, updates);
                if touched.is_empty() {
                    return Ok(RollingWindows::new());
                }
                self.lock_rolling_windows_tx(tx, touched.keys().copied()).await?;
                let ranges: Vec<BucketRange<'_>> = touched
                    .iter()
                    .filter(|(_, (limit, _))| read(limit))
                    .map(|(&(limit, customer), (_, rolling))| (limit, customer, rolling.window_at(now).start_ms()))
                    .collect();
                let mut windows: RollingWindows = ranges
                    .iter()
                    .map(|&(limit, customer, _)| {
                        let rolling = touched[&(limit, customer)].1;
                        let window = RollingWindow { rolling, before: Quantity::ZERO, buckets: Vec::new() };
                        ((limit.to_string(), customer.to_string()), window)
                    })
                    .collect();
                for (key, stored) in self.buckets_tx(tx, &ranges).await? {
                    if let Some(window) = windows.get_mut(&(key.limit_id, key.customer_id)) {
                        if window.rolling.holds(now, key.window_start) {
                            window.buckets.push((key.window_start, stored.counter.value));
                        }
                    }
                }
                for window in windows.values_mut() {
                    window.before = window.rolling.total(now, &window.buckets);
                }
                Ok(windows)
            }

            /// Once `updates` are applied (`stored` beside them): brings the windows read to the
            /// buckets as stored, and deletes buckets of the touched windows that are long out
            /// of them, whenever a new bucket begins.
            pub(crate) async fn finish_rolling_tx(
                &self,
                tx: &mut WriteTx<$database>,
                limits: &[Limit],
                windows: &mut RollingWindows,
                updates: &[CounterUpdate],
                stored: &[StoredCounter],
                now: DateTime<Utc>,
            ) -> DbResult<()> {
                let touched = touched_windows(limits, updates);
                if touched.is_empty() {
                    return Ok(());
                }
                let mut prune = BTreeMap::new();
                for (update, stored) in updates.iter().zip(stored) {
                    let key = &update.key;
                    let Some((_, rolling)) = touched.get(&(key.limit_id.as_str(), key.customer_id.as_str())) else {
                        continue;
                    };
                    if stored.version == 1 {
                        let keep_from =
                            rolling.bucket_start_ms(now).saturating_sub(PRUNE_AFTER_WINDOWS * rolling.length * 1000);
                        prune.insert((key.limit_id.as_str(), key.customer_id.as_str()), keep_from);
                    }
                    let Some(window) = windows.get_mut(&(key.limit_id.clone(), key.customer_id.clone())) else {
                        continue;
                    };
                    if window.rolling.holds(now, key.window_start) {
                        let value = stored.counter.value;
                        match window.buckets.iter_mut().find(|(start, _)| *start == key.window_start) {
                            Some(bucket) => bucket.1 = value,
                            None => window.buckets.push((key.window_start, value)),
                        }
                    }
                }
                for ((limit_id, customer_id), keep_from) in prune {
                    sqlx::query(PRUNE_BUCKETS)
                        .bind(limit_id)
                        .bind(customer_id)
                        .bind(keep_from)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
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
                // Each governed customer's current window; the events are read once, across the
                // span of them all (events keep no index by customer).
                let windows: HashMap<&str, (&Customer, i64, i64)> = customers
                    .iter()
                    .filter(|c| limit.customer_id.as_ref().is_none_or(|id| *id == c.id))
                    .map(|customer| {
                        let zone = customer.window_zone(project.timezone);
                        let window = limit.window_at(now, zone, customer.billing_cycle_start);
                        let end = window.end.map_or(i64::MAX, |end| end.timestamp_millis());
                        (customer.id.as_str(), (customer, window.start_ms(), end))
                    })
                    .collect();
                let (Some(from), Some(to)) = (windows.values().map(|w| w.1).min(), windows.values().map(|w| w.2).max())
                else {
                    return Ok(());
                };
                let sql = if only_customer.is_some() { SELECT_CUSTOMER_USAGE_BETWEEN } else { SELECT_USAGE_BETWEEN };
                let mut query = sqlx::query_as::<_, CustomerUsageRow>(sql).bind(&project.id).bind(from).bind(to);
                if let Some(customer) = only_customer {
                    query = query.bind(&customer.id);
                }
                let mut updates = Vec::new();
                let mut rows = query.fetch(&mut **tx);
                while let Some(row) = rows.try_next().await? {
                    let Some(&(customer, start, end)) = windows.get(row.customer_id.as_str()) else { continue };
                    let usage = row.usage.decode()?;
                    let at = usage.occurred_at.timestamp_millis();
                    if at < start || at >= end {
                        continue;
                    }
                    updates.extend(counter_updates(limits, &meters, customer, project.timezone, &usage.usage()));
                    if updates.len() >= UPDATES_BEFORE_MERGE {
                        updates = merge_updates(updates);
                    }
                }
                drop(rows);
                self.apply_counter_updates_tx(tx, &merge_updates(updates)).await?;
                Ok(())
            }
        }
    };
}
counter_transaction_helpers!(SqliteStore, Sqlite);
counter_transaction_helpers!(PgStore, Postgres);

/// A counter row as an upsert returns it.
type CounterRow = (String, String, i64, i64, i64, i64);

impl SqliteStore {
    /// Folds one aggregation's updates into their counters in one statement of fixed text.
    async fn upsert_counters_tx(
        &self,
        tx: &mut WriteTx<Sqlite>,
        aggregation: Aggregation,
        updates: &[&CounterUpdate],
    ) -> DbResult<Vec<CounterRow>> {
        let sql =
            format!("{INSERT_COUNTERS} {UPSERT_COUNTER_JSON_ROWS} {} {LATER_LATEST_AT}", on_conflict(aggregation));
        let rows: Vec<(&str, &str, i64, i64, i64)> = updates
            .iter()
            .map(|u| {
                (
                    u.key.limit_id.as_str(),
                    u.key.customer_id.as_str(),
                    u.key.window_start,
                    u.counter.value.0,
                    u.counter.latest_at,
                )
            })
            .collect();
        let rows =
            sqlx::query_as::<_, CounterRow>(&sql).bind(serde_json::to_string(&rows)?).fetch_all(&mut **tx).await?;
        Ok(rows)
    }

    /// `apply_counter_updates_tx` for counters whose stored state is known (`current`, in the
    /// same order; `None`: no row yet): their new states are worked out here and written as
    /// they are, so no row has to come back.
    pub(crate) async fn store_counter_updates_tx(
        &self,
        tx: &mut WriteTx<Sqlite>,
        updates: &[CounterUpdate],
        current: &[Option<StoredCounter>],
    ) -> DbResult<Vec<StoredCounter>> {
        const STORE_COUNTERS: &str = store_counter_json_rows!("$1");
        let stored = next_counter_states(updates, current)?;
        sqlx::query(STORE_COUNTERS).bind(counter_json_rows(updates, &stored)?).execute(&mut **tx).await?;
        Ok(stored)
    }
}

/// The states counters take once `updates` are folded into their stored states (`current`, in
/// the same order; `None`: no row yet), exactly as the database's upserts would store them.
pub(crate) fn next_counter_states(
    updates: &[CounterUpdate],
    current: &[Option<StoredCounter>],
) -> DbResult<Vec<StoredCounter>> {
    updates
        .iter()
        .zip(current)
        .map(|(update, current)| {
            let next = update.apply_to(*current);
            match next.counter.value.in_counter_range() {
                true => Ok(next),
                false => Err(DbError::CounterOutOfRange { limit_id: update.key.limit_id.clone() }),
            }
        })
        .collect()
}

/// The rows `store_counter_json_rows!` reads: each update's key beside its next state.
pub(crate) fn counter_json_rows(updates: &[CounterUpdate], stored: &[StoredCounter]) -> DbResult<String> {
    counter_key_json_rows(updates.iter().map(|u| &u.key), stored)
}

/// The rows `store_counter_json_rows!` reads: each key beside its state.
fn counter_key_json_rows<'a>(
    keys: impl IntoIterator<Item = &'a CounterKey>,
    stored: &[StoredCounter],
) -> DbResult<String> {
    let rows: Vec<(&str, &str, i64, i64, i64, i64)> = keys
        .into_iter()
        .zip(stored)
        .map(|(key, next)| {
            (
                key.limit_id.as_str(),
                key.customer_id.as_str(),
                key.window_start,
                next.counter.value.0,
                next.counter.latest_at,
                next.version,
            )
        })
        .collect();
    Ok(serde_json::to_string(&rows)?)
}

impl PgStore {
    /// Folds one aggregation's updates into their counters in one statement, the rows as one
    /// array per column: the text depends on the aggregation only, so it is prepared once per
    /// connection. `unnest` yields the rows in the arrays' order, which is key order.
    async fn upsert_counters_tx(
        &self,
        tx: &mut WriteTx<Postgres>,
        aggregation: Aggregation,
        updates: &[&CounterUpdate],
    ) -> DbResult<Vec<CounterRow>> {
        let sql = format!("{INSERT_COUNTERS} {COUNTER_ARRAYS} {} {LATER_LATEST_AT}", on_conflict(aggregation));
        let rows = sqlx::query_as::<_, CounterRow>(&sql)
            .bind(updates.iter().map(|u| u.key.limit_id.as_str()).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.key.customer_id.as_str()).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.key.window_start).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.counter.value.0).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.counter.latest_at).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await?;
        Ok(rows)
    }
}

impl SqliteStore {
    /// Nothing to announce: this process is the file's only writer.
    pub(crate) async fn announce_counters_tx(
        &self,
        _tx: &mut WriteTx<Sqlite>,
        _counters: &[(CounterKey, StoredCounter)],
    ) -> DbResult<()> {
        Ok(())
    }
}

impl SqliteStore {
    /// Nothing to lock: this process is the file's only writer, one transaction at a time.
    async fn lock_rolling_windows_tx(
        &self,
        _tx: &mut WriteTx<Sqlite>,
        _windows: impl Iterator<Item = (&str, &str)>,
    ) -> DbResult<()> {
        Ok(())
    }
}

impl PgStore {
    /// Other instances write the same counters, so what this one remembers of them is never
    /// written as it stands: they are upserted and read back.
    pub(crate) async fn store_counter_updates_tx(
        &self,
        tx: &mut WriteTx<Postgres>,
        updates: &[CounterUpdate],
        _current: &[Option<StoredCounter>],
    ) -> DbResult<Vec<StoredCounter>> {
        self.apply_counter_updates_tx(tx, updates).await
    }

    /// Takes the lock of each rolling window (limit and customer), in the order given, until
    /// the transaction ends.
    async fn lock_rolling_windows_tx(
        &self,
        tx: &mut WriteTx<Postgres>,
        windows: impl Iterator<Item = (&str, &str)>,
    ) -> DbResult<()> {
        let keys: Vec<String> = windows.map(|(limit, customer)| format!("rolling {limit} {customer}")).collect();
        sqlx::query(LOCK_ROLLING_WINDOWS).bind(keys).execute(&mut **tx).await?;
        Ok(())
    }

    /// Announces the counters a recording transaction changed to every instance.
    pub(crate) async fn announce_counters_tx(
        &self,
        tx: &mut WriteTx<Postgres>,
        counters: &[(CounterKey, StoredCounter)],
    ) -> DbResult<()> {
        if !counters.is_empty() {
            sqlx::query(ANNOUNCE_COUNTERS)
                .bind(COUNTERS_CHANNEL)
                .bind(encode_counters(counters))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// SQLite: counters that groups recorded from memory changed (`SqliteStore::record_at_once`)
/// and that are not in the database yet. Such a group stores only its events, so it writes a
/// few pages instead of one page per customer's counter; the counters are saved together a
/// little later: by a later group once `SAVE_UNSAVED_AFTER` has passed, by the writer after as
/// long without work, before any other write transaction begins (which may read or rewrite
/// them), and on close. Until then readers of the database find them here. The events of such
/// groups carry the mark of this run of unsaved counters, which the table `unsaved_counters`
/// holds until they are saved; after a crash the marked events are counted again
/// (`Db::recount_unsaved_counters`): those are exactly the events whose counters were in memory
/// only, and the rules that counted them have not changed since, because a change saves first.
#[derive(Default)]
pub(crate) struct UnsavedCounters {
    /// Touched by every group: hashed with foldhash, like the engine's copies.
    states: HashMap<CounterKey, StoredCounter, foldhash::fast::RandomState>,
    /// Present exactly while some states are unsaved.
    run: Option<UnsavedRun>,
}

/// A run of unsaved states: from the group that leaves the first until they are saved.
#[derive(Clone, Copy)]
struct UnsavedRun {
    /// When its first state was left here.
    since: std::time::Instant,
    /// The mark its groups' events carry, and the table `unsaved_counters` holds.
    mark: i64,
}

/// The mark the events of a run of unsaved counter states carry (see `UnsavedCounters`).
#[derive(Clone, Copy)]
pub(crate) struct UnsavedMark {
    pub value: i64,
    /// Whether the table `unsaved_counters` holds it already; the run's first group stores it.
    pub stored: bool,
}

/// How long counter states may stay unsaved while groups keep coming.
pub(crate) const SAVE_UNSAVED_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// Unsaved counter states past which the next group saves them, whatever their age.
const MOST_UNSAVED: usize = 50_000;
pub(crate) const MARK_UNSAVED: &str = "insert into unsaved_counters (mark) values (?1)";
const ANY_UNSAVED: &str = "select exists (select 1 from unsaved_counters)";
pub(crate) const FORGET_UNSAVED: &str = "delete from unsaved_counters";
const SAVE_COUNTERS: &str = store_counter_json_rows!("$1");
// The usage of every event whose counters were unsaved, with its project and customer: a scan
// of the whole table, made only at a start after a crash.
const SELECT_UNSAVED_USAGE: &str = "select project_id, customer_id, event_type, metric_values, dimensions, \
     occurred_at from events where unsaved_counters_mark in (select mark from unsaved_counters)";

/// An event's usage with its project and customer, as a recount reads it.
#[derive(sqlx::FromRow)]
struct ProjectUsageRow {
    project_id: String,
    customer_id: String,
    #[sqlx(flatten)]
    usage: UsageRow,
}

impl UnsavedCounters {
    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    fn get(&self, key: &CounterKey) -> Option<StoredCounter> {
        self.states.get(key).copied()
    }

    /// Whether the next group should save every unsaved state with its own.
    pub(crate) fn save_due(&self) -> bool {
        self.run.is_some_and(|run| run.since.elapsed() >= SAVE_UNSAVED_AFTER) || self.states.len() >= MOST_UNSAVED
    }

    /// Every unsaved state, with `group`'s (newer) in place of theirs.
    pub(crate) fn with(&self, group: &[(CounterKey, StoredCounter)]) -> Vec<(CounterKey, StoredCounter)> {
        let mut all = self.states.clone();
        all.extend(group.iter().cloned());
        all.into_iter().collect()
    }

    /// The mark for a group's events that leave counters unsaved. A new run of unsaved
    /// counters draws a new one, never 0 (which the migration gave the counters unsaved at the
    /// time).
    pub(crate) fn mark(&self) -> UnsavedMark {
        match self.run {
            Some(run) => UnsavedMark { value: run.mark, stored: true },
            None => UnsavedMark { value: rand::thread_rng().gen_range(1..=i64::MAX), stored: false },
        }
    }

    /// Keeps a group's counter states, at least one, whose events carry `mark` (see
    /// `UnsavedCounters::mark`).
    pub(crate) fn keep(&mut self, group: &[(CounterKey, StoredCounter)], mark: i64) {
        debug_assert!(!group.is_empty(), "a group that changed no counter starts no run");
        self.run.get_or_insert_with(|| UnsavedRun { since: std::time::Instant::now(), mark });
        for (key, state) in group {
            // A counter already unsaved keeps its key: cloning it for every group showed in
            // the writer's profile.
            match self.states.get_mut(key) {
                Some(kept) => *kept = *state,
                None => drop(self.states.insert(key.clone(), *state)),
            }
        }
    }

    pub(crate) fn saved(&mut self) {
        self.states.clear();
        self.run = None;
    }
}

impl SqliteStore {
    /// The unsaved counter states; held only briefly, never across an await.
    pub(crate) fn unsaved(&self) -> std::sync::MutexGuard<'_, UnsavedCounters> {
        self.unsaved.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves the unsaved counter states in a transaction of their own on the writer connection.
    /// The caller holds the writer slot, so no group adds to them meanwhile.
    pub(crate) async fn save_unsaved_counters(&self) -> DbResult<()> {
        let states = self.unsaved().with(&[]);
        if states.is_empty() {
            return Ok(());
        }
        let (keys, stored): (Vec<CounterKey>, Vec<StoredCounter>) = states.into_iter().unzip();
        let mut tx = self.writer.begin_with("begin immediate").await?;
        sqlx::query(SAVE_COUNTERS).bind(counter_key_json_rows(&keys, &stored)?).execute(&mut *tx).await?;
        sqlx::query(FORGET_UNSAVED).execute(&mut *tx).await?;
        tx.commit().await?;
        self.unsaved().saved();
        Ok(())
    }
}

impl Db {
    /// Whether counter states wait in memory to be saved (SQLite).
    pub fn has_unsaved_counters(&self) -> bool {
        matches!(self, Db::Sqlite(store) if !store.unsaved().is_empty())
    }

    /// Saves the counter states that wait in memory (SQLite; see `UnsavedCounters`), once the
    /// write in flight, if any, has ended.
    pub async fn save_counters(&self) -> DbResult<()> {
        let Db::Sqlite(store) = self else { return Ok(()) };
        if store.unsaved().is_empty() {
            return Ok(());
        }
        let _writer = store.claim_writer().await;
        store.save_unsaved_counters().await
    }

    /// Counts again, after a crash, the events whose counters were in memory only (SQLite; see
    /// `UnsavedCounters`): by the file's sole writer (`claim_sole_writer`), before it serves.
    pub async fn recount_unsaved_counters(&self, now: DateTime<Utc>) -> DbResult<()> {
        let Db::Sqlite(store) = self else { return Ok(()) };
        let any: bool = sqlx::query_scalar(ANY_UNSAVED).fetch_one(&store.pool).await?;
        if !any {
            return Ok(());
        }
        let mut tx = store.begin_write().await?;
        let rows: Vec<ProjectUsageRow> = sqlx::query_as(SELECT_UNSAVED_USAGE).fetch_all(&mut *tx).await?;
        let events = rows.len();
        let mut by_project: BTreeMap<String, Vec<ProjectUsageRow>> = BTreeMap::new();
        for row in rows {
            by_project.entry(row.project_id.clone()).or_default().push(row);
        }
        let mut updates = Vec::new();
        for (project_id, rows) in by_project {
            let Some(project) = self.project(&project_id).await? else { continue };
            let (limits, meters) = store.limits_and_meters_tx(&mut tx, &project_id).await?;
            let meters: HashMap<&str, &Meter> = meters.iter().map(|m| (m.id.as_str(), m)).collect();
            let mut references: Vec<&str> = rows.iter().map(|row| row.customer_id.as_str()).collect();
            references.sort_unstable();
            references.dedup();
            let (customers, _) =
                store.ensure_customers_tx(&mut tx, &project_id, &references, now.timestamp_millis()).await?;
            for row in rows {
                let Some(customer) = customers.get(&row.customer_id) else { continue };
                let usage = row.usage.decode()?;
                updates.extend(counter_updates(&limits, &meters, customer, project.timezone, &usage.usage()));
            }
        }
        store.apply_counter_updates_tx(&mut tx, &merge_updates(updates)).await?;
        sqlx::query(FORGET_UNSAVED).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(events, "counted again the events whose counters were not saved before the last stop");
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct LimitCounterRow {
    #[sqlx(flatten)]
    customer: CustomerRow,
    window_start: i64,
    value: i64,
}

impl Db {
    /// A limit's counters of windows starting at `since_ms` or later, each with its customer:
    /// `(customer, window start in Unix ms, value)`.
    pub async fn limit_counters_since(
        &self,
        limit_id: &str,
        since_ms: i64,
    ) -> DbResult<Vec<(Customer, i64, Quantity)>> {
        // Read from the database, where the counters left in memory must be first.
        self.save_counters().await?;
        let rows: Vec<LimitCounterRow> = with_store!(self, s => {
            sqlx::query_as(SELECT_LIMIT_COUNTERS_SINCE).bind(limit_id).bind(since_ms).fetch_all(s.pool()).await
        })?;
        rows.into_iter()
            .map(|row| Ok((Customer::try_from(row.customer)?, row.window_start, Quantity(row.value))))
            .collect()
    }

    /// One customer's buckets of rolling windows, each window named by its limit and first
    /// bucket start (Unix ms), read from that bucket on in one query.
    pub async fn rolling_buckets(
        &self,
        customer_id: &str,
        windows: &[(&str, i64)],
    ) -> DbResult<Vec<(CounterKey, StoredCounter)>> {
        let mut buckets = Vec::new();
        for chunk in windows.chunks(WINDOWS_PER_STATEMENT) {
            let rows: Vec<BucketRow> = with_store!(self, s => {
                let sql = buckets_sql(s.is_postgres(), chunk.len());
                let mut query = sqlx::query_as(&sql);
                for (limit_id, from_ms) in chunk {
                    query = query.bind(*limit_id).bind(customer_id).bind(*from_ms);
                }
                query.fetch_all(s.pool()).await
            })?;
            buckets.extend(rows.into_iter().map(bucket_of));
        }
        Ok(buckets)
    }

    /// One customer's counters for the keys (which all name that customer), in one query;
    /// `None` where no event has fed one yet.
    pub async fn counters(&self, customer_id: &str, keys: &[CounterKey]) -> DbResult<Vec<Option<StoredCounter>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys_sql: Vec<String> = (0..keys.len())
            .map(|i| format!("(limit_id = ${} and window_start = ${} and customer_id = $1)", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!("{SELECT_COUNTERS_OF_CUSTOMER} {}", keys_sql.join(" or "));
        let rows: Vec<(String, i64, i64, i64, i64)> = with_store!(self, s => {
            let mut query = sqlx::query_as(&sql).bind(customer_id);
            for key in keys {
                query = query.bind(&key.limit_id).bind(key.window_start);
            }
            query.fetch_all(s.pool()).await
        })?;
        // Read under the writer slot when memory is filled from it, so no group changes the
        // unsaved states meanwhile.
        let unsaved = match self {
            Db::Sqlite(store) => Some(store.unsaved()),
            Db::Postgres(_) => None,
        };
        Ok(keys
            .iter()
            .map(|key| {
                if let Some(state) = unsaved.as_ref().and_then(|unsaved| unsaved.get(key)) {
                    return Some(state);
                }
                rows.iter()
                    .find(|(limit_id, window_start, ..)| *limit_id == key.limit_id && *window_start == key.window_start)
                    .map(|&(_, _, value, latest_at, version)| StoredCounter {
                        counter: Counter { value: Quantity(value), latest_at },
                        version,
                    })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_back_exactly_and_stay_under_the_payload_limit() {
        let counters: Vec<(CounterKey, StoredCounter)> = (0..500)
            .map(|i| {
                let key = CounterKey {
                    limit_id: format!("lmt_{i:026}"),
                    customer_id: format!("cust_{i:026}"),
                    window_start: 1_700_000_000_000 + i,
                };
                let counter = Counter { value: Quantity(-Quantity::MAX_COUNTER.0 + i), latest_at: i * 7 };
                (key, StoredCounter { counter, version: i64::MAX - i })
            })
            .collect();
        let payloads = encode_counters(&counters);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_ANNOUNCEMENT_BYTES));
        let decoded: Vec<_> = payloads.iter().flat_map(|p| decode_counters(p).unwrap()).collect();
        assert_eq!(decoded, counters);
        assert!(decode_counters("lmt cust 1 2 3").is_err());
    }
}
