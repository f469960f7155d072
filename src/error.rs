//! The API's one error type, its JSON body, and extractors whose rejections use that body.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
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
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> String {
        match self {
            AppError::MissingApiKey => "missing_api_key".into(),
            AppError::InvalidApiKey => "invalid_api_key".into(),
            AppError::ExpiredApiKey => "expired_api_key".into(),
            AppError::InvalidRequest(_) => "invalid_request".into(),
            AppError::MissingField { .. } => "missing_required_field".into(),
            AppError::InvalidField { .. } => "invalid_field_value".into(),
            AppError::NotFound { resource, .. } => format!("{resource}_not_found"),
            AppError::Conflict(_) => "conflict".into(),
            AppError::Internal(_) => "internal_error".into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::MissingApiKey | AppError::InvalidApiKey | AppError::ExpiredApiKey => StatusCode::UNAUTHORIZED,
            AppError::InvalidRequest(_) | AppError::MissingField { .. } | AppError::InvalidField { .. } => {
                StatusCode::BAD_REQUEST
            }
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            // The cause stays in the log; the client sees only the code.
            tracing::error!(error = ?err, "internal error");
        }
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                status: status.as_u16(),
                field: self.field().map(str::to_string),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// JSON body extractor: malformed JSON, wrong types and missing fields become our error body,
/// naming the field by its path.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::InvalidRequest(format!("could not read the request body: {e}")))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document, mapping serde's errors onto field-named API errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::InvalidRequest("the request body must be a JSON object".into()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => AppError::InvalidRequest(format!("malformed JSON: {inner}")),
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
    })
}

fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Query-string extractor with our error body.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| AppError::InvalidRequest(format!("invalid query string: {e}")))
    }
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
