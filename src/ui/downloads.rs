//! CSV downloads for finance: events, usage summaries and ledgers, streamed page by page.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};

use crate::api::parse_instant;
use crate::api::usage::{param, parse_summary_range, usage_cells, USAGE_HEADER};
use crate::db::events::{EventCursor, EventFilter};
use crate::db::projects::DEFAULT_PROJECT_ID;
use crate::db::{Db, DbError};
use crate::engine::query::usage_summary;
use crate::error::AppError;
use crate::export::{csv_response, Cell};
use crate::server::AppState;

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

async fn events(State(state): State<AppState>, Query(params): Params) -> Result<Response, AppError> {
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
    Ok(csv_response("events.csv", &header, rows))
}

async fn usage(State(state): State<AppState>, Query(params): Params) -> Result<Response, AppError> {
    let periods = parse_summary_range(&params, ["start", "end", "period"])?;
    let rows = usage_summary(state.engine.db(), DEFAULT_PROJECT_ID, &periods).await?;
    let rows = stream::iter(rows.into_iter().map(|row| Ok::<_, DbError>(usage_cells(row))));
    Ok(csv_response("usage.csv", &USAGE_HEADER, rows))
}

async fn ledger(State(state): State<AppState>, Query(params): Params) -> Result<Response, AppError> {
    let balance_id =
        param(&params, "balanceId").ok_or_else(|| AppError::MissingField { field: "balanceId".into() })?.to_string();
    let db: Db = state.engine.db().clone();
    let balance = db
        .balance(DEFAULT_PROJECT_ID, &balance_id)
        .await?
        .ok_or_else(|| AppError::not_found("balance", &balance_id))?;
    let filename = format!("ledger-{}.csv", balance.name);
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
