//! Rolling limits on the check path: a window is the sum of many bucket counters, all of
//! which the check needs. They are held in memory as one series per customer and limit (see
//! `cache`), and a customer's missing windows are read in one query.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::db::DbResult;
use crate::domain::limits::Limit;
use crate::domain::quantity::Quantity;

impl Engine {
    /// The buckets, `(start in Unix ms, value)`, of the customer's windows at `now` of the
    /// rolling limits among `limits`, one list per rolling limit in their order: from memory,
    /// else those missing in one query. `read_database` tells whether that query ran.
    pub(super) async fn rolling_buckets(
        &self,
        customer_id: &str,
        known: bool,
        limits: &[&Limit],
        now: DateTime<Utc>,
        read_database: &mut bool,
    ) -> DbResult<Vec<Vec<(i64, Quantity)>>> {
        let windows: Vec<(&str, i64)> = limits
            .iter()
            .filter_map(|limit| Some((limit.id.as_str(), limit.rolling_window()?.window_at(now).start_ms())))
            .collect();
        if !known || windows.is_empty() {
            return Ok(vec![Vec::new(); windows.len()]);
        }
        let mut held: Vec<Option<Vec<(i64, Quantity)>>> =
            windows.iter().map(|&(limit_id, from)| self.cache.rolling(customer_id, limit_id, from)).collect();
        if held.iter().all(Option::is_some) {
            return Ok(held.into_iter().flatten().collect());
        }
        *read_database = true;
        let missing: Vec<usize> = (0..windows.len()).filter(|&i| held[i].is_none()).collect();
        let permit = self.cache.permit();
        let slot = self.db.writer_slot().await;
        // Opened before the read: whatever is recorded meanwhile reaches the series too.
        let fills: Vec<_> = missing
            .iter()
            .map(|&i| self.cache.begin_rolling(permit, customer_id, windows[i].0, windows[i].1))
            .collect();
        let ranges: Vec<(&str, i64)> = missing.iter().map(|&i| windows[i]).collect();
        let read = self.db.rolling_buckets(customer_id, &ranges).await?;
        for (&i, fill) in missing.iter().zip(fills) {
            let buckets: Vec<_> = read
                .iter()
                .filter(|(key, _)| key.limit_id == windows[i].0)
                .map(|(key, stored)| (key.window_start, *stored))
                .collect();
            held[i] = Some(buckets.iter().map(|(start, stored)| (*start, stored.counter.value)).collect());
            if let Some(fill) = fill {
                self.cache.fill_rolling(&slot, fill, customer_id, windows[i].0, &buckets);
            }
        }
        Ok(held.into_iter().map(Option::unwrap_or_default).collect())
    }
}
