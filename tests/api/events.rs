//! Recording: backdating, idempotency, batches, listing.

use serde_json::json;

use crate::helpers::{at, spawn_app};

#[tokio::test]
async fn backdated_events_land_in_the_window_they_belong_to() {
    let app = spawn_app().await; // 2026-03-10 12:00
    let meter = app.token_meter().await;
    let day = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let month = app.create_limit(json!({"name": "m", "meterId": meter, "limitValue": 1000, "period": "month"})).await;
    for (timestamp, tokens) in
        [("2026-03-09T23:59:59Z", 100), ("2026-03-10T00:00:00Z", 10), ("2026-02-27T08:00:00Z", 1000)]
    {
        let (status, body) = app
            .post(
                "/v1/events/record",
                json!({"customerId": "acme", "eventType": "llm.completion",
                                              "values": {"tokens": tokens}, "timestamp": timestamp}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(app.used("acme", &day).await, 10.0);
    assert_eq!(app.used("acme", &month).await, 110.0);
    app.clock.set(at("2026-03-01T00:00:00Z") - chrono::Duration::seconds(1));
    assert_eq!(app.used("acme", &month).await, 1000.0, "February's window holds February's event");
}

#[tokio::test]
async fn a_retried_event_with_the_same_idempotency_key_counts_once() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    let event = json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 40}, "idempotencyKey": "req-1"});
    let (_, first) = app.post("/v1/events/record", event.clone()).await;
    let (status, second) = app.post("/v1/events/record", event).await;
    assert_eq!(status, 200);
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["recorded"], true);
    assert_eq!(app.used("acme", &limit).await, 40.0);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_batch_records_every_event_with_a_result_each_and_counts_duplicates_once() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 100000, "period": "day"})).await;
    let mut events: Vec<_> = (0..250)
        .map(|i| {
            json!({"customerId": format!("c{}", i % 5), "eventType": "llm.completion", "values": {"tokens": 2},
                         "idempotencyKey": format!("k{i}")})
        })
        .collect();
    events.push(
        json!({"customerId": "c0", "eventType": "llm.completion", "values": {"tokens": 2}, "idempotencyKey": "k0"}),
    );
    let (status, body) = app.post("/v1/events/batch", json!({"events": events})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 250);
    assert_eq!(body["duplicates"], 1);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 251);
    assert_eq!(results[250]["duplicate"], true);
    assert_eq!(results[250]["id"], results[0]["id"]);
    assert_eq!(app.used("c0", &limit).await, 100.0);
    assert_eq!(app.event_count().await, 250);
}

#[tokio::test]
async fn events_are_listed_newest_first_with_filters_and_cursor_pagination() {
    let app = spawn_app().await;
    for (i, customer) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        let event_type = if i == 3 { "embedding" } else { "llm.completion" };
        let timestamp = format!("2026-03-0{}T10:00:00Z", i + 1);
        let (status, body) = app
            .post(
                "/v1/events/record",
                json!({"customerId": customer, "eventType": event_type, "values": {"tokens": i},
                                              "dimensions": {"model": "m"}, "properties": {"requestId": i},
                                              "timestamp": timestamp}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, page) = app.get("/v1/events?customerId=a&limit=2").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(page["hasMore"], true);
    assert_eq!(data[0]["timestamp"], "2026-03-04T10:00:00Z");
    assert_eq!(data[0]["customerExternalId"], "a");
    assert_eq!(data[0]["properties"], json!({"requestId": 3}));
    assert_eq!(data[1]["timestamp"], "2026-03-03T10:00:00Z");
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, next) = app.get(&format!("/v1/events?customerId=a&limit=2&cursor={cursor}")).await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["data"][0]["timestamp"], "2026-03-01T10:00:00Z");
    assert_eq!(next["hasMore"], false);
    assert_eq!(next["nextCursor"], json!(null));

    let (_, typed) = app.get("/v1/events?eventType=embedding").await;
    assert_eq!(typed["data"].as_array().unwrap().len(), 1);
    let (_, ranged) = app.get("/v1/events?startDate=2026-03-02&endDate=2026-03-04").await;
    let stamps: Vec<_> = ranged["data"].as_array().unwrap().iter().map(|e| e["timestamp"].clone()).collect();
    assert_eq!(stamps, vec![json!("2026-03-03T10:00:00Z"), json!("2026-03-02T10:00:00Z")]);
}

/// Once a counter is held in memory, records write its next state without reading it back:
/// what they wrote must be what the database would have computed, for every aggregation.
#[tokio::test]
async fn counters_written_from_memory_match_the_database_after_a_restart() {
    let mut app = spawn_app().await; // 2026-03-10 12:00
    let mut limits = Vec::new();
    for (aggregation, field) in
        [("sum", "values.tokens"), ("count", "*"), ("max", "values.tokens"), ("latest", "values.tokens")]
    {
        let meter = app.create_meter(json!({"name": aggregation, "aggregation": aggregation, "field": field})).await;
        let limit = json!({"name": aggregation, "meterId": meter, "limitValue": 1_000_000, "period": "day"});
        limits.push((aggregation, app.create_limit(limit).await));
    }
    // The first record reads the counters; the rest fold into the ones it left in memory, out
    // of time order for `latest`.
    for (tokens, timestamp) in
        [(40, "2026-03-10T11:00:00Z"), (70, "2026-03-10T11:30:00Z"), (10, "2026-03-10T10:00:00Z")]
    {
        let event = json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": tokens}, "timestamp": timestamp});
        let (status, body) = app.post("/v1/events/record", event).await;
        assert_eq!(status, 200, "{body}");
    }
    let expected = [("sum", 120.0), ("count", 3.0), ("max", 70.0), ("latest", 70.0)];
    for ((aggregation, limit), (_, used)) in limits.iter().zip(expected) {
        assert_eq!(app.used("acme", limit).await, used, "{aggregation} from memory");
    }
    app.restart().await;
    for ((aggregation, limit), (_, used)) in limits.iter().zip(expected) {
        assert_eq!(app.used("acme", limit).await, used, "{aggregation} as stored");
    }
}

#[tokio::test]
async fn a_stored_key_in_a_group_recorded_from_memory_counts_once_and_the_rest_is_stored_exactly() {
    let mut app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit =
        app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1_000_000, "period": "day"})).await;
    // Leaves the rules, the customer and its counter in memory, so the batch is written at once
    // until its stored key fails that, and then the whole way.
    let first = json!({"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 1}, "idempotencyKey": "first"});
    let (_, recorded) = app.post("/v1/events/record", first).await;
    let odd = "quote \" backslash \\ émoji 🚀";
    let properties = json!({"note": "tab \t newline \n", "nested": {"ratio": 1.5, "list": [1, null, odd]}});
    let events = json!([
        {"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 5, "cost": 0.000125},
         "dimensions": {"model": odd}, "properties": properties, "idempotencyKey": "new-1"},
        {"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 7}, "idempotencyKey": "first"},
        {"customerId": "acme", "eventType": "llm.completion", "values": {"tokens": 3}},
    ]);
    let (status, body) = app.post("/v1/events/batch", json!({ "events": events })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["count"].as_i64(), body["duplicates"].as_i64()), (Some(2), Some(1)), "{body}");
    assert_eq!(body["results"][1]["duplicate"], true);
    assert_eq!(body["results"][1]["id"], recorded["id"]);
    assert_eq!(app.used("acme", &limit).await, 9.0);
    app.restart().await;
    assert_eq!(app.used("acme", &limit).await, 9.0, "as stored");
    assert_eq!(app.event_count().await, 3);
    let (_, page) = app.get("/v1/events?customerId=acme").await;
    let stored = page["data"].as_array().unwrap();
    let new = stored.iter().find(|e| e["idempotencyKey"] == "new-1").expect("the new event is stored");
    assert_eq!(new["values"], json!({"tokens": 5, "cost": 0.000125}));
    assert_eq!(new["dimensions"], json!({"model": odd}));
    assert_eq!(new["properties"], properties);
    assert_eq!(stored.iter().filter(|e| e["idempotencyKey"].is_null()).count(), 1);
}

#[tokio::test]
async fn usage_survives_a_restart() {
    let mut app = spawn_app().await;
    let meter = app.token_meter().await;
    let limit = app.create_limit(json!({"name": "d", "meterId": meter, "limitValue": 1000, "period": "day"})).await;
    app.record_tokens("acme", 123).await;
    app.restart().await;
    assert_eq!(app.used("acme", &limit).await, 123.0);
}
