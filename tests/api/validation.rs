//! Bad input: a 4xx naming the field, never a 500, and nothing half-written.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn malformed_json_is_an_invalid_request() {
    let app = spawn_app().await;
    assert_error(
        &app.post_raw("/v1/events/record", "{\"customerId\": ").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        None,
    );
    assert_error(&app.post_raw("/v1/limits/check", "").await, StatusCode::BAD_REQUEST, "invalid_request", None);
    assert_error(&app.post_raw("/v1/meters", "[1, 2]").await, StatusCode::BAD_REQUEST, "invalid_request", None);
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_named() {
    let app = spawn_app().await;
    let cases = [
        ("/v1/events/record", json!({"eventType": "x"}), "missing_required_field", "customerId"),
        ("/v1/events/record", json!({"customerId": "a"}), "missing_required_field", "eventType"),
        (
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "values": {"tokens": "many"}}),
            "invalid_field_value",
            "values.tokens",
        ),
        ("/v1/events/record", json!({"customerId": 42, "eventType": "x"}), "invalid_field_value", "customerId"),
        (
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "dimensions": {"k": 1}}),
            "invalid_field_value",
            "dimensions.k",
        ),
        ("/v1/limits/check", json!({}), "missing_required_field", "customerId"),
        ("/v1/limits/check", json!({"customerId": "a", "requested": -1}), "invalid_field_value", "requested"),
        ("/v1/meters", json!({"aggregation": "sum", "field": "values.t"}), "missing_required_field", "name"),
        (
            "/v1/meters",
            json!({"name": "m", "aggregation": "median", "field": "values.t"}),
            "invalid_field_value",
            "aggregation",
        ),
        ("/v1/meters", json!({"name": "m", "aggregation": "sum", "field": "tokens"}), "invalid_field_value", "field"),
        ("/v1/limits", json!({"name": "l", "meterId": "mtr_x", "limitValue": 10}), "missing_required_field", "period"),
        ("/v1/customers", json!({"externalId": "a", "timezone": "Mars/Olympus"}), "invalid_field_value", "timezone"),
        (
            "/v1/customers",
            json!({"externalId": "a", "billingCycleStart": "31/01/2026"}),
            "invalid_field_value",
            "billingCycleStart",
        ),
        ("/v1/customers", json!({"externalId": "a", "email": "not-an-email"}), "invalid_field_value", "email"),
    ];
    for (path, body, code, field) in cases {
        assert_error(&app.post(path, body.clone()).await, StatusCode::BAD_REQUEST, code, Some(field));
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn limit_values_periods_filters_and_thresholds_are_validated() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let base = json!({"name": "l", "meterId": meter, "limitValue": 10, "period": "day"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let long_key = "k".repeat(65);
    let cases = [
        (with("limitValue", json!(0)), "limitValue"),
        (with("limitValue", json!(-5)), "limitValue"),
        (with("period", json!("fortnight")), "period"),
        (with("failMode", json!("maybe")), "failMode"),
        (with("alertThresholds", json!([50, 101])), "alertThresholds[1]"),
        (with("alertThresholds", json!([0])), "alertThresholds[0]"),
        (with("dimensionFilters", json!({"model": "x".repeat(257)})), "dimensionFilters.model"),
        (with("dimensionFilters", json!({long_key.clone(): "x"})), &format!("dimensionFilters.{long_key}")),
    ];
    for (body, field) in cases {
        assert_error(&app.post("/v1/limits", body).await, StatusCode::BAD_REQUEST, "invalid_field_value", Some(field));
    }
    let (_, page) = app.get("/v1/limits").await;
    assert_eq!(page["data"], json!([]), "nothing was written");
}

#[tokio::test]
async fn timestamps_too_far_ahead_or_behind_are_refused() {
    let app = spawn_app().await;
    for timestamp in ["2026-03-10T12:06:00Z", "2026-02-01T00:00:00Z", "yesterday"] {
        let answer =
            app.post("/v1/events/record", json!({"customerId": "a", "eventType": "x", "timestamp": timestamp})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("timestamp"));
    }
    let answer = app
        .post("/v1/events/record", json!({"customerId": "a", "eventType": "x", "timestamp": "2026-03-10T12:04:00Z"}))
        .await;
    assert_eq!(answer.0, StatusCode::OK, "five minutes of clock skew are tolerated");
}

#[tokio::test]
async fn a_batch_over_1000_or_with_one_bad_event_records_nothing() {
    let app = spawn_app().await;
    let good = json!({"customerId": "a", "eventType": "x", "values": {"n": 1}});
    let answer = app.post("/v1/events/batch", json!({"events": vec![good.clone(); 1001]})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("events"));

    let mut events = vec![good.clone(); 5];
    events[3] = json!({"eventType": "x"});
    let answer = app.post("/v1/events/batch", json!({"events": events})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "missing_required_field", Some("events[3].customerId"));
    assert_eq!(app.event_count().await, 0);
    let (_, customers) = app.get("/v1/customers").await;
    assert_eq!(customers["data"], json!([]), "no customer was created either");

    let answer = app.post("/v1/events/batch", json!({"events": vec![good; 1000]})).await;
    assert_eq!(answer.0, StatusCode::OK);
    assert_eq!(answer.1["count"], 1000);
}

#[tokio::test]
async fn over_long_identifiers_and_keys_are_refused() {
    let app = spawn_app().await;
    let answer = app.post("/v1/events/record", json!({"customerId": "c".repeat(257), "eventType": "x"})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("customerId"));
    let answer = app
        .post("/v1/events/record", json!({"customerId": "a", "eventType": "x", "idempotencyKey": "k".repeat(257)}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("idempotencyKey"));
    let answer =
        app.post("/v1/events/record", json!({"customerId": "a", "eventType": "x", "values": {"bad key": 1}})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("values.bad key"));
}

#[tokio::test]
async fn unknown_ids_and_routes_are_not_found_and_bad_paging_is_named() {
    let app = spawn_app().await;
    assert_error(&app.get("/v1/customers/nobody").await, StatusCode::NOT_FOUND, "customer_not_found", None);
    assert_error(&app.get("/v1/meters/mtr_nope").await, StatusCode::NOT_FOUND, "meter_not_found", None);
    assert_error(&app.put("/v1/limits/lmt_nope", json!({})).await, StatusCode::NOT_FOUND, "limit_not_found", None);
    assert_error(
        &app.post("/v1/meters/mtr_nope/query", json!({})).await,
        StatusCode::NOT_FOUND,
        "meter_not_found",
        None,
    );
    assert_error(&app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND, "route_not_found", None);
    assert_error(
        &app.get("/v1/customers?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("limit"),
    );
    assert_error(
        &app.get("/v1/customers?limit=abc").await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("limit"),
    );
    assert_error(
        &app.get("/v1/events?cursor=garbage").await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("cursor"),
    );
    assert_error(
        &app.get("/v1/events?startDate=soon").await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("startDate"),
    );
}
