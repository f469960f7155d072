//! The dashboard over HTTP, for what spans projects and calendars: the project a session
//! manages (switched and created in the dashboard), the "New balance" form going through the
//! API's own checks, and usage exports split in each customer's timezone. (Browser flows live
//! in end2end/.)

use limitry::auth::keys::create_key;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::dashboard::{csv_rows, usage_export, Browser, PASSWORD};
use crate::helpers::{at, spawn_app, TestApp};

/// The options of the header's project switcher, and the one selected.
fn switcher(page: &str) -> (Vec<String>, Option<String>) {
    let start = page.find(r#"id="project-switch""#).unwrap_or_else(|| panic!("no project switcher in {page}"));
    let select = &page[start..page[start..].find("</select>").map_or(page.len(), |end| start + end)];
    let mut names = Vec::new();
    let mut selected = None;
    for option in select.split("<option").skip(1) {
        let name = option.split('>').nth(1).unwrap_or_default().split('<').next().unwrap_or_default().to_string();
        if option.split('>').next().unwrap_or_default().contains("selected") {
            selected = Some(name.clone());
        }
        names.push(name);
    }
    (names, selected)
}

async fn project_id_named(app: &TestApp, name: &str) -> String {
    let projects = app.engine().db().projects().await.unwrap();
    projects.into_iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no project {name}")).id
}

#[tokio::test]
async fn a_project_created_in_the_dashboard_is_the_one_its_session_then_manages() {
    let app = spawn_app().await;
    app.create_meter(json!({"name": "Default tokens", "aggregation": "sum", "field": "values.tokens"})).await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let overview = browser.get("/").await;
    assert_eq!(switcher(&overview.body), (vec!["Default project".to_string()], Some("Default project".to_string())));

    // A refused project comes back with what was typed and the reason beside its field.
    let csrf = browser.get("/projects").await.csrf();
    let refused =
        browser.post("/projects/create", &[("_csrf", &csrf), ("name", "Staging"), ("timezone", "Mars/Olympus")]).await;
    assert_eq!(refused.location(), "/projects");
    let form = browser.get("/projects").await;
    assert!(form.body.contains("Timezone must be an IANA timezone such as Europe/Paris."), "{}", form.body);
    assert!(form.body.contains(r#"value="Mars/Olympus""#) && form.body.contains(r#"value="Staging""#));
    assert_eq!(app.engine().db().projects().await.unwrap().len(), 1, "nothing was created");

    let created =
        browser.post("/projects/create", &[("_csrf", &csrf), ("name", "Staging"), ("timezone", "Europe/Paris")]).await;
    assert_eq!((created.status, created.location()), (StatusCode::SEE_OTHER, "/"));
    let staging = project_id_named(&app, "Staging").await;
    let project = app.engine().db().project(&staging).await.unwrap().unwrap();
    assert_eq!(project.timezone, chrono_tz::Europe::Paris);
    let overview = browser.get("/").await;
    assert!(overview.body.contains("Project Staging created. You are now managing it."));
    assert_eq!(switcher(&overview.body).1.as_deref(), Some("Staging"));

    // Pages show the chosen project only, and forms write into it.
    let meters = browser.get("/meters").await;
    assert!(!meters.body.contains("Default tokens"), "another project's meter: {}", meters.body);
    let made = browser
        .post(
            "/meters/create",
            &[("_csrf", &csrf), ("name", "Staging tokens"), ("aggregation", "sum"), ("field", "values.tokens")],
        )
        .await;
    assert_eq!(made.location(), "/meters");
    let staging_meters = app.engine().db().all_meters(&staging).await.unwrap();
    assert_eq!(staging_meters.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["Staging tokens"]);
    let (_, default_meters) = app.get("/v1/meters").await;
    assert_eq!(default_meters["data"].as_array().unwrap().len(), 1, "{default_meters}");

    // API keys made and listed on /api-keys are the chosen project's.
    browser.post("/api-keys/create", &[("_csrf", &csrf), ("name", "staging-ci")]).await;
    let keys = browser.get("/api-keys").await;
    assert!(keys.body.contains("staging-ci") && !keys.body.contains(">test<"), "{}", keys.body);
    let staging_keys = app.engine().db().keys(Some(&staging)).await.unwrap();
    assert_eq!(staging_keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["staging-ci"]);

    // Another session keeps managing the default project.
    let mut colleague = Browser::new(&app);
    assert_eq!(colleague.log_in(PASSWORD).await.location(), "/");
    assert!(colleague.get("/meters").await.body.contains("Default tokens"));

    // Switching back lands on the same section of the other project.
    let switched =
        browser.post("/projects/switch", &[("_csrf", &csrf), ("project", "proj_default"), ("back", "/meters")]).await;
    assert_eq!(switched.location(), "/meters");
    let meters = browser.get("/meters").await;
    assert!(meters.body.contains("Now managing the project Default project."));
    assert!(meters.body.contains("Default tokens") && !meters.body.contains("Staging tokens"));
    assert_eq!(switcher(&meters.body).0, ["Default project", "Staging"]);
}

#[tokio::test]
async fn switching_needs_the_forms_token_and_a_project_that_exists() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/").await.csrf();
    let forged = browser.post("/projects/switch", &[("_csrf", "forged"), ("project", "proj_default")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A record page of the old project is not where a switch lands, nor anywhere outside.
    let unknown = browser
        .post("/projects/switch", &[("_csrf", &csrf), ("project", "proj_nope"), ("back", "/customers/cust_1")])
        .await;
    assert_eq!(unknown.location(), "/customers");
    assert!(browser.get("/customers").await.body.contains("project not found: proj_nope"));
    let outside = browser
        .post("/projects/switch", &[("_csrf", &csrf), ("project", "proj_default"), ("back", "//evil.example")])
        .await;
    assert_eq!(outside.location(), "/");
}

#[tokio::test]
async fn the_new_balance_form_refuses_what_the_api_refuses_in_the_same_words_and_keeps_the_values() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let (_, customer) = app.post("/v1/customers", json!({"externalId": "acme"})).await;
    let customer = customer["id"].as_str().unwrap().to_string();
    let page = format!("/customers/{customer}");
    let create = format!("/customers/{customer}/balances/create");
    let csrf = browser.get(&page).await.csrf();

    let (status, api) =
        app.post("/v1/balances", json!({"customerId": "acme", "name": "credits", "initialBalance": -5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api["error"]["message"], "invalid value for initialBalance: must not be negative");
    let fields = [
        ("_csrf", csrf.as_str()),
        ("_form", "balance-new"),
        ("name", "credits"),
        ("unit", "tokens"),
        ("initialBalance", "-5"),
        ("minimumBalance", "-1,000"),
        ("lowBalanceThreshold", "500"),
    ];
    let refused = browser.post(&create, &fields).await;
    assert_eq!(refused.location(), page);
    let form = browser.get(&page).await;
    assert!(form.body.contains(r#"id="initialBalance-error""#), "{}", form.body);
    assert!(form.body.contains("Initial balance must not be negative."), "{}", form.body);
    for value in ["credits", "tokens", "-5", "-1,000", "500"] {
        assert!(form.body.contains(&format!(r#"value="{value}""#)), "{value} is kept: {}", form.body);
    }
    assert!(app.engine().db().customer_balances("proj_default", &customer).await.unwrap().is_empty());

    let mut fixed = fields;
    fixed[4] = ("initialBalance", "36,000");
    let created = browser.post(&create, &fixed).await;
    assert_eq!(created.location(), page);
    assert!(browser.get(&page).await.body.contains("Balance credits created."));
    let (_, balances) = app.get("/v1/customers/acme/balances").await;
    let balance = &balances["data"][0];
    assert_eq!(
        (&balance["unit"], &balance["currentBalance"], &balance["minimumBalance"], &balance["lowBalanceThreshold"]),
        (&json!("tokens"), &json!(36000), &json!(-1000), &json!(500)),
        "{balance}"
    );

    // The same name twice is refused beside the name.
    browser.post(&create, &fixed).await;
    let again = browser.get(&page).await;
    assert!(
        again.body.contains("Name must be new for this customer, who already has a balance named credits."),
        "{}",
        again.body
    );
}

/// A customer of the default project in `timezone` (none: the project's, UTC).
async fn customer(app: &TestApp, external_id: &str, name: &str, timezone: Option<&str>) {
    let (status, body) =
        app.post("/v1/customers", json!({"externalId": external_id, "name": name, "timezone": timezone})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn record_at(app: &TestApp, customer: &str, tokens: i64, timestamp: &str) {
    let (status, body) = app
        .post(
            "/v1/events/record",
            json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": tokens}, "timestamp": timestamp}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn record_model(app: &TestApp, customer: &str, tokens: i64, model: &str, timestamp: &str) {
    let body = json!({"customerId": customer, "eventType": "llm.completion", "values": {"tokens": tokens},
                      "dimensions": {"model": model}, "timestamp": timestamp});
    let (status, answer) = app.post("/v1/events/record", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn row(rows: &[Vec<String>], customer: &str, period_start: &str) -> Vec<String> {
    rows.iter()
        .find(|r| r[0] == customer && r[6] == period_start)
        .unwrap_or_else(|| panic!("no row of {customer} from {period_start} in {rows:?}"))
        .clone()
}

#[tokio::test]
async fn the_usage_export_splits_months_where_each_customer_lives() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    customer(&app, "tokyo", "Tokyo KK", Some("Asia/Tokyo")).await;
    customer(&app, "nyc", "NYC Inc", Some("America/New_York")).await;
    customer(&app, "plain", "Plain Ltd", None).await;
    // 16:00 UTC on February 28th is already March 1st in Tokyo; 02:00 UTC on March 1st is
    // still February 28th in New York.
    record_at(&app, "tokyo", 2, "2026-02-20T00:00:00Z").await;
    record_at(&app, "tokyo", 20, "2026-02-28T16:00:00Z").await;
    record_at(&app, "nyc", 10, "2026-03-01T02:00:00Z").await;
    record_at(&app, "nyc", 1, "2026-03-05T12:00:00Z").await;
    record_at(&app, "plain", 30, "2026-02-28T16:00:00Z").await;
    record_at(&app, "plain", 3, "2026-03-01T02:00:00Z").await;

    let (rows, disposition) = usage_export(&mut browser, "start=2026-02-01&end=2026-04-01&period=month").await;
    assert_eq!(disposition, r#"attachment; filename="usage_2026-02-01_2026-03-31_month.csv""#);
    assert_eq!(rows.len(), 6, "{rows:?}");
    let tokyo_march = row(&rows, "tokyo", "2026-03-01T00:00:00+09:00");
    assert_eq!(
        tokyo_march,
        [
            "tokyo",
            "Tokyo KK",
            meter.as_str(),
            "Tokens",
            "sum",
            "Asia/Tokyo",
            "2026-03-01T00:00:00+09:00",
            "2026-04-01T00:00:00+09:00",
            "20"
        ]
    );
    assert_eq!(row(&rows, "tokyo", "2026-02-01T00:00:00+09:00")[8], "2");
    assert_eq!(row(&rows, "nyc", "2026-02-01T00:00:00-05:00")[8], "10");
    // New York's March ends in summer time.
    let nyc_march = row(&rows, "nyc", "2026-03-01T00:00:00-05:00");
    assert_eq!((nyc_march[7].as_str(), nyc_march[8].as_str()), ("2026-04-01T00:00:00-04:00", "1"));
    let plain_february = row(&rows, "plain", "2026-02-01T00:00:00+00:00");
    assert_eq!(
        (plain_february[1].as_str(), plain_february[5].as_str(), plain_february[8].as_str()),
        ("Plain Ltd", "UTC", "30")
    );
    assert_eq!(row(&rows, "plain", "2026-03-01T00:00:00+00:00")[8], "3");
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["nyc", "nyc", "plain", "plain", "tokyo", "tokyo"]
    );

    // The API summary keeps its UTC months.
    let (_, summary) = app.get("/v1/usage/summary?startDate=2026-02-01&endDate=2026-04-01&period=month").await;
    let tokyo_february = summary["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customerId"] == "tokyo" && r["periodStart"] == "2026-02-01T00:00:00Z")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(tokyo_february["value"], 22, "{summary}");

    // One day as a total: March 1st from local midnight to local midnight.
    let (rows, disposition) = usage_export(&mut browser, "start=2026-03-01&end=2026-03-02").await;
    assert_eq!(disposition, r#"attachment; filename="usage_2026-03-01_2026-03-01.csv""#);
    let values: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[8].as_str())).collect();
    assert_eq!(values, [("plain", "3"), ("tokyo", "20")], "New York's March 1st has no usage: {rows:?}");
    assert_eq!(row(&rows, "tokyo", "2026-03-01T00:00:00+09:00")[7], "2026-03-02T00:00:00+09:00");
}

#[tokio::test]
async fn exports_hold_the_chosen_projects_usage_only() {
    let app = spawn_app().await;
    app.token_meter().await;
    record_at(&app, "acme", 5, "2026-03-02T00:00:00Z").await;
    let mut browser = Browser::new(&app);
    browser.set_up().await;
    let csrf = browser.get("/projects").await.csrf();
    browser.post("/projects/create", &[("_csrf", &csrf), ("name", "Staging"), ("timezone", "")]).await;
    let staging = project_id_named(&app, "Staging").await;
    let key = create_key(app.engine().db(), &staging, "staging", 0).await.unwrap().secret;
    let meter = json!({"name": "Staging tokens", "aggregation": "sum", "field": "values.tokens"});
    let (status, _) = app.request_with_key(reqwest::Method::POST, "/v1/meters", Some(meter), Some(&key)).await;
    assert_eq!(status, StatusCode::CREATED);
    let event = json!({"customerId": "globex", "eventType": "llm.completion", "values": {"tokens": 7}, "timestamp": "2026-03-02T00:00:00Z"});
    app.request_with_key(reqwest::Method::POST, "/v1/events/record", Some(event), Some(&key)).await;

    let (rows, _) = usage_export(&mut browser, "start=2026-03-01&end=2026-04-01").await;
    let values: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[3].as_str(), r[8].as_str())).collect();
    assert_eq!(values, [("globex", "Staging tokens", "7")]);
    let events = browser.get("/exports/events.csv?start=2026-03-01&end=2026-04-01").await;
    let events = csv_rows(&events.body);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1][2], "globex");
    let acme = browser.get("/exports/events.csv?customer=acme").await;
    assert_eq!(acme.location(), "/exports", "acme is another project's customer");
}

#[tokio::test]
async fn customer_charts_follow_the_chosen_range_granularity_and_breakdown_and_draw_the_limit() {
    let app = spawn_app().await;
    let meter = app.token_meter().await;
    app.create_limit(
        json!({"name": "Daily tokens", "meterId": meter, "limitValue": 100, "period": "day", "customerId": "acme"}),
    )
    .await;
    customer(&app, "tokyo", "Tokyo KK", Some("Asia/Tokyo")).await;
    record_model(&app, "acme", 30, "gpt-4o", "2026-03-09T10:00:00Z").await;
    record_model(&app, "acme", 20, "mini", "2026-03-10T09:00:00Z").await;
    record_model(&app, "tokyo", 5, "mini", "2026-03-09T16:00:00Z").await;
    let acme = app.get("/v1/customers/acme").await.1["id"].as_str().unwrap().to_string();
    let tokyo = app.get("/v1/customers/tokyo").await.1["id"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&app);
    browser.set_up().await;

    // By default: the last 30 days per day, the daily limit drawn, today marked, the unit named.
    let page = browser.get(&format!("/customers/{acme}")).await;
    assert!(page.body.contains(r#"id="usage-from" name="from" type="date" value="2026-02-09""#), "{}", page.body);
    assert!(page
        .body
        .contains("Tokens per day: line chart of 1 series (Tokens) from Feb 9, 2026 00:00 to Mar 10, 2026 00:00 UTC"));
    assert!(page.body.contains("Limit Daily tokens: 100 tokens per day"));
    assert!(page.body.contains("today so far") && page.body.contains("tokens per day"));
    assert_eq!(page.body.matches("<svg").count(), 2, "one chart, drawn wide and narrow");
    assert!(page.body.contains(r#"<option value="model">model</option>"#), "dimensions offered: {}", page.body);

    // A breakdown by model draws a line per model.
    let by_model =
        browser.get(&format!("/customers/{acme}?from=2026-03-01&to=2026-03-10&granularity=day&breakdown=model")).await;
    assert!(
        by_model
            .body
            .contains("Tokens per day by model: line chart of 2 series (model = gpt-4o, model = mini) from Mar 1"),
        "{}",
        by_model.body
    );

    assert!(by_model.body.contains(r#"<option value="model" selected>model</option>"#));

    // Per hour, the daily limit is named but not drawn.
    let hourly = browser.get(&format!("/customers/{acme}?from=2026-03-09&to=2026-03-10&granularity=hour")).await;
    assert!(hourly.body.contains("tokens per hour") && hourly.body.contains("this hour so far"), "{}", hourly.body);
    assert!(hourly
        .body
        .contains("Also limited (not drawn: the chart shows usage per hour): Daily tokens: 100 tokens per day."));
    assert!(!hourly.body.contains("dashed line"));

    // A past range has nothing still filling.
    let past = browser.get(&format!("/customers/{acme}?from=2026-03-01&to=2026-03-05")).await;
    assert!(!past.body.contains("today so far"));

    // Refused controls are explained beside them, keep what was typed, and the charts show
    // the last 30 days.
    let wrong = browser.get(&format!("/customers/{acme}?from=yesterday&granularity=week&breakdown=no%20such")).await;
    assert!(
        wrong.body.contains(r#"id="usage-from-error""#)
            && wrong.body.contains("From must be a date such as 2026-03-10.")
    );
    assert!(wrong.body.contains("Granularity must be per hour or per day."));
    assert!(wrong.body.contains("Break down by must be a dimension key such as model."));
    assert!(wrong.body.contains(r#"value="yesterday""#));
    assert!(wrong.body.contains("from Feb 9, 2026 00:00 to Mar 10, 2026 00:00 UTC"));
    let long = browser.get(&format!("/customers/{acme}?from=2026-01-01&to=2026-03-10&granularity=hour")).await;
    assert!(long.body.contains("Pick at most 31 days per hour, or 366 days per day."), "{}", long.body);
    let backwards = browser.get(&format!("/customers/{acme}?from=2026-03-05&to=2026-03-01")).await;
    assert!(backwards.body.contains("To must be the same day as From or later."));

    // Days are the customer's: 16:00 UTC on March 9th is March 10th in Tokyo, today there.
    let tokyo_page = browser.get(&format!("/customers/{tokyo}?from=2026-03-10&to=2026-03-10")).await;
    assert!(tokyo_page.body.contains("Days run from midnight to midnight in Asia/Tokyo"));
    assert!(
        tokyo_page.body.contains("from Mar 10, 2026 00:00 to Mar 10, 2026 00:00 Asia/Tokyo"),
        "{}",
        tokyo_page.body
    );
    // Bucketed in UTC days, the event would miss the one day drawn.
    assert!(!tokyo_page.body.contains("No data"), "{}", tokyo_page.body);
}

/// The text of the customer page's block of the limit named `name`.
fn limit_block(page: &str, name: &str) -> String {
    page.split(r#"data-testid="limit-status""#)
        .skip(1)
        .find(|block| block.contains(&format!("<strong>{name}</strong>")))
        .unwrap_or_else(|| panic!("no limit {name} in {page}"))
        .split("</div>")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_rolling_limit_on_the_customer_page_counts_the_last_24_hours_and_says_when_usage_leaves() {
    let app = spawn_app().await; // 2026-03-10 12:00 UTC
    let meter = app.token_meter().await;
    app.create_limit(
        json!({"name": "Rolling day", "meterId": meter, "limitValue": 100, "period": "day", "rolling": true}),
    )
    .await;
    app.create_limit(json!({"name": "Calendar day", "meterId": meter, "limitValue": 100, "period": "day"})).await;
    app.record_tokens("acme", 60).await; // leaves the rolling window at 12:00 the next day
    app.clock.set(at("2026-03-11T09:00:00Z"));
    app.record_tokens("acme", 30).await;
    customer(&app, "idle", "Idle Ltd", None).await;
    let acme = app.get("/v1/customers/acme").await.1["id"].as_str().unwrap().to_string();
    let idle = app.get("/v1/customers/idle").await.1["id"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&app);
    browser.set_up().await;

    let page = browser.get(&format!("/customers/{acme}")).await;
    let rolling = limit_block(&page.body, "Rolling day");
    assert!(rolling.contains("90 of 100 tokens in the last 24 hours"), "{rolling}");
    assert!(rolling.contains("oldest usage leaves the window 2026-03-11 12:00 UTC (in 3 h)"), "{rolling}");
    assert!(!rolling.contains("per day") && !rolling.contains("resets"), "{rolling}");
    let calendar = limit_block(&page.body, "Calendar day");
    assert!(calendar.contains("30 of 100 tokens per day"), "{calendar}");
    assert!(calendar.contains("resets 2026-03-12 00:00 UTC (in 15 h)"), "{calendar}");
    assert!(page.body.contains("Rolling day: 100 tokens in any 24 hours"), "the chart names it: {}", page.body);

    app.record_tokens("acme", 10).await;
    let page = browser.get(&format!("/customers/{acme}")).await;
    let rolling = limit_block(&page.body, "Rolling day");
    assert!(rolling.contains("100 of 100 tokens in the last 24 hours"), "{rolling}");
    assert!(rolling.contains("room again 2026-03-11 12:00 UTC (in 3 h)"), "{rolling}");

    let page = browser.get(&format!("/customers/{idle}")).await;
    let rolling = limit_block(&page.body, "Rolling day");
    assert!(rolling.contains("0 of 100 tokens in the last 24 hours"), "{rolling}");
    assert!(rolling.contains("nothing recorded in the window yet"), "{rolling}");
}
