//! `/login` and the first-run `/setup`.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::auth::operators::MIN_PASSWORD_LENGTH;
use crate::ui::components::{async_page, CsrfField, FieldErrorMessage, Messages, PageContext};

#[component]
pub fn LoginPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let operators = context.state.engine.db().operator_count().await.map_err(|e| e.to_string())?;
        if operators == 0 {
            return Ok(view! {
                <Title text="Sign in · Limitry"/>
                <h1>"Welcome"</h1>
                <p>"No operator exists yet. " <a href="/setup">"Create the first one"</a> "."</p>
            }
            .into_any());
        }
        Ok(view! {
            <Title text="Sign in · Limitry"/>
            <section class="card narrow">
                <h1>"Sign in"</h1>
                <Messages context=context.clone()/>
                <form method="post" action="/login">
                    <CsrfField token=context.login_csrf.clone().unwrap_or_default()/>
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required/>
                    <FieldErrorMessage context=context.clone() field="email"/>
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    <button type="submit">"Sign in"</button>
                </form>
            </section>
        }
        .into_any())
    })
}

#[component]
pub fn SetupPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let operators = context.state.engine.db().operator_count().await.map_err(|e| e.to_string())?;
        if operators > 0 {
            return Ok(view! {
                <Title text="Setup · Limitry"/>
                <h1>"Setup is complete"</h1>
                <p><a href="/login">"Sign in"</a></p>
            }
            .into_any());
        }
        Ok(view! {
            <Title text="Setup · Limitry"/>
            <section class="card narrow">
                <h1>"Create the first operator"</h1>
                <p>"This account manages meters, limits, balances and API keys."</p>
                <Messages context=context.clone()/>
                <form method="post" action="/setup">
                    <CsrfField token=context.login_csrf.clone().unwrap_or_default()/>
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required/>
                    <FieldErrorMessage context=context.clone() field="email"/>
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="new-password" required
                        minlength=MIN_PASSWORD_LENGTH.to_string()/>
                    <p class="hint">{format!("At least {MIN_PASSWORD_LENGTH} characters.")}</p>
                    <FieldErrorMessage context=context.clone() field="password"/>
                    <button type="submit">"Create and sign in"</button>
                </form>
            </section>
        }
        .into_any())
    })
}
