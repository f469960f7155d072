//! `/events`: the events explorer with filters, pagination and a CSV download.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::parse_instant;
use crate::db::events::{EventCursor, EventFilter};
use crate::ui::components::{async_page, format_time, Messages, PageContext};

const PAGE_SIZE: i64 = 50;

#[component]
pub fn EventsPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let db = context.state.engine.db();
        let customer = context.param("customer");
        let event_type = context.param("eventType");
        let start = context.param("start");
        let end = context.param("end");
        let customer_id = match &customer {
            Some(reference) => db.customer(&project.id, reference).await.map_err(|e| e.to_string())?.map(|c| c.id),
            None => None,
        };
        let bound = |text: &Option<String>, field: &str, default: i64| match text {
            Some(text) => parse_instant(text, field).map(|t| t.timestamp_millis()).map_err(|e| e.to_string()),
            None => Ok(default),
        };
        let (start_ms, end_ms) = match (bound(&start, "start", i64::MIN), bound(&end, "end", i64::MAX)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(err), _) | (_, Err(err)) => return Ok(view! { <p class="error" role="alert">{err}</p> }.into_any()),
        };
        let cursor = context.param("cursor").and_then(|c| {
            let (at, id) = c.split_once('_')?;
            Some(EventCursor { occurred_at: at.parse().ok()?, id: id.to_string() })
        });
        let unknown_customer = customer.is_some() && customer_id.is_none();
        let events = if unknown_customer {
            Vec::new()
        } else {
            let filter = EventFilter {
                customer_id: customer_id.as_deref().unwrap_or(""),
                event_type: event_type.as_deref().unwrap_or(""),
                start_ms,
                end_ms,
            };
            db.events_page(&project.id, &filter, cursor.as_ref(), PAGE_SIZE + 1).await.map_err(|e| e.to_string())?
        };
        let has_more = events.len() as i64 > PAGE_SIZE;
        let events: Vec<_> = events.into_iter().take(PAGE_SIZE as usize).collect();
        let mut query: Vec<(&str, String)> = Vec::new();
        for (name, value) in [("customer", &customer), ("eventType", &event_type), ("start", &start), ("end", &end)] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        let filters = serde_urlencoded::to_string(&query).unwrap_or_default();
        let next = has_more.then(|| {
            let last =
                events.last().map(|e| format!("{}_{}", e.timestamp.timestamp_millis(), e.id)).unwrap_or_default();
            let mut next_query = query.clone();
            next_query.push(("cursor", last));
            format!("/events?{}", serde_urlencoded::to_string(&next_query).unwrap_or_default())
        });
        let rows = events
            .into_iter()
            .map(|event| {
                let values = serde_json::to_string(&event.values).unwrap_or_default();
                let dimensions = serde_json::to_string(&event.dimensions).unwrap_or_default();
                view! {
                    <tr>
                        <td>{format_time(event.timestamp)}</td>
                        <td><a href=format!("/customers/{}", event.customer_id)>{event.customer_external_id.clone()}</a></td>
                        <td>{event.event_type.clone()}</td>
                        <td><code>{values}</code></td>
                        <td><code>{dimensions}</code></td>
                        <td><code>{event.id.clone()}</code></td>
                    </tr>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Events · Limitry"/>
            <h1>"Events"</h1>
            <Messages context=context.clone()/>
            <form method="get" action="/events" class="card filters">
                <div>
                    <label for="customer">"Customer"</label>
                    <input id="customer" name="customer" value=customer.clone().unwrap_or_default()/>
                </div>
                <div>
                    <label for="eventType">"Event type"</label>
                    <input id="eventType" name="eventType" value=event_type.clone().unwrap_or_default()/>
                </div>
                <div>
                    <label for="start">"From (YYYY-MM-DD)"</label>
                    <input id="start" name="start" value=start.clone().unwrap_or_default() placeholder="2026-01-01"/>
                </div>
                <div>
                    <label for="end">"Until (exclusive)"</label>
                    <input id="end" name="end" value=end.clone().unwrap_or_default() placeholder="2026-02-01"/>
                </div>
                <div>
                    <button type="submit">"Filter"</button>
                    " "
                    <a class="button" href=format!("/exports/events.csv?{filters}")>"Download CSV"</a>
                </div>
            </form>
            <div class="table-scroll" tabindex="0"><table>
                <caption>"Events, newest first"</caption>
                <thead><tr><th>"Time"</th><th>"Customer"</th><th>"Type"</th><th>"Values"</th><th>"Dimensions"</th><th>"Id"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
            {next.map(|href| view! { <p><a href=href rel="next">"Next page"</a></p> })}
        }
        .into_any())
    })
}
