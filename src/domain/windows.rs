//! Period window arithmetic for limits: the half-open window `[start, end)` of a minute, hour, day,
//! week, month, year or all time that contains an instant, in the customer's timezone and
//! billing cycle.

use std::fmt;

use chrono::offset::MappedLocalTime;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::quantity::Quantity;

/// How long a limit counts usage before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Clock minutes in UTC: for per-minute rates.
    Minute,
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
    /// Not a span of time: how much is held at once by reservations in flight (usage recorded
    /// by events does not count), e.g. at most 5 agents running at the same time.
    Concurrent,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 8] = [
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Annual,
        Period::AllTime,
        Period::Concurrent,
    ];

    /// The period's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Annual => "annual",
            Period::AllTime => "all_time",
            Period::Concurrent => "concurrent",
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
    /// for [`Period::AllTime`] (and [`Period::Concurrent`], which counts no span of time).
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

/// A sliding window: the usage of the last `length` seconds, counted in buckets of
/// `resolution` seconds that start on UTC multiples of it (from the Unix epoch), whatever the
/// customer's timezone and billing anchor.
///
/// At an instant `t` the window holds the buckets whose start lies in `(t − length, t]`: the
/// bucket of `t` and the `length / resolution − 1` before it. Usage therefore leaves the
/// window all at once, a bucket at a time, exactly `length` after the start of its bucket:
/// it counts for between `length − resolution` and `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// How far back the window reaches, in seconds.
    pub length: i64,
    /// How long one bucket is, in seconds; it divides `length`.
    pub resolution: i64,
}

/// Rolling windows reach back at most this far (a month of 30 days).
pub const LONGEST_ROLLING_SECONDS: i64 = 30 * SECONDS_PER_DAY;

impl Period {
    /// The sliding window `rolling: true` makes of this period: a minute in one-second
    /// buckets, an hour in one-minute buckets, 24 hours, 7 days or 30 days in one-hour buckets.
    /// `None` for periods longer than a month, which cannot roll, and for concurrency limits.
    pub fn rolling(self) -> Option<Rolling> {
        let (length, resolution) = match self {
            Period::Minute => (SECONDS_PER_MINUTE, 1),
            Period::Hour => (SECONDS_PER_HOUR, SECONDS_PER_MINUTE),
            Period::Day => (SECONDS_PER_DAY, SECONDS_PER_HOUR),
            Period::Week => (7 * SECONDS_PER_DAY, SECONDS_PER_HOUR),
            Period::Month => (LONGEST_ROLLING_SECONDS, SECONDS_PER_HOUR),
            Period::Annual | Period::AllTime | Period::Concurrent => return None,
        };
        Some(Rolling { length, resolution })
    }
}

/// Unix seconds as an instant, saturated at chrono's limits.
fn instant_at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

impl Rolling {
    /// The start, in Unix seconds, of the bucket that contains `at`.
    fn bucket_of(self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.resolution) * self.resolution
    }

    /// The start of the bucket that contains `at`, in Unix milliseconds: the counter key of
    /// usage that occurs at `at`.
    pub fn bucket_start_ms(self, at: DateTime<Utc>) -> i64 {
        self.bucket_of(at).saturating_mul(1000)
    }

    /// The window at `at`: from the start of its oldest bucket to the end of the bucket of
    /// `at`, `length` long in all.
    pub fn window_at(self, at: DateTime<Utc>) -> Window {
        let current = self.bucket_of(at);
        Window {
            start: instant_at(current.saturating_sub(self.length - self.resolution)),
            end: Some(instant_at(current.saturating_add(self.resolution))),
        }
    }

    /// Whether the bucket starting at `bucket_start_ms` is in the window at `at`.
    pub fn holds(self, at: DateTime<Utc>, bucket_start_ms: i64) -> bool {
        let current = self.bucket_start_ms(at);
        bucket_start_ms <= current && bucket_start_ms > current.saturating_sub(self.length.saturating_mul(1000))
    }

    /// The instant, in Unix seconds, the usage of the bucket starting at `bucket_start_ms`
    /// leaves the window.
    pub fn leaves_at(self, bucket_start_ms: i64) -> i64 {
        bucket_start_ms.div_euclid(1000).saturating_add(self.length)
    }

    /// The usage in the window at `at`: the sum of the buckets it holds. `buckets` are
    /// `(start in Unix ms, value)` in any order; those outside the window are ignored.
    pub fn total(self, at: DateTime<Utc>, buckets: &[(i64, Quantity)]) -> Quantity {
        buckets
            .iter()
            .filter(|(start, _)| self.holds(at, *start))
            .fold(Quantity::ZERO, |sum, (_, v)| sum.saturating_add(*v))
    }

    /// When the next request may go through, in Unix seconds: if `fits` does not accept the
    /// usage now, the first instant enough buckets have left the window for it to (or, if it
    /// never would, when all the usage has left); if it does, the instant the oldest usage
    /// leaves; with no usage at all, the end of the current bucket, when the window next
    /// moves.
    pub fn reset(self, at: DateTime<Utc>, buckets: &[(i64, Quantity)], fits: impl Fn(Quantity) -> bool) -> i64 {
        let mut held: Vec<(i64, Quantity)> = buckets
            .iter()
            .copied()
            .filter(|&(start, value)| value != Quantity::ZERO && self.holds(at, start))
            .collect();
        held.sort_unstable_by_key(|&(start, _)| start);
        let next_move = self.bucket_of(at).saturating_add(self.resolution);
        let Some(&(oldest, _)) = held.first() else { return next_move };
        let mut used = held.iter().fold(Quantity::ZERO, |sum, (_, v)| sum.saturating_add(*v));
        if fits(used) {
            return self.leaves_at(oldest);
        }
        for &(start, value) in &held {
            used = used.saturating_sub(value);
            if fits(used) {
                return self.leaves_at(start);
            }
        }
        held.last().map_or(next_move, |&(start, _)| self.leaves_at(start))
    }
}

/// The window of `period` that contains `at`.
///
/// Days, weeks, months and years begin at local midnight in `tz`, so they last as long as the
/// wall clock says: a day across a daylight-saving change is 23 or 25 hours. Where the clock
/// skips midnight the window begins at the first instant after it (often 01:00); where it
/// passes midnight twice, at the earlier one. `anchor` moves month windows to its day of the
/// month (clamped to short months) and annual windows to its anniversary; its year is
/// irrelevant. Minutes and hours ignore `tz` and `anchor`, all time ignores everything.
///
/// Within a day of chrono's representable range (years ±262,000) boundaries saturate at its
/// limits instead of panicking.
pub fn window_containing(period: Period, at: DateTime<Utc>, tz: Tz, anchor: Option<NaiveDate>) -> Window {
    let calendar = match period {
        Period::Minute => return utc_span_containing(at, SECONDS_PER_MINUTE),
        Period::Hour => return utc_span_containing(at, SECONDS_PER_HOUR),
        Period::AllTime | Period::Concurrent => return Window { start: DateTime::UNIX_EPOCH, end: None },
        Period::Day => Calendar::Day,
        Period::Week => Calendar::Week,
        Period::Month => Calendar::Month { day: anchor.map_or(1, |anchor| anchor.day()) },
        Period::Annual => Calendar::Year {
            month: anchor.map_or(1, |anchor| anchor.month()),
            day: anchor.map_or(1, |anchor| anchor.day()),
        },
    };
    calendar_window(calendar, at, tz)
}

const SECONDS_PER_MINUTE: i64 = 60;
const SECONDS_PER_HOUR: i64 = 3600;
const SECONDS_PER_DAY: i64 = 86_400;

/// The UTC minute or hour (`seconds` long) that contains `at`.
fn utc_span_containing(at: DateTime<Utc>, seconds: i64) -> Window {
    // Whole seconds from the timestamp rather than duration arithmetic, so that a leap second
    // (23:59:60, stored as 23:59:59 plus more than a second of nanoseconds) stays in its hour.
    let start = at.timestamp().div_euclid(seconds) * seconds;
    Window {
        // chrono's lower limit falls on the hour, so flooring cannot leave the range; only the
        // end can, and it saturates.
        start: DateTime::from_timestamp(start, 0).unwrap_or(DateTime::<Utc>::MIN_UTC),
        end: Some(DateTime::from_timestamp(start + seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)),
    }
}

/// Windows that begin at local midnight on the dates of a calendar rule.
///
/// Boundaries are numbered so that consecutive windows are `step` apart: days since the common
/// era for days and weeks, months since year 0, or years. Negative numbers therefore lie before
/// the common era, far from both of chrono's limits, so the sign tells which limit an
/// unrepresentable boundary lies beyond.
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

/// More than a wall clock turned back across midnight ever calls for (one step); the bound
/// only matters at chrono's limits, where saturated boundaries stop moving.
const MAX_CORRECTIONS: usize = 8;

impl Calendar {
    fn step(self) -> i64 {
        match self {
            Calendar::Week => 7,
            Calendar::Day | Calendar::Month { .. } | Calendar::Year { .. } => 1,
        }
    }

    /// The local date boundary `index` falls on, `None` beyond chrono's range.
    fn boundary_date(self, index: i64) -> Option<NaiveDate> {
        match self {
            Calendar::Day | Calendar::Week => NaiveDate::from_num_days_from_ce_opt(i32::try_from(index).ok()?),
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
        let instant = self.boundary_date(index).and_then(|date| start_of_local_date(date, tz));
        instant.unwrap_or(if index < 0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC })
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
    Window { start, end: Some(end) }
}

/// `year-month-day`, or the month's last day when it has fewer than `day` days.
fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    // Every month has at least 28 days, so at most three days are out of reach.
    (day.saturating_sub(3).max(1)..=day).rev().find_map(|day| NaiveDate::from_ymd_opt(year, month, day))
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
        MappedLocalTime::Ambiguous(earliest, _) => Some(earliest.to_utc()),
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
    let (larger, smaller) =
        if second.local_minus_utc() >= third.local_minus_utc() { (second, third) } else { (third, second) };
    let mut before = skipped.checked_sub_offset(larger)?.and_utc().timestamp();
    let mut after = skipped.checked_sub_offset(smaller)?.and_utc().timestamp();
    let reads_skipped_or_later = |seconds: i64| Some(wall_clock(DateTime::from_timestamp(seconds, 0)?, tz)? >= skipped);
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Weekday};

    fn instant(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    fn date(ymd: &str) -> NaiveDate {
        ymd.parse().unwrap()
    }

    fn window(period: Period, at: &str, tz: &str) -> Window {
        window_containing(period, instant(at), zone(tz), None)
    }

    fn anchored(period: Period, at: &str, tz: &str, anchor: &str) -> Window {
        window_containing(period, instant(at), zone(tz), Some(date(anchor)))
    }

    fn span(start: &str, end: &str) -> Window {
        Window { start: instant(start), end: Some(instant(end)) }
    }

    fn length(window: Window) -> TimeDelta {
        window.end.unwrap() - window.start
    }

    fn ms(rfc3339: &str) -> i64 {
        instant(rfc3339).timestamp_millis()
    }

    #[test]
    fn rolling_periods_reach_back_at_most_a_month_at_their_documented_resolution() {
        let table: Vec<_> =
            Period::ALL.iter().map(|period| period.rolling().map(|r| (r.length, r.resolution))).collect();
        assert_eq!(
            table,
            [
                Some((60, 1)),
                Some((3600, 60)),
                Some((86_400, 3600)),
                Some((7 * 86_400, 3600)),
                Some((30 * 86_400, 3600)),
                None,
                None,
                None
            ]
        );
        for rolling in Period::ALL.iter().filter_map(|period| period.rolling()) {
            assert_eq!(rolling.length % rolling.resolution, 0);
            assert!(rolling.length <= LONGEST_ROLLING_SECONDS);
        }
    }

    #[test]
    fn a_rolling_window_holds_the_bucket_of_now_and_those_within_its_length_before() {
        let hour = Period::Hour.rolling().unwrap();
        let at = instant("2024-05-17T13:45:12.345Z");
        assert_eq!(hour.bucket_start_ms(at), ms("2024-05-17T13:45:00Z"));
        assert_eq!(hour.window_at(at), span("2024-05-17T12:46:00Z", "2024-05-17T13:46:00Z"));
        assert!(hour.holds(at, ms("2024-05-17T13:45:00Z")));
        assert!(hour.holds(at, ms("2024-05-17T12:46:00Z")));
        assert!(!hour.holds(at, ms("2024-05-17T12:45:00Z")), "an hour after its bucket began, usage has left");
        assert!(!hour.holds(at, ms("2024-05-17T13:46:00Z")), "a later bucket is not in the window yet");
        assert_eq!(hour.leaves_at(ms("2024-05-17T12:46:00Z")), instant("2024-05-17T13:46:00Z").timestamp());

        let month = Period::Month.rolling().unwrap();
        assert_eq!(month.window_at(at), span("2024-04-17T14:00:00Z", "2024-05-17T14:00:00Z"));
        let minute = Period::Minute.rolling().unwrap();
        assert_eq!(minute.window_at(at), span("2024-05-17T13:44:13Z", "2024-05-17T13:45:13Z"));
        // Before the epoch buckets still start on multiples of the resolution.
        assert_eq!(hour.bucket_start_ms(instant("1969-12-31T23:59:30Z")), -60_000);
    }

    #[test]
    fn usage_leaves_a_rolling_window_exactly_one_length_after_its_bucket_began() {
        for rolling in Period::ALL.iter().filter_map(|period| period.rolling()) {
            let recorded = instant("2024-05-17T13:45:12.345Z");
            let bucket = rolling.bucket_start_ms(recorded);
            let leaves = DateTime::from_timestamp(rolling.leaves_at(bucket), 0).unwrap();
            assert!(rolling.holds(recorded, bucket));
            assert!(rolling.holds(leaves - TimeDelta::nanoseconds(1), bucket), "{rolling:?}");
            assert!(!rolling.holds(leaves, bucket), "{rolling:?}");
            // It counted for at least the length less one bucket, and never longer than the length.
            let counted = leaves - recorded;
            assert!(counted > TimeDelta::seconds(rolling.length - rolling.resolution), "{rolling:?}");
            assert!(counted <= TimeDelta::seconds(rolling.length), "{rolling:?}");
            // The window is always `length` long and holds `length / resolution` buckets.
            let window = rolling.window_at(leaves);
            assert_eq!(length(window), TimeDelta::seconds(rolling.length));
            assert_eq!(window.start_ms(), bucket + rolling.resolution * 1000);
        }
    }

    #[test]
    fn a_rolling_total_adds_up_only_the_buckets_in_the_window() {
        let hour = Period::Hour.rolling().unwrap();
        let at = instant("2024-05-17T13:45:12Z");
        let buckets = [
            (ms("2024-05-17T12:45:00Z"), Quantity(1000)), // left
            (ms("2024-05-17T12:46:00Z"), Quantity(30)),
            (ms("2024-05-17T13:45:00Z"), Quantity(5)),
            (ms("2024-05-17T13:46:00Z"), Quantity(700)), // not yet
        ];
        assert_eq!(hour.total(at, &buckets), Quantity(35));
    }

    #[test]
    fn a_rolling_reset_is_when_enough_usage_has_left_for_the_next_request() {
        let hour = Period::Hour.rolling().unwrap();
        let at = instant("2024-05-17T13:45:12Z");
        let buckets = [
            (ms("2024-05-17T13:40:00Z"), Quantity(20)),
            (ms("2024-05-17T12:50:00Z"), Quantity(30)),
            (ms("2024-05-17T13:10:00Z"), Quantity(50)),
            (ms("2024-05-17T12:40:00Z"), Quantity(999)), // already left
        ];
        let limit = Quantity(100);
        let seconds = |text: &str| instant(text).timestamp();
        // At the limit: any request waits for the oldest bucket to leave.
        assert_eq!(hour.reset(at, &buckets, |used| used < limit), seconds("2024-05-17T13:50:00Z"));
        // 60 more needs 40 or less: both older buckets must leave.
        assert_eq!(
            hour.reset(at, &buckets, |used| used.saturating_add(Quantity(60)) <= limit),
            seconds("2024-05-17T14:10:00Z")
        );
        // More than the limit never fits: when all usage has left.
        assert_eq!(
            hour.reset(at, &buckets, |used| used.saturating_add(Quantity(101)) <= limit),
            seconds("2024-05-17T14:40:00Z")
        );
        // A request that fits now: when usage next leaves.
        assert_eq!(
            hour.reset(at, &buckets, |used| used.saturating_add(Quantity(0)) <= limit),
            seconds("2024-05-17T13:50:00Z")
        );
        // No usage: when the window next moves.
        assert_eq!(hour.reset(at, &[], |used| used < limit), seconds("2024-05-17T13:46:00Z"));
    }

    #[test]
    fn period_names_round_trip_through_parse_display_and_serde() {
        let names: Vec<_> = Period::ALL.iter().map(|period| period.as_str()).collect();
        assert_eq!(names, ["minute", "hour", "day", "week", "month", "annual", "all_time", "concurrent"]);
        for period in Period::ALL {
            assert_eq!(Period::parse(period.as_str()), Some(period));
            assert_eq!(period.to_string(), period.as_str());
            let json = serde_json::to_string(&period).unwrap();
            assert_eq!(json, format!("\"{}\"", period.as_str()));
            assert_eq!(serde_json::from_str::<Period>(&json).unwrap(), period);
        }
        for unknown in ["", "Hour", "year", "allTime", "all-time", " day"] {
            assert_eq!(Period::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_minute_starts_on_the_utc_minute_whatever_the_timezone() {
        let expected = span("2024-05-17T13:45:00Z", "2024-05-17T13:46:00Z");
        for tz in ["UTC", "Asia/Kolkata", "Australia/Lord_Howe"] {
            assert_eq!(window(Period::Minute, "2024-05-17T13:45:12.345Z", tz), expected);
        }
        assert_eq!(window(Period::Minute, "2024-05-17T13:45:59.999Z", "UTC"), expected);
        assert_eq!(window(Period::Minute, "2024-05-17T13:46:00Z", "UTC").start, instant("2024-05-17T13:46:00Z"));
    }

    #[test]
    fn an_hour_starts_on_the_utc_hour() {
        assert_eq!(
            window(Period::Hour, "2024-05-17T13:45:12.345Z", "UTC"),
            span("2024-05-17T13:00:00Z", "2024-05-17T14:00:00Z")
        );
    }

    #[test]
    fn hours_ignore_the_timezone_even_with_a_half_hour_offset() {
        let expected = span("2024-05-17T13:00:00Z", "2024-05-17T14:00:00Z");
        for tz in ["Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"] {
            assert_eq!(window(Period::Hour, "2024-05-17T13:45:00Z", tz), expected);
        }
        let anchor = Some(date("2024-01-15"));
        let at = instant("2024-05-17T13:45:00Z");
        assert_eq!(window_containing(Period::Hour, at, zone("Asia/Kolkata"), anchor), expected);
    }

    #[test]
    fn a_leap_second_stays_in_its_hour_and_day() {
        let leap =
            NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_milli_opt(23, 59, 59, 1_500).unwrap().and_utc();
        let hour = window_containing(Period::Hour, leap, Tz::UTC, None);
        assert_eq!(hour, span("2016-12-31T23:00:00Z", "2017-01-01T00:00:00Z"));
        assert!(hour.contains(leap));
        let day = window_containing(Period::Day, leap, Tz::UTC, None);
        assert_eq!(day, span("2016-12-31T00:00:00Z", "2017-01-01T00:00:00Z"));
    }

    #[test]
    fn a_utc_day_runs_from_midnight_to_midnight() {
        assert_eq!(
            window(Period::Day, "2024-05-17T23:59:59.999Z", "UTC"),
            span("2024-05-17T00:00:00Z", "2024-05-18T00:00:00Z")
        );
    }

    #[test]
    fn a_utc_week_runs_from_monday_to_monday() {
        let week = span("2024-05-13T00:00:00Z", "2024-05-20T00:00:00Z");
        assert_eq!(window(Period::Week, "2024-05-13T00:00:00Z", "UTC"), week);
        assert_eq!(window(Period::Week, "2024-05-17T12:00:00Z", "UTC"), week);
        assert_eq!(window(Period::Week, "2024-05-19T23:59:59Z", "UTC"), week);
    }

    #[test]
    fn a_week_crosses_the_end_of_the_year() {
        assert_eq!(
            window(Period::Week, "2025-01-01T12:00:00Z", "UTC"),
            span("2024-12-30T00:00:00Z", "2025-01-06T00:00:00Z")
        );
    }

    #[test]
    fn a_utc_month_runs_from_the_first_to_the_first() {
        assert_eq!(
            window(Period::Month, "2024-05-17T12:00:00Z", "UTC"),
            span("2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z")
        );
        assert_eq!(
            window(Period::Month, "2024-12-31T23:59:59Z", "UTC"),
            span("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_utc_year_runs_from_january_first_to_january_first() {
        assert_eq!(
            window(Period::Annual, "2024-05-17T12:00:00Z", "UTC"),
            span("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
        );
    }

    #[test]
    fn all_time_starts_at_the_unix_epoch_and_never_ends() {
        for tz in ["UTC", "Asia/Kolkata", "America/New_York"] {
            let all_time = anchored(Period::AllTime, "2024-05-17T12:00:00Z", tz, "2020-02-29");
            assert_eq!(all_time, Window { start: DateTime::UNIX_EPOCH, end: None });
            assert_eq!(all_time.start_ms(), 0);
            assert_eq!(all_time.reset_unix_seconds(), None);
            assert!(all_time.contains(instant("2024-05-17T12:00:00Z")));
            assert!(all_time.contains(DateTime::<Utc>::MAX_UTC));
        }
    }

    #[test]
    fn a_day_in_new_york_starts_at_local_midnight() {
        assert_eq!(
            window(Period::Day, "2024-01-15T03:00:00Z", "America/New_York"),
            span("2024-01-14T00:00:00-05:00", "2024-01-15T00:00:00-05:00")
        );
    }

    #[test]
    fn a_day_in_kolkata_starts_at_local_midnight_despite_the_half_hour_offset() {
        assert_eq!(
            window(Period::Day, "2024-01-14T19:00:00Z", "Asia/Kolkata"),
            span("2024-01-15T00:00:00+05:30", "2024-01-16T00:00:00+05:30")
        );
    }

    #[test]
    fn a_week_in_new_york_is_still_the_previous_one_on_sunday_evening() {
        // Already Monday in UTC, still Sunday in New York.
        assert_eq!(
            window(Period::Week, "2024-01-15T03:00:00Z", "America/New_York"),
            span("2024-01-08T00:00:00-05:00", "2024-01-15T00:00:00-05:00")
        );
    }

    #[test]
    fn a_week_in_kolkata_begins_while_it_is_still_sunday_in_utc() {
        assert_eq!(
            window(Period::Week, "2024-01-14T19:00:00Z", "Asia/Kolkata"),
            span("2024-01-15T00:00:00+05:30", "2024-01-22T00:00:00+05:30")
        );
    }

    #[test]
    fn the_spring_forward_day_lasts_23_hours_in_new_york_and_berlin() {
        let new_york = window(Period::Day, "2024-03-10T12:00:00-04:00", "America/New_York");
        assert_eq!(new_york, span("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"));
        assert_eq!(length(new_york), TimeDelta::hours(23));
        let berlin = window(Period::Day, "2024-03-31T12:00:00+02:00", "Europe/Berlin");
        assert_eq!(berlin, span("2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"));
        assert_eq!(length(berlin), TimeDelta::hours(23));
    }

    #[test]
    fn the_fall_back_day_lasts_25_hours_and_holds_both_passes_of_the_repeated_hour() {
        let new_york = window(Period::Day, "2024-11-03T12:00:00-05:00", "America/New_York");
        assert_eq!(new_york, span("2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00"));
        assert_eq!(length(new_york), TimeDelta::hours(25));
        for repeated in ["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"] {
            assert_eq!(window(Period::Day, repeated, "America/New_York"), new_york);
        }
        let berlin = window(Period::Day, "2024-10-27T02:30:00+01:00", "Europe/Berlin");
        assert_eq!(berlin, span("2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00"));
        assert_eq!(length(berlin), TimeDelta::hours(25));
        assert_eq!(window(Period::Day, "2024-10-27T02:30:00+02:00", "Europe/Berlin"), berlin);
    }

    #[test]
    fn a_week_containing_a_dst_change_is_an_hour_short_or_long() {
        let spring = window(Period::Week, "2024-03-10T12:00:00-04:00", "America/New_York");
        assert_eq!(spring, span("2024-03-04T00:00:00-05:00", "2024-03-11T00:00:00-04:00"));
        assert_eq!(length(spring), TimeDelta::hours(7 * 24 - 1));
        let fall = window(Period::Week, "2024-10-27T12:00:00+01:00", "Europe/Berlin");
        assert_eq!(fall, span("2024-10-21T00:00:00+02:00", "2024-10-28T00:00:00+01:00"));
        assert_eq!(length(fall), TimeDelta::hours(7 * 24 + 1));
    }

    #[test]
    fn a_month_containing_a_dst_change_runs_between_local_midnights() {
        assert_eq!(
            window(Period::Month, "2024-03-20T12:00:00Z", "America/New_York"),
            span("2024-03-01T00:00:00-05:00", "2024-04-01T00:00:00-04:00")
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_clock_resumes() {
        // Santiago moved from -04 to -03 at midnight on 2022-09-11, and Havana from -05 to -04
        // on 2023-03-12: those days begin at 01:00 local.
        let santiago = window(Period::Day, "2022-09-11T12:00:00-03:00", "America/Santiago");
        assert_eq!(santiago, span("2022-09-11T01:00:00-03:00", "2022-09-12T00:00:00-03:00"));
        assert_eq!(length(santiago), TimeDelta::hours(23));
        let eve = window(Period::Day, "2022-09-10T12:00:00-04:00", "America/Santiago");
        assert_eq!(eve.end, Some(santiago.start));
        assert_eq!(length(eve), TimeDelta::hours(24));
        assert_eq!(
            window(Period::Day, "2023-03-12T10:00:00-04:00", "America/Havana"),
            span("2023-03-12T01:00:00-04:00", "2023-03-13T00:00:00-04:00")
        );
        assert_eq!(
            window(Period::Day, "2023-03-26T10:00:00+03:00", "Asia/Beirut"),
            span("2023-03-26T01:00:00+03:00", "2023-03-27T00:00:00+03:00")
        );
    }

    #[test]
    fn a_midnight_skipped_mid_gap_starts_the_day_when_the_clock_resumes() {
        // Toronto jumped from 23:30 to 00:30 on 1919-03-31: the first instant after midnight
        // reads 00:30, not 01:00.
        let day = window(Period::Day, "1919-03-31T12:00:00-04:00", "America/Toronto");
        assert_eq!(day, span("1919-03-31T00:30:00-04:00", "1919-04-01T00:00:00-04:00"));
        let eve = window(Period::Day, "1919-03-30T12:00:00-05:00", "America/Toronto");
        assert_eq!(eve.end, Some(day.start));
        assert_eq!(length(eve), TimeDelta::minutes(23 * 60 + 30));
    }

    #[test]
    fn an_ambiguous_midnight_starts_the_day_at_its_first_pass() {
        // Havana turned back from 01:00 (-04) to 00:00 (-05) on 2023-11-05.
        let day = window(Period::Day, "2023-11-05T12:00:00-05:00", "America/Havana");
        assert_eq!(day, span("2023-11-05T00:00:00-04:00", "2023-11-06T00:00:00-05:00"));
        assert_eq!(length(day), TimeDelta::hours(25));
        for both_passes in ["2023-11-05T00:30:00-04:00", "2023-11-05T00:30:00-05:00"] {
            assert_eq!(window(Period::Day, both_passes, "America/Havana"), day);
        }
        let eve = window(Period::Day, "2023-11-04T12:00:00-04:00", "America/Havana");
        assert_eq!(length(eve), TimeDelta::hours(24));
    }

    #[test]
    fn an_evening_repeated_after_midnight_belongs_to_the_day_that_began() {
        // Goose Bay turned back from 00:01 (-03) to 23:01 (-04) on 2010-11-07: after the first
        // midnight the clock reads the 6th again, yet the 7th has begun.
        let seventh = span("2010-11-07T00:00:00-03:00", "2010-11-08T00:00:00-04:00");
        assert_eq!(window(Period::Day, "2010-11-06T23:30:00-04:00", "America/Goose_Bay"), seventh);
        assert_eq!(
            window(Period::Day, "2010-11-06T23:30:00-03:00", "America/Goose_Bay"),
            span("2010-11-06T00:00:00-03:00", "2010-11-07T00:00:00-03:00")
        );
        let tz = zone("America/Goose_Bay");
        let mut at = instant("2010-11-07T02:00:00Z");
        while at < instant("2010-11-07T05:00:00Z") {
            for period in [Period::Day, Period::Month] {
                check_sweep_window(period, at, tz, Some(date("2000-01-07")));
            }
            at += TimeDelta::seconds(59);
        }
    }

    #[test]
    fn a_billing_month_anchored_on_a_skipped_midnight_starts_when_the_clock_resumes() {
        assert_eq!(
            anchored(Period::Month, "2022-09-20T12:00:00Z", "America/Santiago", "2022-01-11"),
            span("2022-09-11T01:00:00-03:00", "2022-10-11T00:00:00-03:00")
        );
    }

    #[test]
    fn a_day_ending_when_the_clock_turns_back_to_the_previous_evening_lasts_25_hours() {
        // São Paulo left DST at midnight on 2019-02-17, back to 23:00 on the 16th.
        let sao_paulo = window(Period::Day, "2019-02-16T12:00:00-02:00", "America/Sao_Paulo");
        assert_eq!(sao_paulo, span("2019-02-16T00:00:00-02:00", "2019-02-17T00:00:00-03:00"));
        assert_eq!(length(sao_paulo), TimeDelta::hours(25));
        for repeated in ["2019-02-16T23:30:00-02:00", "2019-02-16T23:30:00-03:00"] {
            assert_eq!(window(Period::Day, repeated, "America/Sao_Paulo"), sao_paulo);
        }
        let santiago = window(Period::Day, "2022-04-02T12:00:00-03:00", "America/Santiago");
        assert_eq!(santiago, span("2022-04-02T00:00:00-03:00", "2022-04-03T00:00:00-04:00"));
    }

    #[test]
    fn a_calendar_day_the_clock_skips_entirely_has_no_window() {
        // Samoa jumped from 2011-12-29 24:00 (-10) straight to 2011-12-31 00:00 (+14).
        let before = window(Period::Day, "2011-12-30T09:59:59Z", "Pacific/Apia");
        assert_eq!(before, span("2011-12-29T00:00:00-10:00", "2011-12-31T00:00:00+14:00"));
        assert_eq!(length(before), TimeDelta::hours(24));
        assert_eq!(
            window(Period::Day, "2011-12-30T10:00:00Z", "Pacific/Apia"),
            span("2011-12-31T00:00:00+14:00", "2012-01-01T00:00:00+14:00")
        );
        // A billing month anchored on the skipped day starts when the clock resumes.
        assert_eq!(
            anchored(Period::Month, "2011-12-30T09:00:00Z", "Pacific/Apia", "2000-01-30"),
            span("2011-11-30T00:00:00-10:00", "2011-12-31T00:00:00+14:00")
        );
        assert_eq!(
            anchored(Period::Month, "2011-12-30T12:00:00Z", "Pacific/Apia", "2000-01-30"),
            span("2011-12-31T00:00:00+14:00", "2012-01-30T00:00:00+14:00")
        );
    }

    #[test]
    fn january_ends_where_february_begins() {
        let january = span("2023-01-01T00:00:00Z", "2023-02-01T00:00:00Z");
        assert_eq!(window(Period::Month, "2023-01-31T23:59:59Z", "UTC"), january);
        assert_eq!(
            window(Period::Month, "2023-02-01T00:00:00Z", "UTC"),
            span("2023-02-01T00:00:00Z", "2023-03-01T00:00:00Z")
        );
    }

    #[test]
    fn february_has_29_days_in_leap_years_but_not_in_2100() {
        let leap = window(Period::Month, "2024-02-29T12:00:00Z", "UTC");
        assert_eq!(leap, span("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"));
        assert_eq!(length(leap), TimeDelta::days(29));
        assert_eq!(
            window(Period::Day, "2024-02-29T12:00:00Z", "UTC"),
            span("2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z")
        );
        let not_leap = window(Period::Month, "2100-02-15T12:00:00Z", "UTC");
        assert_eq!(length(not_leap), TimeDelta::days(28));
        assert_eq!(
            window(Period::Day, "2100-02-28T12:00:00Z", "UTC"),
            span("2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z")
        );
        assert_eq!(length(window(Period::Month, "2000-02-15T12:00:00Z", "UTC")), TimeDelta::days(29));
    }

    #[test]
    fn a_billing_month_before_the_anchor_day_belongs_to_the_previous_month() {
        assert_eq!(
            anchored(Period::Month, "2024-03-10T12:00:00Z", "UTC", "2023-01-15"),
            span("2024-02-15T00:00:00Z", "2024-03-15T00:00:00Z")
        );
        assert_eq!(
            anchored(Period::Month, "2024-03-15T00:00:00Z", "UTC", "2023-01-15"),
            span("2024-03-15T00:00:00Z", "2024-04-15T00:00:00Z")
        );
        assert_eq!(
            anchored(Period::Month, "2024-01-05T00:00:00Z", "UTC", "2023-01-15"),
            span("2023-12-15T00:00:00Z", "2024-01-15T00:00:00Z")
        );
    }

    #[test]
    fn an_anchor_on_the_31st_clamps_to_short_months_in_both_directions() {
        let cases = [
            ("2023-02-10T12:00:00Z", "2023-01-31", "2023-02-28"),
            ("2023-03-05T12:00:00Z", "2023-02-28", "2023-03-31"),
            ("2024-03-05T12:00:00Z", "2024-02-29", "2024-03-31"),
            ("2024-03-31T10:00:00Z", "2024-03-31", "2024-04-30"),
            ("2024-04-30T00:00:00Z", "2024-04-30", "2024-05-31"),
            ("2024-12-31T00:00:00Z", "2024-12-31", "2025-01-31"),
        ];
        for (at, start, end) in cases {
            assert_eq!(
                anchored(Period::Month, at, "UTC", "2021-08-31"),
                span(&format!("{start}T00:00:00Z"), &format!("{end}T00:00:00Z")),
                "{at}"
            );
        }
    }

    #[test]
    fn an_anchor_on_the_30th_clamps_to_the_end_of_february() {
        let cases = [
            ("2023-02-10T12:00:00Z", "2023-01-30", "2023-02-28"),
            ("2023-03-01T12:00:00Z", "2023-02-28", "2023-03-30"),
            ("2024-02-28T12:00:00Z", "2024-01-30", "2024-02-29"),
            ("2024-02-29T12:00:00Z", "2024-02-29", "2024-03-30"),
        ];
        for (at, start, end) in cases {
            assert_eq!(
                anchored(Period::Month, at, "UTC", "2019-11-30"),
                span(&format!("{start}T00:00:00Z"), &format!("{end}T00:00:00Z")),
                "{at}"
            );
        }
    }

    #[test]
    fn an_anchor_on_the_29th_clamps_only_in_common_years() {
        let cases = [
            ("2023-02-27T12:00:00Z", "2023-01-29", "2023-02-28"),
            ("2023-02-28T12:00:00Z", "2023-02-28", "2023-03-29"),
            ("2024-02-28T12:00:00Z", "2024-01-29", "2024-02-29"),
            ("2024-02-29T12:00:00Z", "2024-02-29", "2024-03-29"),
            ("2100-03-10T12:00:00Z", "2100-02-28", "2100-03-29"),
        ];
        for (at, start, end) in cases {
            assert_eq!(
                anchored(Period::Month, at, "UTC", "2020-01-29"),
                span(&format!("{start}T00:00:00Z"), &format!("{end}T00:00:00Z")),
                "{at}"
            );
        }
    }

    #[test]
    fn the_anchor_year_does_not_matter_even_in_the_future() {
        let expected = span("2024-02-15T00:00:00Z", "2024-03-15T00:00:00Z");
        for anchor in ["1999-06-15", "2024-03-15", "2099-12-15"] {
            assert_eq!(anchored(Period::Month, "2024-03-10T12:00:00Z", "UTC", anchor), expected, "{anchor}");
        }
    }

    #[test]
    fn a_billing_month_starts_at_local_midnight_in_the_customer_zone() {
        // 23:00 on the 14th in New York, although already the 15th in UTC.
        assert_eq!(
            anchored(Period::Month, "2024-03-15T03:00:00Z", "America/New_York", "2023-07-15"),
            span("2024-02-15T00:00:00-05:00", "2024-03-15T00:00:00-04:00")
        );
    }

    #[test]
    fn a_year_starts_on_january_first_at_local_midnight() {
        assert_eq!(
            window(Period::Annual, "2023-12-31T16:00:00Z", "Asia/Tokyo"),
            span("2024-01-01T00:00:00+09:00", "2025-01-01T00:00:00+09:00")
        );
        assert_eq!(
            window(Period::Annual, "2024-01-01T03:00:00Z", "America/New_York"),
            span("2023-01-01T00:00:00-05:00", "2024-01-01T00:00:00-05:00")
        );
    }

    #[test]
    fn a_billing_year_runs_from_anniversary_to_anniversary() {
        assert_eq!(
            anchored(Period::Annual, "2024-03-01T12:00:00Z", "UTC", "2021-06-15"),
            span("2023-06-15T00:00:00Z", "2024-06-15T00:00:00Z")
        );
        assert_eq!(
            anchored(Period::Annual, "2024-06-15T00:00:00Z", "UTC", "2021-06-15"),
            span("2024-06-15T00:00:00Z", "2025-06-15T00:00:00Z")
        );
        assert_eq!(
            anchored(Period::Annual, "2024-06-15T03:00:00Z", "America/New_York", "2030-06-15"),
            span("2023-06-15T00:00:00-04:00", "2024-06-15T00:00:00-04:00")
        );
    }

    #[test]
    fn a_february_29_anniversary_falls_on_february_28_in_common_years() {
        let cases = [
            ("2023-05-01T12:00:00Z", "2023-02-28", "2024-02-29"),
            ("2024-02-28T23:00:00Z", "2023-02-28", "2024-02-29"),
            ("2024-03-01T00:00:00Z", "2024-02-29", "2025-02-28"),
            ("2099-12-01T00:00:00Z", "2099-02-28", "2100-02-28"),
            ("2100-03-01T00:00:00Z", "2100-02-28", "2101-02-28"),
        ];
        for (at, start, end) in cases {
            assert_eq!(
                anchored(Period::Annual, at, "UTC", "2020-02-29"),
                span(&format!("{start}T00:00:00Z"), &format!("{end}T00:00:00Z")),
                "{at}"
            );
        }
    }

    #[test]
    fn an_instant_exactly_at_a_boundary_belongs_to_the_new_window() {
        let at = instant("2024-03-10T12:00:00Z");
        for tz in ["UTC", "America/New_York", "Asia/Kolkata"] {
            for anchor in [None, Some(date("2020-01-31"))] {
                for period in Period::ALL {
                    let window = window_containing(period, at, zone(tz), anchor);
                    let Some(end) = window.end else {
                        assert!(matches!(period, Period::AllTime | Period::Concurrent));
                        continue;
                    };
                    let next = window_containing(period, end, zone(tz), anchor);
                    assert!(!window.contains(end), "{period} {tz}");
                    assert!(next.contains(end), "{period} {tz}");
                    assert_eq!(next.start, end, "{period} {tz}");
                    let last_nanosecond = end - TimeDelta::nanoseconds(1);
                    assert_eq!(window_containing(period, last_nanosecond, zone(tz), anchor), window, "{period} {tz}");
                }
            }
        }
    }

    #[test]
    fn contains_is_half_open() {
        let day = span("2024-05-17T00:00:00Z", "2024-05-18T00:00:00Z");
        assert!(day.contains(instant("2024-05-17T00:00:00Z")));
        assert!(day.contains(instant("2024-05-17T23:59:59.999999999Z")));
        assert!(!day.contains(instant("2024-05-18T00:00:00Z")));
        assert!(!day.contains(instant("2024-05-16T23:59:59.999999999Z")));
    }

    #[test]
    fn the_counter_key_is_the_start_in_milliseconds_and_reset_the_end_in_seconds() {
        let day = window(Period::Day, "2024-05-17T13:45:12.345Z", "UTC");
        assert_eq!(day.start_ms(), 1_715_904_000_000);
        assert_eq!(day.reset_unix_seconds(), Some(1_715_990_400));
        let hour = window(Period::Hour, "2024-05-17T13:45:12.345Z", "Asia/Kolkata");
        assert_eq!(hour.start_ms(), 1_715_950_800_000);
        assert_eq!(hour.reset_unix_seconds(), Some(1_715_950_800 + 3600));
        let before_epoch = window(Period::Day, "1969-12-31T12:00:00Z", "UTC");
        assert_eq!(before_epoch.start_ms(), -86_400_000);
        assert_eq!(before_epoch.reset_unix_seconds(), Some(0));
    }

    #[test]
    fn instants_at_the_limits_of_chrono_do_not_panic() {
        let limits = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MIN_UTC + TimeDelta::days(1),
            DateTime::<Utc>::MAX_UTC - TimeDelta::days(1),
            DateTime::<Utc>::MAX_UTC,
        ];
        let zones = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Asia/Tokyo"];
        let anchors = [None, Some(date("2020-02-29")), Some(date("2020-12-31"))];
        for at in limits {
            for tz in zones {
                for anchor in anchors {
                    for period in Period::ALL {
                        let window = window_containing(period, at, zone(tz), anchor);
                        assert!(window.end.is_none_or(|end| window.start <= end));
                    }
                }
            }
        }
    }

    /// Checks one window of the sweep against the rules of its period.
    fn check_sweep_window(period: Period, at: DateTime<Utc>, tz: Tz, anchor: Option<NaiveDate>) -> Window {
        let context = format!("{period} at {at} in {tz} anchored {anchor:?}");
        let window = window_containing(period, at, tz, anchor);
        assert!(window.contains(at), "{context}: {window:?}");
        let Some(end) = window.end else {
            assert!(matches!(period, Period::AllTime | Period::Concurrent), "{context}");
            assert_eq!(window.start, DateTime::UNIX_EPOCH, "{context}");
            return window;
        };
        assert_eq!(window_containing(period, end, tz, anchor).start, end, "{context}");
        let before = window_containing(period, window.start - TimeDelta::nanoseconds(1), tz, anchor);
        assert_eq!(before.end, Some(window.start), "{context}");

        let hours = length(window).num_minutes() as f64 / 60.0;
        let (shortest, longest) = match period {
            Period::Minute => (1.0 / 60.0, 1.0 / 60.0),
            Period::Hour => (1.0, 1.0),
            Period::Day => (23.0, 25.0),
            Period::Week => (167.0, 169.0),
            Period::Month => (28.0 * 24.0 - 1.0, 31.0 * 24.0 + 1.0),
            Period::Annual => (365.0 * 24.0 - 1.0, 366.0 * 24.0 + 1.0),
            Period::AllTime | Period::Concurrent => unreachable!(),
        };
        assert!((shortest..=longest).contains(&hours), "{context}: {hours}h");
        if matches!(period, Period::Minute | Period::Hour) {
            return window;
        }

        // Calendar windows start where the wall clock turns to the boundary date: at its
        // midnight, or later only if the clock skips midnight.
        let wall = |instant: DateTime<Utc>| instant.with_timezone(&tz).naive_local();
        let first_day = wall(window.start).date();
        assert!(wall(window.start - TimeDelta::nanoseconds(1)).date() < first_day, "{context}");
        if wall(window.start).time() != NaiveTime::MIN {
            assert_eq!(tz.from_local_datetime(&first_day.and_time(NaiveTime::MIN)), MappedLocalTime::None, "{context}");
        }
        let is_last_of_month = first_day.succ_opt().unwrap().month() != first_day.month();
        let on_or_clamped = |day: u32| first_day.day() == day || (first_day.day() < day && is_last_of_month);
        match period {
            Period::Day => {}
            Period::Week => assert_eq!(first_day.weekday(), Weekday::Mon, "{context}"),
            Period::Month => {
                assert!(on_or_clamped(anchor.map_or(1, |a| a.day())), "{context}")
            }
            Period::Annual => {
                let (month, day) = anchor.map_or((1, 1), |a| (a.month(), a.day()));
                assert_eq!(first_day.month(), month, "{context}");
                assert!(on_or_clamped(day), "{context}");
            }
            Period::Minute | Period::Hour | Period::AllTime | Period::Concurrent => unreachable!(),
        }
        window
    }

    #[test]
    fn every_window_contains_its_instant_and_ends_where_the_next_begins() {
        let zones = [
            "UTC",
            "America/New_York",
            "Europe/Berlin",
            "Asia/Kolkata",
            "America/Santiago",
            "America/Havana",
            "Asia/Beirut",
            "America/Sao_Paulo",
            "Australia/Lord_Howe",
        ];
        let anchors = [
            None,
            Some(date("2020-01-29")),
            Some(date("2020-02-29")),
            Some(date("2019-11-30")),
            Some(date("2021-08-31")),
            Some(date("2030-03-15")),
        ];
        let step = TimeDelta::hours(7) + TimeDelta::minutes(13);
        let last = instant("2025-01-05T00:00:00Z");
        for tz in zones.map(zone) {
            for period in Period::ALL {
                let anchors = match period {
                    Period::Month | Period::Annual => &anchors[..],
                    _ => &anchors[..1],
                };
                for &anchor in anchors {
                    let mut at = instant("2021-12-25T00:00:00Z");
                    let mut previous: Option<Window> = None;
                    while at < last {
                        let window = check_sweep_window(period, at, tz, anchor);
                        // Windows longer than the step must tile the sweep without gaps.
                        if let Some(previous) = previous.filter(|_| !matches!(period, Period::Minute | Period::Hour)) {
                            assert!(
                                previous == window || previous.end == Some(window.start),
                                "{period} at {at} in {tz}: {previous:?} then {window:?}"
                            );
                        }
                        previous = Some(window);
                        at += step;
                    }
                }
            }
        }
    }
}
