//! The test harness: the real app on 127.0.0.1:0 with a fresh database per test — a SQLite
//! file, or a new PostgreSQL database when `LIMITRY_TEST_POSTGRES_URL` is set — and a clock
//! the test moves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use limitry::auth::keys::create_key;
use limitry::clock::ManualClock;
use limitry::config::Config;
use limitry::db::projects::DEFAULT_PROJECT_ID;
use limitry::server::{spawn, RunningServer};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A Tuesday, mid-month, mid-day: far from every window boundary unless a test moves it.
pub fn default_now() -> DateTime<Utc> {
    "2026-03-10T12:00:00Z".parse().unwrap()
}

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// A fresh, empty database of the suite's kind, removed when dropped.
pub struct ScratchDatabase {
    pub url: String,
    database: Option<TestDatabase>,
}

pub async fn scratch_database() -> ScratchDatabase {
    let (url, database) = fresh_database().await;
    ScratchDatabase { url, database: Some(database) }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Some(TestDatabase::Postgres { admin_url, name }) = self.database.take() {
            // Async clean-up cannot run on the test's own runtime from Drop: use a runtime of its own.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(admin_execute(&admin_url, &format!("drop database if exists {name} with (force)")));
            })
            .join()
            .ok();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub key: String,
    pub clock: ManualClock,
    pub database_url: String,
    /// Applied over the harness's configuration at every (re)start.
    pub configure: fn(&mut Config),
    server: Option<RunningServer>,
    database: Option<ScratchDatabase>,
}

/// The PostgreSQL server to test against, when the suite runs on PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("LIMITRY_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

fn with_database(admin_url: &str, name: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').expect("LIMITRY_TEST_POSTGRES_URL must end in /database");
    format!("{base}/{name}")
}

async fn admin_execute(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at LIMITRY_TEST_POSTGRES_URL is not reachable: {e}"));
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// A fresh, empty database URL for this test.
async fn fresh_database() -> (String, TestDatabase) {
    match postgres_admin_url() {
        Some(admin_url) => {
            let name = format!("limitry_test_{:016x}", rand::thread_rng().gen::<u64>());
            admin_execute(&admin_url, &format!("create database {name}")).await;
            (with_database(&admin_url, &name), TestDatabase::Postgres { admin_url, name })
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("limitry.db").display());
            (url, TestDatabase::Sqlite(dir))
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app with its configuration changed by `configure` first.
pub async fn spawn_app_with(configure: fn(&mut Config)) -> TestApp {
    // Server-side errors show up in a failing test's output.
    let _ = tracing_subscriber::fmt().with_env_filter("error").with_test_writer().try_init();
    let database = scratch_database().await;
    let database_url = database.url.clone();
    let clock = ManualClock::new(default_now());
    let server = start(&database_url, &clock, configure).await;
    let key = create_key(server.state.engine.db(), DEFAULT_PROJECT_ID, "test", 0).await.unwrap().secret;
    TestApp {
        base: format!("http://{}", server.addr),
        client: reqwest::Client::new(),
        key,
        clock,
        database_url,
        configure,
        server: Some(server),
        database: Some(database),
    }
}

async fn start(database_url: &str, clock: &ManualClock, configure: fn(&mut Config)) -> RunningServer {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), database_url);
    // Test receivers listen on loopback; tests of the target policy turn this off again.
    config.webhooks.target_policy.allow_private = true;
    configure(&mut config);
    spawn(&config, Arc::new(clock.clone())).await.unwrap()
}

impl TestApp {
    pub fn engine(&self) -> &limitry::engine::Engine {
        &self.server.as_ref().unwrap().state.engine
    }

    pub fn state(&self) -> &limitry::server::AppState {
        &self.server.as_ref().unwrap().state
    }

    /// Where the server listens: connections there are refused once it stops.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    /// `http://…` of the metrics listener, when the configuration gives it one.
    pub fn metrics_base(&self) -> Option<String> {
        self.server.as_ref().unwrap().metrics_addr.map(|addr| format!("http://{addr}"))
    }

    /// Stops the server and starts a new one on the same database: nothing in memory survives.
    pub async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await;
        let server = start(&self.database_url, &self.clock, self.configure).await;
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request_with_key(method, path, body, Some(&self.key)).await
    }

    pub async fn request_with_key(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    /// Posts raw bytes, for malformed bodies.
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a meter and returns its id.
    pub async fn create_meter(&self, body: Value) -> String {
        let (status, meter) = self.post("/v1/meters", body).await;
        assert_eq!(status, StatusCode::CREATED, "{meter}");
        meter["id"].as_str().unwrap().to_string()
    }

    /// A `sum` meter of `values.tokens` over `llm.completion`.
    pub async fn token_meter(&self) -> String {
        self.create_meter(json!({
            "name": "Tokens", "aggregation": "sum", "field": "values.tokens",
            "eventFilter": {"eventType": "llm.completion"}
        }))
        .await
    }

    /// Creates a limit and returns its id.
    pub async fn create_limit(&self, body: Value) -> String {
        let (status, limit) = self.post("/v1/limits", body).await;
        assert_eq!(status, StatusCode::CREATED, "{limit}");
        limit["id"].as_str().unwrap().to_string()
    }

    /// Records `tokens` for a customer now and asserts it was accepted.
    pub async fn record_tokens(&self, customer: &str, tokens: i64) -> Value {
        let (status, body) = self
            .post(
                "/v1/events/record",
                json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": tokens}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn check(&self, body: Value) -> Value {
        let (status, answer) = self.post("/v1/limits/check", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// The check's entry for one limit.
    pub async fn limit_status(&self, customer: &str, limit_id: &str) -> Value {
        let answer = self.check(json!({"customerId": customer})).await;
        answer["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == limit_id)
            .cloned()
            .unwrap_or_else(|| panic!("limit {limit_id} not in {answer}"))
    }

    pub async fn used(&self, customer: &str, limit_id: &str) -> f64 {
        self.limit_status(customer, limit_id).await["used"].as_f64().unwrap()
    }

    /// How many events the project holds, counted through the API.
    pub async fn event_count(&self) -> usize {
        let mut total = 0;
        let mut cursor = String::new();
        loop {
            let (status, page) = self.get(&format!("/v1/events?limit=100&cursor={cursor}")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            total += page["data"].as_array().unwrap().len();
            match page["nextCursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => return total,
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Signals the server to stop; it cannot be awaited here. Then the database goes.
        drop(self.server.take());
        drop(self.database.take());
    }
}

/// Asserts an error answer: status, code, and the field it names.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str, field: Option<&str>) {
    let (actual_status, body) = answer;
    assert_eq!(*actual_status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status.as_u16(), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "message should name {field}: {body}");
    }
}

/// Asks until `accept` holds, for at most a few seconds.
pub async fn poll<F: Future<Output = Value>>(
    what: &str,
    ask: impl Fn() -> F,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let mut answer = Value::Null;
    for _ in 0..100 {
        answer = ask().await;
        if accept(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never showed: {answer}");
}

/// Polls a check through `app` until `accept` holds.
pub async fn eventually(app: &TestApp, customer: &str, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    poll(what, || app.check(json!({"customerId": customer})), accept).await
}

/// Whether a check answer's `asOf` is at or after `instant`.
pub fn as_of_at_least(instant: DateTime<Utc>) -> impl Fn(&Value) -> bool {
    move |a| a["asOf"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).is_some_and(|t| t >= instant)
}

/// A second service on the test app's database, and a way to call it with the same key.
pub struct Other {
    pub server: RunningServer,
}

impl Other {
    pub async fn start(app: &TestApp) -> Other {
        let config = limitry::config::Config::new("127.0.0.1:0".parse().unwrap(), &app.database_url);
        let server = limitry::server::spawn(&config, Arc::new(app.clock.clone())).await.unwrap();
        Other { server }
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(app, app.client.post(format!("http://{}{path}", self.server.addr)).json(&body)).await
    }

    pub async fn put(&self, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(app, app.client.put(format!("http://{}{path}", self.server.addr)).json(&body)).await
    }

    pub async fn send(&self, app: &TestApp, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.bearer_auth(&app.key).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
