//! The server-rendered dashboard (Leptos SSR, no WebAssembly): shell, routes, pages, and the
//! form posts behind them. Every page works without JavaScript.

pub mod components;
pub mod downloads;
pub mod format;
pub mod forms;
pub mod pages;
pub mod projects;
pub mod standing;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

use components::{request_session, CsrfField};

/// The HTML document around every page. No hydration scripts: pages work without JavaScript.
pub fn shell() -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = request_session();
    view! {
        <Stylesheet id="limitry-style" href="/style.css"/>
        <Title text="Limitry"/>
        <Router>
            <header class="topbar">
                <a href="/" class="brand">"Limitry"</a>
                {session.map(|session| view! {
                    <nav aria-label="Main">
                        <a href="/customers">"Customers"</a>
                        <a href="/meters">"Meters"</a>
                        <a href="/limits">"Limits"</a>
                        <a href="/events">"Events"</a>
                        <a href="/webhooks">"Webhooks"</a>
                        <a href="/exports">"Exports"</a>
                        <a href="/api-keys">"API keys"</a>
                        <a href="/access-tokens">"Access tokens"</a>
                        <a href="/projects">"Projects"</a>
                        <a href="/audit">"Audit log"</a>
                    </nav>
                    <projects::ProjectSwitcher csrf=session.csrf_token.clone()/>
                    <form method="post" action="/logout" class="logout">
                        <CsrfField token=session.csrf_token.clone()/>
                        <span class="who">{session.email.clone()}</span>
                        <button type="submit">"Sign out"</button>
                    </form>
                })}
            </header>
            <main class="page">
                // Async: the whole page is rendered before it is sent, so browsers without
                // JavaScript never see a loading fallback.
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=pages::home::HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=pages::login::SetupPage ssr=SsrMode::Async/>
                    <Route path=path!("/customers") view=pages::customers::CustomersPage ssr=SsrMode::Async/>
                    <Route path=path!("/customers/:id") view=pages::customers::CustomerPage ssr=SsrMode::Async/>
                    <Route path=path!("/meters") view=pages::meters::MetersPage ssr=SsrMode::Async/>
                    <Route path=path!("/limits") view=pages::limits::LimitsPage ssr=SsrMode::Async/>
                    <Route path=path!("/limits/:id/alerts") view=pages::alerts::LimitPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/events") view=pages::events::EventsPage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=pages::api_keys::ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/access-tokens") view=pages::access_tokens::AccessTokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=pages::webhooks::WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks/:id") view=pages::webhooks::WebhookPage ssr=SsrMode::Async/>
                    <Route path=path!("/exports") view=pages::exports::ExportsPage ssr=SsrMode::Async/>
                    <Route path=path!("/projects") view=pages::projects::ProjectsPage ssr=SsrMode::Async/>
                    <Route path=path!("/confirm/:action/:id") view=pages::confirm::ConfirmPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// Unknown dashboard paths answer 404.
#[component]
fn NotFound() -> impl IntoView {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! { <h1>"Page not found"</h1> }
}
