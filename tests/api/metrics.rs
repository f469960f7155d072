//! `GET /metrics`: Prometheus text, with how checks were answered.

use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

/// The value of one sample line, e.g. `limitry_checks_total{source="memory"}`; 0 if absent.
async fn sample(app: &TestApp, series: &str) -> f64 {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_checks_answered_from_memory_and_from_the_database() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("acme", 5).await;
    app.check(json!({"customerId": "acme"})).await;
    let (memory, database) = ("limitry_checks_total{source=\"memory\"}", "limitry_checks_total{source=\"database\"}");
    let (memory_before, database_before) = (sample(&app, memory).await, sample(&app, database).await);
    for _ in 0..20 {
        app.record_tokens("acme", 1).await;
        app.check(json!({"customerId": "acme"})).await;
    }
    let (memory_after, database_after) = (sample(&app, memory).await, sample(&app, database).await);
    let (from_memory, from_database) = (memory_after - memory_before, database_after - database_before);
    // Records store the counters they changed in memory (on PostgreSQL they also announce
    // them to other instances): checks between them never read the database.
    assert_eq!((from_memory, from_database), (20.0, 0.0));
}
