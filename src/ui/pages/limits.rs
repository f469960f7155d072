//! `/limits`: list, create, edit and delete limits, with thresholds and fail mode.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::domain::limits::Limit;
use crate::domain::windows::Period;
use crate::ui::components::{async_page, CsrfField, FieldErrorMessage, Messages, PageContext};

fn period_options(current: Period) -> impl IntoView {
    Period::ALL
        .into_iter()
        .map(|p| view! { <option value=p.as_str() selected=p == current>{p.as_str()}</option> })
        .collect_view()
}

fn thresholds(limit: Option<&Limit>) -> String {
    limit.map(|l| l.alert_thresholds.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

#[component]
pub fn LimitsPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let db = context.state.engine.db();
        let limits = db.all_limits(&project.id).await.map_err(|e| e.to_string())?;
        let meters = db.all_meters(&project.id).await.map_err(|e| e.to_string())?;
        let csrf = context.csrf();
        let meter_name = |id: &str| meters.iter().find(|m| m.id == id).map_or(id.to_string(), |m| m.name.clone());
        let meter_options =
            meters.iter().map(|m| view! { <option value=m.id.clone()>{m.name.clone()}</option> }).collect_view();
        let rows = limits
            .iter()
            .map(|limit| {
                let scope = limit.customer_id.clone().map_or("project default".to_string(), |c| format!("customer {c}"));
                let filters: Vec<String> = limit.dimension_filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let suffix = format!("-{}", limit.id);
                view! {
                    <details class="card">
                        <summary>
                            <strong>{limit.name.clone()}</strong>
                            {format!(" — {} per {} on {} ({scope}{}), fail {}", limit.limit_value, limit.period.as_str(),
                                meter_name(&limit.meter_id),
                                if filters.is_empty() { String::new() } else { format!("; {}", filters.join(", ")) },
                                limit.fail_mode.as_str())}
                        </summary>
                        <form method="post" action=format!("/limits/{}/update", limit.id)>
                            <CsrfField token=csrf.clone()/>
                            <label for=format!("name{suffix}")>"Name"</label>
                            <input id=format!("name{suffix}") name="name" value=limit.name.clone() required/>
                            <label for=format!("limitValue{suffix}")>"Limit"</label>
                            <input id=format!("limitValue{suffix}") name="limitValue" value=limit.limit_value.to_string() inputmode="decimal" required/>
                            <label for=format!("period{suffix}")>"Period"</label>
                            <select id=format!("period{suffix}") name="period">{period_options(limit.period)}</select>
                            <label for=format!("alertThresholds{suffix}")>"Alert thresholds (%)"</label>
                            <input id=format!("alertThresholds{suffix}") name="alertThresholds" value=thresholds(Some(limit)) placeholder="50, 80, 100"/>
                            <label for=format!("failMode{suffix}")>"Fail mode"</label>
                            <select id=format!("failMode{suffix}") name="failMode">
                                <option value="open" selected=limit.fail_mode.as_str() == "open">"open"</option>
                                <option value="closed" selected=limit.fail_mode.as_str() == "closed">"closed"</option>
                            </select>
                            <button type="submit">"Save"</button>
                        </form>
                        <form method="post" action=format!("/limits/{}/delete", limit.id) class="inline">
                            <CsrfField token=csrf.clone()/>
                            <button type="submit" class="danger">{format!("Delete {}", limit.name)}</button>
                        </form>
                    </details>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Limits · Limitry"/>
            <h1>"Limits"</h1>
            <Messages context=context.clone()/>
            <section class="card">
                <h2>"New limit"</h2>
                <form method="post" action="/limits/create">
                    <CsrfField token=context.csrf()/>
                    <label for="name">"Name"</label>
                    <input id="name" name="name" required maxlength="128"/>
                    <FieldErrorMessage context=context.clone() field="name"/>
                    <label for="meterId">"Meter"</label>
                    <select id="meterId" name="meterId">{meter_options}</select>
                    <FieldErrorMessage context=context.clone() field="meterId"/>
                    <label for="limitValue">"Limit"</label>
                    <input id="limitValue" name="limitValue" inputmode="decimal" required/>
                    <FieldErrorMessage context=context.clone() field="limitValue"/>
                    <label for="period">"Period"</label>
                    <select id="period" name="period">{period_options(Period::Day)}</select>
                    <label for="customerId">"Customer (externalId; empty for the project default)"</label>
                    <input id="customerId" name="customerId"/>
                    <FieldErrorMessage context=context.clone() field="customerId"/>
                    <label for="filterKey">"Dimension filter (optional)"</label>
                    <div class="pair">
                        <input id="filterKey" name="filterKey" placeholder="model" aria-label="Dimension key"/>
                        <input name="filterValue" placeholder="gpt-4o" aria-label="Dimension value"/>
                    </div>
                    <label for="alertThresholds">"Alert thresholds (%)"</label>
                    <input id="alertThresholds" name="alertThresholds" placeholder="50, 80, 100"/>
                    <FieldErrorMessage context=context.clone() field="alertThresholds"/>
                    <label for="failMode">"Fail mode"</label>
                    <select id="failMode" name="failMode">
                        <option value="open">"open"</option>
                        <option value="closed">"closed"</option>
                    </select>
                    <button type="submit">"Create limit"</button>
                </form>
            </section>
            <h2>{format!("{} limit(s)", limits.len())}</h2>
            {rows}
        }
        .into_any())
    })
}
