//! CSV downloads for finance: events, usage summaries and ledgers of the project the session
//! manages, streamed page by page, in files named after what they hold and the range they
//! cover (`usage_2026-11-01_2026-11-30_month.csv`). Usage is split in each customer's own
//! calendar (`engine::summary`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::NaiveDate;
use futures_util::stream::{self, Stream, StreamExt};

use crate::api::parse_instant;
use crate::api::usage::param;
use crate::auth::operators::OperatorSession;
use crate::db::events::{EventCursor, EventFilter};
use crate::db::{Db, DbError};
use crate::engine::summary::{usage_by_customer_calendar, CustomerUsageRow, SummaryRange};
use crate::error::AppError;
use crate::export::{csv_response, Cell};
use crate::server::AppState;
use crate::ui::forms::{back_with_error, FORM_FIELD};
use crate::ui::projects::current_project;

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

/// The name of a downloaded file: what it holds, the first and the last day it covers (the
/// exclusive end is not part of it), and more words such as the granularity:
/// `usage_2026-11-01_2026-11-30_month.csv`, `events_acme_2026-11-01_2026-11-30.csv`.
/// `export::csv_response` reduces it to safe characters.
fn ranged_filename(what: &[&str], first: Option<NaiveDate>, last: Option<NaiveDate>, more: &[&str]) -> String {
    let mut parts: Vec<String> = what.iter().map(|w| w.to_string()).collect();
    match (first, last) {
        (Some(first), Some(last)) => parts.extend([first.to_string(), last.to_string()]),
        (Some(first), None) => parts.extend(["from".to_string(), first.to_string()]),
        (None, Some(last)) => parts.extend(["until".to_string(), last.to_string()]),
        (None, None) => {}
    }
    parts.extend(more.iter().map(|m| m.to_string()));
    format!("{}.csv", parts.join("_"))
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
    let project = current_project()?;
    let customer = match param(&params, "customer") {
        Some(reference) => match db.customer(&project.id, reference).await? {
            Some(customer) => Some(customer),
            None => return Err(AppError::not_found("customer", reference)),
        },
        None => None,
    };
    let customer_id = customer.as_ref().map(|c| c.id.clone()).unwrap_or_default();
    let event_type = param(&params, "eventType").unwrap_or_default().to_string();
    let start = param(&params, "start").map(|t| parse_instant(t, "start")).transpose()?;
    let end = param(&params, "end").map(|t| parse_instant(t, "end")).transpose()?;
    let start_ms = start.map_or(i64::MIN, |t| t.timestamp_millis());
    let end_ms = end.map_or(i64::MAX, |t| t.timestamp_millis());
    let project_id = project.id.clone();
    let rows = paged(move |cursor: Option<EventCursor>| {
        let (db, customer_id, event_type, project_id) =
            (db.clone(), customer_id.clone(), event_type.clone(), project_id.clone());
        async move {
            let filter = EventFilter { customer_id: &customer_id, event_type: &event_type, start_ms, end_ms };
            let page = db.events_page(&project_id, &filter, cursor.as_ref(), PAGE).await?;
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
    let what: Vec<&str> = ["events"].into_iter().chain(customer.as_ref().map(|c| c.external_id.as_str())).collect();
    let last = end.map(|end| (end - chrono::Duration::milliseconds(1)).date_naive());
    let filename = ranged_filename(&what, start.map(|s| s.date_naive()), last, &[]);
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

/// The columns of the usage export: the API summary's, with the customer's name and the
/// timezone its periods follow; periods are written with that zone's offset.
pub const USAGE_EXPORT_HEADER: [&str; 9] = [
    "customer_external_id",
    "customer_name",
    "meter_id",
    "meter_name",
    "aggregation",
    "timezone",
    "period_start",
    "period_end",
    "value",
];

fn usage_export_cells(row: CustomerUsageRow) -> Vec<Cell> {
    let local = |at: chrono::DateTime<chrono::Utc>| at.with_timezone(&row.timezone).to_rfc3339();
    vec![
        Cell::Text(row.customer_external_id.clone()),
        Cell::Text(row.customer_name.clone().unwrap_or_default()),
        Cell::Text(row.meter_id.clone()),
        Cell::Text(row.meter_name.clone()),
        Cell::Text(row.aggregation.as_str().to_string()),
        Cell::Text(row.timezone.name().to_string()),
        Cell::Text(local(row.period_start)),
        Cell::Text(local(row.period_end)),
        Cell::Number(row.value.to_string()),
    ]
}

/// Usage per customer × meter × period of the customer's own calendar, with its name.
async fn usage_csv(state: &AppState, params: &HashMap<String, String>) -> Result<Response, AppError> {
    let range = SummaryRange::parse(
        param(params, "start"),
        param(params, "end"),
        param(params, "period"),
        ["start", "end", "period"],
    )?;
    let project = current_project()?;
    let rows = usage_by_customer_calendar(state.engine.db(), &project, &range).await?;
    let rows = stream::iter(rows.into_iter().map(|row| Ok::<_, DbError>(usage_export_cells(row))));
    let (first, last) = range.days();
    let period = param(params, "period").filter(|p| *p != "total");
    let filename = ranged_filename(&["usage"], Some(first), Some(last), period.as_slice());
    Ok(csv_response(&filename, &USAGE_EXPORT_HEADER, rows))
}

async fn ledger(State(state): State<AppState>, Query(params): Params) -> Result<Response, AppError> {
    let balance_id =
        param(&params, "balanceId").ok_or_else(|| AppError::MissingField { field: "balanceId".into() })?.to_string();
    let db: Db = state.engine.db().clone();
    let project = current_project()?;
    let balance =
        db.balance(&project.id, &balance_id).await?.ok_or_else(|| AppError::not_found("balance", &balance_id))?;
    let customer = db.customer(&project.id, &balance.customer_id).await?;
    let customer_name = customer.map_or_else(|| balance.customer_id.clone(), |c| c.external_id);
    let filename = ranged_filename(&["ledger", &customer_name, &balance.name], None, None, &[]);
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
