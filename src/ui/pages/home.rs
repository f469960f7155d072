//! `/`: the overview — service status, today's events, this month's active and top customers,
//! and events over the last two weeks.

use chrono::{Datelike, Duration, TimeZone, Utc};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::charts::{bar_chart, time_chart, Series};
use crate::ui::components::{async_page, Messages, PageContext};

#[component]
pub fn HomePage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let db = context.state.engine.db();
        let counts = db.counts().await.map_err(|e| e.to_string())?;
        let project = context.project().await?;
        let now = context.state.engine.now();
        let today = now.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(now);
        let month = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(today);
        let since = today - Duration::days(13);
        let activity = db
            .activity(&project.id, today.timestamp_millis(), month.timestamp_millis(), since.timestamp_millis())
            .await
            .map_err(|e| e.to_string())?;
        let days: Vec<_> = (0..14)
            .map(|i| {
                let day = since + Duration::days(i);
                let count = activity
                    .events_per_day
                    .iter()
                    .find(|(start, _)| *start == day.timestamp_millis())
                    .map_or(0, |(_, n)| *n);
                (day, count as f64)
            })
            .collect();
        let events_chart = time_chart("Events per day", &[Series { label: "Events".into(), points: days }], 720, 260);
        let top: Vec<(String, f64)> = activity.top_customers.iter().map(|(c, n)| (c.clone(), *n as f64)).collect();
        let top_chart = bar_chart("Top customers this month (events)", &top, 720, 260);
        let kind = db.kind();
        Ok(view! {
            <Title text="Overview · Limitry"/>
            <h1>"Limitry"</h1>
            <Messages context=context.clone()/>
            <section class="card" aria-labelledby="activity-heading">
                <h2 id="activity-heading">"Activity"</h2>
                <dl class="stats">
                    <div><dt>"Events today"</dt><dd data-testid="events-today">{activity.events_today}</dd></div>
                    <div><dt>"Active customers this month"</dt><dd data-testid="active-customers">{activity.active_customers}</dd></div>
                </dl>
                <div class="chart" inner_html=events_chart></div>
                <div class="chart" inner_html=top_chart></div>
            </section>
            <section class="card" aria-labelledby="status-heading">
                <h2 id="status-heading">"Service status"</h2>
                <dl class="stats">
                    <div><dt>"Version"</dt><dd data-testid="version">{env!("CARGO_PKG_VERSION")}</dd></div>
                    <div><dt>"Database"</dt><dd data-testid="database">{kind}</dd></div>
                    <div><dt>"Customers"</dt><dd data-testid="count-customers">{counts.customers}</dd></div>
                    <div><dt>"Events"</dt><dd data-testid="count-events">{counts.events}</dd></div>
                    <div><dt>"Meters"</dt><dd data-testid="count-meters">{counts.meters}</dd></div>
                    <div><dt>"Limits"</dt><dd data-testid="count-limits">{counts.limits}</dd></div>
                </dl>
            </section>
        }
        .into_any())
    })
}
