//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations
//! and the wire types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{balances, customers, events, limits, meters, project, usage, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Limitry API", description = "Usage metering, limit enforcement and prepaid credits."),
    paths(
        project::get_project,
        customers::create, customers::list, customers::get, customers::update, customers::delete, customers::usage,
        events::record, events::batch, events::list,
        meters::create, meters::list, meters::get, meters::update, meters::delete, meters::query,
        limits::create, limits::list, limits::get, limits::update, limits::delete, limits::check,
        balances::create, balances::get, balances::customer_balances, balances::transactions, balances::check,
        balances::credit, balances::debit, balances::reserve, balances::commit, balances::release,
        usage::summary,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::rotate_secret,
        webhooks::deliveries, webhooks::redeliver, webhooks::test,
        document,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
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
    }
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", responses((status = 200, description = "this document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    Json(doc)
}
