//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations
//! and the wire types.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{balances, client, customers, events, limits, meters, project, reservations, usage, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Limitry API", description = "Usage metering, limit enforcement and prepaid credits."),
    paths(
        project::get_project,
        customers::create, customers::list, customers::get, customers::update, customers::delete, customers::usage,
        events::record, events::batch, events::list,
        meters::create, meters::list, meters::get, meters::update, meters::delete, meters::query,
        limits::create, limits::list, limits::get, limits::update, limits::delete, limits::check, limits::usage,
        reservations::get, reservations::commit, reservations::release, reservations::extend,
        balances::create, balances::get, balances::customer_balances, balances::transactions, balances::check,
        balances::credit, balances::debit, balances::reserve, balances::commit, balances::release,
        usage::summary,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::rotate_secret,
        webhooks::deliveries, webhooks::redeliver, webhooks::test,
        client::create, client::get_token, client::revoke,
        client::token, client::check, client::record, client::summary,
        document,
    ),
    // Schemas that only parameters name are not collected from the paths: list them here.
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::engine::query::SummaryPeriod)),
    modifiers(&BearerAuth, &CommonResponses),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("limitry_sk_…").build(),
            ),
        );
        components.add_security_scheme(
            "clientToken",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("limitry_ct_…").build(),
            ),
        );
    }
}

/// The error answers every operation of a kind can give, added in one place so that no
/// handler's annotation can forget them: 401 where a key is required, 400 where input is read
/// (a body, a query or a path id), 413 where a body is read, 404 where a path names an object,
/// 409 where an `Idempotency-Key` is honoured, 429 where an API key's rate limit applies, 403
/// wherever a credential is required (the other kind of credential is refused).
struct CommonResponses;

const COMMON: [(&str, &str, &str); 7] = [
    ("400", "BadRequest", "invalid_request, missing_required_field or invalid_field_value, naming the field"),
    ("401", "Unauthorized", "missing_api_key, invalid_api_key or expired_api_key"),
    (
        "403",
        "Forbidden",
        "insufficient_permissions: a client token outside /v1/client/…, or an API key on /v1/client/…",
    ),
    ("404", "NotFound", "the named object (or route) does not exist in the key's project"),
    ("409", "Conflict", "conflict: the Idempotency-Key was used for a different request"),
    ("413", "PayloadTooLarge", "payload_too_large: the body is over the size limit"),
    ("429", "TooManyRequests", "rate_limit_exceeded: over the API key's rate limit; retry after Retry-After seconds"),
];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in COMMON {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let response = ResponseBuilder::new().description(description).content("application/json", content).build();
            components.responses.insert(name.to_string(), RefOr::T(response));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names_object = path.contains('{');
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten();
            for operation in operations {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let reads_input = has_body || !parameters.is_empty();
                let idempotent = parameters.iter().any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key"));
                for (status, applies) in [
                    ("400", reads_input),
                    ("401", secured),
                    ("403", secured),
                    ("404", names_object),
                    ("409", idempotent),
                    ("413", has_body),
                    // API keys have rate limits; client tokens do not.
                    ("429", secured && !path.starts_with("/v1/client/")),
                ] {
                    if applies {
                        add_common(operation, status);
                    }
                }
            }
        }
    }
}

fn add_common(operation: &mut Operation, status: &str) {
    if let Some((_, name, _)) = COMMON.iter().find(|(code, _, _)| *code == status) {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "getOpenApiDocument", tag = "meta", responses((status = 200, description = "this document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    Json(doc)
}
