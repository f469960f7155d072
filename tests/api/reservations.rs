//! `mode: reserve`: holds on limits (and balances) that count for every other check and
//! consume until committed with the actual usage, released, or expired; and concurrency
//! limits, where only holds count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, postgres_admin_url, spawn_app, Other, TestApp};

fn reserve(customer: &str, requested: i64) -> Value {
    json!({"customerId": customer, "mode": "reserve", "requested": requested})
}

fn usage(tokens: i64) -> Value {
    json!({"event": {"eventType": "llm.completion", "values": {"tokens": tokens}}})
}

async fn app_with_a_daily_limit(limit_value: i64) -> (TestApp, String) {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": limit_value, "period": "day"})).await;
    (app, limit)
}

/// A reserve that must be allowed: its reservation id.
async fn reserved(app: &TestApp, body: Value) -> String {
    let answer = app.check(body).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    answer["reservationId"].as_str().unwrap().to_string()
}

async fn settle(app: &TestApp, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/v1/limits/reservations/{id}/{action}"), body).await
}

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value, bool) {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.key)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, response.json().await.unwrap(), replayed)
}

#[tokio::test]
async fn a_hold_counts_as_used_until_commit_records_the_actual_usage() {
    let (app, limit) = app_with_a_daily_limit(1000).await;
    let answer = app.check(reserve("acme", 600)).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    let id = answer["reservationId"].as_str().unwrap().to_string();
    assert!(id.starts_with("lres_"), "{answer}");
    assert_eq!(answer["limits"][0]["used"], 600, "{answer}");
    assert_eq!(answer["limits"][0]["held"], 600, "{answer}");
    assert!(answer["expiresAt"].as_str().unwrap().starts_with("2026-03-10T12:05:00"), "{answer}");

    // The hold blocks what would not fit beside it: previews, consumes and other reserves.
    let preview = app.check(json!({"customerId": "acme", "requested": 401})).await;
    assert_eq!(preview["allowed"], false, "{preview}");
    assert_eq!(preview["limits"][0]["held"], 600, "{preview}");
    let consume = json!({"customerId": "acme", "mode": "consume",
                         "event": {"eventType": "llm.completion", "values": {"tokens": 401}}});
    assert_eq!(app.check(consume).await["allowed"], false);
    let other = app.check(reserve("acme", 401)).await;
    assert_eq!(other["allowed"], false, "{other}");
    assert_eq!(other["reason"], "limit_exceeded", "{other}");
    assert!(other.get("reservationId").is_none(), "{other}");
    assert_eq!(app.check(json!({"customerId": "acme", "requested": 400})).await["allowed"], true);

    // Committed below the hold: the actual usage is recorded and the rest comes back.
    let (status, committed) = settle(&app, &id, "commit", usage(250)).await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    assert_eq!(committed["status"], "committed", "{committed}");
    assert!(committed["eventId"].as_str().unwrap().starts_with("evt_"), "{committed}");
    assert_eq!(app.used("acme", &limit).await, 250.0);
    assert_eq!(app.limit_status("acme", &limit).await.get("held"), None);
    assert_eq!(app.event_count().await, 1);

    // Committed above the hold: the work was done, so all of it is recorded.
    let id = reserved(&app, reserve("acme", 100)).await;
    let (status, _) = settle(&app, &id, "commit", usage(300)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.used("acme", &limit).await, 550.0);

    // A reservation settles once.
    let (status, again) = settle(&app, &id, "commit", usage(300)).await;
    assert_error(&(status, again), StatusCode::CONFLICT, "conflict", None);
    let (status, _) = settle(&app, &id, "release", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.used("acme", &limit).await, 550.0);

    // The trail shows what happened.
    let (status, reservation) = app.get(&format!("/v1/limits/reservations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    let kinds: Vec<_> = reservation["entries"].as_array().unwrap().iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, [json!("reserved"), json!("committed")], "{reservation}");
    assert_eq!(reservation["limitIds"], json!([limit]), "{reservation}");
}

#[tokio::test]
async fn release_gives_the_capacity_back_and_records_nothing() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    let id = reserved(&app, reserve("acme", 100)).await;
    assert_eq!(app.check(reserve("acme", 1)).await["allowed"], false);
    let (status, released) = settle(&app, &id, "release", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["status"], "released", "{released}");
    assert_eq!(app.used("acme", &limit).await, 0.0);
    assert_eq!(app.event_count().await, 0);
    reserved(&app, reserve("acme", 100)).await;
}

#[tokio::test]
async fn a_hold_expires_on_a_moved_clock_exactly_once() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    let id = reserved(&app, json!({"customerId": "acme", "mode": "reserve", "requested": 80, "ttlSeconds": 60})).await;
    app.clock.advance(Duration::seconds(59));
    assert_eq!(app.check(reserve("acme", 21)).await["allowed"], false);
    // At its expiry the capacity is back, before any sweep.
    app.clock.advance(Duration::seconds(1));
    let answer = app.check(json!({"customerId": "acme", "requested": 100})).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["limits"][0]["used"], 0, "{answer}");
    assert_eq!(app.engine().expire_due_reservations().await.unwrap(), 1);
    assert_eq!(app.engine().expire_due_reservations().await.unwrap(), 0);
    let (status, _) = settle(&app, &id, "commit", usage(80)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.used("acme", &limit).await, 0.0);
    let (_, reservation) = app.get(&format!("/v1/limits/reservations/{id}")).await;
    assert_eq!(reservation["status"], "expired", "{reservation}");
    let kinds: Vec<_> = reservation["entries"].as_array().unwrap().iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, [json!("reserved"), json!("expired")], "{reservation}");

    // Settling one past its expiry that was not swept yet marks it expired, once.
    let id = reserved(&app, json!({"customerId": "acme", "mode": "reserve", "requested": 80, "ttlSeconds": 1})).await;
    app.clock.advance(Duration::seconds(2));
    let (status, _) = settle(&app, &id, "release", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.engine().expire_due_reservations().await.unwrap(), 0);
    let (_, reservation) = app.get(&format!("/v1/limits/reservations/{id}")).await;
    assert_eq!(reservation["status"], "expired", "{reservation}");
}

#[tokio::test]
async fn extend_keeps_the_hold_past_its_first_expiry() {
    let (app, _) = app_with_a_daily_limit(100).await;
    let id = reserved(&app, json!({"customerId": "acme", "mode": "reserve", "requested": 100, "ttlSeconds": 60})).await;
    app.clock.advance(Duration::seconds(50));
    let (status, extended) = settle(&app, &id, "extend", json!({"ttlSeconds": 600})).await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert!(extended["expiresAt"].as_str().unwrap().starts_with("2026-03-10T12:10:50"), "{extended}");
    app.clock.advance(Duration::seconds(500));
    assert_eq!(app.check(reserve("acme", 1)).await["allowed"], false);
    assert_eq!(app.engine().expire_due_reservations().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(100));
    assert_eq!(app.check(reserve("acme", 1)).await["allowed"], true);
    let (status, answer) = settle(&app, &id, "extend", json!({"ttlSeconds": 3601})).await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "invalid_field_value", Some("ttlSeconds"));
}

#[tokio::test]
async fn a_retried_reserve_or_commit_with_the_same_key_takes_effect_once() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    let (status, first, replayed) = post_with_key(&app, "/v1/limits/check", "job-1", reserve("acme", 60)).await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{first}");
    let (status, again, replayed) = post_with_key(&app, "/v1/limits/check", "job-1", reserve("acme", 60)).await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "{again}");
    assert_eq!(again["reservationId"], first["reservationId"]);
    // Held once: 40 still fits.
    assert_eq!(app.check(json!({"customerId": "acme", "requested": 40})).await["allowed"], true);
    let (status, other, _) = post_with_key(&app, "/v1/limits/check", "job-1", reserve("acme", 10)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{other}");

    let id = first["reservationId"].as_str().unwrap();
    let path = format!("/v1/limits/reservations/{id}/commit");
    let (status, committed, _) = post_with_key(&app, &path, "commit-1", usage(50)).await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    let (status, again, replayed) = post_with_key(&app, &path, "commit-1", usage(50)).await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "{again}");
    assert_eq!(again["eventId"], committed["eventId"]);
    assert_eq!(app.used("acme", &limit).await, 50.0);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_reserve_naming_balances_holds_both_and_one_commit_settles_both() {
    let (app, limit) = app_with_a_daily_limit(1000).await;
    let (status, balance) =
        app.post("/v1/balances", json!({"customerId": "acme", "name": "credits", "initialBalance": 500})).await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    let balance_id = balance["id"].as_str().unwrap().to_string();
    let mut body = reserve("acme", 100);
    body["balances"] = json!([{"name": "credits", "amount": 300}]);
    let id = reserved(&app, body.clone()).await;
    let (_, held) = app.get(&format!("/v1/balances/{balance_id}")).await;
    assert_eq!(held["availableBalance"], 200, "{held}");
    // Not enough left for a second: nothing is held by it, on the limit either.
    let refused = app.check(body).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["reason"], "insufficient_balance", "{refused}");
    assert_eq!(app.check(json!({"customerId": "acme", "requested": 900})).await["allowed"], true);

    let mut commit = usage(80);
    commit["balances"] = json!([{"name": "credits", "amount": 120}]);
    let (status, committed) = settle(&app, &id, "commit", commit).await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    let (_, after) = app.get(&format!("/v1/balances/{balance_id}")).await;
    assert_eq!(after["currentBalance"], 380, "{after}");
    assert_eq!(after["availableBalance"], 380, "{after}");
    assert_eq!(app.used("acme", &limit).await, 80.0);

    // Released: the balance's hold goes too.
    let mut body = reserve("acme", 100);
    body["balances"] = json!([{"name": "credits", "amount": 300}]);
    let id = reserved(&app, body).await;
    let (status, _) = settle(&app, &id, "release", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = app.get(&format!("/v1/balances/{balance_id}")).await;
    assert_eq!(after["availableBalance"], 380, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_limit_of_five_never_lets_more_than_five_run() {
    let app = spawn_app().await;
    let meter = app
        .create_meter(json!({"name": "agents", "aggregation": "count", "eventFilter": {"eventType": "agent.run"}}))
        .await;
    let limit = app
        .create_limit(json!({"name": "agents at once", "meterId": meter, "limitValue": 5, "period": "concurrent"}))
        .await;
    let app = Arc::new(app);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let (app, running, most, allowed) = (app.clone(), running.clone(), most.clone(), allowed.clone());
            tokio::spawn(async move {
                for _ in 0..4 {
                    let answer = app.check(json!({"customerId": "acme", "mode": "reserve"})).await;
                    if answer["allowed"] != true {
                        continue;
                    }
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    allowed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    let id = answer["reservationId"].as_str().unwrap();
                    let (status, _) = app.post(&format!("/v1/limits/reservations/{id}/release"), json!({})).await;
                    assert_eq!(status, StatusCode::OK);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= 5, "{} ran at once", most.load(Ordering::SeqCst));
    assert!(allowed.load(Ordering::SeqCst) >= 5);
    // Recorded events never count toward a concurrency limit: only holds do.
    app.post("/v1/events/record", json!({"customerId": "acme", "eventType": "agent.run", "values": {}})).await;
    let status = app.limit_status("acme", &limit).await;
    assert_eq!(status["used"], 0, "{status}");

    // Holders that crash without releasing free their slots when their holds expire.
    for _ in 0..5 {
        reserved(&app, json!({"customerId": "acme", "mode": "reserve", "ttlSeconds": 30})).await;
    }
    let full = app.check(json!({"customerId": "acme", "mode": "reserve"})).await;
    assert_eq!(full["allowed"], false, "{full}");
    assert_eq!(full["limits"][0]["used"], 5, "{full}");
    // Who holds the most of it: the limit's usage counts live holds.
    let (status, usage) = app.get(&format!("/v1/limits/{limit}/usage")).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["data"].as_array().unwrap().len(), 1, "{usage}");
    assert_eq!(usage["data"][0]["used"], 5, "{usage}");
    app.clock.advance(Duration::seconds(30));
    reserved(&app, json!({"customerId": "acme", "mode": "reserve"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserves_raced_through_two_instances_never_hold_more_than_the_limit() {
    if postgres_admin_url().is_none() {
        return;
    }
    let (app, _) = app_with_a_daily_limit(1000).await;
    let app = Arc::new(app);
    let other = Arc::new(Other::start(&app).await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (app, other) = (app.clone(), other.clone());
            tokio::spawn(async move {
                let (status, answer) = match i % 2 {
                    0 => app.post("/v1/limits/check", reserve("acme", 100)).await,
                    _ => other.post(&app, "/v1/limits/check", reserve("acme", 100)).await,
                };
                assert_eq!(status, StatusCode::OK, "{answer}");
                answer["allowed"] == true
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    assert_eq!(allowed, 10);
    // The other instance hears the holds: a consume there fits nothing more.
    let consume = json!({"customerId": "acme", "mode": "consume",
                         "event": {"eventType": "llm.completion", "values": {"tokens": 1}}});
    let (_, answer) = other.post(&app, "/v1/limits/check", consume).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    Arc::into_inner(other).unwrap().server.shutdown().await;
}

#[tokio::test]
async fn bad_reservation_requests_name_the_field_and_hold_nothing() {
    let (app, _) = app_with_a_daily_limit(100).await;
    let mut body = reserve("acme", 1);
    body["ttlSeconds"] = json!(0);
    assert_error(
        &app.post("/v1/limits/check", body).await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("ttlSeconds"),
    );
    let answer = app.post("/v1/limits/check", json!({"customerId": "acme", "ttlSeconds": 60})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("ttlSeconds"));
    let (status, answer, _) = post_with_key(&app, "/v1/limits/check", "k", json!({"customerId": "acme"})).await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "invalid_field_value", Some("Idempotency-Key"));
    let id = reserved(&app, reserve("acme", 100)).await;
    let answer = settle(&app, &id, "commit", json!({})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "missing_required_field", Some("event"));
    let answer =
        settle(&app, &id, "commit", json!({"event": {"eventType": "llm.completion", "values": {"tokens": 1e13}}}))
            .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("event.values.tokens"));
    let (status, _) = settle(&app, "lres_unknown", "release", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing above took effect: the hold is still the only one.
    assert_eq!(app.check(reserve("acme", 1)).await["allowed"], false);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn holds_count_beside_a_rolling_window_as_its_usage_leaves() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "h", "meterId": meter, "limitValue": 100, "period": "hour", "rolling": true}))
        .await;
    app.record_tokens("acme", 60).await;
    app.clock.advance(Duration::minutes(30));
    assert_eq!(app.check(reserve("acme", 41)).await["allowed"], false);
    let held = app.check(json!({"customerId": "acme", "mode": "reserve", "requested": 40, "ttlSeconds": 3600})).await;
    assert_eq!(held["allowed"], true, "{held}");
    assert_eq!(held["limits"][0]["used"], 100, "{held}");
    // The recorded 60 leave the window an hour after they were recorded; the hold stays.
    app.clock.advance(Duration::minutes(31));
    assert_eq!(app.check(reserve("acme", 61)).await["allowed"], false);
    let answer = app.check(reserve("acme", 60)).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["limits"][0]["held"], 100, "{answer}");
}
