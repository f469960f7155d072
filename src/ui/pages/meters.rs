//! `/meters`: list, create, edit and delete meters.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::domain::meters::Meter;
use crate::ui::components::{async_page, CsrfField, FieldErrorMessage, Messages, PageContext};

const AGGREGATIONS: [&str; 4] = ["sum", "count", "max", "latest"];

/// The fields of a meter form, filled from `meter` when editing.
fn meter_fields(meter: Option<&Meter>, suffix: &str) -> impl IntoView {
    let name = meter.map(|m| m.name.clone()).unwrap_or_default();
    let field = meter.map(|m| m.field.clone()).unwrap_or_default();
    let event_type = meter.and_then(|m| m.event_filter.event_type.clone()).unwrap_or_default();
    let description = meter.and_then(|m| m.description.clone()).unwrap_or_default();
    let current = meter.map(|m| m.aggregation.as_str()).unwrap_or("sum");
    let options =
        AGGREGATIONS.into_iter().map(|a| view! { <option value=a selected=a == current>{a}</option> }).collect_view();
    view! {
        <label for=format!("name{suffix}")>"Name"</label>
        <input id=format!("name{suffix}") name="name" value=name required maxlength="128"/>
        <label for=format!("aggregation{suffix}")>"Aggregation"</label>
        <select id=format!("aggregation{suffix}") name="aggregation">{options}</select>
        <label for=format!("field{suffix}")>"Field (values.<key>, or * for count)"</label>
        <input id=format!("field{suffix}") name="field" value=field placeholder="values.tokens"/>
        <label for=format!("eventType{suffix}")>"Event type (empty: all events)"</label>
        <input id=format!("eventType{suffix}") name="eventType" value=event_type placeholder="llm.completion"/>
        <label for=format!("description{suffix}")>"Description"</label>
        <input id=format!("description{suffix}") name="description" value=description/>
    }
}

#[component]
pub fn MetersPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let meters = context.state.engine.db().all_meters(&project.id).await.map_err(|e| e.to_string())?;
        let csrf = context.csrf();
        let rows = meters
            .iter()
            .map(|meter| {
                view! {
                    <details class="card">
                        <summary>
                            <strong>{meter.name.clone()}</strong>" — "{meter.aggregation.as_str()}" of "
                            <code>{meter.field.clone()}</code>
                            {meter.event_filter.event_type.clone().map(|t| view! { " on " <code>{t}</code> })}
                        </summary>
                        <form method="post" action=format!("/meters/{}/update", meter.id)>
                            <CsrfField token=csrf.clone()/>
                            {meter_fields(Some(meter), &format!("-{}", meter.id))}
                            <button type="submit">"Save"</button>
                        </form>
                        <p>
                            <a class="button danger" href=format!("/confirm/delete-meter/{}", meter.id)>{format!("Delete {}", meter.name)}</a>
                        </p>
                    </details>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Meters · Limitry"/>
            <h1>"Meters"</h1>
            <Messages context=context.clone()/>
            <section class="card">
                <h2>"New meter"</h2>
                <form method="post" action="/meters/create">
                    <CsrfField token=context.csrf()/>
                    {meter_fields(None, "")}
                    <FieldErrorMessage context=context.clone() field="name"/>
                    <FieldErrorMessage context=context.clone() field="aggregation"/>
                    <FieldErrorMessage context=context.clone() field="field"/>
                    <button type="submit">"Create meter"</button>
                </form>
            </section>
            <h2>{format!("{} meter(s)", meters.len())}</h2>
            {rows}
        }
        .into_any())
    })
}
