//! `/v1/limits/reservations`: settling what a `mode: reserve` check holds.
//!
//! Every write accepts an `Idempotency-Key` header: a retry with the same key gets the first
//! answer back and holds, records or settles nothing again.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::balances::{idempotency_key, replayed};
use super::check_answer::CheckAnswer;
use super::limits::{check_balances, BalanceAmount, ConsumeEvent};
use crate::auth::keys::ApiProject;
use crate::db::balances::IdempotencyClaim;
use crate::db::projects::Project;
use crate::domain::balances::{DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS};
use crate::domain::events::EventInput;
use crate::domain::limit_reservations::LimitReservation;
use crate::domain::{FieldError, WholeNumber};
use crate::engine::balances::Idempotent;
use crate::engine::reservations::{ReserveQuery, Settlement};
use crate::error::{parse_json, ApiBody, ApiPath, AppError, ErrorBody};
use crate::server::AppState;

/// The `Idempotency-Key` header, read alone: the check path does not copy the headers.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        idempotency_key(&parts.headers).map(IdempotencyKey)
    }
}

/// `ttlSeconds` as sent, checked against the hold's bounds.
pub fn ttl_seconds(ttl: Option<WholeNumber>) -> Result<i64, FieldError> {
    let ttl = ttl.map_or(DEFAULT_TTL_SECONDS, |WholeNumber(ttl)| ttl);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(FieldError::invalid("ttlSeconds", format!("must be from 1 to {MAX_TTL_SECONDS}")));
    }
    Ok(ttl)
}

/// Runs a `mode: reserve` check (see `limits::check`); `fingerprint` tells a retry from a
/// different request under the same key.
pub async fn reserve(
    state: &AppState,
    project: &std::sync::Arc<Project>,
    query: &ReserveQuery<'_>,
    key: Option<&str>,
    fingerprint: &str,
) -> Result<Response, AppError> {
    let claim = key.map(|key| IdempotencyClaim { key, fingerprint });
    let outcome = state
        .engine
        .reserve(project, query, claim.as_ref(), |answer| (200, serde_json::to_string(answer).unwrap_or_default()))
        .await?;
    Ok(match outcome {
        Idempotent::Fresh(answer) => CheckAnswer(answer).into_response(),
        Idempotent::Replayed { status, body } => replayed(status, body),
    })
}

async fn settle(
    state: &AppState,
    project: &std::sync::Arc<Project>,
    id: &str,
    settlement: Settlement<'_>,
    key: Option<String>,
    body: &[u8],
) -> Result<Response, AppError> {
    let fingerprint = format!("reservation-{}:{id}:{:x}", settlement.name(), Sha256::digest(body));
    let claim = key.as_deref().map(|key| IdempotencyClaim { key, fingerprint: &fingerprint });
    let outcome = state
        .engine
        .settle_reservation(project, id, settlement, claim.as_ref(), |reservation| {
            (200, serde_json::to_string(reservation).unwrap_or_default())
        })
        .await?;
    Ok(match outcome {
        Idempotent::Fresh(reservation) => Json(reservation).into_response(),
        Idempotent::Replayed { status, body } => replayed(status, body),
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitReservationRequest {
    /// The actual usage, recorded as an event of the reservation's customer, stamped now. Its
    /// idempotency key defaults to the reservation's id.
    pub event: Option<ConsumeEvent>,
    /// The actual amounts to take from the balances the reservation holds, by name; a held
    /// balance not named is taken at what it holds. Up to the hold is always taken; beyond
    /// it, only what is available.
    #[schema(max_items = 20)]
    pub balances: Option<Vec<BalanceAmount>>,
}

#[utoipa::path(post, path = "/v1/limits/reservations/{id}/commit", operation_id = "commitLimitReservation", tag = "limits", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = CommitReservationRequest,
    responses((status = 200, body = LimitReservation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already committed, released or expired")))]
/// Records the actual usage and ends the holds, settling the reservation's balance holds too.
pub async fn commit(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let request: CommitReservationRequest = parse_json(&body)?;
    let event = request.event.ok_or_else(|| FieldError::missing("event"))?;
    let input = EventInput {
        // Replaced by the reservation's customer.
        customer_id: Some(id.clone()),
        event_type: event.event_type,
        values: event.values,
        dimensions: event.dimensions,
        properties: event.properties,
        timestamp: None,
        idempotency_key: event.idempotency_key,
    };
    let event = input.validate("event", state.engine.now(), state.engine.max_backdate())?;
    let balances = check_balances(request.balances)?;
    settle(&state, &project, &id, Settlement::Commit { event, balances: &balances }, key, &body).await
}

#[utoipa::path(post, path = "/v1/limits/reservations/{id}/release", operation_id = "releaseLimitReservation", tag = "limits", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = LimitReservation), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already committed, released or expired")))]
/// Ends the holds without recording usage, releasing the reservation's balance holds too.
pub async fn release(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, AppError> {
    settle(&state, &project, &id, Settlement::Release, key, b"").await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtendReservationRequest {
    /// Seconds from now until the holds lapse (default 300, at most 3600).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<WholeNumber>,
}

#[utoipa::path(post, path = "/v1/limits/reservations/{id}/extend", operation_id = "extendLimitReservation", tag = "limits", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = ExtendReservationRequest,
    responses((status = 200, body = LimitReservation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already committed, released or expired")))]
/// Keeps the holds (and the balance holds) for `ttlSeconds` from now.
pub async fn extend(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let request: ExtendReservationRequest = parse_json(&body)?;
    let ttl_seconds = ttl_seconds(request.ttl_seconds)?;
    settle(&state, &project, &id, Settlement::Extend { ttl_seconds }, key, &body).await
}

#[utoipa::path(get, path = "/v1/limits/reservations/{id}", operation_id = "getLimitReservation", tag = "limits", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = LimitReservation), (status = 404, body = ErrorBody)))]
/// A reservation with its audit trail.
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LimitReservation>, AppError> {
    Ok(Json(state.engine.reservation(&project, &id).await?))
}
