//! `/audit`: the audit log of operator actions, newest first, a page at a time, filtered by
//! kind with a plain GET form (no JavaScript). Each entry says who did what and when, and links
//! to the thing changed while it has a page.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::domain::audit::{AuditEntry, AuditKind};
use crate::ui::components::{async_page, format_time, Messages, PageContext};

const PAGE_SIZE: i64 = 50;

/// Where the thing an entry is about can be seen, if it has a page (deleted things have none);
/// the entry's "what" links there.
fn subject_link(entry: &AuditEntry) -> Option<String> {
    if entry.action == "deleted" {
        return None;
    }
    let id = &entry.subject_id;
    match AuditKind::parse(&entry.kind)? {
        AuditKind::Customer => Some(format!("/customers/{id}")),
        AuditKind::Limit => Some(format!("/limits/{id}/alerts")),
        AuditKind::Webhook => Some(format!("/webhooks/{id}")),
        AuditKind::Meter => Some("/meters".to_string()),
        AuditKind::ApiKey => Some("/api-keys".to_string()),
        AuditKind::AccessToken => Some("/access-tokens".to_string()),
        AuditKind::Balance => None,
    }
}

/// "Limit", "API key": the kind of one entry, singular.
fn kind_name(kind: &str) -> &str {
    match AuditKind::parse(kind) {
        Some(AuditKind::Balance) => "Balance",
        Some(AuditKind::Limit) => "Limit",
        Some(AuditKind::Meter) => "Meter",
        Some(AuditKind::Customer) => "Customer",
        Some(AuditKind::Webhook) => "Webhook endpoint",
        Some(AuditKind::ApiKey) => "API key",
        Some(AuditKind::AccessToken) => "Access token",
        None => kind,
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let kind = context.param("kind").and_then(|k| AuditKind::parse(&k));
        let before = context.param("before");
        let mut entries = context
            .state
            .engine
            .db()
            .audit_page(&project.id, kind.map(AuditKind::as_str), before.as_deref(), PAGE_SIZE + 1)
            .await
            .map_err(|e| e.to_string())?;
        let kind_query = kind.map(|k| format!("kind={}&", k.as_str())).unwrap_or_default();
        let older = (entries.len() as i64 > PAGE_SIZE).then(|| {
            entries.truncate(PAGE_SIZE as usize);
            let last = entries.last().map(|e| e.id.clone()).unwrap_or_default();
            format!("/audit?{kind_query}before={last}")
        });
        let newest = before.is_some().then(|| format!("/audit?{}", kind_query.trim_end_matches('&')));
        let current = kind.map_or("", AuditKind::as_str);
        let options = AuditKind::ALL
            .into_iter()
            .map(|k| view! { <option value=k.as_str() selected=k.as_str() == current>{k.label()}</option> })
            .collect_view();
        let empty = entries.is_empty();
        let rows = entries
            .into_iter()
            .map(|entry| {
                let what = format!("{} {}", kind_name(&entry.kind), entry.action);
                let link = subject_link(&entry);
                view! {
                    <tr data-testid="audit-entry">
                        <td data-label="Time">{format_time(entry.created_at)}</td>
                        <td data-label="Who" data-testid="audit-actor">{entry.actor.clone()}</td>
                        <td data-label="What" data-testid="audit-action">
                            {match link {
                                Some(href) => view! { <a href=href>{what}</a> }.into_any(),
                                None => what.into_any(),
                            }}
                        </td>
                        <td data-label="Details" data-testid="audit-summary">{entry.summary.clone()}</td>
                    </tr>
                }
            })
            .collect_view();
        let caption = match kind {
            Some(kind) => format!("Changes to {}, newest first", kind.label().to_lowercase()),
            None => "Changes, newest first".to_string(),
        };
        Ok(view! {
            <Title text="Audit log · Limitry"/>
            <h1>"Audit log"</h1>
            <p class="lead">"Who changed what, and when: balances credited or debited, limits, meters, customers, webhook endpoints, API keys and access tokens, from the dashboard and the API."</p>
            <Messages context=context.clone()/>
            <form method="get" action="/audit" class="card filters">
                <div>
                    <label for="kind">"Show"</label>
                    <select id="kind" name="kind">
                        <option value="" selected=current.is_empty()>"Every kind"</option>
                        {options}
                    </select>
                </div>
                <div>
                    <button type="submit">"Filter"</button>
                </div>
            </form>
            {empty.then(|| view! { <p class="hint" data-testid="audit-empty">"No change recorded yet."</p> })}
            <div class="table-scroll" tabindex="0"><table class="audit stacked">
                <caption>{caption}</caption>
                <thead><tr><th>"Time"</th><th>"Who"</th><th>"What"</th><th>"Details"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
            <p class="pages">
                {newest.map(|href| view! { <a href=href>"Newest entries"</a> })}
                {older.map(|href| view! { <a href=href rel="next">"Older entries"</a> })}
            </p>
        }
        .into_any())
    })
}
