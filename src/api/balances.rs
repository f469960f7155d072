//! `/v1/balances` and `/v1/reservations`: prepaid credits with an exact ledger.
//!
//! Every write accepts an `Idempotency-Key` header: a retry with the same key gets the first
//! answer back and moves no money again.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Page, PageParams};
use crate::auth::actor::{api_caller, ApiActor};
use crate::auth::keys::ApiProject;
use crate::db::balances::{IdempotencyClaim, NewBalance};
use crate::db::projects::Project;
use crate::domain::audit::Actor;
use crate::domain::balances::{
    positive_amount, whole_amount, Balance, LedgerTransaction, Reservation, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS,
};
use crate::domain::customers::MAX_EXTERNAL_ID;
use crate::domain::{description_text, optional_text, required_text, validate_dimensions, FieldError, WholeNumber};
use crate::engine::balances::{BalanceOperation, Idempotent, OperationResult};
use crate::error::{parse_json, ApiBody, ApiPath, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

/// Names a balance: by `balanceId`, or by `customerId` and `name`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceTarget {
    pub balance_id: Option<String>,
    /// The customer's externalId or cust_… id.
    pub customer_id: Option<String>,
    pub name: Option<String>,
}

async fn resolve(state: &AppState, project: &Project, target: &BalanceTarget) -> Result<Balance, AppError> {
    let db = state.engine.db();
    if let Some(id) = target.balance_id.as_deref() {
        return db.balance(&project.id, id).await?.ok_or_else(|| AppError::not_found("balance", id));
    }
    let customer_ref = required_text(target.customer_id.clone(), "customerId", MAX_EXTERNAL_ID)?;
    let name = required_text(target.name.clone(), "name", 128)?;
    let customer = super::customers::find_customer(state, project, &customer_ref).await?;
    db.balance_by_name(&project.id, &customer.id, &name)
        .await?
        .ok_or_else(|| AppError::not_found("balance", &format!("{customer_ref}/{name}")))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBalanceRequest {
    pub customer_id: Option<String>,
    pub name: Option<String>,
    /// Default `credits`.
    pub unit: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub initial_balance: Option<serde_json::Number>,
    /// 0 (default): no overdraft; negative: overdraft down to it; positive: a reserve.
    #[schema(value_type = Option<i64>)]
    pub minimum_balance: Option<serde_json::Number>,
    #[schema(value_type = Option<i64>)]
    pub low_balance_threshold: Option<serde_json::Number>,
    /// Dimension pairs the balance is scoped to (keys `[A-Za-z0-9_]{1,64}`, values at most 256
    /// characters): stored and returned as given.
    pub dimension_filters: Option<std::collections::BTreeMap<String, String>>,
}

#[utoipa::path(post, path = "/v1/balances", operation_id = "createBalance", tag = "balances", security(("bearer" = [])), request_body = CreateBalanceRequest,
    responses((status = 201, body = Balance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "a cust_… id that names no customer"),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<Balance>), AppError> {
    let request: CreateBalanceRequest = parse_json(&body)?;
    let balance = create_balance(&state, &project, request, &actor).await?;
    Ok((StatusCode::CREATED, Json(balance)))
}

/// Checks a new balance and creates it: `POST /v1/balances` and the dashboard's "New balance"
/// form both come here, so they accept and refuse the same input in the same words.
pub(crate) async fn create_balance(
    state: &AppState,
    project: &Project,
    request: CreateBalanceRequest,
    actor: &Actor,
) -> Result<Balance, AppError> {
    let customer_ref = required_text(request.customer_id, "customerId", MAX_EXTERNAL_ID)?;
    let name = required_text(request.name, "name", 128)?;
    let unit = optional_text(request.unit, "unit", 32)?.unwrap_or_else(|| "credits".into());
    let initial_balance = request.initial_balance.map(|n| whole_amount(&n, "initialBalance")).transpose()?.unwrap_or(0);
    if initial_balance < 0 {
        return Err(FieldError::invalid("initialBalance", "must not be negative").into());
    }
    let minimum_balance = request.minimum_balance.map(|n| whole_amount(&n, "minimumBalance")).transpose()?.unwrap_or(0);
    let low_balance_threshold =
        request.low_balance_threshold.map(|n| whole_amount(&n, "lowBalanceThreshold")).transpose()?;
    let dimension_filters = validate_dimensions(request.dimension_filters, "dimensionFilters")?;
    let new = NewBalance {
        name: &name,
        unit: &unit,
        initial_balance,
        minimum_balance,
        low_balance_threshold,
        dimension_filters: &dimension_filters,
    };
    Ok(state.engine.create_balance(project, &customer_ref, &new, actor).await?)
}

#[utoipa::path(get, path = "/v1/balances/{id}", operation_id = "getBalance", tag = "balances", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Balance), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Balance>, AppError> {
    let target = BalanceTarget { balance_id: Some(id), ..Default::default() };
    Ok(Json(resolve(&state, &project, &target).await?))
}

/// A page of a customer's balances: our list shape (`data`, `nextCursor`, `hasMore`) with the
/// same page also under `balances`, the name Limitry documents for this endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerBalancesPage {
    pub data: Vec<Balance>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
    /// The same balances as `data`.
    pub balances: Vec<Balance>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/balances", operation_id = "listCustomerBalances", tag = "balances", security(("bearer" = [])),
    params(("id" = String, Path, description = "cust_… id or externalId"), PageParams),
    responses((status = 200, body = CustomerBalancesPage), (status = 404, body = ErrorBody)))]
/// The customer's balances by name. A customer holds few, so they are paged in memory.
pub async fn customer_balances(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<CustomerBalancesPage>, AppError> {
    let customer = super::customers::find_customer(&state, &project, &id).await?;
    let balances = state.engine.db().customer_balances(&project.id, &customer.id).await?;
    let page = Page::from_list(balances, &params, "bal", |b| &b.id)?;
    Ok(Json(CustomerBalancesPage {
        balances: page.data.clone(),
        data: page.data,
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }))
}

#[utoipa::path(get, path = "/v1/balances/{id}/transactions", operation_id = "listBalanceTransactions", tag = "balances", security(("bearer" = [])),
    params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<LedgerTransaction>), (status = 404, body = ErrorBody)))]
/// The ledger, newest first.
pub async fn transactions(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<LedgerTransaction>>, AppError> {
    let size = params.size()?;
    let target = BalanceTarget { balance_id: Some(id), ..Default::default() };
    let balance = resolve(&state, &project, &target).await?;
    let rows = state.engine.db().transactions_page(&balance.id, params.id_cursor("txn")?, size + 1).await?;
    Ok(Json(Page::from_rows(rows, size, |t| t.id.clone())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceCheckRequest {
    #[serde(flatten)]
    pub target: BalanceTarget,
    #[schema(value_type = i64)]
    pub amount: Option<serde_json::Number>,
}

/// Whether an amount could be debited now. The flat fields beside `balance` are the shape
/// Limitry documents; `amount` and `requestedAmount` are the same number.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceCheckResponse {
    pub sufficient: bool,
    pub amount: i64,
    pub requested_amount: i64,
    pub available_balance: i64,
    pub balance_id: String,
    pub name: String,
    pub unit: String,
    pub current_balance: i64,
    pub minimum_balance: i64,
    pub balance: Balance,
}

#[utoipa::path(post, path = "/v1/balances/check", operation_id = "checkBalance", tag = "balances", security(("bearer" = [])), request_body = BalanceCheckRequest,
    responses((status = 200, body = BalanceCheckResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Whether `amount` could be debited now; changes nothing.
pub async fn check(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiBody(body): ApiBody,
) -> Result<Json<BalanceCheckResponse>, AppError> {
    let request: BalanceCheckRequest = parse_json(&body)?;
    let amount = positive_amount(&request.amount.ok_or_else(|| FieldError::missing("amount"))?, "amount")?;
    let balance = resolve(&state, &project, &request.target).await?;
    let available = balance.funds().available();
    Ok(Json(BalanceCheckResponse {
        sufficient: amount <= available,
        amount,
        requested_amount: amount,
        available_balance: available,
        balance_id: balance.id.clone(),
        name: balance.name.clone(),
        unit: balance.unit.clone(),
        current_balance: balance.current_balance,
        minimum_balance: balance.minimum_balance,
        balance,
    }))
}

/// The answer of every ledger operation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationResponse {
    pub success: bool,
    /// `insufficient_balance` when funds were short; nothing changed then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub balance: Balance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<LedgerTransaction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
    /// For a commit: the amount debited, and what could not be taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<i64>,
}

fn respond(result: OperationResult, requested: Option<i64>) -> OperationResponse {
    OperationResponse {
        success: result.refused.is_none(),
        error: result.refused.map(|_| "insufficient_balance".to_string()),
        amount: result.taken,
        shortfall: result.taken.zip(requested).map(|(taken, requested)| requested - taken),
        balance: result.balance,
        transaction: result.transaction,
        reservation: result.reservation,
    }
}

/// Reads and checks the `Idempotency-Key` header.
/// Named once: looking a header up by text parses the name on every request.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else { return Ok(None) };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 256 && !key.chars().any(char::is_control) => {
            Ok(Some(key.to_string()))
        }
        _ => Err(FieldError::invalid("Idempotency-Key", "must be 1 to 256 visible ASCII characters").into()),
    }
}

/// Runs an operation, honouring the `Idempotency-Key` header: the stored first answer is
/// replayed for a retry of the same request.
async fn run(
    state: &AppState,
    project: &Project,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    operation: BalanceOperation<'_>,
    requested: Option<i64>,
) -> Result<Response, AppError> {
    let key = idempotency_key(headers)?;
    let fingerprint = format!("{route}:{:x}", Sha256::digest(body));
    let claim = key.as_deref().map(|key| IdempotencyClaim { key, fingerprint: &fingerprint });
    let outcome = state
        .engine
        .operate_balance(project, &operation, claim.as_ref(), &api_caller(headers), |result| {
            let body = serde_json::to_string(&respond(result.clone(), requested)).unwrap_or_default();
            (200, body)
        })
        .await?;
    Ok(match outcome {
        Idempotent::Fresh(result) => Json(respond(result, requested)).into_response(),
        Idempotent::Replayed { status, body } => replayed(status, body),
    })
}

/// The stored first answer to a request, for its retry with the same `Idempotency-Key`.
pub(super) fn replayed(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovementRequest {
    #[serde(flatten)]
    pub target: BalanceTarget,
    #[schema(value_type = i64)]
    pub amount: Option<serde_json::Number>,
    /// Required for credits.
    pub description: Option<String>,
    pub reference: Option<String>,
    /// Reserve only: seconds until the hold expires (default 300, at most 3600).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<WholeNumber>,
}

struct Movement {
    balance: Balance,
    amount: i64,
    description: Option<String>,
    reference: Option<String>,
}

async fn movement(
    state: &AppState,
    project: &Project,
    body: &[u8],
    description_required: bool,
) -> Result<(Movement, Option<i64>), AppError> {
    let request: MovementRequest = parse_json(body)?;
    let amount = positive_amount(&request.amount.ok_or_else(|| FieldError::missing("amount"))?, "amount")?;
    let description = description_text(request.description, "description", 512, description_required)?;
    let reference = optional_text(request.reference, "reference", 256)?;
    let balance = resolve(state, project, &request.target).await?;
    Ok((Movement { balance, amount, description, reference }, request.ttl_seconds.map(|t| t.0)))
}

#[utoipa::path(post, path = "/v1/balances/credit", operation_id = "creditBalance", tag = "balances", security(("bearer" = [])), request_body = MovementRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = OperationResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn credit(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let (m, _) = movement(&state, &project, &body, true).await?;
    let operation = BalanceOperation::Credit {
        balance_id: &m.balance.id,
        amount: m.amount,
        description: m.description.as_deref().unwrap_or_default(),
        reference: m.reference.as_deref(),
    };
    run(&state, &project, &headers, "credit", &body, operation, None).await
}

#[utoipa::path(post, path = "/v1/balances/debit", operation_id = "debitBalance", tag = "balances", security(("bearer" = [])), request_body = MovementRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = OperationResponse, description = "success false with error insufficient_balance when short"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Checks and deducts in one atomic step; when short, nothing changes.
pub async fn debit(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let (m, _) = movement(&state, &project, &body, false).await?;
    let operation = BalanceOperation::Debit {
        balance_id: &m.balance.id,
        amount: m.amount,
        description: m.description.as_deref(),
        reference: m.reference.as_deref(),
    };
    run(&state, &project, &headers, "debit", &body, operation, None).await
}

#[utoipa::path(post, path = "/v1/balances/reserve", operation_id = "reserveBalance", tag = "balances", security(("bearer" = [])), request_body = MovementRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = OperationResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Holds an amount until committed, released or expired.
pub async fn reserve(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let (m, ttl) = movement(&state, &project, &body, false).await?;
    let ttl_seconds = ttl.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
        return Err(FieldError::invalid("ttlSeconds", format!("must be from 1 to {MAX_TTL_SECONDS}")).into());
    }
    let operation = BalanceOperation::Reserve {
        balance_id: &m.balance.id,
        amount: m.amount,
        ttl_seconds,
        description: m.description.as_deref(),
        reference: m.reference.as_deref(),
    };
    run(&state, &project, &headers, "reserve", &body, operation, None).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitRequest {
    /// The actual amount used (0 or more). Up to the hold is always taken; beyond it, only
    /// what is available.
    #[schema(value_type = i64)]
    pub amount: Option<serde_json::Number>,
    pub description: Option<String>,
}

#[utoipa::path(post, path = "/v1/reservations/{id}/commit", operation_id = "commitReservation", tag = "balances", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = CommitRequest,
    responses((status = 200, body = OperationResponse), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already committed, released or expired")))]
pub async fn commit(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, AppError> {
    let request: CommitRequest = parse_json(&body)?;
    let actual = whole_amount(&request.amount.ok_or_else(|| FieldError::missing("amount"))?, "amount")?;
    if actual < 0 {
        return Err(FieldError::invalid("amount", "must not be negative").into());
    }
    let description = description_text(request.description, "description", 512, false)?;
    let operation = BalanceOperation::Commit { reservation_id: &id, actual, description: description.as_deref() };
    run(&state, &project, &headers, &format!("commit:{id}"), &body, operation, Some(actual)).await
}

#[utoipa::path(post, path = "/v1/reservations/{id}/release", operation_id = "releaseReservation", tag = "balances", security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = OperationResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let operation = BalanceOperation::Release { reservation_id: &id };
    run(&state, &project, &headers, &format!("release:{id}"), b"", operation, None).await
}
