//! In-memory copies of what the check path reads, kept exact by the writer slot and by an
//! invalidation epoch.
//!
//! On SQLite this process is the database's only writer. Every write transaction holds the
//! process's writer slot (`db::WriterSlot`) from start to end, and a reader fills a copy only
//! while holding it too, so what it loads is never half before and half after a write. Records
//! fold their counter changes in before they give the slot up. A fill therefore never races a
//! record, however busy the record stream is: a miss costs one wait for the slot and one read.
//!
//! Changes to configuration (limits, meters, customers) clear the copies once committed, and
//! every clear moves the epoch: a reader keeps what it loaded only if the epoch it saw before
//! reading is still current. On PostgreSQL, shared by several instances, only customers and
//! limits are held (counters are read, in one query per check); other instances' changes arrive
//! through `LISTEN/NOTIFY` and clear the copies the same way, and while the listener is not
//! connected nothing is accepted, so every check reads the database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::db::WriterSlot;
use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::Counter;
use crate::domain::usage::{CounterKey, CounterUpdate};

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
    counters: HashMap<CounterKey, Option<Counter>>,
}

impl State {
    fn clear(&mut self) {
        self.epoch += 1;
        self.customers.clear();
        self.absent.clear();
        self.limits.clear();
        self.counters.clear();
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
    pub fn counters(&self, keys: &[CounterKey]) -> Vec<Option<Option<Counter>>> {
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
        counter: Option<Counter>,
    ) {
        self.fill(permit, |state| {
            if state.counters.len() >= MAX_COUNTERS {
                state.counters.clear();
            }
            state.counters.insert(key, counter);
        });
    }

    /// Folds committed counter changes into the cached counters; the committing write still
    /// holds the slot, so no reader filled them after the commit.
    pub fn apply_counters(&self, _held: &WriterSlot, updates: &[CounterUpdate]) {
        let mut state = self.lock();
        for update in updates {
            if let Some(entry) = state.counters.get_mut(&update.key) {
                *entry = Some(update.aggregation.merge(*entry, update.counter));
            }
        }
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
    use crate::domain::meters::Aggregation;
    use crate::domain::quantity::Quantity;

    fn key() -> CounterKey {
        CounterKey { limit_id: "lmt".into(), customer_id: "cust".into(), window_start: 0 }
    }

    fn update(value: i64) -> CounterUpdate {
        CounterUpdate {
            key: key(),
            aggregation: Aggregation::Sum,
            counter: Counter { value: Quantity(value), latest_at: 1 },
        }
    }

    fn slot() -> WriterSlot {
        crate::db::WriterSlot::unheld()
    }

    #[test]
    fn committed_counter_changes_fold_into_cached_entries() {
        let cache = Cache::new(true);
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        cache.apply_counters(&slot(), &[update(5)]);
        cache.apply_counters(&slot(), &[update(7)]);
        let cached = cache.counters(&[key()])[0].flatten().map(|c| c.value);
        assert_eq!(cached, Some(Quantity(12)));
    }

    #[test]
    fn changes_to_counters_nobody_cached_are_not_invented() {
        let cache = Cache::new(true);
        cache.apply_counters(&slot(), &[update(5)]);
        assert_eq!(cache.counters(&[key()]), vec![None]);
    }

    #[test]
    fn a_configuration_change_clears_everything_once_it_is_over() {
        let cache = Arc::new(Cache::new(true));
        let guard = cache.invalidate_after();
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(cache.counters(&[key()]), vec![Some(None)]);
        drop(guard);
        assert_eq!(cache.counters(&[key()]), vec![None]);
    }

    #[test]
    fn a_read_that_overlaps_a_clear_is_not_kept() {
        let cache = Cache::new(true);
        let permit = cache.permit();
        cache.clear();
        cache.fill_counter(&slot(), permit, key(), None);
        assert_eq!(cache.counters(&[key()]), vec![None]);
    }

    #[test]
    fn nothing_is_kept_while_changes_elsewhere_could_be_missed() {
        let cache = Cache::new(false);
        assert!(cache.permit().is_none());
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(cache.counters(&[key()]), vec![None]);
        cache.set_accepting(true);
        cache.fill_counter(&slot(), cache.permit(), key(), None);
        assert_eq!(cache.counters(&[key()]), vec![Some(None)]);
    }
}
