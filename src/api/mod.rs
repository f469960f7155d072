//! The JSON API under `/v1`: thin handlers that parse, call the engine or the database, and
//! shape the answer. One file per resource.

pub mod balances;
pub mod check_answer;
pub mod client;
pub mod customers;
pub mod events;
pub mod limits;
pub mod meters;
pub mod openapi;
pub mod project;
pub mod reservations;
pub mod usage;
pub mod webhooks;

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/project", get(project::get_project))
        .route("/v1/customers", post(customers::create).get(customers::list))
        .route("/v1/customers/{id}", get(customers::get).put(customers::update).delete(customers::delete))
        .route("/v1/customers/{id}/usage", get(customers::usage))
        .route("/v1/customers/{id}/balances", get(balances::customer_balances))
        .route("/v1/balances", post(balances::create))
        .route("/v1/balances/check", post(balances::check))
        .route("/v1/balances/credit", post(balances::credit))
        .route("/v1/balances/debit", post(balances::debit))
        .route("/v1/balances/reserve", post(balances::reserve))
        .route("/v1/balances/{id}", get(balances::get))
        .route("/v1/balances/{id}/transactions", get(balances::transactions))
        .route("/v1/reservations/{id}/commit", post(balances::commit))
        .route("/v1/reservations/{id}/release", post(balances::release))
        .route("/v1/events/record", post(events::record))
        .route("/v1/events/batch", post(events::batch))
        .route("/v1/events", get(events::list))
        .route("/v1/meters", post(meters::create).get(meters::list))
        .route("/v1/meters/{id}", get(meters::get).put(meters::update).delete(meters::delete))
        .route("/v1/meters/{id}/query", post(meters::query))
        .route("/v1/limits", post(limits::create).get(limits::list))
        .route("/v1/limits/check", post(limits::check))
        .route("/v1/limits/reservations/{id}", get(reservations::get))
        .route("/v1/limits/reservations/{id}/commit", post(reservations::commit))
        .route("/v1/limits/reservations/{id}/release", post(reservations::release))
        .route("/v1/limits/reservations/{id}/extend", post(reservations::extend))
        .route("/v1/limits/{id}", get(limits::get).put(limits::update).delete(limits::delete))
        .route("/v1/limits/{id}/usage", get(limits::usage))
        .route("/v1/usage/summary", get(usage::summary))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", get(webhooks::get).put(webhooks::update).delete(webhooks::delete))
        .route("/v1/webhooks/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", post(webhooks::redeliver))
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/client-tokens", post(client::create))
        .route("/v1/client-tokens/{id}", get(client::get_token).delete(client::revoke))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
}

/// Unknown paths, inside `/v1` or not: the API's JSON error, so a client with a wrong base
/// URL (one without `/v1`) reads an error it understands.
async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found("route", uri.path())
}

/// `?limit=&cursor=` as sent; validated by `size` and `id_cursor`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size: 1–100, default 50.
    pub fn size(&self) -> Result<i64, AppError> {
        match self.limit.as_deref() {
            None | Some("") => Ok(50),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(AppError::InvalidField {
                    field: "limit".into(),
                    message: "must be an integer from 1 to 100".into(),
                }),
            },
        }
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }

    /// The cursor of a list keyed by id: it must be an id of `prefix`, as a previous page
    /// hands out, so that garbage is refused rather than silently read as "the end".
    pub fn id_cursor(&self, prefix: &str) -> Result<Option<&str>, AppError> {
        match self.cursor() {
            Some(cursor) if !crate::domain::ids::is_id(prefix, cursor) => Err(bad_cursor()),
            other => Ok(other),
        }
    }
}

/// The error for a cursor no previous page handed out.
pub fn bad_cursor() -> AppError {
    AppError::InvalidField { field: "cursor".into(), message: "is not a cursor from a previous page".into() }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Pages a short list held in memory, in its given order: the cursor is the id of the last
    /// item of the previous page and must name an item of the list.
    pub fn from_list(
        rows: Vec<T>,
        params: &PageParams,
        prefix: &str,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<Page<T>, AppError> {
        let size = params.size()?;
        let start = match params.id_cursor(prefix)? {
            Some(cursor) => rows.iter().position(|row| id_of(row) == cursor).ok_or_else(bad_cursor)? + 1,
            None => 0,
        };
        let rows: Vec<T> = rows.into_iter().skip(start).take(size as usize + 1).collect();
        Ok(Page::from_rows(rows, size, |row| id_of(row).to_string()))
    }

    /// Builds a page from `size + 1` fetched rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, size: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let has_more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_cursor = if has_more { rows.last().map(cursor_of) } else { None };
        Page { data: rows, next_cursor, has_more }
    }
}

/// Parses an RFC 3339 instant or a `YYYY-MM-DD` date (midnight UTC) from a named field.
pub fn parse_instant(text: &str, field: &str) -> Result<chrono::DateTime<chrono::Utc>, AppError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| AppError::InvalidField {
            field: field.into(),
            message: "must be an RFC 3339 timestamp or a YYYY-MM-DD date".into(),
        })
}
