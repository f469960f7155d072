//! `/api-keys`: create (the secret is shown once), list with last use, revoke.

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
        let csrf = context.csrf();
        let rows = keys
            .into_iter()
            .map(|key| {
                let revoke = key.revoked_at.is_none().then(|| {
                    view! {
                        <form method="post" action=format!("/api-keys/{}/revoke", key.id) class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit" class="danger">{format!("Revoke {}", key.name)}</button>
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
                    <button type="submit">"Create key"</button>
                </form>
            </section>
            <table>
                <caption>"Keys"</caption>
                <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any())
    })
}
