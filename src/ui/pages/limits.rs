//! `/limits`: list, create, edit and delete limits, with thresholds and fail mode. A limit for
//! one customer names an existing customer (a new one only when asked for), and a failed post
//! comes back with everything that was typed.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::domain::limits::Limit;
use crate::domain::meters::Meter;
use crate::domain::windows::Period;
use crate::ui::components::{async_page, CsrfField, FieldErrorMessage, FormName, Messages, PageContext};
use crate::ui::format::{meter_unit, period_name, period_phrase, rolling_phrase, with_unit};

/// The form that creates a limit.
pub const NEW_LIMIT_FORM: &str = "limit-new";

/// Customers offered as suggestions in the customer field.
const CUSTOMER_SUGGESTIONS: i64 = 1000;

fn period_options(current: &str) -> impl IntoView {
    Period::ALL
        .into_iter()
        .map(|p| view! { <option value=p.as_str() selected=p.as_str() == current>{period_name(p)}</option> })
        .collect_view()
}

fn fail_mode_options(current: &str) -> impl IntoView {
    [("open", "open: allow when Limitry is unreachable"), ("closed", "closed: refuse when Limitry is unreachable")]
        .into_iter()
        .map(|(value, label)| view! { <option value=value selected=value == current>{label}</option> })
        .collect_view()
}

/// The checkbox that makes a limit's window slide, ticked as saved or as last posted.
fn rolling_field(id: String, checked: bool) -> impl IntoView {
    view! {
        <label for=id.clone() class="check">
            <input type="checkbox" id=id.clone() name="rolling" checked=checked/>
            "Rolling: count the last hour, 24 hours, 7 days or 30 days instead of calendar periods (minute, hour, day, week or month only)"
        </label>
    }
}

fn thresholds(limit: &Limit) -> String {
    limit.alert_thresholds.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
}

/// The plain limit value as an edit form shows it ("60000"; decimals kept).
fn plain_value(limit: &Limit) -> String {
    limit.limit_value.to_string()
}

/// One line about a limit: "60,000 tokens per day on Tokens, for customer acme; alerts at 50 %, 80 %; fail open".
pub(crate) fn summary_text(limit: &Limit, meter: Option<&Meter>, customer: Option<&str>) -> String {
    let unit = meter.map(meter_unit).unwrap_or_default();
    let meter_name = meter.map_or(limit.meter_id.as_str(), |m| m.name.as_str());
    let scope = match customer {
        Some(customer) => format!("for customer {customer}"),
        None if limit.customer_id.is_some() => "for a deleted customer".to_string(),
        None => "project default".to_string(),
    };
    let filters: Vec<String> = limit.dimension_filters.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    let filters = if filters.is_empty() { String::new() } else { format!(", only {}", filters.join(", ")) };
    let alerts = if limit.alert_thresholds.is_empty() {
        "no alerts".to_string()
    } else {
        format!("alerts at {}", limit.alert_thresholds.iter().map(|t| format!("{t} %")).collect::<Vec<_>>().join(", "))
    };
    format!(
        " — {} {} on {meter_name} ({scope}{filters}); {alerts}; fail {}",
        with_unit(limit.limit_value, &unit),
        if limit.rolling { rolling_phrase(limit.period) } else { period_phrase(limit.period) },
        limit.fail_mode.as_str()
    )
}

#[component]
pub fn LimitsPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let db = context.state.engine.db();
        let limits = db.all_limits(&project.id).await.map_err(|e| e.to_string())?;
        let meters = db.all_meters(&project.id).await.map_err(|e| e.to_string())?;
        let customers =
            db.customers_page(&project.id, None, None, CUSTOMER_SUGGESTIONS).await.map_err(|e| e.to_string())?;
        let names: HashMap<String, String> = customers.iter().map(|c| (c.id.clone(), c.external_id.clone())).collect();
        let mut limit_customers = HashMap::new();
        for id in limits.iter().filter_map(|l| l.customer_id.as_ref()) {
            let name = match names.get(id) {
                Some(name) => Some(name.clone()),
                None => db.customer(&project.id, id).await.map_err(|e| e.to_string())?.map(|c| c.external_id),
            };
            limit_customers.insert(id.clone(), name);
        }
        let csrf = context.csrf();
        let rows = limits
            .iter()
            .map(|limit| {
                let form = format!("limit-{}", limit.id);
                let suffix = format!("-{}", limit.id);
                let meter = meters.iter().find(|m| m.id == limit.meter_id);
                let customer = limit.customer_id.as_ref().and_then(|c| limit_customers.get(c).cloned().flatten());
                let summary = summary_text(limit, meter, customer.as_deref());
                let customer_link = limit.customer_id.clone().zip(customer.clone()).map(|(id, name)| {
                    view! { <p>"For customer "<a href=format!("/customers/{id}")>{name}</a></p> }
                });
                let period = context.value_or(&form, "period", limit.period.as_str());
                let fail_mode = context.value_or(&form, "failMode", limit.fail_mode.as_str());
                view! {
                    <details class="card" open=context.failed_form(&form)>
                        <summary>
                            <strong>{limit.name.clone()}</strong>
                            {summary}
                        </summary>
                        {customer_link}
                        <p><a href=format!("/limits/{}/alerts", limit.id)>{format!("Alert history of {}", limit.name)}</a></p>
                        <form method="post" action=format!("/limits/{}/update", limit.id)>
                            <CsrfField token=csrf.clone()/>
                            <FormName name=form.clone()/>
                            <label for=format!("name{suffix}")>"Name"</label>
                            <input id=format!("name{suffix}") name="name" value=context.value_or(&form, "name", limit.name.clone()) required/>
                            <FieldErrorMessage context=context.clone() form=form.clone() field="name"/>
                            <label for=format!("limitValue{suffix}")>"Limit"</label>
                            <input id=format!("limitValue{suffix}") name="limitValue" value=context.value_or(&form, "limitValue", plain_value(limit)) inputmode="decimal" required/>
                            <FieldErrorMessage context=context.clone() form=form.clone() field="limitValue"/>
                            <label for=format!("period{suffix}")>"Period"</label>
                            <select id=format!("period{suffix}") name="period">{period_options(&period)}</select>
                            <FieldErrorMessage context=context.clone() form=form.clone() field="period"/>
                            {rolling_field(format!("rolling{suffix}"), if context.failed_form(&form) { context.typed(&form, "rolling").is_some() } else { limit.rolling })}
                            <FieldErrorMessage context=context.clone() form=form.clone() field="rolling"/>
                            <label for=format!("alertThresholds{suffix}")>"Alert thresholds (%)"</label>
                            <input id=format!("alertThresholds{suffix}") name="alertThresholds" value=context.value_or(&form, "alertThresholds", thresholds(limit)) placeholder="50, 80, 100"/>
                            <FieldErrorMessage context=context.clone() form=form.clone() field="alertThresholds"/>
                            <label for=format!("failMode{suffix}")>"Fail mode"</label>
                            <select id=format!("failMode{suffix}") name="failMode">{fail_mode_options(&fail_mode)}</select>
                            <FieldErrorMessage context=context.clone() form=form.clone() field="failMode"/>
                            <button type="submit">"Save"</button>
                        </form>
                        <p>
                            <a class="button danger" href=format!("/confirm/delete-limit/{}", limit.id)>{format!("Delete {}", limit.name)}</a>
                        </p>
                    </details>
                }
            })
            .collect_view();
        let form = NEW_LIMIT_FORM;
        let typed_meter = context.typed(form, "meterId").unwrap_or_default();
        let meter_options = meters
            .iter()
            .map(|m| view! { <option value=m.id.clone() selected=m.id == typed_meter>{m.name.clone()}</option> })
            .collect_view();
        let suggestions =
            customers.iter().map(|c| view! { <option value=c.external_id.clone()></option> }).collect_view();
        let period = context.value_or(form, "period", Period::Day.as_str());
        let fail_mode = context.value_or(form, "failMode", "open");
        let create_customer = context.typed(form, "createCustomer").is_some();
        Ok(view! {
            <Title text="Limits · Limitry"/>
            <h1>"Limits"</h1>
            <Messages context=context.clone()/>
            <section class="card">
                <h2>"New limit"</h2>
                {meters.is_empty().then(|| view! { <p class="hint">"Create a meter first: a limit caps a meter's value. "<a href="/meters">"Meters"</a></p> })}
                <form method="post" action="/limits/create">
                    <CsrfField token=context.csrf()/>
                    <FormName name=form.to_string()/>
                    <label for="name">"Name"</label>
                    <input id="name" name="name" required maxlength="128" value=context.value_or(form, "name", "")/>
                    <FieldErrorMessage context=context.clone() form=form field="name"/>
                    <label for="meterId">"Meter"</label>
                    <select id="meterId" name="meterId">{meter_options}</select>
                    <FieldErrorMessage context=context.clone() form=form field="meterId"/>
                    <label for="limitValue">"Limit"</label>
                    <input id="limitValue" name="limitValue" inputmode="decimal" required placeholder="36,000" value=context.value_or(form, "limitValue", "")/>
                    <FieldErrorMessage context=context.clone() form=form field="limitValue"/>
                    <label for="period">"Period"</label>
                    <select id="period" name="period">{period_options(&period)}</select>
                    <FieldErrorMessage context=context.clone() form=form field="period"/>
                    {rolling_field("rolling".to_string(), context.typed(form, "rolling").is_some())}
                    <FieldErrorMessage context=context.clone() form=form field="rolling"/>
                    <label for="customerId">"Customer (empty: the default for every customer)"</label>
                    <input id="customerId" name="customerId" list="customer-choices" autocomplete="off" value=context.value_or(form, "customerId", "")/>
                    <datalist id="customer-choices">{suggestions}</datalist>
                    <FieldErrorMessage context=context.clone() form=form field="customerId"/>
                    <label for="createCustomer" class="check">
                        <input type="checkbox" id="createCustomer" name="createCustomer" checked=create_customer/>
                        "Create this customer if it does not exist yet"
                    </label>
                    <fieldset>
                        <legend>"Dimension filter (optional): count only events with this dimension"</legend>
                        <div class="pair">
                            <div>
                                <label for="filterKey">"Dimension key"</label>
                                <input id="filterKey" name="filterKey" placeholder="model" value=context.value_or(form, "filterKey", "")/>
                                <FieldErrorMessage context=context.clone() form=form field="filterKey"/>
                            </div>
                            <div>
                                <label for="filterValue">"Dimension value"</label>
                                <input id="filterValue" name="filterValue" placeholder="gpt-4o" value=context.value_or(form, "filterValue", "")/>
                                <FieldErrorMessage context=context.clone() form=form field="filterValue"/>
                            </div>
                        </div>
                    </fieldset>
                    <label for="alertThresholds">"Alert thresholds (%)"</label>
                    <input id="alertThresholds" name="alertThresholds" placeholder="50, 80, 100" value=context.value_or(form, "alertThresholds", "")/>
                    <FieldErrorMessage context=context.clone() form=form field="alertThresholds"/>
                    <label for="failMode">"Fail mode"</label>
                    <select id="failMode" name="failMode">{fail_mode_options(&fail_mode)}</select>
                    <FieldErrorMessage context=context.clone() form=form field="failMode"/>
                    <button type="submit">"Create limit"</button>
                </form>
            </section>
            <h2>{format!("{} limit(s)", limits.len())}</h2>
            {rows}
        }
        .into_any())
    })
}
