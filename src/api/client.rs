//! Client tokens: `/v1/client-tokens` (API key: mint, read, revoke) and the routes a browser
//! calls with a token, `/v1/client/…`, always for the token's own customer. The client routes
//! call the same handlers as their API-key counterparts with the customer set by the token.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::ToSchema;

use super::customers::{MeterUsage, UsageResponse};
use super::events::RecordResponse;
use super::limits::{BalanceAmount, CheckRequest};
use crate::auth::client_tokens::{
    mint_client_token, ClientCaller, TokenGrant, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, MIN_TTL_SECONDS,
};
use crate::auth::keys::ApiProject;
use crate::db::client_tokens::ClientToken;
use crate::domain::customers::{CUSTOMER_ID_PREFIX, MAX_EXTERNAL_ID};
use crate::domain::events::EventInput;
use crate::domain::{required_text, FieldError, WholeNumber};
use crate::engine::CheckResponse;
use crate::error::{ApiJson, ApiPath, AppError, ErrorBody};
use crate::server::AppState;

/// Largest `context` or `serverContext`, as JSON text.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// The routes a client token reaches, with CORS for the configured origins.
pub fn client_routes(allowed_origins: &[String]) -> Router<AppState> {
    // Limitry's documentation places these routes both under the base URL and at
    // `/client/…` outside it, and reads the token back at `/client/context` too: every
    // spelling serves the same handler.
    let routes = Router::new()
        .route("/v1/client/token", get(token))
        .route("/v1/client/context", get(token))
        .route("/v1/client/limits/check", post(check))
        .route("/v1/client/events/record", post(record))
        .route("/v1/client/events/summary", get(summary))
        .route("/client/token", get(token))
        .route("/client/context", get(token))
        .route("/client/limits/check", post(check))
        .route("/client/events/record", post(record))
        .route("/client/events/summary", get(summary));
    match cors_layer(allowed_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// CORS for the client routes: none without configured origins (browsers then allow only
/// pages served from the service's own origin).
fn cors_layer(allowed_origins: &[String]) -> Option<CorsLayer> {
    if allowed_origins.is_empty() {
        return None;
    }
    let origin = if allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}

/// Checks `--cors-allowed-origins`: `*`, or origins such as `https://app.example.com`
/// (scheme, host and optional port; no path).
pub fn parse_origins(values: &[String]) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if value == "*" {
            origins.push(value.to_string());
            continue;
        }
        let url = url::Url::parse(value)
            .map_err(|e| anyhow::anyhow!("--cors-allowed-origins: {value} is not an origin: {e}"))?;
        let origin = url.origin().ascii_serialization();
        if !matches!(url.scheme(), "http" | "https") || origin != value.trim_end_matches('/') {
            anyhow::bail!(
                "--cors-allowed-origins: {value} is not an origin: give the scheme, host and port only, \
                 e.g. https://app.example.com"
            );
        }
        origins.push(origin);
    }
    Ok(origins)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTokenRequest {
    /// The customer the token acts for: an externalId (created on first record) or a `cust_…`
    /// id. May instead be given as `context.customerId`.
    #[schema(value_type = String, min_length = 1)]
    pub customer_id: Option<String>,
    /// Public: the browser reads it back from `GET /v1/client/token`. A JSON object, at most
    /// 16 KiB. (`publicMetadata` is accepted as another name.)
    #[serde(alias = "publicMetadata")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
    /// Private: only API-key routes show it. A JSON object, at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub server_context: Option<serde_json::Value>,
    /// Lifetime, 1–86400 seconds; default 3600.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86400)]
    pub ttl_seconds: Option<WholeNumber>,
}

/// A new client token. `token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTokenCreated {
    /// `ct_…`
    pub id: String,
    /// `limitry_ct_…`: hand it to the browser.
    pub token: String,
    pub customer_id: String,
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// A client token as the backend sees it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTokenDetails {
    pub id: String,
    pub customer_id: String,
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    #[schema(value_type = Object)]
    pub server_context: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// What the browser may know about its token: never the server context.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTokenInfo {
    pub id: String,
    pub project_id: String,
    pub customer_id: String,
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

fn context_object(value: Option<serde_json::Value>, field: &str) -> Result<serde_json::Value, FieldError> {
    let value = value.unwrap_or_else(|| serde_json::json!({}));
    if !value.is_object() {
        return Err(FieldError::invalid(field, "must be a JSON object"));
    }
    if serde_json::to_string(&value).map_or(0, |text| text.len()) > MAX_CONTEXT_BYTES {
        return Err(FieldError::invalid(field, format!("must be at most {MAX_CONTEXT_BYTES} bytes of JSON")));
    }
    Ok(value)
}

impl ClientTokenRequest {
    fn validate(self) -> Result<TokenGrant, FieldError> {
        let context = context_object(self.context, "context")?;
        let server_context = context_object(self.server_context, "serverContext")?;
        let in_context = match context.get("customerId") {
            None => None,
            Some(serde_json::Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(FieldError::invalid("context.customerId", "must be a string")),
        };
        let customer_ref = match (self.customer_id, in_context) {
            (Some(given), Some(in_context)) if given != in_context => {
                return Err(FieldError::invalid("context.customerId", "differs from customerId"))
            }
            (Some(given), _) => required_text(Some(given), "customerId", MAX_EXTERNAL_ID)?,
            (None, Some(in_context)) => required_text(Some(in_context), "context.customerId", MAX_EXTERNAL_ID)?,
            (None, None) => return Err(FieldError::missing("customerId")),
        };
        let ttl_seconds = match self.ttl_seconds {
            None => DEFAULT_TTL_SECONDS,
            Some(WholeNumber(n)) if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&n) => n,
            Some(_) => {
                return Err(FieldError::invalid(
                    "ttlSeconds",
                    format!("must be a whole number from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}"),
                ))
            }
        };
        Ok(TokenGrant { customer_ref, context, server_context, ttl_seconds })
    }
}

#[utoipa::path(post, path = "/v1/client-tokens", operation_id = "createClientToken", tag = "client tokens", security(("bearer" = [])),
    request_body = ClientTokenRequest,
    responses((status = 201, body = ClientTokenCreated), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "a cust_… id that names no customer")))]
/// Mints a token for one customer, for a browser or mobile app to use on `/v1/client/…`.
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiJson(request): ApiJson<ClientTokenRequest>,
) -> Result<(StatusCode, Json<ClientTokenCreated>), AppError> {
    let grant = request.validate()?;
    let db = state.engine.db();
    if grant.customer_ref.starts_with(CUSTOMER_ID_PREFIX)
        && db.customer(&project.id, &grant.customer_ref).await?.is_none()
    {
        return Err(AppError::not_found("customer", &grant.customer_ref));
    }
    let now_ms = state.engine.now().timestamp_millis();
    let minted = mint_client_token(db, &project.id, &grant, now_ms).await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientTokenCreated {
            id: minted.id,
            token: minted.secret,
            customer_id: grant.customer_ref,
            context: grant.context,
            expires_at: minted.expires_at,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/client-tokens/{id}", operation_id = "getClientToken", tag = "client tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "ct_… id")),
    responses((status = 200, body = ClientTokenDetails), (status = 404, body = ErrorBody)))]
/// A token's customer, contexts (the server context included) and status.
pub async fn get_token(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientTokenDetails>, AppError> {
    let token = state
        .engine
        .db()
        .client_token(&project.id, &id)
        .await?
        .ok_or_else(|| AppError::not_found("client_token", &id))?;
    let status = match (token.revoked_at, token.expires_at <= state.engine.now()) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "active",
    };
    let ClientToken { id, customer_ref, context, server_context, created_at, expires_at, revoked_at, .. } = token;
    Ok(Json(ClientTokenDetails {
        id,
        customer_id: customer_ref,
        context,
        server_context,
        created_at,
        expires_at,
        revoked_at,
        status: status.to_string(),
    }))
}

#[utoipa::path(delete, path = "/v1/client-tokens/{id}", operation_id = "revokeClientToken", tag = "client tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "ct_… id")),
    responses((status = 204, description = "revoked: the token gets 401 from now on"), (status = 404, body = ErrorBody)))]
/// Revokes a token at once, on every instance.
pub async fn revoke(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    state.engine.db().revoke_client_token(&project.id, &id, state.engine.now().timestamp_millis()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/client/token", operation_id = "getClientTokenInfo", tag = "client", security(("clientToken" = [])),
    responses((status = 200, body = ClientTokenInfo)))]
/// The calling token's project, customer, public context and expiry.
pub async fn token(caller: ClientCaller) -> Json<ClientTokenInfo> {
    Json(ClientTokenInfo {
        id: caller.token.id,
        project_id: caller.project.id.clone(),
        customer_id: caller.token.customer_ref,
        context: caller.token.context,
        expires_at: caller.token.expires_at,
    })
}

/// A body's `customerId` may only repeat the token's own customer.
fn own_customer(sent: Option<String>, token: &ClientToken) -> Result<String, AppError> {
    match sent {
        Some(sent) if sent != token.customer_ref => Err(AppError::InvalidField {
            field: "customerId".into(),
            message: "a client token acts only for its own customer: leave customerId out".into(),
        }),
        _ => Ok(token.customer_ref.clone()),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCheckRequest {
    /// Set by the token; if sent, it must be the token's customer.
    pub customer_id: Option<String>,
    /// At most 32 pairs.
    pub dimensions: Option<BTreeMap<String, String>>,
    /// The amount about to be used: a limit passes only if used + requested <= limit.
    #[schema(value_type = Option<f64>)]
    pub requested: Option<serde_json::Number>,
    /// The customer's balances the work will draw on (at most 20).
    #[schema(max_items = 20)]
    pub balances: Option<Vec<BalanceAmount>>,
}

#[utoipa::path(post, path = "/v1/client/limits/check", operation_id = "clientCheckLimits", tag = "client", security(("clientToken" = [])),
    request_body = ClientCheckRequest,
    responses((status = 200, body = CheckResponse, description = "the token's customer; a refusal is allowed: false")))]
/// `POST /v1/limits/check` for the token's customer.
pub async fn check(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiJson(request): ApiJson<ClientCheckRequest>,
) -> Result<axum::response::Response, AppError> {
    let customer_id = own_customer(request.customer_id, &caller.token)?;
    let request = CheckRequest {
        customer_id: Some(customer_id),
        dimensions: request.dimensions,
        requested: request.requested,
        balances: request.balances,
        ..CheckRequest::default()
    };
    let no_key = super::reservations::IdempotencyKey(None);
    super::limits::check(State(state), ApiProject(caller.project), no_key, ApiJson(request)).await
}

/// An event for the token's customer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientEventInput {
    /// Set by the token; if sent, it must be the token's customer.
    pub customer_id: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1)]
    pub event_type: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    pub values: Option<BTreeMap<String, serde_json::Number>>,
    pub dimensions: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub properties: Option<serde_json::Value>,
    /// RFC 3339; defaults to now.
    pub timestamp: Option<String>,
    pub idempotency_key: Option<String>,
}

#[utoipa::path(post, path = "/v1/client/events/record", operation_id = "clientRecordEvent", tag = "client", security(("clientToken" = [])),
    request_body = ClientEventInput,
    responses((status = 200, body = RecordResponse)))]
/// `POST /v1/events/record` for the token's customer.
pub async fn record(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiJson(input): ApiJson<ClientEventInput>,
) -> Result<ApiJson<RecordResponse>, AppError> {
    let customer_id = own_customer(input.customer_id, &caller.token)?;
    let input = EventInput {
        customer_id: Some(customer_id),
        event_type: input.event_type,
        values: input.values,
        dimensions: input.dimensions,
        properties: input.properties,
        timestamp: input.timestamp,
        idempotency_key: input.idempotency_key,
    };
    super::events::record(State(state), ApiProject(caller.project), ApiJson(input)).await
}

#[utoipa::path(get, path = "/v1/client/events/summary", operation_id = "clientUsageSummary", tag = "client", security(("clientToken" = [])),
    responses((status = 200, body = UsageResponse,
        description = "every meter's value for the token's customer in its current day and month windows and its limits' windows; empty before its first record")))]
/// `GET /v1/customers/{id}/usage` for the token's customer.
pub async fn summary(State(state): State<AppState>, caller: ClientCaller) -> Result<Json<UsageResponse>, AppError> {
    let customer_ref = caller.token.customer_ref.clone();
    match super::customers::usage(State(state), ApiProject(caller.project), ApiPath(customer_ref.clone())).await {
        // A customer nobody has recorded usage for yet has none.
        Err(AppError::NotFound { resource: "customer", .. }) => {
            Ok(Json(UsageResponse { customer_id: customer_ref, data: Vec::<MeterUsage>::new() }))
        }
        other => other,
    }
}
