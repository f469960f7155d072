//! `/`: the overview — first what needs the operator now (customers over or near a limit,
//! balances below their low threshold, failing webhook endpoints, recent alerts, each linking
//! to where to act), then today's events, this month's active and top customers, events over
//! the last two weeks, and service status.

use chrono::{Datelike, Duration, TimeZone, Utc};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::charts::{bar_chart, time_chart, Series};
use crate::db::attention::DeliveryHealth;
use crate::domain::webhooks::WebhookEndpoint;
use crate::ui::components::{async_page, Messages, PageContext};
use crate::ui::format::{grouped, time_since};
use crate::ui::standing::{balance_text, customer_standings, is_low, Standing};

/// Rows each list of the overview shows before linking to the full list.
const ATTENTION_ROWS: usize = 10;
const RECENT_ALERTS: i64 = 10;

#[component]
pub fn HomePage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let db = context.state.engine.db();
        let project = context.project().await?;
        let counts = db.project_counts(&project.id).await.map_err(|e| e.to_string())?;
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
        let attention = attention(&context, now).await?;
        Ok(view! {
            <Title text="Overview · Limitry"/>
            <h1>"Limitry"</h1>
            <Messages context=context.clone()/>
            {attention}
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

/// "What needs me now": the lists an operator acts on, each row linking to where to act.
async fn attention(context: &PageContext, now: chrono::DateTime<Utc>) -> Result<AnyView, String> {
    let project = context.project().await?;
    let engine = &context.state.engine;
    let db = engine.db();
    let standings = customer_standings(engine, &project, None).await?;
    let over: Vec<_> = standings.iter().filter(|s| s.standing() == Standing::Over).collect();
    let near: Vec<_> = standings.iter().filter(|s| s.standing() == Standing::Near).collect();
    let low: Vec<_> =
        standings.iter().flat_map(|s| s.balances.iter().filter(|b| is_low(b)).map(move |b| (s, b))).collect();
    let endpoints = db.endpoints(&project.id).await.map_err(|e| e.to_string())?;
    let health = db.delivery_health(&project.id, now - Duration::days(7)).await.map_err(|e| e.to_string())?;
    let failing: Vec<(&WebhookEndpoint, DeliveryHealth)> = endpoints
        .iter()
        .map(|e| (e, health.get(&e.id).cloned().unwrap_or_default()))
        .filter(|(e, h)| !e.enabled || e.failing_since.is_some() || h.failed > 0 || h.retrying > 0)
        .collect();
    let alerts = db.recent_alerts(&project.id, None, None, RECENT_ALERTS).await.map_err(|e| e.to_string())?;

    let limit_rows = |list: &[&crate::ui::standing::CustomerStanding]| {
        list.iter()
            .take(ATTENTION_ROWS)
            .map(|s| {
                let worst = s.worst().cloned();
                view! {
                    <li>
                        <a href=format!("/customers/{}#limits", s.customer.id)>{s.customer.external_id.clone()}</a>
                        {worst.map(|w| view! {
                            " — " <strong>{w.status.name.clone()}</strong> ": "
                            <span class=format!("badge {}", w.standing.class())>{w.standing.label()}</span> " "
                            {w.standing_text()}
                        })}
                    </li>
                }
            })
            .collect_view()
    };
    let more = |count: usize, status: &str| {
        (count > ATTENTION_ROWS).then(|| {
            view! { <p><a href=format!("/customers?status={status}")>{format!("All {} customers", grouped(count as i128))}</a></p> }
        })
    };
    let nothing = over.is_empty() && near.is_empty() && low.is_empty() && failing.is_empty();
    Ok(view! {
        <section class="card attention" aria-labelledby="attention-heading">
            <h2 id="attention-heading">"Needs attention"</h2>
            {nothing.then(|| view! { <p data-testid="all-clear">"Nothing needs you now: no customer is over or near a limit, no balance is low, every webhook endpoint delivers."</p> })}
            <div class="attention-grid">
                <section aria-labelledby="over-heading" data-testid="over-limit">
                    <h3 id="over-heading">
                        <a href="/customers?status=over">{format!("Over a limit ({})", grouped(over.len() as i128))}</a>
                    </h3>
                    {over.is_empty().then(|| view! { <p class="hint">"None."</p> })}
                    <ul>{limit_rows(&over)}</ul>
                    {more(over.len(), "over")}
                </section>
                <section aria-labelledby="near-heading" data-testid="near-limit">
                    <h3 id="near-heading">
                        <a href="/customers?status=near">{format!("Near a limit ({})", grouped(near.len() as i128))}</a>
                    </h3>
                    <p class="hint">"At or past the limit's first alert threshold (80 % without one)."</p>
                    {near.is_empty().then(|| view! { <p class="hint">"None."</p> })}
                    <ul>{limit_rows(&near)}</ul>
                    {more(near.len(), "near")}
                </section>
                <section aria-labelledby="low-heading" data-testid="low-balances">
                    <h3 id="low-heading">
                        <a href="/customers?status=low_balance">{format!("Low balances ({})", grouped(low.len() as i128))}</a>
                    </h3>
                    {low.is_empty().then(|| view! { <p class="hint">"None."</p> })}
                    <ul>
                        {low.iter().take(ATTENTION_ROWS).map(|(s, b)| view! {
                            <li>
                                <a href=format!("/customers/{}#balances", s.customer.id)>{s.customer.external_id.clone()}</a>
                                {format!(" — {}, below its low threshold of {}", balance_text(b), grouped(i128::from(b.low_balance_threshold.unwrap_or_default())))}
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="failing-heading" data-testid="failing-webhooks">
                    <h3 id="failing-heading">
                        <a href="/webhooks">{format!("Failing webhook endpoints ({})", failing.len())}</a>
                    </h3>
                    {failing.is_empty().then(|| view! { <p class="hint">"None."</p> })}
                    <ul>
                        {failing.iter().map(|(e, h)| view! {
                            <li>
                                <a href=format!("/webhooks/{}?status=failing", e.id)><code>{e.url.clone()}</code></a>
                                " — " {crate::ui::pages::webhooks::health(e)}
                                {format!("; {} failing deliveries", grouped(i128::from(h.failed + h.retrying)))}
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="alerts-heading" data-testid="recent-alerts">
                    <h3 id="alerts-heading">"Recent alerts"</h3>
                    {alerts.is_empty().then(|| view! { <p class="hint">"No limit alert has fired yet."</p> })}
                    <ul>
                        {alerts.iter().map(|a| view! {
                            <li>
                                <a href=format!("/customers/{}#limits", a.customer_id)>{a.customer_external_id.clone()}</a>
                                {format!(" reached {} % of {} ", a.threshold, a.limit_name)}
                                <span class="hint">{time_since(now, a.fired_at)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
            </div>
        </section>
    }
    .into_any())
}
