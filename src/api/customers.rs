//! `/v1/customers`: create, list, get, update, delete, and current usage per meter.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageParams};
use crate::auth::actor::ApiActor;
use crate::auth::keys::ApiProject;
use crate::db::customers::CustomerFields;
use crate::db::projects::Project;
use crate::domain::customers::{parse_billing_anchor, validate_email, validate_external_id, Customer, MAX_EXTERNAL_ID};
use crate::domain::limits::governing_limits;
use crate::domain::quantity::Total;
use crate::domain::windows::{window_containing, Period};
use crate::domain::{optional_text, parse_timezone, required_text, FieldError};
use crate::engine::query::{query_meter, MeterQuery};
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRequest {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// IANA timezone, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
    /// `YYYY-MM-DD` or an ISO 8601 date-time: its date anchors monthly and annual windows.
    /// Unset (the default), months start on the 1st and years on January 1st.
    pub billing_cycle_start: Option<String>,
}

impl CustomerRequest {
    /// Validates the request over `base` (the stored customer for an update).
    fn into_fields(self, base: CustomerFields) -> Result<CustomerFields, FieldError> {
        let email = match optional_text(self.email, "email", 320)? {
            Some(email) => {
                validate_email(&email, "email")?;
                Some(email)
            }
            None => base.email,
        };
        let metadata = match self.metadata {
            Some(value @ serde_json::Value::Object(_)) => value,
            Some(serde_json::Value::Null) | None => base.metadata,
            Some(_) => return Err(FieldError::invalid("metadata", "must be a JSON object")),
        };
        let timezone = match optional_text(self.timezone, "timezone", 64)? {
            Some(tz) => Some(parse_timezone(&tz, "timezone")?.name().to_string()),
            None => base.timezone,
        };
        let billing_cycle_start = match optional_text(self.billing_cycle_start, "billingCycleStart", 40)? {
            Some(date) => Some(parse_billing_anchor(&date, "billingCycleStart")?),
            None => base.billing_cycle_start,
        };
        Ok(CustomerFields {
            external_id: base.external_id,
            name: optional_text(self.name, "name", 256)?.or(base.name),
            email,
            metadata,
            timezone,
            billing_cycle_start,
        })
    }
}

fn fields_of(customer: &Customer) -> CustomerFields {
    CustomerFields {
        external_id: customer.external_id.clone(),
        name: customer.name.clone(),
        email: customer.email.clone(),
        metadata: customer.metadata.clone(),
        timezone: customer.timezone.clone(),
        billing_cycle_start: customer.billing_cycle_start,
    }
}

/// Resolves `{id}` (internal id or externalId) to a customer of the project.
pub async fn find_customer(state: &AppState, project: &Project, reference: &str) -> Result<Customer, AppError> {
    state.engine.db().customer(&project.id, reference).await?.ok_or_else(|| AppError::not_found("customer", reference))
}

#[utoipa::path(post, path = "/v1/customers", operation_id = "createCustomer", tag = "customers", security(("bearer" = [])), request_body = CustomerRequest,
    responses((status = 201, body = Customer), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<CustomerRequest>,
) -> Result<(StatusCode, Json<Customer>), AppError> {
    let customer = state.engine.create_customer(&project, &new_customer_fields(request)?, &actor).await?;
    Ok((StatusCode::CREATED, Json(customer)))
}

/// Validates a new customer; the dashboard's form uses it too, so both apply one set of rules.
pub(crate) fn new_customer_fields(request: CustomerRequest) -> Result<CustomerFields, AppError> {
    let external_id = required_text(request.external_id.clone(), "externalId", MAX_EXTERNAL_ID)?;
    validate_external_id(&external_id, "externalId")?;
    Ok(request.into_fields(CustomerFields {
        external_id,
        metadata: serde_json::json!({}),
        ..CustomerFields::default()
    })?)
}

/// Validates a change to a stored customer (shared with the dashboard's form).
pub(crate) fn changed_customer_fields(before: &Customer, request: CustomerRequest) -> Result<CustomerFields, AppError> {
    if request.external_id.as_ref().is_some_and(|e| *e != before.external_id) {
        return Err(FieldError::invalid("externalId", "cannot be changed").into());
    }
    Ok(request.into_fields(fields_of(before))?)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    page: PageParams,
    search: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers", operation_id = "listCustomers", tag = "customers", security(("bearer" = [])),
    params(PageParams, ("search" = Option<String>, Query)),
    responses((status = 200, body = Page<Customer>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Customer>>, AppError> {
    let size = params.page.size()?;
    let rows = state
        .engine
        .db()
        .customers_page(&project.id, params.page.id_cursor("cust")?, params.search.as_deref(), size + 1)
        .await?;
    Ok(Json(Page::from_rows(rows, size, |c| c.id.clone())))
}

#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "getCustomer", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "cust_… id or externalId")),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Customer>, AppError> {
    Ok(Json(find_customer(&state, &project, &id).await?))
}

#[utoipa::path(put, path = "/v1/customers/{id}", operation_id = "updateCustomer", tag = "customers", security(("bearer" = [])), request_body = CustomerRequest,
    params(("id" = String, Path, description = "cust_… id or externalId")),
    responses((status = 200, body = Customer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<CustomerRequest>,
) -> Result<Json<Customer>, AppError> {
    let before = find_customer(&state, &project, &id).await?;
    let fields = changed_customer_fields(&before, request)?;
    let customer = state.engine.update_customer(&project, &before, &fields, &actor).await?;
    Ok(Json(customer))
}

#[utoipa::path(delete, path = "/v1/customers/{id}", operation_id = "deleteCustomer", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "cust_… id or externalId")),
    responses((status = 204, description = "deleted with its events and own limits"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the customer holds balances, whose ledgers are kept")))]
pub async fn delete(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    let customer = find_customer(&state, &project, &id).await?;
    state.engine.delete_customer(&project, &customer, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One meter's value for the customer in one current window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterUsage {
    pub meter_id: String,
    pub meter_name: String,
    pub aggregation: crate::domain::meters::Aggregation,
    pub period: Period,
    pub window_start: chrono::DateTime<chrono::Utc>,
    /// Null for `all_time`.
    pub window_end: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(value_type = f64)]
    pub value: Total,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageResponse {
    pub customer_id: String,
    pub data: Vec<MeterUsage>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/usage", operation_id = "getCustomerUsage", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "cust_… id or externalId")),
    responses((status = 200, body = UsageResponse), (status = 404, body = ErrorBody)))]
/// Every meter's value in the customer's current day and month windows, and in the window of
/// every other period a limit on that meter uses for this customer.
pub async fn usage(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UsageResponse>, AppError> {
    let customer = find_customer(&state, &project, &id).await?;
    let db = state.engine.db();
    let now = state.engine.now();
    let meters = db.all_meters(&project.id).await?;
    let limits = db.all_limits(&project.id).await?;
    let governing = governing_limits(&limits, &customer.id);
    let zone = customer.window_zone(project.timezone);
    let mut data = Vec::new();
    for meter in &meters {
        let periods = Period::ALL.into_iter().filter(|period| {
            matches!(period, Period::Day | Period::Month)
                || governing.iter().any(|l| l.meter_id == meter.id && l.period == *period)
        });
        for period in periods {
            let window = window_containing(period, now, zone, customer.billing_cycle_start);
            let query = MeterQuery {
                start: window.start,
                end: window.end.unwrap_or(now + Duration::days(1)),
                customer_id: Some(customer.id.clone()),
                dimensions: Default::default(),
                group_by: Vec::new(),
                window_size: None,
            };
            let result = query_meter(db, &project.id, meter, &query).await?;
            data.push(MeterUsage {
                meter_id: meter.id.clone(),
                meter_name: meter.name.clone(),
                aggregation: meter.aggregation,
                period,
                window_start: window.start,
                window_end: window.end,
                value: result.value,
            });
        }
    }
    Ok(Json(UsageResponse { customer_id: customer.id, data }))
}
