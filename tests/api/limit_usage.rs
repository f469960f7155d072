//! `GET /v1/limits/{id}/usage`: who is closest to a limit in their current window.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, at, spawn_app};

#[tokio::test]
async fn usage_by_customer_lists_the_governed_customers_closest_to_the_limit_first() {
    let app = spawn_app().await; // 2026-03-10 12:00 UTC
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.create_limit(json!({"name": "own", "meterId": meter, "limitValue": 500, "period": "day", "customerId": "vip"}))
        .await;
    app.record_tokens("light", 20).await;
    app.record_tokens("heavy", 80).await;
    app.record_tokens("over", 130).await;
    // Overridden by its own limit: the default does not govern it.
    app.record_tokens("vip", 300).await;
    // Auckland's day began at 11:00 UTC; usage from before then is in its previous window.
    let (status, body) = app.post("/v1/customers", json!({"externalId": "kiwi", "timezone": "Pacific/Auckland"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.clock.set(at("2026-03-10T10:30:00Z"));
    app.record_tokens("kiwi", 50).await;
    app.clock.set(at("2026-03-10T12:00:00Z"));

    let (status, usage) = app.get(&format!("/v1/limits/{limit}/usage")).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["limitId"], limit.as_str());
    assert_eq!(usage["limit"], 100);
    assert_eq!(usage["period"], "day");
    let customers: Vec<_> = usage["data"].as_array().unwrap().iter().map(|e| e["customerExternalId"].clone()).collect();
    assert_eq!(customers, [json!("over"), json!("heavy"), json!("light")], "{usage}");
    let over = &usage["data"][0];
    assert_eq!(
        (over["used"].clone(), over["remaining"].clone(), over["exceeded"].clone()),
        (json!(130), json!(0), json!(true))
    );
    assert!(over["customerId"].as_str().unwrap().starts_with("cust_"));
    assert_eq!(over["windowStart"], "2026-03-10T00:00:00Z");
    assert_eq!(over["reset"], at("2026-03-11T00:00:00Z").timestamp());

    let (_, top) = app.get(&format!("/v1/limits/{limit}/usage?limit=1")).await;
    assert_eq!(top["data"].as_array().unwrap().len(), 1, "{top}");
    assert_eq!(top["data"][0]["customerExternalId"], "over");

    // A new window starts everyone from zero.
    app.clock.set(at("2026-03-11T00:00:00Z"));
    let (_, next_day) = app.get(&format!("/v1/limits/{limit}/usage")).await;
    assert_eq!(next_day["data"], json!([]), "{next_day}");
}

#[tokio::test]
async fn usage_of_an_unknown_limit_or_with_a_bad_count_is_a_clear_error() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    let answer = app.get(&format!("/v1/limits/{limit}/usage?limit=0")).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("limit"));
    let answer = app.get("/v1/limits/lmt_00000000000000000000000000/usage").await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
}
