//! `/customers` (search, pagination) and `/customers/{id}`: usage charts per meter, limit
//! status bars, balances with their ledger and credit/debit forms.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::Meter;
use crate::ui::components::{
    async_page, format_time, page_title, CsrfField, FieldErrorMessage, FormName, Messages, PageContext,
};
use crate::ui::format::{grouped, local_time, time_since};
use crate::ui::pages::alerts::{alert_history, AlertColumn, ALERT_ROWS};
use crate::ui::pages::balances::new_balance_form;
use crate::ui::pages::customer_usage::usage_section;
use crate::ui::standing::{
    balance_text, customer_standings, is_low, limit_status_block, limit_views, CustomerStanding, Standing,
};

const PAGE_SIZE: i64 = 50;
const LEDGER_ROWS: i64 = 20;
/// Reservations in flight shown on a customer page.
const RESERVATION_ROWS: i64 = 50;

/// Which customers the list shows, by how they stand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusFilter {
    All,
    Over,
    Near,
    /// Over or near a limit, or a low balance.
    Attention,
    LowBalance,
}

impl StatusFilter {
    const ALL: [(StatusFilter, &'static str, &'static str); 5] = [
        (StatusFilter::All, "all", "Every customer"),
        (StatusFilter::Attention, "attention", "Needs attention"),
        (StatusFilter::Over, "over", "Over a limit"),
        (StatusFilter::Near, "near", "Near a limit"),
        (StatusFilter::LowBalance, "low_balance", "Low balance"),
    ];

    fn parse(text: Option<&str>) -> StatusFilter {
        StatusFilter::ALL.into_iter().find(|(_, name, _)| Some(*name) == text).map_or(StatusFilter::All, |(f, _, _)| f)
    }

    fn keeps(self, standing: &CustomerStanding) -> bool {
        let low = standing.low_balances().next().is_some();
        match self {
            StatusFilter::All => true,
            StatusFilter::Over => standing.standing() == Standing::Over,
            StatusFilter::Near => standing.standing() == Standing::Near,
            StatusFilter::Attention => standing.standing() != Standing::Within || low,
            StatusFilter::LowBalance => low,
        }
    }
}

/// The orders the list can take.
const SORTS: [(&str, &str); 4] = [
    ("worst", "Worst limit first"),
    ("balance", "Lowest balance first"),
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
];

fn sort_standings(standings: &mut [CustomerStanding], sort: &str) {
    match sort {
        "balance" => standings.sort_by_key(|s| (s.lowest_available().is_none(), s.lowest_available())),
        "newest" => standings
            .sort_by(|a, b| (b.customer.created_at, &b.customer.id).cmp(&(a.customer.created_at, &a.customer.id))),
        "oldest" => standings
            .sort_by(|a, b| (a.customer.created_at, &a.customer.id).cmp(&(b.customer.created_at, &b.customer.id))),
        _ => standings.sort_by(|a, b| {
            let key = |s: &CustomerStanding| (s.standing(), std::cmp::Reverse(s.worst().map_or(0, |l| l.percent)));
            key(a).cmp(&key(b)).then(a.customer.id.cmp(&b.customer.id))
        }),
    }
}

fn choices(options: &[(&'static str, &'static str)], current: &str) -> impl IntoView {
    options
        .iter()
        .map(|(value, label)| view! { <option value=*value selected=*value == current>{*label}</option> })
        .collect_view()
}

const NEW_CUSTOMER_FORM: &str = "customer-new";
const EDIT_CUSTOMER_FORM: &str = "customer-edit";

/// Timezones offered as suggestions in the customer forms.
fn timezone_choices() -> impl IntoView {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| view! { <option value=tz.name()></option> }).collect_view()
}

/// The editable fields of a customer, filled from `customer` or from what was typed.
fn customer_fields(context: &PageContext, form: &'static str, customer: Option<&Customer>) -> impl IntoView {
    let saved = |value: Option<String>| value.unwrap_or_default();
    let name = context.value_or(form, "name", saved(customer.and_then(|c| c.name.clone())));
    let email = context.value_or(form, "email", saved(customer.and_then(|c| c.email.clone())));
    let timezone = context.value_or(form, "timezone", saved(customer.and_then(|c| c.timezone.clone())));
    let anchor = context.value_or(
        form,
        "billingCycleStart",
        saved(customer.and_then(|c| c.billing_cycle_start.map(|d| d.to_string()))),
    );
    let list = format!("{form}-timezones");
    view! {
        <label for=format!("{form}-name")>"Name"</label>
        <input id=format!("{form}-name") name="name" maxlength="256" value=name/>
        <FieldErrorMessage context=context.clone() form=form field="name"/>
        <label for=format!("{form}-email")>"Email"</label>
        <input id=format!("{form}-email") name="email" type="email" maxlength="320" value=email/>
        <FieldErrorMessage context=context.clone() form=form field="email"/>
        <label for=format!("{form}-timezone")>"Timezone (empty: the project's)"</label>
        <input id=format!("{form}-timezone") name="timezone" list=list.clone() placeholder="Europe/Paris" value=timezone/>
        <datalist id=list>{timezone_choices()}</datalist>
        <FieldErrorMessage context=context.clone() form=form field="timezone"/>
        <label for=format!("{form}-billingCycleStart")>"Billing cycle start (empty: calendar months)"</label>
        <input id=format!("{form}-billingCycleStart") name="billingCycleStart" type="date" value=anchor/>
        <FieldErrorMessage context=context.clone() form=form field="billingCycleStart"/>
    }
}

#[component]
pub fn CustomersPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let search = context.param("search");
        let status_name = context.param("status").unwrap_or_else(|| "all".into());
        let status = StatusFilter::parse(Some(&status_name));
        let sort =
            context.param("sort").filter(|s| SORTS.iter().any(|(v, _)| v == s)).unwrap_or_else(|| "worst".into());
        let page: usize = context.param("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
        let mut standings: Vec<CustomerStanding> =
            customer_standings(&context.state.engine, &project, search.as_deref())
                .await?
                .into_iter()
                .filter(|s| status.keeps(s))
                .collect();
        sort_standings(&mut standings, &sort);
        let total = standings.len();
        let shown: Vec<CustomerStanding> =
            standings.into_iter().skip((page - 1) * PAGE_SIZE as usize).take(PAGE_SIZE as usize).collect();
        let link_to_page = |n: usize| {
            let mut query = vec![("status", status_name.clone()), ("sort", sort.clone()), ("page", n.to_string())];
            if let Some(search) = &search {
                query.push(("search", search.clone()));
            }
            format!("/customers?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
        };
        let next = (total > page * PAGE_SIZE as usize).then(|| link_to_page(page + 1));
        let previous = (page > 1).then(|| link_to_page(page - 1));
        let rows = shown
            .into_iter()
            .map(|s| {
                let standing = s.standing();
                let worst = s.worst().map(|w| {
                    format!("{} % of {} — {}", grouped(i128::from(w.percent)), w.status.name, w.standing_text())
                });
                let balances = s
                    .balances
                    .iter()
                    .map(|b| {
                        let low = if is_low(b) { " (low)" } else { "" };
                        view! { <li>{balance_text(b)}{low}</li> }
                    })
                    .collect_view();
                let c = &s.customer;
                view! {
                    <tr data-testid="customer-row" data-standing=standing.class()>
                        <td><a href=format!("/customers/{}", c.id)>{c.external_id.clone()}</a>
                            <div class="hint">{c.name.clone().unwrap_or_default()}</div></td>
                        <td><span class=format!("badge {}", standing.class())>{standing.label()}</span>
                            <div>{worst.unwrap_or_else(|| "no limits".into())}</div></td>
                        <td><ul class="plain">{balances}</ul></td>
                        <td>{c.email.clone().unwrap_or_default()}</td>
                        <td>{c.timezone.clone().unwrap_or_else(|| format!("{} (project)", s.zone.name()))}</td>
                        <td>{local_time(c.created_at, s.zone)}</td>
                    </tr>
                }
            })
            .collect_view();
        let filter_names: Vec<(&'static str, &'static str)> =
            StatusFilter::ALL.iter().map(|(_, v, l)| (*v, *l)).collect();
        Ok(view! {
            <Title text="Customers · Limitry"/>
            <h1>"Customers"</h1>
            <Messages context=context.clone()/>
            <form method="get" action="/customers" class="card filters" role="search">
                <div>
                    <label for="search">"Search by id, name or email"</label>
                    <input id="search" name="search" type="search" value=search.clone().unwrap_or_default()/>
                </div>
                <div>
                    <label for="status">"Status"</label>
                    <select id="status" name="status">{choices(&filter_names, &status_name)}</select>
                </div>
                <div>
                    <label for="sort">"Order"</label>
                    <select id="sort" name="sort">{choices(&SORTS, &sort)}</select>
                </div>
                <div><button type="submit">"Search"</button></div>
            </form>
            <details class="card" open=context.failed_form(NEW_CUSTOMER_FORM)>
                <summary>"New customer"</summary>
                <form method="post" action="/customers/create">
                    <CsrfField token=context.csrf()/>
                    <FormName name=NEW_CUSTOMER_FORM.to_string()/>
                    <label for="externalId">"Customer id (your application's own id)"</label>
                    <input id="externalId" name="externalId" required maxlength="256" value=context.value_or(NEW_CUSTOMER_FORM, "externalId", "")/>
                    <FieldErrorMessage context=context.clone() form=NEW_CUSTOMER_FORM field="externalId"/>
                    {customer_fields(&context, NEW_CUSTOMER_FORM, None)}
                    <button type="submit">"Create customer"</button>
                </form>
            </details>
            <p data-testid="customer-count">{format!("{} customer(s)", grouped(total as i128))}</p>
            <div class="table-scroll" tabindex="0">
                <table>
                    <caption>"Customers"</caption>
                    <thead><tr><th>"Customer"</th><th>"Limits"</th><th>"Balances"</th><th>"Email"</th><th>"Timezone"</th><th>"Created"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <nav aria-label="Pages" class="pages">
                {previous.map(|href| view! { <a href=href rel="prev">"Previous page"</a> })}
                {next.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
            </nav>
        }
        .into_any())
    })
}

#[component]
pub fn CustomerPage() -> impl IntoView {
    let id = use_params_map().with_untracked(|params| params.get("id").unwrap_or_default());
    async_page(move |context: PageContext| {
        let id = id.clone();
        async move {
            let project = context.project().await?;
            let engine = &context.state.engine;
            let db = engine.db();
            let Some(customer) = db.customer(&project.id, &id).await.map_err(|e| e.to_string())? else {
                context.not_found();
                return Ok(
                    view! { <h1>"Customer not found"</h1> <p><a href="/customers">"All customers"</a></p> }.into_any()
                );
            };
            let limits: HashMap<String, Limit> = db
                .all_limits(&project.id)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|l| (l.id.clone(), l))
                .collect();
            let meters: HashMap<String, Meter> = db
                .all_meters(&project.id)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|m| (m.id.clone(), m))
                .collect();
            let zone = customer.window_zone(project.timezone);
            let now = engine.now();
            let views = limit_views(engine, &project, &customer, &limits, &meters).await?;
            let limit_rows = views.iter().map(|view| limit_status_block(view, zone, now)).collect_view();
            let alerts =
                db.recent_alerts(&project.id, Some(&customer.id), None, ALERT_ROWS).await.map_err(|e| e.to_string())?;
            let alert_rows = alert_history(
                &alerts,
                AlertColumn::Limit,
                now,
                Some(zone),
                "No limit alert has fired for this customer.",
            );
            let in_flight = db
                .live_reservations_of_customer(&customer.id, now.timestamp_millis(), RESERVATION_ROWS)
                .await
                .map_err(|e| e.to_string())?;
            let in_flight_rows = in_flight
                .iter()
                .map(|r| {
                    let names = r
                        .limit_ids
                        .iter()
                        .map(|id| limits.get(id).map_or(id.as_str(), |l| l.name.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    view! {
                        <tr>
                            <td><code>{r.id.clone()}</code></td>
                            <td class="number">{r.requested.to_string()}</td>
                            <td>{names}</td>
                            <td>{format!("{} ({})", local_time(r.created_at, zone), time_since(now, r.created_at))}</td>
                            <td>{local_time(r.expires_at, zone)}</td>
                        </tr>
                    }
                })
                .collect_view();
            let usage = usage_section(&context, &project, &customer, &limits, &views).await?;
            let csrf = context.csrf();
            let mut balance_views = Vec::new();
            for balance in db.customer_balances(&project.id, &customer.id).await.map_err(|e| e.to_string())? {
                let ledger = db.transactions_page(&balance.id, None, LEDGER_ROWS).await.map_err(|e| e.to_string())?;
                let ledger_rows = ledger
                    .into_iter()
                    .map(|t| {
                        view! {
                            <tr>
                                <td>{format_time(t.created_at)}</td>
                                <td>{t.kind.as_str()}</td>
                                <td class="number">{grouped(i128::from(t.amount))}</td>
                                <td class="number">{grouped(i128::from(t.hold_change))}</td>
                                <td class="number">{grouped(i128::from(t.balance_after))}</td>
                                <td>{t.description.clone().unwrap_or_default()}</td>
                                <td>{t.reference.clone().unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                let id = balance.id.clone();
                balance_views.push(view! {
                    <section class="card" data-testid="balance">
                        <h3>{format!("{} ({})", balance.name, balance.unit)}</h3>
                        {is_low(&balance).then(|| view! { <p><span class="badge over">"Low balance"</span></p> })}
                        <dl class="stats">
                            <div><dt>"Current"</dt><dd data-testid="current-balance">{grouped(i128::from(balance.current_balance))}</dd></div>
                            <div><dt>"Held"</dt><dd>{grouped(i128::from(balance.held_balance))}</dd></div>
                            <div><dt>"Available"</dt><dd data-testid="available-balance">{grouped(i128::from(balance.available_balance))}</dd></div>
                            <div><dt>"Minimum"</dt><dd>{grouped(i128::from(balance.minimum_balance))}</dd></div>
                            {balance.low_balance_threshold.map(|t| view! { <div><dt>"Low below"</dt><dd>{grouped(i128::from(t))}</dd></div> })}
                        </dl>
                        <div class="pair">
                            <form method="post" action=format!("/balances/{id}/credit")>
                                <CsrfField token=csrf.clone()/>
                                <label for=format!("credit-amount-{id}")>"Credit amount"</label>
                                <input id=format!("credit-amount-{id}") name="amount" inputmode="numeric" required/>
                                <label for=format!("credit-description-{id}")>"Description"</label>
                                <input id=format!("credit-description-{id}") name="description" required/>
                                <button type="submit">"Credit"</button>
                            </form>
                            <form method="post" action=format!("/balances/{id}/debit")>
                                <CsrfField token=csrf.clone()/>
                                <label for=format!("debit-amount-{id}")>"Debit amount"</label>
                                <input id=format!("debit-amount-{id}") name="amount" inputmode="numeric" required/>
                                <label for=format!("debit-description-{id}")>"Description"</label>
                                <input id=format!("debit-description-{id}") name="description"/>
                                <button type="submit">"Debit"</button>
                            </form>
                        </div>
                        <div class="table-scroll" tabindex="0"><table>
                            <caption>{format!("Ledger of {} (latest {LEDGER_ROWS})", balance.name)}</caption>
                            <thead><tr><th>"Time"</th><th>"Type"</th><th>"Amount"</th><th>"Hold"</th><th>"Balance after"</th><th>"Description"</th><th>"Reference"</th></tr></thead>
                            <tbody>{ledger_rows}</tbody>
                        </table></div>
                        <p><a class="button" href=format!("/exports/ledger.csv?balanceId={id}")>"Download ledger CSV"</a></p>
                    </section>
                });
            }
            let title = page_title(&format!("{} · Customers · Limitry", customer.external_id));
            Ok(view! {
                <Title text=title/>
                <h1>{customer.external_id.clone()}</h1>
                <Messages context=context.clone()/>
                <p class="lead">
                    {customer.name.clone().unwrap_or_default()} " "
                    {customer.email.clone().unwrap_or_default()} " · "
                    {format!("timezone {}", customer.timezone.clone().unwrap_or_else(|| project.timezone.name().to_string()))}
                    {customer.billing_cycle_start.map(|d| format!(" · billing cycle from {d}"))}
                </p>
                <p class="pages">
                    <a href=format!("/events?customer={}", customer.id)>"Events of this customer"</a>
                    <a href=format!("/exports/events.csv?customer={}", customer.id)>"Download its events (CSV)"</a>
                </p>
                <section class="card" id="limits" aria-labelledby="limits-heading">
                    <h2 id="limits-heading">"Limits"</h2>
                    {limit_rows}
                    <h3>"Alert history"</h3>
                    {alert_rows}
                    <h3>"Reservations in flight"</h3>
                    {in_flight.is_empty().then(|| view! { <p class="hint">"No reservation holds capacity now."</p> })}
                    {(!in_flight.is_empty()).then(|| view! {
                        <div class="table-scroll" tabindex="0"><table data-testid="reservations-in-flight">
                            <caption>{format!("Held now (latest {RESERVATION_ROWS})")}</caption>
                            <thead><tr><th>"Reservation"</th><th>"Holds"</th><th>"On limits"</th><th>"Since"</th><th>"Expires"</th></tr></thead>
                            <tbody>{in_flight_rows}</tbody>
                        </table></div>
                    })}
                </section>
                {usage}
                <details class="card" open=context.failed_form(EDIT_CUSTOMER_FORM)>
                    <summary>"Edit details or delete"</summary>
                    <form method="post" action=format!("/customers/{}/update", customer.id)>
                        <CsrfField token=context.csrf()/>
                        <FormName name=EDIT_CUSTOMER_FORM.to_string()/>
                        {customer_fields(&context, EDIT_CUSTOMER_FORM, Some(&customer))}
                        <button type="submit">"Save customer"</button>
                    </form>
                    <p>
                        <a class="button danger" href=format!("/confirm/delete-customer/{}", customer.id)>{format!("Delete {}", customer.external_id)}</a>
                    </p>
                </details>
                <section id="balances" aria-labelledby="balances-heading">
                    <h2 id="balances-heading">"Balances"</h2>
                    <FieldErrorMessage context=context.clone() field="amount"/>
                    <FieldErrorMessage context=context.clone() field="description"/>
                    {balance_views}
                    {new_balance_form(&context, &customer.id)}
                </section>
            }
            .into_any())
        }
    })
}
