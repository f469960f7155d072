//! The API's one error type, its JSON body, and extractors whose rejections use that body.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::DbError;
use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing API key: send Authorization: Bearer limitry_sk_…")]
    MissingApiKey,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("this API key has been revoked")]
    ExpiredApiKey,
    /// A client token that expired or was revoked.
    #[error("{0}")]
    ExpiredClientToken(&'static str),
    #[error("{0}")]
    InsufficientPermissions(String),
    #[error("rate limit exceeded: retry in {retry_after} seconds")]
    RateLimited { retry_after: i64 },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing required field: {field}")]
    MissingField { field: String },
    #[error("invalid value for {field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("{resource} not found: {id}")]
    NotFound { resource: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is over the size limit")]
    PayloadTooLarge,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> String {
        match self {
            AppError::MissingApiKey => "missing_api_key".into(),
            AppError::InvalidApiKey => "invalid_api_key".into(),
            AppError::ExpiredApiKey | AppError::ExpiredClientToken(_) => "expired_api_key".into(),
            AppError::InsufficientPermissions(_) => "insufficient_permissions".into(),
            AppError::RateLimited { .. } => "rate_limit_exceeded".into(),
            AppError::InvalidRequest(_) => "invalid_request".into(),
            AppError::MissingField { .. } => "missing_required_field".into(),
            AppError::InvalidField { .. } => "invalid_field_value".into(),
            AppError::NotFound { resource, .. } => format!("{resource}_not_found"),
            AppError::Conflict(_) => "conflict".into(),
            AppError::PayloadTooLarge => "payload_too_large".into(),
            AppError::Internal(_) => "internal_error".into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::MissingApiKey
            | AppError::InvalidApiKey
            | AppError::ExpiredApiKey
            | AppError::ExpiredClientToken(_) => StatusCode::UNAUTHORIZED,
            AppError::InsufficientPermissions(_) => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::InvalidRequest(_) | AppError::MissingField { .. } | AppError::InvalidField { .. } => {
                StatusCode::BAD_REQUEST
            }
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        AppError::NotFound { resource, id: crate::domain::truncate(id, 100) }
    }

    fn field(&self) -> Option<&str> {
        match self {
            AppError::MissingField { field } | AppError::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<FieldError> for AppError {
    fn from(err: FieldError) -> Self {
        match err {
            FieldError::Missing { field } => AppError::MissingField { field },
            FieldError::Invalid { field, message } => AppError::InvalidField { field, message },
        }
    }
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Conflict(message) => AppError::Conflict(message),
            DbError::NotFound { resource, id } => AppError::not_found(resource, &id),
            DbError::OutOfRange { field, message } => AppError::InvalidField { field, message },
            // Recording names the meter's field itself; this is a rebuild (a limit, meter or
            // customer change) whose recorded usage no longer fits a counter: no field to name.
            DbError::CounterOutOfRange { limit_id } => {
                AppError::InvalidRequest(crate::db::counters::counter_range_message(&limit_id))
            }
            other => AppError::Internal(other.into()),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub status: u16,
    /// The offending field's JSON path, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why an answer is a 500, carried in the response's extensions to the layer that logs failed
/// requests with their id and route (`telemetry::ObserveLayer`). It never reaches the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// An error and its causes on one line, each cause once (many errors repeat their source's
/// message in their own).
fn cause_chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // The cause goes to the log; the client sees only the code.
        let cause = match &self {
            AppError::Internal(err) => Some(ErrorCause(cause_chain(err))),
            _ => None,
        };
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                status: status.as_u16(),
                field: self.field().map(str::to_string),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        if let AppError::RateLimited { retry_after } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// The raw request body, with our error body when it cannot be read (413 when over the limit).
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(ApiBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::InvalidRequest(format!("could not read the request body: {rejection}"))
            }
        })
    }
}

/// JSON body extractor: malformed JSON, wrong types and missing fields become our error body,
/// naming the field by its path.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiBody(bytes) = ApiBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Answers are written straight into one growing buffer that becomes the body without a copy:
/// `axum::Json` writes through a `BytesMut` writer a call per token, which cost the hot path's
/// answers (checks, records) more than everything else they do.
impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => {
                let mut response = Body::from(body).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            Err(err) => AppError::Internal(err.into()).into_response(),
        }
    }
}

/// Parses a JSON document, mapping serde's errors onto field-named API errors. The document
/// must be one object and nothing after it, and no string in it may hold a NUL character
/// (PostgreSQL cannot store one, so both databases refuse it alike).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::InvalidRequest("the request body must be a JSON object".into()));
    }
    // The plain parse is the fast path; only a body that fails it is parsed again to learn the
    // path of the field at fault.
    let value: T = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(_) => {
            let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
            let value: T = serde_path_to_error::deserialize(&mut *deserializer).map_err(json_error)?;
            deserializer.end().map_err(|_| {
                AppError::InvalidRequest("malformed JSON: unexpected characters after the JSON object".into())
            })?;
            value
        }
    };
    // Only a body that spells a NUL escape pays for the walk that names its field.
    if contains_nul_escape(bytes) {
        if let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(field) = nul_path(&document, String::new()) {
                return Err(AppError::InvalidField { field, message: "must not contain a NUL character".into() });
            }
        }
    }
    Ok(value)
}

/// Whether the JSON text holds `\u0000` as an escape (not as an escaped backslash followed
/// by the text `u0000`).
fn contains_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                return true;
            }
            // Skip the escaped character, so `\\u0000` is not read as an escape.
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The JSON path of the first string (or object key) holding a NUL character.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(if path.is_empty() { ".".into() } else { path }),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| nul_path(item, format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            let field = join(&crate::domain::truncate(&key.replace('\0', "\\u0000"), 70));
            if key.contains('\0') {
                Some(field)
            } else {
                nul_path(item, field)
            }
        }),
        _ => None,
    }
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            AppError::InvalidRequest(format!("malformed JSON: {inner}"))
        }
        serde_json::error::Category::Data => {
            let message = inner.to_string();
            if let Some(name) = missing_field_name(&message) {
                let field = if path == "." { name } else { format!("{path}.{name}") };
                AppError::MissingField { field }
            } else if path == "." {
                AppError::InvalidRequest(format!("invalid request body: {message}"))
            } else {
                let message = message.split(" at line ").next().unwrap_or(&message).to_string();
                AppError::InvalidField { field: path, message }
            }
        }
    }
}

fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Query-string extractor with our error body. No parameter may hold a control character.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // A URI cannot carry a control character as is, only percent-encoded: a query without
        // `%` needs no look at its decoded pairs.
        let pairs: Vec<(String, String)> = match query.contains('%') {
            true => serde_urlencoded::from_str(query)
                .map_err(|e| AppError::InvalidRequest(format!("invalid query string: {e}")))?,
            false => Vec::new(),
        };
        for (name, value) in &pairs {
            if name.chars().any(char::is_control) {
                return Err(AppError::InvalidRequest(
                    "query parameter names must not contain control characters".into(),
                ));
            }
            crate::domain::refuse_control_characters(value, name)?;
        }
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| AppError::InvalidRequest(format!("invalid query string: {e}")))
    }
}

/// Path-parameter extractor with our error body. No parameter may hold a control character
/// (a percent-encoded NUL would otherwise reach the database).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::InvalidRequest(format!("invalid path: {e}")))?;
        for (name, value) in &raw {
            crate::domain::refuse_control_characters(value, name)?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|e| AppError::InvalidRequest(format!("invalid path: {e}")))
    }
}

/// Gives error answers that did not come from `AppError` (the router's 405, a body over the
/// limit read by a form extractor, a rejection of a library extractor) our JSON error body:
/// every answer under `/v1`, and a 413 on any route.
pub async fn uniform_errors(request: Request, next: Next) -> Response {
    let under_api = request.uri().path().starts_with("/v1");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let applies = (status.is_client_error() || status.is_server_error())
        && !is_json
        && (under_api || status == StatusCode::PAYLOAD_TOO_LARGE);
    if !applies {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge.into_response();
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "route_not_found",
        StatusCode::UNAUTHORIZED => "missing_api_key",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_exceeded",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_string(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = ErrorBody { error: ErrorDetail { code: code.into(), message, status: status.as_u16(), field: None } };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(serde_json::to_vec(&body).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Probe {
        customer_id: String,
        values: std::collections::BTreeMap<String, f64>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Probe>(br#"{"values": {}}"#).unwrap_err();
        assert!(matches!(err, AppError::MissingField { ref field } if field == "customerId"), "{err:?}");
        let err = parse_json::<Probe>(br#"{"customerId": "a", "values": {"tokens": "x"}}"#).unwrap_err();
        assert!(matches!(err, AppError::InvalidField { ref field, .. } if field == "values.tokens"), "{err:?}");
        let err = parse_json::<Probe>(br#"{"customerId": "#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }
}
