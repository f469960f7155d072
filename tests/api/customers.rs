//! Customers: CRUD, lookup by id or externalId, pagination and search.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn customers_are_created_read_by_either_id_updated_and_deleted() {
    let app = spawn_app().await;
    let (status, created) = app
        .post("/v1/customers", json!({"externalId": "acme", "name": "Acme", "email": "ops@acme.test",
                                      "metadata": {"plan": "pro"}, "timezone": "Europe/Paris", "billingCycleStart": "2026-01-15"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("cust_"));
    assert_eq!(created["timezone"], "Europe/Paris");
    assert_eq!(created["billingCycleStart"], "2026-01-15");

    let (_, by_id) = app.get(&format!("/v1/customers/{id}")).await;
    let (_, by_external) = app.get("/v1/customers/acme").await;
    assert_eq!(by_id, by_external);
    assert_eq!(by_id["metadata"], json!({"plan": "pro"}));

    let (status, updated) =
        app.put("/v1/customers/acme", json!({"name": "Acme Corp", "metadata": {"plan": "team"}})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Acme Corp");
    assert_eq!(updated["email"], "ops@acme.test", "fields left out are kept");
    assert_eq!(updated["metadata"], json!({"plan": "team"}));

    assert_error(
        &app.post("/v1/customers", json!({"externalId": "acme"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );

    app.record_tokens("acme", 5).await;
    assert_eq!(app.delete("/v1/customers/acme").await.0, StatusCode::NO_CONTENT);
    assert_error(&app.get("/v1/customers/acme").await, StatusCode::NOT_FOUND, "customer_not_found", None);
    assert_eq!(app.event_count().await, 0, "a deleted customer's events go with it");
}

#[tokio::test]
async fn recording_for_an_unknown_customer_creates_it() {
    let app = spawn_app().await;
    let recorded = app.record_tokens("new-customer", 1).await;
    assert!(recorded["id"].as_str().unwrap().starts_with("evt_"));
    let (status, customer) = app.get("/v1/customers/new-customer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(customer["externalId"], "new-customer");
}

#[tokio::test]
async fn customers_are_listed_in_pages_and_searched() {
    let app = spawn_app().await;
    for i in 0..7 {
        let (status, _) =
            app.post("/v1/customers", json!({"externalId": format!("user-{i}"), "name": format!("Name {i}")})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.get(&format!("/v1/customers?limit=3&cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|c| c["externalId"].as_str().unwrap().to_string()));
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(page["hasMore"], true);
                cursor = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("user-{i}")).collect::<Vec<_>>());

    let (_, found) = app.get("/v1/customers?search=NAME%205").await;
    let found: Vec<_> = found["data"].as_array().unwrap().iter().map(|c| c["externalId"].clone()).collect();
    assert_eq!(found, vec![json!("user-5")]);
}
