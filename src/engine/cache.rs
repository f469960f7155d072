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
//! reading is still current.
//!
//! On PostgreSQL, shared by several instances, every recording transaction announces the
//! counters it changed, as stored and with their versions, and configuration changes announce
//! themselves too (see `listener`); PostgreSQL delivers both in commit order. Counters are
//! absolute states, and of two states of one counter the higher version wins, so a fill and an
//! announcement may land in either order and the copy still ends at the newest. While the
//! listener is not connected nothing is accepted, so every check reads the database. How
//! current the announcements heard so far are is `current_through`, the `asOf` of checks
//! answered from memory.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::db::WriterSlot;
use crate::domain::customers::Customer;
use crate::domain::limit_reservations::Hold;
use crate::domain::limits::Limit;
use crate::domain::usage::{AlertKey, CounterKey, StoredCounter};

/// Counters and customers (and absences) are dropped wholesale past this many entries; they
/// are reloaded on demand, so strangers' random references cannot grow memory without bound.
const MAX_COUNTERS: usize = 1_000_000;
const MAX_CUSTOMERS: usize = 100_000;

#[derive(Default)]
struct State {
    /// Moves at every clear; a fill must have seen the current one before it read.
    epoch: u64,
    /// False while changes made elsewhere could be missed (a lost listener): nothing is kept.
    accepting: bool,
    /// Keyed by (project id, id or externalId as the client sent it).
    customers: HashMap<(String, String), Arc<Customer>>,
    /// References known to name no customer yet (only kept by the database's only writer,
    /// whose records forget them when they create the customer).
    absent: HashSet<(String, String)>,
    limits: HashMap<String, Arc<Vec<Limit>>>,
    /// `None`: known to have no usage yet.
    counters: HashMap<CounterKey, Option<StoredCounter>>,
    /// Alerts known to have fired: their rows exist, and are removed only with their limit or
    /// customer, whose removal clears this.
    fired: HashSet<AlertKey>,
    /// Reservations' holds by customer id, expired ones included until swept (they count
    /// nothing past their expiry). Forgotten at every change to a customer's reservations.
    holds: HashMap<String, Arc<Vec<Hold>>>,
    /// Every change committed before this instant is in the copies (PostgreSQL; `None` until
    /// the listener has heard itself).
    current_through: Option<DateTime<Utc>>,
}

impl State {
    fn clear(&mut self) {
        self.epoch += 1;
        self.customers.clear();
        self.absent.clear();
        self.limits.clear();
        self.counters.clear();
        self.fired.clear();
        self.holds.clear();
    }

    /// Keeps the newer of the held and the given state of a counter.
    fn store_counter(&mut self, key: CounterKey, stored: Option<StoredCounter>) {
        let version = |state: &Option<StoredCounter>| state.map_or(0, |s| s.version);
        if let Some(held) = self.counters.get_mut(&key) {
            if version(&stored) > version(held) {
                *held = stored;
            }
            return;
        }
        if self.counters.len() >= MAX_COUNTERS {
            self.counters.clear();
        }
        self.counters.insert(key, stored);
    }
}

pub struct Cache {
    state: Mutex<State>,
}

/// Taken before a read whose result may be kept: the epoch the reader saw.
#[derive(Clone, Copy)]
pub struct FillPermit(u64);

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

    pub fn customer(&self, project_id: &str, reference: &str) -> Option<Arc<Customer>> {
        self.lock().customers.get(&(project_id.to_string(), reference.to_string())).cloned()
    }

    pub fn limits(&self, project_id: &str) -> Option<Arc<Vec<Limit>>> {
        self.lock().limits.get(project_id).cloned()
    }

    /// Cached counters for the keys; `None` entries were not cached.
    pub fn counters(&self, keys: &[CounterKey]) -> Vec<Option<Option<StoredCounter>>> {
        let state = self.lock();
        keys.iter().map(|key| state.counters.get(key).copied()).collect()
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
            state.customers.insert((project_id.to_string(), reference.to_string()), customer);
        });
    }

    /// Whether the reference is known to name no customer yet.
    pub fn is_absent(&self, project_id: &str, reference: &str) -> bool {
        self.lock().absent.contains(&(project_id.to_string(), reference.to_string()))
    }

    /// Remembers, while holding the writer slot, that a reference names no customer. Bounded
    /// like the customers: random references cannot grow it without limit.
    pub fn fill_absent(&self, _held: &WriterSlot, permit: Option<FillPermit>, project_id: &str, reference: &str) {
        self.fill(permit, |state| {
            if state.absent.len() >= MAX_CUSTOMERS {
                state.absent.clear();
            }
            state.absent.insert((project_id.to_string(), reference.to_string()));
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
            state.absent.remove(&(project_id.to_string(), reference.to_string()));
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

    /// Stores a counter read while holding the writer slot.
    pub fn fill_counter(
        &self,
        _held: &WriterSlot,
        permit: Option<FillPermit>,
        key: CounterKey,
        counter: Option<StoredCounter>,
    ) {
        self.fill(permit, |state| state.store_counter(key, counter));
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
                state.store_counter(key.clone(), Some(*stored));
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
                state.store_counter(key, Some(stored));
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
        (state.customers.len(), state.counters.len())
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
    /// after the change committed (or failed).
    pub fn invalidate_after(self: &Arc<Self>) -> WriteGuard {
        WriteGuard { cache: self.clone() }
    }
}

/// Clears the cache when dropped: after a configuration change, whatever it touched.
pub struct WriteGuard {
    cache: Arc<Cache>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.cache.clear();
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
