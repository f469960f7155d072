//! Client tokens: minted by the backend for one customer, used by a browser on `/v1/client/…`
//! only, for that customer only, until they expire or are revoked; CORS for allowed origins.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

/// Mints a token for `customer` and returns (id, token).
async fn mint(app: &TestApp, body: Value) -> (String, String) {
    let (status, answer) = app.post("/v1/client-tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let token = answer["token"].as_str().unwrap().to_string();
    assert!(id.starts_with("ct_"), "{answer}");
    assert!(token.starts_with("limitry_ct_"), "{answer}");
    (id, token)
}

async fn as_client(app: &TestApp, method: Method, path: &str, body: Option<Value>, token: &str) -> (StatusCode, Value) {
    app.request_with_key(method, path, body, Some(token)).await
}

#[tokio::test]
async fn a_client_token_checks_records_and_reads_usage_for_its_own_customer_only() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "Daily", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("other", 70).await;
    let (status, created) = app
        .post(
            "/v1/client-tokens",
            json!({"customerId": "acme", "context": {"plan": "pro"}, "serverContext": {"creditLimit": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["expiresAt"], "2026-03-10T13:00:00Z", "one hour by default: {created}");
    let token = created["token"].as_str().unwrap().to_string();

    // The browser reads its public context, never the server's.
    let (status, info) = as_client(&app, Method::GET, "/v1/client/token", None, &token).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["customerId"], "acme");
    assert_eq!(info["context"], json!({"plan": "pro"}));
    assert_eq!(info["projectId"], "proj_default");
    assert!(info.get("serverContext").is_none(), "{info}");
    assert!(!info.to_string().contains("creditLimit"), "{info}");
    // The backend sees both.
    let (status, details) = app.get(&format!("/v1/client-tokens/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{details}");
    assert_eq!(details["serverContext"], json!({"creditLimit": 5}));
    assert_eq!(details["status"], "active");
    assert!(details.get("token").is_none(), "{details}");

    let (status, recorded) = as_client(
        &app,
        Method::POST,
        "/v1/client/events/record",
        Some(json!({"eventType": "llm.completion", "values": {"tokens": 30}})),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    let (status, check) = as_client(&app, Method::POST, "/v1/client/limits/check", Some(json!({})), &token).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["limits"][0]["used"], 30, "acme's own usage, not other's 70: {check}");
    assert_eq!(app.used("acme", check["limits"][0]["id"].as_str().unwrap()).await, 30.0);
    let (status, check) =
        as_client(&app, Method::POST, "/v1/client/limits/check", Some(json!({"requested": 80})), &token).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["allowed"], false, "{check}");
    let (status, summary) = as_client(&app, Method::GET, "/v1/client/events/summary", None, &token).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let day = summary["data"].as_array().unwrap().iter().find(|row| row["period"] == "day").unwrap();
    assert_eq!(day["value"], 30, "{summary}");

    // Another customer named in a body is refused, never obeyed.
    for (path, body) in [
        ("/v1/client/limits/check", json!({"customerId": "other"})),
        (
            "/v1/client/events/record",
            json!({"customerId": "other", "eventType": "llm.completion", "values": {"tokens": 1}}),
        ),
    ] {
        let answer = as_client(&app, Method::POST, path, Some(body), &token).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("customerId"));
    }
    assert_eq!(app.used("other", check["limits"][0]["id"].as_str().unwrap()).await, 70.0);
}

#[tokio::test]
async fn a_client_token_reaches_no_other_route_and_an_api_key_no_client_route() {
    let app = spawn_app().await;
    let (_, token) = mint(&app, json!({"customerId": "acme"})).await;
    for (method, path, body) in [
        (Method::GET, "/v1/project", None),
        (Method::GET, "/v1/customers", None),
        (Method::POST, "/v1/limits/check", Some(json!({"customerId": "acme"}))),
        (Method::POST, "/v1/events/record", Some(json!({"customerId": "acme", "eventType": "x"}))),
        (Method::POST, "/v1/client-tokens", Some(json!({"customerId": "acme"}))),
        (Method::GET, "/v1/usage/summary?startDate=2026-03-01&endDate=2026-03-02", None),
    ] {
        let answer = as_client(&app, method, path, body, &token).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "insufficient_permissions", None);
    }
    let answer = app.get("/v1/client/token").await;
    assert_error(&answer, StatusCode::FORBIDDEN, "insufficient_permissions", None);
    let answer = as_client(&app, Method::GET, "/v1/client/token", None, "limitry_ct_forged").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_api_key", None);
    let answer = app.request_with_key(Method::GET, "/v1/client/token", None, None).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "missing_api_key", None);
}

#[tokio::test]
async fn a_token_expires_on_the_clock_and_a_revoked_one_is_refused_at_once() {
    let app = spawn_app().await;
    let (_, short) = mint(&app, json!({"customerId": "acme", "ttlSeconds": 60})).await;
    let (id, revoked) = mint(&app, json!({"customerId": "acme", "ttlSeconds": 86400})).await;
    assert_eq!(as_client(&app, Method::GET, "/v1/client/token", None, &short).await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(59));
    assert_eq!(as_client(&app, Method::GET, "/v1/client/token", None, &short).await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(1));
    let answer = as_client(&app, Method::POST, "/v1/client/limits/check", Some(json!({})), &short).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "expired_api_key", None);

    assert_eq!(as_client(&app, Method::GET, "/v1/client/token", None, &revoked).await.0, StatusCode::OK);
    let (status, body) = app.delete(&format!("/v1/client-tokens/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let answer = as_client(&app, Method::GET, "/v1/client/token", None, &revoked).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "expired_api_key", None);
    let (_, details) = app.get(&format!("/v1/client-tokens/{id}")).await;
    assert_eq!(details["status"], "revoked", "{details}");
    let answer = app.delete("/v1/client-tokens/ct_unknown").await;
    assert_error(&answer, StatusCode::NOT_FOUND, "client_token_not_found", None);
}

#[tokio::test]
async fn minting_refuses_bad_input_naming_the_field() {
    let app = spawn_app().await;
    for (body, status, code, field) in [
        (json!({}), StatusCode::BAD_REQUEST, "missing_required_field", "customerId"),
        (json!({"customerId": ""}), StatusCode::BAD_REQUEST, "missing_required_field", "customerId"),
        (json!({"customerId": "a", "ttlSeconds": 0}), StatusCode::BAD_REQUEST, "invalid_field_value", "ttlSeconds"),
        (json!({"customerId": "a", "ttlSeconds": 86401}), StatusCode::BAD_REQUEST, "invalid_field_value", "ttlSeconds"),
        (json!({"customerId": "a", "ttlSeconds": 1.5}), StatusCode::BAD_REQUEST, "invalid_field_value", "ttlSeconds"),
        (json!({"customerId": "a", "ttlSeconds": "60"}), StatusCode::BAD_REQUEST, "invalid_field_value", "ttlSeconds"),
        (json!({"customerId": "a", "context": [1]}), StatusCode::BAD_REQUEST, "invalid_field_value", "context"),
        (
            json!({"customerId": "a", "serverContext": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_field_value",
            "serverContext",
        ),
        (json!({"customerId": 5}), StatusCode::BAD_REQUEST, "invalid_field_value", "customerId"),
        (
            json!({"customerId": "a", "context": {"customerId": "b"}}),
            StatusCode::BAD_REQUEST,
            "invalid_field_value",
            "context.customerId",
        ),
    ] {
        let answer = app.post("/v1/client-tokens", body.clone()).await;
        assert_error(&answer, status, code, Some(field));
    }
    let big = "x".repeat(20_000);
    let answer = app.post("/v1/client-tokens", json!({"customerId": "a", "context": {"k": big}})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("context"));
    let answer = app.post("/v1/client-tokens", json!({"customerId": "cust_00000000000000000000000000"})).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "customer_not_found", None);
    // The customer may come in the public context (as Limitry's guides send it), and the
    // lifetime may be as short as a second or as long as a day.
    let (status, created) =
        app.post("/v1/client-tokens", json!({"publicMetadata": {"customerId": "acme"}, "ttlSeconds": 86400})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["customerId"], "acme");
    assert_eq!(created["expiresAt"], "2026-03-11T12:00:00Z");
}

fn allow_app_origin(config: &mut limitry::config::Config) {
    config.cors_allowed_origins = vec!["https://app.example.com".to_string()];
}

#[tokio::test]
async fn cors_answers_preflights_and_requests_from_allowed_origins_only() {
    let app = spawn_app_with(allow_app_origin).await;
    let (_, token) = mint(&app, json!({"customerId": "acme"})).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/v1/client/limits/check", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    let methods = headers["access-control-allow-methods"].to_str().unwrap().to_lowercase();
    assert!(methods.contains("post"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"), "{allowed_headers}");

    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    for (origin, allowed) in [("https://app.example.com", true), ("https://evil.example.com", false)] {
        let response = app
            .client
            .post(format!("{}/v1/client/limits/check", app.base))
            .header("origin", origin)
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers().get("access-control-allow-origin").is_some(), allowed, "{origin}");
    }
    // The backend's routes are not opened to browsers.
    let response = app
        .client
        .get(format!("{}/v1/project", app.base))
        .header("origin", "https://app.example.com")
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let app = spawn_app().await;
    let (_, token) = mint(&app, json!({"customerId": "acme"})).await;
    let response = app
        .client
        .get(format!("{}/v1/client/token", app.base))
        .header("origin", "https://app.example.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("access-control-allow-origin").is_none());
}
