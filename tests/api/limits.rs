//! Which limits apply to a check: customer overrides, dimension filters, `requested`, CRUD.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_customers_own_limit_overrides_the_project_default() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let default =
        app.create_limit(json!({"name": "default", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let vip = app
        .create_limit(
            json!({"name": "vip", "meterId": meter, "limitValue": 5000, "period": "day", "customerId": "vip"}),
        )
        .await;
    app.record_tokens("vip", 2000).await;
    app.record_tokens("regular", 2000).await;

    let answer = app.check(json!({"customerId": "vip"})).await;
    let ids: Vec<_> = answer["limits"].as_array().unwrap().iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids, vec![json!(vip)]);
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["limits"][0]["used"], 2000);

    let answer = app.check(json!({"customerId": "regular"})).await;
    assert_eq!(answer["limits"].as_array().unwrap().len(), 1);
    assert_eq!(answer["limits"][0]["id"], default);
    assert_eq!(answer["allowed"], false);

    // Removing the override hands the customer back to the default, with exact usage.
    let (status, _) = app.delete(&format!("/v1/limits/{vip}")).await;
    assert_eq!(status, 204);
    let answer = app.check(json!({"customerId": "vip"})).await;
    assert_eq!(answer["limits"][0]["id"], default);
    assert_eq!(answer["limits"][0]["used"], 2000);
    assert_eq!(answer["allowed"], false);
}

#[tokio::test]
async fn dimension_filters_count_matching_events_and_apply_unless_contradicted() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let gpt = app
        .create_limit(json!({"name": "gpt", "meterId": meter, "limitValue": 100, "period": "day",
                             "dimensionFilters": {"model": "gpt-4o"}}))
        .await;
    for (model, tokens) in [("gpt-4o", 60), ("claude", 500), ("gpt-4o", 50)] {
        let (status, body) = app
            .post(
                "/v1/events/record",
                json!({"customerId": "acme", "eventType": "llm.completion",
                                              "values": {"tokens": tokens}, "dimensions": {"model": model}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let answer = app.check(json!({"customerId": "acme", "dimensions": {"model": "gpt-4o"}})).await;
    assert_eq!(answer["limits"][0]["id"], gpt);
    assert_eq!(answer["limits"][0]["used"], 110);
    assert_eq!(answer["allowed"], false);

    let answer = app.check(json!({"customerId": "acme", "dimensions": {"model": "claude"}})).await;
    assert_eq!(answer["limits"], json!([]), "a contradicting dimension excludes the limit");
    assert_eq!(answer["allowed"], true);

    let answer = app.check(json!({"customerId": "acme", "dimensions": {"feature": "chat"}})).await;
    assert_eq!(answer["limits"][0]["id"], gpt, "an unrelated dimension contradicts nothing");
}

#[tokio::test]
async fn requested_passes_only_when_the_whole_amount_fits() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    app.record_tokens("acme", 900).await;

    let answer = app.check(json!({"customerId": "acme", "requested": 100})).await;
    assert_eq!(answer["allowed"], true);
    let answer = app.check(json!({"customerId": "acme", "requested": 101})).await;
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["reason"], "limit_exceeded");
    assert_eq!(answer["limits"][0]["exceeded"], false, "not exceeded yet, only would be");
    let answer = app.check(json!({"customerId": "acme"})).await;
    assert_eq!(answer["allowed"], true);
}

#[tokio::test]
async fn a_limit_created_after_usage_counts_what_its_current_window_already_holds() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.clock.set(crate::helpers::at("2026-03-09T12:00:00Z"));
    app.record_tokens("acme", 300).await; // yesterday, from the next step's point of view
    app.clock.set(crate::helpers::default_now());
    app.record_tokens("acme", 200).await;

    let day = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let month = app.create_limit(json!({"name": "m", "meterId": meter, "limitValue": 1000, "period": "month"})).await;
    assert_eq!(app.used("acme", &day).await, 200.0);
    assert_eq!(app.used("acme", &month).await, 500.0);

    // Changing the period rebuilds the counters from the events.
    let (status, body) = app.put(&format!("/v1/limits/{day}"), json!({"period": "week", "limitValue": 400})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["period"], "week");
    let status = app.limit_status("acme", &day).await;
    assert_eq!(status["used"], 500);
    assert_eq!(status["exceeded"], true);
}

#[tokio::test]
async fn limits_can_be_listed_read_updated_and_deleted() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let id = app
        .create_limit(json!({"name": "d", "meterId": meter, "limitValue": 10, "period": "day",
                             "alertThresholds": [80, 50, 100], "failMode": "closed"}))
        .await;
    let (status, limit) = app.get(&format!("/v1/limits/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(limit["alertThresholds"], json!([50, 80, 100]));
    assert_eq!(limit["failMode"], "closed");
    assert_eq!(limit["customerId"], json!(null));

    let (status, page) = app.get("/v1/limits").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["hasMore"], false);

    let (status, updated) = app.put(&format!("/v1/limits/{id}"), json!({"name": "renamed"})).await;
    assert_eq!(status, 200);
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["limitValue"], 10);

    assert_eq!(app.delete(&format!("/v1/limits/{id}")).await.0, 204);
    assert_error(&app.get(&format!("/v1/limits/{id}")).await, reqwest::StatusCode::NOT_FOUND, "limit_not_found", None);
}
