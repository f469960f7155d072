//! The two-instance PostgreSQL scenario: a second service on the same database, a record and
//! check load spread over both, then every instance's check compared with the events stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, NaiveTime, Utc};
use hyper::{Method, Uri};
use serde::Serialize;
use serde_json::json;

use crate::client::{Client, Headers};
use crate::load::{self, Lane, Outcome, Target};
use crate::report::ScenarioResult;
use crate::server::Server;
use crate::workload;

/// Mismatches kept verbatim for the report.
const MAX_MISMATCH_SAMPLES: usize = 10;
/// How long a mismatch may take to resolve before it counts: the second look at the checks.
const SETTLE: Duration = Duration::from_secs(2);

/// Whether the checks of both instances agree with what is stored.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    pub customers: usize,
    /// Check entries compared: customer × instance × limit.
    pub compared: usize,
    /// Entries whose `used` equalled the stored sum at the first look, right after the load.
    pub exact_at_once: usize,
    /// Entries equal at the last look (after a short settle when the first look was not exact).
    pub exact: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatch_samples: Vec<String>,
    /// Records the two instances answered with 200, warmup included, and their tokens.
    pub acknowledged_records: u64,
    pub acknowledged_tokens: i64,
    /// How much the stored total of the current day grew meanwhile; `None` if the UTC day
    /// changed during the scenario, which makes the two incomparable.
    pub stored_tokens_added: Option<i64>,
}

impl Agreement {
    pub fn holds(&self) -> bool {
        self.exact == self.compared && self.stored_tokens_added.is_none_or(|added| added == self.acknowledged_tokens)
    }
}

pub struct TwoInstances {
    pub check: ScenarioResult,
    pub record: ScenarioResult,
    pub agreement: Agreement,
    /// WARN/ERROR lines of the second instance.
    pub warnings: u64,
    pub warning_samples: Vec<String>,
}

/// What the scenario needs from the run.
pub struct Setup<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub key: &'a str,
    pub first: &'a Server,
    pub customers: usize,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Starts a second service on the database, runs checks and single records on both (a
/// quarter of the connections each: check A, check B, record A, record B), stops the second
/// and compares. Must run on the main task, like every `Server::start`.
pub async fn run(setup: Setup<'_>) -> anyhow::Result<TwoInstances> {
    let second = Server::start(setup.binary, setup.database_url).await.context("starting the second instance")?;
    eprintln!("limitry-bench: second instance on {}", second.addr);
    let first_headers = Headers::new(setup.first.addr, Some(setup.key))?;
    let second_headers = Headers::new(second.addr, Some(setup.key))?;
    // Set-up connections are made just before use: the service closes a connection idle for
    // longer than its header timeout (10 s), as long as a scenario runs.
    let mut first = Client::connect(setup.first.addr, first_headers.clone()).await?;
    let day_before = Utc::now().date_naive();
    let meter_id = token_meter_id(&mut first).await?;
    let stored_before = day_total(&mut first, &meter_id, day_before).await.context("the stored day total before")?;
    drop(first);

    let check = Arc::new(Target {
        method: Method::POST,
        path: Uri::from_static("/v1/limits/check"),
        bodies: workload::check_bodies(setup.customers),
    });
    let record = Arc::new(Target {
        method: Method::POST,
        path: Uri::from_static("/v1/events/record"),
        bodies: workload::record_bodies(setup.customers),
    });
    let per_lane = (setup.concurrency / 4).max(1);
    let lane = |addr, headers: &Headers, target: &Arc<Target>| Lane {
        addr,
        headers: headers.clone(),
        target: target.clone(),
        connections: per_lane,
    };
    let lanes = [
        lane(setup.first.addr, &first_headers, &check),
        lane(second.addr, &second_headers, &check),
        lane(setup.first.addr, &first_headers, &record),
        lane(second.addr, &second_headers, &record),
    ];
    let mut outcomes =
        load::run_lanes(&lanes, setup.warmup, setup.duration, load::CpuSources::default()).await?.into_iter();
    let mut next = || outcomes.next().context("one outcome per lane");
    let (check_a, check_b, record_a, record_b) = (next()?, next()?, next()?, next()?);

    let mut acknowledged_records = 0;
    let mut acknowledged_tokens = 0;
    for outcome in [&record_a, &record_b] {
        for (body, &count) in record.bodies.iter().zip(&outcome.acknowledged) {
            acknowledged_records += u64::from(count);
            acknowledged_tokens += i64::from(count) * workload::tokens_of(body)?;
        }
    }
    let mut first = Client::connect(setup.first.addr, first_headers).await?;
    let day_after = Utc::now().date_naive();
    let stored_tokens_added = if day_after == day_before {
        Some(day_total(&mut first, &meter_id, day_after).await.context("the stored day total after")? - stored_before)
    } else {
        None
    };

    let mut second_client = Client::connect(second.addr, second_headers).await?;
    let mut instances = [("A", &mut first), ("B", &mut second_client)];
    let mut comparison = compare(&mut instances, setup.customers).await.context("comparing checks with events")?;
    let exact_at_once = comparison.exact;
    if comparison.exact < comparison.compared {
        tokio::time::sleep(SETTLE).await;
        comparison = compare(&mut instances, setup.customers).await.context("comparing checks with events")?;
    }
    drop(second_client);

    let (warnings, warning_samples) = match second.log.lock() {
        Ok(log) => (log.warning_count, log.warnings.clone()),
        Err(_) => (0, Vec::new()),
    };
    let status = second.stop().await?;
    if !status.success() {
        eprintln!("limitry-bench: the second instance exited with {status} after SIGTERM");
    }
    Ok(TwoInstances {
        check: ScenarioResult::new("2 instances: check (A and B)", None, merge(check_a, check_b)),
        record: ScenarioResult::new("2 instances: record (A and B)", Some(1), merge(record_a, record_b)),
        agreement: Agreement {
            customers: setup.customers,
            compared: comparison.compared,
            exact_at_once,
            exact: comparison.exact,
            mismatch_samples: comparison.mismatches,
            acknowledged_records,
            acknowledged_tokens,
            stored_tokens_added,
        },
        warnings,
        warning_samples,
    })
}

/// Two lanes of one kind as one result: every request, up to the later last answer.
fn merge(mut a: Outcome, b: Outcome) -> Outcome {
    let elapsed = a.elapsed.max(b.elapsed);
    a.latencies_us.extend(b.latencies_us);
    a.errors += b.errors;
    a.warmup_errors += b.warmup_errors;
    a.error_samples.extend(b.error_samples);
    a.error_samples.truncate(5);
    a.elapsed = elapsed;
    a
}

async fn token_meter_id(client: &mut Client) -> anyhow::Result<String> {
    let (status, body) = client.send(&Method::GET, &Uri::from_static("/v1/meters"), bytes::Bytes::new()).await?;
    anyhow::ensure!(status.is_success(), "GET /v1/meters answered {status}");
    let meters: serde_json::Value = serde_json::from_slice(&body)?;
    let id = meters["data"]
        .as_array()
        .and_then(|meters| meters.first())
        .and_then(|meter| meter["id"].as_str())
        .context("the bench's meter is not listed")?;
    Ok(id.to_string())
}

/// The stored total of the meter over one UTC day (the project's timezone is the default UTC).
async fn day_total(client: &mut Client, meter_id: &str, day: chrono::NaiveDate) -> anyhow::Result<i64> {
    let start = day.and_time(NaiveTime::MIN).and_utc();
    let groups = query(client, meter_id, start, start + chrono::Duration::days(1), false).await?;
    let total: f64 = groups.values().sum();
    exact_integer(total)
}

/// Stored sums per customer (`groupBy customerId`), or one entry under "" without grouping.
async fn query(
    client: &mut Client,
    meter_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    per_customer: bool,
) -> anyhow::Result<HashMap<String, f64>> {
    let mut body = json!({"startDate": start.to_rfc3339(), "endDate": end.to_rfc3339()});
    if per_customer {
        body["groupBy"] = json!(["customerId"]);
    }
    let answer = client.json(Method::POST, &format!("/v1/meters/{meter_id}/query"), &body).await?;
    let groups = answer["groups"].as_array().context("a meter query without groups")?;
    groups
        .iter()
        .map(|group| {
            let customer = group["group"]["customerId"].as_str().unwrap_or_default().to_string();
            let value = group["value"].as_f64().context("a group without a value")?;
            Ok((customer, value))
        })
        .collect()
}

fn exact_integer(value: f64) -> anyhow::Result<i64> {
    anyhow::ensure!(value.fract() == 0.0 && value.abs() < 9e15, "{value} is not a whole number of tokens");
    Ok(value as i64)
}

/// A meter id and a window `[start, end)`.
type Window = (String, DateTime<Utc>, DateTime<Utc>);

struct Comparison {
    compared: usize,
    exact: usize,
    mismatches: Vec<String>,
}

/// Asks each instance for every customer's check, then compares each limit's `used` with the
/// stored sum over the same window (one grouped query per distinct window, made after the
/// checks: nothing records meanwhile).
async fn compare(instances: &mut [(&str, &mut Client)], customers: usize) -> anyhow::Result<Comparison> {
    struct Entry {
        instance: String,
        customer: String,
        limit: String,
        used: f64,
        window: Window,
    }
    let mut entries = Vec::new();
    for (name, client) in instances.iter_mut() {
        for customer in (0..customers).map(|c| format!("cust-{c}")) {
            let answer = client.json(Method::POST, "/v1/limits/check", &json!({"customerId": customer})).await?;
            let limits = answer["limits"].as_array().context("a check without limits")?;
            for limit in limits {
                let period = limit["period"].as_str().unwrap_or_default();
                let reset = limit["reset"].as_i64().context("a limit without a reset")?;
                let end = DateTime::from_timestamp(reset, 0).context("reset out of range")?;
                let start = match period {
                    "day" => end - chrono::Duration::days(1),
                    "month" => {
                        let last_day = (end - chrono::Duration::seconds(1)).date_naive();
                        last_day.with_day(1).context("a month has a first day")?.and_time(NaiveTime::MIN).and_utc()
                    }
                    other => bail!("the bench's limits are daily and monthly, not {other}"),
                };
                entries.push(Entry {
                    instance: name.to_string(),
                    customer: customer.clone(),
                    limit: limit["name"].as_str().unwrap_or_default().to_string(),
                    used: limit["used"].as_f64().context("a limit without used")?,
                    window: (limit["meterId"].as_str().unwrap_or_default().to_string(), start, end),
                });
            }
        }
    }
    let mut stored: HashMap<Window, HashMap<String, f64>> = HashMap::new();
    let (_, client) = instances.first_mut().context("at least one instance")?;
    for entry in &entries {
        if !stored.contains_key(&entry.window) {
            let (meter, start, end) = &entry.window;
            let sums = query(client, meter, *start, *end, true).await?;
            stored.insert(entry.window.clone(), sums);
        }
    }
    let mut comparison = Comparison { compared: entries.len(), exact: 0, mismatches: Vec::new() };
    for entry in &entries {
        let expected = stored.get(&entry.window).and_then(|sums| sums.get(&entry.customer)).copied().unwrap_or(0.0);
        if entry.used == expected {
            comparison.exact += 1;
        } else if comparison.mismatches.len() < MAX_MISMATCH_SAMPLES {
            comparison.mismatches.push(format!(
                "instance {} {} {}: check says {} used, stored events sum to {} ({} – {})",
                entry.instance, entry.customer, entry.limit, entry.used, expected, entry.window.1, entry.window.2
            ));
        }
    }
    Ok(comparison)
}
