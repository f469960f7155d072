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
        }),
        "delete-meter" => db.meter(&project.id, id).await.map_err(|e| e.to_string())?.map(|meter| Confirmation {
            title: format!("Delete the meter {}?", meter.name),
            consequence: "Its charts and usage totals disappear. A meter that a limit uses cannot be deleted: \
                          delete the limit first. Recorded events stay."
                .into(),
            action: format!("/meters/{}/delete", meter.id),
            button: format!("Delete {}", meter.name),
            cancel: "/meters".into(),
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
            })
        }
        "delete-endpoint" => {
            db.endpoint(&project.id, id).await.map_err(|e| e.to_string())?.map(|endpoint| Confirmation {
                title: format!("Delete the webhook endpoint {}?", endpoint.url),
                consequence: "Its pending deliveries are dropped and its delivery log is deleted.".into(),
                action: format!("/webhooks/{}/delete", endpoint.id),
                button: "Delete endpoint".into(),
                cancel: format!("/webhooks/{}", endpoint.id),
            })
        }
        "rotate-secret" => {
            db.endpoint(&project.id, id).await.map_err(|e| e.to_string())?.map(|endpoint| Confirmation {
                title: format!("Rotate the signing secret of {}?", endpoint.url),
                consequence: "A new secret is shown once. Deliveries are signed with the new secret from then on: \
                          update the receiver with it straight away."
                    .into(),
                action: format!("/webhooks/{}/rotate", endpoint.id),
                button: "Rotate secret".into(),
                cancel: format!("/webhooks/{}", endpoint.id),
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
