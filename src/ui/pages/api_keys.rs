//! `/api-keys`: create (the secret is shown once), list with last use and rate limits, set a
//! key's own rate limits, revoke.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{async_page, format_time, CsrfField, FieldErrorMessage, Messages, PageContext};

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let db = context.state.engine.db();
        let secret = context.outcome.secret.clone();
        let project = context.project().await?;
        // Keys of other projects (made with `limitry keys create --project`) are not the
        // dashboard's to show or revoke.
        let keys = db.keys(Some(&project.id)).await.map_err(|e| e.to_string())?;
        let own_limits = db.project_key_rate_limits(&project.id).await.map_err(|e| e.to_string())?;
        let (default_minute, default_day) = context.state.rate_limits.defaults();
        let defaults = format!("{}/min, {}/day", default_text(default_minute), default_text(default_day));
        let csrf = context.csrf();
        let rows = keys
            .into_iter()
            .map(|key| {
                let revoke = key.revoked_at.is_none().then(|| {
                    view! {
                        <a class="button danger" href=format!("/confirm/revoke-key/{}", key.id)>{format!("Revoke {}", key.name)}</a>
                    }
                });
                let own = own_limits.get(&key.id).copied().unwrap_or_default();
                let limits = format!(
                    "{}/min, {}/day",
                    own_text(own.per_minute, default_minute),
                    own_text(own.per_day, default_day)
                );
                let minute_id = format!("rpm-{}", key.id);
                let day_id = format!("rpd-{}", key.id);
                let set_limits = key.revoked_at.is_none().then(|| {
                    view! {
                        <form method="post" action=format!("/api-keys/{}/rate-limits", key.id) class="inline">
                            <CsrfField token=csrf.clone()/>
                            <label for=minute_id.clone()>"Per minute"</label>
                            <input id=minute_id name="rate_limit_per_minute" inputmode="numeric" size="8"
                                value=own.per_minute.map(|n| n.to_string()).unwrap_or_default()/>
                            <label for=day_id.clone()>"Per day"</label>
                            <input id=day_id name="rate_limit_per_day" inputmode="numeric" size="10"
                                value=own.per_day.map(|n| n.to_string()).unwrap_or_default()/>
                            <button type="submit">{format!("Save limits of {}", key.name)}</button>
                        </form>
                    }
                });
                view! {
                    <tr>
                        <td>{key.name.clone()}</td>
                        <td><code>{format!("{}…", key.key_prefix)}</code></td>
                        <td>{format_time(key.created_at)}</td>
                        <td>{key.last_used_at.map_or("never".to_string(), format_time)}</td>
                        <td>{key.revoked_at.map_or("active".to_string(), |at| format!("revoked {}", format_time(at)))}</td>
                        <td>{limits}{set_limits}</td>
                        <td>{revoke}</td>
                    </tr>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="API keys · Limitry"/>
            <h1>"API keys"</h1>
            <Messages context=context.clone()/>
            {secret.map(|secret| view! {
                <section class="card secret" aria-labelledby="secret-heading">
                    <h2 id="secret-heading">"Your new API key"</h2>
                    <p>"Copy it now. It is stored only as a hash and will not be shown again."</p>
                    <code data-testid="new-api-key">{secret}</code>
                </section>
            })}
            <section class="card">
                <h2>"Create a key"</h2>
                <form method="post" action="/api-keys/create">
                    <CsrfField token=context.csrf()/>
                    <label for="key-name">"Name"</label>
                    <input id="key-name" name="name" required maxlength="128"/>
                    <FieldErrorMessage context=context.clone() field="name"/>
                    <label for="key-rpm">"Requests per minute (empty: the default, 0: no limit)"</label>
                    <input id="key-rpm" name="rate_limit_per_minute" inputmode="numeric"/>
                    <FieldErrorMessage context=context.clone() field="rate_limit_per_minute"/>
                    <label for="key-rpd">"Requests per day, UTC (empty: the default, 0: no limit)"</label>
                    <input id="key-rpd" name="rate_limit_per_day" inputmode="numeric"/>
                    <FieldErrorMessage context=context.clone() field="rate_limit_per_day"/>
                    <button type="submit">"Create key"</button>
                </form>
            </section>
            <p>{format!("Default rate limit of every key: {defaults}.")}</p>
            <div class="table-scroll" tabindex="0"><table>
                <caption>"Keys"</caption>
                <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th>"Rate limit"</th><th>"Revoke"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
        }
        .into_any())
    })
}

/// The configured default as the page shows it.
fn default_text(limit: Option<u64>) -> String {
    limit.map_or("unlimited".to_string(), |n| n.to_string())
}

/// A key's effective limit as the page shows it: its own, else the default.
fn own_text(own: Option<i64>, default: Option<u64>) -> String {
    match own {
        Some(0) => "unlimited".to_string(),
        Some(n) => n.to_string(),
        None => format!("{} (default)", default_text(default)),
    }
}
