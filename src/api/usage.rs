//! `GET /v1/usage/summary`: totals per customer × meter for a date range, as JSON or CSV.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use serde::Serialize;
use utoipa::ToSchema;

use super::parse_instant;
use crate::auth::keys::ApiProject;
use crate::db::DbError;
use crate::engine::query::{summary_periods, usage_summary, Span, SummaryPeriod, UsageSummaryRow};
use crate::error::{ApiQuery, AppError, ErrorBody};
use crate::export::csv_response;
use crate::export::Cell;
use crate::server::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSummary {
    pub data: Vec<UsageSummaryRow>,
}

#[utoipa::path(get, path = "/v1/usage/summary", operation_id = "getUsageSummary", tag = "usage", security(("bearer" = [])),
    params(("startDate" = String, Query, description = "inclusive, RFC 3339 or YYYY-MM-DD"),
           ("endDate" = String, Query, description = "exclusive"),
           ("period" = Option<SummaryPeriod>, Query, description = "total by default; periods in UTC")),
    responses((status = 200, body = UsageSummary, description = "JSON, or CSV with Accept: text/csv"),
              (status = 400, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let periods = parse_summary_range(&params, ["startDate", "endDate", "period"])?;
    let rows = usage_summary(state.engine.db(), &project.id, &periods).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        let rows = stream::iter(rows.into_iter().map(|row| Ok::<_, DbError>(usage_cells(row))));
        return Ok(csv_response("usage-summary.csv", &USAGE_HEADER, rows));
    }
    Ok(Json(UsageSummary { data: rows }).into_response())
}

/// The header and cells of usage summary rows as CSV. (The dashboard's `/exports/usage.csv`
/// writes its own, with customer names and each customer's timezone.)
pub const USAGE_HEADER: [&str; 7] =
    ["customer_external_id", "meter_id", "meter_name", "aggregation", "period_start", "period_end", "value"];

pub fn usage_cells(row: UsageSummaryRow) -> Vec<Cell> {
    vec![
        Cell::Text(row.customer_id),
        Cell::Text(row.meter_id),
        Cell::Text(row.meter_name),
        Cell::Text(row.aggregation.as_str().to_string()),
        Cell::Text(row.period_start.to_rfc3339()),
        Cell::Text(row.period_end.to_rfc3339()),
        Cell::Number(row.value.to_string()),
    ]
}

/// Parses `start`/`end`/`period` (names given by the caller) into the periods to summarise.
pub fn parse_summary_range(params: &HashMap<String, String>, names: [&str; 3]) -> Result<Vec<Span>, AppError> {
    let [start_name, end_name, period_name] = names;
    let start = parse_instant(param(params, start_name).ok_or_else(|| missing(start_name))?, start_name)?;
    let end = parse_instant(param(params, end_name).ok_or_else(|| missing(end_name))?, end_name)?;
    if end <= start {
        return Err(invalid(end_name, "must be after the start"));
    }
    let period = match param(params, period_name) {
        None => SummaryPeriod::Total,
        Some(text) => {
            SummaryPeriod::parse(text).ok_or_else(|| invalid(period_name, "must be day, week, month or total"))?
        }
    };
    summary_periods(start, end, period).ok_or_else(|| {
        invalid(period_name, &format!("the range holds more than {} periods", SummaryPeriod::MAX_PERIODS))
    })
}

fn missing(field: &str) -> AppError {
    AppError::MissingField { field: field.to_string() }
}

fn invalid(field: &str, message: &str) -> AppError {
    AppError::InvalidField { field: field.to_string(), message: message.to_string() }
}

/// A query parameter, if present and not empty.
pub(crate) fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty())
}
