//! Who is making an API request, for the audit log: the API key or personal access token of
//! its `Authorization` header, by public prefix. Handlers take it beside `ApiProject`, which
//! authenticates the same header first.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::keys::{bearer_secret, public_prefix, KEY_PREFIX};
use super::operators::OperatorSession;
use super::personal_tokens::TOKEN_PREFIX;
use crate::domain::audit::Actor;
use crate::server::AppState;

/// The caller of an API route (or the operator of a dashboard request).
pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<OperatorSession>() {
            return Ok(ApiActor(operator(session)));
        }
        Ok(ApiActor(api_caller(&parts.headers)))
    }
}

/// The API key or access token of an API request's `Authorization` header. Requests reach
/// handlers only once `ApiProject` accepted it.
pub fn api_caller(headers: &HeaderMap) -> Actor {
    let secret = bearer_secret(headers).unwrap_or_default();
    if secret.starts_with(TOKEN_PREFIX) {
        Actor::AccessToken { prefix: public_prefix(secret, TOKEN_PREFIX).to_string() }
    } else {
        Actor::ApiKey { prefix: public_prefix(secret, KEY_PREFIX).to_string() }
    }
}

/// The operator of a dashboard session.
pub fn operator(session: &OperatorSession) -> Actor {
    Actor::Operator { email: session.email.clone() }
}
