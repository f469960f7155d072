//! `/`: service status — version, database kind and what it holds.

use leptos::prelude::*;

use crate::server::AppState;

#[component]
pub fn HomePage() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <h1>"Limitry"</h1>
        <p class="lead">"Usage metering, limits and prepaid credits for AI products."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let state = state.clone();
                Suspend::new(async move { status_view(&state).await })
            }}
        </Suspense>
    }
}

async fn status_view(state: &AppState) -> AnyView {
    let db = state.engine.db();
    let kind = db.kind();
    match db.counts().await {
        Ok(counts) => view! {
            <section class="card" aria-labelledby="status-heading">
                <h2 id="status-heading">"Service status"</h2>
                <dl class="stats">
                    <div><dt>"Version"</dt><dd data-testid="version">{env!("CARGO_PKG_VERSION")}</dd></div>
                    <div><dt>"Database"</dt><dd data-testid="database">{kind}</dd></div>
                    <div><dt>"Customers"</dt><dd data-testid="count-customers">{counts.customers}</dd></div>
                    <div><dt>"Events"</dt><dd data-testid="count-events">{counts.events}</dd></div>
                    <div><dt>"Meters"</dt><dd data-testid="count-meters">{counts.meters}</dd></div>
                    <div><dt>"Limits"</dt><dd data-testid="count-limits">{counts.limits}</dd></div>
                </dl>
            </section>
        }
        .into_any(),
        Err(err) => {
            tracing::error!(error = %err, "status page could not read the database");
            view! { <p class="error" role="alert">"The database could not be read."</p> }.into_any()
        }
    }
}
