//! Input the contract calls malformed, control characters, and the OpenAPI document (issue 8,
//! items 5, 8 and 10): every case answers a 4xx naming the field, never a 500, on both
//! databases, and the document describes what the API really does.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, at, spawn_app, TestApp};

async fn document(app: &TestApp) -> Value {
    let (status, doc) = app.request_with_key(reqwest::Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_operation_id_is_unique_and_names_its_operation() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let mut seen = HashSet::new();
    for (method, path, operation) in &ops {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(seen.insert(id.to_string()), "operationId {id} is used twice ({method} {path})");
    }
    for (method, path, id) in [
        ("post", "/v1/meters", "createMeter"),
        ("get", "/v1/meters", "listMeters"),
        ("post", "/v1/meters/{id}/query", "queryMeter"),
        ("post", "/v1/limits/check", "checkLimits"),
        ("post", "/v1/events/record", "recordEvent"),
        ("post", "/v1/events/batch", "recordEventBatch"),
        ("post", "/v1/customers", "createCustomer"),
        ("post", "/v1/balances/credit", "creditBalance"),
        ("post", "/v1/reservations/{id}/commit", "commitReservation"),
        ("get", "/v1/balances/{id}/transactions", "listBalanceTransactions"),
        ("get", "/v1/usage/summary", "getUsageSummary"),
        ("post", "/v1/webhooks", "createWebhook"),
        ("get", "/v1/project", "getProject"),
    ] {
        assert_eq!(doc["paths"][path][method]["operationId"], id, "{method} {path}");
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_states_auth_errors_bounds_and_enums() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut secured = 0;
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        if path == "/v1/openapi.json" {
            continue;
        }
        secured += 1;
        assert!(operation["security"].as_array().is_some_and(|s| !s.is_empty()), "{method} {path} not secured");
        assert!(responses.get("401").is_some(), "{method} {path} does not document 401");
        if operation.get("requestBody").is_some() {
            assert!(responses.get("400").is_some(), "{method} {path} does not document 400");
            assert!(responses.get("413").is_some(), "{method} {path} does not document 413");
        }
        if path.contains('{') {
            assert!(responses.get("404").is_some(), "{method} {path} does not document 404");
        }
    }
    assert!(secured > 40, "{secured}");
    let limit = doc["paths"]["/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .cloned()
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 100, "{limit}");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Period"]["enum"].as_array().unwrap().len(), 8, "{}", schemas["Period"]);
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for reference in refs {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "{reference} points nowhere");
    }
    let required = schemas["EventInput"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("customerId")) && required.contains(&json!("eventType")), "{required:?}");
}

#[tokio::test]
async fn webhooks_and_customer_balances_are_paged_lists() {
    let app = spawn_app().await;
    for i in 0..3 {
        let (status, body) = app.post("/v1/webhooks", json!({"url": format!("https://hooks.example.com/{i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app.post("/v1/balances", json!({"customerId": "acme", "name": format!("b{i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for list in ["/v1/webhooks", "/v1/customers/acme/balances"] {
        let (status, first) = app.get(&format!("{list}?limit=2")).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["data"].as_array().unwrap().len(), 2, "{first}");
        assert_eq!(first["hasMore"], true, "{first}");
        let cursor = first["nextCursor"].as_str().unwrap();
        let (status, second) = app.get(&format!("{list}?limit=2&cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(second["data"].as_array().unwrap().len(), 1, "{second}");
        assert_eq!(second["hasMore"], false, "{second}");
        assert_eq!(second["nextCursor"], Value::Null, "{second}");
        let (_, all) = app.get(list).await;
        assert_eq!(all["data"].as_array().unwrap().len(), 3, "{all}");
        assert_ne!(second["data"][0]["id"], first["data"][0]["id"]);
    }
}

#[tokio::test]
async fn trailing_garbage_after_the_body_is_an_invalid_request_and_records_nothing() {
    let app = spawn_app().await;
    let event = r#"{"customerId": "acme", "eventType": "x", "values": {"n": 1}}"#;
    for body in [
        r#"{"customerId": "acme", "eventType": "x", "values": {"n": 1}} not json"#,
        r#"{"customerId": "acme", "eventType": "x", "values": {"n": 1}}{"customerId": "acme", "eventType": "x"}"#,
        r#"{"customerId": "acme", "eventType": "x"} ]"#,
    ] {
        assert_error(&app.post_raw("/v1/events/record", body).await, StatusCode::BAD_REQUEST, "invalid_request", None);
    }
    assert_error(
        &app.post_raw("/v1/balances", r#"{"customerId": "acme", "name": "credits"} x"#).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        None,
    );
    assert_eq!(app.event_count().await, 0);
    // Trailing whitespace is still one document.
    let (status, body) = app.post_raw("/v1/events/record", Box::leak(format!("{event} \n").into_boxed_str())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn send_big(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
) -> (StatusCode, String, Value) {
    let padding = "x".repeat(3 * 1024 * 1024);
    let body = if content_type == "application/json" {
        format!(r#"{{"customerId": "acme", "eventType": "x", "name": "{padding}"}}"#)
    } else {
        format!("email=a%40b.c&password={padding}")
    };
    let response = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&app.key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oversize_bodies_and_wrong_methods_answer_with_the_json_error_on_every_route() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let json_routes = [
        "/v1/events/record".to_string(),
        "/v1/balances/credit".into(),
        "/v1/balances".into(),
        "/v1/reservations/res_x/commit".into(),
        format!("/v1/meters/{meter}/query"),
        "/v1/limits/check".into(),
    ];
    for path in &json_routes {
        let (status, content, body) = send_big(&app, reqwest::Method::POST, path, "application/json").await;
        assert!(content.starts_with("application/json"), "{path}: {content}");
        assert_error(&(status, body), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None);
    }
    let (status, content, body) =
        send_big(&app, reqwest::Method::POST, "/login", "application/x-www-form-urlencoded").await;
    assert!(content.starts_with("application/json"), "/login: {content} {status}");
    assert_error(&(status, body), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None);
    let answer = app.request(reqwest::Method::PATCH, "/v1/events", None).await;
    assert_error(&answer, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None);
}

#[tokio::test]
async fn the_counts_a_request_may_carry_are_capped_by_name() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let many =
        |n: usize, value: Value| -> Value { Value::Object((0..n).map(|i| (format!("k{i}"), value.clone())).collect()) };
    let cases = [
        ("/v1/events/record", json!({"customerId": "a", "eventType": "x", "values": many(65, json!(1))}), "values"),
        (
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "dimensions": many(33, json!("v"))}),
            "dimensions",
        ),
        (
            "/v1/events/batch",
            json!({"events": [{"customerId": "a", "eventType": "x"}, {"customerId": "a", "eventType": "x", "values": many(65, json!(1))}]}),
            "events[1].values",
        ),
        ("/v1/limits/check", json!({"customerId": "a", "dimensions": many(33, json!("v"))}), "dimensions"),
        (
            "/v1/limits/check",
            json!({"customerId": "a", "balances": (0..21).map(|i| json!({"name": format!("b{i}"), "amount": 1})).collect::<Vec<_>>()}),
            "balances",
        ),
        (
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 10, "period": "day", "dimensionFilters": many(33, json!("v"))}),
            "dimensionFilters",
        ),
        (
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 10, "period": "day", "alertThresholds": (1..=11).collect::<Vec<_>>()}),
            "alertThresholds",
        ),
        (
            "/v1/meters",
            json!({"name": "M", "aggregation": "count", "eventFilter": {"dimensions": many(33, json!("v"))}}),
            "eventFilter.dimensions",
        ),
    ];
    for (path, body, field) in cases {
        assert_error(&app.post(path, body).await, StatusCode::BAD_REQUEST, "invalid_field_value", Some(field));
    }
    // At the caps, everything is accepted.
    let (status, body) = app
        .post(
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "values": many(64, json!(1)), "dimensions": many(32, json!("v"))}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.create_limit(json!({"name": "L", "meterId": meter, "limitValue": 10, "period": "day",
        "dimensionFilters": many(32, json!("v")), "alertThresholds": (1..=10).collect::<Vec<_>>()}))
        .await;
}

#[tokio::test]
async fn garbage_cursors_are_refused_on_every_list() {
    let app = spawn_app().await;
    app.record_tokens("acme", 1).await;
    let (_, balance) = app.post("/v1/balances", json!({"customerId": "acme", "name": "credits"})).await;
    let (_, webhook) = app.post("/v1/webhooks", json!({"url": "https://hooks.example.com/x"})).await;
    let lists = [
        "/v1/customers".to_string(),
        "/v1/events".into(),
        "/v1/meters".into(),
        "/v1/limits".into(),
        "/v1/webhooks".into(),
        "/v1/customers/acme/balances".into(),
        format!("/v1/balances/{}/transactions", balance["id"].as_str().unwrap()),
        format!("/v1/webhooks/{}/deliveries", webhook["id"].as_str().unwrap()),
    ];
    for list in &lists {
        for cursor in ["garbage", "zzz", "1_x", "cust_", "mtr_00000000000000000000000000%25"] {
            let answer = app.get(&format!("{list}?cursor={cursor}")).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("cursor"));
        }
        let (status, page) = app.get(list).await;
        assert_eq!(status, StatusCode::OK, "{list}: {page}");
    }
}

#[tokio::test]
async fn search_matches_percent_and_underscore_literally() {
    let app = spawn_app().await;
    for id in ["a_c", "abc", "50%off", "50xoff", "back\\slash", "backslash"] {
        let (status, body) = app.post("/v1/customers", json!({"externalId": id})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (search, expected) in
        [("_", vec!["a_c"]), ("%25", vec!["50%off"]), ("%5C", vec!["back\\slash"]), ("a_", vec!["a_c"])]
    {
        let (status, page) = app.get(&format!("/v1/customers?search={search}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let found: Vec<&str> =
            page["data"].as_array().unwrap().iter().map(|c| c["externalId"].as_str().unwrap()).collect();
        assert_eq!(found, expected, "search {search}");
    }
}

#[tokio::test]
async fn integer_fields_accept_integral_json_numbers() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let (status, limit) = app
        .post(
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 5.0, "period": "day", "alertThresholds": [50.0, 80]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{limit}");
    assert_eq!(limit["alertThresholds"], json!([50, 80]));
    let (status, balance) = app
        .post(
            "/v1/balances",
            json!({"customerId": "acme", "name": "credits", "initialBalance": 100.0, "minimumBalance": 0.0, "lowBalanceThreshold": 10.0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{balance}");
    assert_eq!(balance["currentBalance"], 100);
    let target = json!({"customerId": "acme", "name": "credits"});
    let with = |extra: Value| {
        let mut body = target.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, credit) = app.post("/v1/balances/credit", with(json!({"amount": 5.0, "description": "top-up"}))).await;
    assert_eq!(status, StatusCode::OK, "{credit}");
    assert_eq!(credit["balance"]["currentBalance"], 105);
    let (status, reserve) = app.post("/v1/balances/reserve", with(json!({"amount": 5, "ttlSeconds": 60.0}))).await;
    assert_eq!(status, StatusCode::OK, "{reserve}");
    assert_error(
        &app.post("/v1/balances/credit", with(json!({"amount": 5.5, "description": "x"}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("amount"),
    );
    // The extremes of i64 are refused, not negated into an overflow.
    for amount in [json!(i64::MIN), json!(i64::MAX), json!(-9.3e18)] {
        assert_error(
            &app.post("/v1/reservations/res_x/commit", json!({"amount": amount})).await,
            StatusCode::BAD_REQUEST,
            "invalid_field_value",
            Some("amount"),
        );
        assert_error(
            &app.post("/v1/balances/debit", with(json!({"amount": amount}))).await,
            StatusCode::BAD_REQUEST,
            "invalid_field_value",
            Some("amount"),
        );
    }
    assert_error(
        &app.post("/v1/balances/reserve", with(json!({"amount": 5, "ttlSeconds": 60.5}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("ttlSeconds"),
    );
    assert_error(
        &app.post(
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 5, "period": "day", "alertThresholds": [50.5]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("alertThresholds[0]"),
    );
}

#[tokio::test]
async fn billing_cycle_start_accepts_a_date_time_and_keeps_its_date() {
    let app = spawn_app().await;
    let (status, created) =
        app.post("/v1/customers", json!({"externalId": "acme", "billingCycleStart": "2026-01-15T10:00:00Z"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["billingCycleStart"], "2026-01-15");
    // The date as written in its own offset, and the API's own answer sent back, both work.
    let (status, updated) =
        app.put("/v1/customers/acme", json!({"billingCycleStart": "2026-02-20T23:30:00-05:00"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["billingCycleStart"], "2026-02-20");
    let (status, again) =
        app.put("/v1/customers/acme", json!({"billingCycleStart": updated["billingCycleStart"]})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_error(
        &app.put("/v1/customers/acme", json!({"billingCycleStart": "2026-02-30T10:00:00Z"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("billingCycleStart"),
    );
}

#[tokio::test]
async fn create_answers_and_later_reads_show_the_same_times() {
    let app = spawn_app().await;
    app.clock.set(at("2026-03-10T12:00:00.123456789Z"));
    let (_, customer) = app.post("/v1/customers", json!({"externalId": "acme"})).await;
    let (_, read) = app.get("/v1/customers/acme").await;
    assert_eq!(customer["createdAt"], read["createdAt"]);
    assert_eq!(customer["createdAt"], "2026-03-10T12:00:00.123Z");
    let meter = app.token_meter().await;
    let (_, meter_read) = app.get(&format!("/v1/meters/{meter}")).await;
    let (_, meters) = app.get("/v1/meters").await;
    assert_eq!(meters["data"][0]["createdAt"], meter_read["createdAt"]);
    assert_eq!(meter_read["createdAt"], "2026-03-10T12:00:00.123Z");
    let (_, limit) =
        app.post("/v1/limits", json!({"name": "L", "meterId": meter, "limitValue": 5, "period": "day"})).await;
    let (_, limit_read) = app.get(&format!("/v1/limits/{}", limit["id"].as_str().unwrap())).await;
    assert_eq!(limit["createdAt"], limit_read["createdAt"]);
    let (_, balance) = app.post("/v1/balances", json!({"customerId": "acme", "name": "credits"})).await;
    let (_, balance_read) = app.get(&format!("/v1/balances/{}", balance["id"].as_str().unwrap())).await;
    assert_eq!(balance["createdAt"], balance_read["createdAt"]);
}

#[tokio::test]
async fn control_characters_in_identifiers_and_names_are_refused_by_name() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let (_, _) = app.post("/v1/balances", json!({"customerId": "acme", "name": "credits"})).await;
    let cases = [
        ("/v1/events/record", json!({"customerId": "a\u{0}b", "eventType": "x"}), "customerId"),
        ("/v1/events/record", json!({"customerId": "a", "eventType": "x\u{1}"}), "eventType"),
        (
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "dimensions": {"model": "g\u{0}"}}),
            "dimensions.model",
        ),
        (
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "idempotencyKey": "k\u{7}"}),
            "idempotencyKey",
        ),
        (
            "/v1/events/batch",
            json!({"events": [{"customerId": "a", "eventType": "x"}, {"customerId": "a\nb", "eventType": "x"}]}),
            "events[1].customerId",
        ),
        ("/v1/customers", json!({"externalId": "ac\u{0}me"}), "externalId"),
        ("/v1/customers", json!({"externalId": "acme2", "name": "Ac\u{1b}[31mme"}), "name"),
        ("/v1/meters", json!({"name": "M\u{0}", "aggregation": "count"}), "name"),
        ("/v1/meters", json!({"name": "M", "aggregation": "count", "description": "d\u{0}"}), "description"),
        (
            "/v1/meters",
            json!({"name": "M", "aggregation": "count", "eventFilter": {"eventType": "x\u{0}"}}),
            "eventFilter.eventType",
        ),
        (
            "/v1/meters",
            json!({"name": "M", "aggregation": "count", "eventFilter": {"dimensions": {"k": "v\u{0}"}}}),
            "eventFilter.dimensions.k",
        ),
        (
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 1, "period": "day", "dimensionFilters": {"k": "\u{0}"}}),
            "dimensionFilters.k",
        ),
        (
            "/v1/limits",
            json!({"name": "L", "meterId": meter, "limitValue": 1, "period": "day", "customerId": "c\u{0}"}),
            "customerId",
        ),
        ("/v1/limits/check", json!({"customerId": "a\u{0}"}), "customerId"),
        ("/v1/balances", json!({"customerId": "acme", "name": "n\u{0}"}), "name"),
        ("/v1/balances", json!({"customerId": "acme", "name": "n", "unit": "u\u{2}"}), "unit"),
        (
            "/v1/balances/credit",
            json!({"customerId": "acme", "name": "credits", "amount": 1, "description": "d\u{0}"}),
            "description",
        ),
        (
            "/v1/balances/debit",
            json!({"customerId": "acme", "name": "credits", "amount": 1, "reference": "r\u{0}"}),
            "reference",
        ),
        ("/v1/webhooks", json!({"url": "https://hooks.example.com/x", "description": "d\u{0}"}), "description"),
    ];
    for (path, body, field) in cases {
        let answer = app.post(path, body).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some(field));
    }
    // A description may span lines.
    let (status, body) = app
        .post(
            "/v1/balances/credit",
            json!({"customerId": "acme", "name": "credits", "amount": 1, "description": "a\nb\tc"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &app.post(
            &format!("/v1/meters/{meter}/query"),
            json!({"startDate": "2026-03-01", "endDate": "2026-03-11", "dimensions": {"k": "\u{0}"}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field_value",
        Some("dimensions.k"),
    );
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn nul_in_free_json_is_refused_by_name() {
    let app = spawn_app().await;
    let answer = app
        .post(
            "/v1/events/record",
            json!({"customerId": "a", "eventType": "x", "properties": {"note": ["ok", "a\u{0}b"]}}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("properties.note[1]"));
    let answer = app.post("/v1/customers", json!({"externalId": "acme", "metadata": {"k\u{0}": 1}})).await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    assert!(answer.1["error"]["field"].as_str().unwrap().starts_with("metadata."), "{}", answer.1);
    // Other control characters are ordinary JSON in free text and are kept as sent.
    let (status, customer) =
        app.post("/v1/customers", json!({"externalId": "acme", "metadata": {"note": "line\nbreak\u{1}"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{customer}");
    let (_, read) = app.get("/v1/customers/acme").await;
    assert_eq!(read["metadata"]["note"], "line\nbreak\u{1}");
    // An escaped backslash followed by the text u0000 is not a NUL.
    let (status, body) = app
        .post_raw("/v1/events/record", r#"{"customerId": "a", "eventType": "x", "properties": {"path": "C:\\u0000"}}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn nul_and_control_characters_in_paths_and_queries_are_bad_requests() {
    let app = spawn_app().await;
    app.record_tokens("acme", 1).await;
    let meter = app.token_meter().await;
    for path in [
        "/v1/customers/ac%00me".to_string(),
        "/v1/customers/ac%00me/usage".into(),
        "/v1/customers/ac%00me/balances".into(),
        "/v1/meters/mtr%00".into(),
        "/v1/limits/lmt%0A".into(),
        "/v1/balances/bal%00".into(),
        "/v1/webhooks/whk%00".into(),
    ] {
        let answer = app.get(&path).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("id"));
    }
    for (path, field) in [
        ("/v1/events?customerId=ac%00me", "customerId"),
        ("/v1/events?eventType=%00", "eventType"),
        ("/v1/customers?search=%00", "search"),
        ("/v1/limits?customerId=%00", "customerId"),
        ("/v1/usage/summary?startDate=2026-03-01%00&endDate=2026-03-11", "startDate"),
    ] {
        assert_error(&app.get(path).await, StatusCode::BAD_REQUEST, "invalid_field_value", Some(field));
    }
    let answer = app.post("/v1/reservations/res%00/commit", json!({"amount": 1})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field_value", Some("id"));
    let answer = app
        .post(
            &format!("/v1/meters/{meter}/query"),
            json!({"startDate": "2026-03-01", "endDate": "2026-03-11", "customerId": "a\u{0}"}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    // Nothing refused above broke the usage reports of the project.
    let (status, usage) = app.get("/v1/customers/acme/usage").await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let (status, summary) = app.get("/v1/usage/summary?startDate=2026-03-01&endDate=2026-03-11").await;
    assert_eq!(status, StatusCode::OK, "{summary}");
}
