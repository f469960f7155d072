//! CSV downloads for finance: events, usage summaries and ledgers, streamed page by page.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::stream::{self, Stream, StreamExt};

use crate::api::parse_instant;
use crate::api::usage::{param, parse_summary_range, usage_cells, USAGE_HEADER};
use crate::auth::operators::OperatorSession;
use crate::db::events::{EventCursor, EventFilter};
use crate::db::projects::DEFAULT_PROJECT_ID;
use crate::db::{Db, DbError};
use crate::engine::query::usage_summary;
use crate::error::AppError;
use crate::export::{csv_response, Cell};
use crate::server::AppState;
use crate::ui::forms::{back_with_error, FORM_FIELD};

/// Rows fetched from the database per step of a stream.
const PAGE: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exports/events.csv", get(events))
        .route("/exports/usage.csv", get(usage))
        .route("/exports/ledger.csv", get(ledger))
}

type Params = Query<HashMap<String, String>>;

/// Turns a paged reader into a stream of rows: `fetch` gets the page after a cursor and
/// says where the next one starts.
fn paged<C, F, Fut>(fetch: F) -> impl Stream<Item = Result<Vec<Cell>, DbError>> + Send
where
    C: Send + 'static,
    F: Fn(Option<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(Vec<Vec<Cell>>, Option<C>), DbError>> + Send,
{
    stream::unfold((fetch, Some(None::<C>)), |(fetch, cursor)| async move {
        let cursor = cursor?;
        match fetch(cursor).await {
            Ok((rows, next)) => Some((Ok(rows), (fetch, next.map(Some)))),
            Err(err) => Some((Err(err), (fetch, None))),
        }
    })
    .flat_map(|page| match page {
        Ok(rows) => stream::iter(rows.into_iter().map(Ok)).left_stream(),
        Err(err) => stream::iter(vec![Err(err)]).right_stream(),
    })
}

/// The name of a downloaded file: what it holds and the range it covers, such as
/// `usage-2026-03-01-to-2026-04-01-month.csv`.
fn ranged_filename(what: &str, start: Option<&str>, end: Option<&str>, period: Option<&str>) -> String {
    let day = |text: &str| text.get(..10).unwrap_or(text).to_string();
    let mut name = what.to_string();
    match (start, end) {
        (Some(start), Some(end)) => name.push_str(&format!("-{}-to-{}", day(start), day(end))),
        (Some(start), None) => name.push_str(&format!("-from-{}", day(start))),
        (None, Some(end)) => name.push_str(&format!("-until-{}", day(end))),
        (None, None) => {}
    }
    if let Some(period) = period {
        name.push_str(&format!("-{period}"));
    }
    format!("{name}.csv")
}

/// A download whose parameters are refused goes back to the export form with the error beside
/// its field, instead of answering with an API error body.
async fn or_back_to_form(
    session: &OperatorSession,
    params: &HashMap<String, String>,
    result: Result<Response, AppError>,
) -> Response {
    match result {
        Ok(response) => response,
        Err(err @ (AppError::MissingField { .. } | AppError::InvalidField { .. } | AppError::NotFound { .. })) => {
            let mut fields = params.clone();
            fields.insert(
                FORM_FIELD.to_string(),
                params.get(FORM_FIELD).cloned().unwrap_or_else(|| "usage-export".into()),
            );
            back_with_error(session, "/exports", err, &fields).await
        }
        Err(err) => err.into_response(),
    }
}

async fn events(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Query(params): Params,
) -> Response {
    let fields = params.clone();
    let mut fields = fields;
    fields.entry(FORM_FIELD.to_string()).or_insert_with(|| "events-export".into());
    or_back_to_form(&session, &fields, events_csv(state, params).await).await
}

async fn events_csv(state: AppState, params: HashMap<String, String>) -> Result<Response, AppError> {
    let db = state.engine.db().clone();
    let customer_id = match param(&params, "customer") {
        Some(reference) => match db.customer(DEFAULT_PROJECT_ID, reference).await? {
            Some(customer) => customer.id,
            None => return Err(AppError::not_found("customer", reference)),
        },
        None => String::new(),
    };
    let event_type = param(&params, "eventType").unwrap_or_default().to_string();
    let start_ms = param(&params, "start")
        .map(|t| parse_instant(t, "start"))
        .transpose()?
        .map_or(i64::MIN, |t| t.timestamp_millis());
    let end_ms =
        param(&params, "end").map(|t| parse_instant(t, "end")).transpose()?.map_or(i64::MAX, |t| t.timestamp_millis());
    let rows = paged(move |cursor: Option<EventCursor>| {
        let (db, customer_id, event_type) = (db.clone(), customer_id.clone(), event_type.clone());
        async move {
            let filter = EventFilter { customer_id: &customer_id, event_type: &event_type, start_ms, end_ms };
            let page = db.events_page(DEFAULT_PROJECT_ID, &filter, cursor.as_ref(), PAGE).await?;
            let next = (page.len() as i64 == PAGE)
                .then(|| {
                    page.last().map(|e| EventCursor { occurred_at: e.timestamp.timestamp_millis(), id: e.id.clone() })
                })
                .flatten();
            let rows = page
                .into_iter()
                .map(|e| {
                    vec![
                        Cell::Text(e.id),
                        Cell::Text(e.timestamp.to_rfc3339()),
                        Cell::Text(e.customer_external_id),
                        Cell::Text(e.customer_id),
                        Cell::Text(e.event_type),
                        Cell::Text(serde_json::to_string(&e.values).unwrap_or_default()),
                        Cell::Text(serde_json::to_string(&e.dimensions).unwrap_or_default()),
                        Cell::Text(e.properties.to_string()),
                        Cell::Text(e.idempotency_key.unwrap_or_default()),
                    ]
                })
                .collect();
            Ok((rows, next))
        }
    });
    let header = [
        "id",
        "timestamp",
        "customer_external_id",
        "customer_id",
        "event_type",
        "values",
        "dimensions",
        "properties",
        "idempotency_key",
    ];
    let filename = ranged_filename("events", param(&params, "start"), param(&params, "end"), None);
    Ok(csv_response(&filename, &header, rows))
}

async fn usage(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Query(params): Params,
) -> Response {
    let result = usage_csv(&state, &params).await;
    or_back_to_form(&session, &params, result).await
}

/// Usage per customer × meter × period, with the customer's name beside its id.
async fn usage_csv(state: &AppState, params: &HashMap<String, String>) -> Result<Response, AppError> {
    let periods = parse_summary_range(params, ["start", "end", "period"])?;
    let db = state.engine.db();
    let rows = usage_summary(db, DEFAULT_PROJECT_ID, &periods).await?;
    let names: HashMap<String, String> = db
        .customers_page(DEFAULT_PROJECT_ID, None, None, crate::ui::standing::MAX_SCANNED_CUSTOMERS)
        .await?
        .into_iter()
        .filter_map(|c| c.name.map(|name| (c.external_id, name)))
        .collect();
    let rows = stream::iter(rows.into_iter().map(move |row| {
        let name = names.get(&row.customer_id).cloned().unwrap_or_default();
        let mut cells = usage_cells(row);
        cells.insert(1, Cell::Text(name));
        Ok::<_, DbError>(cells)
    }));
    let mut header = USAGE_HEADER.to_vec();
    header.insert(1, "customer_name");
    let period = param(params, "period").unwrap_or("total");
    let filename = ranged_filename("usage", param(params, "start"), param(params, "end"), Some(period));
    Ok(csv_response(&filename, &header, rows))
}

async fn ledger(State(state): State<AppState>, Query(params): Params) -> Result<Response, AppError> {
    let balance_id =
        param(&params, "balanceId").ok_or_else(|| AppError::MissingField { field: "balanceId".into() })?.to_string();
    let db: Db = state.engine.db().clone();
    let balance = db
        .balance(DEFAULT_PROJECT_ID, &balance_id)
        .await?
        .ok_or_else(|| AppError::not_found("balance", &balance_id))?;
    let customer = db.customer(DEFAULT_PROJECT_ID, &balance.customer_id).await?;
    let customer_name = customer.map_or_else(|| balance.customer_id.clone(), |c| c.external_id);
    let filename = format!("ledger-{customer_name}-{}.csv", balance.name);
    let rows = paged(move |cursor: Option<String>| {
        let (db, balance) = (db.clone(), balance.clone());
        async move {
            let page = db.transactions_page(&balance.id, cursor.as_deref(), PAGE).await?;
            let next = (page.len() as i64 == PAGE).then(|| page.last().map(|t| t.id.clone())).flatten();
            let rows = page
                .into_iter()
                .map(|t| {
                    vec![
                        Cell::Text(t.id),
                        Cell::Text(t.created_at.to_rfc3339()),
                        Cell::Text(balance.customer_id.clone()),
                        Cell::Text(balance.name.clone()),
                        Cell::Text(t.kind.as_str().to_string()),
                        Cell::Number(t.amount.to_string()),
                        Cell::Number(t.hold_change.to_string()),
                        Cell::Number(t.balance_after.to_string()),
                        Cell::Number(t.held_after.to_string()),
                        Cell::Text(t.description.unwrap_or_default()),
                        Cell::Text(t.reference.unwrap_or_default()),
                        Cell::Text(t.reservation_id.unwrap_or_default()),
                    ]
                })
                .collect();
            Ok((rows, next))
        }
    });
    let header = [
        "id",
        "created_at",
        "customer_id",
        "balance",
        "type",
        "amount",
        "hold_change",
        "balance_after",
        "held_after",
        "description",
        "reference",
        "reservation_id",
    ];
    Ok(csv_response(&filename, &header, rows))
}
