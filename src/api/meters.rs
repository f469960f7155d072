//! `/v1/meters`: CRUD and queries over a date range.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{parse_instant, Page, PageParams};
use crate::auth::actor::ApiActor;
use crate::auth::keys::ApiProject;
use crate::db::projects::Project;
use crate::domain::audit::Actor;
use crate::domain::ids::new_id;
use crate::domain::meters::{validate_field, Aggregation, EventFilter, Meter};
use crate::domain::windows::{window_containing, Period};
use crate::domain::{description_text, is_valid_key, optional_text, required_text, validate_dimensions, FieldError};
use crate::engine::query::{query_meter, MeterQuery, MeterQueryResult, WindowSize};
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, ErrorBody};
use crate::server::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Required on create.
    #[schema(value_type = Option<Aggregation>)]
    pub aggregation: Option<String>,
    /// `values.<key>`, or `*` for `count`.
    pub field: Option<String>,
    pub event_filter: Option<EventFilter>,
}

impl MeterRequest {
    /// Validates the request over `base` (the stored meter for an update).
    fn into_meter(self, base: Meter) -> Result<Meter, FieldError> {
        let aggregation = match self.aggregation {
            Some(text) => Aggregation::parse(&text)
                .ok_or_else(|| FieldError::invalid("aggregation", "must be one of sum, count, max, latest"))?,
            None => base.aggregation,
        };
        let field_changes = self.field.is_some() || aggregation != base.aggregation;
        let field = if field_changes || base.field.is_empty() {
            validate_field(aggregation, self.field.or_else(|| (!base.field.is_empty()).then_some(base.field)))?
        } else {
            base.field
        };
        Ok(Meter {
            name: match self.name {
                Some(name) => required_text(Some(name), "name", 128)?,
                None => base.name,
            },
            description: description_text(self.description, "description", 1024, false)?.or(base.description),
            aggregation,
            field,
            event_filter: match self.event_filter {
                Some(filter) => filter.validate("eventFilter")?,
                None => base.event_filter,
            },
            ..base
        })
    }
}

async fn find_meter(state: &AppState, project: &Project, id: &str) -> Result<Meter, AppError> {
    state.engine.db().meter(&project.id, id).await?.ok_or_else(|| AppError::not_found("meter", id))
}

#[utoipa::path(post, path = "/v1/meters", operation_id = "createMeter", tag = "meters", security(("bearer" = [])), request_body = MeterRequest,
    responses((status = 201, body = Meter), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<MeterRequest>,
) -> Result<(StatusCode, Json<Meter>), AppError> {
    Ok((StatusCode::CREATED, Json(create_meter(&state, &project, &actor, request).await?)))
}

/// Validates and creates a meter (the API and the dashboard).
pub async fn create_meter(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    request: MeterRequest,
) -> Result<Meter, AppError> {
    let now = state.engine.now();
    if request.name.is_none() {
        return Err(FieldError::missing("name").into());
    }
    if request.aggregation.is_none() {
        return Err(FieldError::missing("aggregation").into());
    }
    let meter = request.into_meter(Meter {
        id: new_id("mtr", now.timestamp_millis()),
        project_id: project.id.clone(),
        name: String::new(),
        description: None,
        aggregation: Aggregation::Sum,
        field: String::new(),
        event_filter: EventFilter::default(),
        created_at: now,
        updated_at: now,
    })?;
    state.engine.create_meter(project, &meter, actor).await?;
    Ok(meter)
}

#[utoipa::path(get, path = "/v1/meters", operation_id = "listMeters", tag = "meters", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Page<Meter>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<Meter>>, AppError> {
    let size = params.size()?;
    let rows = state.engine.db().meters_page(&project.id, params.id_cursor("mtr")?, size + 1).await?;
    Ok(Json(Page::from_rows(rows, size, |m| m.id.clone())))
}

#[utoipa::path(get, path = "/v1/meters/{id}", operation_id = "getMeter", tag = "meters", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Meter), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Meter>, AppError> {
    Ok(Json(find_meter(&state, &project, &id).await?))
}

#[utoipa::path(put, path = "/v1/meters/{id}", operation_id = "updateMeter", tag = "meters", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = MeterRequest,
    responses((status = 200, body = Meter), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Changes a meter; the counters of its limits are rebuilt from the recorded events.
pub async fn update(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<MeterRequest>,
) -> Result<Json<Meter>, AppError> {
    Ok(Json(update_meter(&state, &project, &actor, &id, request).await?))
}

/// Validates and applies a change to a meter (the API and the dashboard).
pub async fn update_meter(
    state: &AppState,
    project: &Project,
    actor: &Actor,
    id: &str,
    request: MeterRequest,
) -> Result<Meter, AppError> {
    let now = state.engine.now();
    let before = find_meter(state, project, id).await?;
    let meter = request.into_meter(Meter { updated_at: now, ..before })?;
    if !matches!(meter.aggregation, Aggregation::Sum | Aggregation::Count) {
        let limits = state.engine.db().all_limits(&project.id).await?;
        if let Some(rolling) = limits.iter().find(|l| l.rolling && l.meter_id == meter.id) {
            return Err(FieldError::invalid(
                "aggregation",
                format!(
                    "must stay sum or count while rolling limit {} counts this meter: rolling windows add up their \
                     buckets",
                    rolling.id
                ),
            )
            .into());
        }
    }
    state.engine.update_meter(project, &meter, actor).await?;
    Ok(meter)
}

#[utoipa::path(delete, path = "/v1/meters/{id}", operation_id = "deleteMeter", tag = "meters", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Deletes a meter no limit uses.
pub async fn delete(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    delete_meter(&state, &project, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a meter no limit uses (the API and the dashboard).
pub async fn delete_meter(state: &AppState, project: &Project, actor: &Actor, id: &str) -> Result<(), AppError> {
    let meter = find_meter(state, project, id).await?;
    state.engine.delete_meter(project, &meter, actor).await?;
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterQueryRequest {
    /// Inclusive; RFC 3339 or YYYY-MM-DD. Default: the start of the current month (the
    /// customer's monthly window with `customerId`, else the calendar month in the project's
    /// timezone).
    pub start_date: Option<String>,
    /// Exclusive; RFC 3339 or YYYY-MM-DD. Default: the end of the current month.
    pub end_date: Option<String>,
    pub customer_id: Option<String>,
    pub dimensions: Option<std::collections::BTreeMap<String, String>>,
    /// Dimension keys to group by; `customerId` groups by customer.
    pub group_by: Option<Vec<String>>,
    #[schema(value_type = Option<WindowSize>)]
    pub window_size: Option<String>,
}

#[utoipa::path(post, path = "/v1/meters/{id}/query", operation_id = "queryMeter", tag = "meters", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = MeterQueryRequest,
    responses((status = 200, body = MeterQueryResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// The meter's value over a date range, optionally per customer, filtered by dimensions,
/// grouped, and as an hourly or daily series (UTC buckets).
pub async fn query(
    State(state): State<AppState>,
    ApiProject(project): ApiProject,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<MeterQueryRequest>,
) -> Result<Json<MeterQueryResult>, AppError> {
    let meter = find_meter(&state, &project, &id).await?;
    let customer = match request.customer_id.as_deref() {
        Some(reference) => Some(super::customers::find_customer(&state, &project, reference).await?),
        None => None,
    };
    // Without dates, the current month: the customer's own monthly window (its timezone and
    // billing anchor) when one is named, else the project's calendar month.
    let month = match &customer {
        Some(customer) => window_containing(
            Period::Month,
            state.engine.now(),
            customer.window_zone(project.timezone),
            customer.billing_cycle_start,
        ),
        None => window_containing(Period::Month, state.engine.now(), project.timezone, None),
    };
    let start = match optional_text(request.start_date, "startDate", 40)? {
        Some(text) => parse_instant(&text, "startDate")?,
        None => month.start,
    };
    let end = match optional_text(request.end_date, "endDate", 40)? {
        Some(text) => parse_instant(&text, "endDate")?,
        // A month window always ends; the fallback only satisfies the type.
        None => month.end.unwrap_or(month.start),
    };
    if end <= start {
        return Err(FieldError::invalid("endDate", "must be after startDate").into());
    }
    let window_size = match request.window_size.as_deref() {
        None => None,
        Some("hour") => Some(WindowSize::Hour),
        Some("day") => Some(WindowSize::Day),
        Some(_) => return Err(FieldError::invalid("windowSize", "must be hour or day").into()),
    };
    if let Some(size) = window_size {
        if (end - start).num_seconds() / size.duration().num_seconds() > WindowSize::MAX_BUCKETS {
            return Err(FieldError::invalid(
                "windowSize",
                format!("the range holds more than {} buckets", WindowSize::MAX_BUCKETS),
            )
            .into());
        }
    }
    let group_by = request.group_by.unwrap_or_default();
    crate::domain::at_most(group_by.len(), crate::domain::MAX_DIMENSIONS, "groupBy", "keys")?;
    if let Some(bad) = group_by.iter().find(|g| !is_valid_key(g)) {
        return Err(FieldError::invalid(
            "groupBy",
            format!("{} is not a dimension key", crate::domain::truncate(bad, 70)),
        )
        .into());
    }
    let query = MeterQuery {
        start,
        end,
        customer_id: customer.map(|c| c.id),
        dimensions: validate_dimensions(request.dimensions, "dimensions")?,
        group_by,
        window_size,
    };
    Ok(Json(query_meter(state.engine.db(), &project.id, &meter, &query).await?))
}
