//! The dashboard over HTTP: sessions, setup, login throttling, CSRF, and what pages and
//! downloads show. (Browser flows live in end2end/.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Duration;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const EMAIL: &str = "ops@example.com";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A cookie-keeping client that does not follow redirects, like a browser without JavaScript.
pub(crate) struct Browser {
    client: reqwest::Client,
    pub(crate) base: String,
    cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The anti-forgery token of the page's forms.
    pub(crate) fn csrf(&self) -> String {
        let marker = r#"name="_csrf" value=""#;
        // The last form's: on a signed-in page the first is the header's sign-out form.
        let start = self.body.rfind(marker).unwrap_or_else(|| panic!("no CSRF field in {}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Browser { client, base: app.base.clone(), cookies: HashMap::new() }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (name, rest) = text.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        Page { status, headers, body: response.text().await.unwrap() }
    }

    /// Creates the first operator through `/setup` and stays signed in.
    pub(crate) async fn set_up(&mut self) -> Page {
        let form = self.get("/setup").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        let done = self.post("/setup", &[("_csrf", &csrf), ("email", EMAIL), ("password", PASSWORD)]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/");
        done
    }

    pub(crate) async fn log_in(&mut self, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.csrf();
        self.post("/login", &[("_csrf", &csrf), ("email", EMAIL), ("password", password)]).await
    }
}

#[tokio::test]
async fn no_page_form_or_download_is_reachable_without_a_session() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.location(), "/setup", "a fresh install sends operators to setup");
    browser.set_up().await;

    let mut stranger = Browser::new(&app);
    for path in [
        "/",
        "/customers",
        "/customers/acme",
        "/meters",
        "/limits",
        "/limits/lmt_x/alerts",
        "/events",
        "/api-keys",
        "/audit",
        "/exports/events.csv",
        "/exports/usage.csv?start=2026-03-01&end=2026-03-02",
        "/exports/ledger.csv?balanceId=bal_x",
    ] {
        let page = stranger.get(path).await;
        assert!(page.status.is_redirection(), "{path}: {}", page.status);
        assert_eq!(page.location(), "/login", "{path}");
    }
    for path in ["/meters/create", "/limits/create", "/api-keys/create", "/logout", "/balances/bal_x/credit"] {
        let page = stranger.post(path, &[("name", "x")]).await;
        assert_eq!(page.location(), "/login", "{path}");
    }
    assert_eq!(stranger.get("/setup").await.status, StatusCode::NOT_FOUND, "setup is gone once an operator exists");
    let (_, meters) = app.get("/v1/meters").await;
    assert_eq!(meters["data"], json!([]));
}

#[tokio::test]
async fn signing_in_sets_a_fresh_http_only_lax_session_that_survives_a_restart() {
    let mut app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let setup = browser.set_up().await;
    let first_session = browser.cookies["limitry_session"].clone();
    let cookie = setup.headers.get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-HTTP loopback use turns Secure off by default: {cookie}");

    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(EMAIL));

    let logged_in = browser.log_in(PASSWORD).await;
    assert_eq!(logged_in.location(), "/", "{} {}", logged_in.status, logged_in.body);
    assert_ne!(browser.cookies["limitry_session"], first_session, "signing in renews the session id");

    app.restart().await;
    browser.base = app.base.clone();
    assert_eq!(browser.get("/meters").await.status, StatusCode::OK, "sessions live in the database");

    let csrf = browser.get("/").await.csrf();
    assert_eq!(browser.post("/logout", &[("_csrf", &csrf)]).await.location(), "/login");
    assert_eq!(browser.get("/").await.location(), "/login");
}

#[tokio::test]
async fn forms_without_the_right_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let fields = [("name", "Tokens"), ("aggregation", "sum"), ("field", "values.tokens")];
    assert_eq!(browser.post("/meters/create", &fields).await.status, StatusCode::FORBIDDEN);
    let forged = [("_csrf", "forged"), ("name", "Tokens"), ("aggregation", "sum"), ("field", "values.tokens")];
    assert_eq!(browser.post("/meters/create", &forged).await.status, StatusCode::FORBIDDEN);
    let (_, meters) = app.get("/v1/meters").await;
    assert_eq!(meters["data"], json!([]));

    let csrf = browser.get("/meters").await.csrf();
    let created = browser
        .post(
            "/meters/create",
            &[("_csrf", &csrf), ("name", "Tokens"), ("aggregation", "sum"), ("field", "values.tokens")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_eq!(created.location(), "/meters", "the outcome travels in the session, not the URL");
    assert!(browser.get("/meters").await.body.contains("class=\"notice\""));
    let (_, meters) = app.get("/v1/meters").await;
    assert_eq!(meters["data"][0]["name"], "Tokens");

    let mut stranger = Browser::new(&app);
    let login_form = stranger.get("/login").await;
    let wrong = stranger.post("/login", &[("_csrf", "nope"), ("email", EMAIL), ("password", PASSWORD)]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", login_form.status);
}

#[tokio::test]
async fn validation_errors_come_back_next_to_their_field() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/meters").await.csrf();
    let failed = browser
        .post("/meters/create", &[("_csrf", &csrf), ("name", "Bad"), ("aggregation", "sum"), ("field", "tokens")])
        .await;
    assert_eq!(failed.status, StatusCode::SEE_OTHER);
    let page = browser.get(failed.location()).await;
    assert!(page.body.contains(r#"id="field-error""#), "{}", page.body);
    assert!(
        page.body.contains("Field must be values. followed by the key of the event"),
        "in an operator's words, without a pattern: {}",
        page.body
    );
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_down() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let mut attacker = Browser::new(&app);
    for _ in 0..3 {
        let failed = attacker.log_in("wrong password!").await;
        assert_eq!(failed.location(), "/login?error=wrong_credentials");
    }
    let refused = attacker.log_in(PASSWORD).await;
    assert!(refused.location().contains("too_many_attempts"), "even the right password waits: {}", refused.location());
    assert!(attacker.get(refused.location()).await.body.contains("Too many failed sign-ins. Try again in 1 s."));
    assert!(!attacker.cookies.contains_key("limitry_session"));
    app.clock.advance(Duration::seconds(2));
    assert_eq!(attacker.log_in(PASSWORD).await.location(), "/");
}

#[tokio::test]
async fn a_new_api_key_is_shown_once_and_can_be_revoked() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/api-keys").await.csrf();
    let created = browser.post("/api-keys/create", &[("_csrf", &csrf), ("name", "ci")]).await;
    let page = browser.get(created.location()).await;
    let marker = r#"data-testid="new-api-key">"#;
    let start =
        page.body.find(marker).unwrap_or_else(|| panic!("the secret is on the page: {}", page.body)) + marker.len();
    let secret = page.body[start..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("limitry_sk_"));
    let again = browser.get("/api-keys").await;
    assert!(!again.body.contains(&secret), "the secret is shown only once");

    let key = app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some(&secret)).await;
    assert_eq!(key.0, StatusCode::OK);
    let key_id = app.engine().db().keys(None).await.unwrap().into_iter().find(|k| k.name == "ci").unwrap().id;
    let revoked = browser.post(&format!("/api-keys/{key_id}/revoke"), &[("_csrf", &csrf)]).await;
    assert_eq!(revoked.location(), "/api-keys");
    let refused = app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some(&secret)).await;
    assert_eq!(refused.1["error"]["code"], "expired_api_key");
}

#[tokio::test]
async fn an_operators_access_token_is_shown_once_reaches_any_project_and_can_be_revoked() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/access-tokens").await.csrf();
    let created = browser.post("/access-tokens/create", &[("_csrf", &csrf), ("name", "deploy script")]).await;
    let page = browser.get(created.location()).await;
    let marker = r#"data-testid="new-access-token">"#;
    let start =
        page.body.find(marker).unwrap_or_else(|| panic!("the secret is on the page: {}", page.body)) + marker.len();
    let secret = page.body[start..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("limitry_pat_"), "{secret}");
    let again = browser.get("/access-tokens").await;
    assert!(!again.body.contains(&secret), "the secret is shown only once");
    assert!(again.body.contains("deploy script"));

    let staging = app
        .engine()
        .db()
        .create_project(&limitry::domain::projects::NewProject::parse("Staging", "UTC").unwrap(), 0)
        .await
        .unwrap();
    let project_of = |project: String| {
        let request =
            app.client.get(format!("{}/v1/project", app.base)).bearer_auth(&secret).header("X-Project", project);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = project_of(staging.id.clone()).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &json!(staging.id)), "{body}");

    let db = app.engine().db();
    let operator = db.operator_by_email(EMAIL).await.unwrap().unwrap();
    let token = db.operator_personal_tokens(&operator.id).await.unwrap().remove(0);
    assert!(db.revoke_personal_token("op_someone_else", &token.id, 0).await.is_err(), "only its operator revokes it");
    let revoked = browser.post(&format!("/access-tokens/{}/revoke", token.id), &[("_csrf", &csrf)]).await;
    assert_eq!(revoked.location(), "/access-tokens");
    let (status, body) = project_of("proj_default".into()).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::UNAUTHORIZED, &json!("expired_api_key")), "{body}");
    let listed = browser.get("/access-tokens").await;
    assert!(listed.body.contains("revoked"), "{}", listed.body);
}

#[tokio::test]
async fn pages_escape_what_users_name_things() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let meter = app
        .create_meter(json!({"name": "<script>alert(1)</script>", "aggregation": "sum", "field": "values.tokens"}))
        .await;
    app.create_limit(
        json!({"name": "<img src=x onerror=alert(2)>", "meterId": meter, "limitValue": 10, "period": "day"}),
    )
    .await;
    app.record_tokens("<b>acme</b>", 3).await;
    let customer = app.get("/v1/customers/%3Cb%3Eacme%3C%2Fb%3E").await.1["id"].as_str().unwrap().to_string();
    for path in
        ["/".to_string(), "/meters".into(), "/limits".into(), "/customers".into(), format!("/customers/{customer}")]
    {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: {}", page.body);
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(!page.body.contains("<b>acme"), "{path}: {}", page.body);
    }
    let detail = browser.get(&format!("/customers/{customer}")).await;
    assert!(detail.body.contains("<svg"), "the usage chart is inline SVG");
    assert!(detail.body.contains("3 of 10 tokens per day"), "{}", detail.body);
}

#[tokio::test]
async fn downloads_stream_csv_with_escaped_cells() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let (_, balance) = app
        .post("/v1/balances", json!({"customerId": "=HYPERLINK(\"x\")", "name": "credits", "initialBalance": 10}))
        .await;
    let balance_id = balance["id"].as_str().unwrap().to_string();
    app.post("/v1/balances/debit", json!({"balanceId": balance_id, "amount": 4, "description": "a, \"quoted\"\nline"}))
        .await;
    app.record_tokens("=HYPERLINK(\"x\")", 5).await;
    app.create_meter(json!({"name": "Tokens", "aggregation": "sum", "field": "values.tokens"})).await;

    let events = browser.get("/exports/events.csv").await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(events.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(events.headers["content-disposition"].to_str().unwrap().contains("attachment"));
    let mut lines = events.body.lines();
    assert!(lines.next().unwrap().starts_with("id,timestamp,customer_external_id"));
    assert!(events.body.contains(r#""'=HYPERLINK(""x"")""#), "{}", events.body);

    let ledger = browser.get(&format!("/exports/ledger.csv?balanceId={balance_id}")).await;
    let rows: Vec<_> = csv_rows(&ledger.body);
    assert_eq!(rows[0][0], "id");
    assert_eq!(rows.len(), 3, "header, initial credit, debit");
    assert_eq!(rows[1][5], "-4", "negative amounts stay numbers");
    assert_eq!(rows[1][9], "a, \"quoted\"\nline");

    let (rows, _) = usage_export(&mut browser, "start=2026-03-01&end=2026-04-01&period=month").await;
    assert_eq!(rows[0][0], "'=HYPERLINK(\"x\")");
    assert_eq!(rows[0][8], "5");
}

/// The columns of the usage export, in order.
const USAGE_CSV_HEADER: [&str; 9] = [
    "customer_external_id",
    "customer_name",
    "meter_id",
    "meter_name",
    "aggregation",
    "timezone",
    "period_start",
    "period_end",
    "value",
];

/// The usage export's rows after its header (checked), and its file name.
pub(crate) async fn usage_export(browser: &mut Browser, query: &str) -> (Vec<Vec<String>>, String) {
    let page = browser.get(&format!("/exports/usage.csv?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let disposition = page.headers["content-disposition"].to_str().unwrap().to_string();
    let mut rows = csv_rows(&page.body);
    assert_eq!(rows.remove(0), USAGE_CSV_HEADER, "{}", page.body);
    (rows, disposition)
}

/// Parses CSV the way a spreadsheet would: quoted fields may hold commas, quotes and newlines.
pub(crate) fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![vec![String::new()]];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let row = rows.last_mut().unwrap();
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                row.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(String::new()),
            ('\r', false) => {}
            ('\n', false) => rows.push(vec![String::new()]),
            (c, _) => row.last_mut().unwrap().push(c),
        }
    }
    rows.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    rows
}

#[tokio::test]
async fn webhook_endpoints_are_managed_from_the_dashboard() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/webhooks").await.csrf();
    let created = browser
        .post("/webhooks/create", &[("_csrf", &csrf), ("url", "http://127.0.0.1:9/hook"), ("type:balance.low", "on")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page = browser.get(created.location()).await;
    let marker = r#"data-testid="webhook-secret">"#;
    assert!(page.body.contains(marker), "the secret is shown once: {}", page.body);
    assert!(page.body.contains("healthy"));
    let endpoint_path = created.location().split('?').next().unwrap().to_string();
    assert!(!browser.get(&endpoint_path).await.body.contains(marker), "and only once");

    let (_, listed) = app.get("/v1/webhooks").await;
    assert_eq!(listed["data"][0]["eventTypes"], json!(["balance.low"]));
    let id = listed["data"][0]["id"].as_str().unwrap().to_string();

    let disabled =
        browser.post(&format!("/webhooks/{id}/update"), &[("_csrf", &csrf), ("url", "http://127.0.0.1:9/other")]).await;
    assert_eq!(disabled.location(), format!("/webhooks/{id}"));
    let (_, endpoint) = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint["enabled"], false, "an unticked Enabled box disables");
    assert_eq!(endpoint["url"], "http://127.0.0.1:9/other");
    assert_eq!(endpoint["eventTypes"], json!([]));

    let test = browser.post(&format!("/webhooks/{id}/test"), &[("_csrf", &csrf)]).await;
    let refused = browser.get(test.location()).await;
    assert!(refused.body.contains("the endpoint is disabled"), "a disabled endpoint gets no test: {}", refused.body);
    let rotated = browser.post(&format!("/webhooks/{id}/rotate"), &[("_csrf", &csrf)]).await;
    assert!(browser.get(rotated.location()).await.body.contains(marker));
    let deleted = browser.post(&format!("/webhooks/{id}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(deleted.location(), "/webhooks");
    let (_, listed) = app.get("/v1/webhooks").await;
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test]
async fn session_cookies_are_secure_when_configured() {
    let app = spawn_app_with(|config| config.cookie_secure = limitry::config::CookieSecure::Always).await;
    let mut browser = Browser::new(&app);
    let setup = browser.set_up().await;
    let cookie = setup.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.starts_with("limitry_session=") && cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
}

#[tokio::test]
async fn expired_sessions_sign_nobody_in_and_are_deleted() {
    use tower_sessions::session_store::ExpiredDeletion;
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    assert_eq!(stored_sessions(&app).await, 1);
    assert_eq!(browser.get("/meters").await.status, StatusCode::OK);
    let cookie = &browser.cookies["limitry_session"];
    let stored_id = stored_session_id(&app).await;
    assert_eq!(stored_id.len(), 22);
    assert!(!cookie.contains(&stored_id), "the table keeps a hash of the id, not the id: {cookie} {stored_id}");

    expire_stored_sessions(&app).await;
    assert_eq!(browser.get("/meters").await.location(), "/login", "an expired session is no session");
    app.state().ui.sessions.delete_expired().await.unwrap();
    assert_eq!(stored_sessions(&app).await, 0);
}

/// How many dashboard sessions the database holds.
async fn stored_sessions(app: &TestApp) -> i64 {
    use sqlx::Connection;
    const COUNT: &str = "select count(*) from dashboard_sessions";
    if app.database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(COUNT).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(COUNT).fetch_one(&mut conn).await.unwrap()
    }
}

/// The id column of the only stored dashboard session.
async fn stored_session_id(app: &TestApp) -> String {
    use sqlx::Connection;
    const ID: &str = "select id from dashboard_sessions";
    if app.database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(ID).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(ID).fetch_one(&mut conn).await.unwrap()
    }
}

/// Dates every stored session's expiry in the past, as if a week without use had gone by.
async fn expire_stored_sessions(app: &TestApp) {
    use sqlx::Connection;
    use tower_sessions::cookie::time::OffsetDateTime;
    const EXPIRE: &str = "update dashboard_sessions set expiry_date = $1";
    if app.database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(EXPIRE).bind(OffsetDateTime::UNIX_EPOCH).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(EXPIRE).bind(OffsetDateTime::UNIX_EPOCH).execute(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn a_keys_own_rate_limits_are_set_from_the_dashboard() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/api-keys").await.csrf();
    let created = browser
        .post("/api-keys/create", &[("_csrf", &csrf), ("name", "limited"), ("rate_limit_per_minute", "2")])
        .await;
    let page = browser.get(created.location()).await;
    let marker = r#"data-testid="new-api-key">"#;
    let start = page.body.find(marker).unwrap() + marker.len();
    let secret = page.body[start..].split('<').next().unwrap().to_string();
    assert!(page.body.contains("2/min, unlimited (default)/day"), "{}", page.body);
    let status = |secret: String| {
        let app = &app;
        async move { app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some(&secret)).await.0 }
    };
    assert_eq!(status(secret.clone()).await, StatusCode::OK);
    assert_eq!(status(secret.clone()).await, StatusCode::OK);
    assert_eq!(status(secret.clone()).await, StatusCode::TOO_MANY_REQUESTS);

    let key_id = app.engine().db().keys(None).await.unwrap().into_iter().find(|k| k.name == "limited").unwrap().id;
    let path = format!("/api-keys/{key_id}/rate-limits");
    let refused = browser.post(&path, &[("_csrf", &csrf), ("rate_limit_per_minute", "-1")]).await;
    assert_eq!(refused.location(), "/api-keys");
    let page = browser.get("/api-keys").await;
    assert!(page.body.contains("rate_limit_per_minute"), "the error names the field: {}", page.body);
    let saved = browser.post(&path, &[("_csrf", &csrf), ("rate_limit_per_minute", "0")]).await;
    assert_eq!(saved.location(), "/api-keys");
    assert_eq!(status(secret.clone()).await, StatusCode::OK, "0 lifts the key's limit at once");
    assert!(browser.get("/api-keys").await.body.contains("unlimited/min"));
}

/// The part of a page between two markers (the first after `from`, up to `to` or the end).
fn section<'a>(body: &'a str, from: &str, to: &str) -> &'a str {
    let start = body.find(from).unwrap_or_else(|| panic!("no {from} in {body}"));
    let rest = &body[start..];
    rest.find(to).map_or(rest, |end| &rest[..end])
}

/// A meter of tokens and a daily limit of 1,000 with alerts at 50 % and 100 %; `acme` is over
/// it (1,500), `globex` near it (600) and low on credits, `initech` well within (10).
async fn customers_in_every_state(app: &TestApp) -> (String, String) {
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "Daily tokens", "meterId": meter, "limitValue": 1000, "period": "day",
            "alertThresholds": [50, 100]}))
        .await;
    // A second apart, so that "newest first" has an order to find.
    app.record_tokens("acme", 1500).await;
    app.clock.advance(chrono::Duration::seconds(1));
    app.record_tokens("globex", 600).await;
    app.clock.advance(chrono::Duration::seconds(1));
    app.record_tokens("initech", 10).await;
    let (status, _) = app
        .post(
            "/v1/balances",
            json!({"customerId": "globex", "name": "credits", "initialBalance": 40,
            "lowBalanceThreshold": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    (meter, limit)
}

async fn customer_id(app: &TestApp, external_id: &str) -> String {
    let (_, customer) = app.get(&format!("/v1/customers/{external_id}")).await;
    customer["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_overview_says_who_is_over_or_near_a_limit_and_whose_balance_is_low() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    customers_in_every_state(&app).await;
    let acme = customer_id(&app, "acme").await;
    let globex = customer_id(&app, "globex").await;

    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let over = section(&page.body, r#"data-testid="over-limit""#, r#"data-testid="near-limit""#);
    assert!(over.contains("Over a limit (1)"), "{over}");
    assert!(over.contains(&format!(r##"href="/customers/{acme}#limits""##)), "one click to the customer: {over}");
    assert!(over.contains("Over by 500 tokens (150 % of the limit)"), "{over}");
    assert!(over.contains("Over limit"), "the state is written, not only coloured: {over}");
    assert!(!over.contains("globex") && !over.contains("initech"), "{over}");

    let near = section(&page.body, r#"data-testid="near-limit""#, r#"data-testid="low-balances""#);
    assert!(near.contains("globex") && near.contains("400 tokens left (60 % used)"), "{near}");
    assert!(!near.contains("initech"), "10 % is below the first alert threshold: {near}");

    let low = section(&page.body, r#"data-testid="low-balances""#, r#"data-testid="failing-webhooks""#);
    assert!(low.contains(&format!(r##"href="/customers/{globex}#balances""##)), "{low}");
    assert!(low.contains("credits: 40 credits available, below its low threshold of 100"), "{low}");

    let alerts = section(&page.body, r#"data-testid="recent-alerts""#, "</section>");
    assert!(alerts.contains("reached 100 % of Daily tokens"), "{alerts}");
    assert!(alerts.contains("reached 50 % of Daily tokens"), "{alerts}");
}

#[tokio::test]
async fn the_customers_list_filters_and_sorts_by_how_customers_stand() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    customers_in_every_state(&app).await;

    let rows = |body: &str| -> Vec<String> {
        body.split(r#"data-testid="customer-row""#)
            .skip(1)
            .map(|row| row.split(r#"">"#).nth(2).unwrap_or_default().split('<').next().unwrap_or_default().to_string())
            .collect()
    };
    let worst_first = browser.get("/customers?sort=worst").await;
    assert_eq!(rows(&worst_first.body), ["acme", "globex", "initech"], "{}", worst_first.body);
    assert!(worst_first.body.contains("150 % of Daily tokens"), "{}", worst_first.body);

    let over = browser.get("/customers?status=over").await;
    assert_eq!(rows(&over.body), ["acme"]);
    let low = browser.get("/customers?status=low_balance").await;
    assert_eq!(rows(&low.body), ["globex"]);
    let attention = browser.get("/customers?status=attention&sort=newest").await;
    assert_eq!(rows(&attention.body), ["globex", "acme"]);
    let searched = browser.get("/customers?search=ini&status=all").await;
    assert_eq!(rows(&searched.body), ["initech"]);
}

#[tokio::test]
async fn a_customer_page_says_how_far_over_a_limit_is_and_when_it_resets_in_the_customers_time() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    customers_in_every_state(&app).await;
    let (status, _) = app.put("/v1/customers/acme", json!({"timezone": "Europe/Paris"})).await;
    assert_eq!(status, StatusCode::OK);
    app.record_tokens("acme", 1_200_000).await;
    let acme = customer_id(&app, "acme").await;

    let page = browser.get(&format!("/customers/{acme}")).await;
    let limit = section(&page.body, r#"data-testid="limit-status""#, "</div>");
    assert!(limit.contains(r#"data-standing="over""#), "{limit}");
    assert!(limit.contains("Over limit"), "{limit}");
    assert!(limit.contains("1,201,500 of 1,000 tokens per day"), "thousands separators and the unit: {limit}");
    assert!(limit.contains("Over by 1,200,500 tokens (120,150 % of the limit)"), "{limit}");
    // 12:00 UTC is 13:00 in Paris: the day ends at midnight there, in 11 hours.
    assert!(limit.contains("resets 2026-03-11 00:00 CET (in 11 h)"), "{limit}");
    let history = section(&page.body, r#"data-testid="alert-history""#, "</table>");
    assert!(history.contains("100 % (limit reached)"), "{history}");
    assert!(history.contains(">Daily tokens</a>"), "each alert names and links its limit: {history}");
    assert!(history.contains("2026-03-10 13:00 CET"), "in the customer's time: {history}");
}

#[tokio::test]
async fn a_refused_limit_form_comes_back_with_everything_typed_and_the_error_beside_its_field() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let meter = app.token_meter().await;
    app.record_tokens("acme", 1).await;
    let csrf = browser.get("/limits").await.csrf();
    let form = |thresholds: &'static str| {
        vec![
            ("_form", "limit-new"),
            ("name", "Monthly tokens"),
            ("limitValue", "36,000"),
            ("period", "month"),
            ("customerId", "acme"),
            ("filterKey", "model"),
            ("filterValue", "gpt-4o"),
            ("alertThresholds", thresholds),
            ("failMode", "closed"),
        ]
    };
    let mut fields = form("50, 80, 150");
    fields.push(("_csrf", &csrf));
    fields.push(("meterId", &meter));
    let refused = browser.post("/limits/create", &fields).await;
    assert_eq!(refused.location(), "/limits");
    let page = browser.get("/limits").await;
    let error = section(&page.body, r#"id="alertThresholds-error""#, "</p>");
    assert!(
        error.contains("Alert thresholds must each be a percentage from 1 to 100 (number 3 in the list is not)."),
        "{error}"
    );
    let new_form = section(&page.body, r#"action="/limits/create""#, "</form>");
    for kept in [
        r#"value="Monthly tokens""#,
        r#"value="36,000""#,
        r#"value="month" selected"#,
        r#"value="acme""#,
        r#"value="model""#,
        r#"value="gpt-4o""#,
        r#"value="50, 80, 150""#,
        r#"value="closed" selected"#,
    ] {
        assert!(new_form.contains(kept), "{kept} kept in {new_form}");
    }
    assert!(new_form.contains(&format!(r#"value="{meter}" selected"#)), "{new_form}");
    let (_, limits) = app.get("/v1/limits").await;
    assert_eq!(limits["data"], json!([]), "nothing was created");

    // The same form, corrected: "36,000" is a number.
    let mut fields = form("50, 80, 100");
    fields.push(("_csrf", &csrf));
    fields.push(("meterId", &meter));
    assert_eq!(browser.post("/limits/create", &fields).await.location(), "/limits");
    let (_, limits) = app.get("/v1/limits").await;
    assert_eq!(limits["data"][0]["limitValue"], 36000);
    assert_eq!(limits["data"][0]["dimensionFilters"], json!({"model": "gpt-4o"}));
    assert!(browser.get("/limits").await.body.contains("36,000 tokens per month on Tokens (for customer acme"));
}

#[tokio::test]
async fn the_limit_form_makes_a_limit_roll_and_refuses_a_period_that_cannot() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let meter = app.token_meter().await;
    let csrf = browser.get("/limits").await.csrf();
    let form = |period: &'static str| {
        vec![
            ("_form", "limit-new"),
            ("name", "Tokens per 24 h"),
            ("limitValue", "1,000"),
            ("period", period),
            ("rolling", "on"),
        ]
    };
    let mut fields = form("annual");
    fields.extend([("_csrf", csrf.as_str()), ("meterId", meter.as_str())]);
    assert_eq!(browser.post("/limits/create", &fields).await.location(), "/limits");
    let page = browser.get("/limits").await;
    let error = section(&page.body, r#"id="rolling-error""#, "</p>");
    assert!(error.contains("at most a month"), "{error}");
    let new_form = section(&page.body, r#"action="/limits/create""#, "</form>");
    assert!(new_form.contains(r#"name="rolling" checked"#), "the box stays ticked: {new_form}");

    let mut fields = form("day");
    fields.extend([("_csrf", csrf.as_str()), ("meterId", meter.as_str())]);
    assert_eq!(browser.post("/limits/create", &fields).await.location(), "/limits");
    let (_, limits) = app.get("/v1/limits").await;
    assert_eq!(limits["data"][0]["rolling"], true, "{limits}");
    let id = limits["data"][0]["id"].as_str().unwrap().to_string();
    assert!(browser.get("/limits").await.body.contains("1,000 tokens in any 24 hours on Tokens"));

    // Saving the edit form with the box unticked makes it count calendar days again.
    let fields = [
        ("_form", format!("limit-{id}")),
        ("_csrf", csrf.clone()),
        ("name", "Tokens per day".to_string()),
        ("limitValue", "1000".to_string()),
        ("period", "day".to_string()),
        ("failMode", "open".to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(&format!("/limits/{id}/update"), &fields).await;
    let (_, limit) = app.get(&format!("/v1/limits/{id}")).await;
    assert_eq!(limit["rolling"], false, "{limit}");
    assert_eq!(limit["name"], "Tokens per day", "{limit}");
}

#[tokio::test]
async fn a_limit_form_never_creates_a_customer_by_typo_nor_drops_half_a_filter() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let meter = app.token_meter().await;
    app.record_tokens("acme", 1).await;
    let csrf = browser.get("/limits").await.csrf();
    let post = |customer: &'static str, create: bool, filter_value: &'static str| {
        let mut fields = vec![
            ("_csrf", csrf.clone()),
            ("_form", "limit-new".to_string()),
            ("name", "Daily".to_string()),
            ("meterId", meter.clone()),
            ("limitValue", "100".to_string()),
            ("period", "day".to_string()),
            ("customerId", customer.to_string()),
            ("filterKey", "model".to_string()),
            ("filterValue", filter_value.to_string()),
        ];
        if create {
            fields.push(("createCustomer", "on".to_string()));
        }
        fields
    };
    let as_refs = |fields: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { fields.clone() };

    let typo = as_refs(&post("acmee", false, "gpt-4o"));
    let typo: Vec<(&str, &str)> = typo.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post("/limits/create", &typo).await;
    let page = browser.get("/limits").await;
    let error = section(&page.body, r#"id="customerId-error""#, "</p>");
    assert!(error.contains("Customer must be an existing customer (there is no acmee)"), "{error}");
    assert_eq!(app.get("/v1/customers/acmee").await.0, StatusCode::NOT_FOUND, "no customer made by a typo");

    let half = as_refs(&post("acme", false, ""));
    let half: Vec<(&str, &str)> = half.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post("/limits/create", &half).await;
    let page = browser.get("/limits").await;
    assert!(page.body.contains(r#"id="filterValue-error""#), "{}", page.body);
    assert!(page.body.contains("Dimension value is required."), "{}", page.body);
    let (_, limits) = app.get("/v1/limits").await;
    assert_eq!(limits["data"], json!([]));

    let on_purpose = as_refs(&post("newco", true, "gpt-4o"));
    let on_purpose: Vec<(&str, &str)> = on_purpose.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post("/limits/create", &on_purpose).await;
    assert_eq!(app.get("/v1/customers/newco").await.0, StatusCode::OK, "created when asked for");
    let page = browser.get("/limits").await;
    assert!(page.body.contains("for customer newco"), "overrides are listed by name: {}", page.body);
}

#[tokio::test]
async fn destructive_actions_ask_for_confirmation_on_a_page_of_their_own() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "Daily tokens", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let limits = browser.get("/limits").await;
    assert!(!limits.body.contains(&format!(r#"action="/limits/{limit}/delete""#)), "no one-click delete");
    assert!(limits.body.contains(&format!(r#"href="/confirm/delete-limit/{limit}""#)));

    let confirm = browser.get(&format!("/confirm/delete-limit/{limit}")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete the limit Daily tokens?"), "{}", confirm.body);
    assert!(confirm.body.contains(&format!(r#"action="/limits/{limit}/delete""#)));
    assert!(confirm.body.contains(r#"href="/limits""#), "a way back");
    assert_eq!(app.get(&format!("/v1/limits/{limit}")).await.0, StatusCode::OK, "looking deletes nothing");

    let deleted = browser.post(&format!("/limits/{limit}/delete"), &[("_csrf", &confirm.csrf())]).await;
    assert_eq!(deleted.location(), "/limits");
    assert_eq!(app.get(&format!("/v1/limits/{limit}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(browser.get(&format!("/confirm/delete-limit/{limit}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get("/confirm/format-disk/x").await.status, StatusCode::NOT_FOUND);
    assert!(browser.get(&format!("/confirm/delete-meter/{meter}")).await.body.contains("Delete the meter Tokens?"));
}

/// A receiver on loopback that answers 503 with a reason until it is fixed, then 204.
async fn flaky_receiver(fixed: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let fixed = fixed.clone();
            async move {
                match fixed.load(Ordering::SeqCst) {
                    true => (axum::http::StatusCode::NO_CONTENT, String::new()),
                    false => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database down for maintenance".into()),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hook")
}

async fn first_delivery_attempts(app: &TestApp, endpoint: &str) -> i64 {
    app.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await.1["data"][0]["attempts"].as_i64().unwrap_or(0)
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_failing_webhook_shows_why_and_retry_all_sends_its_deliveries_again() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let url = flaky_receiver(fixed.clone()).await;
    let (_, endpoint) = app.post("/v1/webhooks", json!({"url": url})).await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    app.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_for("the first attempt", async || first_delivery_attempts(&app, &id).await >= 1).await;

    let page = browser.get(&format!("/webhooks/{id}?status=failing")).await;
    let delivery = section(&page.body, r#"data-testid="delivery""#, "</tr>");
    assert!(delivery.contains("HTTP 503"), "{delivery}");
    assert!(delivery.contains("database down for maintenance"), "the receiver's answer: {delivery}");
    assert!(delivery.contains("retrying in 5 s"), "the next retry: {delivery}");
    assert!(page.body.contains("0 % of 1 attempts succeeded"), "{}", page.body);
    let overview = browser.get("/").await;
    let failing = section(&overview.body, r#"data-testid="failing-webhooks""#, "</section>");
    assert!(failing.contains(&format!(r#"href="/webhooks/{id}?status=failing""#)), "{failing}");
    let delivered = browser.get(&format!("/webhooks/{id}?status=delivered")).await;
    assert!(!delivered.body.contains(r#"data-testid="delivery""#), "the filter hides what failed");

    fixed.store(true, Ordering::SeqCst);
    let csrf = page.csrf();
    let retried = browser.post(&format!("/webhooks/{id}/retry-failed"), &[("_csrf", &csrf)]).await;
    assert_eq!(retried.location(), format!("/webhooks/{id}"));
    let page = browser.get(retried.location()).await;
    assert!(page.body.contains("1 failed delivery queued again with its webhook-id."), "{}", page.body);
    wait_for("the retry", async || first_delivery_attempts(&app, &id).await >= 2).await;
    let page = browser.get(&format!("/webhooks/{id}?status=delivered")).await;
    assert!(page.body.contains(r#"data-testid="delivery""#), "{}", page.body);
    assert!(page.body.contains("50 % of 2 attempts succeeded"), "{}", page.body);
}

#[tokio::test]
async fn usage_exports_carry_their_range_in_the_file_name_and_a_bad_date_comes_back_to_the_form() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    app.token_meter().await;
    app.record_tokens("acme", 600).await;
    app.put("/v1/customers/acme", json!({"name": "Acme, Inc."})).await;

    let form = browser.get("/exports").await;
    assert!(form.body.contains(r#"action="/exports/usage.csv""#), "{}", form.body);
    assert!(form.body.contains("/exports/usage.csv?start=2026-03-01&amp;end=2026-04-01&amp;period=total"));

    let (rows, disposition) =
        usage_export(&mut browser, "_form=usage-export&start=2026-03-01&end=2026-04-01&period=month").await;
    assert!(
        disposition.contains("usage_2026-03-01_2026-03-31_month.csv"),
        "the last day, not the exclusive end: {disposition}"
    );
    assert_eq!(rows[0][..2], ["acme", "Acme, Inc."]);
    assert_eq!(rows[0][8], "600");

    let refused =
        browser.get("/exports/usage.csv?_form=usage-export&start=2026-02-30&end=2026-04-01&period=month").await;
    assert_eq!(refused.location(), "/exports", "not a page of JSON");
    let page = browser.get("/exports").await;
    let error = section(&page.body, r#"id="start-error""#, "</p>");
    assert!(error.contains("From must be a date such as 2026-03-01."), "{error}");
    assert!(page.body.contains(r#"value="2026-02-30""#), "what was typed stays: {}", page.body);
    assert!(page.body.contains(r#"value="month" selected"#));
}

#[tokio::test]
async fn customers_are_created_edited_and_deleted_from_the_dashboard_with_the_apis_rules() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/customers").await.csrf();
    let form = [("_csrf", csrf.as_str()), ("_form", "customer-new"), ("externalId", "acme"), ("name", "Acme")];

    let refused = browser.post("/customers/create", &[form.as_slice(), &[("timezone", "Mars/Olympus")]].concat()).await;
    assert_eq!(refused.location(), "/customers");
    let page = browser.get("/customers").await;
    let error = section(&page.body, r#"id="timezone-error""#, "</p>");
    assert!(error.contains("Timezone must be an IANA timezone such as Europe/Paris."), "{error}");
    assert!(page.body.contains(r#"value="Mars/Olympus""#) && page.body.contains(r#"value="acme""#));
    assert_eq!(app.get("/v1/customers/acme").await.0, StatusCode::NOT_FOUND, "nothing half-written");

    let created = browser.post("/customers/create", &[form.as_slice(), &[("timezone", "Europe/Paris")]].concat()).await;
    assert!(created.location().starts_with("/customers/cust_"), "{}", created.location());
    let (_, customer) = app.get("/v1/customers/acme").await;
    assert_eq!((customer["name"].as_str(), customer["timezone"].as_str()), (Some("Acme"), Some("Europe/Paris")));
    let id = customer["id"].as_str().unwrap().to_string();

    let edit = [
        ("_csrf", csrf.as_str()),
        ("_form", "customer-edit"),
        ("name", "Acme Corporation"),
        ("email", "billing@acme.example"),
        ("timezone", "America/New_York"),
        ("billingCycleStart", "2026-01-15"),
    ];
    assert_eq!(browser.post(&format!("/customers/{id}/update"), &edit).await.location(), format!("/customers/{id}"));
    let (_, customer) = app.get("/v1/customers/acme").await;
    assert_eq!(customer["name"], "Acme Corporation");
    assert_eq!(customer["email"], "billing@acme.example");
    assert_eq!(customer["timezone"], "America/New_York");
    assert_eq!(customer["billingCycleStart"].as_str().map(|d| &d[..10]), Some("2026-01-15"));

    let confirm = browser.get(&format!("/confirm/delete-customer/{id}")).await;
    assert!(confirm.body.contains("Delete the customer acme?"), "{}", confirm.body);
    let deleted = browser.post(&format!("/customers/{id}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(deleted.location(), "/customers");
    assert_eq!(app.get("/v1/customers/acme").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_customer_page_lists_the_reservations_in_flight() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    customers_in_every_state(&app).await;
    let initech = customer_id(&app, "initech").await;
    let reserve = json!({"customerId": "initech", "mode": "reserve", "requested": 250, "ttlSeconds": 60});
    let held = app.check(reserve.clone()).await["reservationId"].as_str().unwrap().to_string();
    let released = app.check(reserve).await["reservationId"].as_str().unwrap().to_string();
    let (status, _) = app.post(&format!("/v1/limits/reservations/{released}/release"), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let page = browser.get(&format!("/customers/{initech}")).await;
    let in_flight = section(&page.body, r#"data-testid="reservations-in-flight""#, "</table>");
    assert!(in_flight.contains(&held) && in_flight.contains("Daily tokens"), "{in_flight}");
    assert!(!in_flight.contains(&released), "a released reservation holds nothing: {in_flight}");

    app.clock.advance(chrono::Duration::seconds(60));
    let page = browser.get(&format!("/customers/{initech}")).await;
    assert!(page.body.contains("No reservation holds capacity now."), "{}", page.body);
}
