//! `/v1/events`: record one, record a batch, list with filters.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_instant, Page, PageParams};
use crate::auth::keys::ApiProject;
use crate::db::events::{EventCursor, EventFilter};
use crate::domain::events::{Event, EventInput, NewEvent};
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordResponse {
    pub id: String,
    pub recorded: bool,
    /// True when the idempotency key was seen before; the event counted once.
    pub duplicate: bool,
}

#[utoipa::path(post, path = "/v1/events/record", operation_id = "recordEvent", tag = "events", security(("bearer" = [])), request_body = EventInput,
    responses((status = 200, body = RecordResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "a cust_… id that names no customer")))]
pub async fn record(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiJson(input): ApiJson<EventInput>,
) -> Result<ApiJson<RecordResponse>, AppError> {
    let event = input.validate("", state.engine.now(), state.engine.max_backdate())?;
    let recorded = state.engine.record(&project, vec![event]).await?;
    let first = recorded.into_iter().next().ok_or_else(|| AppError::Internal(anyhow::anyhow!("no record result")))?;
    Ok(ApiJson(RecordResponse { id: first.id, recorded: true, duplicate: first.duplicate }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<EventInput>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// One result per event, in request order.
    pub results: Vec<RecordResponse>,
    /// Events newly recorded (duplicates excluded).
    pub count: usize,
    pub duplicates: usize,
}

#[utoipa::path(post, path = "/v1/events/batch", operation_id = "recordEventBatch", tag = "events", security(("bearer" = [])), request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "a cust_… id that names no customer")))]
/// Records up to 1,000 events in one transaction. If any event is invalid, none is recorded
/// and the error names it (`events[3].customerId`).
pub async fn batch(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, AppError> {
    if request.events.is_empty() || request.events.len() > MAX_BATCH {
        return Err(AppError::InvalidField {
            field: "events".into(),
            message: format!("must hold 1 to {MAX_BATCH} events, got {}", request.events.len()),
        });
    }
    let now = state.engine.now();
    let events = request
        .events
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            input.validate("", now, state.engine.max_backdate()).map_err(|err| err.under(&format!("events[{i}]")))
        })
        .collect::<Result<Vec<NewEvent>, _>>()?;
    let recorded = state.engine.record(&project, events).await?;
    let duplicates = recorded.iter().filter(|r| r.duplicate).count();
    Ok(Json(BatchResponse {
        count: recorded.len() - duplicates,
        duplicates,
        results: recorded
            .into_iter()
            .map(|r| RecordResponse { id: r.id, recorded: true, duplicate: r.duplicate })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    #[serde(flatten)]
    page: PageParams,
    customer_id: Option<String>,
    event_type: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    /// Every other parameter: the snake_case spellings Limitry's SDK guide uses are honoured,
    /// anything else is refused, so that a filter is never silently ignored.
    #[serde(flatten)]
    other: BTreeMap<String, String>,
}

impl ListParams {
    /// Folds in the snake_case spellings (`customer_id`, `event_type`, `start_date`,
    /// `end_date`); a parameter sent both ways must agree, and unknown ones are refused.
    fn canonical(mut self) -> Result<ListParams, AppError> {
        for (snake, camel) in [
            ("customer_id", "customerId"),
            ("event_type", "eventType"),
            ("start_date", "startDate"),
            ("end_date", "endDate"),
        ] {
            let Some(value) = self.other.remove(snake) else { continue };
            let slot = match camel {
                "customerId" => &mut self.customer_id,
                "eventType" => &mut self.event_type,
                "startDate" => &mut self.start_date,
                _ => &mut self.end_date,
            };
            match slot {
                Some(existing) if *existing != value => {
                    return Err(AppError::InvalidField {
                        field: camel.into(),
                        message: format!("was sent as {camel} and as {snake} with different values"),
                    })
                }
                _ => *slot = Some(value),
            }
        }
        if let Some(name) = self.other.keys().next() {
            return Err(AppError::InvalidField {
                field: crate::domain::truncate(name, 64),
                message: "is not a filter of this list: use customerId, eventType, startDate, endDate, limit or cursor"
                    .into(),
            });
        }
        Ok(self)
    }
}

fn parse_cursor(cursor: &str) -> Result<EventCursor, AppError> {
    cursor
        .split_once('_')
        .filter(|(_, id)| crate::domain::ids::is_id("evt", id))
        .and_then(|(at, id)| Some(EventCursor { occurred_at: at.parse().ok()?, id: id.to_string() }))
        .ok_or_else(super::bad_cursor)
}

#[utoipa::path(get, path = "/v1/events", operation_id = "listEvents", tag = "events", security(("bearer" = [])),
    params(("customerId" = Option<String>, Query, description = "also accepted as customer_id"),
           ("eventType" = Option<String>, Query, description = "also accepted as event_type"),
           ("startDate" = Option<String>, Query, description = "inclusive, RFC 3339 or YYYY-MM-DD; also accepted as start_date"),
           ("endDate" = Option<String>, Query, description = "exclusive; also accepted as end_date"),
           PageParams),
    responses((status = 200, body = Page<Event>), (status = 400, body = ErrorBody)))]
/// Events newest first.
pub async fn list(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Event>>, AppError> {
    let params = params.canonical()?;
    let size = params.page.size()?;
    let cursor = params.page.cursor().map(parse_cursor).transpose()?;
    let customer_id = match params.customer_id.as_deref().filter(|c| !c.is_empty()) {
        Some(reference) => match state.engine.db().customer(&project.id, reference).await? {
            Some(customer) => customer.id,
            None => return Ok(Json(Page { data: Vec::new(), next_cursor: None, has_more: false })),
        },
        None => String::new(),
    };
    let start_ms = match params.start_date.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => parse_instant(text, "startDate")?.timestamp_millis(),
        None => i64::MIN,
    };
    let end_ms = match params.end_date.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => parse_instant(text, "endDate")?.timestamp_millis(),
        None => i64::MAX,
    };
    let filter = EventFilter {
        customer_id: &customer_id,
        event_type: params.event_type.as_deref().unwrap_or(""),
        start_ms,
        end_ms,
    };
    let rows = state.engine.db().events_page(&project.id, &filter, cursor.as_ref(), size + 1).await?;
    Ok(Json(Page::from_rows(rows, size, |e| format!("{}_{}", e.timestamp.timestamp_millis(), e.id))))
}
