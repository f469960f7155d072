//! The audit log of changes made through the API: each entry names the API key by its public
//! prefix, what was done to what, and when (the service's clock).

use limitry::db::projects::DEFAULT_PROJECT_ID;
use limitry::domain::audit::AuditEntry;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{default_now, spawn_app, TestApp};

/// The project's entries, newest first, optionally of one kind.
async fn entries(app: &TestApp, kind: Option<&str>) -> Vec<AuditEntry> {
    app.engine().db().audit_page(DEFAULT_PROJECT_ID, kind, None, 100).await.unwrap()
}

/// `(kind, action, subject)` of each entry, oldest first.
async fn actions(app: &TestApp) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = entries(app, None).await.into_iter().map(|e| (e.kind, e.action, e.subject_id)).collect();
    all.reverse();
    all
}

#[tokio::test]
async fn every_change_made_with_an_api_key_is_logged_with_the_key_and_the_time() {
    let app = spawn_app().await;
    let actor = format!("API key {}", &app.key[.."limitry_sk_".len() + 4]);
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "Daily tokens", "meterId": meter, "limitValue": 60000, "period": "day",
            "alertThresholds": [50, 80]}))
        .await;
    let (_, customer) = app.post("/v1/customers", json!({"externalId": "acme"})).await;
    let customer_id = customer["id"].as_str().unwrap().to_string();
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, _) = app.put(&format!("/v1/limits/{limit}"), json!({"limitValue": 70000})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, balance) =
        app.post("/v1/balances", json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let balance_id = balance["id"].as_str().unwrap().to_string();
    let (status, _) =
        app.post("/v1/balances/credit", json!({"balanceId": balance_id, "amount": 500, "description": "top-up"})).await;
    assert_eq!(status, StatusCode::OK);
    app.post("/v1/balances/debit", json!({"balanceId": balance_id, "amount": 40})).await;
    // A refused debit moves nothing, and so logs nothing.
    let (_, refused) = app.post("/v1/balances/debit", json!({"balanceId": balance_id, "amount": 1000000})).await;
    assert_eq!(refused["success"], false, "{refused}");
    let (_, endpoint) = app.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook"})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    app.put(&format!("/v1/webhooks/{endpoint_id}"), json!({"enabled": false})).await;
    app.post(&format!("/v1/webhooks/{endpoint_id}/rotate-secret"), json!({"graceHours": 1})).await;
    app.delete(&format!("/v1/webhooks/{endpoint_id}")).await;
    app.put("/v1/customers/acme", json!({"name": "Acme Corporation"})).await;
    app.delete(&format!("/v1/limits/{limit}")).await;
    app.delete(&format!("/v1/meters/{meter}")).await;

    let logged = actions(&app).await;
    let expected = [
        ("meter", "created", meter.as_str()),
        ("limit", "created", limit.as_str()),
        ("customer", "created", customer_id.as_str()),
        ("limit", "changed", limit.as_str()),
        ("balance", "created", balance_id.as_str()),
        ("balance", "credited", balance_id.as_str()),
        ("balance", "debited", balance_id.as_str()),
        ("webhook", "created", endpoint_id.as_str()),
        ("webhook", "changed", endpoint_id.as_str()),
        ("webhook", "rotated secret", endpoint_id.as_str()),
        ("webhook", "deleted", endpoint_id.as_str()),
        ("customer", "changed", customer_id.as_str()),
        ("limit", "deleted", limit.as_str()),
        ("meter", "deleted", meter.as_str()),
    ]
    .map(|(kind, action, subject)| (kind.to_string(), action.to_string(), subject.to_string()));
    assert_eq!(logged, expected);

    let all = entries(&app, None).await;
    assert!(all.iter().all(|e| e.actor == actor), "every entry names the key: {all:?}");
    let summaries: Vec<&str> = all.iter().map(|e| e.summary.as_str()).collect();
    let has = |text: &str| summaries.iter().any(|s| s.contains(text));
    assert!(
        has("Credited 500 credits to balance credits of customer acme; 600 credits after (top-up)"),
        "{summaries:?}"
    );
    assert!(has("Debited 40 credits from balance credits of customer acme; 560 credits after"), "{summaries:?}");
    assert!(has("Limit Daily tokens changed: 70000 of Tokens per day for every customer"), "{summaries:?}");
    assert!(has("the old one signs too until"), "{summaries:?}");
    assert!(has("disabled"), "{summaries:?}");

    // Times are the service's clock: the first entries before it moved, the rest after.
    assert_eq!(all.last().unwrap().created_at, default_now());
    assert_eq!(all.first().unwrap().created_at, default_now() + chrono::Duration::minutes(5));

    // Of one kind, newest first, a page at a time.
    let limits = entries(&app, Some("limit")).await;
    assert_eq!(limits.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["deleted", "changed", "created"]);
    let db = app.engine().db();
    let first_page = db.audit_page(DEFAULT_PROJECT_ID, None, None, 5).await.unwrap();
    let second_page = db.audit_page(DEFAULT_PROJECT_ID, None, Some(&first_page.last().unwrap().id), 100).await.unwrap();
    assert_eq!(first_page.len() + second_page.len(), all.len());
    assert_eq!(second_page.first().unwrap().id, all[5].id);
}

#[tokio::test]
async fn a_retried_credit_is_logged_once_and_a_failed_change_not_at_all() {
    let app = spawn_app().await;
    app.post("/v1/balances", json!({"customerId": "acme", "name": "credits"})).await;
    let credit = || async {
        app.client
            .post(format!("{}/v1/balances/credit", app.base))
            .bearer_auth(&app.key)
            .header("idempotency-key", "top-up-1")
            .json(&json!({"customerId": "acme", "name": "credits", "amount": 5, "description": "top-up"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(credit().await, StatusCode::OK);
    assert_eq!(credit().await, StatusCode::OK);
    let (status, _) = app
        .post(
            "/v1/limits",
            json!({"name": "no meter", "meterId": "mtr_missing", "limitValue": 1,
        "period": "day"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let logged = actions(&app).await;
    let kinds: Vec<_> = logged.iter().map(|(kind, action, _)| format!("{kind} {action}")).collect();
    assert_eq!(kinds, ["balance created", "balance credited"]);
}
