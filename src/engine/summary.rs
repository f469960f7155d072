//! Usage per customer in the customer's own calendar, for the finance export: a range given
//! as dates runs from midnight to midnight where each customer lives (its timezone, else the
//! project's), and its days, weeks (from Monday) and months start at local midnight, as the
//! windows of the customer's limits do. Computed from raw events, one scan per meter.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::query::{Span, SummaryPeriod};
use crate::db::events::EventFilter;
use crate::db::projects::Project;
use crate::db::{Db, DbResult};
use crate::domain::meters::{Accumulator, Aggregation};
use crate::domain::quantity::Total;
use crate::domain::windows::{window_containing, Period};
use crate::domain::FieldError;

/// One end of a summary range as it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeBound {
    /// A calendar date: midnight of that day in each customer's timezone.
    Date(NaiveDate),
    /// An exact instant, the same for every customer.
    Instant(DateTime<Utc>),
}

impl RangeBound {
    /// `YYYY-MM-DD` or an RFC 3339 timestamp; refused naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<RangeBound, FieldError> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(RangeBound::Instant(at.to_utc()));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(RangeBound::Date)
            .map_err(|_| FieldError::invalid(field, "must be an RFC 3339 timestamp or a YYYY-MM-DD date"))
    }

    /// The instant this bound names in `zone`.
    pub fn in_zone(self, zone: Tz) -> DateTime<Utc> {
        match self {
            RangeBound::Instant(at) => at,
            RangeBound::Date(date) => local_midnight(date, zone),
        }
    }
}

/// The first instant of `date` in `zone`: its midnight, or where the clock skips midnight,
/// the first instant after it (the day windows' own rule, which this asks for).
fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    // Noon is never skipped nor repeated; read with its own offset it lies on `date`.
    let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN));
    let offset = zone.offset_from_utc_datetime(&noon).fix();
    let inside = noon.checked_sub_offset(offset).map_or_else(|| noon.and_utc(), |utc| utc.and_utc());
    window_containing(Period::Day, inside, zone, None).start
}

/// A checked summary range: `[start, end)` and how to split it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRange {
    pub start: RangeBound,
    pub end: RangeBound,
    pub period: SummaryPeriod,
}

impl SummaryRange {
    /// Checks a range as typed; `names` are the fields' names for errors (start, end, period).
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        period: Option<&str>,
        names: [&str; 3],
    ) -> Result<SummaryRange, FieldError> {
        let [start_name, end_name, period_name] = names;
        let start = RangeBound::parse(start.ok_or_else(|| FieldError::missing(start_name))?, start_name)?;
        let end = RangeBound::parse(end.ok_or_else(|| FieldError::missing(end_name))?, end_name)?;
        // Read in UTC: zones move both ends alike, except for an instant against a date,
        // which must then be after the start wherever the customer lives.
        let ends_after_start = match (start, end) {
            (RangeBound::Date(start), RangeBound::Date(end)) => end > start,
            _ => [chrono_tz::Etc::GMTMinus14, chrono_tz::Etc::GMTPlus12]
                .into_iter()
                .all(|zone| end.in_zone(zone) > start.in_zone(zone)),
        };
        if !ends_after_start {
            return Err(FieldError::invalid(end_name, "must be after the start"));
        }
        let period = match period {
            None => SummaryPeriod::Total,
            Some(text) => SummaryPeriod::parse(text)
                .ok_or_else(|| FieldError::invalid(period_name, "must be day, week, month or total"))?,
        };
        let range = SummaryRange { start, end, period };
        if range.spans(Tz::UTC).len() > SummaryPeriod::MAX_PERIODS {
            return Err(FieldError::invalid(
                period_name,
                format!("the range holds more than {} periods", SummaryPeriod::MAX_PERIODS),
            ));
        }
        Ok(range)
    }

    /// The periods that tile the range where `zone` keeps time, the last cut at its end. At
    /// most two more than in UTC (a shifted instant may start or end a period early), so it
    /// stays bounded by what `parse` allowed.
    pub fn spans(&self, zone: Tz) -> Vec<Span> {
        let (start, end) = (self.start.in_zone(zone), self.end.in_zone(zone));
        let period = match self.period {
            SummaryPeriod::Total => return vec![(start, end)],
            SummaryPeriod::Day => Period::Day,
            SummaryPeriod::Week => Period::Week,
            SummaryPeriod::Month => Period::Month,
        };
        let mut spans = Vec::new();
        let mut at = start;
        while at < end && spans.len() <= SummaryPeriod::MAX_PERIODS + 2 {
            let until = window_containing(period, at, zone, None).end.unwrap_or(end).min(end);
            spans.push((at, until));
            at = until;
        }
        spans
    }

    /// The first and the last day the range covers, as a file name shows them
    /// (`2026-11-01`, `2026-11-30` for November): the end is exclusive.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        let first = match self.start {
            RangeBound::Date(date) => date,
            RangeBound::Instant(at) => at.date_naive(),
        };
        let last = match self.end {
            RangeBound::Date(date) => date.pred_opt().unwrap_or(date),
            RangeBound::Instant(at) => (at - Duration::milliseconds(1)).date_naive(),
        };
        (first, last.max(first))
    }
}

/// One customer's value of one meter in one of its periods.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerUsageRow {
    pub customer_external_id: String,
    pub customer_name: Option<String>,
    /// The zone the customer's periods follow.
    pub timezone: Tz,
    pub meter_id: String,
    pub meter_name: String,
    pub aggregation: Aggregation,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub value: Total,
}

/// Customers read per query while gathering their timezones.
const CUSTOMERS_PER_PAGE: i64 = 1000;

struct Whom {
    name: Option<String>,
    zone: Tz,
}

/// Totals per customer × meter × period of the customer's own calendar, ordered by customer,
/// then meter, then period; customers without usage of a meter are left out.
pub async fn usage_by_customer_calendar(
    db: &Db,
    project: &Project,
    range: &SummaryRange,
) -> DbResult<Vec<CustomerUsageRow>> {
    let mut customers: HashMap<String, Whom> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = db.customers_page(&project.id, after.as_deref(), None, CUSTOMERS_PER_PAGE).await?;
        let full = page.len() as i64 == CUSTOMERS_PER_PAGE;
        after = page.last().map(|c| c.id.clone());
        for customer in page {
            let zone = customer.window_zone(project.timezone);
            customers.insert(customer.id, Whom { name: customer.name, zone });
        }
        if !full {
            break;
        }
    }
    let mut spans: HashMap<Tz, Vec<Span>> = HashMap::new();
    for zone in customers.values().map(|c| c.zone).chain([project.timezone]) {
        spans.entry(zone).or_insert_with(|| range.spans(zone));
    }
    let Some(scan_start) = spans.values().filter_map(|s| s.first().map(|span| span.0)).min() else {
        return Ok(Vec::new());
    };
    let scan_end = spans.values().filter_map(|s| s.last().map(|span| span.1)).max().unwrap_or(scan_start);

    // (customer external id, meter position, period position) → the customer's id and the
    // value so far.
    let mut totals: BTreeMap<(String, usize, usize), (String, Accumulator)> = BTreeMap::new();
    let meters = db.all_meters(&project.id).await?;
    for (position, meter) in meters.iter().enumerate() {
        let filter = EventFilter {
            customer_id: "",
            event_type: meter.event_filter.event_type.as_deref().unwrap_or(""),
            start_ms: scan_start.timestamp_millis(),
            end_ms: scan_end.timestamp_millis(),
        };
        db.scan_events(&project.id, &filter, |event| {
            if !meter.matches(&event.event_type, &event.dimensions) {
                return;
            }
            let Some(value) = meter.contribution(&event.quantities) else { return };
            // A customer created after its list was read keeps the project's calendar.
            let zone = customers.get(&event.customer_id).map_or(project.timezone, |c| c.zone);
            let Some(period) = spans.get(&zone).and_then(|s| span_containing(s, event.occurred_at)) else { return };
            let at = event.occurred_at.timestamp_millis();
            totals
                .entry((event.customer_external_id, position, period))
                .or_insert_with(|| (event.customer_id, Accumulator::new(meter.aggregation)))
                .1
                .add(value, at);
        })
        .await?;
    }
    let rows = totals
        .into_iter()
        .filter_map(|((external_id, position, period), (customer_id, total))| {
            let meter = meters.get(position)?;
            let whom = customers.get(&customer_id);
            let zone = whom.map_or(project.timezone, |c| c.zone);
            let (period_start, period_end) = *spans.get(&zone)?.get(period)?;
            Some(CustomerUsageRow {
                customer_name: whom.and_then(|c| c.name.clone()),
                customer_external_id: external_id,
                timezone: zone,
                meter_id: meter.id.clone(),
                meter_name: meter.name.clone(),
                aggregation: meter.aggregation,
                period_start,
                period_end,
                value: total.value(),
            })
        })
        .collect();
    Ok(rows)
}

/// The position of the span holding `at`, if any (spans are sorted and adjacent).
fn span_containing(spans: &[Span], at: DateTime<Utc>) -> Option<usize> {
    let after = spans.partition_point(|(start, _)| *start <= at);
    let position = after.checked_sub(1)?;
    (at < spans[position].1).then_some(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Tokyo;

    fn date(text: &str) -> RangeBound {
        RangeBound::parse(text, "start").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn range(start: &str, end: &str, period: &str) -> SummaryRange {
        SummaryRange::parse(Some(start), Some(end), Some(period), ["start", "end", "period"]).unwrap()
    }

    #[test]
    fn a_date_is_midnight_where_the_customer_lives() {
        assert_eq!(date("2026-11-01").in_zone(Tz::UTC), at("2026-11-01T00:00:00Z"));
        assert_eq!(date("2026-11-01").in_zone(New_York), at("2026-11-01T04:00:00Z"));
        assert_eq!(date("2026-11-02").in_zone(New_York), at("2026-11-02T05:00:00Z"), "after the clocks went back");
        assert_eq!(date("2026-11-01").in_zone(Tokyo), at("2026-10-31T15:00:00Z"));
        // Where the clock skips midnight, the day starts at the first instant after it.
        assert_eq!(date("2026-09-06").in_zone(chrono_tz::America::Santiago), at("2026-09-06T04:00:00Z"));
        assert_eq!(date("2026-11-01T10:00:00+01:00").in_zone(Tokyo), at("2026-11-01T09:00:00Z"));
    }

    #[test]
    fn months_follow_the_customers_calendar() {
        let months = range("2026-10-01", "2026-12-01", "month");
        assert_eq!(
            months.spans(New_York),
            vec![
                (at("2026-10-01T04:00:00Z"), at("2026-11-01T04:00:00Z")),
                (at("2026-11-01T04:00:00Z"), at("2026-12-01T05:00:00Z")),
            ]
        );
        assert_eq!(months.spans(Tz::UTC)[1], (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")));
        let total = range("2026-11-01", "2026-12-01", "total");
        assert_eq!(total.spans(Tokyo), vec![(at("2026-10-31T15:00:00Z"), at("2026-11-30T15:00:00Z"))]);
    }

    #[test]
    fn weeks_start_on_monday_and_the_ends_are_cut_at_the_range() {
        // 2026-11-04 is a Wednesday.
        let weeks = range("2026-11-04", "2026-11-17", "week");
        assert_eq!(
            weeks.spans(Tz::UTC),
            vec![
                (at("2026-11-04T00:00:00Z"), at("2026-11-09T00:00:00Z")),
                (at("2026-11-09T00:00:00Z"), at("2026-11-16T00:00:00Z")),
                (at("2026-11-16T00:00:00Z"), at("2026-11-17T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn the_range_is_checked_like_the_api_summary_checks_it() {
        let parse = |start, end, period| SummaryRange::parse(start, end, period, ["start", "end", "period"]);
        assert_eq!(parse(None, Some("2026-11-01"), None).unwrap_err(), FieldError::missing("start"));
        assert_eq!(parse(Some("2026-11-01"), Some("2026-11-01"), None).unwrap_err().field(), "end");
        assert_eq!(parse(Some("2026-11-01"), Some("soon"), None).unwrap_err().field(), "end");
        assert_eq!(parse(Some("2026-11-01"), Some("2026-12-01"), Some("year")).unwrap_err().field(), "period");
        assert_eq!(parse(Some("2020-01-01"), Some("2026-01-01"), Some("day")).unwrap_err().field(), "period");
        // An instant against a date must be later wherever the customer lives.
        assert!(parse(Some("2026-11-01"), Some("2026-11-01T06:00:00Z"), None).is_err());
        assert!(parse(Some("2026-11-01"), Some("2026-11-02T06:00:00Z"), None).is_ok());
        assert_eq!(range("2026-11-01", "2026-12-01", "total").period, SummaryPeriod::Total);
    }

    #[test]
    fn the_days_of_a_range_name_its_last_day_not_the_exclusive_end() {
        assert_eq!(range("2026-11-01", "2026-12-01", "month").days(), (date_of("2026-11-01"), date_of("2026-11-30")));
        assert_eq!(range("2026-11-01", "2026-11-02", "day").days(), (date_of("2026-11-01"), date_of("2026-11-01")));
        let instants = range("2026-11-01T08:00:00Z", "2026-11-03T00:00:00Z", "total");
        assert_eq!(instants.days(), (date_of("2026-11-01"), date_of("2026-11-02")));
    }

    fn date_of(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn an_instant_finds_the_span_that_holds_it() {
        let spans = range("2026-11-01", "2026-11-04", "day").spans(Tz::UTC);
        assert_eq!(span_containing(&spans, at("2026-11-01T00:00:00Z")), Some(0));
        assert_eq!(span_containing(&spans, at("2026-11-02T23:59:59Z")), Some(1));
        assert_eq!(span_containing(&spans, at("2026-11-04T00:00:00Z")), None);
        assert_eq!(span_containing(&spans, at("2026-10-31T23:59:59Z")), None);
    }
}
