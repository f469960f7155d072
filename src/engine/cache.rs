//! In-memory copies of what the check path reads, kept exact by the writer slot, by an
//! invalidation epoch and by counter versions.
//!
//! On SQLite this process is the database's only writer. Every write transaction holds the
//! process's writer slot (`db::WriterSlot`) from start to end, and a reader fills a copy only
//! while holding it too, so what it loads is never half before and half after a write. Records
//! store the counters they changed before they give the slot up. A fill therefore never races a
//! record, however busy the record stream is: a miss costs one wait for the slot and one read.
//!
//! Changes to configuration (limits, meters, customers) clear the copies once committed, and
//! every clear moves the epoch: a reader keeps what it loaded only if the epoch it saw before
//! reading is still current. The record path also takes rules, customers and (on SQLite)
//! counters from the copies instead of reading them, but only while no configuration change of
//! this instance is under way (one that committed has then cleared what it changed), and rules
//! and customers only as of the project's rules version the transaction reads, which tells it
//! whether another instance changed them since.
//!
//! On PostgreSQL, shared by several instances, every recording transaction announces the
//! counters it changed, as stored and with their versions, and configuration changes announce
//! themselves too (see `listener`); PostgreSQL delivers both in commit order. Counters are
//! absolute states, and of two states of one counter the higher version wins, so a fill and an
//! announcement may land in either order and the copy still ends at the newest. While the
//! listener is not connected nothing is accepted, so every check reads the database. How
//! current the announcements heard so far are is `current_through`, the `asOf` of checks
//! answered from memory.
//!
//! A rolling limit's window is many counters, one per bucket, and a check needs all of them:
//! a customer's buckets of one rolling limit are held as a series, complete from some bucket
//! on. A series is opened before its buckets are read, so that every counter stored or heard
//! meanwhile lands in it too, and is complete once the read is filled in (see `begin_rolling`).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::fast::RandomState;

use chrono::{DateTime, Utc};

use crate::db::events::{Remembered, Rules};
use crate::db::WriterSlot;
use crate::domain::customers::Customer;
use crate::domain::limit_reservations::{held_amounts, Hold};
use crate::domain::limits::Limit;
use crate::domain::quantity::Quantity;
use crate::domain::usage::{AlertKey, CounterKey, CounterUpdate, StoredCounter};

/// Counters and customers (and absences) are dropped wholesale past this many entries; they
/// are reloaded on demand, so strangers' random references cannot grow memory without bound.
const MAX_COUNTERS: usize = 1_000_000;
const MAX_CUSTOMERS: usize = 100_000;

/// Every check and every group looks up a few short ids here, under the one lock: foldhash
/// hashes them in a fraction of SipHash's time, with a seed of its own per map.
type FastMap<K, V> = HashMap<K, V, RandomState>;
type FastSet<K> = HashSet<K, RandomState>;

#[derive(Default)]
struct State {
    /// Moves at every clear; a fill must have seen the current one before it read.
    epoch: u64,
    /// False while changes made elsewhere could be missed (a lost listener): nothing is kept.
    accepting: bool,
    /// By project id, then id or externalId as the client sent it.
    customers: ByProject<Arc<Customer>>,
    /// References known to name no customer yet (only kept by the database's only writer,
    /// whose records forget them when they create the customer).
    absent: ByProject<()>,
    limits: FastMap<String, Arc<Vec<Limit>>>,
    /// By project id: the rules recording applies, as of one rules version, and the customers
    /// recording read as of that version (only the record path reads these; checks read
    /// `limits` and `customers`).
    recording: FastMap<String, RecordingCopy>,
    recorded_customers: ByProject<Arc<Customer>>,
    /// Configuration changes begun and not yet cleared (see `invalidate_after`).
    changing: usize,
    /// `None`: known to have no usage yet.
    counters: FastMap<CounterKey, Option<StoredCounter>>,
    /// Alerts known to have fired: their rows exist, and are removed only with their limit or
    /// customer, whose removal clears this.
    fired: FastSet<AlertKey>,
    /// Reservations' holds by customer id, expired ones included until swept (they count
    /// nothing past their expiry). Forgotten at every change to a customer's reservations.
    holds: FastMap<String, Arc<Vec<Hold>>>,
    /// Every change committed before this instant is in the copies (PostgreSQL; `None` until
    /// the listener has heard itself).
    current_through: Option<DateTime<Utc>>,
    /// Rolling limits' buckets, by customer id, then limit id.
    series: FastMap<String, FastMap<String, Series>>,
    /// How many buckets the series hold, bounded like the counters.
    series_buckets: usize,
    /// Numbers the series opened, so that a read filled in after its series was dropped (and
    /// opened again) is not taken for the new one's.
    series_opened: u64,
}

/// A project's rules as recording applies them, and the rules version they were read at
/// (`None` on SQLite).
struct RecordingCopy {
    rules: Rules,
    version: Option<i64>,
}

/// One customer's buckets of one rolling limit.
struct Series {
    generation: u64,
    /// Buckets starting at or after this (Unix ms) are kept as they are stored or heard.
    kept_from: i64,
    /// Once a read is filled in: every bucket starting at or after this is held (a bucket not
    /// held has no usage).
    complete_from: Option<i64>,
    buckets: BTreeMap<i64, StoredCounter>,
}

impl Series {
    /// Keeps the newer state of a bucket; `true` if the bucket is new.
    fn store(&mut self, start: i64, stored: StoredCounter) -> bool {
        if start < self.kept_from {
            return false;
        }
        match self.buckets.get_mut(&start) {
            Some(held) => {
                if stored.version > held.version {
                    *held = stored;
                }
                false
            }
            None => {
                self.buckets.insert(start, stored);
                true
            }
        }
    }
}

impl State {
    fn clear(&mut self) {
        self.epoch += 1;
        self.customers.clear();
        self.absent.clear();
        self.limits.clear();
        self.recording.clear();
        self.recorded_customers.clear();
        self.counters.clear();
        self.fired.clear();
        self.holds.clear();
        self.series.clear();
        self.series_buckets = 0;
    }

    /// Whether a record transaction may take anything from memory: not while a configuration
    /// change of this instance is under way, since one that committed may not have cleared the
    /// copies yet, nor when changes made elsewhere could be missed.
    fn offers_to_records(&self) -> bool {
        self.changing == 0 && self.accepting
    }

    /// Keeps the newer of the held and the given state of a counter; the key is cloned only
    /// when the counter is new.
    fn store_counter(&mut self, key: &CounterKey, stored: Option<StoredCounter>) {
        if let Some(series) = self.series.get_mut(&key.customer_id).and_then(|held| held.get_mut(&key.limit_id)) {
            if stored.is_some_and(|stored| series.store(key.window_start, stored)) {
                self.series_buckets += 1;
                if self.series_buckets > MAX_COUNTERS {
                    self.series.clear();
                    self.series_buckets = 0;
                }
            }
            return;
        }
        let version = |state: &Option<StoredCounter>| state.map_or(0, |s| s.version);
        if let Some(held) = self.counters.get_mut(key) {
            if version(&stored) > version(held) {
                *held = stored;
            }
            return;
        }
        if self.counters.len() >= MAX_COUNTERS {
            self.counters.clear();
        }
        self.counters.insert(key.clone(), stored);
    }
}

/// Entries by project id, then by a reference within the project: looked up by borrowed
/// text, so that a check allocates no key.
struct ByProject<V> {
    projects: FastMap<String, FastMap<String, V>>,
    len: usize,
}

impl<V> Default for ByProject<V> {
    fn default() -> Self {
        ByProject { projects: FastMap::default(), len: 0 }
    }
}

impl<V> ByProject<V> {
    fn get(&self, project_id: &str, reference: &str) -> Option<&V> {
        self.projects.get(project_id)?.get(reference)
    }

    fn insert(&mut self, project_id: &str, reference: &str, value: V) {
        let project = match self.projects.get_mut(project_id) {
            Some(project) => project,
            None => self.projects.entry(project_id.to_string()).or_default(),
        };
        if project.insert(reference.to_string(), value).is_none() {
            self.len += 1;
        }
    }

    fn remove_project(&mut self, project_id: &str) {
        if let Some(project) = self.projects.remove(project_id) {
            self.len -= project.len();
        }
    }

    fn remove(&mut self, project_id: &str, reference: &str) {
        if let Some(project) = self.projects.get_mut(project_id) {
            if project.remove(reference).is_some() {
                self.len -= 1;
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn clear(&mut self) {
        self.projects.clear();
        self.len = 0;
    }
}

pub struct Cache {
    state: Mutex<State>,
}

/// Taken before a read whose result may be kept: the epoch the reader saw.
#[derive(Clone, Copy)]
pub struct FillPermit(u64);

/// A rolling series opened for a read (`Cache::begin_rolling`).
#[derive(Clone, Copy)]
pub struct RollingFill {
    epoch: u64,
    generation: u64,
    from: i64,
}

impl Cache {
    /// A cache that accepts fills from the start (the process is the only writer), or only once
    /// told that changes made elsewhere will reach it.
    pub fn new(accepting: bool) -> Cache {
        Cache { state: Mutex::new(State { accepting, ..State::default() }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; clearing them is safe.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.clear();
            state
        })
    }

    /// What is known of the customer a reference names: `Some(None)` when it is known to
    /// name none yet, `None` when nothing is known.
    pub fn customer(&self, project_id: &str, reference: &str) -> Option<Option<Arc<Customer>>> {
        let state = self.lock();
        if let Some(customer) = state.customers.get(project_id, reference) {
            return Some(Some(customer.clone()));
        }
        state.absent.get(project_id, reference).map(|()| None)
    }

    pub fn limits(&self, project_id: &str) -> Option<Arc<Vec<Limit>>> {
        self.lock().limits.get(project_id).cloned()
    }

    /// Cached counters for the keys; `None` entries were not cached.
    pub fn counters(&self, keys: &[CounterKey]) -> Vec<Option<Option<StoredCounter>>> {
        let state = self.lock();
        keys.iter().map(|key| state.counters.get(key).copied()).collect()
    }

    /// A rolling limit's buckets for a customer from `from` (Unix ms) on, `(start, value)`, if
    /// all of them are held. Buckets before `from` are forgotten: windows only move on.
    pub fn rolling(&self, customer_id: &str, limit_id: &str, from: i64) -> Option<Vec<(i64, Quantity)>> {
        let mut state = self.lock();
        let series = state.series.get_mut(customer_id)?.get_mut(limit_id)?;
        if series.complete_from.is_none_or(|complete| complete > from) {
            return None;
        }
        let mut dropped = 0;
        if series.buckets.first_key_value().is_some_and(|(start, _)| *start < from) {
            let kept = series.buckets.split_off(&from);
            dropped = series.buckets.len();
            series.buckets = kept;
            series.kept_from = from;
            series.complete_from = Some(from);
        }
        let buckets = series.buckets.iter().map(|(start, stored)| (*start, stored.counter.value)).collect();
        state.series_buckets = state.series_buckets.saturating_sub(dropped);
        Some(buckets)
    }

    /// Opens (or widens) a customer's series of a rolling limit from `from` on, before its
    /// buckets are read: from now on what is stored or heard of them is kept. `None` when
    /// nothing may be kept (see `permit`).
    pub fn begin_rolling(
        &self,
        permit: Option<FillPermit>,
        customer_id: &str,
        limit_id: &str,
        from: i64,
    ) -> Option<RollingFill> {
        let FillPermit(epoch) = permit?;
        let mut state = self.lock();
        if state.epoch != epoch {
            return None;
        }
        state.series_opened += 1;
        let opened = state.series_opened;
        let series = state
            .series
            .entry(customer_id.to_string())
            .or_default()
            .entry(limit_id.to_string())
            .or_insert(Series { generation: opened, kept_from: from, complete_from: None, buckets: BTreeMap::new() });
        series.kept_from = series.kept_from.min(from);
        Some(RollingFill { epoch, generation: series.generation, from })
    }

    /// Fills in the buckets read (from `fill.from` on) after `begin_rolling`, while holding the
    /// writer slot: the series is complete from there on, unless it was dropped meanwhile.
    pub fn fill_rolling(
        &self,
        _held: &WriterSlot,
        fill: RollingFill,
        customer_id: &str,
        limit_id: &str,
        buckets: &[(i64, StoredCounter)],
    ) {
        let mut state = self.lock();
        if state.epoch != fill.epoch {
            return;
        }
        let Some(series) = state.series.get_mut(customer_id).and_then(|held| held.get_mut(limit_id)) else { return };
        if series.generation != fill.generation {
            return;
        }
        let added = buckets.iter().filter(|(start, stored)| series.store(*start, *stored)).count();
        series.complete_from = Some(series.complete_from.map_or(fill.from, |complete| complete.min(fill.from)));
        state.series_buckets += added;
        if state.series_buckets > MAX_COUNTERS {
            state.series.clear();
            state.series_buckets = 0;
        }
    }

    /// Permission to keep what is about to be read, unless fills are not accepted now.
    pub fn permit(&self) -> Option<FillPermit> {
        let state = self.lock();
        state.accepting.then_some(FillPermit(state.epoch))
    }

    /// Runs `store` if nothing was cleared since the permit was taken.
    fn fill(&self, permit: Option<FillPermit>, store: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        // Stopping acceptance clears, which moves the epoch: an older permit no longer fits.
        if permit.is_some_and(|FillPermit(epoch)| epoch == state.epoch) {
            store(&mut state);
        }
    }

    /// Stores a customer read while holding the writer slot.
    pub fn fill_customer(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        project_id: &str,
        reference: &str,
        customer: Arc<Customer>,
    ) {
        self.fill(permit, |state| {
            if state.customers.len() >= MAX_CUSTOMERS {
                state.customers.clear();
            }
            state.customers.insert(project_id, reference, customer);
        });
    }

    /// Remembers, while holding the writer slot, that a reference names no customer. Bounded
    /// like the customers: random references cannot grow it without limit.
    pub fn fill_absent(&self, _held: &WriterSlot, permit: Option<FillPermit>, project_id: &str, reference: &str) {
        self.fill(permit, |state| {
            if state.absent.len() >= MAX_CUSTOMERS {
                state.absent.clear();
            }
            state.absent.insert(project_id, reference, ());
        });
    }

    /// Forgets every absence, and every fill under way (one may have read an absence before
    /// the customer's creation committed): on PostgreSQL, where no slot orders readers and
    /// writers, after a creation by this instance or announced by another.
    pub fn forget_absences(&self) {
        let mut state = self.lock();
        state.absent.clear();
        state.epoch += 1;
    }

    /// Forgets absences a committed record may have ended (it created those customers); the
    /// record still holds the slot.
    pub fn forget_absent<'a>(&self, _held: &WriterSlot, project_id: &str, references: impl Iterator<Item = &'a str>) {
        let mut state = self.lock();
        if state.absent.is_empty() {
            return;
        }
        for reference in references {
            state.absent.remove(project_id, reference);
        }
    }

    /// Stores a project's limits read while holding the writer slot.
    pub fn fill_limits(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        project_id: &str,
        limits: Arc<Vec<Limit>>,
    ) {
        self.fill(permit, |state| {
            state.limits.insert(project_id.to_string(), limits);
        });
    }

    /// Stores the rules and customers a record transaction read (`customers`, by reference),
    /// all as of the rules `version`. Rules read at a newer version replace the held ones and
    /// their customers; rules of an older version, and customers read at another version than
    /// the held rules', are not kept.
    pub fn fill_recording(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        project_id: &str,
        rules: Option<Rules>,
        version: Option<i64>,
        customers: &HashMap<String, Arc<Customer>>,
    ) {
        self.fill(permit, |state| {
            let held = state.recording.get(project_id).map(|copy| copy.version);
            if let Some(rules) = rules.filter(|_| held.is_none_or(|held| held <= version)) {
                state.recording.insert(project_id.to_string(), RecordingCopy { rules, version });
                state.recorded_customers.remove_project(project_id);
            }
            if state.recording.get(project_id).is_none_or(|copy| copy.version != version) {
                return;
            }
            if state.recorded_customers.len() + customers.len() > MAX_CUSTOMERS {
                state.recorded_customers.clear();
            }
            for (reference, customer) in customers {
                state.recorded_customers.insert(project_id, reference, customer.clone());
            }
        });
    }

    /// The rules version the project's rules are remembered at for recording, if they are.
    pub fn recording_version(&self, project_id: &str) -> Option<Option<i64>> {
        let state = self.lock();
        let copy = state.recording.get(project_id)?;
        state.offers_to_records().then_some(copy.version)
    }

    /// What a record transaction may take from memory instead of reading it, asked once it
    /// holds the writer slot (SQLite) or has share-locked the project's row (PostgreSQL) with
    /// the project's rules `version` as it then reads (or, for a group recorded in one statement
    /// on PostgreSQL, as `recording_version` answers, which the statement checks): the rules and
    /// customers held as of that version (see `State::offers_to_records`).
    pub fn remembered(
        &self,
        _held: &WriterSlot,
        project_id: &str,
        references: &[&str],
        version: Option<i64>,
    ) -> Remembered {
        let state = self.lock();
        let Some(copy) = state.recording.get(project_id).filter(|copy| copy.version == version) else {
            return Remembered::default();
        };
        if !state.offers_to_records() {
            return Remembered::default();
        }
        let customers = references
            .iter()
            .filter_map(|reference| {
                Some((reference.to_string(), state.recorded_customers.get(project_id, reference)?.clone()))
            })
            .collect();
        Remembered { rules: Some(copy.rules.clone()), customers }
    }

    /// The stored state of the counters the updates change, if every one is held (see
    /// `State::offers_to_records`); asked by a record transaction holding the writer slot.
    pub fn remembered_counters(
        &self,
        _held: &WriterSlot,
        updates: &[CounterUpdate],
    ) -> Option<Vec<Option<StoredCounter>>> {
        let state = self.lock();
        if !state.offers_to_records() {
            return None;
        }
        updates.iter().map(|update| state.counters.get(&update.key).copied()).collect()
    }

    /// What the customers' live holds add to each limit at `now_ms`, as `(limit id, customer
    /// id, amount)`, if every customer's holds are held; asked by a record transaction holding
    /// the writer slot.
    pub fn remembered_held(
        &self,
        _held: &WriterSlot,
        customer_ids: &[&str],
        now_ms: i64,
    ) -> Option<Vec<(String, String, Quantity)>> {
        let state = self.lock();
        if !state.offers_to_records() {
            return None;
        }
        let mut amounts = Vec::new();
        for customer_id in customer_ids {
            amounts.extend(held_amounts(customer_id, state.holds.get(*customer_id)?, now_ms));
        }
        Some(amounts)
    }

    /// Stores a counter read while holding the writer slot.
    pub fn fill_counter(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        key: CounterKey,
        counter: Option<StoredCounter>,
    ) {
        self.fill(permit, |state| state.store_counter(&key, counter));
    }

    /// Stores the counters a record committed, as stored, with a permit taken before its
    /// transaction began: a configuration change committed meanwhile may have rewritten them.
    pub fn store_counters(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        counters: &[(CounterKey, StoredCounter)],
    ) {
        self.fill(permit, |state| {
            for (key, stored) in counters {
                state.store_counter(key, Some(*stored));
            }
        });
    }

    /// Whether the alert is known to have fired.
    pub fn has_fired(&self, alert: &AlertKey) -> bool {
        let state = self.lock();
        !state.fired.is_empty() && state.fired.contains(alert)
    }

    /// Remembers alerts a record found fired, with a permit taken before its transaction.
    pub fn store_fired(&self, _held: &WriterSlot, permit: Option<FillPermit>, alerts: Vec<AlertKey>) {
        if alerts.is_empty() {
            return;
        }
        self.fill(permit, |state| {
            if state.fired.len() + alerts.len() > MAX_CUSTOMERS {
                state.fired.clear();
            }
            state.fired.extend(alerts);
        });
    }

    /// A customer's holds, if known.
    pub fn holds(&self, customer_id: &str) -> Option<Arc<Vec<Hold>>> {
        self.lock().holds.get(customer_id).cloned()
    }

    /// Stores a customer's holds read while holding the writer slot.
    pub fn fill_holds(&self, _held: &WriterSlot, permit: Option<FillPermit>, customer_id: &str, holds: Arc<Vec<Hold>>) {
        self.fill(permit, |state| {
            if state.holds.len() >= MAX_CUSTOMERS {
                state.holds.clear();
            }
            state.holds.insert(customer_id.to_string(), holds);
        });
    }

    /// Forgets a customer's holds after a change to its reservations committed while holding
    /// the writer slot (SQLite): no fill can be under way.
    pub fn forget_holds_written(&self, _held: &WriterSlot, customer_id: &str) {
        self.lock().holds.remove(customer_id);
    }

    /// Forgets a customer's holds after a change on a shared database (by this instance, or
    /// announced by another), and every fill under way, which may have read them before it.
    pub fn forget_holds(&self, customer_id: &str) {
        let mut state = self.lock();
        state.holds.remove(customer_id);
        state.epoch += 1;
    }

    /// Stores counters another instance (or this one) announced. Announcements arrive in
    /// commit order, after any clear their changes followed, so they need no permit.
    pub fn hear_counters(&self, counters: Vec<(CounterKey, StoredCounter)>) {
        let mut state = self.lock();
        if state.accepting {
            for (key, stored) in counters {
                state.store_counter(&key, Some(stored));
            }
        }
    }

    /// Every change committed before `instant` has been heard.
    pub fn heard_through(&self, instant: DateTime<Utc>) {
        let mut state = self.lock();
        if state.accepting && state.current_through.is_none_or(|through| through < instant) {
            state.current_through = Some(instant);
        }
    }

    /// The instant up to which the copies are known to hold every committed change (`None`
    /// while nothing is accepted, or before the listener first heard itself).
    pub fn current_through(&self) -> Option<DateTime<Utc>> {
        let state = self.lock();
        state.current_through.filter(|_| state.accepting)
    }

    /// How many customers and counters are held now.
    pub fn sizes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.customers.len(), state.counters.len() + state.series_buckets)
    }

    /// Forgets everything, after a change to what the copies hold; they reload on demand.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Starts or stops accepting fills, forgetting everything either way.
    pub fn set_accepting(&self, accepting: bool) {
        let mut state = self.lock();
        state.clear();
        state.accepting = accepting;
        state.current_through = None;
    }

    /// A guard for a configuration change: it clears the copies when dropped, which must be
    /// after the change committed (or failed). Take it before the change's transaction begins:
    /// until it is dropped, records read what they need instead of remembering it.
    pub fn invalidate_after(self: &Arc<Self>) -> WriteGuard {
        self.lock().changing += 1;
        WriteGuard { cache: self.clone() }
    }
}

/// Clears the cache when dropped: after a configuration change, whatever it touched.
pub struct WriteGuard {
    cache: Arc<Cache>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        state.clear();
        state.changing -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meters::Counter;
    use crate::domain::quantity::Quantity;

    fn key() -> CounterKey {
        CounterKey { limit_id: "lmt".into(), customer_id: "cust".into(), window_start: 0 }
    }

    fn stored(value: i64, version: i64) -> StoredCounter {
        StoredCounter { counter: Counter { value: Quantity(value), latest_at: 1 }, version }
    }

    fn slot() -> WriterSlot {
        crate::db::WriterSlot::unheld()
    }

    fn held(cache: &Cache) -> Option<Option<Quantity>> {
        cache.counters(&[key()])[0].map(|c| c.map(|s| s.counter.value))
    }

    fn bucket(start: i64) -> CounterKey {
        CounterKey { limit_id: "lmt".into(), customer_id: "cust".into(), window_start: start }
    }

    fn series(cache: &Cache, from: i64) -> Option<Vec<(i64, i64)>> {
        cache.rolling("cust", "lmt", from).map(|buckets| buckets.into_iter().map(|(s, v)| (s, v.0)).collect())
    }

    #[test]
    fn a_rolling_series_keeps_what_is_heard_between_its_opening_and_its_read() {
        let cache = Cache::new(true);
        assert_eq!(series(&cache, 100), None);
        let fill = cache.begin_rolling(cache.permit(), "cust", "lmt", 100).unwrap();
        // Opened, not yet read: not to be used.
        assert_eq!(series(&cache, 100), None);
        // Heard meanwhile: a newer state of a bucket the read has, and a bucket it missed.
        cache.hear_counters(vec![(bucket(200), stored(7, 3)), (bucket(300), stored(1, 1))]);
        cache.fill_rolling(&slot(), fill, "cust", "lmt", &[(100, stored(4, 1)), (200, stored(5, 2))]);
        assert_eq!(series(&cache, 100), Some(vec![(100, 4), (200, 7), (300, 1)]));
        // Complete from 100 on only.
        assert_eq!(series(&cache, 50), None);
        // Records after the read keep it current; a window that moved on forgets older buckets.
        cache.store_counters(&slot(), cache.permit(), &[(bucket(300), stored(2, 2)), (bucket(400), stored(9, 1))]);
        assert_eq!(series(&cache, 200), Some(vec![(200, 7), (300, 2), (400, 9)]));
        cache.hear_counters(vec![(bucket(100), stored(50, 5))]);
        assert_eq!(series(&cache, 200), Some(vec![(200, 7), (300, 2), (400, 9)]));
        // Counters of other limits still go where they always went.
        let other = CounterKey { limit_id: "lmt_calendar".into(), ..key() };
        cache.store_counters(&slot(), cache.permit(), &[(other.clone(), stored(5, 1))]);
        assert_eq!(cache.counters(&[other])[0].map(|held| held.map(|s| s.counter.value)), Some(Some(Quantity(5))));
    }

    #[test]
    fn a_read_overlapping_a_clear_or_a_reopening_leaves_the_series_incomplete() {
        let cache = Cache::new(true);
        let fill = cache.begin_rolling(cache.permit(), "cust", "lmt", 100).unwrap();
        cache.clear();
        cache.fill_rolling(&slot(), fill, "cust", "lmt", &[(100, stored(4, 1))]);
        assert_eq!(series(&cache, 100), None);
        let permit = cache.permit();
        cache.clear();
        assert!(cache.begin_rolling(permit, "cust", "lmt", 100).is_none(), "a permit from before a clear");

        // Dropped meanwhile (too many buckets) and opened again: the older read is not the new one's.
        let stale = cache.begin_rolling(cache.permit(), "cust", "lmt", 100).unwrap();
        {
            let mut state = cache.lock();
            state.series.clear();
            state.series_buckets = 0;
        }
        let fresh = cache.begin_rolling(cache.permit(), "cust", "lmt", 100).unwrap();
        cache.fill_rolling(&slot(), stale, "cust", "lmt", &[(100, stored(4, 1))]);
        assert_eq!(series(&cache, 100), None);
        cache.fill_rolling(&slot(), fresh, "cust", "lmt", &[(100, stored(6, 2))]);
        assert_eq!(series(&cache, 100), Some(vec![(100, 6)]));
        assert!(Cache::new(false).begin_rolling(None, "cust", "lmt", 0).is_none());
    }

    #[test]
    fn the_newest_state_of_a_counter_wins_whatever_order_it_arrives_in() {
        let cache = Cache::new(true);
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        cache.store_counters(&slot(), cache.permit(), &[(key(), stored(5, 1))]);
        cache.hear_counters(vec![(key(), stored(12, 3))]);
        // An older state, heard late (a fill that read before the last change), is ignored.
        cache.store_counters(&slot(), cache.permit(), &[(key(), stored(7, 2))]);
        cache.fill_counter(&slot(), cache.permit(), key(), Some(stored(5, 1)));
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(held(&cache), Some(Some(Quantity(12))));
    }

    #[test]
    fn committed_counters_are_held_even_if_nobody_asked_yet() {
        let cache = Cache::new(true);
        cache.store_counters(&slot(), cache.permit(), &[(key(), stored(5, 1))]);
        assert_eq!(held(&cache), Some(Some(Quantity(5))));
    }

    #[test]
    fn a_record_that_overlapped_a_configuration_change_is_not_kept() {
        let cache = Cache::new(true);
        let permit = cache.permit();
        cache.clear();
        cache.store_counters(&slot(), permit, &[(key(), stored(5, 9))]);
        assert_eq!(held(&cache), None);
    }

    #[test]
    fn a_configuration_change_clears_everything_once_it_is_over() {
        let cache = Arc::new(Cache::new(true));
        let guard = cache.invalidate_after();
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(held(&cache), Some(None));
        drop(guard);
        assert_eq!(held(&cache), None);
    }

    fn customer(id: &str) -> Arc<Customer> {
        Arc::new(Customer::not_yet_created("proj", id, DateTime::UNIX_EPOCH))
    }

    fn rules() -> Option<Rules> {
        Some(Rules { limits: Arc::new(Vec::new()), meters: Arc::new(Vec::new()) })
    }

    fn read(references: &[&str]) -> HashMap<String, Arc<Customer>> {
        references.iter().map(|reference| (reference.to_string(), customer(reference))).collect()
    }

    /// Whether rules are remembered, and which of alice and bob.
    fn remembered(cache: &Cache, version: Option<i64>) -> (bool, Vec<String>) {
        let known = cache.remembered(&slot(), "proj", &["alice", "bob"], version);
        let mut customers: Vec<String> = known.customers.into_keys().collect();
        customers.sort();
        (known.rules.is_some(), customers)
    }

    #[test]
    fn records_remember_rules_and_customers_only_while_no_configuration_change_is_under_way() {
        let cache = Arc::new(Cache::new(true));
        assert_eq!(remembered(&cache, None), (false, vec![]));
        cache.fill_recording(&slot(), cache.permit(), "proj", rules(), None, &read(&["alice"]));
        assert_eq!(remembered(&cache, None), (true, vec!["alice".to_string()]));
        assert!(cache.remembered(&slot(), "other", &["alice"], None).rules.is_none(), "another project's rules");

        // A change has begun: what is held may be about to go stale, so nothing is offered
        // until it has committed and cleared the copies.
        let change = cache.invalidate_after();
        assert_eq!(remembered(&cache, None), (false, vec![]));
        let second = cache.invalidate_after();
        drop(change);
        assert_eq!(remembered(&cache, None), (false, vec![]));
        drop(second);
        assert_eq!(remembered(&cache, None), (false, vec![]), "cleared by the change");
        cache.fill_recording(&slot(), cache.permit(), "proj", rules(), None, &HashMap::new());
        assert_eq!(remembered(&cache, None), (true, vec![]));
        assert!(Cache::new(false).remembered(&slot(), "proj", &[], None).rules.is_none());
    }

    #[test]
    fn records_remember_rules_and_customers_only_for_the_rules_version_they_were_read_at() {
        let cache = Cache::new(true);
        cache.fill_recording(&slot(), cache.permit(), "proj", rules(), Some(3), &read(&["alice"]));
        assert_eq!(remembered(&cache, Some(3)), (true, vec!["alice".to_string()]));
        // Another instance changed the project's rules: nothing held is offered.
        assert_eq!(remembered(&cache, Some(4)), (false, vec![]));
        // A transaction that read an older version fills in late: the newer copy stays, and
        // customers read at the older version are not added to it.
        cache.fill_recording(&slot(), cache.permit(), "proj", rules(), Some(2), &read(&["bob"]));
        assert_eq!(remembered(&cache, Some(3)), (true, vec!["alice".to_string()]));
        // Customers read at the held version join it; rules read at a newer one replace it.
        cache.fill_recording(&slot(), cache.permit(), "proj", None, Some(3), &read(&["bob"]));
        assert_eq!(remembered(&cache, Some(3)), (true, vec!["alice".to_string(), "bob".to_string()]));
        cache.fill_recording(&slot(), cache.permit(), "proj", rules(), Some(4), &HashMap::new());
        assert_eq!(remembered(&cache, Some(4)), (true, vec![]));
        assert_eq!(remembered(&cache, Some(3)), (false, vec![]));
    }

    #[test]
    fn a_read_that_overlaps_a_clear_is_not_kept() {
        let cache = Cache::new(true);
        let permit = cache.permit();
        cache.clear();
        cache.fill_counter(&slot(), permit, key(), None);
        assert_eq!(held(&cache), None);
    }

    #[test]
    fn nothing_is_kept_while_changes_elsewhere_could_be_missed() {
        let cache = Cache::new(false);
        assert!(cache.permit().is_none());
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        cache.hear_counters(vec![(key(), stored(5, 1))]);
        cache.heard_through(DateTime::UNIX_EPOCH);
        assert_eq!(held(&cache), None);
        assert_eq!(cache.current_through(), None);
        cache.set_accepting(true);
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(held(&cache), Some(None));
        cache.heard_through(DateTime::UNIX_EPOCH);
        assert_eq!(cache.current_through(), Some(DateTime::UNIX_EPOCH));
        cache.set_accepting(false);
        assert_eq!(cache.current_through(), None);
    }
}
