//! Windows on a moved clock: every period resets at its boundary, in the customer's zone and
//! on their billing anchor.

use serde_json::json;

use crate::helpers::{at, spawn_app};

#[tokio::test]
async fn every_period_resets_exactly_at_its_window_boundary() {
    let app = spawn_app().await; // Tuesday 2026-03-10 12:00 UTC
    let meter = app.token_meter().await;
    let mut limits = Vec::new();
    for period in ["hour", "day", "week", "month", "annual", "all_time"] {
        let id =
            app.create_limit(json!({"name": period, "meterId": meter, "limitValue": 1000, "period": period})).await;
        limits.push((period, id));
    }
    app.record_tokens("acme", 10).await;

    let expected_resets = [
        ("hour", Some("2026-03-10T13:00:00Z")),
        ("day", Some("2026-03-11T00:00:00Z")),
        ("week", Some("2026-03-16T00:00:00Z")),
        ("month", Some("2026-04-01T00:00:00Z")),
        ("annual", Some("2027-01-01T00:00:00Z")),
        ("all_time", None),
    ];
    for ((period, id), (_, reset)) in limits.iter().zip(expected_resets) {
        let status = app.limit_status("acme", id).await;
        assert_eq!(status["used"], 10, "{period}");
        assert_eq!(status["reset"], json!(reset.map(|r| at(r).timestamp())), "{period}");
    }

    // Each boundary resets its own period and nothing longer.
    let boundaries = [
        ("2026-03-10T12:59:59Z", 0),
        ("2026-03-10T13:00:00Z", 1),
        ("2026-03-11T00:00:00Z", 2),
        ("2026-03-16T00:00:00Z", 3),
        ("2026-04-01T00:00:00Z", 4),
        ("2027-01-01T00:00:00Z", 5),
    ];
    for (now, reset_count) in boundaries {
        app.clock.set(at(now));
        for (i, (period, id)) in limits.iter().enumerate() {
            let expected = if i < reset_count { 0 } else { 10 };
            assert_eq!(app.used("acme", id).await, expected as f64, "{period} at {now}");
        }
    }
}

#[tokio::test]
async fn day_windows_follow_the_customers_timezone() {
    let app = spawn_app().await;
    app.clock.set(at("2026-03-10T03:00:00Z")); // 23:00 on the 9th in New York (EDT)
    let (status, body) = app.post("/v1/customers", json!({"externalId": "ny", "timezone": "America/New_York"})).await;
    assert_eq!(status, 201, "{body}");
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("ny", 10).await;
    app.record_tokens("utc", 10).await;

    let status = app.limit_status("ny", &limit).await;
    assert_eq!(status["reset"], at("2026-03-10T04:00:00Z").timestamp());
    app.clock.set(at("2026-03-10T04:00:00Z"));
    assert_eq!(app.used("ny", &limit).await, 0.0, "New York's day has turned");
    assert_eq!(app.used("utc", &limit).await, 10.0, "UTC's day has not");
}

#[tokio::test]
async fn monthly_windows_start_on_the_billing_anchor_clamped_to_short_months() {
    let app = spawn_app().await; // 2026-03-10
    let (status, body) =
        app.post("/v1/customers", json!({"externalId": "anchored", "billingCycleStart": "2025-01-31"})).await;
    assert_eq!(status, 201, "{body}");
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "m", "meterId": meter, "limitValue": 100, "period": "month"})).await;
    app.record_tokens("anchored", 7).await;

    let status = app.limit_status("anchored", &limit).await;
    assert_eq!(status["used"], 7);
    assert_eq!(status["reset"], at("2026-03-31T00:00:00Z").timestamp());
    app.clock.set(at("2026-03-31T00:00:00Z"));
    let status = app.limit_status("anchored", &limit).await;
    assert_eq!(status["used"], 0);
    assert_eq!(status["reset"], at("2026-04-30T00:00:00Z").timestamp(), "April has no 31st");
}

#[tokio::test]
async fn a_limit_created_after_usage_counts_each_customers_own_current_window() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/customers", json!({"externalId": "ny", "timezone": "America/New_York"})).await;
    assert_eq!(status, 201, "{body}");
    let meter = app.token_meter().await;
    app.clock.set(at("2026-03-10T02:00:00Z")); // the 10th in UTC, still the 9th in New York
    app.record_tokens("ny", 5).await;
    app.record_tokens("utc", 5).await;
    app.clock.set(at("2026-03-09T23:00:00Z")); // the 9th in UTC, 18:00 on the 9th in New York
    app.record_tokens("utc", 100).await;
    app.clock.set(at("2026-03-10T12:00:00Z"));
    app.record_tokens("ny", 3).await;
    app.record_tokens("utc", 3).await;

    // Read from the events once for both customers, each counted in its own day.
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    assert_eq!(app.used("ny", &limit).await, 3.0, "New York's day began at 05:00 UTC");
    assert_eq!(app.used("utc", &limit).await, 8.0, "UTC's day began at midnight");
    assert_eq!(app.used("idle", &limit).await, 0.0);
}

#[tokio::test]
async fn changing_a_customers_timezone_rebuilds_their_current_windows() {
    let app = spawn_app().await;
    app.clock.set(at("2026-03-10T02:00:00Z"));
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("mover", 5).await; // 02:00 UTC on the 10th = 22:00 on the 9th in New York
    app.clock.set(at("2026-03-10T05:00:00Z"));
    app.record_tokens("mover", 3).await; // 01:00 on the 10th in New York
    assert_eq!(app.used("mover", &limit).await, 8.0);

    let (status, body) = app.put("/v1/customers/mover", json!({"timezone": "America/New_York"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.used("mover", &limit).await, 3.0, "only the event of New York's current day counts");
}
