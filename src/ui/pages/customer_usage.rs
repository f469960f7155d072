//! The "Usage" section of a customer page: one chart per meter over a chosen range, per hour
//! or per day (days from midnight where the customer lives, as its limits count them),
//! optionally broken down by a dimension such as `model` (the meter query's `groupBy`). The
//! customer's limit of the same period is drawn as a dashed line, the unit reads up the value
//! axis, and the bucket still filling is marked "so far". The controls are a GET form, so they
//! work without JavaScript and a chart can be linked to. Each chart is drawn twice, wide for
//! screens and narrow for phones (CSS shows one), so its text stays legible on a phone
//! instead of shrinking with a wide drawing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use leptos::prelude::*;

use crate::charts::{time_chart_with, Series, Threshold, TimeChartOptions};
use crate::db::events::EventFilter;
use crate::db::projects::Project;
use crate::domain::customers::Customer;
use crate::domain::is_valid_key;
use crate::domain::limits::Limit;
use crate::domain::meters::{Aggregation, Meter};
use crate::domain::quantity::Total;
use crate::domain::windows::{window_containing, Period};
use crate::engine::query::{query_meter_in_zone, GroupValue, MeterQuery, WindowSize};
use crate::engine::summary::RangeBound;
use crate::ui::components::PageContext;
use crate::ui::format::{meter_unit, period_phrase, rolling_phrase, with_unit};
use crate::ui::standing::LimitView;

/// Days shown when the operator chose none: the last 30 days per day, the last 2 per hour.
const DEFAULT_DAYS: i64 = 30;
const DEFAULT_HOURLY_DAYS: i64 = 2;
/// The longest ranges, in days, a chart draws.
const MAX_DAILY_DAYS: i64 = 366;
const MAX_HOURLY_DAYS: i64 = 31;
/// Groups of a breakdown drawn as lines of their own (the palette's size); the rest of a
/// sum or count is drawn as one "other" line.
const MAX_GROUPS: usize = 5;
/// Recent events of the customer whose dimension keys are offered for a breakdown.
const DIMENSION_SAMPLE: i64 = 500;
const WIDE: (u32, u32) = (720, 280);
const NARROW: (u32, u32) = (330, 260);

/// What the controls asked for, as typed, and what the charts show.
struct Choice {
    from: String,
    to: String,
    granularity: &'static str,
    breakdown: String,
    /// (field, message) for each refused control; the charts then show the defaults.
    errors: Vec<(&'static str, String)>,
    first_day: NaiveDate,
    last_day: NaiveDate,
    size: WindowSize,
    group_by: Option<String>,
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    match RangeBound::parse(text, "") {
        Ok(RangeBound::Date(day)) => Some(day),
        _ => None,
    }
}

/// Reads the controls from the query; `today` is the customer's.
fn choose(context: &PageContext, today: NaiveDate) -> Choice {
    let mut errors = Vec::new();
    let (granularity, size) = match context.param("granularity").as_deref() {
        None | Some("day") => ("day", WindowSize::Day),
        Some("hour") => ("hour", WindowSize::Hour),
        Some(_) => {
            errors.push(("granularity", "Granularity must be per hour or per day.".to_string()));
            ("day", WindowSize::Day)
        }
    };
    let default_days = if size == WindowSize::Hour { DEFAULT_HOURLY_DAYS } else { DEFAULT_DAYS };
    let default_from = today - Duration::days(default_days - 1);
    let from_text = context.param("from");
    let to_text = context.param("to");
    let mut day = |text: &Option<String>, field: &'static str, label: &str, default: NaiveDate| match text {
        None => default,
        Some(text) => parse_day(text).unwrap_or_else(|| {
            errors.push((field, format!("{label} must be a date such as {today}.")));
            default
        }),
    };
    let mut first_day = day(&from_text, "from", "From", default_from);
    let mut last_day = day(&to_text, "to", "To", today);
    let max_days = if size == WindowSize::Hour { MAX_HOURLY_DAYS } else { MAX_DAILY_DAYS };
    if last_day < first_day {
        errors.push(("to", "To must be the same day as From or later.".to_string()));
    } else if (last_day - first_day).num_days() >= max_days {
        errors.push(("to", format!("Pick at most {MAX_HOURLY_DAYS} days per hour, or {MAX_DAILY_DAYS} days per day.")));
    }
    if errors.iter().any(|(field, _)| *field == "to" || *field == "from") {
        (first_day, last_day) = (default_from, today);
    }
    let breakdown = context.param("breakdown").unwrap_or_default();
    let group_by = match breakdown.as_str() {
        "" => None,
        key if is_valid_key(key) => Some(key.to_string()),
        _ => {
            errors.push(("breakdown", "Break down by must be a dimension key such as model.".to_string()));
            None
        }
    };
    Choice {
        from: from_text.unwrap_or_else(|| first_day.to_string()),
        to: to_text.unwrap_or_else(|| last_day.to_string()),
        granularity,
        breakdown,
        errors,
        first_day,
        last_day,
        size,
        group_by,
    }
}

/// The dimension keys a breakdown may use: those of the customer's recent events and of the
/// limits' filters.
async fn dimension_keys(
    context: &PageContext,
    project: &Project,
    customer: &Customer,
    limits: &HashMap<String, Limit>,
) -> Result<BTreeSet<String>, String> {
    let filter = EventFilter { customer_id: &customer.id, event_type: "", start_ms: i64::MIN, end_ms: i64::MAX };
    let events = context
        .state
        .engine
        .db()
        .events_page(&project.id, &filter, None, DIMENSION_SAMPLE)
        .await
        .map_err(|e| e.to_string())?;
    let mut keys: BTreeSet<String> = events.into_iter().flat_map(|e| e.dimensions.into_keys()).collect();
    keys.extend(limits.values().flat_map(|l| l.dimension_filters.keys().cloned()));
    Ok(keys)
}

/// The period a limit must have to be drawn on a chart of `size` buckets.
fn period_of(size: WindowSize) -> Period {
    match size {
        WindowSize::Hour => Period::Hour,
        WindowSize::Day => Period::Day,
    }
}

fn bucket_word(size: WindowSize) -> &'static str {
    match size {
        WindowSize::Hour => "hour",
        WindowSize::Day => "day",
    }
}

/// A limit as a chart's legend and notes name it: "Daily tokens: 60,000 tokens per day".
fn limit_label(view: &LimitView, limit: Option<&Limit>) -> String {
    let status = &view.status;
    let filters = limit
        .map(|l| l.dimension_filters.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>())
        .unwrap_or_default();
    let only = if filters.is_empty() { String::new() } else { format!(", only {}", filters.join(", ")) };
    let period = if view.rolling { rolling_phrase(status.period) } else { period_phrase(status.period) };
    format!("{}: {} {period}{only}", status.name, with_unit(status.limit, &view.unit))
}

/// The lines of one meter's chart: the whole usage, or one line per group of a breakdown
/// (the biggest first), the rest folded into "other" where adding them up means something.
fn lines(meter: &Meter, groups: Vec<GroupValue>, group_by: Option<&str>) -> (Vec<Series>, usize) {
    let points = |group: &GroupValue| -> Vec<(DateTime<Utc>, Total)> {
        group.series.as_ref().map(|s| s.iter().map(|p| (p.start, p.value)).collect()).unwrap_or_default()
    };
    let as_series = |label: String, points: Vec<(DateTime<Utc>, Total)>| Series {
        label,
        points: points.into_iter().map(|(at, value)| (at, value.as_f64())).collect(),
    };
    let Some(key) = group_by else {
        return (groups.first().map(|g| vec![as_series(meter.name.clone(), points(g))]).unwrap_or_default(), 0);
    };
    let mut groups = groups;
    groups.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.group.cmp(&b.group)));
    let rest = groups.split_off(groups.len().min(MAX_GROUPS));
    let mut series: Vec<Series> = groups
        .iter()
        .map(|g| {
            let value = g.group.get(key).filter(|v| !v.is_empty());
            let label = value.map_or_else(|| format!("no {key}"), |v| format!("{key} = {v}"));
            as_series(label, points(g))
        })
        .collect();
    let additive = matches!(meter.aggregation, Aggregation::Sum | Aggregation::Count);
    if rest.is_empty() || !additive {
        return (series, rest.len());
    }
    let mut other: BTreeMap<DateTime<Utc>, Total> = BTreeMap::new();
    for group in &rest {
        for (at, value) in points(group) {
            let sum = other.entry(at).or_default();
            *sum = Total(sum.0 + value.0);
        }
    }
    series.push(as_series(format!("{} other {key} values", rest.len()), other.into_iter().collect()));
    (series, 0)
}

/// The "Usage" section of the customer page.
pub async fn usage_section(
    context: &PageContext,
    project: &Project,
    customer: &Customer,
    limits: &HashMap<String, Limit>,
    views: &[LimitView],
) -> Result<AnyView, String> {
    let db = context.state.engine.db();
    let now = context.state.engine.now();
    let zone: Tz = customer.window_zone(project.timezone);
    let today = now.with_timezone(&zone).date_naive();
    let choice = choose(context, today);
    let start = RangeBound::Date(choice.first_day).in_zone(zone);
    let end = RangeBound::Date(choice.last_day + Duration::days(1)).in_zone(zone);
    let filling = match choice.size {
        WindowSize::Hour => window_containing(Period::Hour, now, zone, None).start,
        WindowSize::Day => window_containing(Period::Day, now, zone, None).start,
    };
    let partial_from = (start <= now && now < end).then_some(filling);
    let word = bucket_word(choice.size);
    let keys = dimension_keys(context, project, customer, limits).await?;

    let mut charts = Vec::new();
    let mut meters = db.all_meters(&project.id).await.map_err(|e| e.to_string())?;
    meters.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    for meter in &meters {
        let query = MeterQuery {
            start,
            end,
            customer_id: Some(customer.id.clone()),
            dimensions: Default::default(),
            group_by: choice.group_by.iter().cloned().collect(),
            window_size: Some(choice.size),
        };
        let result = query_meter_in_zone(db, &project.id, meter, &query, zone).await.map_err(|e| e.to_string())?;
        let (series, left_out) = lines(meter, result.groups, choice.group_by.as_deref());
        let own: Vec<&LimitView> = views.iter().filter(|v| v.status.meter_id == meter.id).collect();
        let drawn = own
            .iter()
            .filter(|v| v.status.period == period_of(choice.size))
            .min_by(|a, b| a.status.limit.cmp(&b.status.limit))
            .copied();
        let unit = meter_unit(meter);
        let options = TimeChartOptions {
            unit: Some(format!("{unit} per {word}")),
            threshold: drawn.map(|v| Threshold {
                label: format!("Limit {}", limit_label(v, limits.get(&v.status.id))),
                value: Total::from(v.status.limit).as_f64(),
            }),
            partial_from,
            partial_label: if choice.size == WindowSize::Day {
                "today so far".into()
            } else {
                "this hour so far".into()
            },
            zone: Some(zone),
        };
        let by = choice.group_by.as_ref().map(|k| format!(" by {k}")).unwrap_or_default();
        let title = format!("{} per {word}{by}", meter.name);
        let wide = time_chart_with(&title, &series, &options, WIDE.0, WIDE.1);
        let narrow = time_chart_with(&title, &series, &options, NARROW.0, NARROW.1);
        let not_drawn: Vec<String> = own
            .iter()
            .filter(|v| drawn.is_none_or(|d| d.status.id != v.status.id))
            .map(|v| limit_label(v, limits.get(&v.status.id)))
            .collect();
        let notes = (!not_drawn.is_empty()).then(|| {
            view! {
                <p class="hint">{format!(
                    "Also limited (not drawn: the chart shows usage per {word}): {}.",
                    not_drawn.join("; ")
                )}</p>
            }
        });
        let left_out = (left_out > 0).then(|| {
            view! { <p class="hint">{format!("{left_out} smaller groups are not drawn: a {} of them cannot be added up.", meter.aggregation.as_str())}</p> }
        });
        charts.push(view! {
            <figure class="usage-chart" data-testid="usage-chart">
                <div class="chart chart-wide" inner_html=wide></div>
                <div class="chart chart-narrow" inner_html=narrow></div>
                {notes}
                {left_out}
            </figure>
        });
    }

    let error = |field: &'static str| {
        choice.errors.iter().find(|(f, _)| *f == field).map(|(_, message)| {
            view! { <p class="field-error" role="alert" id=format!("usage-{field}-error")>{message.clone()}</p> }
        })
    };
    let mut offered = keys;
    if let Some(key) = &choice.group_by {
        offered.insert(key.clone());
    }
    let breakdowns = offered
        .into_iter()
        .map(|key| view! { <option value=key.clone() selected=key == choice.breakdown>{key.clone()}</option> })
        .collect_view();
    let zone_note = format!("Days run from midnight to midnight in {} (the customer's time).", zone.name());
    Ok(view! {
        <section class="card" id="usage" aria-labelledby="usage-heading">
            <h2 id="usage-heading">"Usage"</h2>
            <form method="get" action=format!("/customers/{}#usage", customer.id) class="filters" aria-label="Chart range">
                <div>
                    <label for="usage-from">"From"</label>
                    <input id="usage-from" name="from" type="date" value=choice.from.clone()/>
                    {error("from")}
                </div>
                <div>
                    <label for="usage-to">"To (inclusive)"</label>
                    <input id="usage-to" name="to" type="date" value=choice.to.clone()/>
                    {error("to")}
                </div>
                <div>
                    <label for="usage-granularity">"Granularity"</label>
                    <select id="usage-granularity" name="granularity">
                        <option value="day" selected=choice.granularity == "day">"Per day"</option>
                        <option value="hour" selected=choice.granularity == "hour">"Per hour"</option>
                    </select>
                    {error("granularity")}
                </div>
                <div>
                    <label for="usage-breakdown">"Break down by"</label>
                    <select id="usage-breakdown" name="breakdown">
                        <option value="" selected=choice.breakdown.is_empty()>"No breakdown"</option>
                        {breakdowns}
                    </select>
                    {error("breakdown")}
                </div>
                <div><button type="submit">"Show usage"</button></div>
            </form>
            <p class="hint">{zone_note}</p>
            {charts}
        </section>
    }
    .into_any())
}
