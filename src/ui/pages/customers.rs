//! `/customers` (search, pagination) and `/customers/{id}`: usage charts per meter, limit
//! status bars, balances with their ledger and credit/debit forms.

use chrono::{Duration, DurationRound};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::charts::{time_chart, Series};
use crate::engine::query::{query_meter, MeterQuery, WindowSize};
use crate::engine::CheckQuery;
use crate::ui::components::{async_page, format_time, page_title, CsrfField, FieldErrorMessage, Messages, PageContext};

const PAGE_SIZE: i64 = 50;
const CHART_DAYS: i64 = 30;
const LEDGER_ROWS: i64 = 20;

#[component]
pub fn CustomersPage() -> impl IntoView {
    async_page(|context: PageContext| async move {
        let project = context.project().await?;
        let search = context.param("search");
        let cursor = context.param("cursor");
        let customers = context
            .state
            .engine
            .db()
            .customers_page(&project.id, cursor.as_deref(), search.as_deref(), PAGE_SIZE + 1)
            .await
            .map_err(|e| e.to_string())?;
        let has_more = customers.len() as i64 > PAGE_SIZE;
        let customers: Vec<_> = customers.into_iter().take(PAGE_SIZE as usize).collect();
        let next = has_more.then(|| {
            let mut query = vec![("cursor", customers.last().map(|c| c.id.clone()).unwrap_or_default())];
            if let Some(search) = &search {
                query.push(("search", search.clone()));
            }
            format!("/customers?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
        });
        let rows = customers
            .into_iter()
            .map(|c| {
                view! {
                    <tr>
                        <td><a href=format!("/customers/{}", c.id)>{c.external_id.clone()}</a></td>
                        <td>{c.name.clone().unwrap_or_default()}</td>
                        <td>{c.email.clone().unwrap_or_default()}</td>
                        <td>{c.timezone.clone().unwrap_or_else(|| "project default".into())}</td>
                        <td>{format_time(c.created_at)}</td>
                    </tr>
                }
            })
            .collect_view();
        Ok(view! {
            <Title text="Customers · Limitry"/>
            <h1>"Customers"</h1>
            <Messages context=context.clone()/>
            <form method="get" action="/customers" class="card filters" role="search">
                <label for="search">"Search by id, name or email"</label>
                <input id="search" name="search" type="search" value=search.clone().unwrap_or_default()/>
                <button type="submit">"Search"</button>
            </form>
            <table>
                <caption>"Customers"</caption>
                <thead><tr><th>"Customer"</th><th>"Name"</th><th>"Email"</th><th>"Timezone"</th><th>"Created"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            {next.map(|href| view! { <p><a href=href rel="next">"Next page"</a></p> })}
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
            let dimensions = Default::default();
            let query =
                CheckQuery { customer_ref: &customer.id, dimensions: &dimensions, requested: None, balances: &[] };
            let check = engine.check(&project, &query).await.map_err(|e| e.to_string())?;
            let limit_rows = check
                .limits
                .into_iter()
                .map(|status| {
                    let reset = status
                        .reset
                        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                        .map_or("never (all time)".to_string(), format_time);
                    let label = format!("{}: {} of {} used", status.name, status.used, status.limit);
                    let class = if status.exceeded { "limit exceeded" } else { "limit" };
                    view! {
                        <div class=class data-testid="limit-status">
                            <p><strong>{status.name.clone()}</strong>{format!(" ({})", status.period.as_str())}</p>
                            <progress max=status.limit.to_string() value=status.used.min(status.limit).to_string() aria-label=label></progress>
                            <p>{format!("{} / {} used, {} remaining, resets {reset}", status.used, status.limit, status.remaining)}</p>
                        </div>
                    }
                })
                .collect_view();
            let now = engine.now();
            let end = now.duration_trunc(Duration::days(1)).unwrap_or(now) + Duration::days(1);
            let start = end - Duration::days(CHART_DAYS);
            let mut charts = Vec::new();
            for meter in db.all_meters(&project.id).await.map_err(|e| e.to_string())? {
                let query = MeterQuery {
                    start,
                    end,
                    customer_id: Some(customer.id.clone()),
                    dimensions: Default::default(),
                    group_by: Vec::new(),
                    window_size: Some(WindowSize::Day),
                };
                let result = query_meter(db, &project.id, &meter, &query).await.map_err(|e| e.to_string())?;
                let points = result
                    .groups
                    .first()
                    .and_then(|g| g.series.as_ref())
                    .map(|series| series.iter().map(|p| (p.start, p.value.as_f64())).collect())
                    .unwrap_or_default();
                let title = format!("{} per day, last {CHART_DAYS} days", meter.name);
                charts.push(time_chart(&title, &[Series { label: meter.name.clone(), points }], 720, 240));
            }
            let charts =
                charts.into_iter().map(|svg| view! { <div class="chart" inner_html=svg></div> }).collect_view();
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
                                <td class="number">{t.amount}</td>
                                <td class="number">{t.hold_change}</td>
                                <td class="number">{t.balance_after}</td>
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
                        <dl class="stats">
                            <div><dt>"Current"</dt><dd data-testid="current-balance">{balance.current_balance}</dd></div>
                            <div><dt>"Held"</dt><dd>{balance.held_balance}</dd></div>
                            <div><dt>"Available"</dt><dd data-testid="available-balance">{balance.available_balance}</dd></div>
                            <div><dt>"Minimum"</dt><dd>{balance.minimum_balance}</dd></div>
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
                        <table>
                            <caption>{format!("Ledger of {} (latest {LEDGER_ROWS})", balance.name)}</caption>
                            <thead><tr><th>"Time"</th><th>"Type"</th><th>"Amount"</th><th>"Hold"</th><th>"Balance after"</th><th>"Description"</th><th>"Reference"</th></tr></thead>
                            <tbody>{ledger_rows}</tbody>
                        </table>
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
                <section class="card" aria-labelledby="limits-heading">
                    <h2 id="limits-heading">"Limits"</h2>
                    {limit_rows}
                </section>
                <section class="card" aria-labelledby="usage-heading">
                    <h2 id="usage-heading">"Usage"</h2>
                    {charts}
                </section>
                <section aria-labelledby="balances-heading">
                    <h2 id="balances-heading">"Balances"</h2>
                    <FieldErrorMessage context=context.clone() field="amount"/>
                    <FieldErrorMessage context=context.clone() field="description"/>
                    {balance_views}
                    <form method="post" action=format!("/customers/{}/balances/create", customer.id) class="card">
                        <h3>"New balance"</h3>
                        <CsrfField token=context.csrf()/>
                        <label for="balance-name">"Name"</label>
                        <input id="balance-name" name="name" required placeholder="credits"/>
                        <FieldErrorMessage context=context.clone() field="name"/>
                        <label for="balance-unit">"Unit"</label>
                        <input id="balance-unit" name="unit" placeholder="credits"/>
                        <label for="balance-minimum">"Minimum balance (negative allows overdraft)"</label>
                        <input id="balance-minimum" name="minimumBalance" inputmode="numeric" placeholder="0"/>
                        <FieldErrorMessage context=context.clone() field="minimumBalance"/>
                        <button type="submit">"Create balance"</button>
                    </form>
                </section>
            }
            .into_any())
        }
    })
}
