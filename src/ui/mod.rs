//! The server-rendered dashboard (Leptos SSR, no WebAssembly): shell, routes and pages.

pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

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
    view! {
        <Stylesheet id="limitry-style" href="/style.css"/>
        <Title text="Limitry"/>
        <Router>
            <header class="topbar">
                <a href="/" class="brand">"Limitry"</a>
            </header>
            <main class="page">
                // Async: the whole page is rendered before it is sent, so browsers without
                // JavaScript never see a loading fallback.
                <Routes fallback=|| view! { <h1>"Page not found"</h1> }>
                    <Route path=path!("/") view=pages::home::HomePage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
