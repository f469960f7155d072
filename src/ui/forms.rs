//! The dashboard's form posts: check the anti-forgery token, call the same operations as the
//! API, then redirect (POST → redirect → GET). A failure goes back to the page with the error
//! and the field it concerns in the query, where the page shows it next to that field.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use tower_cookies::Cookies;
use tower_sessions::Session;

use crate::api::balances::{create_balance, CreateBalanceRequest};
use crate::api::customers::{changed_customer_fields, find_customer, new_customer_fields, CustomerRequest};
use crate::api::limits::{create_limit, delete_limit, update_limit, LimitRequest};
use crate::api::meters::{create_meter, delete_meter, update_meter, MeterRequest};
use crate::api::webhooks::{
    create_endpoint, delete_endpoint, find_endpoint, rotate_endpoint_secret, send_test_event, update_endpoint,
    EndpointRequest, RotateSecretRequest,
};
use crate::auth::actor::operator;
use crate::auth::keys::create_key;
use crate::auth::operators::{
    create_first_operator, log_in, login_csrf_ok, same_secret, start_session, CreateOperatorError, Flash, LoginError,
    OperatorSession, CSRF_FIELD,
};
use crate::auth::personal_tokens::create_personal_token;
use crate::auth::rate_limit::parse_key_limit;
use crate::db::projects::Project;
use crate::db::rate_limits::KeyRateLimits;
use crate::domain::audit::{AuditChange, AuditKind};
use crate::domain::balances::positive_amount;
use crate::domain::meters::EventFilter;
use crate::domain::webhooks::EventType;
use crate::domain::{required_text, FieldError};
use crate::engine::balances::{BalanceOperation, Idempotent};
use crate::error::AppError;
use crate::server::AppState;
use crate::ui::format::plain_number;

type Fields = HashMap<String, String>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/setup", post(setup))
        .route("/logout", post(logout))
        .route("/meters/create", post(meter_create))
        .route("/meters/{id}/update", post(meter_update))
        .route("/meters/{id}/delete", post(meter_delete))
        .route("/limits/create", post(limit_create))
        .route("/limits/{id}/update", post(limit_update))
        .route("/limits/{id}/delete", post(limit_delete))
        .route("/api-keys/create", post(key_create))
        .route("/api-keys/{id}/revoke", post(key_revoke))
        .route("/api-keys/{id}/rate-limits", post(key_rate_limits))
        .route("/access-tokens/create", post(personal_token_create))
        .route("/access-tokens/{id}/revoke", post(personal_token_revoke))
        .route("/customers/create", post(customer_create))
        .route("/customers/{id}/update", post(customer_update))
        .route("/customers/{id}/delete", post(customer_delete))
        .route("/customers/{id}/balances/create", post(balance_create))
        .route("/balances/{id}/credit", post(balance_credit))
        .route("/balances/{id}/debit", post(balance_debit))
        .route("/webhooks/create", post(webhook_create))
        .route("/webhooks/{id}/update", post(webhook_update))
        .route("/webhooks/{id}/rotate", post(webhook_rotate))
        .route("/webhooks/{id}/delete", post(webhook_delete))
        .route("/webhooks/{id}/test", post(webhook_test))
        .route("/webhooks/{id}/deliveries/{delivery}/redeliver", post(webhook_redeliver))
        .route("/webhooks/{id}/retry-failed", post(webhook_retry_failed))
}

/// Where a form goes back to, and why.
struct Failure {
    back: String,
    message: String,
    field: Option<String>,
    form: Option<String>,
    values: std::collections::BTreeMap<String, String>,
}

impl Failure {
    fn new(back: &str, error: AppError) -> Failure {
        if let AppError::Internal(err) = &error {
            tracing::error!(error = ?err, "dashboard form failed");
        }
        let (message, field) = match &error {
            AppError::MissingField { field } => {
                let (input, label) = form_field(field);
                (format!("{label} is required."), Some(input))
            }
            AppError::InvalidField { field, message } => {
                let (input, label) = form_field(field);
                (format!("{label} {}.", in_words(field, message)), Some(input))
            }
            _ => (error.to_string(), None),
        };
        Failure { back: back.to_string(), message, field, form: None, values: Default::default() }
    }

    /// Keeps what was typed, so the page can fill its form in again.
    fn with_values(mut self, fields: &Fields) -> Failure {
        self.form = fields.get(FORM_FIELD).cloned();
        self.values = fields
            .iter()
            .filter(|(name, _)| name.as_str() != CSRF_FIELD && name.as_str() != FORM_FIELD)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        self
    }

    /// Goes back with the message in the session: the URL carries none, so a link cannot
    /// make a page say anything.
    async fn respond(self, session: &OperatorSession) -> Response {
        let flash = Flash {
            error: Some(self.message),
            field: self.field,
            form: self.form,
            values: self.values,
            ..Flash::default()
        };
        go_to(session, &self.back, flash).await
    }
}

/// Sends the browser back to `back` with `error` beside its field and the form's values
/// filled in again: for GET forms too, such as the export form, whose bad date must not end
/// on a page of JSON.
pub(crate) async fn back_with_error(
    session: &OperatorSession,
    back: &str,
    error: AppError,
    fields: &HashMap<String, String>,
) -> Response {
    Failure::new(back, error).with_values(fields).respond(session).await
}

/// The hidden field naming which form of a page was posted.
pub const FORM_FIELD: &str = "_form";

/// The form input an API field name belongs to, and its label as the form shows it:
/// `alertThresholds[2]` → (`alertThresholds`, "Alert thresholds").
fn form_field(api_field: &str) -> (String, &'static str) {
    let base = api_field.split(['[', '.']).next().unwrap_or(api_field);
    let (input, label) = match base {
        "name" => ("name", "Name"),
        "meterId" => ("meterId", "Meter"),
        "limitValue" => ("limitValue", "Limit"),
        "period" => ("period", "Period"),
        "customerId" => ("customerId", "Customer"),
        "dimensionFilters" => ("filterKey", "Dimension filter"),
        "filterKey" => ("filterKey", "Dimension key"),
        "filterValue" => ("filterValue", "Dimension value"),
        "alertThresholds" => ("alertThresholds", "Alert thresholds"),
        "failMode" => ("failMode", "Fail mode"),
        "aggregation" => ("aggregation", "Aggregation"),
        "field" => ("field", "Field"),
        "eventFilter" => ("eventType", "Event type"),
        "description" => ("description", "Description"),
        "amount" => ("amount", "Amount"),
        "minimumBalance" => ("minimumBalance", "Minimum balance"),
        "initialBalance" => ("initialBalance", "Initial balance"),
        "lowBalanceThreshold" => ("lowBalanceThreshold", "Low balance threshold"),
        "unit" => ("unit", "Unit"),
        "url" => ("url", "URL"),
        "rate_limit_per_minute" => ("rate_limit_per_minute", "Requests per minute"),
        "rate_limit_per_day" => ("rate_limit_per_day", "Requests per day"),
        "customer" => ("customer", "Customer"),
        "externalId" => ("externalId", "Customer id"),
        "email" => ("email", "Email"),
        "timezone" => ("timezone", "Timezone"),
        "billingCycleStart" => ("billingCycleStart", "Billing cycle start"),
        "start" | "startDate" => ("start", "From"),
        "end" | "endDate" => ("end", "Until"),
        _ => return (base.to_string(), "This field"),
    };
    (input.to_string(), label)
}

/// An API validation message in an operator's words: no patterns, no wire names.
fn in_words(api_field: &str, message: &str) -> String {
    if let Some(position) = api_field.strip_prefix("alertThresholds[").and_then(|rest| rest.strip_suffix(']')) {
        let nth = position.parse::<usize>().map_or(0, |i| i + 1);
        return format!("must each be a percentage from 1 to 100 (number {nth} in the list is not)");
    }
    message
        .replace(
            "must be values.<key> with a key of [A-Za-z0-9_]{1,64}, or * for count",
            "must be values. followed by the key of the event's value (letters, digits or _), such as values.tokens, \
             or * to count events",
        )
        .replace("keys must match [A-Za-z0-9_]{1,64}", "keys may hold only letters, digits and _ (at most 64)")
        .replace("must be one of hour, day, week, month, annual, all_time", "must be one of the listed periods")
        .replace("must be an RFC 3339 timestamp or a YYYY-MM-DD date", "must be a date such as 2026-03-01")
        .replace("must be after the start", "must be after the start date")
}

/// Leaves `flash` for the session's next page and sends the browser to `to`.
async fn go_to(session: &OperatorSession, to: &str, flash: Flash) -> Response {
    if let Err(err) = session.leave_flash(&flash).await {
        tracing::warn!(error = %err, "could not leave a message for the next page");
    }
    Redirect::to(to).into_response()
}

/// The sign-in and setup forms have no session to carry a message: they go back with a code
/// the page looks up in a fixed table (`components::public_error`).
fn public_failure(back: &str, code: &str, wait_seconds: Option<i64>) -> Response {
    let wait = wait_seconds.map(|s| format!("&wait={s}")).unwrap_or_default();
    Redirect::to(&format!("{back}?error={code}{wait}")).into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "The form's security token is missing or out of date. Go back, reload the page and try again.",
    )
        .into_response()
}

/// Runs a dashboard form: the anti-forgery token first, then the action, whose answer says
/// where to go and what to tell; an error goes back to `back`, next to its field.
pub(crate) async fn form_action<F, Fut>(session: &OperatorSession, fields: &Fields, back: &str, action: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(String, Flash), AppError>>,
{
    if !csrf_ok(session, fields) {
        return forbidden();
    }
    match action().await {
        Ok((to, flash)) => go_to(session, &to, flash).await,
        Err(err) => Failure::new(back, err).with_values(fields).respond(session).await,
    }
}

pub(crate) fn to(path: &str, notice: impl Into<String>) -> Result<(String, Flash), AppError> {
    Ok((path.to_string(), Flash { notice: Some(notice.into()), ..Flash::default() }))
}

/// Like `to`, with a new secret the next page shows once.
fn to_with_secret(path: &str, notice: impl Into<String>, secret: String) -> Result<(String, Flash), AppError> {
    Ok((path.to_string(), Flash { notice: Some(notice.into()), secret: Some(secret), ..Flash::default() }))
}

/// The session's anti-forgery token must come back with every form.
fn csrf_ok(session: &OperatorSession, fields: &Fields) -> bool {
    fields.get(CSRF_FIELD).is_some_and(|token| same_secret(&session.csrf_token, token))
}

fn text(fields: &Fields, name: &str) -> Option<String> {
    fields.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A number field as operators type it, thousands separators included ("36,000").
fn number(fields: &Fields, name: &str) -> Result<Option<serde_json::Number>, AppError> {
    match text(fields, name) {
        None => Ok(None),
        Some(value) => plain_number(&value)
            .and_then(|plain| serde_json::from_str::<serde_json::Number>(&plain).ok())
            .map(Some)
            .ok_or_else(|| FieldError::invalid(name, "must be a number, such as 36000 or 36,000").into()),
    }
}

/// The project the operator's session manages (see `ui::projects`).
async fn project(_state: &AppState) -> Result<Project, AppError> {
    Ok(crate::ui::projects::current_project()?.as_ref().clone())
}

/// The client's address as the server accepted it (absent only when the router is driven
/// without a socket, as in unit tests).
fn client_address(connect_info: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(address))| address.ip())
}

async fn login(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    cookies: Cookies,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    if !login_csrf_ok(&cookies, fields.get(CSRF_FIELD).map(String::as_str)) {
        return forbidden();
    }
    let email = fields.get("email").map(String::as_str).unwrap_or_default();
    let password = fields.get("password").map(String::as_str).unwrap_or_default();
    let now_ms = state.engine.now().timestamp_millis();
    match log_in(state.engine.db(), email, password, client_address(connect_info), now_ms).await {
        Ok(operator) => match start_session(&session, &operator.id, &operator.email).await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(err) => {
                tracing::error!(error = %err, "could not start a session");
                public_failure("/login", "failed", None)
            }
        },
        Err(LoginError::WrongCredentials) => public_failure("/login", "wrong_credentials", None),
        Err(LoginError::TooManyAttempts(seconds)) => public_failure("/login", "too_many_attempts", Some(seconds)),
        Err(LoginError::Db(err)) => {
            tracing::error!(error = %err, "sign-in failed");
            public_failure("/login", "failed", None)
        }
    }
}

async fn setup(
    State(state): State<AppState>,
    cookies: Cookies,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    if !login_csrf_ok(&cookies, fields.get(CSRF_FIELD).map(String::as_str)) {
        return forbidden();
    }
    let db = state.engine.db();
    let email = fields.get("email").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let now_ms = state.engine.now().timestamp_millis();
    let operator = match create_first_operator(db, &email, &password, now_ms).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return (StatusCode::NOT_FOUND, "Setup is complete.").into_response(),
        Err(CreateOperatorError::Invalid(err)) if err.field() == "password" => {
            return public_failure("/setup", "invalid_password", None)
        }
        Err(CreateOperatorError::Invalid(_)) => return public_failure("/setup", "invalid_email", None),
        Err(err) => {
            tracing::error!(error = %err, "setup failed");
            return public_failure("/setup", "failed", None);
        }
    };
    match start_session(&session, &operator.id, &operator.email).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(err) => {
            tracing::error!(error = %err, "could not start a session");
            public_failure("/login", "failed", None)
        }
    }
}

async fn logout(Extension(session): Extension<OperatorSession>, Form(fields): Form<Fields>) -> Response {
    if !csrf_ok(&session, &fields) {
        return forbidden();
    }
    if let Err(err) = session.end().await {
        return Failure::new("/", AppError::Internal(err.into())).respond(&session).await;
    }
    Redirect::to("/login").into_response()
}

fn meter_request(fields: &Fields) -> MeterRequest {
    let event_type = text(fields, "eventType");
    MeterRequest {
        name: text(fields, "name"),
        description: text(fields, "description"),
        aggregation: text(fields, "aggregation"),
        field: text(fields, "field"),
        event_filter: Some(EventFilter { event_type, dimensions: Default::default() }),
    }
}

async fn meter_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/meters".to_string();
    form_action(&session, &fields, &back, || async {
        let meter = create_meter(&state, &project(&state).await?, &operator(&session), meter_request(&fields)).await?;
        to("/meters", format!("Meter {} created.", meter.name))
    })
    .await
}

async fn meter_update(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/meters".to_string();
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let meter = update_meter(&state, &project, &operator(&session), &id, meter_request(&fields)).await?;
        to("/meters", format!("Meter {} saved.", meter.name))
    })
    .await
}

async fn meter_delete(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/meters".to_string();
    form_action(&session, &fields, &back, || async {
        delete_meter(&state, &project(&state).await?, &operator(&session), &id).await?;
        to("/meters", "Meter deleted.")
    })
    .await
}

fn limit_request(fields: &Fields, is_new: bool) -> Result<LimitRequest, AppError> {
    let thresholds = match text(fields, "alertThresholds") {
        // An empty field clears the thresholds.
        None => Some(None),
        Some(list) => Some(Some(
            list.split(',')
                .map(|p| p.trim().trim_end_matches('%').trim().parse::<i64>().map(crate::domain::WholeNumber))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    FieldError::invalid(
                        "alertThresholds",
                        "must be whole percentages separated by commas, such as 50, 80, 100",
                    )
                })?,
        )),
    };
    let mut filters = std::collections::BTreeMap::new();
    // Half a filter is refused rather than dropped: a limit counting more than meant is
    // worse than a second try.
    match (text(fields, "filterKey"), text(fields, "filterValue")) {
        (Some(key), Some(value)) => {
            filters.insert(key, value);
        }
        (Some(_), None) if is_new => return Err(FieldError::missing("filterValue").into()),
        (None, Some(_)) if is_new => return Err(FieldError::missing("filterKey").into()),
        _ => {}
    }
    Ok(LimitRequest {
        name: text(fields, "name"),
        meter_id: text(fields, "meterId"),
        limit_value: number(fields, "limitValue")?,
        period: text(fields, "period"),
        // An unticked box is not posted: the limit does not roll.
        rolling: Some(fields.contains_key("rolling")),
        // An empty customer on a new limit makes it the project default.
        customer_id: if is_new { Some(text(fields, "customerId").unwrap_or_default()) } else { None },
        dimension_filters: if is_new { Some(filters) } else { None },
        alert_thresholds: thresholds,
        fail_mode: text(fields, "failMode"),
    })
}

/// A limit's customer must already exist unless the operator asked to create it: a typo must
/// not make a new customer.
async fn chosen_customer_exists(state: &AppState, project: &Project, fields: &Fields) -> Result<(), AppError> {
    let Some(reference) = text(fields, "customerId") else { return Ok(()) };
    if fields.contains_key("createCustomer") {
        return Ok(());
    }
    match state.engine.db().customer(&project.id, &reference).await? {
        Some(_) => Ok(()),
        None => Err(FieldError::invalid(
            "customerId",
            format!(
                "must be an existing customer (there is no {}): pick one from the suggestions, or tick \"Create this \
                 customer\" to add it",
                crate::domain::truncate(&reference, 100)
            ),
        )
        .into()),
    }
}

async fn limit_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/limits".to_string();
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let request = limit_request(&fields, true)?;
        chosen_customer_exists(&state, &project, &fields).await?;
        let limit = create_limit(&state, &project, &operator(&session), request).await?;
        to("/limits", format!("Limit {} created.", limit.name))
    })
    .await
}

async fn limit_update(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/limits".to_string();
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let limit = update_limit(&state, &project, &operator(&session), &id, limit_request(&fields, false)?).await?;
        to("/limits", format!("Limit {} saved.", limit.name))
    })
    .await
}

async fn limit_delete(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/limits".to_string();
    form_action(&session, &fields, &back, || async {
        delete_limit(&state, &project(&state).await?, &operator(&session), &id).await?;
        to("/limits", "Limit deleted.")
    })
    .await
}

async fn key_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/api-keys".to_string();
    form_action(&session, &fields, &back, || async {
        let name = required_text(text(&fields, "name"), "name", 128)?;
        let limits = key_rate_limits_of(&fields)?;
        let now_ms = state.engine.now().timestamp_millis();
        let project = project(&state).await?;
        let key = create_key(state.engine.db(), &project.id, &name, now_ms).await?;
        if limits != KeyRateLimits::default() {
            state.engine.db().set_key_rate_limits(&project.id, &key.id, limits).await?;
        }
        let summary = format!("API key {name} created ({})", rate_limits_text(limits));
        let change = AuditChange::new(AuditKind::ApiKey, "created", &key.id, summary);
        state.engine.log_change(&project.id, &operator(&session), change).await;
        // Shown once, on the next page, then forgotten.
        to_with_secret("/api-keys", format!("API key {name} created. Copy it now: it is not shown again."), key.secret)
    })
    .await
}

async fn key_revoke(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/api-keys".to_string();
    form_action(&session, &fields, &back, || async {
        let db = state.engine.db();
        let project = project(&state).await?;
        // Only the dashboard's project's keys: another project's id answers as unknown.
        db.revoke_key(Some(&project.id), &id, state.engine.now().timestamp_millis()).await?;
        state.keys.forget_all();
        let name = db.keys(Some(&project.id)).await?.into_iter().find(|k| k.id == id).map(|k| k.name);
        let summary = format!("API key {} revoked", name.unwrap_or_else(|| id.clone()));
        let change = AuditChange::new(AuditKind::ApiKey, "revoked", &id, summary);
        state.engine.log_change(&project.id, &operator(&session), change).await;
        tracing::info!(key_id = %id, operator = %session.email, "API key revoked from the dashboard");
        to("/api-keys", "API key revoked.")
    })
    .await
}

/// A personal access token for the signed-in operator, shown once.
async fn personal_token_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/access-tokens".to_string();
    form_action(&session, &fields, &back, || async {
        let name = required_text(text(&fields, "name"), "name", 128)?;
        let now_ms = state.engine.now().timestamp_millis();
        let token = create_personal_token(state.engine.db(), &session.operator_id, &name, now_ms).await?;
        let summary = format!("Access token {name} created for {}", session.email);
        let change = AuditChange::new(AuditKind::AccessToken, "created", &token.id, summary);
        state.engine.log_change(&project(&state).await?.id, &operator(&session), change).await;
        tracing::info!(token_id = %token.id, operator = %session.email, "personal access token created");
        to_with_secret(
            "/access-tokens",
            format!("Access token {name} created. Copy it now: it is not shown again."),
            token.secret,
        )
    })
    .await
}

/// Revokes one of the signed-in operator's own tokens; it is refused from the next request.
async fn personal_token_revoke(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/access-tokens".to_string();
    form_action(&session, &fields, &back, || async {
        let now_ms = state.engine.now().timestamp_millis();
        state.engine.db().revoke_personal_token(&session.operator_id, &id, now_ms).await?;
        let summary = format!("Access token {id} of {} revoked", session.email);
        let change = AuditChange::new(AuditKind::AccessToken, "revoked", &id, summary);
        state.engine.log_change(&project(&state).await?.id, &operator(&session), change).await;
        tracing::info!(token_id = %id, operator = %session.email, "personal access token revoked");
        to("/access-tokens", "Access token revoked.")
    })
    .await
}

/// A key's own rate limits in words: "100 requests a minute, no daily limit".
fn rate_limits_text(limits: KeyRateLimits) -> String {
    let per = |limit: Option<i64>, unit: &str, none: &str| match limit {
        Some(n) if n > 0 => format!("{n} requests a {unit}"),
        Some(_) => format!("no {none} limit"),
        None => format!("the service's {none} limit"),
    };
    format!("{}, {}", per(limits.per_minute, "minute", "per-minute"), per(limits.per_day, "day", "daily"))
}

/// The rate-limit fields of an API key form.
fn key_rate_limits_of(fields: &Fields) -> Result<KeyRateLimits, AppError> {
    Ok(KeyRateLimits {
        per_minute: parse_key_limit(fields.get("rate_limit_per_minute").map(String::as_str), "rate_limit_per_minute")?,
        per_day: parse_key_limit(fields.get("rate_limit_per_day").map(String::as_str), "rate_limit_per_day")?,
    })
}

async fn key_rate_limits(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/api-keys".to_string();
    form_action(&session, &fields, &back, || async {
        let limits = key_rate_limits_of(&fields)?;
        let project = project(&state).await?;
        state.engine.db().set_key_rate_limits(&project.id, &id, limits).await?;
        let summary = format!("Rate limits of API key {id} set to {}", rate_limits_text(limits));
        let change = AuditChange::new(AuditKind::ApiKey, "changed", &id, summary);
        state.engine.log_change(&project.id, &operator(&session), change).await;
        // Cached keys carry their limits: this process applies the change at once, others
        // within the key cache's few seconds.
        state.keys.forget_all();
        tracing::info!(key_id = %id, operator = %session.email, "API key rate limits changed from the dashboard");
        to("/api-keys", "Rate limits saved.")
    })
    .await
}

async fn balance_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(customer): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/customers/{customer}");
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let customer = find_customer(&state, &project, &customer).await?;
        // The API's own checks and words, on the fields as typed ("36,000" included).
        let request = CreateBalanceRequest {
            customer_id: Some(customer.id.clone()),
            name: text(&fields, "name"),
            unit: text(&fields, "unit"),
            initial_balance: number(&fields, "initialBalance")?,
            minimum_balance: number(&fields, "minimumBalance")?,
            low_balance_threshold: number(&fields, "lowBalanceThreshold")?,
            dimension_filters: None,
        };
        let balance =
            create_balance(&state, &project, request, &operator(&session)).await.map_err(|err| match err {
                AppError::Conflict(_) => FieldError::invalid(
                    "name",
                    format!(
                        "must be new for this customer, who already has a balance named {}",
                        text(&fields, "name").unwrap_or_default()
                    ),
                )
                .into(),
                other => other,
            })?;
        to(&back, format!("Balance {} created.", balance.name))
    })
    .await
}

/// Credits or debits a balance from its customer's page.
async fn move_balance(
    state: &AppState,
    session: &OperatorSession,
    balance_id: &str,
    fields: &Fields,
    credit: bool,
) -> Response {
    let project = match project(state).await {
        Ok(project) => project,
        Err(err) => return Failure::new("/customers", err).respond(session).await,
    };
    let balance = match state.engine.db().balance(&project.id, balance_id).await {
        Ok(Some(balance)) => balance,
        Ok(None) => {
            return Failure::new("/customers", AppError::not_found("balance", balance_id)).respond(session).await
        }
        Err(err) => return Failure::new("/customers", err.into()).respond(session).await,
    };
    let back = format!("/customers/{}", balance.customer_id);
    let result = async {
        let amount = number(fields, "amount")?.ok_or_else(|| FieldError::missing("amount"))?;
        let amount = positive_amount(&amount, "amount")?;
        let description = match (credit, text(fields, "description")) {
            (true, description) => required_text(description, "description", 512)?,
            (false, description) => description.unwrap_or_else(|| "Debit from the dashboard".into()),
        };
        let operation = if credit {
            BalanceOperation::Credit { balance_id, amount, description: &description, reference: None }
        } else {
            BalanceOperation::Debit { balance_id, amount, description: Some(&description), reference: None }
        };
        let actor = operator(session);
        Ok::<_, AppError>(
            state.engine.operate_balance(&project, &operation, None, &actor, |_| (200, String::new())).await?,
        )
    };
    match result.await {
        Ok(Idempotent::Fresh(result)) if result.refused.is_some() => {
            let message = "Insufficient balance: nothing was debited.".to_string();
            let failure =
                Failure { back, message, field: Some("amount".into()), form: None, values: Default::default() };
            failure.with_values(fields).respond(session).await
        }
        Ok(_) => {
            let notice = if credit { "Balance credited." } else { "Balance debited." };
            go_to(session, &back, Flash { notice: Some(notice.into()), ..Flash::default() }).await
        }
        Err(err) => Failure::new(&back, err).with_values(fields).respond(session).await,
    }
}

async fn balance_credit(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !csrf_ok(&session, &fields) {
        return forbidden();
    }
    move_balance(&state, &session, &id, &fields, true).await
}

async fn balance_debit(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !csrf_ok(&session, &fields) {
        return forbidden();
    }
    move_balance(&state, &session, &id, &fields, false).await
}

fn endpoint_request(fields: &Fields, with_enabled: bool) -> EndpointRequest {
    let event_types = EventType::ALL
        .into_iter()
        .filter(|t| fields.contains_key(&format!("type:{}", t.as_str())))
        .map(|t| t.as_str().to_string());
    EndpointRequest {
        url: text(fields, "url"),
        description: text(fields, "description"),
        event_types: Some(event_types.collect()),
        // An unticked checkbox sends nothing.
        enabled: with_enabled.then(|| fields.contains_key("enabled")),
        summary_frequency: Some(text(fields, "summaryFrequency").unwrap_or_default()),
    }
}

async fn webhook_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = "/webhooks".to_string();
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let created = create_endpoint(&state, &project, &operator(&session), endpoint_request(&fields, false)).await?;
        let to = format!("/webhooks/{}", created.endpoint.id);
        to_with_secret(&to, "Endpoint created. Copy its signing secret now.", created.secret)
    })
    .await
}

async fn webhook_update(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        update_endpoint(&state, &project, &operator(&session), &id, endpoint_request(&fields, true)).await?;
        to(&back, "Endpoint saved.")
    })
    .await
}

async fn webhook_rotate(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        // The confirmation page offers the grace period; a form without one uses the service's.
        let hours = text(&fields, "graceHours")
            .map(|h| h.parse::<i64>().map_err(|_| FieldError::invalid("graceHours", "must be a whole number of hours")))
            .transpose()?;
        let grace = RotateSecretRequest { grace_hours: hours.map(crate::domain::WholeNumber) }
            .grace(state.webhook_secret_grace)?;
        let rotated = rotate_endpoint_secret(&state, &project, &operator(&session), &id, grace).await?;
        let notice = match rotated.endpoint.previous_secret_expires_at {
            Some(until) => format!(
                "Secret rotated. Copy the new one now; the old one keeps signing too until {}.",
                crate::ui::components::format_time(until)
            ),
            None => "Secret rotated. Copy the new one now; the old one no longer signs.".to_string(),
        };
        to_with_secret(&back, notice, rotated.secret)
    })
    .await
}

async fn webhook_delete(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        delete_endpoint(&state, &project(&state).await?, &operator(&session), &id).await?;
        to("/webhooks", "Endpoint deleted.")
    })
    .await
}

async fn webhook_test(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        send_test_event(&state, &project(&state).await?, &id).await?;
        to(&back, "Test event queued.")
    })
    .await
}

async fn webhook_redeliver(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path((id, delivery)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        let endpoint = find_endpoint(&state, &project(&state).await?, &id).await?;
        state.engine.db().redeliver(&endpoint.id, &delivery, state.engine.now()).await?;
        to(&back, "Delivery queued again with the same webhook-id.")
    })
    .await
}

async fn webhook_retry_failed(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/webhooks/{id}");
    form_action(&session, &fields, &back, || async {
        let endpoint = find_endpoint(&state, &project(&state).await?, &id).await?;
        let count = state.engine.db().retry_failed_deliveries(&endpoint.id, state.engine.now()).await?;
        tracing::info!(endpoint_id = %endpoint.id, count, operator = %session.email, "failed deliveries retried");
        let notice = match count {
            0 => "No failed delivery to retry.".to_string(),
            1 => "1 failed delivery queued again with its webhook-id.".to_string(),
            n => format!(
                "{} failed deliveries queued again with their webhook-ids.",
                crate::ui::format::grouped(i128::from(n))
            ),
        };
        to(&back, notice)
    })
    .await
}

/// The fields of the customer forms, as the API takes them.
fn customer_request(fields: &Fields, with_external_id: bool) -> CustomerRequest {
    CustomerRequest {
        external_id: if with_external_id { text(fields, "externalId") } else { None },
        name: text(fields, "name"),
        email: text(fields, "email"),
        timezone: text(fields, "timezone"),
        billing_cycle_start: text(fields, "billingCycleStart"),
        ..CustomerRequest::default()
    }
}

async fn customer_create(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Form(fields): Form<Fields>,
) -> Response {
    form_action(&session, &fields, "/customers", || async {
        let project = project(&state).await?;
        let new = new_customer_fields(customer_request(&fields, true))?;
        let customer = state.engine.create_customer(&project, &new, &operator(&session)).await?;
        to(&format!("/customers/{}", customer.id), format!("Customer {} created.", customer.external_id))
    })
    .await
}

async fn customer_update(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/customers/{id}");
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let before = find_customer(&state, &project, &id).await?;
        let changed = changed_customer_fields(&before, customer_request(&fields, false))?;
        state.engine.update_customer(&project, &before, &changed, &operator(&session)).await?;
        to(&back, "Customer saved.")
    })
    .await
}

async fn customer_delete(
    State(state): State<AppState>,
    Extension(session): Extension<OperatorSession>,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let back = format!("/customers/{id}");
    form_action(&session, &fields, &back, || async {
        let project = project(&state).await?;
        let customer = find_customer(&state, &project, &id).await?;
        state.engine.delete_customer(&project, &customer, &operator(&session)).await?;
        tracing::info!(customer_id = %customer.id, operator = %session.email, "customer deleted from the dashboard");
        to("/customers", format!("Customer {} deleted with its events and own limits.", customer.external_id))
    })
    .await
}
