//! Several instances on one PostgreSQL database: each keeps limits and customers in memory and
//! hears the others' changes, so checks through one agree with changes made through the other;
//! money stays exact across them. (On SQLite a second instance is refused: see hardening_core.)

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{as_of_at_least, eventually, poll, postgres_admin_url, spawn_app, Other, TestApp};
use crate::metrics::Metrics;

/// Two instances on one PostgreSQL database (`None` without one), with a token meter and a daily
/// limit of `limit_value` on it: (app, other, meter id, limit id).
async fn two_instances_with_a_daily_limit(limit_value: i64) -> Option<(TestApp, Other, String, String)> {
    postgres_admin_url()?;
    let app = spawn_app().await;
    let other = Other::start(&app).await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": limit_value, "period": "day"})).await;
    Some((app, other, meter, limit))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_agree_after_limit_and_customer_changes_made_through_the_other() {
    let Some((app, other, meter, limit)) = two_instances_with_a_daily_limit(100).await else { return };
    // Usage recorded through either instance counts for both.
    let (status, body) = other
        .post(
            &app,
            "/v1/events/record",
            json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 30}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.record_tokens("acme", 10).await;
    eventually(&app, "acme", "usage recorded through the other", |a| a["limits"][0]["used"] == 40).await;

    // The first instance now holds the limit in memory; change it through the other.
    let (status, body) = other.put(&app, &format!("/v1/limits/{limit}"), json!({"limitValue": 35})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(&app, "acme", "a new limit value", |a| a["limits"][0]["limit"] == 35 && a["allowed"] == false).await;

    // A customer's own limit created through the other overrides the default here too.
    let (status, body) = other
        .post(
            &app,
            "/v1/limits",
            json!({"name": "own", "meterId": meter, "limitValue": 500, "period": "day", "customerId": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually(&app, "acme", "the customer's own limit", |a| a["limits"][0]["limit"] == 500).await;

    // A timezone change through the other moves the day window seen here.
    let before = app.check(json!({"customerId": "acme"})).await["limits"][0]["reset"].clone();
    let (status, body) = other.put(&app, "/v1/customers/acme", json!({"timezone": "Pacific/Auckland"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(&app, "acme", "the new timezone", |a| a["limits"][0]["reset"] != before).await;
    other.server.shutdown().await;
}

/// A recording transaction reads the project's rules version: rules and customers this
/// instance remembers from an older version are not used, however late its listener hears of
/// the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_count_by_the_current_rules_even_before_the_change_is_heard() {
    let Some((app, other, _meter, limit)) = two_instances_with_a_daily_limit(1000).await else { return };
    let requests = app.create_meter(json!({"name": "Requests", "aggregation": "count"})).await;
    // Recording leaves the limit's rules and the customer in this instance's memory (the
    // first record creates the customer, whose announcement may drop what it left).
    app.record_tokens("acme", 10).await;
    app.record_tokens("acme", 10).await;
    // The limit now counts requests instead of tokens: changed as another instance's change
    // commits (the version moved), but with its announcement still to come (no NOTIFY).
    let change = format!(
        "with changed as (update limits set meter_id = '{requests}' where id = '{limit}' returning project_id) \
         update projects set rules_version = rules_version + 1 where id in (select project_id from changed)"
    );
    sqlx_execute(&app.database_url, &change).await;
    // Recorded through this instance: counted as one request, not as 5 tokens.
    app.record_tokens("acme", 5).await;
    let stored: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar("select cast(sum(value) as bigint) from usage_counters where limit_id = $1")
            .bind(&limit)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(stored, 21_000, "20 tokens before the change, then one request (in thousandths)");
    other.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_that_lost_its_listener_reads_the_database_until_it_hears_again() {
    let Some((app, other, _, limit)) = two_instances_with_a_daily_limit(100).await else { return };
    app.check(json!({"customerId": "acme"})).await;
    // Cut every listening connection: announcements made now reach nobody.
    sqlx_execute(
        &app.database_url,
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and query ilike 'listen%' and pid <> pg_backend_pid()",
    )
    .await;
    let (status, body) = other.put(&app, &format!("/v1/limits/{limit}"), json!({"limitValue": 7})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The missed announcement must not leave the old value in memory for good.
    eventually(&app, "acme", "a change announced while nobody listened", |a| a["limits"][0]["limit"] == 7).await;
    other.server.shutdown().await;
}

/// Checks `app` answered from memory, whatever their outcome.
async fn checks_from_memory(app: &TestApp) -> f64 {
    Metrics::scrape(app).await.value("limitry_checks_total", &[("source", "memory")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_recorded_through_either_instance_is_in_the_others_memory_as_of_the_instant_it_reports() {
    let Some((app, other, _, limit)) = two_instances_with_a_daily_limit(100_000).await else { return };
    let (app, other) = (Arc::new(app), Arc::new(other));
    app.record_tokens("acme", 1).await;
    // Both instances hold acme's counter from here on.
    eventually(&app, "acme", "an answer as of now", as_of_at_least(app.clock.now_for_tests())).await;
    eventually(&app, "acme", "the first record", |a| a["limits"][0]["used"] == 1).await;

    let memory_before = checks_from_memory(&app).await;
    // Records through both instances at once, each group announced to the other.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (app, other) = (app.clone(), other.clone());
            tokio::spawn(async move {
                let body = json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 10}});
                let (status, answer) = if i % 2 == 0 {
                    app.post("/v1/events/record", body).await
                } else {
                    other.post(&app, "/v1/events/record", body).await
                };
                assert_eq!(status, StatusCode::OK, "{answer}");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Every record was acknowledged before this instant: an answer as of it counts them all.
    app.clock.advance(chrono::Duration::milliseconds(1));
    let after = app.clock.now_for_tests();
    let answer = eventually(&app, "acme", "an answer as of the last record", as_of_at_least(after)).await;
    assert_eq!(answer["limits"][0]["used"], 401, "{answer}");
    assert_eq!(app.used("acme", &limit).await, 401.0);
    let (first, second) = (&app, &other);
    let through_other = poll(
        "an answer as of the last record",
        || async move { second.post(first, "/v1/limits/check", json!({"customerId": "acme"})).await.1 },
        as_of_at_least(after),
    )
    .await;
    assert_eq!(through_other["limits"][0]["used"], 401, "{through_other}");
    // Those answers came from memory: announcements kept it current.
    assert!(checks_from_memory(&app).await > memory_before);
}

/// A group over many customers is announced in several payloads (PostgreSQL caps each under
/// 8,000 bytes); the other instance hears every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_over_many_customers_reaches_the_other_instances_memory_whole() {
    let Some((app, other, _, _)) = two_instances_with_a_daily_limit(100_000).await else { return };
    let customers: Vec<String> = (0..300).map(|i| format!("customer-{i:03}")).collect();
    let batch = |tokens: i64| {
        let events: Vec<_> = customers
            .iter()
            .map(|c| json!({"customerId": c, "eventType": "llm.completion", "values": {"tokens": tokens}}))
            .collect();
        json!({"events": events})
    };
    let (status, body) = app.post("/v1/events/batch", batch(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The other instance now holds every customer's counter at 1.
    for customer in &customers {
        let (_, answer) = other.post(&app, "/v1/limits/check", json!({"customerId": customer})).await;
        assert_eq!(answer["limits"][0]["used"], 1, "{customer}: {answer}");
    }
    // Once the first instance has heard its own announcements, which clear what it remembers of
    // the project, it remembers the rules and the customers again from the next group on: the
    // first of the next two groups reads them, the second goes through memory. Each group's 300
    // counters then reach the other instance.
    eventually(&app, "customer-000", "an answer as of now", as_of_at_least(app.clock.now_for_tests())).await;
    let (status, body) = app.post("/v1/events/batch", batch(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/v1/events/batch", batch(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (first, second) = (&app, &other);
    for customer in &customers {
        let answer = poll(
            "the second batch",
            || async move { second.post(first, "/v1/limits/check", json!({"customerId": customer})).await.1 },
            |answer| answer["limits"][0]["used"] == 3,
        )
        .await;
        assert_eq!(answer["limits"][0]["used"], 3, "{customer}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_created_through_one_instance_is_no_longer_unknown_to_the_other() {
    let Some((app, other, _, _)) = two_instances_with_a_daily_limit(100).await else { return };
    // Both remember that nobody called "fresh" or "funded" exists yet.
    for customer in ["fresh", "funded"] {
        assert_eq!(app.check(json!({"customerId": customer})).await["customerId"], customer);
        let (_, answer) = other.post(&app, "/v1/limits/check", json!({"customerId": customer})).await;
        assert_eq!(answer["customerId"], customer, "{answer}");
    }
    // A record through the other creates one; a balance created through the other the second.
    let (status, body) = other
        .post(
            &app,
            "/v1/events/record",
            json!({"customerId": "fresh", "eventType": "llm.completion", "values": {"tokens": 30}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        other.post(&app, "/v1/balances", json!({"customerId": "funded", "name": "credits", "initialBalance": 5})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let answer = eventually(&app, "fresh", "the created customer's usage", |a| a["limits"][0]["used"] == 30).await;
    assert!(answer["customerId"].as_str().unwrap().starts_with("cust_"), "{answer}");
    let funded = json!({"customerId": "funded", "balances": [{"name": "credits", "amount": 5}]});
    poll("the balance created through the other instance", || app.check(funded.clone()), |a| a["allowed"] == true)
        .await;
    other.server.shutdown().await;
}

async fn sqlx_execute(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn debits_raced_across_two_instances_never_overspend() {
    if postgres_admin_url().is_none() {
        return;
    }
    let app = Arc::new(spawn_app().await);
    let other = Arc::new(Other::start(&app).await);
    let (status, balance) =
        app.post("/v1/balances", json!({"customerId": "acme", "name": "credits", "initialBalance": 50})).await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    let id = balance["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (app, other, id) = (app.clone(), other.clone(), id.clone());
            tokio::spawn(async move {
                let body = json!({"balanceId": id, "amount": 1});
                let (status, answer) = if i % 2 == 0 {
                    app.post("/v1/balances/debit", body).await
                } else {
                    other.post(&app, "/v1/balances/debit", body).await
                };
                assert_eq!(status, StatusCode::OK, "{answer}");
                answer["success"] == true
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += usize::from(task.await.unwrap());
    }
    assert_eq!(succeeded, 50);
    let (_, balance) = app.get(&format!("/v1/balances/{id}")).await;
    assert_eq!(balance["currentBalance"], 0, "{balance}");
}
