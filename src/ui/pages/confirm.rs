//! `/confirm/{action}/{id}`: the step before an action that cannot be undone (deleting a
//! customer, limit, meter or webhook endpoint, revoking an API key, rotating a signing secret). A plain
//! page with one form, so it works without JavaScript; what it says comes from the stored
//! object, never from the address.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::ui::components::{async_page, page_title, CsrfField, PageContext};

/// What the page asks and where its form posts.
struct Confirmation {
    title: String,
    consequence: String,
    action: String,
    button: String,
    cancel: String,
    /// For a secret rotation: the service's grace period in hours, offered first in a choice
    /// of how long the old secret keeps signing.
    grace_hours: Option<i64>,
}

/// The grace periods a rotation offers besides the service's default, in hours.
const GRACE_CHOICES: [(i64, &str); 5] =
    [(0, "stop at once"), (1, "1 hour"), (24, "24 hours"), (72, "3 days"), (168, "7 days")];

/// "How long the old secret keeps signing", the service's default first.
fn grace_select(default_hours: i64) -> impl IntoView {
    let default_label = match GRACE_CHOICES.iter().find(|(hours, _)| *hours == default_hours) {
        Some((_, label)) => format!("{label} (the default)"),
        None => format!("{default_hours} hours (the default)"),
    };
    let others = GRACE_CHOICES
        .into_iter()
        .filter(|(hours, _)| *hours != default_hours)
        .map(|(hours, label)| view! { <option value=hours.to_string()>{label}</option> })
        .collect_view();
    view! {
        <label for="graceHours">"The old secret keeps signing for"</label>
        <select id="graceHours" name="graceHours">
            <option value=default_hours.to_string() selected=true>{default_label}</option>
            {others}
        </select>
        <p class="hint">"Meanwhile every delivery carries two signatures, one per secret, so the receiver can switch to the new secret without a failed delivery."</p>
    }
}

async fn confirmation(context: &PageContext, kind: &str, id: &str) -> Result<Option<Confirmation>, String> {
    let project = context.project().await?;
    let db = context.state.engine.db();
    let found = match kind {
        "delete-limit" => db.limit(&project.id, id).await.map_err(|e| e.to_string())?.map(|limit| Confirmation {
            title: format!("Delete the limit {}?", limit.name),
            consequence: "Checks stop applying it at once and its usage counters are removed. Recorded events stay."
                .into(),
            action: format!("/limits/{}/delete", limit.id),
            button: format!("Delete {}", limit.name),
            cancel: "/limits".into(),
            grace_hours: None,
        }),
        "delete-meter" => db.meter(&project.id, id).await.map_err(|e| e.to_string())?.map(|meter| Confirmation {
            title: format!("Delete the meter {}?", meter.name),
            consequence: "Its charts and usage totals disappear. A meter that a limit uses cannot be deleted: \
                          delete the limit first. Recorded events stay."
                .into(),
            action: format!("/meters/{}/delete", meter.id),
            button: format!("Delete {}", meter.name),
            cancel: "/meters".into(),
            grace_hours: None,
        }),
        "delete-customer" => {
            db.customer(&project.id, id).await.map_err(|e| e.to_string())?.map(|customer| Confirmation {
                title: format!("Delete the customer {}?", customer.external_id),
                consequence: "Its events, usage counters and own limits are deleted with it. A customer holding a \
                          balance cannot be deleted: its ledger is kept."
                    .into(),
                action: format!("/customers/{}/delete", customer.id),
                button: format!("Delete {}", customer.external_id),
                cancel: format!("/customers/{}", customer.id),
                grace_hours: None,
            })
        }
        "delete-endpoint" => {
            db.endpoint(&project.id, id).await.map_err(|e| e.to_string())?.map(|endpoint| Confirmation {
                title: format!("Delete the webhook endpoint {}?", endpoint.url),
                consequence: "Its pending deliveries are dropped and its delivery log is deleted.".into(),
                action: format!("/webhooks/{}/delete", endpoint.id),
                button: "Delete endpoint".into(),
                cancel: format!("/webhooks/{}", endpoint.id),
                grace_hours: None,
            })
        }
        "rotate-secret" => {
            db.endpoint(&project.id, id).await.map_err(|e| e.to_string())?.map(|endpoint| Confirmation {
                title: format!("Rotate the signing secret of {}?", endpoint.url),
                consequence: "A new secret is shown once. Deliveries are signed with the new secret, and with the \
                          old one too until the grace period you choose ends: update the receiver within it."
                    .into(),
                action: format!("/webhooks/{}/rotate", endpoint.id),
                button: "Rotate secret".into(),
                cancel: format!("/webhooks/{}", endpoint.id),
                grace_hours: Some(context.state.webhook_secret_grace.num_hours()),
            })
        }
        "revoke-key" => db
            .keys(Some(&project.id))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|key| key.id == id && key.revoked_at.is_none())
            .map(|key| Confirmation {
                title: format!("Revoke the API key {}?", key.name),
                consequence: "Every request made with it is refused from now on. This cannot be undone: a new key \
                              has to be created and deployed."
                    .into(),
                action: format!("/api-keys/{}/revoke", key.id),
                button: format!("Revoke {}", key.name),
                cancel: "/api-keys".into(),
                grace_hours: None,
            }),
        _ => None,
    };
    Ok(found)
}

#[component]
pub fn ConfirmPage() -> impl IntoView {
    let (kind, id) = use_params_map()
        .with_untracked(|params| (params.get("action").unwrap_or_default(), params.get("id").unwrap_or_default()));
    async_page(move |context: PageContext| {
        let (kind, id) = (kind.clone(), id.clone());
        async move {
            let Some(confirmation) = confirmation(&context, &kind, &id).await? else {
                context.not_found();
                return Ok(
                    view! { <h1>"Nothing to confirm"</h1> <p>"It may have been deleted already."</p> }.into_any()
                );
            };
            Ok(view! {
                <Title text=page_title(&format!("{} · Limitry", confirmation.title))/>
                <section class="card narrow confirm" aria-labelledby="confirm-heading">
                    <h1 id="confirm-heading">{confirmation.title.clone()}</h1>
                    <p>{confirmation.consequence.clone()}</p>
                    <form method="post" action=confirmation.action.clone()>
                        <CsrfField token=context.csrf()/>
                        {confirmation.grace_hours.map(grace_select)}
                        <button type="submit" class="danger">{confirmation.button.clone()}</button>
                        " "
                        <a class="button secondary" href=confirmation.cancel.clone()>"Cancel"</a>
                    </form>
                </section>
            }
            .into_any())
        }
    })
}
