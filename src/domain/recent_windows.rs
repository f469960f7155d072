//! The calendar windows checks and records count in, remembered while they last: working out
//! a day or a month in a customer's zone costs more than the rest of a check's judgement, and
//! every check or event in the same zone with the same billing anchor asks for the same window
//! until it ends.

use std::cell::RefCell;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::windows::{window_containing, Period, Window};

/// Windows remembered by each thread: a handful of zones and anchors covers most checks, and
/// a thread's own list needs no lock.
const REMEMBERED: usize = 16;

#[derive(Clone, Copy)]
struct Remembered {
    period: Period,
    zone: Tz,
    anchor: Option<NaiveDate>,
    window: Window,
}

impl Remembered {
    fn is_for(&self, period: Period, zone: Tz, anchor: Option<NaiveDate>) -> bool {
        self.period == period && self.zone == zone && self.anchor == anchor
    }
}

thread_local! {
    /// The most recently computed first.
    static RECENT: RefCell<Vec<Remembered>> = const { RefCell::new(Vec::new()) };
}

/// The same as [`window_containing`]: the windows of one period, zone and anchor tile time, so
/// a remembered one that contains `at` is the one `window_containing` would compute.
pub fn window_at(period: Period, at: DateTime<Utc>, zone: Tz, anchor: Option<NaiveDate>) -> Window {
    RECENT.with_borrow_mut(|recent| {
        if let Some(known) = recent.iter().find(|known| known.is_for(period, zone, anchor) && known.window.contains(at))
        {
            return known.window;
        }
        let window = window_containing(period, at, zone, anchor);
        // Only a window that holds the instant it was asked for is remembered (so far every
        // one does; at chrono's limits a saturated boundary might not).
        if window.contains(at) {
            if let Some(stale) = recent.iter().position(|known| known.is_for(period, zone, anchor)) {
                recent.remove(stale);
            } else if recent.len() == REMEMBERED {
                recent.pop();
            }
            recent.insert(0, Remembered { period, zone, anchor, window });
        }
        window
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn remembered_windows_are_those_window_containing_computes() {
        let zones: [Tz; 5] = [
            Tz::UTC,
            chrono_tz::Europe::Paris,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Pacific::Apia,
            chrono_tz::Australia::Lord_Howe,
        ];
        let anchors = [None, NaiveDate::from_ymd_opt(2024, 1, 31), NaiveDate::from_ymd_opt(2023, 3, 15)];
        // Steps of 13 hours over two years land on both sides of every daylight-saving change
        // of these zones, month ends and a leap day; there are more combinations than are
        // remembered, so entries are replaced too.
        let start = DateTime::parse_from_rfc3339("2023-12-30T22:30:00Z").unwrap().to_utc();
        for step in 0..(2 * 366 * 24 / 13) {
            let at = start + Duration::hours(13 * step) + Duration::milliseconds(step * 37);
            for zone in zones {
                for anchor in anchors {
                    for period in Period::ALL {
                        assert_eq!(
                            window_at(period, at, zone, anchor),
                            window_containing(period, at, zone, anchor),
                            "{period} at {at} in {zone} from {anchor:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_window_is_remembered_until_it_ends() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T23:59:59.999Z").unwrap().to_utc();
        let today = window_at(Period::Day, at, Tz::UTC, None);
        assert_eq!(window_at(Period::Day, at - Duration::hours(23), Tz::UTC, None), today);
        let tomorrow = window_at(Period::Day, at + Duration::milliseconds(1), Tz::UTC, None);
        assert_eq!(tomorrow.start, today.end.unwrap());
        assert_eq!(window_at(Period::Day, at, Tz::UTC, None), today, "an earlier instant still finds its own day");
    }
}
