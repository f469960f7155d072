//! Period window arithmetic for limits: the half-open window `[start, end)` of an hour, day,
//! week, month, year or all time that contains an instant, in the customer's timezone and
//! billing cycle.

use std::fmt;

use chrono::offset::MappedLocalTime;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How long a limit counts usage before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Clock hours in UTC, whatever the customer's timezone.
    Hour,
    /// Calendar days in the customer's timezone.
    Day,
    /// Weeks from Monday in the customer's timezone.
    Week,
    /// Calendar months, or billing months from the anchor's day of the month.
    Month,
    /// Calendar years, or billing years from the anchor's anniversary.
    Annual,
    /// A single window from the Unix epoch that never resets.
    AllTime,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 6] = [
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Annual,
        Period::AllTime,
    ];

    /// The period's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Annual => "annual",
            Period::AllTime => "all_time",
        }
    }

    /// The period named `s`, the inverse of [`Period::as_str`].
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|period| period.as_str() == s)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A half-open span of time `[start, end)` over which a limit counts usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first instant inside the window.
    pub start: DateTime<Utc>,
    /// The first instant after the window, which is where the next window starts; `None` only
    /// for [`Period::AllTime`].
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    /// Window start as Unix milliseconds (AllTime: 0). Used as a counter key.
    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    /// Window end as Unix seconds, None for AllTime (the API's `reset` field).
    pub fn reset_unix_seconds(&self) -> Option<i64> {
        self.end.map(|end| end.timestamp())
    }

    /// Whether `at` lies inside the window: at or after its start and before its end.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && self.end.is_none_or(|end| at < end)
    }
}

/// The window of `period` that contains `at`.
///
/// Days, weeks, months and years begin at local midnight in `tz`, so they last as long as the
/// wall clock says: a day across a daylight-saving change is 23 or 25 hours. Where the clock
/// skips midnight the window begins at the first instant after it (often 01:00); where it
/// passes midnight twice, at the earlier one. `anchor` moves month windows to its day of the
/// month (clamped to short months) and annual windows to its anniversary; its year is
/// irrelevant. Hours ignore `tz` and `anchor`, all time ignores everything.
///
/// Within a day of chrono's representable range (years ±262,000) boundaries saturate at its
/// limits instead of panicking.
pub fn window_containing(
    period: Period,
    at: DateTime<Utc>,
    tz: Tz,
    anchor: Option<NaiveDate>,
) -> Window {
    let calendar = match period {
        Period::Hour => return hour_containing(at),
        Period::AllTime => {
            return Window {
                start: DateTime::UNIX_EPOCH,
                end: None,
            }
        }
        Period::Day => Calendar::Day,
        Period::Week => Calendar::Week,
        Period::Month => Calendar::Month {
            day: anchor.map_or(1, |anchor| anchor.day()),
        },
        Period::Annual => Calendar::Year {
            month: anchor.map_or(1, |anchor| anchor.month()),
            day: anchor.map_or(1, |anchor| anchor.day()),
        },
    };
    calendar_window(calendar, at, tz)
}

const SECONDS_PER_HOUR: i64 = 3600;

fn hour_containing(at: DateTime<Utc>) -> Window {
    // Whole seconds from the timestamp rather than duration arithmetic, so that a leap second
    // (23:59:60, stored as 23:59:59 plus more than a second of nanoseconds) stays in its hour.
    let start = at.timestamp().div_euclid(SECONDS_PER_HOUR) * SECONDS_PER_HOUR;
    Window {
        // chrono's lower limit falls on the hour, so flooring cannot leave the range; only the
        // end can, and it saturates.
        start: DateTime::from_timestamp(start, 0).unwrap_or(DateTime::<Utc>::MIN_UTC),
        end: Some(
            DateTime::from_timestamp(start + SECONDS_PER_HOUR, 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
    }
}

/// Windows that begin at local midnight on dates of a calendar rule.
#[derive(Debug, Clone, Copy)]
enum Calendar {
    Day,
    Week,
    /// Billing months from `day` (1–31) of each month.
    Month {
        day: u32,
    },
    /// Billing years from `month`/`day` of each year.
    Year {
        month: u32,
        day: u32,
    },
}

/// More than a wall clock turned back across midnight ever calls for; it only bounds the
/// search at chrono's limits, where saturated boundaries stop moving.
const MAX_CORRECTIONS: usize = 8;

impl Calendar {
    // Boundaries are numbered so that consecutive windows are `step` apart: days since the
    // common era for days and weeks, months since year 0, or years. Negative numbers therefore
    // lie before the common era, far from both of chrono's limits, so the sign tells which
    // limit an unrepresentable boundary lies beyond.

    fn step(self) -> i64 {
        match self {
            Calendar::Week => 7,
            Calendar::Day | Calendar::Month { .. } | Calendar::Year { .. } => 1,
        }
    }

    /// The local date boundary `index` falls on, `None` beyond chrono's range.
    fn boundary_date(self, index: i64) -> Option<NaiveDate> {
        match self {
            Calendar::Day | Calendar::Week => {
                NaiveDate::from_num_days_from_ce_opt(i32::try_from(index).ok()?)
            }
            Calendar::Month { day } => {
                let year = i32::try_from(index.div_euclid(12)).ok()?;
                let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
                clamped_date(year, month, day)
            }
            Calendar::Year { month, day } => clamped_date(i32::try_from(index).ok()?, month, day),
        }
    }

    /// The number of the last boundary on or before `date`.
    fn index_on_or_before(self, date: NaiveDate) -> i64 {
        let days = i64::from(date.num_days_from_ce());
        let same_month_or_year = match self {
            Calendar::Day => return days,
            Calendar::Week => return days - i64::from(date.weekday().num_days_from_monday()),
            Calendar::Month { .. } => i64::from(date.year()) * 12 + i64::from(date.month0()),
            Calendar::Year { .. } => i64::from(date.year()),
        };
        // Before the anchor's day the date still belongs to the previous month's (or year's)
        // window: anchor 15th, March 10th → February 15th.
        match self.boundary_date(same_month_or_year) {
            Some(boundary) if boundary > date => same_month_or_year - 1,
            _ => same_month_or_year,
        }
    }

    /// The instant boundary `index` begins, saturated at chrono's limits.
    fn boundary_instant(self, index: i64, tz: Tz) -> DateTime<Utc> {
        let instant = self
            .boundary_date(index)
            .and_then(|date| start_of_local_date(date, tz));
        instant.unwrap_or(if index < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }
}

fn calendar_window(calendar: Calendar, at: DateTime<Utc>, tz: Tz) -> Window {
    // The local date names the window except where a wall clock turned back across midnight
    // reads yesterday's date inside today's window; the corrections below settle that. Near
    // chrono's limits the local date may be unrepresentable, and the UTC date is as good a
    // first guess.
    let local_date = wall_clock(at, tz).map_or_else(|| at.date_naive(), |wall| wall.date());
    let step = calendar.step();
    let mut index = calendar.index_on_or_before(local_date);
    let mut start = calendar.boundary_instant(index, tz);
    let mut end = calendar.boundary_instant(index + step, tz);
    // Boundaries never decrease, so after one step back `at` lies before the new end and the
    // corrections never turn round.
    for _ in 0..MAX_CORRECTIONS {
        if at < start {
            index -= step;
            end = start;
            start = calendar.boundary_instant(index, tz);
        } else if at >= end {
            index += step;
            start = end;
            end = calendar.boundary_instant(index + step, tz);
        } else {
            break;
        }
    }
    Window {
        start,
        end: Some(end),
    }
}

/// `year-month-day`, or the month's last day when it has fewer than `day` days.
fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    // Every month has at least 28 days, so at most three days are out of reach.
    (day.saturating_sub(3).max(1)..=day)
        .rev()
        .find_map(|day| NaiveDate::from_ymd_opt(year, month, day))
}

/// What a wall clock in `tz` reads at `at`, `None` beyond chrono's range.
fn wall_clock(at: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    // Not `with_timezone(..).naive_local()`, which panics when the reading lies beyond
    // chrono's range.
    let utc = at.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The instant `date` begins in `tz`: its midnight, the earlier one when the clock shows
/// midnight twice, or the first instant after it when the clock skips it. `None` beyond
/// chrono's range.
fn start_of_local_date(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        MappedLocalTime::Single(instant) => Some(instant.to_utc()),
        // Compared rather than relying on the order of the pair, which chrono does not promise.
        MappedLocalTime::Ambiguous(one, other) => Some(one.to_utc().min(other.to_utc())),
        // chrono-tz answers `None` both for a skipped midnight and for one beyond chrono's
        // range. The last resort reads midnight with a nearby offset, so that tz data
        // unlike any seen so far still yields an instant close to the right one.
        MappedLocalTime::None => end_of_gap(midnight, tz).or_else(|| {
            let nearby = tz.offset_from_utc_datetime(&midnight).fix();
            midnight.checked_sub_offset(nearby).map(|utc| utc.and_utc())
        }),
    }
}

/// The first instant whose wall clock in `tz` reads `skipped` or later, for a `skipped` the
/// clock jumps over; `None` if that cannot be established.
fn end_of_gap(skipped: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let offset_at = |utc: NaiveDateTime| tz.offset_from_utc_datetime(&utc).fix();
    // Reading a skipped time with the offset of one side of the gap lands on the other side,
    // so two hops from any nearby offset find the offsets before and after the gap.
    let first = offset_at(skipped);
    let second = offset_at(skipped.checked_sub_offset(first)?);
    let third = offset_at(skipped.checked_sub_offset(second)?);
    let (larger, smaller) = if second.local_minus_utc() >= third.local_minus_utc() {
        (second, third)
    } else {
        (third, second)
    };
    let mut before = skipped.checked_sub_offset(larger)?.and_utc().timestamp();
    let mut after = skipped.checked_sub_offset(smaller)?.and_utc().timestamp();
    let reads_skipped_or_later =
        |seconds: i64| Some(wall_clock(DateTime::from_timestamp(seconds, 0)?, tz)? >= skipped);
    if reads_skipped_or_later(before)? || !reads_skipped_or_later(after)? {
        return None;
    }
    // Offsets and transitions are whole seconds, so bisecting whole seconds is exact.
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if reads_skipped_or_later(middle)? {
            after = middle;
        } else {
            before = middle;
        }
    }
    DateTime::from_timestamp(after, 0)
}
