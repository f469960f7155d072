//! The service around the API: health, authentication, tenancy, OpenAPI, the status page.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer_without_credentials() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_api_refuses_missing_malformed_unknown_and_revoked_keys() {
    let app = spawn_app().await;
    let get = reqwest::Method::GET;
    assert_error(
        &app.request_with_key(get.clone(), "/v1/project", None, None).await,
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
        None,
    );
    assert_error(
        &app.request_with_key(get.clone(), "/v1/project", None, Some("not-a-key")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        None,
    );
    assert_error(
        &app.request_with_key(get.clone(), "/v1/project", None, Some("limitry_sk_unknown")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        None,
    );
    let (status, project) = app.get("/v1/project").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(project["id"], "proj_default");
    assert_eq!(project["timezone"], "UTC");

    let db = app.engine().db();
    let key = limitry::auth::keys::create_key(db, "proj_default", "short-lived", 0).await.unwrap();
    db.revoke_key(None, &key.id, 1).await.unwrap();
    assert_error(
        &app.request_with_key(get, "/v1/project", None, Some(&key.secret)).await,
        StatusCode::UNAUTHORIZED,
        "expired_api_key",
        None,
    );
}

#[tokio::test]
async fn a_key_sees_only_its_own_project() {
    let app = spawn_app().await;
    let db = app.engine().db();
    let other =
        db.create_project(&limitry::domain::projects::NewProject::parse("Other", "UTC").unwrap(), 0).await.unwrap();
    let other_key = limitry::auth::keys::create_key(db, &other.id, "other", 0).await.unwrap().secret;
    let meter = app.token_meter().await;
    app.record_tokens("acme", 1).await;

    let as_other = |path: String| {
        let (app, key) = (&app, other_key.clone());
        async move { app.request_with_key(reqwest::Method::GET, &path, None, Some(&key)).await }
    };
    let (_, project) = as_other("/v1/project".into()).await;
    assert_eq!(project["id"], other.id);
    assert_error(&as_other(format!("/v1/meters/{meter}")).await, StatusCode::NOT_FOUND, "meter_not_found", None);
    assert_error(&as_other("/v1/customers/acme".into()).await, StatusCode::NOT_FOUND, "customer_not_found", None);
    let (_, events) = as_other("/v1/events".into()).await;
    assert_eq!(events["data"], json!([]));
    let (_, meters) = as_other("/v1/meters".into()).await;
    assert_eq!(meters["data"], json!([]));
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/v1/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/project", "get"),
        ("/v1/customers", "post"),
        ("/v1/customers", "get"),
        ("/v1/customers/{id}", "put"),
        ("/v1/customers/{id}", "delete"),
        ("/v1/customers/{id}/usage", "get"),
        ("/v1/events/record", "post"),
        ("/v1/events/batch", "post"),
        ("/v1/events", "get"),
        ("/v1/meters/{id}", "put"),
        ("/v1/meters/{id}/query", "post"),
        ("/v1/limits", "post"),
        ("/v1/limits/{id}", "delete"),
        ("/v1/limits/check", "post"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in ["CheckResponse", "LimitStatus", "EventInput", "Meter", "Limit", "Customer", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}
