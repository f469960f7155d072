//! Balances: exact money under concurrency, retries and expiry, on both databases.

use std::sync::Arc;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn create_balance(app: &TestApp, body: Value) -> Value {
    let (status, balance) = app.post("/v1/balances", body).await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    balance
}

async fn balance(app: &TestApp, id: &str) -> Value {
    let (status, balance) = app.get(&format!("/v1/balances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    balance
}

/// Every ledger entry, newest first.
async fn ledger(app: &TestApp, id: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.get(&format!("/v1/balances/{id}/transactions?limit=100&cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return entries,
        }
    }
}

/// The balance equals the sum of its ledger, and the holds the sum of their changes.
async fn assert_ledger_matches(app: &TestApp, id: &str) {
    let balance = balance(app, id).await;
    let entries = ledger(app, id).await;
    let sum = |key: &str| entries.iter().map(|e| e[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("amount"), balance["currentBalance"].as_i64().unwrap(), "{balance}");
    assert_eq!(sum("holdChange"), balance["heldBalance"].as_i64().unwrap(), "{balance}");
    let newest = &entries[0];
    assert_eq!(newest["balanceAfter"], balance["currentBalance"]);
    assert_eq!(newest["heldAfter"], balance["heldBalance"]);
}

async fn operate(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, answer) = app.post(path, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_debits_of_ten_against_five_hundred_succeed_exactly_fifty_times() {
    let app = Arc::new(spawn_app().await);
    let created = create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 500})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body =
                    json!({"customerId": "acme", "name": "credits", "amount": 10, "reference": format!("job-{i}")});
                operate(&app, "/v1/balances/debit", body).await
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        if answer["success"] == true {
            succeeded += 1;
        } else {
            assert_eq!(answer["error"], "insufficient_balance", "{answer}");
            assert!(answer.get("transaction").is_none(), "a refused debit writes nothing: {answer}");
        }
    }
    assert_eq!(succeeded, 50);
    let final_balance = balance(&app, &id).await;
    assert_eq!(final_balance["currentBalance"], 0);
    assert_eq!(final_balance["availableBalance"], 0);
    assert_eq!(ledger(&app, &id).await.len(), 51, "the initial credit and fifty debits");
    assert_ledger_matches(&app, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_mix_of_every_operation_keeps_the_ledger_equal_to_the_balance() {
    let app = Arc::new(spawn_app().await);
    let created = create_balance(
        &app,
        json!({"customerId": "acme", "name": "credits", "initialBalance": 1000, "minimumBalance": -200}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let target = json!({"customerId": "acme", "name": "credits"});
                let with = |extra: Value| {
                    let mut body = target.clone();
                    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                    body
                };
                match i % 4 {
                    0 => {
                        operate(&app, "/v1/balances/credit", with(json!({"amount": 25, "description": "top-up"})))
                            .await;
                    }
                    1 => {
                        operate(&app, "/v1/balances/debit", with(json!({"amount": 70}))).await;
                    }
                    _ => {
                        let held = operate(&app, "/v1/balances/reserve", with(json!({"amount": 60}))).await;
                        if held["success"] == true {
                            let reservation = held["reservation"]["id"].as_str().unwrap();
                            if i % 4 == 2 {
                                let path = format!("/v1/reservations/{reservation}/commit");
                                operate(&app, &path, json!({"amount": 45})).await;
                            } else {
                                operate(&app, &format!("/v1/reservations/{reservation}/release"), json!({})).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let final_balance = balance(&app, &id).await;
    assert_eq!(final_balance["heldBalance"], 0, "every hold was settled");
    assert!(final_balance["availableBalance"].as_i64().unwrap() >= 0);
    assert_ledger_matches(&app, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_sent_concurrently_has_one_effect() {
    let app = Arc::new(spawn_app().await);
    let created = create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let response = app
                    .client
                    .post(format!("{}/v1/balances/debit", app.base))
                    .bearer_auth(&app.key)
                    .header("Idempotency-Key", "debit-once")
                    .json(&json!({"customerId": "acme", "name": "credits", "amount": 30}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "every retry gets the first answer");
    assert_eq!(answers[0]["success"], true);
    assert_eq!(balance(&app, &id).await["currentBalance"], 70);
    assert_eq!(ledger(&app, &id).await.len(), 2);

    let reused = app
        .client
        .post(format!("{}/v1/balances/debit", app.base))
        .bearer_auth(&app.key)
        .header("Idempotency-Key", "debit-once")
        .json(&json!({"customerId": "acme", "name": "credits", "amount": 31}))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), StatusCode::CONFLICT, "a key reused for another request is refused");
}

#[tokio::test]
async fn an_expired_hold_is_released_exactly_once_on_a_moved_clock() {
    let app = spawn_app().await;
    let created = create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let held = operate(
        &app,
        "/v1/balances/reserve",
        json!({"customerId": "acme", "name": "credits", "amount": 80, "ttlSeconds": 60}),
    )
    .await;
    assert_eq!(held["success"], true, "{held}");
    assert_eq!(held["balance"]["availableBalance"], 20);
    let reservation = held["reservation"]["id"].as_str().unwrap().to_string();

    app.clock.advance(Duration::seconds(59));
    app.engine().expire_due_holds().await.unwrap();
    assert_eq!(balance(&app, &id).await["availableBalance"], 20, "not due yet");

    app.clock.advance(Duration::seconds(2));
    for _ in 0..3 {
        app.engine().expire_due_holds().await.unwrap();
    }
    let after = balance(&app, &id).await;
    assert_eq!(after["availableBalance"], 100);
    assert_eq!(after["heldBalance"], 0);
    let expiries = ledger(&app, &id).await.into_iter().filter(|e| e["type"] == "expire").count();
    assert_eq!(expiries, 1);
    assert_error(
        &app.post(&format!("/v1/reservations/{reservation}/commit"), json!({"amount": 10})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_ledger_matches(&app, &id).await;
}

#[tokio::test]
async fn operations_on_a_balance_expire_its_due_holds_first() {
    let app = spawn_app().await;
    create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let target = json!({"customerId": "acme", "name": "credits", "amount": 100, "ttlSeconds": 30});
    assert_eq!(operate(&app, "/v1/balances/reserve", target).await["success"], true);
    let debit = json!({"customerId": "acme", "name": "credits", "amount": 100});
    assert_eq!(operate(&app, "/v1/balances/debit", debit.clone()).await["success"], false);
    app.clock.advance(Duration::seconds(31));
    let answer = operate(&app, "/v1/balances/debit", debit).await;
    assert_eq!(answer["success"], true, "the expired hold no longer counts: {answer}");
}

#[tokio::test]
async fn overdraft_floors_reserves_and_short_funds_answer_as_documented() {
    let app = spawn_app().await;
    let overdraft = create_balance(
        &app,
        json!({"customerId": "acme", "name": "overdraft", "initialBalance": 100, "minimumBalance": -50}),
    )
    .await;
    assert_eq!(overdraft["availableBalance"], 150);
    let debit = |name: &str, amount: i64| json!({"customerId": "acme", "name": name, "amount": amount});
    assert_eq!(operate(&app, "/v1/balances/debit", debit("overdraft", 150)).await["balance"]["currentBalance"], -50);
    let short = operate(&app, "/v1/balances/debit", debit("overdraft", 1)).await;
    assert_eq!(short["success"], false);
    assert_eq!(short["error"], "insufficient_balance");
    assert_eq!(short["balance"]["currentBalance"], -50, "nothing changed");

    let reserve = create_balance(
        &app,
        json!({"customerId": "acme", "name": "reserve", "initialBalance": 100, "minimumBalance": 30}),
    )
    .await;
    assert_eq!(reserve["availableBalance"], 70);
    assert_eq!(operate(&app, "/v1/balances/debit", debit("reserve", 71)).await["success"], false);
    assert_eq!(operate(&app, "/v1/balances/debit", debit("reserve", 70)).await["balance"]["currentBalance"], 30);

    for amount in [json!(0), json!(-5), json!(1.5), json!("10")] {
        let answer =
            app.post("/v1/balances/debit", json!({"customerId": "acme", "name": "reserve", "amount": amount})).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{amount}: {}", answer.1);
        assert_eq!(answer.1["error"]["field"], "amount");
    }
    let no_description = app.post("/v1/balances/credit", debit("reserve", 10)).await;
    assert_error(&no_description, StatusCode::BAD_REQUEST, "missing_required_field", Some("description"));
    assert_error(
        &app.post("/v1/balances/debit", debit("nope", 1)).await,
        StatusCode::NOT_FOUND,
        "balance_not_found",
        None,
    );
    assert_error(&app.get("/v1/balances/bal_nope").await, StatusCode::NOT_FOUND, "balance_not_found", None);
    assert_error(
        &app.post("/v1/reservations/res_nope/release", json!({})).await,
        StatusCode::NOT_FOUND,
        "reservation_not_found",
        None,
    );
    assert_error(
        &app.post("/v1/balances", json!({"customerId": "acme", "name": "reserve"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let ttl = json!({"customerId": "acme", "name": "reserve", "amount": 1, "ttlSeconds": 3601});
    assert_error(
        &app.post("/v1/balances/reserve", ttl).await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("ttlSeconds"),
    );
    assert_error(&app.delete("/v1/customers/acme").await, StatusCode::CONFLICT, "conflict", None);
}

#[tokio::test]
async fn committing_above_the_hold_takes_only_what_is_available() {
    let app = spawn_app().await;
    let created = create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let reserve =
        |amount: i64| json!({"customerId": "acme", "name": "credits", "amount": amount, "description": "chat"});
    let held = operate(&app, "/v1/balances/reserve", reserve(40)).await;
    let reservation = held["reservation"]["id"].as_str().unwrap().to_string();
    let committed = operate(&app, &format!("/v1/reservations/{reservation}/commit"), json!({"amount": 130})).await;
    assert_eq!(committed["success"], true);
    assert_eq!(committed["amount"], 100, "the hold and all that was available");
    assert_eq!(committed["shortfall"], 30);
    assert_eq!(committed["reservation"]["status"], "committed");
    assert_eq!(committed["balance"]["currentBalance"], 0);
    assert_error(
        &app.post(&format!("/v1/reservations/{reservation}/release"), json!({})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );

    operate(
        &app,
        "/v1/balances/credit",
        json!({"customerId": "acme", "name": "credits", "amount": 50, "description": "top-up"}),
    )
    .await;
    let held = operate(&app, "/v1/balances/reserve", reserve(50)).await;
    let reservation = held["reservation"]["id"].as_str().unwrap().to_string();
    let committed = operate(&app, &format!("/v1/reservations/{reservation}/commit"), json!({"amount": 20})).await;
    assert_eq!(committed["amount"], 20);
    assert_eq!(committed["shortfall"], 0);
    assert_eq!(committed["balance"]["currentBalance"], 30, "the unused part of the hold is returned");

    let kinds: Vec<_> = ledger(&app, &id).await.iter().rev().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, ["credit", "hold", "commit", "credit", "hold", "commit"].map(|k| json!(k)).to_vec());
    assert_ledger_matches(&app, &id).await;
}

#[tokio::test]
async fn a_check_answers_for_balances_beside_the_limits() {
    let app = spawn_app().await;
    create_balance(&app, json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    let answer = app.check(json!({"customerId": "acme", "balances": [{"name": "credits", "amount": 100}]})).await;
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["balances"][0]["sufficient"], true);
    assert_eq!(answer["balances"][0]["availableBalance"], 100);

    let answer = app
        .check(json!({"customerId": "acme", "balances": [{"name": "credits", "amount": 101}, {"name": "gpu", "amount": 1}]}))
        .await;
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["reason"], "insufficient_balance");
    assert_eq!(answer["balances"][0]["sufficient"], false);
    assert_eq!(answer["balances"][1]["balanceId"], json!(null));

    let (status, listed) = app.get("/v1/customers/acme/balances").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["name"], "credits");
    let (status, checked) =
        app.post("/v1/balances/check", json!({"customerId": "acme", "name": "credits", "amount": 60})).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["sufficient"], true);
    let bad = app
        .post("/v1/limits/check", json!({"customerId": "acme", "balances": [{"name": "credits", "amount": 0}]}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_field_value", Some("balances[0].amount"));
}

#[tokio::test]
async fn the_ledger_is_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let created = create_balance(&app, json!({"customerId": "acme", "name": "credits"})).await;
    let id = created["id"].as_str().unwrap().to_string();
    for i in 1..=5 {
        let body = json!({"customerId": "acme", "name": "credits", "amount": i, "description": format!("top-up {i}"), "reference": format!("inv-{i}")});
        operate(&app, "/v1/balances/credit", body).await;
    }
    let (_, page) = app.get(&format!("/v1/balances/{id}/transactions?limit=2")).await;
    assert_eq!(page["data"][0]["amount"], 5);
    assert_eq!(page["data"][0]["reference"], "inv-5");
    assert_eq!(page["data"][0]["description"], "top-up 5");
    assert_eq!(page["data"][0]["balanceAfter"], 15);
    assert_eq!(page["data"][1]["amount"], 4);
    assert_eq!(page["hasMore"], true);
    assert_eq!(ledger(&app, &id).await.len(), 5, "no initial credit for an empty balance");
}
