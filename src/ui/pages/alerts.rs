//! Alert history: the threshold crossings stored in `alerts_fired`, newest first, on a
//! customer's page (which limit, linking to it) and on a limit's own page `/limits/{id}/alerts` (which
//! customer, linking to it).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::db::attention::FiredAlert;
use crate::ui::components::{async_page, format_time, page_title, Messages, PageContext};
use crate::ui::format::{local_time, time_since};
use crate::ui::pages::limits::summary_text;

/// Alerts shown in one history, the latest first.
pub const ALERT_ROWS: i64 = 100;

/// What the table names beside each alert: the limit (on a customer's page) or the customer
/// (on a limit's page).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AlertColumn {
    Limit,
    Customer,
}

/// "80 %", or "100 % (limit reached)".
fn threshold_text(threshold: i64) -> String {
    if threshold >= 100 {
        format!("{threshold} % (limit reached)")
    } else {
        format!("{threshold} %")
    }
}

/// The history table, times in `zone` (a customer's) or UTC; `empty` is said when no alert
/// has fired.
pub fn alert_history(
    alerts: &[FiredAlert],
    column: AlertColumn,
    now: DateTime<Utc>,
    zone: Option<Tz>,
    empty: &str,
) -> AnyView {
    if alerts.is_empty() {
        return view! { <p class="hint" data-testid="alert-history-empty">{empty.to_string()}</p> }.into_any();
    }
    let heading = match column {
        AlertColumn::Limit => "Limit",
        AlertColumn::Customer => "Customer",
    };
    let rows = alerts
        .iter()
        .map(|alert| {
            let named = match column {
                AlertColumn::Limit => {
                    view! { <a href=format!("/limits/{}/alerts", alert.limit_id)>{alert.limit_name.clone()}</a> }
                }
                AlertColumn::Customer => view! {
                    <a href=format!("/customers/{}", alert.customer_id)>{alert.customer_external_id.clone()}</a>
                },
            };
            view! {
                <tr data-testid="alert">
                    <td data-label="Fired">{zone.map_or_else(|| format_time(alert.fired_at), |zone| local_time(alert.fired_at, zone))}<br/><span class="hint">{time_since(now, alert.fired_at)}</span></td>
                    <td data-label=heading>{named}</td>
                    <td data-label="Threshold">{threshold_text(alert.threshold)}</td>
                </tr>
            }
        })
        .collect_view();
    let count = alerts.len();
    let caption = if count as i64 >= ALERT_ROWS {
        format!("The latest {count} alerts, newest first")
    } else {
        format!("{count} alert(s), newest first")
    };
    view! {
        <div class="table-scroll" tabindex="0"><table class="stacked" data-testid="alert-history">
            <caption>{caption}</caption>
            <thead><tr><th>"Fired"</th><th>{heading}</th><th>"Threshold"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}

/// `/limits/{id}/alerts`: one limit, and the alerts that fired for it.
#[component]
pub fn LimitPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|params| params.get("id").unwrap_or_default());
    async_page(move |context: PageContext| {
        let id = id.clone();
        async move {
            let project = context.project().await?;
            let db = context.state.engine.db();
            let Some(limit) = db.limit(&project.id, &id).await.map_err(|e| e.to_string())? else {
                context.not_found();
                return Ok(view! { <h1>"Limit not found"</h1> <p><a href="/limits">"All limits"</a></p> }.into_any());
            };
            let meter = db.meter(&project.id, &limit.meter_id).await.map_err(|e| e.to_string())?;
            let customer = match &limit.customer_id {
                Some(customer_id) => db.customer(&project.id, customer_id).await.map_err(|e| e.to_string())?,
                None => None,
            };
            let alerts =
                db.recent_alerts(&project.id, None, Some(&limit.id), ALERT_ROWS).await.map_err(|e| e.to_string())?;
            let now = context.state.engine.now();
            let summary = summary_text(&limit, meter.as_ref(), customer.as_ref().map(|c| c.external_id.as_str()));
            let thresholds = if limit.alert_thresholds.is_empty() {
                "This limit has no alert thresholds: add some on the limits page to be alerted.".to_string()
            } else {
                "Each threshold fires once per customer and window.".to_string()
            };
            Ok(view! {
                <Title text=page_title(&format!("{} · Limits · Limitry", limit.name))/>
                <h1>{limit.name.clone()}</h1>
                <Messages context=context.clone()/>
                <p class="lead" data-testid="limit-summary">{summary.trim_start_matches(" — ").to_string()}</p>
                <p class="pages">
                    <a href="/limits">"All limits (edit or delete this one there)"</a>
                    {customer.map(|c| view! { <a href=format!("/customers/{}", c.id)>{format!("Customer {}", c.external_id)}</a> })}
                </p>
                <section class="card" aria-labelledby="alert-history-heading">
                    <h2 id="alert-history-heading">"Alert history"</h2>
                    <p class="hint">{thresholds}</p>
                    {alert_history(&alerts, AlertColumn::Customer, now, None, "No alert has fired for this limit yet.")}
                </section>
            }
            .into_any())
        }
    })
}
