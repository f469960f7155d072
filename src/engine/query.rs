//! Meter values over arbitrary ranges, computed from raw events: reporting, never the check path.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::events::EventFilter;
use crate::db::{Db, DbResult};
use crate::domain::meters::{Accumulator, Meter};
use crate::domain::quantity::Total;
use crate::domain::windows::{window_containing, Period};

/// Bucket size of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowSize {
    Hour,
    Day,
}

impl WindowSize {
    pub fn duration(self) -> Duration {
        match self {
            WindowSize::Hour => Duration::hours(1),
            WindowSize::Day => Duration::days(1),
        }
    }

    /// Most buckets one query may ask for.
    pub const MAX_BUCKETS: i64 = 5000;
}

/// A validated meter query.
pub struct MeterQuery {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Internal id of the only customer to count, if any.
    pub customer_id: Option<String>,
    pub dimensions: BTreeMap<String, String>,
    /// Dimension keys to group by; `customerId` groups by customer.
    pub group_by: Vec<String>,
    pub window_size: Option<WindowSize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterQueryResult {
    pub meter_id: String,
    pub meter_name: String,
    pub aggregation: crate::domain::meters::Aggregation,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    /// The meter's value over the whole range and every group.
    #[schema(value_type = f64)]
    pub value: Total,
    /// One entry per group (a single entry with an empty `group` when not grouping).
    pub groups: Vec<GroupValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupValue {
    pub group: BTreeMap<String, String>,
    #[schema(value_type = f64)]
    pub value: Total,
    /// Present with `windowSize`: every bucket of the range, empty ones at zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesPoint>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[schema(value_type = f64)]
    pub value: Total,
}

struct GroupAccumulator {
    total: Accumulator,
    buckets: BTreeMap<i64, Accumulator>,
}

/// Evaluates a meter over a range by scanning its events once; day buckets are UTC days.
pub async fn query_meter(db: &Db, project_id: &str, meter: &Meter, query: &MeterQuery) -> DbResult<MeterQueryResult> {
    query_meter_in_zone(db, project_id, meter, query, Tz::UTC).await
}

/// [`query_meter`] with day buckets from midnight to midnight in `zone` (a customer's days,
/// as its limits count them; 23 or 25 hours across a daylight-saving change). Hours stay
/// clock hours.
pub async fn query_meter_in_zone(
    db: &Db,
    project_id: &str,
    meter: &Meter,
    query: &MeterQuery,
    zone: Tz,
) -> DbResult<MeterQueryResult> {
    let filter = EventFilter {
        customer_id: query.customer_id.as_deref().unwrap_or(""),
        event_type: meter.event_filter.event_type.as_deref().unwrap_or(""),
        start_ms: query.start.timestamp_millis(),
        end_ms: query.end.timestamp_millis(),
    };
    let mut total = Accumulator::new(meter.aggregation);
    let mut groups: BTreeMap<Vec<String>, GroupAccumulator> = BTreeMap::new();
    db.scan_events(project_id, &filter, |event| {
        if !meter.matches(&event.event_type, &event.dimensions)
            || !query.dimensions.iter().all(|(k, v)| event.dimensions.get(k) == Some(v))
        {
            return;
        }
        let Some(value) = meter.contribution(&event.quantities) else {
            return;
        };
        let at = event.occurred_at.timestamp_millis();
        total.add(value, at);
        let key: Vec<String> = query
            .group_by
            .iter()
            .map(|g| match g.as_str() {
                "customerId" => event.customer_external_id.clone(),
                dimension => event.dimensions.get(dimension).cloned().unwrap_or_default(),
            })
            .collect();
        let group = groups.entry(key).or_insert_with(|| GroupAccumulator {
            total: Accumulator::new(meter.aggregation),
            buckets: BTreeMap::new(),
        });
        group.total.add(value, at);
        if let Some(size) = query.window_size {
            let bucket = bucket_start(size, event.occurred_at, zone).timestamp_millis();
            group.buckets.entry(bucket).or_insert_with(|| Accumulator::new(meter.aggregation)).add(value, at);
        }
    })
    .await?;
    if groups.is_empty() && query.group_by.is_empty() {
        groups.insert(
            Vec::new(),
            GroupAccumulator { total: Accumulator::new(meter.aggregation), buckets: BTreeMap::new() },
        );
    }
    let groups = groups
        .into_iter()
        .map(|(key, group)| GroupValue {
            group: query.group_by.iter().cloned().zip(key).collect(),
            value: group.total.value(),
            series: query.window_size.map(|size| series(query.start, query.end, size, zone, &group.buckets)),
        })
        .collect();
    Ok(MeterQueryResult {
        meter_id: meter.id.clone(),
        meter_name: meter.name.clone(),
        aggregation: meter.aggregation,
        start_date: query.start,
        end_date: query.end,
        value: total.value(),
        groups,
    })
}

/// The start of the bucket holding `at`.
fn bucket_start(size: WindowSize, at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    match size {
        WindowSize::Hour => at.duration_trunc(size.duration()).unwrap_or(at),
        WindowSize::Day => window_containing(Period::Day, at, zone, None).start,
    }
}

fn series(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    size: WindowSize,
    zone: Tz,
    buckets: &BTreeMap<i64, Accumulator>,
) -> Vec<SeriesPoint> {
    let mut at = bucket_start(size, start, zone);
    let mut points = Vec::new();
    while at < end {
        let next = match size {
            WindowSize::Hour => at + size.duration(),
            WindowSize::Day => window_containing(Period::Day, at, zone, None).end.unwrap_or(end),
        };
        let value = buckets.get(&at.timestamp_millis()).map_or(Total::ZERO, Accumulator::value);
        points.push(SeriesPoint { start: at, end: next, value });
        if next <= at {
            break;
        }
        at = next;
    }
    points
}

/// How a usage summary splits its date range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryPeriod {
    Day,
    Week,
    Month,
    /// The whole range as one period.
    Total,
}

impl SummaryPeriod {
    pub fn parse(text: &str) -> Option<SummaryPeriod> {
        match text {
            "day" => Some(SummaryPeriod::Day),
            "week" => Some(SummaryPeriod::Week),
            "month" => Some(SummaryPeriod::Month),
            "total" => Some(SummaryPeriod::Total),
            _ => None,
        }
    }

    /// Most periods one summary may span.
    pub const MAX_PERIODS: usize = 400;
}

/// One customer's value of one meter in one period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummaryRow {
    /// The customer's externalId.
    pub customer_id: String,
    pub meter_id: String,
    pub meter_name: String,
    pub aggregation: crate::domain::meters::Aggregation,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    #[schema(value_type = f64)]
    pub value: Total,
}

/// One period of a summary: `[start, end)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// The UTC periods that tile `[start, end)`, the last one cut at `end`; `None` if too many.
pub fn summary_periods(start: DateTime<Utc>, end: DateTime<Utc>, period: SummaryPeriod) -> Option<Vec<Span>> {
    let window_period = match period {
        SummaryPeriod::Total => return Some(vec![(start, end)]),
        SummaryPeriod::Day => Period::Day,
        SummaryPeriod::Week => Period::Week,
        SummaryPeriod::Month => Period::Month,
    };
    let mut periods = Vec::new();
    let mut at = start;
    while at < end {
        let window = window_containing(window_period, at, chrono_tz::Tz::UTC, None);
        let until = window.end.unwrap_or(end).min(end);
        periods.push((at, until));
        if periods.len() > SummaryPeriod::MAX_PERIODS {
            return None;
        }
        at = until;
    }
    Some(periods)
}

/// Totals per customer × meter for each period of the range, customers with no usage left out.
pub async fn usage_summary(db: &Db, project_id: &str, periods: &[Span]) -> DbResult<Vec<UsageSummaryRow>> {
    let meters = db.all_meters(project_id).await?;
    let mut rows = Vec::new();
    for &(start, end) in periods {
        for meter in &meters {
            let query = MeterQuery {
                start,
                end,
                customer_id: None,
                dimensions: BTreeMap::new(),
                group_by: vec!["customerId".to_string()],
                window_size: None,
            };
            let result = query_meter(db, project_id, meter, &query).await?;
            for group in result.groups {
                let Some(customer) = group.group.get("customerId") else { continue };
                rows.push(UsageSummaryRow {
                    customer_id: customer.clone(),
                    meter_id: meter.id.clone(),
                    meter_name: meter.name.clone(),
                    aggregation: meter.aggregation,
                    period_start: start,
                    period_end: end,
                    value: group.value,
                });
            }
        }
    }
    Ok(rows)
}
