//! `/webhooks` and `/webhooks/{id}`: endpoints (the secret is shown once), their health, the
//! delivery log with every attempt, redelivery and test events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::domain::webhooks::{EventType, WebhookEndpoint};
use crate::ui::components::{async_page, format_time, CsrfField, FieldErrorMessage, Messages, PageContext};

const LOG_ROWS: i64 = 50;

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

fn health(endpoint: &WebhookEndpoint) -> String {
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
        let endpoints = context.state.engine.db().endpoints(&project.id).await.map_err(|e| e.to_string())?;
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
            <table>
                <caption>"Endpoints"</caption>
                <thead><tr><th>"URL"</th><th>"Description"</th><th>"Events"</th><th>"Health"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
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
            let deliveries = db.deliveries_page(&endpoint.id, None, LOG_ROWS).await.map_err(|e| e.to_string())?;
            let csrf = context.csrf();
            let log = deliveries
                .into_iter()
                .map(|d| {
                    let attempts = d
                        .attempt_log
                        .iter()
                        .map(|a| {
                            let outcome = a
                                .status_code
                                .map_or_else(|| a.error.clone().unwrap_or_default(), |code| format!("HTTP {code}"));
                            format!("{} — {outcome} in {} ms", format_time(a.attempted_at), a.duration_ms)
                        })
                        .map(|line| view! { <li>{line}</li> })
                        .collect_view();
                    let redeliver = format!("/webhooks/{}/deliveries/{}/redeliver", endpoint.id, d.id);
                    view! {
                        <tr data-testid="delivery">
                            <td>{format_time(d.created_at)}</td>
                            <td>{d.event_type.clone()}</td>
                            <td>{d.status.clone()}</td>
                            <td>{d.last_status_code.map(|c| c.to_string()).unwrap_or_default()}</td>
                            <td>
                                <details>
                                    <summary>{format!("{} attempt(s)", d.attempts)}</summary>
                                    <ol>{attempts}</ol>
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
            let action = |what: &str| format!("/webhooks/{}/{what}", endpoint.id);
            Ok(view! {
                <Title text="Webhook · Limitry"/>
                <h1>"Webhook endpoint"</h1>
                <p class="lead"><code>{endpoint.url.clone()}</code></p>
                <Messages context=context.clone()/>
                {new_secret(&context)}
                <p data-testid="webhook-health">{health(&endpoint)}</p>
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
                        <form method="post" action=action("rotate") class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit">"Rotate secret"</button>
                        </form>
                        <form method="post" action=action("delete") class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit" class="danger">"Delete endpoint"</button>
                        </form>
                    </div>
                </section>
                <table>
                    <caption>"Deliveries (newest first)"</caption>
                    <thead><tr><th>"Created"</th><th>"Event"</th><th>"Status"</th><th>"Last response"</th><th>"Attempts"</th><th></th></tr></thead>
                    <tbody>{log}</tbody>
                </table>
            }
            .into_any())
        }
    })
}
