//! Meters: every aggregation through the check path and through queries.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

async fn record(app: &crate::helpers::TestApp, body: serde_json::Value) {
    let (status, answer) = app.post("/v1/events/record", body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn count_max_and_latest_meters_aggregate_as_documented() {
    let app = spawn_app().await;
    let count = app.create_meter(json!({"name": "Requests", "aggregation": "count"})).await;
    let max = app.create_meter(json!({"name": "Peak", "aggregation": "max", "field": "values.tokens"})).await;
    let latest = app.create_meter(json!({"name": "Seats", "aggregation": "latest", "field": "values.seats"})).await;
    let mut limits = Vec::new();
    for meter in [&count, &max, &latest] {
        limits.push(
            app.create_limit(json!({"name": "l", "meterId": meter, "limitValue": 1000, "period": "month"})).await,
        );
    }
    // The newest seat count arrives first; an older one arriving later must not replace it.
    record(&app, json!({"customerId": "acme", "eventType": "seats", "values": {"seats": 7}, "timestamp": "2026-03-10T11:00:00Z"})).await;
    record(&app, json!({"customerId": "acme", "eventType": "seats", "values": {"seats": 3}, "timestamp": "2026-03-10T09:00:00Z"})).await;
    record(&app, json!({"customerId": "acme", "eventType": "llm", "values": {"tokens": 40}})).await;
    record(&app, json!({"customerId": "acme", "eventType": "llm", "values": {"tokens": 90.5}})).await;
    record(&app, json!({"customerId": "acme", "eventType": "llm", "values": {"tokens": 12}})).await;

    assert_eq!(app.used("acme", &limits[0]).await, 5.0);
    assert_eq!(app.used("acme", &limits[1]).await, 90.5);
    assert_eq!(app.used("acme", &limits[2]).await, 7.0);

    for (meter, expected) in [(&count, 5.0), (&max, 90.5), (&latest, 7.0)] {
        let (status, result) = app
            .post(&format!("/v1/meters/{meter}/query"), json!({"startDate": "2026-03-01", "endDate": "2026-04-01"}))
            .await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["value"].as_f64().unwrap(), expected, "{result}");
    }
}

#[tokio::test]
async fn a_meter_query_groups_filters_and_buckets_into_a_series() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    for (customer, model, tokens, at) in [
        ("a", "gpt-4o", 10, "2026-03-08T10:00:00Z"),
        ("a", "claude", 20, "2026-03-08T11:00:00Z"),
        ("b", "gpt-4o", 30, "2026-03-09T10:00:00Z"),
        ("a", "gpt-4o", 40, "2026-03-10T10:00:00Z"),
    ] {
        record(
            &app,
            json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": tokens},
                            "dimensions": {"model": model}, "timestamp": at}),
        )
        .await;
    }
    let path = format!("/v1/meters/{meter}/query");
    let (_, all) = app.post(&path, json!({"startDate": "2026-03-08", "endDate": "2026-03-11"})).await;
    assert_eq!(all["value"], 100);

    let (_, grouped) = app
        .post(
            &path,
            json!({"startDate": "2026-03-08", "endDate": "2026-03-11", "groupBy": ["model"], "windowSize": "day"}),
        )
        .await;
    let groups = grouped["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"], json!({"model": "claude"}));
    assert_eq!(groups[0]["value"], 20);
    let gpt_series: Vec<_> = groups[1]["series"].as_array().unwrap().iter().map(|p| p["value"].clone()).collect();
    assert_eq!(gpt_series, vec![json!(10), json!(30), json!(40)]);

    let (_, one) = app
        .post(&path, json!({"startDate": "2026-03-08", "endDate": "2026-03-11", "customerId": "a", "dimensions": {"model": "gpt-4o"}}))
        .await;
    assert_eq!(one["value"], 50);
    let (_, hourly) = app
        .post(
            &path,
            json!({"startDate": "2026-03-08T10:00:00Z", "endDate": "2026-03-08T12:00:00Z", "windowSize": "hour"}),
        )
        .await;
    let series: Vec<_> = hourly["groups"][0]["series"].as_array().unwrap().iter().map(|p| p["value"].clone()).collect();
    assert_eq!(series, vec![json!(10), json!(20)]);
}

#[tokio::test]
async fn meters_can_be_changed_and_deleted_once_unused() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    record(&app, json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 5, "cost": 2}}))
        .await;
    assert_eq!(app.used("acme", &limit).await, 5.0);

    let (status, changed) = app.put(&format!("/v1/meters/{meter}"), json!({"field": "values.cost"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(app.used("acme", &limit).await, 2.0, "the limit's counters follow the meter's new field");

    assert_error(&app.delete(&format!("/v1/meters/{meter}")).await, reqwest::StatusCode::CONFLICT, "conflict", None);
    assert_eq!(app.delete(&format!("/v1/limits/{limit}")).await.0, 204);
    assert_eq!(app.delete(&format!("/v1/meters/{meter}")).await.0, 204);
    assert_error(
        &app.get(&format!("/v1/meters/{meter}")).await,
        reqwest::StatusCode::NOT_FOUND,
        "meter_not_found",
        None,
    );
}
