//! Alerts and webhooks against a real HTTP receiver on loopback that verifies signatures with
//! its own implementation of the Standard Webhooks algorithm.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{at, default_now, spawn_app, spawn_app_with, TestApp};

#[derive(Clone, Debug)]
struct Received {
    id: String,
    signature_valid: bool,
    body: Value,
    /// The `webhook-signature` header, `webhook-timestamp` and the raw body, to verify with
    /// any secret afterwards.
    signature: String,
    timestamp: String,
    raw: String,
}

impl Received {
    /// Whether one of the delivery's `v1,` signatures was made with `secret`.
    fn signed_with(&self, secret: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", self.id.parse().unwrap());
        headers.insert("webhook-timestamp", self.timestamp.parse().unwrap());
        headers.insert("webhook-signature", self.signature.parse().unwrap());
        verify(secret, &headers, &self.raw)
    }

    fn signature_count(&self) -> usize {
        self.signature.split(' ').filter(|s| s.starts_with("v1,")).count()
    }
}

#[derive(Default)]
struct ReceiverState {
    secret: String,
    /// Answer 500 to this many requests first.
    failures_left: usize,
    /// Never answer.
    hang: bool,
    attempts: usize,
    received: Vec<Received>,
}

/// A webhook receiver on 127.0.0.1:0; stops when the test ends.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self._server.abort();
    }
}

/// Verifies `webhook-signature` as a receiver would: HMAC-SHA256 over `id.timestamp.body` with
/// the base64-decoded secret, compared with every `v1,` signature in the header.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", header("webhook-id"), header("webhook-timestamp"), body).as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header("webhook-signature").split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn receive(State(state): State<Arc<Mutex<ReceiverState>>>, headers: HeaderMap, body: String) -> StatusCode {
    let hang = {
        let mut state = state.lock().unwrap();
        state.attempts += 1;
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        state.hang
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let mut state = state.lock().unwrap();
    let signature_valid = verify(&state.secret, &headers, &body);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    state.received.push(Received {
        id: header("webhook-id"),
        signature_valid,
        body: serde_json::from_str(&body).unwrap(),
        signature: header("webhook-signature"),
        timestamp: header("webhook-timestamp"),
        raw: body,
    });
    StatusCode::NO_CONTENT
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().route("/hook", post(receive)).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state, _server: server }
    }

    /// Registers this receiver with the app and keeps the secret it is given.
    async fn register(&self, app: &TestApp, extra: Value) -> String {
        let mut body = json!({"url": self.url, "description": "test receiver"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, endpoint) = app.post("/v1/webhooks", body).await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        let secret = endpoint["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        self.state.lock().unwrap().secret = secret;
        endpoint["id"].as_str().unwrap().to_string()
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.body["type"] == event_type).collect()
    }
}

/// Waits (moving the app's clock a second per round, so retries come due) until `done`.
async fn wait_until(app: &TestApp, what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        app.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Lets the worker run a few more rounds, for asserting that nothing else arrives.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn limited_meter(app: &TestApp, thresholds: Value) -> String {
    let meter = app.token_meter().await;
    app.create_limit(json!({"name": "Daily tokens", "meterId": meter, "limitValue": 100, "period": "day",
                             "alertThresholds": thresholds}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thresholds_fire_once_per_window_whatever_the_concurrency_and_again_next_window() {
    let app = Arc::new(spawn_app().await);
    let receiver = Receiver::start().await;
    receiver.register(&app, json!({})).await;
    let limit = limited_meter(&app, json!([50, 100])).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.record_tokens("acme", 7).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    app.record_tokens("acme", 1).await;
    wait_until(&app, "both alerts", || {
        !receiver.of_type("limit.threshold_reached").is_empty() && !receiver.of_type("limit.exceeded").is_empty()
    })
    .await;
    settle().await;
    assert_eq!(receiver.of_type("limit.threshold_reached").len(), 1);
    assert_eq!(receiver.of_type("limit.exceeded").len(), 1);
    let exceeded = &receiver.of_type("limit.exceeded")[0].body;
    assert_eq!(exceeded["data"]["limitId"], limit);
    assert_eq!(exceeded["data"]["customerExternalId"], "acme");
    assert_eq!(exceeded["data"]["threshold"], 100);
    assert!(exceeded["id"].as_str().unwrap().starts_with("evt_"));
    assert!(receiver.received().iter().all(|r| r.signature_valid), "every signature verifies");

    app.clock.set(at("2026-03-11T09:00:00Z"));
    app.record_tokens("acme", 120).await;
    wait_until(&app, "the next day's alerts", || receiver.of_type("limit.exceeded").len() == 2).await;
    settle().await;
    assert_eq!(receiver.of_type("limit.threshold_reached").len(), 2);
    assert_eq!(receiver.of_type("limit.exceeded").len(), 2);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_later_with_the_same_webhook_id() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.state.lock().unwrap().failures_left = 2;
    let endpoint = receiver.register(&app, json!({"eventTypes": ["limit.exceeded"]})).await;
    limited_meter(&app, json!([50, 100])).await;
    app.record_tokens("acme", 100).await;
    wait_until(&app, "a successful attempt", || !receiver.received().is_empty()).await;
    settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "only limit.exceeded is subscribed");
    assert_eq!(received[0].body["type"], "limit.exceeded");
    assert!(received[0].signature_valid);
    assert_eq!(receiver.state.lock().unwrap().attempts, 3);

    let (_, log) = app.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await;
    let delivery = &log["data"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["eventId"], received[0].id, "retries keep the webhook-id");
    let codes: Vec<_> = delivery["attemptLog"].as_array().unwrap().iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(codes, vec![json!(500), json!(500), json!(204)]);
}

#[tokio::test]
async fn deliveries_pending_when_the_service_stops_are_sent_after_it_starts_again() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.state.lock().unwrap().failures_left = 1_000;
    receiver.register(&app, json!({})).await;
    limited_meter(&app, json!([50, 100])).await;
    app.record_tokens("acme", 100).await;
    wait_until(&app, "a failed attempt", || receiver.state.lock().unwrap().attempts >= 2).await;
    app.restart().await;
    receiver.state.lock().unwrap().failures_left = 0;
    wait_until(&app, "both events after the restart", || receiver.received().len() == 2).await;
    settle().await;
    let mut types: Vec<_> = receiver.received().iter().map(|r| r.body["type"].as_str().unwrap().to_string()).collect();
    types.sort();
    assert_eq!(types, ["limit.exceeded", "limit.threshold_reached"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_receiver_does_not_slow_recording() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.state.lock().unwrap().hang = true;
    receiver.register(&app, json!({})).await;
    limited_meter(&app, json!([1, 2, 3, 50, 100])).await;
    app.record_tokens("acme", 5).await;
    wait_until(&app, "a delivery hanging in the receiver", || receiver.state.lock().unwrap().attempts >= 1).await;
    let started = Instant::now();
    for _ in 0..30 {
        app.record_tokens("acme", 5).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5), "recording took {:?}", started.elapsed());
}

#[tokio::test]
async fn balance_low_fires_when_crossed_and_again_after_a_credit_lifts_it() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.register(&app, json!({"eventTypes": ["balance.low"]})).await;
    let (_, balance) = app
        .post(
            "/v1/balances",
            json!({"customerId": "acme", "name": "credits", "initialBalance": 100, "lowBalanceThreshold": 20}),
        )
        .await;
    let debit = json!({"customerId": "acme", "name": "credits", "amount": 30});
    app.post("/v1/balances/debit", debit.clone()).await; // 70
    app.post("/v1/balances/debit", debit.clone()).await; // 40
    app.post("/v1/balances/debit", debit.clone()).await; // 10: low
    app.post("/v1/balances/debit", json!({"customerId": "acme", "name": "credits", "amount": 5})).await; // still low
    wait_until(&app, "balance.low", || !receiver.received().is_empty()).await;
    settle().await;
    assert_eq!(receiver.received().len(), 1);
    let low = &receiver.received()[0].body;
    assert_eq!(low["data"]["balanceId"], balance["id"]);
    assert_eq!(low["data"]["availableBalance"], 10, "the debit that crossed the threshold");

    app.post(
        "/v1/balances/credit",
        json!({"customerId": "acme", "name": "credits", "amount": 100, "description": "top-up"}),
    )
    .await;
    app.post("/v1/balances/debit", json!({"customerId": "acme", "name": "credits", "amount": 90})).await;
    wait_until(&app, "the re-armed alert", || receiver.received().len() == 2).await;
}

#[tokio::test]
async fn test_events_arrive_and_can_be_redelivered_with_the_same_id() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = receiver.register(&app, json!({"eventTypes": ["balance.low"]})).await;
    let (status, queued) = app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    wait_until(&app, "the test event", || !receiver.received().is_empty()).await;
    assert_eq!(receiver.received()[0].body["type"], "webhook.test");
    assert_eq!(receiver.received()[0].id, queued["eventId"].as_str().unwrap());

    let (_, log) = app.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await;
    let delivery = log["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = app.post(&format!("/v1/webhooks/{endpoint}/deliveries/{delivery}/redeliver"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until(&app, "the redelivery", || receiver.received().len() == 2).await;
    assert_eq!(receiver.received()[1].id, receiver.received()[0].id);

    let (_, rotated) = app.post(&format!("/v1/webhooks/{endpoint}/rotate-secret"), json!({})).await;
    receiver.state.lock().unwrap().secret = rotated["secret"].as_str().unwrap().to_string();
    app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    wait_until(&app, "a test signed with the new secret", || receiver.received().len() == 3).await;
    assert!(receiver.received()[2].signature_valid);
    let (_, listed) = app.get(&format!("/v1/webhooks/{endpoint}")).await;
    assert!(listed.get("secret").is_none(), "the secret is never shown again");
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.state.lock().unwrap().failures_left = usize::MAX;
    let endpoint = receiver.register(&app, json!({})).await;
    app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    let started = Instant::now();
    loop {
        let (_, current) = app.get(&format!("/v1/webhooks/{endpoint}")).await;
        if current["enabled"] == false {
            assert!(current["disabledReason"].as_str().unwrap().contains("failing"));
            assert!(current["failingSince"].is_string());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never disabled: {current}");
        app.clock.advance(chrono::Duration::minutes(30));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (status, body) = app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, enabled) = app.put(&format!("/v1/webhooks/{endpoint}"), json!({"enabled": true})).await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["failingSince"], Value::Null);
}

#[tokio::test]
async fn a_daily_usage_summary_arrives_once_the_day_closes() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.register(&app, json!({"summaryFrequency": "daily", "eventTypes": ["usage.summary"]})).await;
    app.token_meter().await;
    app.record_tokens("acme", 42).await;
    settle().await;
    assert!(receiver.received().is_empty(), "the day is still open");
    app.clock.set(at("2026-03-11T00:00:05Z"));
    wait_until(&app, "the summary", || !receiver.received().is_empty()).await;
    settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "sent once");
    let summary = &received[0].body["data"];
    assert_eq!(summary["frequency"], "daily");
    assert_eq!(summary["periodStart"], "2026-03-10T00:00:00Z");
    assert_eq!(summary["totals"][0]["customerId"], "acme");
    assert_eq!(summary["totals"][0]["value"], 42);
}

#[tokio::test]
async fn endpoints_are_validated() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({}), "url"),
        (json!({"url": "ftp://example.com"}), "url"),
        (json!({"url": "http://127.0.0.1:9/x", "eventTypes": ["limit.nope"]}), "eventTypes[0]"),
        (json!({"url": "http://127.0.0.1:9/x", "summaryFrequency": "hourly"}), "summaryFrequency"),
    ] {
        let (status, error) = app.post("/v1/webhooks", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["field"], field);
    }
}

/// Sends a test event and waits until the receiver holds `count` deliveries; returns the last.
async fn test_delivery(app: &TestApp, receiver: &Receiver, endpoint: &str, count: usize) -> Received {
    let (status, body) = app.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_until(app, "a test delivery", || receiver.received().len() == count).await;
    receiver.received().pop().unwrap()
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_period_ends() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = receiver.register(&app, json!({})).await;
    let old = receiver.state.lock().unwrap().secret.clone();

    let (status, rotated) = app.post(&format!("/v1/webhooks/{endpoint}/rotate-secret"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // The service's default grace period: 24 hours from the rotation.
    let until = default_now() + chrono::Duration::hours(24);
    assert_eq!(rotated["previousSecretExpiresAt"], json!(until), "{rotated}");
    let (_, read) = app.get(&format!("/v1/webhooks/{endpoint}")).await;
    assert_eq!(read["previousSecretExpiresAt"], json!(until), "the endpoint says until when: {read}");

    // Meanwhile every delivery carries a signature for each secret, each verifying on its own.
    receiver.state.lock().unwrap().secret = new.clone();
    let during = test_delivery(&app, &receiver, &endpoint, 1).await;
    assert_eq!(during.signature_count(), 2, "{}", during.signature);
    assert!(during.signed_with(&new), "signed with the new secret: {}", during.signature);
    assert!(during.signed_with(&old), "and with the old one: {}", during.signature);
    assert!(during.signature.starts_with("v1,"), "the new secret's signature comes first");

    // A receiver still on the old secret verifies it too.
    receiver.state.lock().unwrap().secret = old.clone();
    let still_old = test_delivery(&app, &receiver, &endpoint, 2).await;
    assert!(still_old.signature_valid);

    // Past the grace period only the new secret signs.
    app.clock.set(until + chrono::Duration::seconds(1));
    receiver.state.lock().unwrap().secret = new.clone();
    let after = test_delivery(&app, &receiver, &endpoint, 3).await;
    assert_eq!(after.signature_count(), 1, "{}", after.signature);
    assert!(after.signed_with(&new));
    assert!(!after.signed_with(&old), "the old secret no longer signs: {}", after.signature);
}

#[tokio::test]
async fn the_grace_period_is_a_service_setting_and_a_choice_of_each_rotation() {
    let app = spawn_app_with(|config| config.webhooks.secret_grace = chrono::Duration::hours(2)).await;
    let receiver = Receiver::start().await;
    let endpoint = receiver.register(&app, json!({})).await;
    let rotate = |body: Value| {
        let path = format!("/v1/webhooks/{endpoint}/rotate-secret");
        let app = &app;
        async move { app.post(&path, body).await }
    };

    let (_, by_setting) = rotate(json!({})).await;
    assert_eq!(by_setting["previousSecretExpiresAt"], json!(default_now() + chrono::Duration::hours(2)));

    // A rotation with no body at all uses the setting too.
    let response = app
        .client
        .post(format!("{}/v1/webhooks/{endpoint}/rotate-secret", app.base))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (_, chosen) = rotate(json!({"graceHours": 72})).await;
    assert_eq!(chosen["previousSecretExpiresAt"], json!(default_now() + chrono::Duration::hours(72)));

    // Zero stops the old secret at once: one signature, the new secret's.
    let (_, at_once) = rotate(json!({"graceHours": 0})).await;
    assert!(at_once["previousSecretExpiresAt"].is_null(), "{at_once}");
    let new = at_once["secret"].as_str().unwrap().to_string();
    receiver.state.lock().unwrap().secret = new.clone();
    let delivery = test_delivery(&app, &receiver, &endpoint, 1).await;
    assert_eq!(delivery.signature_count(), 1, "{}", delivery.signature);
    assert!(delivery.signed_with(&new));

    for wrong in [json!({"graceHours": 721}), json!({"graceHours": -1}), json!({"graceHours": 1.5})] {
        let answer = rotate(wrong.clone()).await;
        crate::helpers::assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("graceHours"));
    }
    let (status, _) = app.post("/v1/webhooks/whk_missing/rotate-secret", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
