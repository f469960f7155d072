//! Request ids on every answer, and the service's logs as JSON lines: one object a line, every
//! request's span carrying its id, a 500 logged with its cause.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{scratch_database, spawn_app, spawn_app_with};

fn request_id(response: &reqwest::Response) -> String {
    response.headers().get("x-request-id").expect("every answer has x-request-id").to_str().unwrap().to_string()
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_one_sent_by_the_client_is_kept() {
    let app = spawn_app().await;
    let get = |path: &str, id: Option<&str>| {
        let mut request = app.client.get(format!("{}{path}", app.base)).bearer_auth(&app.key);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let first = request_id(&get("/healthz", None).await.unwrap());
    let second = request_id(&get("/healthz", None).await.unwrap());
    assert_ne!(first, second);
    for id in [&first, &second] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    // Errors, the API and the dashboard alike.
    for path in ["/v1/project", "/v1/meters/mtr_missing", "/nowhere", "/style.css"] {
        let response = get(path, Some("trace-7f3a")).await.unwrap();
        assert_eq!(request_id(&response), "trace-7f3a", "{path}");
    }
    let unauthenticated = app.client.get(format!("{}/v1/project", app.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(request_id(&unauthenticated).len(), 32);
}

#[tokio::test]
async fn a_request_cut_off_by_the_timeout_keeps_its_id_and_is_counted_with_its_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|config| config.connections.request_timeout = Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let head = format!(
        "POST /v1/events/record HTTP/1.1\r\nHost: limitry\r\nAuthorization: Bearer {}\r\nx-request-id: slow-1\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"customerId\":",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("\r\nx-request-id: slow-1\r\n"), "{answer}");

    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).unwrap();
    let timed_out = scrape.samples.iter().find(|s| {
        s.metric == "limitry_http_requests_total"
            && s.labels.get("route") == Some("/v1/events/record")
            && s.labels.get("status") == Some("408")
    });
    assert_eq!(timed_out.map(|s| s.value.clone()), Some(prometheus_parse::Value::Counter(1.0)), "{metrics}");
}

/// The binary under test, on its own database, logging JSON to a pipe.
pub struct Service {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub base: String,
    seen: Vec<String>,
}

impl Service {
    pub fn start(database_url: &str) -> Service {
        let mut command = Command::new(env!("CARGO_BIN_EXE_limitry"));
        command.env("RUST_LOG", "info,tower_http=debug").env_remove("DATABASE_URL");
        Service::start_with(command, database_url)
    }

    /// Starts `command` (the binary, its environment and working directory set) serving on a
    /// free port.
    pub fn start_with(mut command: Command, database_url: &str) -> Service {
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json", "--database-url", database_url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut service = Service { child, lines, base: String::new(), seen: Vec::new() };
        let listening =
            service.wait_for_line(|line| line["message"].as_str().is_some_and(|m| m.starts_with("listening on ")));
        service.base = listening["message"].as_str().unwrap().trim_start_matches("listening on ").to_string();
        service
    }

    /// Reads log lines until one matches; every line must be a JSON object.
    pub fn wait_for_line(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no such log line in {:#?}", self.seen));
            self.seen.push(line.clone());
            let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(value.is_object(), "{line}");
            assert!(value["timestamp"].is_string() && value["level"].is_string(), "{line}");
            if matches(&value) {
                return value;
            }
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn execute(database_url: &str, sql: &str) {
    if database_url.starts_with("postgres") {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    } else {
        use sqlx::Connection;
        let mut connection = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_request_ids_and_a_500_names_its_cause() {
    let database = scratch_database().await;
    let key = Command::new(env!("CARGO_BIN_EXE_limitry"))
        .args(["keys", "create", "--name", "logs", "--database-url", &database.url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(key.status.success(), "{}", String::from_utf8_lossy(&key.stderr));
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    let mut service = Service::start(&database.url);
    let client = reqwest::Client::new();

    let answer = client.get(format!("{}/healthz", service.base)).header("x-request-id", "ok-1").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answered = service.wait_for_line(|line| line["span"]["request_id"] == "ok-1");
    assert_eq!(answered["span"]["route"], "/healthz");
    assert_eq!(answered["span"]["method"], "GET");
    assert_eq!(answered["status"], 200, "{answered}");

    // The meters table disappears under the running service: its next read fails.
    execute(&database.url, "alter table meters rename to meters_gone").await;
    let failed = client
        .get(format!("{}/v1/meters", service.base))
        .bearer_auth(&key)
        .header("x-request-id", "fail-1")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(request_id(&failed), "fail-1");
    let body: Value = failed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_error");
    assert!(!body.to_string().contains("meters"), "the cause stays in the log: {body}");
    let logged = service.wait_for_line(|line| line["message"] == "request failed");
    assert_eq!(logged["level"], "ERROR");
    assert_eq!(logged["request_id"], "fail-1");
    assert_eq!(logged["route"], "/v1/meters");
    assert_eq!(logged["status"], 500);
    assert!(logged["cause"].as_str().is_some_and(|cause| cause.contains("meters")), "{logged}");

    let exit = service.terminate();
    service.wait_for_line(|line| line["message"] == "stopped");
    assert!(exit.success(), "SIGTERM stops the service cleanly: {exit:?}");
}
