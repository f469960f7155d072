//! Per-key API rate limits: 429 with `Retry-After` and `RateLimit-*` headers once over, per-key
//! overrides, windows that reset on the clock, and one count shared by instances on PostgreSQL.

use std::sync::Arc;

use chrono::Duration;
use limitry::auth::keys::create_key;
use limitry::config::Config;
use limitry::db::projects::DEFAULT_PROJECT_ID;
use limitry::db::rate_limits::KeyRateLimits;
use limitry::server::RunningServer;
use reqwest::StatusCode;

use crate::helpers::{assert_error, postgres_admin_url, spawn_app, spawn_app_with, TestApp};

/// One request with a key; the status, the answer and the rate-limit headers.
struct Answer {
    status: StatusCode,
    body: serde_json::Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<i64> {
        self.headers.get(name).map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

async fn call(app: &TestApp, base: &str, key: &str) -> Answer {
    let response = app.client.get(format!("{base}/v1/project")).bearer_auth(key).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, body, headers }
}

/// Tests decide when instances exchange counts.
fn manual_flush(config: &mut Config) {
    config.rate_limits.flush_interval = std::time::Duration::from_secs(3600);
}

#[tokio::test]
async fn requests_over_the_per_minute_limit_get_429_with_retry_after_and_the_window_resets() {
    let app = spawn_app_with(|c| {
        manual_flush(c);
        c.rate_limits.per_minute = Some(3);
    })
    .await;
    // The clock stands at 12:00:00: the minute window ends in 60 s.
    for remaining in [2, 1, 0] {
        let answer = call(&app, &app.base, &app.key).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.header("ratelimit-limit"), Some(3));
        assert_eq!(answer.header("ratelimit-remaining"), Some(remaining));
        assert_eq!(answer.header("ratelimit-reset"), Some(60));
    }
    app.clock.advance(Duration::seconds(15));
    let refused = call(&app, &app.base, &app.key).await;
    assert_error(&(refused.status, refused.body.clone()), StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", None);
    assert_eq!(refused.header("retry-after"), Some(45));
    assert_eq!(refused.header("ratelimit-limit"), Some(3));
    assert_eq!(refused.header("ratelimit-remaining"), Some(0));
    assert_eq!(refused.header("ratelimit-reset"), Some(45));
    // Every route a key reaches is counted, and refused alike.
    let (status, _) = app.post("/v1/limits/check", serde_json::json!({"customerId": "acme"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // The next minute starts afresh.
    app.clock.advance(Duration::seconds(45));
    let answer = call(&app, &app.base, &app.key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("ratelimit-remaining"), Some(2));
}

#[tokio::test]
async fn without_a_configured_limit_nothing_is_counted_or_announced() {
    let app = spawn_app().await;
    for _ in 0..20 {
        let answer = call(&app, &app.base, &app.key).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.headers.get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn the_per_day_limit_counts_across_minutes_and_resets_at_midnight_utc() {
    let app = spawn_app_with(|c| {
        manual_flush(c);
        c.rate_limits.per_minute = Some(100);
        c.rate_limits.per_day = Some(4);
    })
    .await;
    for _ in 0..4 {
        assert_eq!(call(&app, &app.base, &app.key).await.status, StatusCode::OK);
        app.clock.advance(Duration::minutes(2));
    }
    // 12:08: twelve hours minus eight minutes to midnight; the day limit is the one reported.
    let refused = call(&app, &app.base, &app.key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some(12 * 3600 - 8 * 60));
    assert_eq!(refused.header("ratelimit-limit"), Some(4));
    app.clock.advance(Duration::hours(12));
    let answer = call(&app, &app.base, &app.key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // The closest limit is reported: the day's, with three left.
    assert_eq!(answer.header("ratelimit-limit"), Some(4));
    assert_eq!(answer.header("ratelimit-remaining"), Some(3));
}

#[tokio::test]
async fn a_key_of_its_own_overrides_the_default_and_zero_means_unlimited() {
    let app = spawn_app_with(|c| {
        manual_flush(c);
        c.rate_limits.per_minute = Some(2);
    })
    .await;
    let db = app.engine().db();
    let generous = create_key(db, DEFAULT_PROJECT_ID, "generous", 0).await.unwrap();
    db.set_key_rate_limits(DEFAULT_PROJECT_ID, &generous.id, KeyRateLimits { per_minute: Some(5), per_day: None })
        .await
        .unwrap();
    let internal = create_key(db, DEFAULT_PROJECT_ID, "internal", 0).await.unwrap();
    db.set_key_rate_limits(DEFAULT_PROJECT_ID, &internal.id, KeyRateLimits { per_minute: Some(0), per_day: None })
        .await
        .unwrap();

    for _ in 0..2 {
        assert_eq!(call(&app, &app.base, &app.key).await.status, StatusCode::OK);
    }
    assert_eq!(call(&app, &app.base, &app.key).await.status, StatusCode::TOO_MANY_REQUESTS);

    // Each key counts on its own.
    for remaining in (0..5).rev() {
        let answer = call(&app, &app.base, &generous.secret).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.header("ratelimit-limit"), Some(5));
        assert_eq!(answer.header("ratelimit-remaining"), Some(remaining));
    }
    assert_eq!(call(&app, &app.base, &generous.secret).await.status, StatusCode::TOO_MANY_REQUESTS);

    for _ in 0..10 {
        let answer = call(&app, &app.base, &internal.secret).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.headers.get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn invalid_keys_are_refused_as_before_and_not_counted() {
    let app = spawn_app_with(|c| c.rate_limits.per_minute = Some(1)).await;
    let (status, body) = app.request_with_key(reqwest::Method::GET, "/v1/project", None, Some("limitry_sk_nope")).await;
    assert_error(&(status, body), StatusCode::UNAUTHORIZED, "invalid_api_key", None);
    assert_eq!(call(&app, &app.base, &app.key).await.status, StatusCode::OK);
    // The document needs no key: fetched without one, it is never limited.
    for _ in 0..3 {
        let (status, _) = app.request_with_key(reqwest::Method::GET, "/v1/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// A second service on the test app's database, with the same rate-limit configuration.
async fn second_instance(app: &TestApp) -> RunningServer {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), &app.database_url);
    (app.configure)(&mut config);
    limitry::server::spawn(&config, Arc::new(app.clock.clone())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgresql_database_share_one_count() {
    if postgres_admin_url().is_none() {
        return;
    }
    let app = spawn_app_with(|c| {
        manual_flush(c);
        c.rate_limits.per_minute = Some(5);
    })
    .await;
    let other = second_instance(&app).await;
    let other_base = format!("http://{}", other.addr);
    for _ in 0..3 {
        assert_eq!(call(&app, &app.base, &app.key).await.status, StatusCode::OK);
    }
    app.state().rate_limits.flush(true).await;
    // The other instance starts from the three counted here.
    let answer = call(&app, &other_base, &app.key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("ratelimit-remaining"), Some(1));
    assert_eq!(call(&app, &other_base, &app.key).await.status, StatusCode::OK);
    assert_eq!(call(&app, &other_base, &app.key).await.status, StatusCode::TOO_MANY_REQUESTS);
    other.state.rate_limits.flush(true).await;
    app.state().rate_limits.flush(true).await;
    // And this one hears the other's two.
    let refused = call(&app, &app.base, &app.key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_pass_the_limit_by_no_more_than_what_they_hold_back() {
    if postgres_admin_url().is_none() {
        return;
    }
    let app = spawn_app_with(|c| {
        manual_flush(c);
        c.rate_limits.per_minute = Some(40);
    })
    .await;
    let other = second_instance(&app).await;
    let other_base = format!("http://{}", other.addr);
    // Both instances warm up on the key, far from the limit, and exchange counts.
    for base in [&app.base, &other_base] {
        for _ in 0..10 {
            assert_eq!(call(&app, base, &app.key).await.status, StatusCode::OK);
        }
    }
    app.state().rate_limits.flush(true).await;
    other.state.rate_limits.flush(true).await;
    app.state().rate_limits.flush(true).await;
    // Then both race for the rest: 30 requests each for 20 left.
    let bases = [app.base.clone(), other_base.clone()];
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (app, base) = (app.clone(), bases[i % 2].clone());
            tokio::spawn(async move { call(&app, &base, &app.key).await.status })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Everything sent to the shared row is decided there exactly; what can pass the limit is
    // only what each instance holds back unsent, at most a quarter of the room it knew of
    // before the limit's last tenth: (36 - 20) / 4 = 4 each.
    assert!((20..=20 + 2 * 4).contains(&admitted), "admitted {admitted} of 20 left");
    app.state().rate_limits.flush(true).await;
    other.state.rate_limits.flush(true).await;
    let counted: i64 = sqlx_count(&app.database_url).await;
    assert_eq!(counted, 20 + admitted, "refused requests are not counted");
    other.shutdown().await;
}

async fn sqlx_count(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let count: i64 =
        sqlx::query_scalar("select cast(sum(count) as bigint) from api_rate_counters where window_seconds = 60")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    count
}

// Several threads: the command blocks this one while the service works beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_on_the_command_line_carry_their_own_limits() {
    let app = spawn_app_with(|c| c.rate_limits.per_minute = Some(100)).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_limitry"))
        .args(["keys", "create", "--name", "cli", "--rate-limit-per-minute", "1", "--rate-limit-per-day", "0"])
        .args(["--database-url", &app.database_url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let secret = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let answer = call(&app, &app.base, &secret).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("ratelimit-limit"), Some(1));
    assert_eq!(call(&app, &app.base, &secret).await.status, StatusCode::TOO_MANY_REQUESTS);
    let listing = std::process::Command::new(env!("CARGO_BIN_EXE_limitry"))
        .args(["keys", "list", "--database-url", &app.database_url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.lines().any(|l| l.contains("\tcli\t") && l.ends_with("1/min, unlimited/day")), "{listing}");
}
