//! In-memory copies of what the check path reads, kept exact by write epochs.
//!
//! Used only when this process is the database's only writer (SQLite). Every write bumps
//! `started` before touching the database and `finished` after, applying its effect to the
//! cache. A reader may store what it loaded only if no write started since it began and none
//! was in flight then; otherwise its copy might miss a change, and it is simply not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::Counter;
use crate::domain::usage::{CounterKey, CounterUpdate};

/// Counters are dropped wholesale past this many entries; they are reloaded on demand.
const MAX_COUNTERS: usize = 1_000_000;

#[derive(Default)]
struct State {
    started: u64,
    finished: u64,
    /// Keyed by (project id, id or externalId as the client sent it).
    customers: HashMap<(String, String), Arc<Customer>>,
    limits: HashMap<String, Arc<Vec<Limit>>>,
    /// `None`: known to have no usage yet.
    counters: HashMap<CounterKey, Option<Counter>>,
}

impl State {
    fn clear(&mut self) {
        self.customers.clear();
        self.limits.clear();
        self.counters.clear();
    }
}

#[derive(Default)]
pub struct Cache {
    state: Mutex<State>,
}

/// Proof that no write was in flight when a read began.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; clearing them is safe.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.clear();
            state
        })
    }

    /// A ticket if no write is in flight, else `None` (the reader must not fill the cache).
    pub fn ticket(&self) -> Option<Ticket> {
        let state = self.lock();
        (state.started == state.finished).then_some(Ticket(state.started))
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

    /// Stores what a reader loaded, if its ticket is still current.
    fn fill(&self, ticket: Option<Ticket>, store: impl FnOnce(&mut State)) {
        let Some(Ticket(epoch)) = ticket else { return };
        let mut state = self.lock();
        if state.started == epoch {
            store(&mut state);
        }
    }

    pub fn fill_customer(&self, ticket: Option<Ticket>, project_id: &str, reference: &str, customer: Arc<Customer>) {
        self.fill(ticket, |state| {
            state.customers.insert((project_id.to_string(), reference.to_string()), customer);
        });
    }

    pub fn fill_limits(&self, ticket: Option<Ticket>, project_id: &str, limits: Arc<Vec<Limit>>) {
        self.fill(ticket, |state| {
            state.limits.insert(project_id.to_string(), limits);
        });
    }

    pub fn fill_counter(&self, ticket: Option<Ticket>, key: CounterKey, counter: Option<Counter>) {
        self.fill(ticket, |state| {
            if state.counters.len() >= MAX_COUNTERS {
                state.counters.clear();
            }
            state.counters.insert(key, counter);
        });
    }

    /// Announces a write; the guard must be finished (or dropped) when it is over.
    pub fn begin_write(self: &Arc<Self>) -> WriteGuard {
        self.lock().started += 1;
        WriteGuard { cache: Some(self.clone()) }
    }
}

/// An announced write. Dropping it without saying what changed clears the cache, which is
/// always safe.
pub struct WriteGuard {
    cache: Option<Arc<Cache>>,
}

impl WriteGuard {
    /// A guard for a database that has no cache.
    pub fn none() -> Self {
        WriteGuard { cache: None }
    }

    /// The write committed these counter changes and nothing else the cache holds.
    pub fn finish_with_counters(mut self, updates: &[CounterUpdate]) {
        if let Some(cache) = self.cache.take() {
            let mut state = cache.lock();
            for update in updates {
                if let Some(entry) = state.counters.get_mut(&update.key) {
                    *entry = Some(update.aggregation.merge(*entry, update.counter));
                }
            }
            state.finished += 1;
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.take() {
            let mut state = cache.lock();
            state.clear();
            state.finished += 1;
        }
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

    #[test]
    fn a_read_that_overlaps_a_write_is_not_kept() {
        let cache = Arc::new(Cache::default());
        let ticket = cache.ticket();
        let guard = cache.begin_write();
        guard.finish_with_counters(&[update(5)]);
        cache.fill_counter(ticket, key(), None);
        assert_eq!(cache.counters(&[key()]), vec![None]);
    }

    #[test]
    fn no_ticket_is_given_while_a_write_is_in_flight() {
        let cache = Arc::new(Cache::default());
        let guard = cache.begin_write();
        assert!(cache.ticket().is_none());
        drop(guard);
        assert!(cache.ticket().is_some());
    }

    #[test]
    fn committed_counter_changes_fold_into_cached_entries() {
        let cache = Arc::new(Cache::default());
        cache.fill_counter(cache.ticket(), key(), None);
        cache.begin_write().finish_with_counters(&[update(5)]);
        cache.begin_write().finish_with_counters(&[update(7)]);
        let cached = cache.counters(&[key()])[0].flatten().map(|c| c.value);
        assert_eq!(cached, Some(Quantity(12)));
    }

    #[test]
    fn a_failed_write_clears_everything() {
        let cache = Arc::new(Cache::default());
        cache.fill_counter(cache.ticket(), key(), None);
        drop(cache.begin_write());
        assert_eq!(cache.counters(&[key()]), vec![None]);
    }
}
