//! `mode: consume` on the check: judged and recorded in one atomic step, so concurrent
//! requests never take a limit past its value, on one instance or several.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, at, postgres_admin_url, spawn_app, Other, TestApp};
use crate::metrics::Metrics;

fn consume(customer: &str, tokens: i64) -> Value {
    json!({
        "customerId": customer, "mode": "consume",
        "event": {"eventType": "llm.completion", "values": {"tokens": tokens}}
    })
}

async fn app_with_a_daily_limit(limit_value: i64) -> (TestApp, String) {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": limit_value, "period": "day"})).await;
    (app, limit)
}

#[tokio::test]
async fn a_consume_that_fits_is_recorded_and_one_that_does_not_records_nothing() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    let answer = app.check(consume("acme", 60)).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer["eventId"].as_str().unwrap().starts_with("evt_"), "{answer}");
    assert_eq!(answer["duplicate"], false, "{answer}");
    // The answer shows the limits as they stand afterwards.
    assert_eq!(answer["limits"][0]["used"], 60, "{answer}");
    assert_eq!(answer["limits"][0]["remaining"], 40, "{answer}");

    let answer = app.check(consume("acme", 41)).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_eq!(answer["reason"], "limit_exceeded", "{answer}");
    assert!(answer.get("eventId").is_none(), "{answer}");
    assert_eq!(answer["limits"][0]["used"], 60, "{answer}");
    assert_eq!(app.event_count().await, 1);

    // Exactly to the limit fits: used may reach limitValue, never pass it.
    let answer = app.check(consume("acme", 40)).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["limits"][0]["used"], 100, "{answer}");
    assert_eq!(answer["limits"][0]["exceeded"], true, "{answer}");
    assert_eq!(app.used("acme", &limit).await, 100.0);
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn a_refused_first_consume_creates_no_customer() {
    let (app, _) = app_with_a_daily_limit(10).await;
    let answer = app.check(consume("newcomer", 11)).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_eq!(answer["customerId"], "newcomer", "{answer}");
    let (status, _) = app.get("/v1/customers/newcomer").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_retried_consume_with_the_same_idempotency_key_counts_once() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    let mut request = consume("acme", 30);
    request["event"]["idempotencyKey"] = json!("job-1");
    let first = app.check(request.clone()).await;
    let again = app.check(request).await;
    assert_eq!(first["allowed"], true, "{first}");
    assert_eq!(again["allowed"], true, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["eventId"], first["eventId"]);
    assert_eq!(app.used("acme", &limit).await, 30.0);
}

#[tokio::test]
async fn a_consume_judged_from_memory_counts_live_holds_and_lets_a_retry_of_a_stored_key_pass() {
    let (app, limit) = app_with_a_daily_limit(100).await;
    // Recorded consumes leave the rules, the customer and its counter in memory; a preview
    // leaves the customer's holds there too, so the consumes below are judged from memory.
    let mut first = consume("acme", 30);
    first["event"]["idempotencyKey"] = json!("job-1");
    assert_eq!(app.check(first.clone()).await["allowed"], true);
    let hold = app.check(json!({"customerId": "acme", "mode": "reserve", "requested": 50})).await;
    assert_eq!(hold["allowed"], true, "{hold}");
    let preview = app.check(json!({"customerId": "acme"})).await;
    assert_eq!((preview["limits"][0]["used"].as_i64(), preview["limits"][0]["held"].as_i64()), (Some(80), Some(50)));
    assert_eq!(app.check(consume("acme", 10)).await["allowed"], true);
    let over = app.check(consume("acme", 11)).await;
    assert_eq!(over["allowed"], false, "30 and 10 used and 50 held leave 10: {over}");
    assert_eq!(app.check(consume("acme", 10)).await["allowed"], true);

    // The limit is full; a retry of the first consume is its duplicate, allowed, adding nothing.
    let again = app.check(first).await;
    assert_eq!((again["allowed"].as_bool(), again["duplicate"].as_bool()), (Some(true), Some(true)), "{again}");
    assert_eq!(app.used("acme", &limit).await, 100.0, "50 recorded and 50 held");
    assert_eq!(app.event_count().await, 3);
}

#[tokio::test]
async fn a_consume_that_read_the_customers_holds_keeps_them_for_its_answer() {
    let (app, _) = app_with_a_daily_limit(100).await;
    app.record_tokens("acme", 5).await;
    // A preview leaves the rules and the customer's holds in memory; a reservation's change
    // then forgets the holds.
    app.check(json!({"customerId": "acme"})).await;
    let hold = app.check(json!({"customerId": "acme", "mode": "reserve", "requested": 10})).await;
    assert_eq!(hold["allowed"], true, "{hold}");
    let checks = |m: &Metrics| {
        (
            m.value("limitry_checks_total", &[("source", "memory")]),
            m.value("limitry_checks_total", &[("source", "database")]),
        )
    };
    let before = checks(&Metrics::scrape(&app).await);
    let answer = app.check(consume("acme", 20)).await;
    let after = checks(&Metrics::scrape(&app).await);
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(
        (answer["limits"][0]["used"].as_i64(), answer["limits"][0]["held"].as_i64()),
        (Some(35), Some(10)),
        "25 recorded and 10 held"
    );
    // The only writer (SQLite) keeps what its transaction read: the consume read the holds to
    // judge, and its answer found them in memory. (Instances sharing PostgreSQL also hear
    // their own announcement of the reservation, which may forget them again.)
    if postgres_admin_url().is_none() {
        assert_eq!((after.0 - before.0, after.1 - before.1), (1.0, 0.0));
    }
}

#[tokio::test]
async fn only_limits_that_count_the_event_decide_and_preview_stays_the_default() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let gpt = app
        .create_limit(json!({"name": "g", "meterId": meter, "limitValue": 10, "period": "day",
                             "dimensionFilters": {"model": "gpt-4o"}}))
        .await;
    let mut request = consume("acme", 50);
    request["event"]["dimensions"] = json!({"model": "claude"});
    assert_eq!(app.check(request).await["allowed"], true);
    let mut request = consume("acme", 11);
    request["event"]["dimensions"] = json!({"model": "gpt-4o"});
    assert_eq!(app.check(request).await["allowed"], false);
    assert_eq!(app.used("acme", &gpt).await, 0.0);
    // Without a mode nothing is recorded.
    let answer = app.check(json!({"customerId": "acme", "requested": 5})).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert!(answer.get("eventId").is_none(), "{answer}");
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn bad_consume_requests_name_the_field_and_record_nothing() {
    let (app, _) = app_with_a_daily_limit(100).await;
    let answer = app.post("/v1/limits/check", json!({"customerId": "acme", "mode": "spend"})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("mode"));
    let answer = app.post("/v1/limits/check", json!({"customerId": "acme", "mode": "consume"})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "missing_required_field", Some("event"));
    let mut request = consume("acme", 1);
    request["event"]["values"] = json!({"tokens": 1e13});
    let answer = app.post("/v1/limits/check", request).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("event.values.tokens"));
    let mut request = consume("acme", 1);
    request["event"].as_object_mut().unwrap().remove("eventType");
    let answer = app.post("/v1/limits/check", request).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "missing_required_field", Some("event.eventType"));
    let mut request = consume("acme", 1);
    request["requested"] = json!(1);
    let answer = app.post("/v1/limits/check", request).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("requested"));
    let mut request = consume("acme", 1);
    request["mode"] = json!("preview");
    let answer = app.post("/v1/limits/check", request).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("event"));
    let answer = app.post("/v1/limits/check", consume("cust_00000000000000000000000000", 1)).await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
    assert_eq!(app.event_count().await, 0);
}

/// Sends 200 consumes of 10 tokens, through `send`, and returns how many were allowed.
async fn race_two_hundred_consumes<F, Fut>(send: F) -> usize
where
    F: Fn(usize, Value) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send,
{
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let send = send.clone();
            tokio::spawn(async move {
                let (status, answer) = send(i, consume("acme", 10)).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                // Whatever the interleaving, no answer ever shows the limit passed.
                assert!(answer["limits"][0]["used"].as_f64().unwrap() <= 1000.0, "{answer}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_consumes_of_ten_against_a_thousand_allow_exactly_one_hundred() {
    let (app, limit) = app_with_a_daily_limit(1000).await;
    let app = Arc::new(app);
    let sender = app.clone();
    let allowed = race_two_hundred_consumes(move |_, body| {
        let app = sender.clone();
        async move { app.post("/v1/limits/check", body).await }
    })
    .await;
    assert_eq!(allowed, 100);
    assert_eq!(app.used("acme", &limit).await, 1000.0);
    assert_eq!(app.event_count().await, 100);
    // Recorded and consumed usage share the counters: a plain record still goes in (it is a
    // measurement), and a consume after it sees the limit passed.
    app.record_tokens("acme", 5).await;
    assert_eq!(app.check(consume("acme", 0)).await["allowed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumes_raced_through_two_instances_on_one_database_allow_exactly_one_hundred() {
    if postgres_admin_url().is_none() {
        return;
    }
    let (app, limit) = app_with_a_daily_limit(1000).await;
    let app = Arc::new(app);
    let other = Arc::new(Other::start(&app).await);
    let (sender, other_sender) = (app.clone(), other.clone());
    let allowed = race_two_hundred_consumes(move |i, body| {
        let (app, other) = (sender.clone(), other_sender.clone());
        async move {
            match i % 2 {
                0 => app.post("/v1/limits/check", body).await,
                _ => other.post(&app, "/v1/limits/check", body).await,
            }
        }
    })
    .await;
    assert_eq!(allowed, 100);
    assert_eq!(app.event_count().await, 100);
    // The judge reads the database, so nothing more fits; what this instance holds in memory
    // hears the other's records a moment later, and then shows exactly the limit.
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], false);
    let mut used = 0.0;
    for _ in 0..100 {
        used = app.used("acme", &limit).await;
        if used == 1000.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(used, 1000.0);
    Arc::into_inner(other).unwrap().server.shutdown().await;
}

#[tokio::test]
async fn a_per_minute_limit_resets_on_the_minute() {
    let app = spawn_app().await; // 12:00:00 UTC
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "rate", "meterId": meter, "limitValue": 3, "period": "minute"})).await;
    app.clock.set(at("2026-03-10T12:00:59.999Z"));
    for _ in 0..3 {
        assert_eq!(app.check(consume("acme", 1)).await["allowed"], true);
    }
    let answer = app.check(consume("acme", 1)).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    assert_eq!(answer["limits"][0]["period"], "minute", "{answer}");
    assert_eq!(answer["limits"][0]["reset"], at("2026-03-10T12:01:00Z").timestamp(), "{answer}");
    app.clock.set(at("2026-03-10T12:01:00Z"));
    assert_eq!(app.used("acme", &limit).await, 0.0);
    assert_eq!(app.check(consume("acme", 1)).await["allowed"], true);
    assert_eq!(app.used("acme", &limit).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_consume_never_fails_the_records_committed_beside_it() {
    let (app, limit) = app_with_a_daily_limit(300).await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    // Records are measurements: accepted even past the limit.
                    app.record_tokens("acme", 7).await;
                    false
                } else {
                    let (status, answer) = app.post("/v1/limits/check", consume("acme", 10)).await;
                    assert_eq!(status, StatusCode::OK, "{answer}");
                    answer["allowed"] == true
                }
            })
        })
        .collect();
    let mut consumed = 0;
    for task in tasks {
        consumed += usize::from(task.await.unwrap());
    }
    assert!(consumed <= 30, "{consumed}");
    assert_eq!(app.used("acme", &limit).await, (50 * 7 + consumed * 10) as f64);
    assert_eq!(app.event_count().await, 50 + consumed);
}
