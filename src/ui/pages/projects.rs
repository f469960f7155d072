//! `/projects`: every project with its timezone, the one being managed marked, a button to
//! manage another, and the "New project" form (name and timezone, checked as the command
//! line checks them).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{async_page, CsrfField, FieldErrorMessage, FormName, Messages, PageContext};
use crate::ui::projects::{request_choice, NEW_PROJECT_FORM};

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let choice = request_choice();
    async_page(move |context: PageContext| {
        let choice = choice.clone();
        async move {
            let current = context.project().await?;
            let projects = choice.map(|c| c.all.as_ref().clone()).unwrap_or_default();
            let csrf = context.csrf();
            let rows = projects
                .into_iter()
                .map(|project| {
                    let managed = project.id == current.id;
                    let action = if managed {
                        view! { <strong>"Managing now"</strong> }.into_any()
                    } else {
                        view! {
                            <form method="post" action="/projects/switch" class="inline">
                                <CsrfField token=csrf.clone()/>
                                <input type="hidden" name="project" value=project.id.clone()/>
                                <input type="hidden" name="back" value="/"/>
                                <button type="submit">{format!("Manage {}", project.name)}</button>
                            </form>
                        }
                        .into_any()
                    };
                    view! {
                        <tr data-testid="project-row">
                            <td>{project.name.clone()}</td>
                            <td><code>{project.id.clone()}</code></td>
                            <td>{project.timezone.name().to_string()}</td>
                            <td>{action}</td>
                        </tr>
                    }
                })
                .collect_view();
            let zones =
                chrono_tz::TZ_VARIANTS.iter().map(|tz| view! { <option value=tz.name()></option> }).collect_view();
            Ok(view! {
                <Title text="Projects · Limitry"/>
                <h1>"Projects"</h1>
                <Messages context=context.clone()/>
                <p class="lead">
                    "Each project has its own customers, meters, limits, balances, webhooks and API keys. "
                    "The dashboard shows one at a time: " <strong data-testid="current-project">{current.name.clone()}</strong> "."
                </p>
                <div class="table-scroll" tabindex="0"><table>
                    <caption>"Projects"</caption>
                    <thead><tr><th>"Name"</th><th>"Id"</th><th>"Timezone"</th><th>"Manage"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
                <section class="card" aria-labelledby="new-project-heading">
                    <h2 id="new-project-heading">"New project"</h2>
                    <form method="post" action="/projects/create">
                        <CsrfField token=context.csrf()/>
                        <FormName name=NEW_PROJECT_FORM.to_string()/>
                        <label for="project-name">"Name"</label>
                        <input id="project-name" name="name" required maxlength="128"
                            value=context.value_or(NEW_PROJECT_FORM, "name", "")/>
                        <FieldErrorMessage context=context.clone() form=NEW_PROJECT_FORM field="name"/>
                        <label for="project-timezone">"Timezone of its customers (empty: UTC)"</label>
                        <input id="project-timezone" name="timezone" list="project-timezones" placeholder="Europe/Paris"
                            value=context.value_or(NEW_PROJECT_FORM, "timezone", "")/>
                        <datalist id="project-timezones">{zones}</datalist>
                        <FieldErrorMessage context=context.clone() form=NEW_PROJECT_FORM field="timezone"/>
                        <p class="hint">"Its API keys are made on the API keys page once you manage it, or with "
                            <code>"limitry keys create --project <id>"</code> "."</p>
                        <button type="submit">"Create project"</button>
                    </form>
                </section>
            }
            .into_any())
        }
    })
}
