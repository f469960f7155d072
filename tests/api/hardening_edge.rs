//! Hardening at the edges: webhook targets that cannot reach inside, slow clients that cannot
//! hold the server, a front door that cannot be raced or used to lock an operator out, and
//! dashboard pages that cannot be framed, cached or made to say what a link wants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Turns off the harness's allowance for loopback receivers: the service's default.
fn default_target_policy(config: &mut limitry::config::Config) {
    config.webhooks.target_policy.allow_private = false;
}

/// A loopback receiver counting what reaches each of its paths: `/hook` answers 200 with a
/// long body, `/redirect` sends the client on to `/inside`.
struct Receiver {
    port: u16,
    hook: Arc<AtomicUsize>,
    inside: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const LONG_ANSWER_BYTES: usize = 10_000;

impl Receiver {
    async fn start() -> Receiver {
        let (hook, inside) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (hook_hits, inside_hits) = (hook.clone(), inside.clone());
        let app = Router::new()
            .route(
                "/hook",
                post(move || async move {
                    hook_hits.fetch_add(1, Ordering::SeqCst);
                    "internal-data;".repeat(LONG_ANSWER_BYTES / 14)
                }),
            )
            .route(
                "/redirect",
                post(|| async { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/inside")]).into_response() }),
            )
            .route(
                "/inside",
                post(move || async move {
                    inside_hits.fetch_add(1, Ordering::SeqCst);
                    "reached inside"
                }),
            );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { port, hook, inside, server }
    }
}

async fn create_endpoint(app: &TestApp, url: &str) -> String {
    let (status, endpoint) = app.post("/v1/webhooks", json!({"url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    endpoint["id"].as_str().unwrap().to_string()
}

/// Sends a test event and waits for the first attempt in the delivery log.
async fn first_attempt(app: &TestApp, endpoint: &str) -> Value {
    let (status, queued) = app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let started = Instant::now();
    loop {
        let (_, log) = app.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await;
        if let Some(attempt) = log["data"][0]["attemptLog"].get(0) {
            return attempt.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no attempt was made: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const INTERNAL_URLS: [&str; 22] = [
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.0.1/hook",
    "http://100.64.0.1/hook",
    "http://127.0.0.1:9/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://localhost/hook",
    "http://admin.localhost/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "https://[ff02::1]/hook",
];

#[tokio::test]
async fn webhook_urls_naming_internal_addresses_are_refused_on_create_and_update() {
    let app = spawn_app_with(default_target_policy).await;
    for url in INTERNAL_URLS {
        let answer = app.post("/v1/webhooks", json!({"url": url})).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{url} was accepted: {}", answer.1);
        assert_eq!(answer.1["error"]["field"], "url", "{url}: {}", answer.1);
    }
    // A public receiver is fine (nothing is queued for it, so nothing is sent).
    let endpoint = create_endpoint(&app, "https://hooks.example.com/limitry").await;
    for url in INTERNAL_URLS {
        let answer = app.put(&format!("/v1/webhooks/{endpoint}"), json!({"url": url})).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{url} was accepted: {}", answer.1);
        assert_eq!(answer.1["error"]["field"], "url", "{url}: {}", answer.1);
    }
    let (_, stored) = app.get(&format!("/v1/webhooks/{endpoint}")).await;
    assert_eq!(stored["url"], "https://hooks.example.com/limitry");
}

#[tokio::test]
async fn private_webhook_targets_are_allowed_when_configured() {
    let app = spawn_app().await;
    create_endpoint(&app, "http://127.0.0.1:9/hook").await;
    create_endpoint(&app, "http://localhost:9/hook").await;
    create_endpoint(&app, "http://[::1]:9/hook").await;
}

#[tokio::test]
async fn stored_internal_targets_are_refused_at_send_time_after_resolving_them() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    // Stored while private targets were allowed; the service then restarts without that.
    let by_name = create_endpoint(&app, &format!("http://localhost:{}/hook", receiver.port)).await;
    let by_address = create_endpoint(&app, &format!("http://127.0.0.1:{}/hook", receiver.port)).await;
    app.configure = default_target_policy;
    app.restart().await;

    let attempt = first_attempt(&app, &by_name).await;
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused") && error.contains("resolves to"), "{attempt}");
    assert_eq!(attempt["statusCode"], Value::Null, "{attempt}");
    let attempt = first_attempt(&app, &by_address).await;
    assert!(attempt["error"].as_str().unwrap_or_default().contains("refused"), "{attempt}");
    assert_eq!(receiver.hook.load(Ordering::SeqCst), 0, "nothing may reach the receiver");
}

#[tokio::test]
async fn webhook_redirects_are_not_followed() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = create_endpoint(&app, &format!("http://127.0.0.1:{}/redirect", receiver.port)).await;
    let attempt = first_attempt(&app, &endpoint).await;
    assert_eq!(attempt["statusCode"], 307, "{attempt}");
    assert!(attempt["error"].is_string(), "a redirect is not a delivery: {attempt}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.inside.load(Ordering::SeqCst), 0, "the redirect was followed");
}

#[tokio::test]
async fn the_delivery_log_keeps_only_a_short_labelled_excerpt_of_the_answer() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = create_endpoint(&app, &format!("http://127.0.0.1:{}/hook", receiver.port)).await;
    let attempt = first_attempt(&app, &endpoint).await;
    assert_eq!(attempt["statusCode"], 200, "{attempt}");
    assert!(attempt.get("responseBody").is_none(), "{attempt}");
    let excerpt = attempt["responseExcerpt"].as_str().unwrap();
    assert!(excerpt.starts_with("internal-data;"), "{attempt}");
    assert!(excerpt.len() <= 256, "{} bytes kept", excerpt.len());
}

// --- Slow clients -------------------------------------------------------------------------

/// Reads from a raw connection until the server closes it or `within` passes; returns what
/// arrived, or `None` if the connection was still open.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

fn server_address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = spawn_app_with(|config| config.connections.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(server_address(&app)).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: limitry\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.is_some(), "the connection was still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout");
    // The server itself still answers.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_answers_408_in_the_error_shape() {
    let app = spawn_app_with(|config| config.connections.request_timeout = Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(server_address(&app)).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let head = format!(
        "POST /v1/events/record HTTP/1.1\r\nHost: limitry\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"customerId\":",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("no answer within 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    assert_eq!(body["error"]["status"], 408, "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|config| config.connections.max_connections = 2).await;
    let idle_one = tokio::net::TcpStream::connect(server_address(&app)).await.unwrap();
    let _idle_two = tokio::net::TcpStream::connect(server_address(&app)).await.unwrap();
    let client = reqwest::Client::new();
    let healthz = format!("{}/healthz", app.base);
    let third = client.get(&healthz).timeout(Duration::from_millis(700)).send().await;
    assert!(third.is_err(), "a third connection was served: {third:?}");
    drop(idle_one);
    let fourth = reqwest::Client::new().get(&healthz).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(fourth.status(), StatusCode::OK);
}

// --- The front door -----------------------------------------------------------------------

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "correct horse battery";

/// A browser without JavaScript at a loopback address of its own (127.0.0.x), keeping the
/// login form's anti-forgery cookie and not following redirects.
struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: std::sync::Mutex<Vec<String>>,
}

impl Visitor {
    fn at(app: &TestApp, address: [u8; 4]) -> Visitor {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(address))
            .build()
            .unwrap();
        Visitor { client, base: app.base.clone(), cookies: Default::default() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.lock().unwrap().join("; ")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = request.header("cookie", self.cookie_header()).send().await.unwrap();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap().to_string();
            let name = pair.split('=').next().unwrap().to_string();
            let mut cookies = self.cookies.lock().unwrap();
            cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            cookies.push(pair);
        }
        (response.status(), headers, response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(self.client.post(format!("{}{path}", self.base)).form(fields)).await
    }

    /// The anti-forgery token of a page's last form.
    async fn csrf(&self, path: &str) -> String {
        let (_, _, body) = self.get(path).await;
        let marker = r#"name="_csrf" value=""#;
        let start = body.rfind(marker).unwrap_or_else(|| panic!("no form on {path}: {body}")) + marker.len();
        body[start..].split('"').next().unwrap().to_string()
    }

    /// Signs in and answers where the server sent the browser.
    async fn log_in(&self, email: &str, password: &str) -> String {
        let csrf = self.csrf("/login").await;
        let (_, headers, _) = self.post("/login", &[("_csrf", &csrf), ("email", email), ("password", password)]).await;
        location(&headers)
    }
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn set_up_operator(app: &TestApp) -> Visitor {
    let operator = Visitor::at(app, [127, 0, 0, 1]);
    let csrf = operator.csrf("/setup").await;
    let (status, headers, body) =
        operator.post("/setup", &[("_csrf", &csrf), ("email", EMAIL), ("password", PASSWORD)]).await;
    assert_eq!((status, location(&headers).as_str()), (StatusCode::SEE_OTHER, "/"), "{body}");
    operator
}

fn is_throttled(location: &str) -> bool {
    location.contains("too_many") || location.contains("Too+many")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_are_checked_only_until_the_throttle_applies() {
    let app = spawn_app().await;
    set_up_operator(&app).await;
    let attacker = Arc::new(Visitor::at(&app, [127, 0, 0, 2]));
    let csrf = attacker.csrf("/login").await;
    let guesses = (0..24).map(|i| {
        let (attacker, csrf) = (attacker.clone(), csrf.clone());
        tokio::spawn(async move {
            let password = format!("wrong password {i}");
            let fields = [("_csrf", csrf.as_str()), ("email", EMAIL), ("password", password.as_str())];
            location(&attacker.post("/login", &fields).await.1)
        })
    });
    let answers: Vec<String> = futures_util::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    let checked = answers.iter().filter(|l| !is_throttled(l)).count();
    assert_eq!(checked, 3, "only the free attempts may reach the password check: {answers:?}");
}

#[tokio::test]
async fn failures_elsewhere_do_not_lock_an_operator_out_but_one_address_is_capped() {
    let app = spawn_app().await;
    let operator = set_up_operator(&app).await;
    let attacker = Visitor::at(&app, [127, 0, 0, 3]);
    for _ in 0..5 {
        attacker.log_in(EMAIL, "wrong password!").await;
    }
    assert!(is_throttled(&attacker.log_in(EMAIL, PASSWORD).await), "the attacker's address waits");
    assert_eq!(operator.log_in(EMAIL, PASSWORD).await, "/", "the operator at another address does not");

    // One address guessing across many emails is stopped too.
    let sprayer = Visitor::at(&app, [127, 0, 0, 4]);
    let mut throttled = false;
    for i in 0..25 {
        if is_throttled(&sprayer.log_in(&format!("guess{i}@example.com"), "wrong password!").await) {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "an address trying 25 emails was never slowed down");
}

#[tokio::test]
async fn over_long_emails_are_refused_without_storing_anything() {
    let app = spawn_app().await;
    set_up_operator(&app).await;
    let visitor = Visitor::at(&app, [127, 0, 0, 5]);
    let long = format!("{}@example.com", "a".repeat(100_000));
    // More attempts than one address may fail freely (20): any of them counted would show.
    for _ in 0..25 {
        let answer = visitor.log_in(&long, "wrong password!").await;
        assert!(answer.starts_with("/login?error="), "{answer}");
        assert!(!is_throttled(&answer), "an email no operator can have was counted: {answer}");
    }
    // None of them counted (nothing was stored), so a normal attempt is not throttled.
    assert!(!is_throttled(&visitor.log_in("someone@example.com", "wrong password!").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_run_setups_create_exactly_one_operator() {
    let app = spawn_app().await;
    let setups = (0..12).map(|i| {
        let visitor = Visitor::at(&app, [127, 0, 0, 1]);
        tokio::spawn(async move {
            let csrf = visitor.csrf("/setup").await;
            let email = format!("ops{i}@example.com");
            visitor.post("/setup", &[("_csrf", &csrf), ("email", &email), ("password", PASSWORD)]).await.0
        })
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(setups).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(), 1, "{statuses:?}");
    assert_eq!(app.engine().db().operator_count().await.unwrap(), 1);
}

// --- Dashboard headers and pages ------------------------------------------------------------

#[track_caller]
fn assert_security_headers(headers: &reqwest::header::HeaderMap, path: &str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let policy = header("content-security-policy");
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'"), "{path}: {policy}");
    assert_eq!(header("x-frame-options"), "DENY", "{path}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    assert!(!header("referrer-policy").is_empty(), "{path}");
    assert!(header("cache-control").contains("no-store"), "{path}");
}

/// Leptos appends resource bookkeeping scripts after the document, which the policy blocks and
/// no page needs; the document itself must use neither scripts nor inline styles.
#[track_caller]
fn assert_needs_no_script_or_inline_style(body: &str) {
    let document = body.split("</html>").next().unwrap();
    assert!(!document.contains("<script") && !document.contains(" style="), "{document}");
}

#[tokio::test]
async fn dashboard_pages_send_security_headers_and_pages_with_secrets_are_not_stored() {
    let app = spawn_app().await;
    let operator = set_up_operator(&app).await;
    let (_, headers, body) = Visitor::at(&app, [127, 0, 0, 6]).get("/login").await;
    assert_security_headers(&headers, "/login");
    // The policy forbids scripts and inline styles: the pages must need neither.
    assert_needs_no_script_or_inline_style(&body);

    let csrf = operator.csrf("/api-keys").await;
    let (_, created, _) = operator.post("/api-keys/create", &[("_csrf", &csrf), ("name", "ci")]).await;
    let (status, headers, body) = operator.get(&location(&created)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-testid="new-api-key""#), "the page shows the new secret: {body}");
    assert_security_headers(&headers, "/api-keys with a new secret");
    for path in ["/", "/meters", "/limits", "/customers", "/events", "/webhooks"] {
        let (status, headers, body) = operator.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_security_headers(&headers, path);
        assert_needs_no_script_or_inline_style(&body);
    }
}

#[tokio::test]
async fn pages_never_show_text_taken_from_the_query_string() {
    let app = spawn_app().await;
    let operator = set_up_operator(&app).await;
    let forged = "Your+account+is+locked.+Call+555-0100";
    let (_, _, body) = Visitor::at(&app, [127, 0, 0, 7]).get(&format!("/login?error={forged}&field=email")).await;
    assert!(!body.contains("555-0100"), "{body}");
    for path in ["/meters", "/limits", "/api-keys", "/webhooks", "/customers"] {
        let (_, _, body) = operator.get(&format!("{path}?notice={forged}&error={forged}&field=name")).await;
        assert!(!body.contains("555-0100"), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_missing_customer_or_page_answers_404() {
    let app = spawn_app().await;
    let operator = set_up_operator(&app).await;
    let (status, _, body) = operator.get("/customers/cust_00000000000000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("Customer not found"));
    assert_eq!(operator.get("/no-such-page").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_api_keys_page_shows_and_revokes_only_the_dashboards_project_keys() {
    let app = spawn_app().await;
    let operator = set_up_operator(&app).await;
    let db = app.engine().db();
    let other =
        db.create_project(&limitry::domain::projects::NewProject::parse("Other", "UTC").unwrap(), 0).await.unwrap();
    let other_key = limitry::auth::keys::create_key(db, &other.id, "other-project-key", 0).await.unwrap();
    let (_, _, page) = operator.get("/api-keys").await;
    assert!(page.contains(">test<"), "the dashboard project's key is listed: {page}");
    assert!(!page.contains("other-project-key"), "{page}");

    let csrf = operator.csrf("/api-keys").await;
    let other_id = db.keys(None).await.unwrap().into_iter().find(|k| k.name == "other-project-key").unwrap().id;
    operator.post(&format!("/api-keys/{other_id}/revoke"), &[("_csrf", &csrf)]).await;
    let still = app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some(&other_key.secret)).await;
    assert_eq!(still.0, StatusCode::OK, "another project's key stays usable: {}", still.1);
}
