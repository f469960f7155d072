//! The "New balance" form of a customer page. It posts to `/customers/{id}/balances/create`,
//! which checks and creates through `api::balances::create_balance`, as `POST /v1/balances`
//! does; a refused post comes back with every value as typed and the error beside its field.

use leptos::prelude::*;

use crate::ui::components::{CsrfField, FieldErrorMessage, FormName, PageContext};

/// The form's name, so a failed post comes back to it.
pub const NEW_BALANCE_FORM: &str = "balance-new";

/// One labelled input of the form, filled again after a failed post.
fn field(context: &PageContext, name: &'static str, label: &'static str, placeholder: &'static str) -> impl IntoView {
    let id = format!("balance-{name}");
    let numeric = name != "name" && name != "unit";
    view! {
        <label for=id.clone()>{label}</label>
        <input id=id name=name placeholder=placeholder inputmode=numeric.then_some("numeric")
            required=name == "name" value=context.value_or(NEW_BALANCE_FORM, name, "")/>
        <FieldErrorMessage context=context.clone() form=NEW_BALANCE_FORM field=name/>
    }
}

/// The form, for the customer with internal id `customer_id`.
pub fn new_balance_form(context: &PageContext, customer_id: &str) -> impl IntoView {
    view! {
        <form method="post" action=format!("/customers/{customer_id}/balances/create") class="card">
            <h3>"New balance"</h3>
            <CsrfField token=context.csrf()/>
            <FormName name=NEW_BALANCE_FORM.to_string()/>
            {field(context, "name", "Name", "credits")}
            {field(context, "unit", "Unit (empty: credits)", "credits")}
            {field(context, "initialBalance", "Initial balance (credited at once)", "0")}
            {field(context, "minimumBalance", "Minimum balance (negative allows overdraft)", "0")}
            {field(context, "lowBalanceThreshold", "Low balance threshold (empty: none)", "")}
            <div><button type="submit">"Create balance"</button></div>
        </form>
    }
}
