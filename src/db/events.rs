//! Events: append-only recording (with idempotency and counter updates in one transaction),
//! listing, and scans for meter queries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Postgres, Sqlite};

use super::counters::{
    counter_range_message, next_counter_states, RollingWindows, UnsavedMark, COUNTERS_CHANNEL, FORGET_UNSAVED,
    MARK_UNSAVED, MAX_ANNOUNCEMENT_BYTES,
};
use super::projects::Project;
use super::{
    ms_to_time, numbered_list, statement_chunks, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store,
    WriteTx, WriterSlot, ROWS_PER_STATEMENT,
};
use crate::domain::customers::Customer;
use crate::domain::events::{Event, NewEvent};
use crate::domain::ids::new_id;
use crate::domain::limit_reservations::{held_amounts, Hold};
use crate::domain::limits::Limit;
use crate::domain::meters::{Aggregation, Counter, Meter};
use crate::domain::quantity::Quantity;
use crate::domain::usage::{
    contributions, due_alerts, merge_contributions, rolling_due_alerts, AlertKey, CounterKey, CounterUpdate, DueAlert,
    StoredCounter, Usage,
};

// The idempotency index is partial (events without a key are not in it): both databases need
// its predicate to take it as the conflict target.
macro_rules! on_duplicate_key_do_nothing {
    () => {
        "on conflict (project_id, idempotency_key) where idempotency_key is not null do nothing"
    };
}
// SQLite: the rows as one JSON array (`$1`, see `event_json_rows`), so that the text is the
// same for any number of rows; `where true` lets SQLite read an upsert clause after it.
macro_rules! insert_event_json_rows {
    () => {
        concat!(
            "insert into events (id, project_id, customer_id, event_type, occurred_at, metric_values, ",
            "dimensions, properties, idempotency_key, created_at) ",
            "select r.value ->> 0, $2, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, ",
            "r.value ->> 6, r.value ->> 7, $3 from json_each($1) as r where true"
        )
    };
}
const INSERT_EVENT_JSON_ROWS: &str = concat!(insert_event_json_rows!(), " ", on_duplicate_key_do_nothing!());
// SQLite: a whole group whose every read is remembered (see `record_at_once`), one row per
// execution. A stored idempotency key fails the insert, and so the whole, before `commit`. The
// counters are stored in their next states when the unsaved ones are saved with a group.
const INSERT_EVENT_AT_ONCE: &str = "insert into events (id, project_id, customer_id, event_type, occurred_at, \
     metric_values, dimensions, properties, idempotency_key, created_at, unsaved_counters_mark) \
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const STORE_COUNTER_AT_ONCE: &str = "insert into usage_counters (limit_id, customer_id, window_start, value, \
     latest_at, version) values (?1, ?2, ?3, ?4, ?5, ?6) on conflict (limit_id, customer_id, window_start) \
     do update set value = excluded.value, latest_at = excluded.latest_at, version = excluded.version";
// PostgreSQL: the rows as one array per column.
macro_rules! insert_event_arrays {
    () => {
        concat!(
            "insert into events (id, project_id, customer_id, event_type, occurred_at, metric_values, dimensions, ",
            "properties, idempotency_key, created_at) ",
            "select id, $2, customer_id, event_type, occurred_at, metric_values, dimensions, properties, ",
            "idempotency_key, $10 from unnest($1::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], ",
            "$8::text[], $9::text[]) as r(id, customer_id, event_type, occurred_at, metric_values, dimensions, ",
            "properties, idempotency_key)"
        )
    };
}
const INSERT_EVENT_ARRAYS: &str = concat!(insert_event_arrays!(), " ", on_duplicate_key_do_nothing!());
// PostgreSQL: a whole group whose rules and customers are remembered, as one statement, so one
// round trip commits it. It share-locks the project's row and inserts only if the rules
// version is still `$11` (see `share_rules_tx`); a stored idempotency key fails it, and so does
// a counter leaving its range (`$18`, through a division by zero: plain SQL cannot raise), so
// nothing of it is written. The counters (sums and counts: `$12`–`$16`) are announced from what
// it stored, in payloads cut every `$19` bytes.
const RECORD_IN_ONE_STATEMENT: &str = concat!(
    "with rules as (select rules_version from projects where id = $2 for share), ",
    "written as (",
    insert_event_arrays!(),
    " where (select rules_version from rules) = $11 returning 1), ",
    "counted as (insert into usage_counters (limit_id, customer_id, window_start, value, latest_at) ",
    "select * from unnest($12::text[], $13::text[], $14::int8[], $15::int8[], $16::int8[]) ",
    "where exists (select from written) ",
    "on conflict (limit_id, customer_id, window_start) do update set ",
    "value = case when abs(usage_counters.value + excluded.value) <= $18 ",
    "then usage_counters.value + excluded.value else excluded.value / 0 end, ",
    "latest_at = greatest(usage_counters.latest_at, excluded.latest_at), version = usage_counters.version + 1 ",
    "returning limit_id, customer_id, window_start, value, latest_at, version), ",
    "lines as (select concat_ws(' ', limit_id, customer_id, window_start, value, latest_at, version) as line ",
    "from counted), ",
    "parts as (select line, sum(length(line) + 1) over (order by line) / $19 as part from lines), ",
    "announced as (select pg_notify($17, string_agg(line, chr(10))) from parts group by part) ",
    "select (select rules_version from rules) as rules_version, (select count(*) from announced) as announcements, ",
    "c.limit_id, c.customer_id, c.window_start, c.value, c.latest_at, c.version ",
    "from (select 1) as one left join counted as c on true"
);
// PostgreSQL: binds `&[EventInsert]` as `insert_event_arrays!` reads them (`$1` to `$10`, the
// project `$2`), to a query or a typed one. Idempotency keys go in one order in every
// transaction: instances recording the same keys at once then wait for each other instead of
// deadlocking.
macro_rules! bind_event_arrays {
    ($query:expr, $rows:expr, $project_id:expr, $now_ms:expr) => {{
        let mut rows: Vec<&EventInsert<'_>> = $rows.iter().collect();
        rows.sort_by_key(|row| row.idempotency_key);
        let rows = rows.as_slice();
        $query
            .bind(event_column(rows, |row| row.id))
            .bind($project_id)
            .bind(event_column(rows, |row| row.customer_id))
            .bind(event_column(rows, |row| row.event_type))
            .bind(rows.iter().map(|row| row.occurred_at).collect::<Vec<i64>>())
            .bind(event_column(rows, |row| &row.metric_values))
            .bind(event_column(rows, |row| &row.dimensions))
            .bind(event_column(rows, |row| &row.properties))
            .bind(rows.iter().map(|row| row.idempotency_key).collect::<Vec<Option<&str>>>())
            .bind($now_ms)
    }};
}
/// One column of the rows, for `bind_event_arrays!`.
fn event_column<'a>(rows: &[&'a EventInsert<'_>], value: fn(&'a EventInsert<'_>) -> &'a str) -> Vec<&'a str> {
    rows.iter().map(|row| value(row)).collect()
}
// Followed by `($2, …)`: the keys.
const SELECT_EVENT_IDS_BY_KEY: &str =
    "select idempotency_key, id from events where project_id = $1 and idempotency_key in";
const SELECT_EVENTS_PAGE: &str = "select e.id, e.customer_id, c.external_id, e.event_type, e.occurred_at, \
     e.metric_values, e.dimensions, e.properties, e.idempotency_key, e.created_at \
     from events e join customers c on c.id = e.customer_id \
     where e.project_id = $1 and ($2 = '' or e.customer_id = $2) and ($3 = '' or e.event_type = $3) \
     and e.occurred_at >= $4 and e.occurred_at < $5 \
     and (e.occurred_at < $6 or (e.occurred_at = $6 and e.id < $7)) \
     order by e.occurred_at desc, e.id desc limit $8";
const SELECT_METERED_EVENTS: &str = "select e.customer_id, c.external_id, e.event_type, e.metric_values, \
     e.dimensions, e.occurred_at from events e join customers c on c.id = e.customer_id \
     where e.project_id = $1 and ($2 = '' or e.customer_id = $2) and ($3 = '' or e.event_type = $3) \
     and e.occurred_at >= $4 and e.occurred_at < $5";

/// The columns of an event that feed counters.
#[derive(sqlx::FromRow)]
pub(crate) struct UsageRow {
    event_type: String,
    metric_values: String,
    dimensions: String,
    occurred_at: i64,
}

pub(crate) struct DecodedUsage {
    pub event_type: String,
    pub dimensions: BTreeMap<String, String>,
    pub quantities: BTreeMap<String, Quantity>,
    pub occurred_at: DateTime<Utc>,
}

fn quantities(metric_values: &str) -> DbResult<BTreeMap<String, Quantity>> {
    let values: BTreeMap<String, serde_json::Number> = serde_json::from_str(metric_values)?;
    Ok(values.into_iter().filter_map(|(k, v)| Some((k, v.as_f64().and_then(Quantity::from_f64)?))).collect())
}

impl DecodedUsage {
    /// The usage as counters read it.
    pub(crate) fn usage(&self) -> Usage<'_> {
        Usage {
            event_type: &self.event_type,
            dimensions: &self.dimensions,
            quantities: &self.quantities,
            occurred_at: self.occurred_at,
        }
    }
}

impl UsageRow {
    pub(crate) fn decode(self) -> DbResult<DecodedUsage> {
        Ok(DecodedUsage {
            quantities: quantities(&self.metric_values)?,
            dimensions: serde_json::from_str(&self.dimensions)?,
            event_type: self.event_type,
            occurred_at: ms_to_time(self.occurred_at),
        })
    }
}

/// An event as a meter query sees it.
pub struct MeteredEvent {
    pub customer_id: String,
    pub customer_external_id: String,
    pub event_type: String,
    pub dimensions: BTreeMap<String, String>,
    pub quantities: BTreeMap<String, Quantity>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MeteredRow {
    customer_id: String,
    external_id: String,
    event_type: String,
    metric_values: String,
    dimensions: String,
    occurred_at: i64,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    customer_id: String,
    external_id: String,
    event_type: String,
    occurred_at: i64,
    metric_values: String,
    dimensions: String,
    properties: String,
    idempotency_key: Option<String>,
    created_at: i64,
}

impl TryFrom<EventRow> for Event {
    type Error = DbError;
    fn try_from(row: EventRow) -> DbResult<Event> {
        Ok(Event {
            id: row.id,
            customer_id: row.customer_id,
            customer_external_id: row.external_id,
            event_type: row.event_type,
            values: serde_json::from_str(&row.metric_values)?,
            dimensions: serde_json::from_str(&row.dimensions)?,
            properties: serde_json::from_str(&row.properties)?,
            timestamp: ms_to_time(row.occurred_at),
            idempotency_key: row.idempotency_key,
            created_at: ms_to_time(row.created_at),
        })
    }
}

/// One recorded (or recognised as already recorded) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: String,
    pub duplicate: bool,
}

/// What a record transaction committed: per-event results and the counters it changed.
pub struct RecordOutcome {
    pub events: Vec<RecordedEvent>,
    pub counters: Vec<(CounterKey, StoredCounter)>,
    /// Alerts known to have fired (now or before) once this commits.
    pub alerts: Vec<AlertKey>,
    /// Whether it created customers.
    pub created_customers: bool,
    /// The rules it read, when they were not remembered.
    pub rules_read: Option<Rules>,
    /// The project's rules version it read its rules or customers at (PostgreSQL; `None` on
    /// SQLite).
    pub rules_version: Option<i64>,
    /// The customers it read (or created), by the reference the events named.
    pub customers_read: HashMap<String, Arc<Customer>>,
    /// The holds of every customer it judged, by customer id, read with the counters.
    pub holds_read: Vec<(String, Arc<Vec<Hold>>)>,
    /// Whether it was recorded from memory: nothing read before writing.
    pub from_memory: bool,
    /// Still held: bring in-memory counters up to date before dropping it.
    pub writer: WriterSlot,
}

impl RecordOutcome {
    /// A group recorded from memory: every event new, nothing read, no customer created and no
    /// alert fired.
    fn from_memory(
        events: Vec<RecordedEvent>,
        counters: Vec<(CounterKey, StoredCounter)>,
        rules_version: Option<i64>,
        writer: WriterSlot,
    ) -> RecordOutcome {
        let (alerts, rules_read, customers_read) = (Vec::new(), None, HashMap::new());
        RecordOutcome {
            events,
            counters,
            alerts,
            created_customers: false,
            rules_read,
            rules_version,
            customers_read,
            holds_read: Vec::new(),
            from_memory: true,
            writer,
        }
    }
}

/// A project's limits and the meters they count, as recording applies them.
#[derive(Clone)]
pub struct Rules {
    pub limits: Arc<Vec<Limit>>,
    pub meters: Arc<Vec<Meter>>,
}

/// What the engine holds in memory that a recording transaction need not read again.
#[derive(Default)]
pub struct Remembered {
    pub rules: Option<Rules>,
    /// Those of the events' customers it knows, by the reference the events name.
    pub customers: HashMap<String, Arc<Customer>>,
}

/// What a recording transaction asks the engine's memory.
pub struct RecordMemory<'a> {
    /// Alerts known to have fired: they are not written again.
    pub already_fired: &'a (dyn Fn(&AlertKey) -> bool + Sync),
    /// The rules version the engine remembers the project's rules at, if it remembers them
    /// (on SQLite that version is always `None`).
    pub rules_version: &'a (dyn Fn() -> Option<Option<i64>> + Sync),
    /// Asked once the transaction holds the writer slot (SQLite) or has share-locked the
    /// project's row (PostgreSQL), with the references the events name and the project's rules
    /// version: what is remembered then cannot change before the transaction ends. (On
    /// PostgreSQL a group recorded in one statement asks first, with the version
    /// `rules_version` answers, and its statement checks that version under the lock.)
    pub remembered: &'a RememberRules<'a>,
    /// The stored state of every counter the updates change (`None`: no row yet), if all are
    /// remembered; asked while the transaction holds the writer slot.
    pub counters: &'a (dyn Fn(&WriterSlot, &[CounterUpdate]) -> Option<KnownCounters> + Sync),
    /// What reservations' live holds add per (limit id, customer id) at the given instant for
    /// the customers named (by id), if all are remembered; asked while the transaction holds
    /// the writer slot.
    pub held: &'a RememberHeld<'a>,
}

/// The engine's answer to what live holds add, given the customers' ids and the instant, as
/// `(limit id, customer id, amount)`.
pub type RememberHeld<'a> = dyn Fn(&WriterSlot, &[&str], i64) -> Option<Vec<(String, String, Quantity)>> + Sync + 'a;

/// The engine's answer to what a recording transaction need not read: given the references
/// the events name and the project's rules version.
pub type RememberRules<'a> = dyn Fn(&WriterSlot, &[&str], Option<i64>) -> Remembered + Sync + 'a;

/// Stored states of counters, in the order asked (`None`: no row yet).
pub type KnownCounters = Vec<Option<StoredCounter>>;

/// Filters for listing and scanning events; empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    pub customer_id: &'a str,
    pub event_type: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A position in the newest-first event list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    pub occurred_at: i64,
    pub id: String,
}

/// What a recording transaction is about to commit, shown to a judge that may refuse it
/// (`Db::record_events_judged`).
pub struct PendingRecord<'a> {
    pub project: &'a Project,
    pub limits: &'a [Limit],
    pub meters: &'a HashMap<&'a str, &'a Meter>,
    pub events: &'a [NewEvent],
    /// Per event: recorded now (`false`: a duplicate of an earlier idempotency key).
    pub recorded: &'a [RecordedEvent],
    /// By the reference each event names.
    pub customers: &'a HashMap<String, Arc<Customer>>,
    /// Every counter the transaction changed, in key order (`merge_contributions`), and beside each
    /// (same order) how it would be stored.
    pub updates: &'a [CounterUpdate],
    pub stored: &'a [StoredCounter],
    /// What reservations' live holds add per (limit id, customer id), read with the
    /// counters' rows locked.
    pub held: &'a [(String, String, Quantity)],
    /// The rolling windows the transaction touches, at its `now`, once it commits.
    pub rolling: &'a RollingWindows,
}

impl PendingRecord<'_> {
    /// A rolling limit's usage in its window once this commits, when `key` is one of its
    /// buckets; `None` for other counters, whose stored value is the usage.
    pub fn rolling_usage(&self, limit_id: &str, customer_id: &str) -> Option<Quantity> {
        if self.rolling.is_empty() {
            return None;
        }
        let window = self.rolling.get(&(limit_id.to_string(), customer_id.to_string()))?;
        Some(window.buckets.iter().fold(Quantity::ZERO, |sum, (_, value)| sum.saturating_add(*value)))
    }
}

/// Decides, inside the transaction, whether it may commit; an error rolls everything back.
pub type RecordJudge<'a> = &'a (dyn Fn(&PendingRecord<'_>) -> DbResult<()> + Sync);

/// One event row as the record transaction inserts it.
pub(crate) struct EventInsert<'a> {
    id: &'a str,
    customer_id: &'a str,
    event_type: &'a str,
    occurred_at: i64,
    metric_values: String,
    dimensions: String,
    properties: String,
    idempotency_key: Option<&'a str>,
}

impl SqliteStore {
    /// Inserts the rows, skipping those whose idempotency key is already stored; returns how
    /// many were written. Rows come back from no statement: copying them out costs more than
    /// inserting.
    async fn insert_events_tx(
        &self,
        tx: &mut WriteTx<Sqlite>,
        project_id: &str,
        rows: &[EventInsert<'_>],
        now_ms: i64,
    ) -> DbResult<u64> {
        let written = sqlx::query(INSERT_EVENT_JSON_ROWS)
            .bind(event_json_rows(rows)?)
            .bind(project_id)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(written)
    }

    /// Records a group on the direct connection, from this thread (the group commit's writer
    /// thread), when nothing has to be read first: the project's rules, the events' customers
    /// and the counters they change (and, for a judge, the customers' holds) are all
    /// remembered, no rolling limit counts them and no alert fires.
    /// Otherwise, or when an event's idempotency key is already stored, gives the writer slot
    /// back untouched, and the group goes the whole way (`record_events_with`).
    async fn record_at_once(
        &self,
        project: &Project,
        events: &[NewEvent],
        now: DateTime<Utc>,
        memory: &RecordMemory<'_>,
        judge: Option<RecordJudge<'_>>,
    ) -> DbResult<Result<RecordOutcome, WriterSlot>> {
        let writer = self.claim_writer().await;
        let references = referenced_customers(events);
        let Remembered { rules: Some(Rules { limits, meters }), customers } =
            (memory.remembered)(&writer, &references, None)
        else {
            return Ok(Err(writer));
        };
        if customers.len() < references.len() {
            return Ok(Err(writer));
        }
        let meters: HashMap<&str, &Meter> = meters.iter().map(|m| (m.id.as_str(), m)).collect();
        let updates = usage_updates(project, &limits, &meters, &customers, events);
        if touches_rolling(&limits, &updates) {
            return Ok(Err(writer));
        }
        let Some(current) = (memory.counters)(&writer, &updates) else { return Ok(Err(writer)) };
        let stored = next_counter_states(&updates, &current).map_err(|e| name_counter_value(e, &limits, &meters))?;
        let due = due_alerts_of(project, &limits, &customers, &updates, &stored, now);
        if due.iter().any(|(key, _)| !(memory.already_fired)(key)) {
            return Ok(Err(writer));
        }
        let now_ms = now.timestamp_millis();
        let ids: Vec<String> = events.iter().map(|_| new_id("evt", now_ms)).collect();
        let rows = event_rows(events, &ids, &customers)?;
        let recorded: Vec<RecordedEvent> =
            ids.iter().map(|id| RecordedEvent { id: id.clone(), duplicate: false }).collect();
        if let Some(judge) = judge {
            let customer_ids: Vec<&str> = customers.values().map(|c| c.id.as_str()).collect();
            let Some(held) = (memory.held)(&writer, &customer_ids, now_ms) else { return Ok(Err(writer)) };
            let pending = PendingRecord {
                project,
                limits: &limits,
                meters: &meters,
                events,
                recorded: &recorded,
                customers: &customers,
                updates: &updates,
                stored: &stored,
                held: &held,
                rolling: &RollingWindows::new(),
            };
            if let Err(refused) = judge(&pending) {
                // An event that repeats a stored idempotency key adds nothing and passes: only
                // the whole way tells.
                return match events.iter().any(|e| e.idempotency_key.is_some()) {
                    true => Ok(Err(writer)),
                    false => Err(refused),
                };
            }
        }
        let counters: Vec<(CounterKey, StoredCounter)> =
            updates.into_iter().map(|update| update.key).zip(stored).collect();
        // The group's counters stay in memory (see `UnsavedCounters`), unless the time to save
        // them all has come. While they stay, its events carry the mark of this run of unsaved
        // counters, which the run's first group stores; a group that changed no counter leaves
        // nothing to count again, and its events no mark.
        let (to_save, mark) = {
            let unsaved = self.unsaved();
            match unsaved.save_due() {
                true => (unsaved.with(&counters), None),
                false if counters.is_empty() => (Vec::new(), None),
                false => (Vec::new(), Some(unsaved.mark())),
            }
        };
        let save = !to_save.is_empty();
        // Statements run here, one row at a time, cost no hand-off: nothing is packed to be
        // unpacked again.
        let commit = |connection: &rusqlite::Connection| -> rusqlite::Result<bool> {
            // Prepared once: parsing these again for every group showed in the writer's profile.
            connection.prepare_cached("begin immediate")?.execute([])?;
            let written = (|| {
                let mut insert = connection.prepare_cached(INSERT_EVENT_AT_ONCE)?;
                let event_mark = mark.map(|mark| mark.value);
                for row in &rows {
                    insert.execute(rusqlite::params![
                        row.id,
                        project.id,
                        row.customer_id,
                        row.event_type,
                        row.occurred_at,
                        row.metric_values,
                        row.dimensions,
                        row.properties,
                        row.idempotency_key,
                        now_ms,
                        event_mark,
                    ])?;
                }
                if save {
                    let mut store = connection.prepare_cached(STORE_COUNTER_AT_ONCE)?;
                    for (key, next) in &to_save {
                        let (value, latest_at) = (next.counter.value.0, next.counter.latest_at);
                        store.execute(rusqlite::params![
                            key.limit_id,
                            key.customer_id,
                            key.window_start,
                            value,
                            latest_at,
                            next.version
                        ])?;
                    }
                    connection.execute(FORGET_UNSAVED, [])?;
                } else if let Some(UnsavedMark { value, stored: false }) = mark {
                    connection.execute(MARK_UNSAVED, [value])?;
                }
                connection.prepare_cached("commit")?.execute([]).map(drop)
            })();
            match written {
                Ok(()) => Ok(true),
                Err(err) => {
                    // Failed before or at `commit`: whatever it began is rolled back.
                    let _ = connection.execute_batch("rollback");
                    match err.sqlite_error().map(|e| e.extended_code) {
                        // A stored idempotency key: the group goes the whole way, which tells
                        // duplicates apart.
                        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                            Ok(false)
                        }
                        _ => Err(err),
                    }
                }
            }
        };
        // Runs on the group commit's writer thread (see `GroupCommitter::start`), to its end.
        if self.with_direct(&writer, commit)? != Some(true) {
            return Ok(Err(writer));
        }
        // Unsaved states and the mark in the database exist together.
        match (save, mark) {
            (true, _) => self.unsaved().saved(),
            (false, Some(mark)) => self.unsaved().keep(&counters, mark.value),
            (false, None) => {}
        }
        Ok(Ok(RecordOutcome::from_memory(recorded, counters, None, writer)))
    }
}

/// The rows `insert_event_json_rows!` reads: `[id, customer_id, event_type, occurred_at,
/// metric_values, dimensions, properties, idempotency_key]`.
fn event_json_rows(rows: &[EventInsert<'_>]) -> DbResult<String> {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            let json = (&r.metric_values, &r.dimensions, &r.properties);
            (r.id, r.customer_id, r.event_type, r.occurred_at, json.0, json.1, json.2, r.idempotency_key)
        })
        .collect();
    Ok(serde_json::to_string(&rows)?)
}

/// The customers the events name, sorted, so concurrent batches take customer rows in the
/// same order.
fn referenced_customers(events: &[NewEvent]) -> Vec<&str> {
    let mut references: Vec<&str> = events.iter().map(|e| e.customer_ref.as_str()).collect();
    references.sort_unstable();
    references.dedup();
    references
}

/// The rows to insert: each event under its new id, with its customer's id.
fn event_rows<'a>(
    events: &'a [NewEvent],
    ids: &'a [String],
    customers: &'a HashMap<String, Arc<Customer>>,
) -> DbResult<Vec<EventInsert<'a>>> {
    events
        .iter()
        .zip(ids)
        .map(|(event, id)| {
            let customer = customers
                .get(event.customer_ref.as_str())
                .ok_or_else(|| DbError::Corrupt(format!("customer {} not ensured", event.customer_ref)))?;
            Ok(EventInsert {
                id,
                customer_id: &customer.id,
                event_type: &event.event_type,
                occurred_at: event.occurred_at.timestamp_millis(),
                metric_values: serde_json::to_string(&event.values)?,
                dimensions: serde_json::to_string(&event.dimensions)?,
                properties: serde_json::to_string(&event.properties)?,
                idempotency_key: event.idempotency_key.as_deref(),
            })
        })
        .collect()
}

/// What the events change in the limits' counters, one update per counter.
fn usage_updates<'a>(
    project: &Project,
    limits: &[Limit],
    meters: &HashMap<&str, &Meter>,
    customers: &HashMap<String, Arc<Customer>>,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> Vec<CounterUpdate> {
    if limits.is_empty() {
        return Vec::new();
    }
    let of_events = events.into_iter().flat_map(|event| {
        let customer = customers.get(event.customer_ref.as_str());
        customer.into_iter().flat_map(|customer| {
            let usage = Usage {
                event_type: &event.event_type,
                dimensions: &event.dimensions,
                quantities: &event.quantities,
                occurred_at: event.occurred_at,
            };
            contributions(limits, meters, customer, project.timezone, usage)
        })
    });
    merge_contributions(of_events)
}

/// The limit a counter update belongs to.
fn limit_of<'a>(limits: &'a [Limit], update: &CounterUpdate) -> Option<&'a Limit> {
    limits.iter().find(|limit| limit.id == update.key.limit_id)
}

/// Whether any update is a rolling limit's bucket: rolling windows are read whole and pruned
/// as they are written, so their counters never come from memory.
fn touches_rolling(limits: &[Limit], updates: &[CounterUpdate]) -> bool {
    updates.iter().any(|update| limit_of(limits, update).is_some_and(|limit| limit.rolling_window().is_some()))
}

/// A counter out of range, named by the value its limit's meter sums: the number the client
/// must shrink.
fn name_counter_value(err: DbError, limits: &[Limit], meters: &HashMap<&str, &Meter>) -> DbError {
    match err {
        DbError::CounterOutOfRange { limit_id } => {
            let meter = limits.iter().find(|l| l.id == limit_id).and_then(|l| meters.get(l.meter_id.as_str()));
            let field = meter.map_or("values", |m| if m.field == "*" { "values" } else { &m.field });
            DbError::OutOfRange { field: field.to_string(), message: counter_range_message(&limit_id) }
        }
        other => other,
    }
}

/// The calendar windows' alerts that are due once the counters are stored as `stored`, each
/// with its key, whether or not it fired before.
fn due_alerts_of(
    project: &Project,
    limits: &[Limit],
    customers: &HashMap<String, Arc<Customer>>,
    updates: &[CounterUpdate],
    stored: &[StoredCounter],
    now: DateTime<Utc>,
) -> Vec<(AlertKey, DueAlert)> {
    if limits.iter().all(|limit| limit.alert_thresholds.is_empty()) {
        return Vec::new();
    }
    let by_id: HashMap<&str, &Customer> = customers.values().map(|c| (c.id.as_str(), &**c)).collect();
    let mut due = Vec::new();
    for (update, stored) in updates.iter().zip(stored) {
        let Some(limit) = limits.iter().find(|l| l.id == update.key.limit_id) else { continue };
        if limit.alert_thresholds.is_empty() {
            continue;
        }
        let Some(customer) = by_id.get(update.key.customer_id.as_str()) else { continue };
        let window_start = update.key.window_start;
        let used = stored.counter.value;
        for alert in due_alerts(limits, limit, customer, project.timezone, window_start, used, now) {
            let key = AlertKey {
                limit_id: limit.id.clone(),
                customer_id: customer.id.clone(),
                window_start,
                threshold: alert.threshold,
            };
            due.push((key, alert));
        }
    }
    due
}

impl PgStore {
    /// Inserts the rows, skipping those whose idempotency key is already stored; returns how
    /// many were written. One statement of fixed text whatever the number of rows, so it is
    /// prepared once per connection.
    async fn insert_events_tx(
        &self,
        tx: &mut WriteTx<Postgres>,
        project_id: &str,
        rows: &[EventInsert<'_>],
        now_ms: i64,
    ) -> DbResult<u64> {
        let written = bind_event_arrays!(sqlx::query(INSERT_EVENT_ARRAYS), rows, project_id, now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(written)
    }
}

/// What `RECORD_IN_ONE_STATEMENT` answers: the rules version it found (none if the project's
/// row is gone), and one row per counter it stored (none: one row of nulls).
#[derive(sqlx::FromRow)]
struct RecordedInOneRow {
    rules_version: Option<i64>,
    limit_id: Option<String>,
    customer_id: Option<String>,
    window_start: Option<i64>,
    value: Option<i64>,
    latest_at: Option<i64>,
    version: Option<i64>,
}

impl PgStore {
    /// Records a group in one statement, so one round trip, when the project's rules and the
    /// events' customers are remembered at the rules version the engine last saw, and the
    /// counters the events change are sums or counts of calendar windows without alerts.
    /// Returns `None`, with nothing written, when it cannot: then, or when the rules moved on,
    /// an event's idempotency key is already stored or a counter would leave its range, the
    /// group goes the whole way (`record_events_with`).
    async fn record_in_one_statement(
        &self,
        project: &Project,
        events: &[NewEvent],
        now: DateTime<Utc>,
        memory: &RecordMemory<'_>,
    ) -> DbResult<Option<RecordOutcome>> {
        let Some(version) = (memory.rules_version)() else { return Ok(None) };
        let writer = self.claim_writer().await;
        let references = referenced_customers(events);
        let Remembered { rules: Some(Rules { limits, meters }), customers } =
            (memory.remembered)(&writer, &references, version)
        else {
            return Ok(None);
        };
        if customers.len() < references.len() {
            return Ok(None);
        }
        let meters: HashMap<&str, &Meter> = meters.iter().map(|m| (m.id.as_str(), m)).collect();
        let updates = usage_updates(project, &limits, &meters, &customers, events);
        let folds_in_one = |update: &CounterUpdate| {
            matches!(update.aggregation, Aggregation::Sum | Aggregation::Count)
                && limit_of(&limits, update).is_some_and(|limit| limit.alert_thresholds.is_empty())
        };
        if touches_rolling(&limits, &updates) || !updates.iter().all(folds_in_one) {
            return Ok(None);
        }
        let now_ms = now.timestamp_millis();
        let ids: Vec<String> = events.iter().map(|_| new_id("evt", now_ms)).collect();
        let rows = event_rows(events, &ids, &customers)?;
        let mut connection = self.recording.acquire().await?;
        let statement = sqlx::query_as::<_, RecordedInOneRow>(RECORD_IN_ONE_STATEMENT);
        let answered = bind_event_arrays!(statement, rows, &project.id, now_ms)
            .bind(version)
            .bind(updates.iter().map(|u| u.key.limit_id.as_str()).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.key.customer_id.as_str()).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.key.window_start).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.counter.value.0).collect::<Vec<_>>())
            .bind(updates.iter().map(|u| u.counter.latest_at).collect::<Vec<_>>())
            .bind(COUNTERS_CHANNEL)
            .bind(Quantity::MAX_COUNTER.0)
            .bind(MAX_ANNOUNCEMENT_BYTES as i64)
            .fetch_all(&mut *connection)
            .await;
        let answered = match answered {
            Ok(answered) => answered,
            // The statement failed as a whole, before or at its commit: nothing was written.
            Err(sqlx::Error::Database(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        // Another version, or no project row: nothing was written, and the whole way tells why.
        if answered.first().is_none_or(|row| row.rules_version.is_none() || row.rules_version != version) {
            return Ok(None);
        }
        let mut stored: HashMap<CounterKey, StoredCounter> = HashMap::with_capacity(updates.len());
        for row in answered {
            let (Some(limit_id), Some(customer_id), Some(window_start), Some(value), Some(latest_at), Some(version)) =
                (row.limit_id, row.customer_id, row.window_start, row.value, row.latest_at, row.version)
            else {
                continue;
            };
            let counter = Counter { value: Quantity(value), latest_at };
            stored.insert(CounterKey { limit_id, customer_id, window_start }, StoredCounter { counter, version });
        }
        let counters = updates
            .into_iter()
            .map(|update| {
                let state = stored
                    .get(&update.key)
                    .copied()
                    .ok_or_else(|| DbError::Corrupt(format!("counter of limit {} not stored", update.key.limit_id)))?;
                Ok((update.key, state))
            })
            .collect::<DbResult<Vec<_>>>()?;
        let recorded = ids.into_iter().map(|id| RecordedEvent { id, duplicate: false }).collect();
        Ok(Some(RecordOutcome::from_memory(recorded, counters, version, writer)))
    }
}

impl Db {
    /// Records events in one transaction: customers created on first use, duplicates of an
    /// idempotency key acknowledged with the original id, and every affected window counter
    /// updated. Nothing is written unless everything is. What `memory` remembers is not read
    /// or written again. Its caller runs it to its end, whatever happens to the requests
    /// (the group commit's writer does): the outcome is what brings memory up to date.
    pub async fn record_events(
        &self,
        project: &Project,
        events: &[NewEvent],
        now: DateTime<Utc>,
        memory: &RecordMemory<'_>,
    ) -> DbResult<RecordOutcome> {
        self.record_events_with(project, events, now, memory, None).await
    }

    /// `record_events`, with `judge` shown the counters as they stand inside the transaction
    /// (their rows locked on PostgreSQL until it ends) before anything else is written, and
    /// the whole windows of the rolling limits it touches (on PostgreSQL, recorders of one
    /// customer's window of a rolling limit take turns: a lock taken before its counter rows).
    pub async fn record_events_judged(
        &self,
        project: &Project,
        events: &[NewEvent],
        now: DateTime<Utc>,
        memory: &RecordMemory<'_>,
        judge: RecordJudge<'_>,
    ) -> DbResult<RecordOutcome> {
        self.record_events_with(project, events, now, memory, Some(judge)).await
    }

    async fn record_events_with(
        &self,
        project: &Project,
        events: &[NewEvent],
        now: DateTime<Utc>,
        memory: &RecordMemory<'_>,
        judge: Option<RecordJudge<'_>>,
    ) -> DbResult<RecordOutcome> {
        let already_fired = memory.already_fired;
        let now_ms = now.timestamp_millis();
        let claimed = match self {
            Db::Sqlite(s) => match s.record_at_once(project, events, now, memory, judge).await? {
                Ok(outcome) => return Ok(outcome),
                Err(writer) => Some(writer),
            },
            Db::Postgres(s) if judge.is_none() => {
                match s.record_in_one_statement(project, events, now, memory).await? {
                    Some(outcome) => return Ok(outcome),
                    None => None,
                }
            }
            Db::Postgres(_) => None,
        };
        with_store!(self, s => {
            let writer = match claimed {
                Some(writer) => writer,
                None => s.claim_writer().await,
            };
            let mut tx = s.begin_claimed(writer).await?;
            let version = s.share_rules_tx(&mut tx, &project.id).await?;
            let mut references = referenced_customers(events);
            let Remembered { rules, mut customers } = (memory.remembered)(tx.slot(), &references, version);
            let (Rules { limits, meters }, rules_read) = match rules {
                Some(rules) => (rules, None),
                None => {
                    let (limits, meters) = s.limits_and_meters_tx(&mut tx, &project.id).await?;
                    let rules = Rules { limits: Arc::new(limits), meters: Arc::new(meters) };
                    (rules.clone(), Some(rules))
                }
            };
            let meters: HashMap<&str, _> = meters.iter().map(|m| (m.id.as_str(), m)).collect();
            references.retain(|reference| !customers.contains_key(*reference));
            let mut created_customers = false;
            let mut customers_read = HashMap::new();
            if !references.is_empty() {
                let (read, created) = s.ensure_customers_tx(&mut tx, &project.id, &references, now_ms).await?;
                created_customers = created;
                customers_read = read.into_iter().map(|(reference, customer)| (reference, Arc::new(customer))).collect();
                customers.extend(customers_read.iter().map(|(reference, customer)| (reference.clone(), customer.clone())));
            }
            let ids: Vec<String> = events.iter().map(|_| new_id("evt", now_ms)).collect();
            let rows = event_rows(events, &ids, &customers)?;
            // Only an idempotency key can make a row be skipped, so the count of rows written
            // says whether anything was.
            let written = s.insert_events_tx(&mut tx, &project.id, &rows, now_ms).await?;
            drop(rows);
            // When rows were skipped, the ids stored under the group's keys tell which: an event
            // whose key holds another id (recorded before, or earlier in this group) is a
            // duplicate of that one. One query per hundred keys.
            let mut stored_under_key: HashMap<String, String> = HashMap::new();
            if written < events.len() as u64 {
                let mut keys: Vec<&str> = events.iter().filter_map(|e| e.idempotency_key.as_deref()).collect();
                keys.sort_unstable();
                keys.dedup();
                for chunk in statement_chunks(&keys, ROWS_PER_STATEMENT) {
                    let sql = format!("{SELECT_EVENT_IDS_BY_KEY} ({})", numbered_list(2, chunk.len()));
                    let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(&project.id);
                    for key in chunk {
                        query = query.bind(*key);
                    }
                    stored_under_key.extend(query.fetch_all(&mut *tx).await?);
                }
            }
            let mut recorded = Vec::with_capacity(events.len());
            for (event, id) in events.iter().zip(ids) {
                let earlier = match event.idempotency_key.as_deref() {
                    Some(key) if !stored_under_key.is_empty() => match stored_under_key.get(key) {
                        Some(stored) if *stored == id => None,
                        Some(stored) => Some(stored.clone()),
                        None => return Err(DbError::Corrupt(format!("no event recorded under idempotency key {key}"))),
                    },
                    _ => None,
                };
                recorded.push(match earlier {
                    Some(id) => RecordedEvent { id, duplicate: true },
                    None => RecordedEvent { id, duplicate: false },
                });
            }
            let counted = events.iter().zip(&recorded).filter(|(_, r)| !r.duplicate).map(|(event, _)| event);
            let updates = usage_updates(project, &limits, &meters, &customers, counted);
            // Rolling windows are read whole for a judge, and for alerts.
            let read_window = |limit: &Limit| judge.is_some() || !limit.alert_thresholds.is_empty();
            let mut rolling = s.begin_rolling_tx(&mut tx, &limits, &updates, now, read_window).await?;
            // Counters of calendar windows whose state is remembered are written as they will
            // be, with nothing read back; rolling windows' buckets are pruned as they go, so
            // their rows are always upserted.
            let calendar_only = !touches_rolling(&limits, &updates);
            let remembered_counters = if calendar_only { (memory.counters)(tx.slot(), &updates) } else { None };
            let stored = match remembered_counters {
                Some(current) => s.store_counter_updates_tx(&mut tx, &updates, &current).await,
                None => s.apply_counter_updates_tx(&mut tx, &updates).await,
            };
            let stored = stored.map_err(|err| name_counter_value(err, &limits, &meters))?;
            s.finish_rolling_tx(&mut tx, &limits, &mut rolling, &updates, &stored, now).await?;
            let mut holds_read = Vec::new();
            if let Some(judge) = judge {
                let customer_ids: Vec<&str> = customers.values().map(|c| c.id.as_str()).collect();
                // Read whole, not summed: the next groups of these customers judge from memory.
                let holds = s.customers_holds_tx(&mut tx, &customer_ids).await?;
                let held: Vec<_> =
                    holds.iter().flat_map(|(customer_id, holds)| held_amounts(customer_id, holds, now_ms)).collect();
                holds_read = holds.into_iter().map(|(customer_id, holds)| (customer_id, Arc::new(holds))).collect();
                judge(&PendingRecord {
                    project,
                    limits: &limits,
                    meters: &meters,
                    events,
                    recorded: &recorded,
                    customers: &customers,
                    updates: &updates,
                    stored: &stored,
                    held: &held,
                    rolling: &rolling,
                })?;
            }
            let mut alerts = Vec::new();
            for (key, alert) in due_alerts_of(project, &limits, &customers, &updates, &stored, now) {
                // Alerts that fired are remembered: a threshold passed long ago costs no write
                // on every record after it.
                if already_fired(&key) {
                    continue;
                }
                if s.record_alert_tx(&mut tx, &key.limit_id, &key.customer_id, key.window_start, alert.threshold, now_ms).await? {
                    s.enqueue_tx(&mut tx, &project.id, alert.event_type, alert.data, None, now).await?;
                }
                alerts.push(key);
            }
            let by_id: HashMap<&str, &Customer> = customers.values().map(|c| (c.id.as_str(), &**c)).collect();
            for ((limit_id, customer_id), window) in &rolling {
                let (Some(limit), Some(customer)) =
                    (limits.iter().find(|l| l.id == *limit_id), by_id.get(customer_id.as_str()))
                else {
                    continue;
                };
                let window_start = window.rolling.bucket_start_ms(now);
                for alert in rolling_due_alerts(&limits, limit, customer, window.before, &window.buckets, now) {
                    let key = AlertKey {
                        limit_id: limit.id.clone(),
                        customer_id: customer.id.clone(),
                        window_start,
                        threshold: alert.threshold,
                    };
                    if already_fired(&key) {
                        continue;
                    }
                    if s.record_alert_tx(&mut tx, &limit.id, &customer.id, window_start, alert.threshold, now_ms).await? {
                        s.enqueue_tx(&mut tx, &project.id, alert.event_type, alert.data, None, now).await?;
                    }
                    alerts.push(key);
                }
            }
            let counters: Vec<(CounterKey, StoredCounter)> =
                updates.into_iter().map(|update| update.key).zip(stored).collect();
            s.announce_counters_tx(&mut tx, &counters).await?;
            let writer = tx.commit_holding_slot().await?;
            Ok(RecordOutcome {
                events: recorded,
                counters,
                alerts,
                created_customers,
                rules_read,
                rules_version: version,
                customers_read,
                holds_read,
                from_memory: false,
                writer,
            })
        })
    }

    /// Events newest first, after the cursor.
    pub async fn events_page(
        &self,
        project_id: &str,
        filter: &EventFilter<'_>,
        after: Option<&EventCursor>,
        limit: i64,
    ) -> DbResult<Vec<Event>> {
        let (after_at, after_id) = after.map_or((i64::MAX, ""), |c| (c.occurred_at, c.id.as_str()));
        let rows = with_store!(self, s => sqlx::query_as::<_, EventRow>(SELECT_EVENTS_PAGE)
            .bind(project_id)
            .bind(filter.customer_id)
            .bind(filter.event_type)
            .bind(filter.start_ms)
            .bind(filter.end_ms)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(Event::try_from).collect()
    }

    /// Streams the events in a range to `visit`, without holding them all in memory.
    pub async fn scan_events(
        &self,
        project_id: &str,
        filter: &EventFilter<'_>,
        mut visit: impl FnMut(MeteredEvent) + Send,
    ) -> DbResult<()> {
        with_store!(self, s => {
            let mut rows = sqlx::query_as::<_, MeteredRow>(SELECT_METERED_EVENTS)
                .bind(project_id)
                .bind(filter.customer_id)
                .bind(filter.event_type)
                .bind(filter.start_ms)
                .bind(filter.end_ms)
                .fetch(s.pool());
            while let Some(row) = rows.try_next().await? {
                visit(MeteredEvent {
                    quantities: quantities(&row.metric_values)?,
                    dimensions: serde_json::from_str(&row.dimensions)?,
                    customer_id: row.customer_id,
                    customer_external_id: row.external_id,
                    event_type: row.event_type,
                    occurred_at: ms_to_time(row.occurred_at),
                });
            }
        });
        Ok(())
    }
}

const COUNT_EVENTS_SINCE: &str = "select count(*) from events where project_id = $1 and occurred_at >= $2";
const COUNT_ACTIVE_CUSTOMERS_SINCE: &str =
    "select count(distinct customer_id) from events where project_id = $1 and occurred_at >= $2";
const TOP_CUSTOMERS_SINCE: &str = "select c.external_id, count(*) as events from events e \
     join customers c on c.id = e.customer_id where e.project_id = $1 and e.occurred_at >= $2 \
     group by c.external_id order by events desc, c.external_id limit $3";
// Integer division buckets by UTC day on both databases.
const EVENTS_PER_DAY_SINCE: &str = "select cast(occurred_at / 86400000 as bigint) as day, count(*) from events \
     where project_id = $1 and occurred_at >= $2 group by cast(occurred_at / 86400000 as bigint) order by day";

/// What the overview page shows.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub events_today: i64,
    pub active_customers: i64,
    /// (externalId, events) this month, most first.
    pub top_customers: Vec<(String, i64)>,
    /// (UTC day start in Unix ms, events) for the last days.
    pub events_per_day: Vec<(i64, i64)>,
}

impl Db {
    /// Activity since the given instants: today's events, this month's active and top
    /// customers, and events per day since `days_since_ms`.
    pub async fn activity(
        &self,
        project_id: &str,
        today_ms: i64,
        month_ms: i64,
        days_since_ms: i64,
    ) -> DbResult<Activity> {
        with_store!(self, s => {
            let pool = s.pool();
            let events_today: i64 =
                sqlx::query_scalar(COUNT_EVENTS_SINCE).bind(project_id).bind(today_ms).fetch_one(pool).await?;
            let active_customers: i64 =
                sqlx::query_scalar(COUNT_ACTIVE_CUSTOMERS_SINCE).bind(project_id).bind(month_ms).fetch_one(pool).await?;
            let top_customers: Vec<(String, i64)> = sqlx::query_as(TOP_CUSTOMERS_SINCE)
                .bind(project_id)
                .bind(month_ms)
                .bind(10i64)
                .fetch_all(pool)
                .await?;
            let per_day: Vec<(i64, i64)> =
                sqlx::query_as(EVENTS_PER_DAY_SINCE).bind(project_id).bind(days_since_ms).fetch_all(pool).await?;
            Ok(Activity {
                events_today,
                active_customers,
                top_customers,
                events_per_day: per_day.into_iter().map(|(day, n)| (day * 86_400_000, n)).collect(),
            })
        })
    }
}
