//! Graceful stop (SIGTERM, Ctrl-C, or `RunningServer::shutdown`): new connections are refused
//! at once, and what is in flight is finished and kept.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use limitry::db::projects::DEFAULT_PROJECT_ID;
use limitry::db::WriterSlot;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Holds back every record of the default project until released: on SQLite by holding the
/// writer slot, on PostgreSQL by locking the project's row, which recording share-locks.
enum WriteHold {
    Sqlite(#[allow(dead_code)] WriterSlot),
    Postgres(sqlx::PgConnection),
}

impl WriteHold {
    async fn take(app: &TestApp) -> WriteHold {
        if app.database_url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query("begin").execute(&mut connection).await.unwrap();
            sqlx::query("select id from projects where id = $1 for update")
                .bind(DEFAULT_PROJECT_ID)
                .execute(&mut connection)
                .await
                .unwrap();
            WriteHold::Postgres(connection)
        } else {
            WriteHold::Sqlite(app.engine().db().writer_slot().await)
        }
    }

    async fn release(self) {
        if let WriteHold::Postgres(connection) = self {
            connection.close().await.unwrap();
        }
    }
}

/// Requests being answered now, this scrape included.
async fn in_flight(app: &TestApp) -> f64 {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape.samples.iter().find(|s| s.metric == "limitry_http_requests_in_flight").map_or(0.0, |s| match s.value {
        prometheus_parse::Value::Gauge(v) => v,
        _ => 0.0,
    })
}

async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Once the listener is closed, the stop has begun.
async fn refused(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn a_record_in_flight_when_the_stop_begins_is_answered_and_stored() {
    let mut app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    let hold = WriteHold::take(&app).await;
    let record = {
        let (client, url, key) = (app.client.clone(), format!("{}/v1/events/record", app.base), app.key.clone());
        tokio::spawn(async move {
            let body = json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 42}});
            let response = client.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    eventually("the record to be in flight", async || in_flight(&app).await >= 2.0).await;

    let addr = app.addr();
    let stopped = app.restart();
    let release = async {
        eventually("the listener to close", async || refused(addr).await).await;
        assert!(!record.is_finished(), "the record still waits for its commit");
        hold.release().await;
    };
    tokio::join!(stopped, release);

    let (status, answer) = record.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(app.event_count().await, 1, "the acknowledged event survived the stop");
    assert_eq!(app.used("acme", &limit).await, 42.0);
}

#[tokio::test]
async fn a_webhook_attempt_in_flight_when_the_stop_begins_is_recorded() {
    let mut app = spawn_app_with(|config| config.webhooks.poll_interval = Duration::from_millis(20)).await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = {
        let attempts = attempts.clone();
        let slow = axum::routing::post(move || async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
            StatusCode::NO_CONTENT
        });
        let app = axum::Router::new().route("/hook", slow);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
    };
    let (status, endpoint) = app.post("/v1/webhooks", json!({"url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let endpoint = endpoint["id"].as_str().unwrap().to_string();
    assert!(app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await.0.is_success());
    eventually("the attempt to start", async || attempts.load(Ordering::SeqCst) == 1).await;

    app.restart().await;

    let (status, deliveries) = app.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    assert_eq!(deliveries["data"][0]["status"], "delivered", "{deliveries}");
    assert_eq!(deliveries["data"][0]["attempts"], 1, "{deliveries}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not sent again after the restart");
    receiver.abort();
}
