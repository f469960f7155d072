//! The README quickstart, end to end.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{at, spawn_app};

#[tokio::test]
async fn the_quickstart_story_works_from_meter_to_refusal() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "Daily tokens", "meterId": meter, "limitValue": 1000, "period": "day", "customerId": "acme"}))
        .await;
    let (status, customer) = app.get("/v1/customers/acme").await;
    assert_eq!(status, StatusCode::OK, "naming a new customer in a limit creates it: {customer}");
    assert_eq!(app.limit_status("acme", &limit).await["name"], "Daily tokens");

    let answer = app.check(json!({"customerId": "acme"})).await;
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["limits"][0]["used"], 0);
    assert_eq!(answer["limits"][0]["remaining"], 1000);

    app.record_tokens("acme", 400).await;
    let answer = app.check(json!({"customerId": "acme"})).await;
    assert_eq!(answer["allowed"], true);
    let status = &answer["limits"][0];
    assert_eq!(status["used"], 400);
    assert_eq!(status["remaining"], 600);
    assert_eq!(status["exceeded"], false);
    assert_eq!(status["reset"], at("2026-03-11T00:00:00Z").timestamp());
    assert_eq!(status["failMode"], "open");
    assert_eq!(status["period"], "day");
    assert_eq!(status["limit"], 1000);

    app.record_tokens("acme", 600).await;
    let answer = app.check(json!({"customerId": "acme"})).await;
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["reason"], "limit_exceeded");
    assert_eq!(answer["limits"][0]["used"], 1000);
    assert_eq!(answer["limits"][0]["remaining"], 0);
    assert_eq!(answer["limits"][0]["exceeded"], true);

    let (status, usage) = app.get("/v1/customers/acme/usage").await;
    assert_eq!(status, StatusCode::OK);
    let day = usage["data"].as_array().unwrap().iter().find(|u| u["period"] == "day").unwrap().clone();
    assert_eq!(day["value"], 1000);
    assert_eq!(day["meterId"], meter);
}
