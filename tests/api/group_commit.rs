//! Group commit: concurrent records share transactions, yet every request keeps its own
//! answer, a refused neighbour fails nobody else, and a client hanging up mid-commit leaves its
//! batch recorded whole or not at all.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_request_in_a_group_fails_none_of_its_neighbours() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1_000_000, "period": "day"})).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                // Every sixth request names an internal id that does not exist.
                let customer = if i % 6 == 0 { "cust_01NOBODY".to_string() } else { "acme".to_string() };
                let event = json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": 2},
                                   "idempotencyKey": format!("k{i}")});
                (i, app.post("/v1/events/record", event).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, (status, body)) = task.await.unwrap();
        let expected = if i % 6 == 0 { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(status, expected, "request {i}: {body}");
        if i % 6 != 0 {
            assert_eq!(body["duplicate"], false, "{body}");
        }
    }
    assert_eq!(app.used("acme", &limit).await, 100.0, "50 accepted records of 2 tokens");
    assert_eq!(app.event_count().await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_hangs_up_mid_commit_gets_its_batch_recorded_whole_or_not_at_all() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 10_000_000, "period": "day"})).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(3)).build().unwrap();
    let tasks: Vec<_> = (0..30)
        .map(|batch| {
            let (app, impatient) = (app.clone(), impatient.clone());
            tokio::spawn(async move {
                let events: Vec<_> = (0..50)
                    .map(|i| {
                        json!({"customerId": format!("c{batch}"), "eventType": "llm.completion",
                               "values": {"tokens": 1}, "idempotencyKey": format!("b{batch}-{i}")})
                    })
                    .collect();
                // Most of these give up before the answer; the commit goes on without them.
                let _ = impatient
                    .post(format!("{}/v1/events/batch", app.base))
                    .bearer_auth(&app.key)
                    .json(&json!({"events": events}))
                    .send()
                    .await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Requests still being handled are queued by now; one more record through the same
    // queue comes back only after every write queued before it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.record_tokens("barrier", 1).await;
    let mut recorded_whole = 0;
    for batch in 0..30 {
        let customer = format!("c{batch}");
        let answer = app.check(json!({"customerId": customer})).await;
        let used = answer["limits"][0]["used"].as_f64().unwrap();
        assert!(used == 0.0 || used == 50.0, "batch {batch} was cut: {used} of 50 tokens");
        if used == 50.0 {
            recorded_whole += 1;
        }
        let (status, page) = app.get(&format!("/v1/events?customerId={customer}&limit=100")).await;
        let stored = if status == StatusCode::OK { page["data"].as_array().unwrap().len() } else { 0 };
        assert_eq!(stored as f64, used, "events and counters agree for batch {batch}");
    }
    // A retry of every batch with its keys completes the set exactly once.
    for batch in 0..30 {
        let events: Vec<_> = (0..50)
            .map(|i| {
                json!({"customerId": format!("c{batch}"), "eventType": "llm.completion",
                       "values": {"tokens": 1}, "idempotencyKey": format!("b{batch}-{i}")})
            })
            .collect();
        let (status, body) = app.post("/v1/events/batch", json!({"events": events})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for batch in 0..30 {
        assert_eq!(app.used(&format!("c{batch}"), &limit).await, 50.0);
    }
    println!("{recorded_whole} of 30 abandoned batches had been committed");
}
