//! `GET /metrics`: Prometheus text, read with a Prometheus text parser, counting exactly what
//! each test did.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use prometheus_parse::{Scrape, Value};
use serde_json::{json, Value as Json};

use crate::helpers::{as_of_at_least, eventually, postgres_admin_url, spawn_app, spawn_app_with, TestApp};

/// One scrape of `/metrics`, parsed.
pub(crate) struct Metrics(Scrape);

impl Metrics {
    pub(crate) async fn scrape(app: &TestApp) -> Metrics {
        Metrics::scrape_at(app, &app.base).await
    }

    async fn scrape_at(app: &TestApp, base: &str) -> Metrics {
        let response = app.client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        let text = response.text().await.unwrap();
        Metrics(Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).unwrap())
    }

    /// The sum of the series of `name` whose labels include `labels` (0 when there is none):
    /// a counter's or a gauge's value, a histogram's count.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => {
                    buckets.iter().find(|b| b.less_than == f64::INFINITY).map_or(0.0, |b| b.count)
                }
                Value::Summary(_) => panic!("{name} is a summary"),
            })
            .sum()
    }

    /// Whether the series exists at all (a gauge may be 0).
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.samples.iter().any(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    fn requests(&self, method: &str, route: &str, status: &str) -> f64 {
        self.value("limitry_http_requests_total", &[("method", method), ("route", route), ("status", status)])
    }

    fn latencies(&self, method: &str, route: &str, status: &str) -> f64 {
        self.value("limitry_http_request_duration_seconds", &[("method", method), ("route", route), ("status", status)])
    }

    fn balance_operations(&self, operation: &str, outcome: &str) -> f64 {
        self.value("limitry_balance_operations_total", &[("operation", operation), ("outcome", outcome)])
    }
}

/// A webhook receiver on loopback that answers every delivery with `status`.
async fn receiver(status: StatusCode) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(move || async move { status }));
    (url, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

async fn wait_for(app: &TestApp, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let started = Instant::now();
    loop {
        let metrics = Metrics::scrape(app).await;
        if done(&metrics) {
            return metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fast_webhooks(config: &mut limitry::config::Config) {
    config.webhooks.poll_interval = Duration::from_millis(20);
}

#[tokio::test]
async fn metrics_count_requests_events_checks_balance_operations_and_webhook_deliveries() {
    let app = spawn_app_with(fast_webhooks).await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;

    // Events: 1 + 3 stored by two requests, then a repeat of an idempotency key.
    app.record_tokens("acme", 5).await;
    let event =
        json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 1}, "idempotencyKey": "k1"});
    let (status, batch) = app.post("/v1/events/batch", json!({"events": [event, {"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 2}}, {"customerId": "bob", "eventType": "x"}]})).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let (status, repeat) = app.post("/v1/events/record", event).await;
    assert_eq!((status, repeat["duplicate"].clone()), (StatusCode::OK, json!(true)), "{repeat}");

    // Checks: two allowed, one over the limit, one short of a balance.
    app.check(json!({"customerId": "acme"})).await;
    app.check(json!({"customerId": "nobody-yet"})).await;
    assert_eq!(app.check(json!({"customerId": "acme", "requested": 1000})).await["reason"], "limit_exceeded");
    let short = app.check(json!({"customerId": "acme", "balances": [{"name": "credits", "amount": 5}]})).await;
    assert_eq!(short["reason"], "insufficient_balance", "{short}");

    // Balance operations: applied, refused for want of funds, replayed by Idempotency-Key.
    let (status, balance) =
        app.post("/v1/balances", json!({"customerId": "acme", "name": "credits", "initialBalance": 100})).await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    let target = |amount: i64| json!({"customerId": "acme", "name": "credits", "amount": amount, "description": "t"});
    assert_eq!(app.post("/v1/balances/credit", target(50)).await.1["success"], true);
    assert_eq!(app.post("/v1/balances/debit", target(1000)).await.1["error"], "insufficient_balance");
    for _ in 0..2 {
        let answer = app
            .client
            .post(format!("{}/v1/balances/debit", app.base))
            .bearer_auth(&app.key)
            .header("idempotency-key", "job-1")
            .json(&target(20))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let (_, reserved) = app.post("/v1/balances/reserve", target(10)).await;
    let reservation = reserved["reservation"]["id"].as_str().unwrap().to_string();
    let (status, committed) = app.post(&format!("/v1/reservations/{reservation}/commit"), json!({"amount": 7})).await;
    assert_eq!(status, StatusCode::OK, "{committed}");

    // Webhooks: one receiver accepts, one fails (its delivery stays queued for a retry).
    let (accepting, _a) = receiver(StatusCode::NO_CONTENT).await;
    let (failing, _f) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    for url in [accepting, failing] {
        let (status, endpoint) = app.post("/v1/webhooks", json!({"url": url})).await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        let (status, _) = app.post(&format!("/v1/webhooks/{}/test", endpoint["id"].as_str().unwrap()), json!({})).await;
        assert!(status.is_success());
    }

    // A 404 on a route with an id: labelled by the route's template, never the raw path.
    assert_eq!(app.get("/v1/meters/mtr_missing").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/no/such/page").await.0, StatusCode::NOT_FOUND);

    let metrics =
        wait_for(&app, "both webhook attempts", |m| m.value("limitry_webhook_deliveries_total", &[]) >= 2.0).await;

    assert_eq!(metrics.value("limitry_events_recorded_total", &[("outcome", "stored")]), 4.0);
    assert_eq!(metrics.value("limitry_events_recorded_total", &[("outcome", "duplicate")]), 1.0);

    assert_eq!(metrics.value("limitry_checks_total", &[("outcome", "allowed")]), 2.0);
    assert_eq!(metrics.value("limitry_checks_total", &[("outcome", "limit_exceeded")]), 1.0);
    assert_eq!(metrics.value("limitry_checks_total", &[("outcome", "insufficient_balance")]), 1.0);

    assert_eq!(metrics.balance_operations("credit", "applied"), 1.0);
    assert_eq!(metrics.balance_operations("debit", "insufficient_balance"), 1.0);
    assert_eq!(metrics.balance_operations("debit", "applied"), 1.0);
    assert_eq!(metrics.balance_operations("debit", "replayed"), 1.0);
    assert_eq!(metrics.balance_operations("reserve", "applied"), 1.0);
    assert_eq!(metrics.balance_operations("commit", "applied"), 1.0);
    assert_eq!(metrics.value("limitry_balance_operations_total", &[]), 6.0);

    assert_eq!(metrics.value("limitry_webhook_deliveries_total", &[("outcome", "delivered")]), 1.0);
    assert_eq!(metrics.value("limitry_webhook_deliveries_total", &[("outcome", "retrying")]), 1.0);
    assert_eq!(metrics.value("limitry_webhook_queue_depth", &[]), 1.0, "the failed delivery waits for its retry");

    assert_eq!(metrics.requests("POST", "/v1/events/record", "200"), 2.0);
    assert_eq!(metrics.requests("POST", "/v1/events/batch", "200"), 1.0);
    assert_eq!(metrics.requests("POST", "/v1/limits/check", "200"), 4.0);
    assert_eq!(metrics.latencies("POST", "/v1/limits/check", "200"), 4.0);
    assert_eq!(metrics.requests("POST", "/v1/balances/debit", "200"), 3.0);
    assert_eq!(metrics.requests("POST", "/v1/reservations/:id/commit", "200"), 1.0);
    assert_eq!(metrics.requests("POST", "/v1/limits", "201"), 1.0);
    assert_eq!(metrics.requests("GET", "/v1/meters/:id", "404"), 1.0);
    assert_eq!(metrics.requests("GET", "unmatched", "404"), 1.0);
    assert_eq!(metrics.value("limitry_http_requests_in_flight", &[]), 1.0, "this scrape");
    let raw_paths: Vec<_> = metrics
        .0
        .samples
        .iter()
        .filter_map(|s| s.labels.get("route"))
        .filter(|route| route.contains("mtr_") || route.contains("res_") || route.contains("/no/"))
        .collect();
    assert!(raw_paths.is_empty(), "routes are labelled by template: {raw_paths:?}");

    let max = if postgres_admin_url().is_some() { 16.0 } else { 8.0 };
    assert_eq!(metrics.value("limitry_db_pool_max_connections", &[]), max);
    assert!(metrics.value("limitry_db_pool_connections", &[("state", "idle")]) >= 1.0);
    assert!(metrics.has("limitry_db_pool_connections", &[("state", "in_use")]));
    assert!(metrics.has("limitry_cache_entries", &[("cache", "customers")]));
    assert!(metrics.has("limitry_cache_entries", &[("cache", "counters")]));
    assert_eq!(metrics.value("limitry_record_queue_depth", &[]), 0.0);
    assert!(metrics.0.docs.contains_key("limitry_checks_total"), "every metric says what it counts");
}

#[tokio::test]
async fn metrics_count_checks_answered_from_memory_and_from_the_database() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("acme", 5).await;
    // On PostgreSQL the instance hears its own announcement of the new limit and clears its
    // memory; an answer as of a later instant than the set-up means that is behind it. The
    // test clock stands still, so it is moved: a heartbeat stamped with the set-up's instant may
    // have been sent before the announcement.
    app.clock.advance(chrono::Duration::milliseconds(1));
    eventually(&app, "acme", "an answer as of now", as_of_at_least(app.clock.now_for_tests())).await;
    // What that answer read may have met the clear and not been kept: one more check keeps it.
    app.check(json!({"customerId": "acme"})).await;
    let sources = |m: &Metrics| {
        (
            m.value("limitry_checks_total", &[("source", "memory")]),
            m.value("limitry_checks_total", &[("source", "database")]),
        )
    };
    let before = sources(&Metrics::scrape(&app).await);
    for _ in 0..20 {
        app.record_tokens("acme", 1).await;
        app.check(json!({"customerId": "acme"})).await;
    }
    let after = sources(&Metrics::scrape(&app).await);
    let (from_memory, from_database) = (after.0 - before.0, after.1 - before.1);
    // Records store the counters they changed in memory (on PostgreSQL they also announce
    // them to other instances): checks between them never read the database.
    assert_eq!((from_memory, from_database), (20.0, 0.0));
}

#[tokio::test]
async fn metrics_count_record_transactions_written_from_memory_and_from_the_database() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    let groups = |m: &Metrics| {
        (
            m.value("limitry_record_groups_total", &[("source", "memory")]),
            m.value("limitry_record_groups_total", &[("source", "database")]),
        )
    };
    // The first record of a customer creates it: that transaction reads and writes the database.
    let before = groups(&Metrics::scrape(&app).await);
    app.record_tokens("acme", 5).await;
    let after = groups(&Metrics::scrape(&app).await);
    assert_eq!((after.0 - before.0, after.1 - before.1), (0.0, 1.0));
    // As in the test above: on PostgreSQL, wait until the instance heard its own set-up.
    app.clock.advance(chrono::Duration::milliseconds(1));
    eventually(&app, "acme", "an answer as of now", as_of_at_least(app.clock.now_for_tests())).await;
    app.record_tokens("acme", 1).await;
    // Then the rules, the customer and its counters are remembered: nothing is read first.
    let before = groups(&Metrics::scrape(&app).await);
    for _ in 0..5 {
        app.record_tokens("acme", 1).await;
    }
    let after = groups(&Metrics::scrape(&app).await);
    assert_eq!((after.0 - before.0, after.1 - before.1), (5.0, 0.0));
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let app = spawn_app_with(|config| config.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    app.check(json!({"customerId": "acme"})).await;
    let (status, _): (StatusCode, Json) = app.request_with_key(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not on the API's listener");
    let metrics = Metrics::scrape_at(&app, &app.metrics_base().unwrap()).await;
    assert_eq!(metrics.requests("POST", "/v1/limits/check", "200"), 1.0);
    assert_eq!(metrics.value("limitry_checks_total", &[("outcome", "allowed")]), 1.0);
}
