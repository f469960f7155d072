//! `GET /v1/usage/summary`: totals per customer × meter for a date range, as JSON or CSV.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::keys::ApiProject;
use crate::db::DbError;
use crate::engine::query::{usage_summary, UsageSummaryRow};
use crate::error::{AppError, ErrorBody};
use crate::export::csv_response;
use crate::server::AppState;
use crate::ui::downloads::{parse_summary_range, usage_cells, USAGE_HEADER};

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSummary {
    pub data: Vec<UsageSummaryRow>,
}

#[utoipa::path(get, path = "/v1/usage/summary", tag = "usage", security(("bearer" = [])),
    params(("startDate" = String, Query, description = "inclusive, RFC 3339 or YYYY-MM-DD"),
           ("endDate" = String, Query, description = "exclusive"),
           ("period" = Option<String>, Query, description = "day, week, month or total (default), in UTC")),
    responses((status = 200, body = UsageSummary, description = "JSON, or CSV with Accept: text/csv"),
              (status = 400, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
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
