//! `/access-tokens`: the signed-in operator's personal access tokens (`limitry_pat_…`) for the
//! command line and scripts: create (the secret is shown once), list with last use, revoke.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{async_page, format_time, CsrfField, FieldErrorMessage, Messages, PageContext};

#[component]
pub fn AccessTokensPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let secret = context.outcome.secret.clone();
        let operator_id = context.session.as_ref().map(|s| s.operator_id.clone()).unwrap_or_default();
        let tokens =
            context.state.engine.db().operator_personal_tokens(&operator_id).await.map_err(|e| e.to_string())?;
        let csrf = context.csrf();
        let rows = tokens
            .into_iter()
            .map(|token| {
                let revoke = token.revoked_at.is_none().then(|| {
                    view! {
                        <form method="post" action=format!("/access-tokens/{}/revoke", token.id) class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit" class="danger">{format!("Revoke {}", token.name)}</button>
                        </form>
                    }
                });
                view! {
                    <tr>
                        <td>{token.name.clone()}</td>
                        <td><code>{format!("{}…", token.token_prefix)}</code></td>
                        <td>{format_time(token.created_at)}</td>
                        <td>{token.last_used_at.map_or("never".to_string(), format_time)}</td>
                        <td>{token.revoked_at.map_or("active".to_string(), |at| format!("revoked {}", format_time(at)))}</td>
                        <td>{revoke}</td>
                    </tr>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Access tokens · Limitry"/>
            <h1>"Personal access tokens"</h1>
            <Messages context=context.clone()/>
            <p>
                "A personal access token acts for you on every project. Send it as "
                <code>"Authorization: Bearer limitry_pat_…"</code>" with "
                <code>"X-Project: proj_…"</code>" naming the project of each request."
            </p>
            {secret.map(|secret| view! {
                <section class="card secret" aria-labelledby="secret-heading">
                    <h2 id="secret-heading">"Your new access token"</h2>
                    <p>"Copy it now. It is stored only as a hash and will not be shown again."</p>
                    <code data-testid="new-access-token">{secret}</code>
                </section>
            })}
            <section class="card">
                <h2>"Create a token"</h2>
                <form method="post" action="/access-tokens/create">
                    <CsrfField token=context.csrf()/>
                    <label for="token-name">"Name"</label>
                    <input id="token-name" name="name" required maxlength="128"/>
                    <FieldErrorMessage context=context.clone() field="name"/>
                    <button type="submit">"Create token"</button>
                </form>
            </section>
            <table>
                <caption>"Your tokens"</caption>
                <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any())
    })
}
