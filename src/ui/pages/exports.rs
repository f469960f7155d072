//! `/exports`: the finance page — usage per customer and meter over a chosen range and
//! granularity, and raw events, as CSV files whose names carry the range. Plain GET forms, so
//! they work without JavaScript; a refused date comes back here beside its field.

use chrono::{Datelike, Duration, NaiveDate};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{async_page, FieldErrorMessage, FormName, Messages, PageContext};

const USAGE_FORM: &str = "usage-export";
const EVENTS_FORM: &str = "events-export";

const GRANULARITIES: [(&str, &str); 4] = [
    ("total", "One total for the range"),
    ("month", "Per month"),
    ("week", "Per week (from Monday)"),
    ("day", "Per day"),
];

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(day: NaiveDate) -> NaiveDate {
    first_of_month(first_of_month(day) + Duration::days(32))
}

/// A ready-made range: its label and the download link.
fn preset(label: &str, start: NaiveDate, end: NaiveDate, period: &str) -> impl IntoView {
    let href = format!("/exports/usage.csv?start={start}&end={end}&period={period}");
    view! { <li><a href=href>{format!("{label} ({start} to {end}, exclusive)")}</a></li> }
}

#[component]
pub fn ExportsPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let today = context.state.engine.now().date_naive();
        let this_month = first_of_month(today);
        let last_month = first_of_month(this_month - Duration::days(1));
        let start = context.value_or(USAGE_FORM, "start", this_month.to_string());
        let end = context.value_or(USAGE_FORM, "end", next_month(today).to_string());
        let period = context.value_or(USAGE_FORM, "period", "total");
        let granularities = GRANULARITIES
            .into_iter()
            .map(|(value, label)| view! { <option value=value selected=value == period>{label}</option> })
            .collect_view();
        Ok(view! {
            <Title text="Exports · Limitry"/>
            <h1>"Exports"</h1>
            <Messages context=context.clone()/>
            <section class="card" aria-labelledby="usage-export-heading">
                <h2 id="usage-export-heading">"Usage for billing"</h2>
                <p class="hint">"One row per customer, meter and period, with the customer's name and timezone. Each customer's range, days, weeks (from Monday) and months run from midnight to midnight where it lives (its own timezone, else the project's), as its limits do. The file is named after the first and the last day it covers."</p>
                <h3>"Ready-made ranges"</h3>
                <ul>
                    {preset("This month", this_month, next_month(today), "total")}
                    {preset("Last month", last_month, this_month, "total")}
                    {preset("Last 30 days, per day", today - Duration::days(29), today + Duration::days(1), "day")}
                </ul>
                <h3>"Any range"</h3>
                <form method="get" action="/exports/usage.csv">
                    <FormName name=USAGE_FORM.to_string()/>
                    <div class="pair">
                        <div>
                            <label for="usage-start">"From (inclusive)"</label>
                            <input id="usage-start" name="start" type="date" required value=start/>
                            <FieldErrorMessage context=context.clone() form=USAGE_FORM field="start"/>
                        </div>
                        <div>
                            <label for="usage-end">"Until (exclusive)"</label>
                            <input id="usage-end" name="end" type="date" required value=end/>
                            <FieldErrorMessage context=context.clone() form=USAGE_FORM field="end"/>
                        </div>
                        <div>
                            <label for="usage-period">"Granularity"</label>
                            <select id="usage-period" name="period">{granularities}</select>
                            <FieldErrorMessage context=context.clone() form=USAGE_FORM field="period"/>
                        </div>
                    </div>
                    <button type="submit">"Download usage CSV"</button>
                </form>
            </section>
            <section class="card" aria-labelledby="events-export-heading">
                <h2 id="events-export-heading">"Events"</h2>
                <form method="get" action="/exports/events.csv">
                    <FormName name=EVENTS_FORM.to_string()/>
                    <div class="pair">
                        <div>
                            <label for="events-customer">"Customer (empty: all)"</label>
                            <input id="events-customer" name="customer" value=context.value_or(EVENTS_FORM, "customer", "")/>
                            <FieldErrorMessage context=context.clone() form=EVENTS_FORM field="customer"/>
                        </div>
                        <div>
                            <label for="events-start">"From (inclusive)"</label>
                            <input id="events-start" name="start" type="date" value=context.value_or(EVENTS_FORM, "start", this_month.to_string())/>
                            <FieldErrorMessage context=context.clone() form=EVENTS_FORM field="start"/>
                        </div>
                        <div>
                            <label for="events-end">"Until (exclusive)"</label>
                            <input id="events-end" name="end" type="date" value=context.value_or(EVENTS_FORM, "end", next_month(today).to_string())/>
                            <FieldErrorMessage context=context.clone() form=EVENTS_FORM field="end"/>
                        </div>
                    </div>
                    <button type="submit">"Download events CSV"</button>
                </form>
                <p class="hint">"Ledgers are downloaded from each balance on its customer's page."</p>
            </section>
        }
        .into_any())
    })
}
