//! Rolling windows on a moved clock: a rolling limit counts the last hour (24 hours, 30 days…)
//! in buckets of its documented resolution, usage leaves the window a bucket at a time, `reset`
//! is when enough has left for the next request, and consumes against it stay exact.

use std::sync::Arc;

use limitry::db::projects::DEFAULT_PROJECT_ID;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, at, postgres_admin_url, spawn_app, Other, TestApp};

fn consume(customer: &str, tokens: i64) -> Value {
    json!({
        "customerId": customer, "mode": "consume",
        "event": {"eventType": "llm.completion", "values": {"tokens": tokens}}
    })
}

/// Records `tokens` for acme at `instant`, with the clock moved there.
async fn record_at(app: &TestApp, instant: &str, tokens: i64) {
    app.clock.set(at(instant));
    app.record_tokens("acme", tokens).await;
}

#[tokio::test]
async fn usage_leaves_a_rolling_hour_a_minute_at_a_time() {
    let app = spawn_app().await; // 12:00 UTC
    let meter = app.token_meter().await;
    let (status, limit) = app
        .post(
            "/v1/limits",
            json!({"name": "r", "meterId": meter, "limitValue": 100, "period": "hour", "rolling": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{limit}");
    assert_eq!(limit["rolling"], true, "{limit}");
    let rolling = limit["id"].as_str().unwrap().to_string();
    let fixed = app.create_limit(json!({"name": "f", "meterId": meter, "limitValue": 100, "period": "hour"})).await;
    let (_, fetched) = app.get(&format!("/v1/limits/{fixed}")).await;
    assert_eq!(fetched["rolling"], false, "{fetched}");

    record_at(&app, "2026-03-10T12:00:30Z", 10).await; // bucket 12:00, leaves at 13:00
    record_at(&app, "2026-03-10T12:10:45Z", 20).await; // bucket 12:10, leaves at 13:10
    record_at(&app, "2026-03-10T12:59:59Z", 30).await; // bucket 12:59, leaves at 13:59

    let status = app.limit_status("acme", &rolling).await;
    assert_eq!(status["used"], 60, "{status}");
    assert_eq!(status["reset"], at("2026-03-10T13:00:00Z").timestamp(), "when the oldest usage leaves: {status}");
    let steps = [
        // (now, rolling hour, calendar hour)
        ("2026-03-10T13:00:00Z", 50, 0),
        ("2026-03-10T13:09:59.999Z", 50, 0),
        ("2026-03-10T13:10:00Z", 30, 0),
        ("2026-03-10T13:58:59Z", 30, 0),
        ("2026-03-10T13:59:00Z", 0, 0),
    ];
    for (now, rolling_used, fixed_used) in steps {
        app.clock.set(at(now));
        assert_eq!(app.used("acme", &rolling).await, rolling_used as f64, "rolling at {now}");
        assert_eq!(app.used("acme", &fixed).await, fixed_used as f64, "calendar at {now}");
    }
}

#[tokio::test]
async fn a_rolling_window_read_back_from_the_database_after_a_restart_is_the_same() {
    let mut app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "r", "meterId": meter, "limitValue": 1000, "period": "day", "rolling": true}))
        .await;
    record_at(&app, "2026-03-10T12:30:00Z", 100).await; // bucket 12:00, leaves at 12:00 the next day
    record_at(&app, "2026-03-10T20:15:00Z", 200).await; // bucket 20:00
    record_at(&app, "2026-03-11T09:00:00Z", 300).await; // bucket 09:00
    assert_eq!(app.used("acme", &limit).await, 600.0);
    app.restart().await;
    assert_eq!(app.used("acme", &limit).await, 600.0, "the whole window is read back");
    app.clock.set(at("2026-03-11T12:00:00Z"));
    assert_eq!(app.used("acme", &limit).await, 500.0);
    // Usage recorded after the read lands in the window held in memory.
    app.record_tokens("acme", 1).await;
    assert_eq!(app.used("acme", &limit).await, 501.0);
    app.clock.set(at("2026-03-11T20:00:00Z"));
    assert_eq!(app.used("acme", &limit).await, 301.0);
}

#[tokio::test]
async fn reset_is_when_enough_usage_leaves_the_window_for_the_next_request() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "r", "meterId": meter, "limitValue": 100, "period": "day", "rolling": true}))
        .await;
    record_at(&app, "2026-03-10T12:20:00Z", 60).await; // bucket 12:00: leaves 2026-03-11T12:00
    record_at(&app, "2026-03-10T15:30:00Z", 40).await; // bucket 15:00: leaves 2026-03-11T15:00
    app.clock.set(at("2026-03-10T16:00:00Z"));

    let answer = app.check(json!({"customerId": "acme"})).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    let status = &answer["limits"][0];
    assert_eq!((status["used"].as_i64(), status["exceeded"].as_bool()), (Some(100), Some(true)), "{answer}");
    assert_eq!(status["reset"], at("2026-03-11T12:00:00Z").timestamp(), "{answer}");
    let answer = app.check(json!({"customerId": "acme", "requested": 50})).await;
    assert_eq!(answer["limits"][0]["reset"], at("2026-03-11T12:00:00Z").timestamp(), "60 leaving makes room: {answer}");
    let answer = app.check(json!({"customerId": "acme", "requested": 70})).await;
    assert_eq!(answer["limits"][0]["reset"], at("2026-03-11T15:00:00Z").timestamp(), "both must leave: {answer}");

    app.clock.set(at("2026-03-11T11:59:59Z"));
    assert_eq!(app.check(json!({"customerId": "acme", "requested": 50})).await["allowed"], false);
    app.clock.set(at("2026-03-11T12:00:00Z"));
    let answer = app.check(json!({"customerId": "acme", "requested": 50})).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["limits"][0]["used"], 40, "{answer}");
    assert_eq!(answer["limits"][0]["reset"], at("2026-03-11T15:00:00Z").timestamp(), "{answer}");

    // Who is closest to the limit: the rolling window's usage, from its first bucket.
    let (status, usage) = app.get(&format!("/v1/limits/{limit}/usage")).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["data"][0]["used"], 40, "{usage}");
    assert_eq!(usage["data"][0]["windowStart"], "2026-03-10T13:00:00Z", "{usage}");
    assert_eq!(usage["data"][0]["reset"], at("2026-03-11T15:00:00Z").timestamp(), "{usage}");
}

/// Races `count` consumes of 10 tokens for acme, every other one through `other` when given, and
/// returns how many were allowed.
async fn race_consumes(app: &Arc<TestApp>, count: usize, other: Option<&Arc<Other>>) -> usize {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (app, other) = (app.clone(), other.cloned());
            tokio::spawn(async move {
                let (status, answer) = match other.filter(|_| i % 2 == 1) {
                    None => app.post("/v1/limits/check", consume("acme", 10)).await,
                    Some(other) => other.post(&app, "/v1/limits/check", consume("acme", 10)).await,
                };
                assert_eq!(status, StatusCode::OK, "{answer}");
                assert!(answer["limits"][0]["used"].as_f64().unwrap() <= 100.0, "{answer}");
                answer["allowed"] == true
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    allowed
}

/// Usage recorded at 12:00, then consumes raced at 12:30 (judged with the 12:00 bucket) and at
/// 13:00, when that bucket has left: exact both times.
async fn consumes_judge_the_whole_rolling_window(app: &Arc<TestApp>, other: Option<&Arc<Other>>) {
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "r", "meterId": meter, "limitValue": 100, "period": "hour", "rolling": true}))
        .await;
    app.record_tokens("acme", 50).await; // 12:00
    app.clock.set(at("2026-03-10T12:30:00Z"));
    assert_eq!(race_consumes(app, 20, other).await, 5);
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    app.clock.set(at("2026-03-10T12:59:59Z"));
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    app.clock.set(at("2026-03-10T13:00:00Z"));
    assert_eq!(race_consumes(app, 20, other).await, 5, "the 50 of 12:00 left: room for 50");
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    assert_eq!(app.event_count().await, 11);
    // What this instance holds in memory hears the other's records a moment later.
    let mut used = 0.0;
    for _ in 0..100 {
        used = app.used("acme", &limit).await;
        if used == 100.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(used, 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumes_against_a_rolling_limit_stay_exact_as_usage_leaves_the_window() {
    let app = Arc::new(spawn_app().await);
    consumes_judge_the_whole_rolling_window(&app, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumes_against_a_rolling_limit_through_two_instances_stay_exact() {
    if postgres_admin_url().is_none() {
        return;
    }
    let app = Arc::new(spawn_app().await);
    let other = Arc::new(Other::start(&app).await);
    consumes_judge_the_whole_rolling_window(&app, Some(&other)).await;
    Arc::into_inner(other).unwrap().server.shutdown().await;
}

#[tokio::test]
async fn a_rolling_minute_counts_the_last_sixty_seconds() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "rate", "meterId": meter, "limitValue": 3, "period": "minute", "rolling": true}))
        .await;
    app.clock.set(at("2026-03-10T12:00:40.500Z"));
    for _ in 0..3 {
        assert_eq!(app.check(consume("acme", 1)).await["allowed"], true);
    }
    let answer = app.check(consume("acme", 1)).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    // The calendar minute turns at 12:01:00; the rolling one lets the next request in only once
    // the second of 12:00:40 has left, at 12:01:40.
    assert_eq!(answer["limits"][0]["reset"], at("2026-03-10T12:01:40Z").timestamp(), "{answer}");
    app.clock.set(at("2026-03-10T12:01:39.999Z"));
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    app.clock.set(at("2026-03-10T12:01:40Z"));
    assert_eq!(app.used("acme", &limit).await, 0.0);
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], true);
}

async fn alerts_fired(app: &TestApp, limit: &str) -> usize {
    app.engine().db().recent_alerts(DEFAULT_PROJECT_ID, None, Some(limit), 10).await.unwrap().len()
}

#[tokio::test]
async fn rolling_alerts_fire_when_a_threshold_is_crossed_and_again_after_usage_left() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "r", "meterId": meter, "limitValue": 100, "period": "hour", "rolling": true,
                             "alertThresholds": [50]}))
        .await;
    let fired = || alerts_fired(&app, &limit);
    record_at(&app, "2026-03-10T12:00:00Z", 60).await;
    assert_eq!(fired().await, 1);
    record_at(&app, "2026-03-10T12:20:00Z", 10).await; // still above: no new crossing
    assert_eq!(fired().await, 1);
    record_at(&app, "2026-03-10T13:00:00Z", 10).await; // the 60 left: 20 in the window
    assert_eq!(fired().await, 1);
    record_at(&app, "2026-03-10T13:05:00Z", 40).await; // 60 again: crossed anew
    assert_eq!(fired().await, 2);
}

#[tokio::test]
async fn rolling_is_refused_for_periods_longer_than_a_month_and_for_meters_that_do_not_add_up() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    for period in ["annual", "all_time"] {
        let answer = app
            .post(
                "/v1/limits",
                json!({"name": "r", "meterId": meter, "limitValue": 1, "period": period, "rolling": true}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("rolling"));
    }
    let answer = app
        .post("/v1/limits", json!({"name": "r", "meterId": meter, "limitValue": 1, "period": "day", "rolling": "yes"}))
        .await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    let peak = app
        .create_meter(json!({"name": "Peak", "aggregation": "max", "field": "values.tokens",
                             "eventFilter": {"eventType": "llm.completion"}}))
        .await;
    let answer = app
        .post("/v1/limits", json!({"name": "r", "meterId": peak, "limitValue": 1, "period": "day", "rolling": true}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("rolling"));

    let limit = app
        .create_limit(json!({"name": "r", "meterId": meter, "limitValue": 1, "period": "day", "rolling": true}))
        .await;
    // A rolling limit keeps rolling when its period changes: a period that cannot roll is refused.
    let answer = app.put(&format!("/v1/limits/{limit}"), json!({"period": "annual"})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("period"));
    let answer = app.put(&format!("/v1/limits/{limit}"), json!({"meterId": peak})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("rolling"));
    let answer = app.put(&format!("/v1/meters/{meter}"), json!({"aggregation": "latest"})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("aggregation"));
    // Turned off, the limit counts calendar windows again, and any period goes.
    let (status, body) = app.put(&format!("/v1/limits/{limit}"), json!({"rolling": false, "period": "annual"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rolling"], false, "{body}");
}

#[tokio::test]
async fn turning_rolling_on_rebuilds_the_window_from_recorded_events() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    record_at(&app, "2026-03-09T18:00:00Z", 5).await; // yesterday: not in today's calendar day
    record_at(&app, "2026-03-10T09:00:00Z", 7).await;
    assert_eq!(app.used("acme", &limit).await, 7.0);
    let (status, body) = app.put(&format!("/v1/limits/{limit}"), json!({"rolling": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.used("acme", &limit).await, 12.0, "the last 24 hours");
    app.clock.set(at("2026-03-10T18:00:00Z"));
    assert_eq!(app.used("acme", &limit).await, 7.0);
}
