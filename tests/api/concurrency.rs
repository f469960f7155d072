//! Concurrent recording and checking: exact totals, one effect per idempotency key.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_recorders_give_exact_totals() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000000, "period": "day"})).await;
    let tasks: Vec<_> = (0..50)
        .map(|task| {
            let (app, limit) = (app.clone(), limit.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    // Half single records, half small batches, across two customers.
                    let customer = if task % 2 == 0 { "even" } else { "odd" };
                    if i % 2 == 0 {
                        app.record_tokens(customer, 3).await;
                    } else {
                        let event =
                            json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": 1}});
                        let (status, body) =
                            app.post("/v1/events/batch", json!({"events": [event.clone(), event]})).await;
                        assert_eq!(status, 200, "{body}");
                    }
                    // Checks interleave with writes and must never see more than was recorded.
                    let used = app.used(customer, &limit).await;
                    assert!(used <= 25.0 * 25.0, "{used}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // 25 tasks per customer × (5 × 3 + 5 × 2) tokens.
    assert_eq!(app.used("even", &limit).await, 625.0);
    assert_eq!(app.used("odd", &limit).await, 625.0);
    assert_eq!(app.event_count().await, 50 * (5 + 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_sent_concurrently_counts_once() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let event =
        json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 7}, "idempotencyKey": "once"});
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, event) = (app.clone(), event.clone());
            tokio::spawn(async move {
                let (status, body) = app.post("/v1/events/record", event).await;
                assert_eq!(status, 200, "{body}");
                body
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let originals = answers.iter().filter(|a| a["duplicate"] == false).count();
    assert_eq!(originals, 1);
    assert!(answers.iter().all(|a| a["id"] == answers[0]["id"]));
    assert_eq!(app.used("acme", &limit).await, 7.0);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checks_running_beside_limit_changes_and_records_stay_exact() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    app.record_tokens("acme", 2).await;
                }
            })
        })
        .collect();
    let changer = {
        let (app, limit) = (app.clone(), limit.clone());
        tokio::spawn(async move {
            for value in [2000, 3000, 4000] {
                let (status, body) = app.put(&format!("/v1/limits/{limit}"), json!({"limitValue": value})).await;
                assert_eq!(status, 200, "{body}");
            }
        })
    };
    let checker = {
        let (app, limit) = (app.clone(), limit.clone());
        tokio::spawn(async move {
            for _ in 0..50 {
                app.used("acme", &limit).await;
            }
        })
    };
    for task in writers.into_iter().chain([changer, checker]) {
        task.await.unwrap();
    }
    assert_eq!(app.used("acme", &limit).await, 200.0);
    assert_eq!(app.limit_status("acme", &limit).await["limit"], 4000);
}
