//! `/v1/webhooks`: endpoints (the signing secret is shown at creation and rotation only), the
//! delivery log, redelivery and test events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageParams};
use crate::auth::actor::ApiActor;
use crate::auth::keys::ApiProject;
use crate::db::projects::Project;
use crate::db::webhooks::Delivery;
use crate::domain::audit::{Actor, AuditChange, AuditKind};
use crate::domain::ids::new_id;
use crate::domain::webhooks::{
    new_secret, EventType, SummaryFrequency, TargetPolicy, WebhookEndpoint, MAX_SECRET_GRACE_HOURS,
};
use crate::domain::{description_text, required_text, FieldError, WholeNumber};
use crate::error::{parse_json, ApiBody, ApiJson, ApiPath, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRequest {
    pub url: Option<String>,
    pub description: Option<String>,
    /// Types to deliver; empty or omitted for all.
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// `daily`, `weekly` or `monthly` to receive `usage.summary`; empty string to stop.
    pub summary_frequency: Option<String>,
}

impl EndpointRequest {
    /// Validates over `base` (the stored endpoint for an update); `policy` says which
    /// receivers are allowed.
    pub fn apply(self, base: WebhookEndpoint, policy: TargetPolicy) -> Result<WebhookEndpoint, FieldError> {
        let url = match self.url {
            Some(url) => {
                let url = required_text(Some(url), "url", 2048)?;
                policy.check_url(&url).map_err(|message| FieldError::invalid("url", message))?;
                url
            }
            None => base.url,
        };
        let event_types = match self.event_types {
            Some(names) => names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    EventType::parse(name).ok_or_else(|| {
                        FieldError::invalid(format!("eventTypes[{i}]"), "is not an event type this service sends")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => base.event_types,
        };
        let summary_frequency = match self.summary_frequency.as_deref() {
            None => base.summary_frequency,
            Some("") => None,
            Some(text) => Some(
                SummaryFrequency::parse(text)
                    .ok_or_else(|| FieldError::invalid("summaryFrequency", "must be daily, weekly or monthly"))?,
            ),
        };
        let enabled = self.enabled.unwrap_or(base.enabled);
        let reenabled = enabled && !base.enabled;
        Ok(WebhookEndpoint {
            url,
            description: description_text(self.description, "description", 512, false)?.or(base.description),
            event_types,
            enabled,
            summary_frequency,
            // Turning an endpoint back on forgets its failures.
            failing_since: if reenabled { None } else { base.failing_since },
            disabled_reason: if reenabled { None } else { base.disabled_reason },
            ..base
        })
    }
}

/// An endpoint with its secret: the answer to creation and rotation only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verifies signatures. Shown only now.
    pub secret: String,
}

pub async fn find_endpoint(state: &AppState, project: &Project, id: &str) -> Result<WebhookEndpoint, AppError> {
    state.engine.db().endpoint(&project.id, id).await?.ok_or_else(|| AppError::not_found("webhook", id))
}

/// Creates an endpoint (the API and the dashboard).
pub async fn create_endpoint(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    request: EndpointRequest,
) -> Result<EndpointWithSecret, AppError> {
    if request.url.is_none() {
        return Err(FieldError::missing("url").into());
    }
    let now = state.engine.now();
    let base = WebhookEndpoint {
        id: new_id("whk", now.timestamp_millis()),
        url: String::new(),
        description: None,
        event_types: Vec::new(),
        enabled: true,
        summary_frequency: None,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
        previous_secret_expires_at: None,
    };
    let endpoint = request.apply(base, state.webhook_policy)?;
    let secret = new_secret();
    state.engine.db().create_endpoint(&project.id, &endpoint, &secret).await?;
    let summary = format!("Webhook endpoint {} created", endpoint.url);
    let change = AuditChange::new(AuditKind::Webhook, "created", &endpoint.id, summary);
    state.engine.log_change(&project.id, actor, change).await;
    Ok(EndpointWithSecret { endpoint, secret })
}

#[utoipa::path(post, path = "/v1/webhooks", operation_id = "createWebhook", tag = "webhooks", security(("bearer" = [])), request_body = EndpointRequest,
    responses((status = 201, body = EndpointWithSecret), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), AppError> {
    Ok((StatusCode::CREATED, Json(create_endpoint(&state, &project, &actor, request).await?)))
}

#[utoipa::path(get, path = "/v1/webhooks", operation_id = "listWebhooks", tag = "webhooks", security(("bearer" = [])),
    params(PageParams), responses((status = 200, body = Page<WebhookEndpoint>)))]
/// Endpoints in creation order. A project holds few, so they are paged in memory.
pub async fn list(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<WebhookEndpoint>>, AppError> {
    let endpoints = state.engine.db().endpoints(&project.id).await?;
    Ok(Json(Page::from_list(endpoints, &params, "whk", |e| &e.id)?))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "getWebhook", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookEndpoint>, AppError> {
    Ok(Json(find_endpoint(&state, &project, &id).await?))
}

/// Applies a change to an endpoint (the API and the dashboard).
pub async fn update_endpoint(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    id: &str,
    request: EndpointRequest,
) -> Result<WebhookEndpoint, AppError> {
    let before = find_endpoint(state, project, id).await?;
    let was_enabled = before.enabled;
    let endpoint = request.apply(WebhookEndpoint { updated_at: state.engine.now(), ..before }, state.webhook_policy)?;
    state.engine.db().update_endpoint(&project.id, &endpoint).await?;
    let state_change = match (was_enabled, endpoint.enabled) {
        (false, true) => "; enabled",
        (true, false) => "; disabled",
        _ => "",
    };
    let summary = format!("Webhook endpoint {} changed{state_change}", endpoint.url);
    let change = AuditChange::new(AuditKind::Webhook, "changed", &endpoint.id, summary);
    state.engine.log_change(&project.id, actor, change).await;
    Ok(endpoint)
}

#[utoipa::path(put, path = "/v1/webhooks/{id}", operation_id = "updateWebhook", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = EndpointRequest,
    responses((status = 200, body = WebhookEndpoint), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<EndpointRequest>,
) -> Result<Json<WebhookEndpoint>, AppError> {
    Ok(Json(update_endpoint(&state, &project, &actor, &id, request).await?))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    delete_endpoint(&state, &project, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an endpoint with its delivery log (the API and the dashboard).
pub async fn delete_endpoint(state: &AppState, project: &Project, actor: &Actor, id: &str) -> Result<(), AppError> {
    let endpoint = find_endpoint(state, project, id).await?;
    state.engine.db().delete_endpoint(&endpoint.id).await?;
    let summary = format!("Webhook endpoint {} deleted with its delivery log", endpoint.url);
    let change = AuditChange::new(AuditKind::Webhook, "deleted", &endpoint.id, summary);
    state.engine.log_change(&project.id, actor, change).await;
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateSecretRequest {
    /// Hours the replaced secret keeps signing beside the new one, 0 to 720; the service's
    /// `--webhook-secret-grace-hours` (24 by default) when omitted, 0 to stop it at once.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 720)]
    pub grace_hours: Option<WholeNumber>,
}

impl RotateSecretRequest {
    /// The grace period asked for, checked; `default` when none was.
    pub fn grace(&self, default: chrono::Duration) -> Result<chrono::Duration, FieldError> {
        match self.grace_hours {
            None => Ok(default),
            Some(WholeNumber(hours)) if (0..=MAX_SECRET_GRACE_HOURS).contains(&hours) => {
                Ok(chrono::Duration::hours(hours))
            }
            Some(_) => Err(FieldError::invalid(
                "graceHours",
                format!("must be a whole number of hours from 0 to {MAX_SECRET_GRACE_HOURS}"),
            )),
        }
    }
}

/// Replaces the signing secret; the old one keeps signing beside it for `grace` (the API and
/// the dashboard). The audit entry is written with the change.
pub async fn rotate_endpoint_secret(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    id: &str,
    grace: chrono::Duration,
) -> Result<EndpointWithSecret, AppError> {
    let endpoint = find_endpoint(state, project, id).await?;
    let secret = new_secret();
    let now = state.engine.now();
    let previous_until = (grace > chrono::Duration::zero()).then(|| now + grace);
    let summary = match previous_until {
        Some(until) => format!(
            "Signing secret of {} rotated; the old one signs too until {}",
            endpoint.url,
            until.format("%Y-%m-%d %H:%M UTC")
        ),
        None => format!("Signing secret of {} rotated; the old one stopped signing at once", endpoint.url),
    };
    let change = AuditChange::new(AuditKind::Webhook, "rotated secret", &endpoint.id, summary);
    state
        .engine
        .db()
        .rotate_endpoint_secret(&project.id, id, &secret, previous_until, now, (&actor.label(), &change))
        .await?;
    let endpoint = WebhookEndpoint { updated_at: now, previous_secret_expires_at: previous_until, ..endpoint };
    Ok(EndpointWithSecret { endpoint, secret })
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", operation_id = "rotateWebhookSecret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = Option<RotateSecretRequest>, description = "optional: the grace period of the old secret"),
    responses((status = 200, body = EndpointWithSecret), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// A new signing secret; the old one keeps signing beside it for the grace period, so every
/// delivery meanwhile carries a signature for each.
pub async fn rotate_secret(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Json<EndpointWithSecret>, AppError> {
    // The body is optional: rotating with none (or `{}`) uses the service's grace period.
    let request: RotateSecretRequest =
        if body.iter().all(u8::is_ascii_whitespace) { RotateSecretRequest::default() } else { parse_json(&body)? };
    let grace = request.grace(state.webhook_secret_grace)?;
    Ok(Json(rotate_endpoint_secret(&state, &project, &actor, &id, grace).await?))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<Delivery>), (status = 404, body = ErrorBody)))]
/// Deliveries newest first, each with every attempt.
pub async fn deliveries(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<Delivery>>, AppError> {
    let size = params.size()?;
    let endpoint = find_endpoint(&state, &project, &id).await?;
    let rows = state.engine.db().deliveries_page(&endpoint.id, params.id_cursor("dlv")?, size + 1).await?;
    Ok(Json(Page::from_rows(rows, size, |d| d.id.clone())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    /// The event's id (the `webhook-id` header), when one was queued.
    pub event_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver", operation_id = "redeliverWebhookDelivery", tag = "webhooks",
    security(("bearer" = [])), params(("id" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 202, description = "queued again with the same webhook-id"), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, AppError> {
    let endpoint = find_endpoint(&state, &project, &id).await?;
    state.engine.db().redeliver(&endpoint.id, &delivery_id, state.engine.now()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Queues a `webhook.test` event for one endpoint (the API and the dashboard).
pub async fn send_test_event(state: &AppState, project: &Project, id: &str) -> Result<Queued, AppError> {
    let endpoint = find_endpoint(state, project, id).await?;
    if !endpoint.enabled {
        return Err(AppError::Conflict("the endpoint is disabled; enable it to send a test".into()));
    }
    let data = serde_json::json!({"endpointId": endpoint.id, "message": "This is a test event from Limitry."});
    let now = state.engine.now();
    let event_id =
        state.engine.db().enqueue(&project.id, EventType::WebhookTest, data, Some(&endpoint.id), now).await?;
    Ok(Queued { event_id })
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", operation_id = "sendWebhookTest", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = Queued), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Queued>), AppError> {
    Ok((StatusCode::ACCEPTED, Json(send_test_event(&state, &project, &id).await?)))
}
