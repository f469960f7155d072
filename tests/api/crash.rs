//! A crash (kill -9) of the real binary during a record stream: every acknowledged event is
//! there after a restart, the counters agree with the stored events, and re-sending every
//! request with its idempotency keys counts nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::postgres_admin_url;

const RECORDERS: usize = 16;
const CUSTOMERS: usize = 4;
/// Acknowledged requests to wait for before the kill, so it lands in a stream well under way.
const ACKNOWLEDGED_BEFORE_KILL: usize = 600;

/// A database of its own: a SQLite file in a temporary directory or a fresh PostgreSQL
/// database, dropped at the end.
enum Database {
    Sqlite { url: String, _dir: tempfile::TempDir },
    Postgres { url: String, admin_url: String, name: String },
}

impl Database {
    async fn fresh() -> Database {
        match postgres_admin_url() {
            Some(admin_url) => {
                let name = format!("limitry_crash_{:016x}", rand::thread_rng().gen::<u64>());
                admin_execute(&admin_url, &format!("create database {name}")).await;
                let (base, _) = admin_url.rsplit_once('/').expect("LIMITRY_TEST_POSTGRES_URL must end in /database");
                Database::Postgres { url: format!("{base}/{name}"), admin_url, name }
            }
            None => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("crash.db").display());
                Database::Sqlite { url, _dir: dir }
            }
        }
    }

    fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } | Database::Postgres { url, .. } => url,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Database::Postgres { admin_url, name, .. } = self {
            let (admin_url, sql) = (admin_url.clone(), format!("drop database if exists {name} with (force)"));
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(admin_execute(&admin_url, &sql));
            })
            .join()
            .ok();
        }
    }
}

async fn admin_execute(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn limitry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_limitry"));
    command.env_remove("DATABASE_URL").env_remove("LIMITRY_BIND").stdin(Stdio::null());
    command
}

/// A `limitry serve` child process, killed (SIGKILL) and reaped when dropped.
struct Service {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Service {
    async fn start(database_url: &str, log_dir: &Path, run: usize) -> Service {
        // The child must be told its port; one the kernel just handed out is free.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = log_dir.join(format!("service-{run}.log"));
        let child = limitry()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", database_url])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut service = Service { child, base: format!("http://127.0.0.1:{port}"), log };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("the service exited ({status}) before answering:\n{}", service.log_text());
            }
            let health = client.get(format!("{}/healthz", service.base)).send().await;
            if health.is_ok_and(|r| r.status() == StatusCode::OK) {
                return service;
            }
            assert!(Instant::now() < deadline, "the service did not answer within 30 s:\n{}", service.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: no shutdown hook, no flush, nothing finishes.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a recorder sent: its events as (idempotency key, customer, tokens), the event
/// ids of the answer if it was acknowledged with a 200, and whether the kill cut it after it
/// had reached the service (rather than it finding nobody listening).
struct Sent {
    batch: bool,
    events: Vec<(String, String, i64)>,
    acknowledged: Option<Vec<String>>,
    cut: bool,
}

impl Sent {
    fn body(&self) -> Value {
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|(key, customer, tokens)| {
                json!({"customerId": customer, "eventType": "llm.completion",
                       "values": {"tokens": tokens}, "idempotencyKey": key})
            })
            .collect();
        if self.batch {
            json!({"events": events})
        } else {
            events.into_iter().next().unwrap()
        }
    }

    fn path(&self) -> &'static str {
        if self.batch {
            "/v1/events/batch"
        } else {
            "/v1/events/record"
        }
    }

    /// Event ids in request order from a 200 answer.
    fn ids(&self, answer: &Value) -> Vec<String> {
        let id = |v: &Value| v["id"].as_str().unwrap().to_string();
        if self.batch {
            answer["results"].as_array().unwrap().iter().map(id).collect()
        } else {
            vec![id(answer)]
        }
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> reqwest::Result<(u16, Value)> {
    let response = client.post(format!("{base}{path}")).bearer_auth(key).json(body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Sends single records (even recorders) or batches of 2–5 events (odd ones), each event
/// with a key of its own, until the service stops answering or `stop` is set.
async fn recorder(
    n: usize,
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
) -> (Vec<Sent>, Vec<String>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut sent = Vec::new();
    let mut unexpected = Vec::new();
    for request in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let batch = n % 2 == 1;
        let size = if batch { 2 + request % 4 } else { 1 };
        let events = (0..size)
            .map(|i| {
                let tokens = rand::thread_rng().gen_range(1..=9);
                (format!("r{n}-{request}-{i}"), format!("c{}", (n + i) % CUSTOMERS), tokens)
            })
            .collect();
        let mut request = Sent { batch, events, acknowledged: None, cut: false };
        match post(&client, &base, &key, request.path(), &request.body()).await {
            Ok((200, answer)) => {
                request.acknowledged = Some(request.ids(&answer));
                acknowledged.fetch_add(1, Ordering::Relaxed);
                sent.push(request);
            }
            Ok((status, answer)) => {
                unexpected.push(format!("{status}: {answer}"));
                sent.push(request);
                break;
            }
            // The service is gone: this request may or may not have been committed.
            Err(err) => {
                request.cut = !err.is_connect();
                sent.push(request);
                break;
            }
        }
    }
    (sent, unexpected)
}

/// Every stored event as id → (idempotency key, customer, tokens), through the API.
async fn stored_events(
    client: &reqwest::Client,
    service: &Service,
    key: &str,
) -> HashMap<String, (String, String, i64)> {
    let mut events = HashMap::new();
    let mut cursor = String::new();
    loop {
        let response = client
            .get(format!("{}/v1/events?limit=100&cursor={cursor}", service.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        for event in page["data"].as_array().unwrap() {
            let id = event["id"].as_str().unwrap().to_string();
            let stored = (
                event["idempotencyKey"].as_str().unwrap_or_default().to_string(),
                event["customerExternalId"].as_str().unwrap().to_string(),
                event["values"]["tokens"].as_i64().unwrap(),
            );
            assert!(events.insert(id.clone(), stored).is_none(), "event {id} listed twice");
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return events,
        }
    }
}

/// The all-time limit's `used` for each customer, through a check.
async fn used_per_customer(client: &reqwest::Client, service: &Service, key: &str) -> BTreeMap<String, i64> {
    let mut used = BTreeMap::new();
    for customer in (0..CUSTOMERS).map(|c| format!("c{c}")) {
        let (status, answer) =
            post(client, &service.base, key, "/v1/limits/check", &json!({"customerId": customer})).await.unwrap();
        assert_eq!(status, 200, "{answer}");
        let value = answer["limits"][0]["used"].as_f64().unwrap();
        assert_eq!(value.fract(), 0.0, "{answer}");
        used.insert(customer, value as i64);
    }
    used
}

fn sums_per_customer<'a>(events: impl Iterator<Item = &'a (String, String, i64)>) -> BTreeMap<String, i64> {
    let mut sums: BTreeMap<String, i64> = (0..CUSTOMERS).map(|c| (format!("c{c}"), 0)).collect();
    for (_, customer, tokens) in events {
        *sums.entry(customer.clone()).or_default() += tokens;
    }
    sums
}

/// Starts the service again on `database` (after a kill -9) and asserts that each customer's
/// usage is exactly the tokens `sent`.
async fn assert_usage_after_restart(
    database: &Database,
    logs: &Path,
    client: &reqwest::Client,
    key: &str,
    sent: &[(String, String, i64)],
) {
    let service = Service::start(database.url(), logs, 2).await;
    assert_eq!(
        used_per_customer(client, &service, key).await,
        sums_per_customer(sent.iter()),
        "{}",
        service.log_text()
    );
}

/// A service on a fresh database with the Tokens meter and an all-time limit on it (so that
/// no comparison can straddle a window boundary), and an API key.
async fn metered_service(database: &Database, logs: &Path) -> (Service, String) {
    let output =
        limitry().args(["keys", "create", "--name", "crash", "--database-url", database.url()]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();

    let service = Service::start(database.url(), logs, 1).await;
    let client = reqwest::Client::new();
    let (status, meter) = post(
        &client,
        &service.base,
        &key,
        "/v1/meters",
        &json!({"name": "Tokens", "aggregation": "sum", "field": "values.tokens",
                "eventFilter": {"eventType": "llm.completion"}}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{meter}");
    let (status, limit) = post(
        &client,
        &service.base,
        &key,
        "/v1/limits",
        &json!({"name": "all", "meterId": meter["id"], "limitValue": 1_000_000_000, "period": "all_time"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{limit}");
    (service, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_during_a_record_stream_loses_no_acknowledged_event_and_a_resend_counts_nothing_twice() {
    let database = Database::fresh().await;
    let logs = tempfile::tempdir().unwrap();
    let (mut service, key) = metered_service(&database, logs.path()).await;
    let client = reqwest::Client::new();

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let recorders: Vec<_> = (0..RECORDERS)
        .map(|n| tokio::spawn(recorder(n, service.base.clone(), key.clone(), stop.clone(), acknowledged.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acknowledged.load(Ordering::Relaxed) < ACKNOWLEDGED_BEFORE_KILL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Past the deadline the stream is merely slow; the kill still lands in it.
    service.kill_9();
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for recorder in recorders {
        let (requests, unexpected) = recorder.await.unwrap();
        assert!(unexpected.is_empty(), "answers other than 200 before the kill: {unexpected:?}");
        sent.extend(requests);
    }
    let acked: Vec<&Sent> = sent.iter().filter(|s| s.acknowledged.is_some()).collect();
    let in_flight = sent.iter().filter(|s| s.cut).count();
    assert!(!acked.is_empty(), "nothing was acknowledged before the kill:\n{}", service.log_text());
    assert!(in_flight > 0, "the kill should land mid-stream, with requests in flight");

    let service = Service::start(database.url(), logs.path(), 2).await;
    let stored = stored_events(&client, &service, &key).await;

    // Every acknowledged event is there, under the id it was acknowledged with.
    let mut acknowledged_events = 0;
    for request in &acked {
        for ((key, customer, tokens), id) in request.events.iter().zip(request.acknowledged.as_ref().unwrap()) {
            let event = stored.get(id).unwrap_or_else(|| panic!("acknowledged event {id} ({key}) was lost"));
            assert_eq!(event, &(key.clone(), customer.clone(), *tokens), "event {id}");
            acknowledged_events += 1;
        }
    }
    // Nothing stored that was not sent, no key twice, and a batch cut by the kill is whole or absent.
    let sent_keys: HashSet<&str> = sent.iter().flat_map(|s| s.events.iter().map(|(k, _, _)| k.as_str())).collect();
    let stored_keys: HashSet<&str> = stored.values().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(stored_keys.len(), stored.len(), "an idempotency key stored twice");
    assert!(stored_keys.is_subset(&sent_keys), "events stored that nobody sent");
    for request in sent.iter().filter(|s| s.acknowledged.is_none()) {
        let present = request.events.iter().filter(|(k, _, _)| stored_keys.contains(k.as_str())).count();
        assert!(present == 0 || present == request.events.len(), "a request cut by the kill was stored in part");
    }
    // Counters rebuilt from nothing but the database agree with the stored events.
    assert_eq!(used_per_customer(&client, &service, &key).await, sums_per_customer(stored.values()));

    // A client retrying every request, answered or not, with the same keys: each event counts once.
    let retries: Vec<(&Sent, (u16, Value))> = futures_util::stream::iter(&sent)
        .map(|request| {
            let (client, base, key) = (&client, &service.base, &key);
            async move { (request, post(client, base, key, request.path(), &request.body()).await.unwrap()) }
        })
        .buffer_unordered(RECORDERS)
        .collect()
        .await;
    for (request, (status, answer)) in retries {
        assert_eq!(status, 200, "{answer}");
        if let Some(ids) = &request.acknowledged {
            assert_eq!(&request.ids(&answer), ids, "a retry names the events first recorded");
            let duplicates = if request.batch { answer["duplicates"].as_u64() } else { Some(1) };
            assert_eq!(duplicates, Some(request.events.len() as u64), "{answer}");
            if !request.batch {
                assert_eq!(answer["duplicate"], true, "{answer}");
            }
        }
    }
    let all_sent: Vec<&(String, String, i64)> = sent.iter().flat_map(|s| &s.events).collect();
    let stored = stored_events(&client, &service, &key).await;
    assert_eq!(stored.len(), all_sent.len(), "every sent event exactly once after the retry");
    assert_eq!(used_per_customer(&client, &service, &key).await, sums_per_customer(all_sent.into_iter()));
    println!(
        "kill -9 after {} acknowledged requests ({acknowledged_events} events); {in_flight} in flight; {} of their events had been committed",
        acked.len(),
        stored_keys.len() - acknowledged_events
    );
}

/// On SQLite, groups recorded from memory store their events and leave their counters to be
/// saved a little later. Counters saved before a kill -9 must count once, and those still in
/// memory must be counted again from their events at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_still_in_memory_at_a_kill_9_are_counted_again_at_the_next_start_and_saved_ones_once() {
    let database = Database::fresh().await;
    let logs = tempfile::tempdir().unwrap();
    let (mut service, key) = metered_service(&database, logs.path()).await;
    let client = reqwest::Client::new();
    let mut sent = Vec::new();
    let mut record = |round: usize| {
        let requests: Vec<_> = (0..CUSTOMERS)
            .map(|c| (format!("key-{round}-{c}"), format!("c{c}"), (10 * round + c + 1) as i64))
            .collect();
        sent.extend(requests.clone());
        let (client, base, key) = (client.clone(), service.base.clone(), key.clone());
        async move {
            for (idempotency_key, customer, tokens) in requests {
                let event = json!({"customerId": customer, "eventType": "llm.completion",
                                   "values": {"tokens": tokens}, "idempotencyKey": idempotency_key});
                let (status, answer) = post(&client, &base, &key, "/v1/events/record", &event).await.unwrap();
                assert_eq!(status, 200, "{answer}");
            }
        }
    };
    // The first round creates the customers, the whole way; the second is recorded from memory.
    record(0).await;
    record(1).await;
    // Any other write saves the counters first: a customer created through the API.
    let (status, answer) =
        post(&client, &service.base, &key, "/v1/customers", &json!({"externalId": "bystander"})).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    // Recorded from memory, and killed well before the writer saves them.
    record(2).await;
    record(3).await;
    service.kill_9();
    assert_usage_after_restart(&database, logs.path(), &client, &key, &sent).await;
}

/// A group recorded from memory whose events feed no counter leaves nothing unsaved, so it
/// must not mark its events for a recount either: a group that goes the whole way after it
/// stores its counters itself, and a kill -9 must not count those a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_that_feed_no_counter_are_not_counted_again_after_a_kill_9() {
    let database = Database::fresh().await;
    let logs = tempfile::tempdir().unwrap();
    let (mut service, key) = metered_service(&database, logs.path()).await;
    let client = reqwest::Client::new();
    let mut sent = Vec::new();
    let record = |event: serde_json::Value, path: &'static str| {
        let (client, base, key) = (client.clone(), service.base.clone(), key.clone());
        async move {
            let (status, answer) = post(&client, &base, &key, path, &event).await.unwrap();
            assert_eq!(status, 200, "{answer}");
        }
    };
    // Creates the customer, the whole way.
    record(json!({"customerId": "c0", "eventType": "llm.completion", "values": {"tokens": 5}}), "/v1/events/record")
        .await;
    sent.push(("first".to_string(), "c0".to_string(), 5));
    // From memory, and no meter counts it.
    record(json!({"customerId": "c0", "eventType": "not.metered", "values": {"tokens": 1000}}), "/v1/events/record")
        .await;
    // A customer not seen yet sends the group the whole way, which stores c0's counter itself.
    let batch = json!({"events": [
        {"customerId": "c0", "eventType": "llm.completion", "values": {"tokens": 7}},
        {"customerId": "newcomer", "eventType": "llm.completion", "values": {"tokens": 1}},
    ]});
    record(batch, "/v1/events/batch").await;
    sent.push(("batch".to_string(), "c0".to_string(), 7));
    service.kill_9();
    assert_usage_after_restart(&database, logs.path(), &client, &key, &sent).await;
}
