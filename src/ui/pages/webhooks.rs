//! `/webhooks` and `/webhooks/{id}`: endpoints (the secret is shown once), their health, the
//! delivery log with every attempt, redelivery and test events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::db::attention::{DeliveryFilter, DeliveryHealth};
use crate::domain::webhooks::{EventType, WebhookEndpoint};
use crate::ui::components::{async_page, format_time, CsrfField, FieldErrorMessage, Messages, PageContext};
use crate::ui::format::{grouped, time_until};

const LOG_ROWS: i64 = 50;
/// Days over which an endpoint's success rate is measured.
const HEALTH_DAYS: i64 = 7;

/// "97 % of 1,204 attempts succeeded; 3 failing".
fn delivery_summary(health: DeliveryHealth) -> String {
    let rate = health.success_percent().map_or("no attempts".to_string(), |p| {
        format!("{p} % of {} attempts succeeded", grouped(i128::from(health.attempts)))
    });
    format!("{rate}; {} failing", grouped(i128::from(health.failed + health.retrying)))
}

fn filter_label(filter: DeliveryFilter) -> &'static str {
    match filter {
        DeliveryFilter::All => "All",
        DeliveryFilter::Failing => "Failing",
        DeliveryFilter::Delivered => "Delivered",
        DeliveryFilter::Queued => "Queued",
    }
}

/// The secret a create or rotate just made, shown once.
fn new_secret(context: &PageContext) -> impl IntoView {
    context.outcome.secret.clone().map(|secret| {
        view! {
            <section class="card secret" aria-labelledby="secret-heading">
                <h2 id="secret-heading">"Signing secret"</h2>
                <p>"Copy it now: receivers verify signatures with it, and it is not shown again."</p>
                <code data-testid="webhook-secret">{secret}</code>
            </section>
        }
    })
}

/// The checkboxes of the event types an endpoint receives (none ticked: all of them).
fn type_choices(endpoint: Option<&WebhookEndpoint>, suffix: &str) -> impl IntoView {
    EventType::ALL
        .into_iter()
        .filter(|t| *t != EventType::WebhookTest)
        .map(|t| {
            let id = format!("type-{}{suffix}", t.as_str().replace('.', "-"));
            let checked = endpoint.is_some_and(|e| e.event_types.contains(&t));
            view! {
                <label for=id.clone() class="check">
                    <input type="checkbox" id=id.clone() name=format!("type:{}", t.as_str()) checked=checked/>
                    {t.as_str()}
                </label>
            }
        })
        .collect_view()
}

fn frequency_choices(endpoint: Option<&WebhookEndpoint>) -> impl IntoView {
    let current = endpoint.and_then(|e| e.summary_frequency).map_or("", |f| f.as_str());
    [("", "no usage summaries"), ("daily", "daily"), ("weekly", "weekly"), ("monthly", "monthly")]
        .into_iter()
        .map(|(value, label)| view! { <option value=value selected=value == current>{label}</option> })
        .collect_view()
}

pub fn health(endpoint: &WebhookEndpoint) -> String {
    match (&endpoint.disabled_reason, endpoint.enabled, endpoint.failing_since) {
        (Some(reason), false, _) => format!("disabled: {reason}"),
        (None, false, _) => "disabled".into(),
        (_, true, Some(since)) => format!("failing since {}", format_time(since)),
        (_, true, None) => "healthy".into(),
    }
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let db = context.state.engine.db();
        let endpoints = db.endpoints(&project.id).await.map_err(|e| e.to_string())?;
        let since = context.state.engine.now() - chrono::Duration::days(HEALTH_DAYS);
        let health_counts = db.delivery_health(&project.id, since).await.map_err(|e| e.to_string())?;
        let rows = endpoints
            .iter()
            .map(|e| {
                let types = if e.event_types.is_empty() {
                    "all events".to_string()
                } else {
                    e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                };
                view! {
                    <tr>
                        <td><a href=format!("/webhooks/{}", e.id)>{e.url.clone()}</a></td>
                        <td>{e.description.clone().unwrap_or_default()}</td>
                        <td>{types}</td>
                        <td data-testid="webhook-health">{health(e)}</td>
                        <td>{delivery_summary(health_counts.get(&e.id).cloned().unwrap_or_default())}</td>
                    </tr>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Webhooks · Limitry"/>
            <h1>"Webhooks"</h1>
            <Messages context=context.clone()/>
            {new_secret(&context)}
            <section class="card">
                <h2>"New endpoint"</h2>
                <form method="post" action="/webhooks/create">
                    <CsrfField token=context.csrf()/>
                    <label for="url">"URL"</label>
                    <input id="url" name="url" type="url" required placeholder="https://example.com/webhooks/limitry"/>
                    <FieldErrorMessage context=context.clone() field="url"/>
                    <label for="description">"Description"</label>
                    <input id="description" name="description"/>
                    <fieldset>
                        <legend>"Event types (none ticked: all)"</legend>
                        {type_choices(None, "")}
                    </fieldset>
                    <label for="summaryFrequency">"Usage summaries"</label>
                    <select id="summaryFrequency" name="summaryFrequency">{frequency_choices(None)}</select>
                    <button type="submit">"Create endpoint"</button>
                </form>
            </section>
            <div class="table-scroll" tabindex="0"><table>
                <caption>"Endpoints"</caption>
                <thead><tr><th>"URL"</th><th>"Description"</th><th>"Events"</th><th>"Health"</th><th>{format!("Deliveries, last {HEALTH_DAYS} days")}</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
        }
        .into_any())
    })
}

#[component]
pub fn WebhookPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|params| params.get("id").unwrap_or_default());
    async_page(move |context: PageContext| {
        let id = id.clone();
        async move {
            let project = context.project().await?;
            let db = context.state.engine.db();
            let Some(endpoint) = db.endpoint(&project.id, &id).await.map_err(|e| e.to_string())? else {
                return Ok(
                    view! { <h1>"Endpoint not found"</h1> <p><a href="/webhooks">"All endpoints"</a></p> }.into_any()
                );
            };
            let filter = context.param("status").and_then(|s| DeliveryFilter::parse(&s)).unwrap_or(DeliveryFilter::All);
            let after = context.param("after");
            let mut deliveries = db
                .filtered_deliveries_page(&endpoint.id, filter, after.as_deref(), LOG_ROWS + 1)
                .await
                .map_err(|e| e.to_string())?;
            let older = (deliveries.len() as i64 > LOG_ROWS).then(|| {
                deliveries.truncate(LOG_ROWS as usize);
                let last = deliveries.last().map(|d| d.id.clone()).unwrap_or_default();
                let query = [("status", filter.as_str().to_string()), ("after", last)];
                format!("/webhooks/{}?{}", endpoint.id, serde_urlencoded::to_string(query).unwrap_or_default())
            });
            let now = context.state.engine.now();
            let health_counts = db
                .delivery_health(&project.id, now - chrono::Duration::days(HEALTH_DAYS))
                .await
                .map_err(|e| e.to_string())?
                .remove(&endpoint.id)
                .unwrap_or_default();
            let csrf = context.csrf();
            let log = deliveries
                .into_iter()
                .map(|d| {
                    let attempts = d
                        .attempt_log
                        .iter()
                        .map(|a| {
                            let outcome = match (a.status_code, &a.error) {
                                (Some(code), _) => format!("HTTP {code}"),
                                (None, Some(error)) => format!("no answer: {error}"),
                                (None, None) => "no answer".to_string(),
                            };
                            view! {
                                <li data-testid="attempt">
                                    <p>{format!("{} — {outcome} in {} ms", format_time(a.attempted_at), grouped(i128::from(a.duration_ms)))}</p>
                                    {a.error.clone().filter(|_| a.status_code.is_some()).map(|e| view! { <p>"Error: "{e}</p> })}
                                    {a.response_excerpt.clone().filter(|r| !r.is_empty()).map(|r| view! {
                                        <p>"Response (first 256 bytes):"</p>
                                        <pre data-testid="response-excerpt"><code>{r}</code></pre>
                                    })}
                                </li>
                            }
                        })
                        .collect_view();
                    let redeliver = format!("/webhooks/{}/deliveries/{}/redeliver", endpoint.id, d.id);
                    let last_error = d.attempt_log.last().and_then(|a| match (a.status_code, &a.error) {
                        (Some(code), _) if !(200..300).contains(&code) => Some(format!("HTTP {code}")),
                        (None, Some(error)) => Some(error.clone()),
                        _ => None,
                    });
                    let next = match (d.status.as_str(), d.next_attempt_at) {
                        ("pending", Some(at)) if d.attempts > 0 => format!("retrying {} ({})", time_until(now, at), format_time(at)),
                        ("pending", _) => "queued".to_string(),
                        ("failed", _) => "failed: retries used up".to_string(),
                        (status, _) => status.to_string(),
                    };
                    view! {
                        <tr data-testid="delivery">
                            <td>{format_time(d.created_at)}</td>
                            <td>{d.event_type.clone()}</td>
                            <td data-testid="delivery-status">{next}</td>
                            <td data-testid="delivery-reason">{last_error.unwrap_or_default()}</td>
                            <td>
                                <details>
                                    <summary>{format!("{} attempt(s)", d.attempts)}</summary>
                                    <ol class="attempts">{attempts}</ol>
                                    <p>"Request body"</p>
                                    <pre><code>{d.payload.clone()}</code></pre>
                                </details>
                            </td>
                            <td>
                                <form method="post" action=redeliver class="inline">
                                    <CsrfField token=csrf.clone()/>
                                    <button type="submit">"Redeliver"</button>
                                </form>
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            let filter_links = DeliveryFilter::ALL
                .into_iter()
                .map(|f| {
                    let href = format!("/webhooks/{}?status={}", endpoint.id, f.as_str());
                    let current = (f == filter).then_some("page");
                    view! { <a href=href aria-current=current>{filter_label(f)}</a> }
                })
                .collect_view();
            let failing_count = health_counts.failed + health_counts.retrying;
            let success = health_counts.success_percent().map_or("no attempts yet".to_string(), |p| {
                format!("{p} % of {} attempts succeeded", grouped(i128::from(health_counts.attempts)))
            });
            let action = |what: &str| format!("/webhooks/{}/{what}", endpoint.id);
            Ok(view! {
                <Title text="Webhook · Limitry"/>
                <h1>"Webhook endpoint"</h1>
                <p class="lead"><code>{endpoint.url.clone()}</code></p>
                <Messages context=context.clone()/>
                {new_secret(&context)}
                <p data-testid="webhook-health">{health(&endpoint)}</p>
                {endpoint.previous_secret_signs_until(now).map(|until| view! {
                    <p class="notice" data-testid="previous-secret">
                        {format!(
                            "The previous signing secret still signs every delivery too, until {} ({}). After that only the current secret signs.",
                            format_time(until),
                            time_until(now, until)
                        )}
                    </p>
                })}
                <section class="card" aria-labelledby="deliveries-heading">
                    <h2 id="deliveries-heading">"Deliveries"</h2>
                    <dl class="stats">
                        <div><dt>{format!("Success rate, last {HEALTH_DAYS} days")}</dt><dd data-testid="success-rate">{success}</dd></div>
                        <div><dt>"Delivered"</dt><dd>{grouped(i128::from(health_counts.delivered))}</dd></div>
                        <div><dt>"Failing"</dt><dd data-testid="failing-count">{grouped(i128::from(failing_count))}</dd></div>
                        <div><dt>"Queued"</dt><dd>{grouped(i128::from(health_counts.queued))}</dd></div>
                    </dl>
                    <form method="post" action=action("retry-failed")>
                        <CsrfField token=csrf.clone()/>
                        <button type="submit" disabled=failing_count == 0>"Retry all failed deliveries"</button>
                    </form>
                    {(!endpoint.enabled).then(|| view! { <p class="hint">"The endpoint is disabled: enable it below, or retried deliveries wait."</p> })}
                </section>
                <section class="card">
                    <h2>"Settings"</h2>
                    <form method="post" action=action("update")>
                        <CsrfField token=csrf.clone()/>
                        <label for="url">"URL"</label>
                        <input id="url" name="url" type="url" value=endpoint.url.clone() required/>
                        <FieldErrorMessage context=context.clone() field="url"/>
                        <label for="description">"Description"</label>
                        <input id="description" name="description" value=endpoint.description.clone().unwrap_or_default()/>
                        <label for="enabled" class="check">
                            <input type="checkbox" id="enabled" name="enabled" checked=endpoint.enabled/>
                            "Enabled"
                        </label>
                        <fieldset>
                            <legend>"Event types (none ticked: all)"</legend>
                            {type_choices(Some(&endpoint), "")}
                        </fieldset>
                        <label for="summaryFrequency">"Usage summaries"</label>
                        <select id="summaryFrequency" name="summaryFrequency">{frequency_choices(Some(&endpoint))}</select>
                        <button type="submit">"Save"</button>
                    </form>
                    <div class="pair">
                        <form method="post" action=action("test") class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit">"Send test event"</button>
                        </form>
                        <a class="button" href=format!("/confirm/rotate-secret/{}", endpoint.id)>"Rotate secret"</a>
                        <a class="button danger" href=format!("/confirm/delete-endpoint/{}", endpoint.id)>"Delete endpoint"</a>
                    </div>
                </section>
                <nav aria-label="Show deliveries" class="pages">{filter_links}</nav>
                <div class="table-scroll" tabindex="0"><table>
                    <caption>{format!("Deliveries: {} (newest first)", filter_label(filter).to_lowercase())}</caption>
                    <thead><tr><th>"Created"</th><th>"Event"</th><th>"Status"</th><th>"Why it failed"</th><th>"Attempts"</th><th>"Send again"</th></tr></thead>
                    <tbody>{log}</tbody>
                </table></div>
                {older.map(|href| view! { <p><a href=href rel="next">"Older deliveries"</a></p> })}
            }
            .into_any())
        }
    })
}
