//! The edges of money and usage numbers, memory that strangers cannot grow, and state that
//! stays one: balances and counters refuse to leave their ranges, reports sum exactly, unknown
//! keys and customers leave nothing behind, deletes survive concurrent recording, and a
//! second service on one SQLite file is refused.

use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, postgres_admin_url, spawn_app, TestApp};

const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
const MAX_BALANCE: i64 = 1_000_000_000_000_000_000;

async fn credit(app: &TestApp, balance: &str, amount: i64) -> (StatusCode, Value) {
    app.post("/v1/balances/credit", json!({"balanceId": balance, "amount": amount, "description": "top-up"})).await
}

/// The sum of every ledger amount of a balance, read page by page.
async fn ledger_sum(app: &TestApp, balance: &str) -> i128 {
    let (mut sum, mut cursor) = (0i128, String::new());
    loop {
        let (status, page) = app.get(&format!("/v1/balances/{balance}/transactions?limit=100&cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        sum += page["data"].as_array().unwrap().iter().map(|t| i128::from(t["amount"].as_i64().unwrap())).sum::<i128>();
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return sum,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credit_past_the_largest_balance_is_refused_and_the_ledger_still_sums_to_the_balance() {
    let app = Arc::new(spawn_app().await);
    let (status, balance) =
        app.post("/v1/balances", json!({"customerId": "whale", "name": "credits", "initialBalance": MAX_AMOUNT})).await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    let id = balance["id"].as_str().unwrap().to_string();
    // 999 more credits of the largest amount fill the balance to exactly its largest value.
    for _ in 0..9 {
        let credits = (0..111).map(|_| {
            let (app, id) = (app.clone(), id.clone());
            async move { credit(&app, &id, MAX_AMOUNT).await }
        });
        for (status, body) in join_all(credits).await {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let (_, balance) = app.get(&format!("/v1/balances/{id}")).await;
    assert_eq!(balance["currentBalance"].as_i64(), Some(MAX_BALANCE), "{balance}");

    let refused = credit(&app, &id, 1).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_field_value", Some("amount"));
    let retried = app
        .client
        .post(format!("{}/v1/balances/credit", app.base))
        .bearer_auth(&app.key)
        .header("idempotency-key", "overflow")
        .json(&json!({"balanceId": id, "amount": MAX_AMOUNT, "description": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::BAD_REQUEST);

    let (_, balance) = app.get(&format!("/v1/balances/{id}")).await;
    assert_eq!(balance["currentBalance"].as_i64(), Some(MAX_BALANCE), "nothing was written: {balance}");
    assert_eq!(ledger_sum(&app, &id).await, i128::from(MAX_BALANCE));
    // Spending still works at the edge.
    let (status, body) = app.post("/v1/balances/debit", json!({"balanceId": id, "amount": MAX_AMOUNT})).await;
    assert_eq!((status, body["success"].clone()), (StatusCode::OK, json!(true)), "{body}");
}

fn token_events(customer: &str, count: usize, tokens: f64) -> Value {
    let event = json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": tokens}});
    json!({"events": vec![event; count]})
}

#[tokio::test]
async fn a_batch_that_would_take_a_limit_counter_past_its_range_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "all", "meterId": meter, "limitValue": 1_000_000, "period": "all_time"})).await;
    // 1,000 events of 10^12 tokens fill the counter to exactly its largest value, 10^15.
    let (status, body) = app.post("/v1/events/batch", token_events("acme", 1000, 1e12)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.limit_status("acme", &limit).await["used"].as_i64(), Some(1_000_000_000_000_000));

    let refused = app.post("/v1/events/batch", token_events("acme", 10, 1e12)).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_field_value", Some("values.tokens"));
    let refused = app
        .post(
            "/v1/events/record",
            json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 1}}),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_field_value", Some("values.tokens"));

    // Memory and database agree: the refused events are neither stored nor counted.
    assert_eq!(app.event_count().await, 1000);
    assert_eq!(app.limit_status("acme", &limit).await["used"].as_i64(), Some(1_000_000_000_000_000));
    let events_of_another_customer = app.post("/v1/events/batch", token_events("other", 3, 1e12)).await;
    assert_eq!(events_of_another_customer.0, StatusCode::OK, "{}", events_of_another_customer.1);
}

#[tokio::test]
async fn meter_queries_sum_exactly_past_what_sixty_four_bits_hold() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    // 10,000 events of 10^12 tokens: 10^16 tokens, 10^19 thousandths, past i64.
    for _ in 0..10 {
        let (status, body) = app.post("/v1/events/batch", token_events("acme", 1000, 1e12)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = app.post("/v1/events/batch", token_events("acme", 1, 0.5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = crate::helpers::default_now();
    let query = json!({
        "startDate": (now - chrono::Duration::days(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(1)).to_rfc3339(),
        "groupBy": ["customerId"],
    });
    let response = app
        .client
        .post(format!("{}/v1/meters/{meter}/query", app.base))
        .bearer_auth(&app.key)
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains(r#""value":10000000000000000.5"#), "exact, not a float: {text}");

    let start = (now - chrono::Duration::days(1)).format("%Y-%m-%d");
    let end = (now + chrono::Duration::days(1)).format("%Y-%m-%d");
    let summary = app
        .client
        .get(format!("{}/v1/usage/summary?startDate={start}&endDate={end}", app.base))
        .bearer_auth(&app.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(summary.contains("10000000000000000.5"), "{summary}");
}

#[tokio::test]
async fn random_api_keys_are_refused_without_being_remembered() {
    let app = spawn_app().await;
    assert_eq!(app.get("/v1/project").await.0, StatusCode::OK);
    let remembered = app.state().keys.cached_keys();
    let app = &app;
    let guesses = (0..500).map(|i| {
        let key = format!("limitry_sk_guess{i:040}");
        async move { app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some(&key)).await }
    });
    for answer in join_all(guesses).await {
        assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_api_key", None);
    }
    assert_eq!(app.state().keys.cached_keys(), remembered);
    assert_eq!(app.get("/v1/project").await.0, StatusCode::OK, "the real key still works");
}

#[tokio::test]
async fn checks_for_unknown_customers_answer_zero_usage_and_create_nobody() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    let checks = (0..200).map(|i| {
        let app = &app;
        async move { app.check(json!({"customerId": format!("stranger-{i}"), "requested": 100})).await }
    });
    for answer in join_all(checks).await {
        assert_eq!(answer["allowed"], true, "{answer}");
        assert_eq!(answer["limits"][0]["used"], 0, "{answer}");
        assert_eq!(answer["limits"][0]["id"], limit.as_str(), "{answer}");
    }
    let (_, customers) = app.get("/v1/customers").await;
    assert_eq!(customers["data"].as_array().unwrap().len(), 0, "{customers}");
    assert_eq!(app.engine().cache_sizes().0, 0, "absent customers are not cached");

    // Recording creates the customer; the next check sees its usage and its id.
    app.record_tokens("stranger-7", 40).await;
    let answer = app.check(json!({"customerId": "stranger-7"})).await;
    assert_eq!(answer["limits"][0]["used"], 40, "{answer}");
    assert!(answer["customerId"].as_str().unwrap().starts_with("cust_"), "{answer}");

    // Customers made by the customers and balances APIs are seen by the next check too.
    let (status, body) = app.post("/v1/customers", json!({"externalId": "stranger-8"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        app.post("/v1/balances", json!({"customerId": "stranger-9", "name": "credits", "initialBalance": 5})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for customer in ["stranger-8", "stranger-9"] {
        let answer = app.check(json!({"customerId": customer})).await;
        assert!(answer["customerId"].as_str().unwrap().starts_with("cust_"), "{answer}");
    }

    let unknown_id = app.post("/v1/limits/check", json!({"customerId": "cust_01NOSUCHCUSTOMER"})).await;
    assert_error(&unknown_id, StatusCode::NOT_FOUND, "customer_not_found", None);
}

#[tokio::test]
async fn an_external_id_shaped_like_an_internal_id_is_refused() {
    let app = spawn_app().await;
    app.record_tokens("acme", 1).await;
    let (_, acme) = app.get("/v1/customers/acme").await;
    let acme_id = acme["id"].as_str().unwrap();

    let shadow = app.post("/v1/customers", json!({"externalId": acme_id})).await;
    assert_error(&shadow, StatusCode::BAD_REQUEST, "invalid_field_value", Some("externalId"));
    let made_up = app.post("/v1/customers", json!({"externalId": "cust_made_up"})).await;
    assert_error(&made_up, StatusCode::BAD_REQUEST, "invalid_field_value", Some("externalId"));

    // Usage for an internal id that does not exist creates nobody.
    let unknown = app
        .post("/v1/events/record", json!({"customerId": "cust_made_up", "eventType": "x", "values": {"n": 1}}))
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "customer_not_found", None);
    let (_, customers) = app.get("/v1/customers").await;
    assert_eq!(customers["data"].as_array().unwrap().len(), 1, "{customers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customers_and_limits_delete_cleanly_while_their_usage_is_recorded() {
    let app = Arc::new(spawn_app().await);
    let meter = app.token_meter().await;
    let recorders: Vec<_> = (0..6)
        .map(|task| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let customer = format!("victim-{}", i % 3);
                    let body = if task % 2 == 0 {
                        json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": 1}})
                    } else {
                        token_events(&customer, 20, 1.0)
                    };
                    let path = if task % 2 == 0 { "/v1/events/record" } else { "/v1/events/batch" };
                    let (status, answer) = app.post(path, body).await;
                    assert!(status == StatusCode::OK || status.is_client_error(), "recorder got {status}: {answer}");
                }
            })
        })
        .collect();
    let deleter = {
        let (app, meter) = (app.clone(), meter.clone());
        tokio::spawn(async move {
            for round in 0..15 {
                let limit = json!({"name": format!("l{round}"), "meterId": meter, "limitValue": 1000, "period": "day"});
                let (status, created) = app.post("/v1/limits", limit).await;
                assert_eq!(status, StatusCode::CREATED, "{created}");
                let (status, body) = app.delete(&format!("/v1/limits/{}", created["id"].as_str().unwrap())).await;
                assert_eq!(status, StatusCode::NO_CONTENT, "limit delete: {body}");
                let (status, body) = app.delete(&format!("/v1/customers/victim-{}", round % 3)).await;
                assert!(
                    status == StatusCode::NO_CONTENT || status == StatusCode::NOT_FOUND,
                    "customer delete got {status}: {body}"
                );
            }
        })
    };
    for task in recorders {
        task.await.unwrap();
    }
    deleter.await.unwrap();
}

#[tokio::test]
async fn a_second_service_on_the_same_sqlite_file_is_refused() {
    let app = spawn_app().await;
    let config = limitry::config::Config::new("127.0.0.1:0".parse().unwrap(), &app.database_url);
    let second = limitry::server::spawn(&config, Arc::new(app.clock.clone())).await;
    if postgres_admin_url().is_some() {
        // Several instances on one PostgreSQL database are the supported way to scale out.
        let second = second.expect("a second instance on PostgreSQL starts");
        second.shutdown().await;
        return;
    }
    let Err(err) = second else { panic!("a second service on one SQLite file must not start") };
    let message = err.to_string();
    assert!(message.contains("another Limitry process") && message.contains("PostgreSQL"), "{message}");
    // The first one keeps serving.
    assert_eq!(app.get("/v1/project").await.0, StatusCode::OK);
}
