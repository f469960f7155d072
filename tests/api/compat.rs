//! Compatibility with Limitry's documented API: the documented requests, sent as documented
//! against the real service, answer with the documented shapes — field names, JSON types,
//! enum values and status codes. Where this service deliberately differs (the signed ledger
//! amount, no default billing anchor), the test asserts the rule the README documents.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

/// What a documented field holds.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    StrOrNull,
    /// A string id starting with this prefix.
    Id(&'static str),
    Num,
    Bool,
    /// An ISO 8601 date-time string.
    DateTime,
    Object,
    Array,
    /// An integer array or null.
    IntsOrNull,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Unix seconds, or null.
    UnixSecondsOrNull,
}

/// Asserts that `object` carries every documented field with the documented kind.
#[track_caller]
fn assert_shape(object: &Value, what: &str, fields: &[(&str, Kind)]) {
    assert!(object.is_object(), "{what}: not an object: {object}");
    for (name, kind) in fields {
        let value = object.get(*name).unwrap_or_else(|| panic!("{what}: no field {name} in {object}"));
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::StrOrNull => value.is_string() || value.is_null(),
            Kind::Id(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix) && s.len() > prefix.len()),
            Kind::Num => value.is_number(),
            Kind::Bool => value.is_boolean(),
            Kind::DateTime => value.as_str().is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            Kind::Object => value.is_object(),
            Kind::Array => value.is_array(),
            Kind::IntsOrNull => {
                value.is_null() || value.as_array().is_some_and(|a| a.iter().all(|v| v.is_i64() || v.is_u64()))
            }
            Kind::OneOf(allowed) => value.as_str().is_some_and(|s| allowed.contains(&s)),
            Kind::UnixSecondsOrNull => value.is_null() || value.as_i64().is_some_and(|s| s > 1_000_000_000),
        };
        assert!(ok, "{what}: field {name} should be {kind:?}, is {value} in {object}");
    }
}

const PERIODS: &[&str] = &["hour", "day", "week", "month", "annual", "all_time"];
const AGGREGATIONS: &[&str] = &["sum", "count", "max", "latest"];

fn meter_shape() -> Vec<(&'static str, Kind)> {
    vec![
        ("id", Kind::Id("mtr_")),
        ("projectId", Kind::Id("proj_")),
        ("name", Kind::Str),
        ("description", Kind::StrOrNull),
        ("aggregation", Kind::OneOf(AGGREGATIONS)),
        ("field", Kind::Str),
        ("eventFilter", Kind::Object),
        ("createdAt", Kind::DateTime),
        ("updatedAt", Kind::DateTime),
    ]
}

fn limit_shape() -> Vec<(&'static str, Kind)> {
    vec![
        ("id", Kind::Id("lmt_")),
        ("projectId", Kind::Id("proj_")),
        ("name", Kind::Str),
        ("meterId", Kind::Id("mtr_")),
        ("limitValue", Kind::Num),
        ("period", Kind::OneOf(PERIODS)),
        ("customerId", Kind::StrOrNull),
        ("dimensionFilters", Kind::Object),
        ("alertThresholds", Kind::IntsOrNull),
        ("createdAt", Kind::DateTime),
        ("updatedAt", Kind::DateTime),
    ]
}

fn customer_shape() -> Vec<(&'static str, Kind)> {
    vec![
        ("id", Kind::Id("cust_")),
        ("projectId", Kind::Id("proj_")),
        ("externalId", Kind::Str),
        ("name", Kind::StrOrNull),
        ("email", Kind::StrOrNull),
        ("timezone", Kind::StrOrNull),
        ("metadata", Kind::Object),
        ("createdAt", Kind::DateTime),
        ("updatedAt", Kind::DateTime),
    ]
}

fn balance_shape() -> Vec<(&'static str, Kind)> {
    vec![
        ("id", Kind::Id("bal_")),
        ("projectId", Kind::Id("proj_")),
        ("customerId", Kind::Id("cust_")),
        ("name", Kind::Str),
        ("unit", Kind::Str),
        ("currentBalance", Kind::Num),
        ("minimumBalance", Kind::Num),
        ("availableBalance", Kind::Num),
        ("dimensionFilters", Kind::Object),
        ("createdAt", Kind::DateTime),
        ("updatedAt", Kind::DateTime),
    ]
}

fn transaction_shape() -> Vec<(&'static str, Kind)> {
    vec![
        ("id", Kind::Id("txn_")),
        ("balanceId", Kind::Id("bal_")),
        ("type", Kind::OneOf(&["credit", "debit", "hold", "commit", "release", "expire"])),
        ("amount", Kind::Num),
        ("description", Kind::StrOrNull),
        ("reference", Kind::StrOrNull),
        ("createdAt", Kind::DateTime),
    ]
}

#[track_caller]
fn assert_list_shape(page: &Value, what: &str) {
    assert_shape(page, what, &[("data", Kind::Array), ("hasMore", Kind::Bool)]);
    assert!(page["nextCursor"].is_null() || page["nextCursor"].is_string(), "{what}: nextCursor in {page}");
}

/// The documented meter, limit, check and record requests, in the order of the guide.
#[tokio::test]
async fn the_documented_meter_limit_check_and_record_requests_answer_in_the_documented_shapes() {
    let app = spawn_app().await;

    let (status, meter) = app
        .post(
            "/v1/meters",
            json!({"name": "Total tokens", "aggregation": "sum", "field": "values.tokens",
                   "description": "Tokens of every completion", "eventFilter": {"eventType": "llm.completion"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{meter}");
    assert_shape(&meter, "meter", &meter_shape());
    assert_eq!(meter["projectId"], "proj_default");
    let meter_id = meter["id"].as_str().unwrap().to_string();
    let (status, updated) = app.put(&format!("/v1/meters/{meter_id}"), json!({"description": "All tokens"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_shape(&updated, "updated meter", &meter_shape());
    let (status, listed) = app.get("/v1/meters").await;
    assert_eq!(status, StatusCode::OK);
    assert_list_shape(&listed, "meter list");
    assert_shape(&listed["data"][0], "listed meter", &meter_shape());

    let (status, limit) = app
        .post(
            "/v1/limits",
            json!({"name": "Daily Token Limit", "meterId": meter_id, "limitValue": 100000, "period": "day",
                   "dimensionFilters": {"team_id": "eng"}, "alertThresholds": [50, 80, 100]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{limit}");
    assert_shape(&limit, "limit", &limit_shape());
    assert_eq!(limit["alertThresholds"], json!([50, 80, 100]));
    assert_eq!(limit["customerId"], Value::Null, "no customerId: a project-wide limit");
    let limit_id = limit["id"].as_str().unwrap().to_string();

    // alertThresholds: null when unset, and null in an update clears them.
    let (status, plain) = app
        .post("/v1/limits", json!({"name": "Monthly", "meterId": meter_id, "limitValue": 5000000, "period": "month"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_eq!(plain["alertThresholds"], Value::Null, "{plain}");
    let (status, cleared) = app.put(&format!("/v1/limits/{limit_id}"), json!({"alertThresholds": null})).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_shape(&cleared, "updated limit", &limit_shape());
    assert_eq!(cleared["alertThresholds"], Value::Null, "{cleared}");
    let (_, fetched) = app.get(&format!("/v1/limits/{limit_id}")).await;
    assert_eq!(fetched["alertThresholds"], Value::Null, "null is stored, not just echoed: {fetched}");
    let (_, renamed) = app.put(&format!("/v1/limits/{limit_id}"), json!({"alertThresholds": [80]})).await;
    let (_, kept) = app.put(&format!("/v1/limits/{limit_id}"), json!({"name": "Daily tokens"})).await;
    assert_eq!((renamed["alertThresholds"].clone(), kept["alertThresholds"].clone()), (json!([80]), json!([80])));
    let (status, listed) = app.get("/v1/limits?customerId=&limit=1").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_list_shape(&listed, "limit list");
    assert_eq!(listed["hasMore"], true);
    assert!(listed["nextCursor"].is_string());

    // An unknown meter is the documented 404, not a validation error.
    let unknown =
        app.post("/v1/limits", json!({"name": "x", "meterId": "mtr_missing", "limitValue": 1, "period": "day"})).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "meter_not_found", None);
    let unknown = app.put(&format!("/v1/limits/{limit_id}"), json!({"meterId": "mtr_missing"})).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "meter_not_found", None);
    assert_error(&app.get("/v1/limits/lmt_missing").await, StatusCode::NOT_FOUND, "limit_not_found", None);
    assert_error(&app.get("/v1/meters/mtr_missing").await, StatusCode::NOT_FOUND, "meter_not_found", None);

    // Record, exactly the documented body.
    let (status, recorded) = app
        .post(
            "/v1/events/record",
            json!({"customerId": "cust_123", "eventType": "llm.completion",
                   "values": {"tokens": 500, "cost_cents": 25, "latency_ms": 1200},
                   "dimensions": {"model": "gpt-4", "provider": "openai", "feature": "chat", "team_id": "eng"},
                   "properties": {}, "timestamp": "2026-03-10T10:30:00Z"}),
        )
        .await;
    // `cust_123` is not one of our internal ids: ours are `cust_` + a ULID, so it is refused
    // as an unknown id rather than silently shadowing one. Applications send their own ids.
    assert_error(&(status, recorded), StatusCode::NOT_FOUND, "customer_not_found", None);
    let (status, recorded) = app
        .post(
            "/v1/events/record",
            json!({"customerId": "user_123", "eventType": "llm.completion",
                   "values": {"tokens": 500, "cost_cents": 25, "latency_ms": 1200},
                   "dimensions": {"model": "gpt-4", "provider": "openai", "feature": "chat", "team_id": "eng"},
                   "properties": {}, "timestamp": "2026-03-10T10:30:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_shape(&recorded, "record answer", &[("id", Kind::Str), ("recorded", Kind::Bool)]);
    assert_eq!(recorded["recorded"], true);
    let (status, batch) = app
        .post(
            "/v1/events/batch",
            json!({"events": [
                {"customerId": "user_123", "eventType": "llm.completion", "values": {"tokens": 100}},
                {"customerId": "user_456", "eventType": "llm.completion", "values": {"tokens": 200}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_shape(&batch, "batch answer", &[("count", Kind::Num)]);
    assert_eq!(batch["count"], 2);

    // Check, exactly the documented body.
    let (status, check) =
        app.post("/v1/limits/check", json!({"customerId": "user_123", "dimensions": {"team_id": "eng"}})).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_shape(&check, "check answer", &[("allowed", Kind::Bool), ("limits", Kind::Array)]);
    assert_eq!(check["allowed"], true);
    let status_of = |id: &str| check["limits"].as_array().unwrap().iter().find(|l| l["id"] == id).cloned().unwrap();
    let daily = status_of(&limit_id);
    assert_shape(
        &daily,
        "limit status",
        &[
            ("id", Kind::Id("lmt_")),
            ("name", Kind::Str),
            ("meterId", Kind::Id("mtr_")),
            ("period", Kind::OneOf(PERIODS)),
            ("limit", Kind::Num),
            ("used", Kind::Num),
            ("remaining", Kind::Num),
            ("exceeded", Kind::Bool),
            ("reset", Kind::UnixSecondsOrNull),
        ],
    );
    // Only the event carrying team_id=eng counts toward the filtered limit.
    assert_eq!((daily["used"].as_f64(), daily["remaining"].as_f64()), (Some(500.0), Some(99500.0)));
    assert_eq!(daily["reset"], chrono::DateTime::parse_from_rfc3339("2026-03-11T00:00:00Z").unwrap().timestamp());
    // Limitry marks customerId optional; our documented rule: usage is per customer, so a
    // check names one.
    let empty = app.post("/v1/limits/check", json!({})).await;
    assert_error(&empty, StatusCode::BAD_REQUEST, "missing_required_field", Some("customerId"));

    // Query: dates optional (the current month), meterName in the answer.
    let (status, value) = app.post(&format!("/v1/meters/{meter_id}/query"), json!({"customerId": "user_123"})).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_shape(
        &value,
        "meter query",
        &[
            ("meterId", Kind::Id("mtr_")),
            ("meterName", Kind::Str),
            ("value", Kind::Num),
            ("aggregation", Kind::OneOf(AGGREGATIONS)),
        ],
    );
    assert_eq!((value["meterName"].as_str(), value["value"].as_f64()), (Some("Total tokens"), Some(600.0)));
    assert_eq!(
        (value["startDate"].as_str(), value["endDate"].as_str()),
        (Some("2026-03-01T00:00:00Z"), Some("2026-04-01T00:00:00Z"))
    );
    let (status, ranged) = app
        .post(
            &format!("/v1/meters/{meter_id}/query"),
            json!({"startDate": "2026-03-10T00:00:00Z", "endDate": "2026-03-10T11:00:00Z", "dimensions": {"model": "gpt-4"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ranged}");
    assert_eq!(ranged["value"].as_f64(), Some(500.0), "only the backdated, gpt-4 event: {ranged}");
    let (_, from_start) =
        app.post(&format!("/v1/meters/{meter_id}/query"), json!({"startDate": "2026-03-10T11:00:00Z"})).await;
    assert_eq!(from_start["value"].as_f64(), Some(300.0), "the end defaults to the month's end: {from_start}");
    let backwards = app.post(&format!("/v1/meters/{meter_id}/query"), json!({"startDate": "2026-05-01"})).await;
    assert_error(&backwards, StatusCode::BAD_REQUEST, "invalid_field_value", Some("endDate"));
}

/// Without dates, a query for a customer with a billing anchor covers its own monthly window.
#[tokio::test]
async fn a_meter_query_without_dates_covers_the_customers_current_monthly_window() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let (status, _) =
        app.post("/v1/customers", json!({"externalId": "anchored", "billingCycleStart": "2026-01-15"})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.record_tokens("anchored", 40).await;
    let (status, value) = app.post(&format!("/v1/meters/{meter}/query"), json!({"customerId": "anchored"})).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["startDate"], "2026-02-15T00:00:00Z");
    assert_eq!(value["endDate"], "2026-03-15T00:00:00Z");
    assert_eq!(value["value"].as_f64(), Some(40.0));
}

#[tokio::test]
async fn the_documented_customer_requests_answer_in_the_documented_shapes() {
    let app = spawn_app().await;
    // billingCycleStart as the documented date-time, in the spellings SDKs write.
    for (external_id, start) in [
        ("dt-z", "2024-03-15T00:00:00Z"),
        ("dt-millis", "2024-03-15T10:30:00.000Z"),
        ("dt-offset", "2024-03-15T10:30:00+02:00"),
        ("dt-naive", "2024-03-15T10:30:00"),
        ("dt-micros", "2024-03-15T10:30:00.123456"),
        ("date", "2024-03-15"),
    ] {
        let (status, customer) = app
            .post(
                "/v1/customers",
                json!({"externalId": external_id, "name": "Acme", "email": "ops@acme.example",
                       "billingCycleStart": start, "timezone": "America/New_York",
                       "metadata": {"plan": "pro", "stripeId": "cus_xxx"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{start}: {customer}");
        assert_shape(&customer, "customer", &customer_shape());
        assert!(customer["billingCycleStart"].as_str().is_some_and(|d| d.starts_with("2024-03-15")), "{customer}");
        assert_eq!(customer["metadata"], json!({"plan": "pro", "stripeId": "cus_xxx"}));
    }
    let bad = app.post("/v1/customers", json!({"externalId": "bad", "billingCycleStart": "15/03/2024"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_field_value", Some("billingCycleStart"));

    // Our documented default: no anchor (null), so monthly windows run from the 1st.
    let (status, plain) = app.post("/v1/customers", json!({"externalId": "plain"})).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_shape(&plain, "customer without options", &customer_shape());
    assert_eq!(plain["billingCycleStart"], Value::Null);
    assert_eq!(plain["metadata"], json!({}));
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "Monthly", "meterId": meter, "limitValue": 10, "period": "month"})).await;
    let reset = app.limit_status("plain", &limit).await["reset"].clone();
    assert_eq!(reset, chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z").unwrap().timestamp());

    // Either id reaches the customer.
    let internal = plain["id"].as_str().unwrap();
    for reference in [internal, "plain"] {
        let (status, found) = app.get(&format!("/v1/customers/{reference}")).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["id"], internal);
    }
    assert_error(&app.get("/v1/customers/nobody").await, StatusCode::NOT_FOUND, "customer_not_found", None);
}

#[tokio::test]
async fn the_documented_balance_requests_answer_in_the_documented_shapes() {
    let app = spawn_app().await;
    let (status, balance) = app
        .post(
            "/v1/balances",
            json!({"customerId": "user_123", "name": "AI Credits", "unit": "credits", "initialBalance": 1000,
                   "minimumBalance": 0, "dimensionFilters": {"model": "gpt-4"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    assert_shape(&balance, "balance", &balance_shape());
    assert_eq!(balance["dimensionFilters"], json!({"model": "gpt-4"}), "dimensionFilters are kept");
    let id = balance["id"].as_str().unwrap().to_string();
    let (_, fetched) = app.get(&format!("/v1/balances/{id}")).await;
    assert_eq!(fetched["dimensionFilters"], json!({"model": "gpt-4"}), "and stored: {fetched}");
    let bad = app
        .post("/v1/balances", json!({"customerId": "user_123", "name": "x", "dimensionFilters": {"bad key": "v"}}))
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);

    // The documented examples of availableBalance with initialBalance 1000.
    for (name, minimum, available) in [("zero", 0, 1000), ("reserve", 100, 900), ("overdraft", -500, 1500)] {
        let (status, b) = app
            .post(
                "/v1/balances",
                json!({"customerId": "user_123", "name": name, "initialBalance": 1000, "minimumBalance": minimum}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{b}");
        assert_eq!(b["availableBalance"], available, "{b}");
        assert_eq!(b["dimensionFilters"], json!({}), "{b}");
    }

    // The customer's balances: documented under `balances`, ours under `data` too.
    let (status, listed) = app.get("/v1/customers/user_123/balances").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_list_shape(&listed, "customer balances");
    let documented = listed["balances"].as_array().unwrap_or_else(|| panic!("no balances in {listed}"));
    assert_eq!(documented.len(), 4);
    assert_eq!(listed["balances"], listed["data"]);
    for b in documented {
        assert_shape(
            b,
            "listed balance",
            &[
                ("id", Kind::Id("bal_")),
                ("name", Kind::Str),
                ("unit", Kind::Str),
                ("currentBalance", Kind::Num),
                ("minimumBalance", Kind::Num),
                ("availableBalance", Kind::Num),
            ],
        );
    }

    // Sufficiency: the documented flat fields, and ours.
    let (status, check) = app
        .post(
            "/v1/balances/check",
            json!({"customerId": "user_123", "name": "AI Credits", "amount": 1200, "dimensions": {"model": "gpt-4"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_shape(
        &check,
        "balance check",
        &[
            ("balanceId", Kind::Id("bal_")),
            ("name", Kind::Str),
            ("unit", Kind::Str),
            ("currentBalance", Kind::Num),
            ("minimumBalance", Kind::Num),
            ("requestedAmount", Kind::Num),
            ("sufficient", Kind::Bool),
            ("availableBalance", Kind::Num),
            ("balance", Kind::Object),
        ],
    );
    assert_eq!(
        (&check["balanceId"], &check["name"], &check["unit"], &check["currentBalance"], &check["requestedAmount"]),
        (&json!(id), &json!("AI Credits"), &json!("credits"), &json!(1000), &json!(1200))
    );
    assert_eq!((&check["sufficient"], &check["availableBalance"]), (&json!(false), &json!(1000)));

    let (status, credit) = app
        .post(
            "/v1/balances/credit",
            json!({"customerId": "user_123", "name": "AI Credits", "amount": 500, "description": "Top-up", "reference": "stripe_pi_123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{credit}");
    assert_shape(
        &credit,
        "credit",
        &[("success", Kind::Bool), ("transaction", Kind::Object), ("balance", Kind::Object)],
    );
    assert_shape(&credit["transaction"], "credit transaction", &transaction_shape());
    assert_shape(&credit["balance"], "credited balance", &balance_shape());
    assert_eq!((&credit["transaction"]["type"], &credit["transaction"]["amount"]), (&json!("credit"), &json!(500)));
    let missing =
        app.post("/v1/balances/credit", json!({"customerId": "user_123", "name": "AI Credits", "amount": 5})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "missing_required_field", Some("description"));

    let (status, debit) = app
        .post(
            "/v1/balances/debit",
            json!({"customerId": "user_123", "name": "AI Credits", "amount": 100, "description": "API usage", "reference": "evt_xyz789"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{debit}");
    assert_eq!(debit["success"], true);
    let transaction = &debit["transaction"];
    assert_shape(transaction, "debit transaction", &transaction_shape());
    assert_eq!(transaction["type"], "debit");
    // Our rule: `amount` is the signed change (a balance is the sum of its ledger);
    // `unsignedAmount` is the positive figure Limitry documents as `amount`.
    assert_eq!((&transaction["amount"], &transaction["unsignedAmount"]), (&json!(-100), &json!(100)));
    assert_eq!(&credit["transaction"]["unsignedAmount"], &json!(500));
    assert_eq!(debit["balance"]["currentBalance"], 1400);
    let (_, ledger) = app.get(&format!("/v1/balances/{id}/transactions")).await;
    let sum: i64 = ledger["data"].as_array().unwrap().iter().map(|t| t["amount"].as_i64().unwrap()).sum();
    assert_eq!(sum, 1400, "the balance equals the sum of its ledger: {ledger}");

    let (status, short) = app
        .post(
            "/v1/balances/debit",
            json!({"customerId": "user_123", "name": "AI Credits", "amount": 5000, "description": "Big job"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a refused debit is an answer: {short}");
    assert_shape(&short, "refused debit", &[("success", Kind::Bool), ("error", Kind::Str)]);
    assert_eq!(short["success"], false);
    assert!(short.get("transaction").is_none_or(Value::is_null), "{short}");
}

/// A webhook receiver on loopback that keeps every body it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(serde_json::from_str::<Value>(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies, server)
}

async fn wait_for_bodies(app: &TestApp, bodies: &Arc<Mutex<Vec<Value>>>, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let seen = bodies.lock().unwrap().clone();
        if seen.len() >= count {
            return seen;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "only {} webhooks arrived: {seen:?}", seen.len());
        app.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn threshold_webhooks_carry_the_documented_fields_beside_the_standard_envelope() {
    let app = spawn_app().await;
    let (url, bodies, server) = receiver().await;
    let (status, endpoint) = app.post("/v1/webhooks", json!({"url": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let meter = app.token_meter().await;
    let limit = app
        .create_limit(json!({"name": "Monthly token limit", "meterId": meter, "limitValue": 100000,
                             "period": "month", "alertThresholds": [80, 100]}))
        .await;
    app.record_tokens("user_123", 82000).await;
    let seen = wait_for_bodies(&app, &bodies, 1).await;
    server.abort();
    let body = &seen[0];
    assert_shape(
        body,
        "webhook body",
        &[
            ("id", Kind::Id("evt_")),
            ("type", Kind::OneOf(&["limit.threshold_reached"])),
            ("createdAt", Kind::DateTime),
            ("event", Kind::OneOf(&["limit.threshold_reached", "limit.exceeded"])),
            ("timestamp", Kind::DateTime),
            ("data", Kind::Object),
        ],
    );
    assert_eq!((&body["event"], &body["timestamp"]), (&body["type"], &body["createdAt"]));
    let data = &body["data"];
    assert_shape(
        data,
        "threshold data",
        &[
            ("customerId", Kind::Id("cust_")),
            ("limitId", Kind::Id("lmt_")),
            ("limitName", Kind::Str),
            ("threshold", Kind::Num),
            ("limit", Kind::Num),
            ("currentUsage", Kind::Num),
            ("percentage", Kind::Num),
            ("remaining", Kind::Num),
            ("period", Kind::OneOf(PERIODS)),
            ("windowStart", Kind::DateTime),
            ("windowEnd", Kind::DateTime),
        ],
    );
    assert_eq!(data["limitId"], limit);
    assert_eq!(
        (&data["threshold"], &data["limit"], &data["currentUsage"], &data["percentage"], &data["remaining"]),
        (&json!(80), &json!(100000), &json!(82000), &json!(82), &json!(18000))
    );
    assert_eq!(
        (&data["windowStart"], &data["windowEnd"]),
        (&json!("2026-03-01T00:00:00Z"), &json!("2026-04-01T00:00:00Z"))
    );
    assert_eq!(data["used"], data["currentUsage"], "our own name for the same figure stays");
}

#[tokio::test]
async fn the_event_list_honours_the_sdk_guides_snake_case_filters_and_refuses_unknown_ones() {
    let app = spawn_app().await;
    for (customer, event_type, at) in [
        ("alice", "llm.completion", "2026-03-10T08:00:00Z"),
        ("alice", "llm.embedding", "2026-03-10T09:00:00Z"),
        ("bob", "llm.completion", "2026-03-10T10:00:00Z"),
    ] {
        let (status, body) = app
            .post(
                "/v1/events/record",
                json!({"customerId": customer, "eventType": event_type, "values": {"tokens": 1}, "timestamp": at}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let listed = |query: &'static str| {
        let app = &app;
        async move {
            let (status, page) = app.get(&format!("/v1/events?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            assert_list_shape(&page, query);
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["timestamp"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("customer_id=alice").await, ["2026-03-10T09:00:00Z", "2026-03-10T08:00:00Z"]);
    assert_eq!(listed("event_type=llm.completion").await, ["2026-03-10T10:00:00Z", "2026-03-10T08:00:00Z"]);
    assert_eq!(listed("start_date=2026-03-10T08:30:00Z&end_date=2026-03-10T09:30:00Z").await, ["2026-03-10T09:00:00Z"]);
    assert_eq!(listed("customer_id=alice&customerId=alice&event_type=llm.completion").await, ["2026-03-10T08:00:00Z"]);
    let event = &app.get("/v1/events?customerId=bob").await.1["data"][0];
    assert_shape(
        event,
        "event",
        &[
            ("id", Kind::Str),
            ("customerId", Kind::Id("cust_")),
            ("eventType", Kind::Str),
            ("values", Kind::Object),
            ("dimensions", Kind::Object),
        ],
    );

    let conflicting = app.get("/v1/events?customer_id=alice&customerId=bob").await;
    assert_error(&conflicting, StatusCode::BAD_REQUEST, "invalid_field_value", Some("customerId"));
    let unknown = app.get("/v1/events?model=gpt-4").await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_field_value", Some("model"));
}

#[tokio::test]
async fn errors_have_the_documented_body_inside_and_outside_v1() {
    let app = spawn_app().await;
    let missing = app.request_with_key(reqwest::Method::POST, "/v1/limits/check", Some(json!({})), None).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "missing_api_key", None);
    let invalid =
        app.request_with_key(reqwest::Method::POST, "/v1/limits/check", Some(json!({})), Some("limitry_sk_nope")).await;
    assert_error(&invalid, StatusCode::UNAUTHORIZED, "invalid_api_key", None);
    assert_error(
        &app.post_raw("/v1/events/record", "{not json").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        None,
    );
    let missing_field = app.post("/v1/events/record", json!({"eventType": "x"})).await;
    assert_error(&missing_field, StatusCode::BAD_REQUEST, "missing_required_field", Some("customerId"));
    // Paths outside /v1, as a client with a base URL missing /v1 sends them: JSON, not text.
    for path in ["/limits/check", "/nothing/here", "/v2/limits"] {
        let answer = app.request(reqwest::Method::POST, path, Some(json!({}))).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "route_not_found", None);
    }
    assert_error(&app.get("/v1/nothing").await, StatusCode::NOT_FOUND, "route_not_found", None);
}

#[tokio::test]
async fn client_tokens_follow_the_documented_request_and_routes() {
    let app = spawn_app().await;
    let (status, created) = app
        .post(
            "/v1/client-tokens",
            json!({"publicMetadata": {"customerId": "user_123", "plan": "pro"}, "serverContext": {"creditLimit": 5}, "ttlSeconds": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_shape(
        &created,
        "client token",
        &[("token", Kind::Id("limitry_ct_")), ("id", Kind::Id("ct_")), ("expiresAt", Kind::DateTime)],
    );
    let token = created["token"].as_str().unwrap();
    let too_long = app.post("/v1/client-tokens", json!({"context": {"customerId": "u"}, "ttlSeconds": 86401})).await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, "invalid_field_value", Some("ttlSeconds"));
    for path in ["/v1/client/token", "/v1/client/context", "/client/token", "/client/context"] {
        let (status, read) = app.request_with_key(reqwest::Method::GET, path, None, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {read}");
        assert_eq!(read["projectId"], "proj_default", "{path}: {read}");
        assert_eq!(read["context"]["plan"], "pro", "{path}: {read}");
        assert!(read.get("serverContext").is_none(), "the browser never sees the server context: {read}");
    }
    let (status, check) =
        app.request_with_key(reqwest::Method::POST, "/client/limits/check", Some(json!({})), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_shape(&check, "client check", &[("allowed", Kind::Bool), ("limits", Kind::Array)]);
    let record = json!({"eventType": "llm.completion", "values": {"tokens": 3}});
    let (status, recorded) =
        app.request_with_key(reqwest::Method::POST, "/client/events/record", Some(record), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_eq!(recorded["recorded"], true);
    let (status, _) = app.request_with_key(reqwest::Method::GET, "/client/events/summary", None, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let reaching_out = app.request_with_key(reqwest::Method::GET, "/v1/limits", None, Some(token)).await;
    assert_error(&reaching_out, StatusCode::FORBIDDEN, "insufficient_permissions", None);
}

#[tokio::test]
async fn a_personal_access_token_reaches_the_project_named_by_x_project_until_revoked() {
    use limitry::auth::personal_tokens::create_personal_token;
    let app = spawn_app().await;
    let db = app.engine().db();
    let operator = limitry::auth::operators::create_first_operator(db, "ops@example.com", "correct horse battery", 0)
        .await
        .unwrap()
        .unwrap();
    let token = create_personal_token(db, &operator.id, "scripts", 0).await.unwrap();
    assert!(token.secret.starts_with("limitry_pat_"));
    let other =
        db.create_project(&limitry::domain::projects::NewProject::parse("Staging", "UTC").unwrap(), 0).await.unwrap();

    let send = |project: Option<&str>, path: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(
                if body.is_some() { reqwest::Method::POST } else { reqwest::Method::GET },
                format!("{}{path}", app.base),
            )
            .bearer_auth(&token.secret);
        if let Some(project) = project {
            request = request.header("X-Project", project);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, project) = send(Some("proj_default"), "/v1/project", None).await;
    assert_eq!((status, &project["id"]), (StatusCode::OK, &json!("proj_default")), "{project}");
    let (status, project) = send(Some(&other.id), "/v1/project", None).await;
    assert_eq!((status, &project["id"]), (StatusCode::OK, &json!(other.id)), "{project}");
    // Objects land in the project the header names.
    let (status, meter) =
        send(Some(&other.id), "/v1/meters", Some(json!({"name": "Calls", "aggregation": "count", "field": "*"}))).await;
    assert_eq!((status, &meter["projectId"]), (StatusCode::CREATED, &json!(other.id)), "{meter}");
    assert_eq!(app.get("/v1/meters").await.1["data"], json!([]), "the default project's key does not see it");

    assert_error(
        &send(None, "/v1/project", None).await,
        StatusCode::BAD_REQUEST,
        "missing_required_field",
        Some("X-Project"),
    );
    assert_error(
        &send(Some("proj_missing"), "/v1/project", None).await,
        StatusCode::NOT_FOUND,
        "project_not_found",
        None,
    );

    db.revoke_personal_token(&operator.id, &token.id, 1).await.unwrap();
    assert_error(
        &send(Some("proj_default"), "/v1/project", None).await,
        StatusCode::UNAUTHORIZED,
        "expired_api_key",
        None,
    );
    let forged = app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some("limitry_pat_forged")).await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "invalid_api_key", None);
}
