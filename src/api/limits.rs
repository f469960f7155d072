//! `/v1/limits`: CRUD and the check.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::check_answer::CheckAnswer;
use super::reservations::{self, ttl_seconds, IdempotencyKey};
use super::{Page, PageParams};
use crate::auth::actor::ApiActor;
use crate::auth::keys::ApiProject;
use crate::db::projects::Project;
use crate::domain::audit::Actor;
use crate::domain::balances::positive_amount;
use crate::domain::customers::MAX_EXTERNAL_ID;
use crate::domain::events::EventInput;
use crate::domain::ids::new_id;
use crate::domain::limits::{FailMode, Limit};
use crate::domain::meters::{Aggregation, Meter};
use crate::domain::quantity::Quantity;
use crate::domain::windows::Period;
use crate::domain::{at_most, required_text, validate_dimensions, FieldError, WholeNumber};
use crate::engine::reservations::ReserveQuery;
use crate::engine::rules::LimitOwner;
use crate::engine::{BalanceRequirement, CheckQuery, CheckResponse};
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitRequest {
    pub name: Option<String>,
    pub meter_id: Option<String>,
    #[schema(value_type = Option<f64>)]
    pub limit_value: Option<serde_json::Number>,
    /// Required on create.
    #[schema(value_type = Option<Period>)]
    pub period: Option<String>,
    /// A sliding window over the last `period` instead of calendar windows (default false):
    /// a minute in one-second buckets, an hour in one-minute buckets, 24 hours, 7 days or
    /// 30 days (`month`) in one-hour buckets. Not for `annual` or `all_time`, nor for `max`
    /// or `latest` meters.
    pub rolling: Option<bool>,
    /// The customer (id or externalId) this limit is for; omit for the project default.
    pub customer_id: Option<String>,
    pub dimension_filters: Option<BTreeMap<String, String>>,
    /// Percentages 1–100, at most 10. `null` or `[]` clears them; omitted keeps them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<i64>>, max_items = 10, nullable)]
    pub alert_thresholds: Option<Option<Vec<WholeNumber>>>,
    /// open (default) or closed.
    #[schema(value_type = Option<FailMode>)]
    pub fail_mode: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Most alert thresholds one limit may carry.
pub const MAX_THRESHOLDS: usize = 10;
/// Most balances one check may name.
pub const MAX_CHECK_BALANCES: usize = 20;

fn positive_quantity(number: &serde_json::Number, field: &str) -> Result<Quantity, FieldError> {
    match number.as_f64().and_then(Quantity::from_f64) {
        Some(q) if q > Quantity::ZERO => Ok(q),
        _ => Err(FieldError::invalid(field, "must be a number greater than 0")),
    }
}

impl LimitRequest {
    /// Validates over `base`; meter and customer references are resolved by the caller.
    fn apply(self, base: Limit) -> Result<Limit, FieldError> {
        let rolling_asked = self.rolling == Some(true);
        let mut alert_thresholds = match self.alert_thresholds {
            Some(None) => Vec::new(),
            Some(Some(list)) => {
                at_most(list.len(), MAX_THRESHOLDS, "alertThresholds", "thresholds")?;
                list.into_iter()
                    .enumerate()
                    .map(|(i, WholeNumber(p))| {
                        u8::try_from(p).ok().filter(|p| (1..=100).contains(p)).ok_or_else(|| {
                            FieldError::invalid(format!("alertThresholds[{i}]"), "must be a percentage from 1 to 100")
                        })
                    })
                    .collect::<Result<Vec<u8>, _>>()?
            }
            None => base.alert_thresholds,
        };
        alert_thresholds.sort_unstable();
        alert_thresholds.dedup();
        Ok(Limit {
            name: match self.name {
                Some(name) => required_text(Some(name), "name", 128)?,
                None => base.name,
            },
            limit_value: match self.limit_value {
                Some(value) => positive_quantity(&value, "limitValue")?,
                None => base.limit_value,
            },
            period: match self.period {
                Some(text) => Period::parse(&text).ok_or_else(|| {
                    FieldError::invalid(
                        "period",
                        "must be one of minute, hour, day, week, month, annual, all_time, concurrent",
                    )
                })?,
                None => base.period,
            },
            dimension_filters: match self.dimension_filters {
                Some(filters) => validate_dimensions(Some(filters), "dimensionFilters")?,
                None => base.dimension_filters,
            },
            alert_thresholds,
            fail_mode: match self.fail_mode {
                Some(text) => {
                    FailMode::parse(&text).ok_or_else(|| FieldError::invalid("failMode", "must be open or closed"))?
                }
                None => base.fail_mode,
            },
            rolling: self.rolling.unwrap_or(base.rolling),
            ..base
        })
        .and_then(|limit| {
            if limit.rolling && limit.period.rolling().is_none() {
                // The field this request changed, so the message points at what to fix.
                let field = if rolling_asked { "rolling" } else { "period" };
                let why = match limit.period {
                    Period::Concurrent => "a concurrency limit counts holds, not a span of time",
                    _ => "rolling windows reach back at most a month",
                };
                return Err(FieldError::invalid(
                    field,
                    format!("{why}: rolling cannot be true with period {}", limit.period),
                ));
            }
            Ok(limit)
        })
    }
}

/// Rolling windows add up their buckets: only meters that sum can roll.
fn check_rolling_meter(limit: &Limit, meter: &Meter) -> Result<(), FieldError> {
    if limit.rolling && !matches!(meter.aggregation, Aggregation::Sum | Aggregation::Count) {
        return Err(FieldError::invalid(
            "rolling",
            format!(
                "cannot be true with a {} meter: rolling windows add up their buckets, so only sum and count \
                 meters can roll",
                meter.aggregation.as_str()
            ),
        ));
    }
    Ok(())
}

async fn find_limit(state: &AppState, project: &Project, id: &str) -> Result<Limit, AppError> {
    state.engine.db().limit(&project.id, id).await?.ok_or_else(|| AppError::not_found("limit", id))
}

/// Validates the request, resolves its meter and customer, and saves it with fresh counters.
async fn save(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    mut request: LimitRequest,
    base: Limit,
    is_new: bool,
) -> Result<Limit, AppError> {
    let meter_id = request.meter_id.take().unwrap_or_else(|| base.meter_id.clone());
    let customer_ref = request.customer_id.take();
    let limit = request.apply(base)?;
    let meter = state
        .engine
        .db()
        .meter(&project.id, &meter_id)
        .await?
        .ok_or_else(|| AppError::not_found("meter", &meter_id))?;
    check_rolling_meter(&limit, &meter)?;
    let customer_ref = match customer_ref {
        Some(reference) if !reference.is_empty() => {
            Some(required_text(Some(reference), "customerId", MAX_EXTERNAL_ID)?)
        }
        other => other,
    };
    let owner = match customer_ref.as_deref() {
        None => LimitOwner::Unchanged,
        Some("") => LimitOwner::Project,
        Some(reference) => LimitOwner::Customer(reference),
    };
    Ok(state.engine.save_limit(project, limit, &meter, owner, is_new, actor).await?)
}

#[utoipa::path(post, path = "/v1/limits", operation_id = "createLimit", tag = "limits", security(("bearer" = [])), request_body = LimitRequest,
    responses((status = 201, body = Limit), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "meter_not_found for an unknown meterId; customer_not_found for a cust_… id that names no customer"),
              (status = 409, body = ErrorBody, description = "the meter or customer was deleted meanwhile")))]
/// Creates a limit; usage already recorded in its current windows counts from the start.
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<LimitRequest>,
) -> Result<(StatusCode, Json<Limit>), AppError> {
    Ok((StatusCode::CREATED, Json(create_limit(&state, &project, &actor, request).await?)))
}

/// Validates and creates a limit with its counters (the API and the dashboard).
pub async fn create_limit(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    request: LimitRequest,
) -> Result<Limit, AppError> {
    for (present, field) in [
        (request.name.is_some(), "name"),
        (request.meter_id.is_some(), "meterId"),
        (request.limit_value.is_some(), "limitValue"),
        (request.period.is_some(), "period"),
    ] {
        if !present {
            return Err(FieldError::missing(field).into());
        }
    }
    let now = state.engine.now();
    let base = Limit {
        id: new_id("lmt", now.timestamp_millis()),
        project_id: project.id.clone(),
        name: String::new(),
        meter_id: String::new(),
        limit_value: Quantity::ONE,
        period: Period::Day,
        rolling: false,
        customer_id: None,
        dimension_filters: BTreeMap::new(),
        alert_thresholds: Vec::new(),
        fail_mode: FailMode::Open,
        created_at: now,
        updated_at: now,
    };
    save(state, project, actor, request, base, true).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    #[serde(flatten)]
    page: PageParams,
    customer_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/limits", operation_id = "listLimits", tag = "limits", security(("bearer" = [])),
    params(("customerId" = Option<String>, Query, description = "only this customer's own limits"),
           PageParams),
    responses((status = 200, body = Page<Limit>), (status = 404, body = ErrorBody, description = "no such customer")))]
pub async fn list(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Limit>>, AppError> {
    let size = params.page.size()?;
    let customer_id = match params.customer_id.as_deref().filter(|c| !c.is_empty()) {
        Some(reference) => Some(super::customers::find_customer(&state, &project, reference).await?.id),
        None => None,
    };
    let rows = state
        .engine
        .db()
        .limits_page(&project.id, params.page.id_cursor("lmt")?, customer_id.as_deref(), size + 1)
        .await?;
    Ok(Json(Page::from_rows(rows, size, |l| l.id.clone())))
}

#[utoipa::path(get, path = "/v1/limits/{id}", operation_id = "getLimit", tag = "limits", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Limit), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Limit>, AppError> {
    Ok(Json(find_limit(&state, &project, &id).await?))
}

#[utoipa::path(put, path = "/v1/limits/{id}", operation_id = "updateLimit", tag = "limits", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = LimitRequest,
    responses((status = 200, body = Limit), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the meter or customer was deleted meanwhile")))]
/// Changes a limit; its counters are rebuilt for the current windows.
pub async fn update(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<LimitRequest>,
) -> Result<Json<Limit>, AppError> {
    Ok(Json(update_limit(&state, &project, &actor, &id, request).await?))
}

/// Validates and applies a change to a limit, rebuilding its counters (the API and the dashboard).
pub async fn update_limit(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    id: &str,
    request: LimitRequest,
) -> Result<Limit, AppError> {
    let before = find_limit(state, project, id).await?;
    let base = Limit { updated_at: state.engine.now(), ..before };
    save(state, project, actor, request, base, false).await
}

#[utoipa::path(delete, path = "/v1/limits/{id}", operation_id = "deleteLimit", tag = "limits", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    delete_limit(&state, &project, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_limit(state: &AppState, project: &Project, actor: &Actor, id: &str) -> Result<(), AppError> {
    let limit = find_limit(state, project, id).await?;
    state.engine.delete_limit(project, &limit, actor).await?;
    Ok(())
}

/// Who is closest to a limit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitUsageResponse {
    pub limit_id: String,
    #[schema(value_type = f64)]
    pub limit: Quantity,
    pub period: Period,
    /// The customers the limit governs with usage in their current window, most used first.
    pub data: Vec<CustomerLimitUsageEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerLimitUsageEntry {
    /// The customer's `cust_…` id.
    pub customer_id: String,
    pub customer_external_id: String,
    #[schema(value_type = f64)]
    pub used: Quantity,
    #[schema(value_type = f64)]
    pub remaining: Quantity,
    pub exceeded: bool,
    /// The start of the customer's current window (their timezone and billing anchor); for a
    /// rolling limit, the start of the window's oldest bucket.
    pub window_start: DateTime<Utc>,
    /// Window end in Unix seconds; null for `all_time`. For a rolling limit, when the oldest
    /// usage leaves the window, or while the limit is reached, when enough has left to pass.
    pub reset: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UsageParams {
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/limits/{id}/usage", operation_id = "getLimitUsage", tag = "limits", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "how many customers, 1–100 (default 50)", minimum = 1, maximum = 100)),
    responses((status = 200, body = LimitUsageResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Usage by customer in the current window: the customers the limit governs that have used
/// some of it, closest to the limit first. Customers without usage are left out.
pub async fn usage(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Json<LimitUsageResponse>, AppError> {
    let count = PageParams { limit: params.limit, cursor: None }.size()?;
    let limit = find_limit(&state, &project, &id).await?;
    let usage = state.engine.limit_usage(&project, &limit, usize::try_from(count).unwrap_or(50)).await?;
    Ok(Json(LimitUsageResponse {
        limit_id: limit.id,
        limit: limit.limit_value,
        period: limit.period,
        data: usage
            .into_iter()
            .map(|entry| CustomerLimitUsageEntry {
                customer_id: entry.customer.id,
                customer_external_id: entry.customer.external_id,
                used: entry.status.used,
                remaining: entry.status.remaining,
                exceeded: entry.status.exceeded,
                window_start: entry.window_start,
                reset: entry.status.reset,
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckRequest {
    /// The customer's externalId (or cust_… id).
    #[schema(value_type = String, required = true, min_length = 1)]
    pub customer_id: Option<String>,
    /// At most 32 pairs.
    pub dimensions: Option<BTreeMap<String, String>>,
    /// The amount about to be used: a limit passes only if used + requested <= limit.
    #[schema(value_type = Option<f64>)]
    pub requested: Option<serde_json::Number>,
    /// Balances the work will draw on (at most 20): each must cover its amount for `allowed`.
    #[schema(max_items = 20)]
    pub balances: Option<Vec<BalanceAmount>>,
    /// `preview` (the default) only judges; `consume` judges and records `event` in one atomic
    /// step: it is recorded if and only if, with it, every limit governing it stays within
    /// `limitValue`, whatever else is recorded at the same time, on any instance.
    #[schema(value_type = Option<CheckMode>)]
    pub mode: Option<String>,
    /// The usage to record, required with `mode: consume`; its customer is the check's.
    pub event: Option<ConsumeEvent>,
    /// With `mode: reserve`: seconds until the holds lapse unless committed, released or
    /// extended (default 300, at most 3600).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<WholeNumber>,
}

/// What a check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// Judge only; nothing is recorded.
    Preview,
    /// Judge and record the check's `event` in one atomic step.
    Consume,
    /// Judge and, when allowed, hold `requested` (default 1) on every limit listed and each
    /// balance's amount, until the reservation is committed, released or expires.
    Reserve,
}

impl CheckMode {
    /// Parsed from text, so that an unknown mode is reported by its field name.
    fn parse(text: &str) -> Option<CheckMode> {
        match text {
            "preview" => Some(CheckMode::Preview),
            "consume" => Some(CheckMode::Consume),
            "reserve" => Some(CheckMode::Reserve),
            _ => None,
        }
    }
}

/// The usage a `consume` check records when it fits: an event of the check's customer, stamped
/// now.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeEvent {
    #[schema(value_type = String, required = true, min_length = 1)]
    pub event_type: Option<String>,
    /// At most 64 values, each within ±10^12.
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    pub values: Option<BTreeMap<String, serde_json::Number>>,
    /// At most 32 pairs; default: the check's `dimensions`.
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Free JSON, not metered.
    #[schema(value_type = Option<serde_json::Value>)]
    pub properties: Option<serde_json::Value>,
    /// A retry with the same key records once (and answers `duplicate: true`).
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceAmount {
    pub name: Option<String>,
    #[schema(value_type = i64)]
    pub amount: Option<serde_json::Number>,
}

#[utoipa::path(post, path = "/v1/limits/check", operation_id = "checkLimits", tag = "limits", security(("bearer" = [])), request_body = CheckRequest,
    responses((status = 200, body = CheckResponse, description = "a refusal is allowed: false, not an error"), (status = 404, body = ErrorBody, description = "a cust_… id that names no customer"),
              (status = 400, body = ErrorBody)))]
/// Whether the customer is within every limit that applies; with `mode: consume`, also records
/// the usage in the same atomic step if and only if it fits.
pub async fn check(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Result<Response, AppError> {
    let mode = match request.mode.as_deref() {
        None => CheckMode::Preview,
        Some(text) => {
            CheckMode::parse(text).ok_or_else(|| FieldError::invalid("mode", "must be preview, consume or reserve"))?
        }
    };
    if mode != CheckMode::Reserve && request.ttl_seconds.is_some() {
        return Err(FieldError::invalid("ttlSeconds", "is taken only with mode reserve").into());
    }
    let customer_ref = required_text(request.customer_id, "customerId", MAX_EXTERNAL_ID)?;
    let dimensions = validate_dimensions(request.dimensions, "dimensions")?;
    if mode == CheckMode::Consume {
        if request.requested.is_some() {
            return Err(FieldError::invalid(
                "requested",
                "is not taken with mode consume: the event's values are what it uses",
            )
            .into());
        }
        if request.balances.is_some() {
            return Err(FieldError::invalid(
                "balances",
                "are not taken with mode consume: debit balances with /v1/balances/debit",
            )
            .into());
        }
        let event = request.event.ok_or_else(|| FieldError::missing("event"))?;
        let input = EventInput {
            customer_id: Some(customer_ref.clone()),
            event_type: event.event_type,
            values: event.values,
            dimensions: Some(event.dimensions.unwrap_or_else(|| dimensions.clone())),
            properties: event.properties,
            timestamp: None,
            idempotency_key: event.idempotency_key,
        };
        let event = input.validate("event", state.engine.now(), state.engine.max_backdate())?;
        // The answer lists the limits the event is subject to, unless the check names others.
        let dimensions = if dimensions.is_empty() { event.dimensions.clone() } else { dimensions };
        let query = CheckQuery { customer_ref: &customer_ref, dimensions: &dimensions, requested: None, balances: &[] };
        return Ok(CheckAnswer(state.engine.consume(&project, &query, event).await?).into_response());
    }
    if request.event.is_some() {
        return Err(FieldError::invalid("event", "is recorded only with mode consume").into());
    }
    let requested = match request.requested {
        Some(number) => match number.as_f64().and_then(Quantity::from_f64) {
            Some(q) if q >= Quantity::ZERO => Some(q),
            _ => return Err(FieldError::invalid("requested", "must be a number of at least 0").into()),
        },
        None => None,
    };
    let balances = check_balances(request.balances)?;
    let query = CheckQuery { customer_ref: &customer_ref, dimensions: &dimensions, requested, balances: &balances };
    if mode == CheckMode::Reserve {
        let ttl_seconds = ttl_seconds(request.ttl_seconds)?;
        let requested = requested.unwrap_or(Quantity::ONE);
        // What the stored answer is for: the same reserve again, not another under the key.
        let fingerprint = format!(
            "reserve:{:x}",
            Sha256::digest(format!("{customer_ref}\n{dimensions:?}\n{requested:?}\n{ttl_seconds}\n{balances:?}"))
        );
        let query = ReserveQuery { check: query, requested, ttl_seconds };
        return reservations::reserve(&state, &project, &query, key.as_deref(), &fingerprint).await;
    }
    if key.is_some() {
        return Err(FieldError::invalid("Idempotency-Key", "is taken only with mode reserve").into());
    }
    Ok(CheckAnswer(state.engine.check(&project, &query).await?).into_response())
}

/// The balances a check names, validated (at most 20, each with a positive whole amount).
pub fn check_balances(balances: Option<Vec<BalanceAmount>>) -> Result<Vec<BalanceRequirement>, FieldError> {
    let balances = balances.unwrap_or_default();
    at_most(balances.len(), MAX_CHECK_BALANCES, "balances", "balances")?;
    balances
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let name = required_text(b.name, &format!("balances[{i}].name"), 128)?;
            let field = format!("balances[{i}].amount");
            let amount = positive_amount(&b.amount.ok_or_else(|| FieldError::missing(&field))?, &field)?;
            Ok(BalanceRequirement { name, amount })
        })
        .collect()
}
