//! `limitry-bench`: the command line and the run from start to finish (database, key,
//! service, setup, preload, the scenarios, report, cleanup).

mod client;
mod instances;
mod load;
mod metrics;
mod report;
mod server;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use hyper::{Method, Uri};

use client::{Client, Headers};
use load::{Lane, Target};
use report::{Report, ScenarioResult, Settings};
use server::{Database, Server};

/// Load benchmark for the limitry service: preloads events, then measures a bare handler,
/// limit checks (with a key without and one with a rate limit), consumes (checks that record, beside preview checks), single records, batch records, checks and records at once (mixed) and, on
/// PostgreSQL, two service instances on one database.
#[derive(Debug, Parser)]
#[command(name = "limitry-bench", version)]
struct Args {
    /// Events to preload (spread over the last 30 days) before the scenarios run.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Unmeasured seconds of load before each scenario's measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Events per request in the batch scenario (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_size: u16,
    /// Distinct customers the events and checks are spread over.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    customers: u32,
    /// Batch requests in flight at once while preloading.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    preload_parallel: u16,
    /// Default: a fresh SQLite file in a temporary directory. A postgres:// URL gets a fresh
    /// `limitry_bench_<random>` database on that server, dropped at the end.
    #[arg(long)]
    database_url: Option<String>,
    /// The service binary.
    #[arg(long, default_value_os_t = server::default_binary())]
    binary: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // On SIGINT/SIGTERM the run future is dropped, which stops the service and removes the
    // database through their `Drop`s before the process exits.
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    match outcome {
        Ok(report) if report.failed() => {
            eprintln!("limitry-bench: some requests failed (see the errors column) or the instances disagreed");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("limitry-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// One of the scenarios measured side by side: its name, events per request (if it records),
/// its key and what it sends.
#[derive(Clone)]
struct Side<'a> {
    name: &'a str,
    events_per_request: Option<usize>,
    headers: &'a Headers,
    target: Arc<Target>,
}

impl Side<'_> {
    fn result(&self, outcome: load::Outcome) -> ScenarioResult {
        ScenarioResult::new(self.name, self.events_per_request, outcome)
    }
}

/// The order of the slices of `sides` scenarios measured side by side: each once, then each
/// again in reverse (first, second, second, first), so that whatever drifts over the run (a
/// checkpoint or vacuum after the preload, another process, another virtual machine on the
/// host) weighs on all alike instead of on whichever ran last.
fn palindrome(sides: usize) -> impl Iterator<Item = usize> {
    (0..sides).chain((0..sides).rev())
}

/// Scenarios measured in alternating slices of half the duration each (see `palindrome`):
/// their ratios are what is compared. Each outcome holds its scenario's two slices.
async fn alternate<const N: usize>(
    server: &mut Server,
    sides: &[Side<'_>; N],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<[load::Outcome; N]> {
    let slice = duration / 2;
    let mut outcomes: [Option<load::Outcome>; N] = std::array::from_fn(|_| None);
    for (round, which) in palindrome(N).enumerate() {
        server.check_alive()?;
        let side = &sides[which];
        eprintln!("limitry-bench: {} ({} of 2)", side.name, 1 + usize::from(round >= N));
        let outcome =
            load::run(server, side.headers.clone(), side.target.clone(), concurrency, warmup / 2, slice).await?;
        match &mut outcomes[which] {
            Some(total) => total.extend(outcome),
            empty => *empty = Some(outcome),
        }
    }
    let mut measured = Vec::with_capacity(N);
    for outcome in outcomes {
        measured.push(outcome.context("every slice ran")?);
    }
    measured.try_into().map_err(|_| anyhow::anyhow!("one outcome per scenario"))
}

/// A share for the report's two fields: the figure, or why there is none.
fn split_share(share: Result<metrics::MemoryShare, String>) -> (Option<metrics::MemoryShare>, Option<String>) {
    match share {
        Ok(share) => (Some(share), None),
        Err(why) => (None, Some(why)),
    }
}

/// The second result's requests per second over the first's.
fn rate_ratio(first: &ScenarioResult, second: &ScenarioResult) -> Option<f64> {
    (first.requests_per_second > 0.0).then(|| second.requests_per_second / first.requests_per_second)
}

async fn interrupted() -> &'static str {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        // Without a SIGTERM handler, Ctrl-C is still handled.
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    if !args.binary.is_file() {
        bail!(
            "service binary {} not found: build it with `cargo build --release -p limitry` or pass --binary",
            args.binary.display()
        );
    }
    let customers = args.customers as usize;
    let concurrency = usize::from(args.concurrency);
    let batch_size = usize::from(args.batch_size);
    let preload_parallel = usize::from(args.preload_parallel);
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.duration);

    // Declared before the server so that it is dropped after it: the service must be gone
    // before its database is removed.
    let database = Database::create(args.database_url.as_deref())?;
    let key = server::create_key(&args.binary, database.url()).await?;
    let rate_limited_key = server::create_rate_limited_key(&args.binary, database.url()).await?;
    let mut server = Server::start(&args.binary, database.url()).await?;
    eprintln!("limitry-bench: service on {} ({} database)", server.addr, database.kind());
    let headers = Headers::new(server.addr, Some(&key))?;
    let rate_limited_headers = Headers::new(server.addr, Some(&rate_limited_key))?;

    let mut setup = Client::connect(server.addr, headers.clone()).await?;
    let meter = setup.json(Method::POST, "/v1/meters", &workload::meter()).await?;
    let meter_id = meter["id"].as_str().context("the new meter has no id")?.to_string();
    for limit in workload::limits(&meter_id) {
        setup.json(Method::POST, "/v1/limits", &limit).await?;
    }
    drop(setup);

    let preload = if args.events > 0 {
        eprintln!("limitry-bench: preloading {} events", args.events);
        let bodies = workload::preload_batches(args.events, customers, chrono::Utc::now());
        let target = Arc::new(Target { method: Method::POST, path: Uri::from_static("/v1/events/batch"), bodies });
        let outcome = load::send_all(server.addr, headers.clone(), target, preload_parallel).await?;
        let mut result = ScenarioResult::new("preload", Some(workload::PRELOAD_BATCH), outcome);
        // The last batch may be short: count the events actually sent.
        if let Some(rate) = result.events_per_second.as_mut() {
            if result.errors == 0 && result.seconds > 0.0 {
                *rate = args.events as f64 / result.seconds;
            }
        }
        if result.failed() {
            bail!("preloading failed ({} of {} batches): {:?}", result.errors, result.requests, result.error_samples);
        }
        eprintln!(
            "limitry-bench: preloaded in {:.1} s ({:.0} events/s)",
            result.seconds,
            result.events_per_second.unwrap_or(0.0)
        );
        Some(result)
    } else {
        None
    };

    // The bare handler is measured in slices beside the checks and beside the single records,
    // and its row holds them all: each ratio to it is taken under the load the machine had
    // while its scenario ran.
    let baseline = Side {
        name: "baseline GET /healthz",
        events_per_request: None,
        headers: &headers,
        target: Arc::new(Target { method: Method::GET, path: Uri::from_static("/healthz"), bodies: Vec::new() }),
    };
    let checks = Arc::new(Target {
        method: Method::POST,
        path: Uri::from_static("/v1/limits/check"),
        bodies: workload::check_bodies(customers),
    });
    let check = Side {
        name: "check POST /v1/limits/check",
        events_per_request: None,
        headers: &headers,
        target: checks.clone(),
    };
    let rate_limited_check = Side {
        name: "check, key with a rate limit",
        events_per_request: None,
        headers: &rate_limited_headers,
        target: checks.clone(),
    };
    let sides = [baseline.clone(), check, rate_limited_check];
    let [mut bare, plain, rate_limited] = alternate(&mut server, &sides, concurrency, warmup, duration).await?;
    let [plain, rate_limited] = [sides[1].result(plain), sides[2].result(rate_limited)];
    let rate_limited_check_ratio = rate_ratio(&plain, &rate_limited);
    // Consumes against preview checks measured beside them, for their ratio.
    let preview =
        Side { name: "check, alternating with consume", events_per_request: None, headers: &headers, target: checks };
    let consume = Side {
        name: "consume POST /v1/limits/check (mode consume)",
        events_per_request: Some(1),
        headers: &headers,
        target: Arc::new(Target {
            method: Method::POST,
            path: Uri::from_static("/v1/limits/check"),
            bodies: workload::consume_bodies(customers),
        }),
    };
    let addr = server.addr;
    let sides = [preview, consume];
    let consumes = alternate(&mut server, &sides, concurrency, warmup, duration);
    let (consumes, consume_groups) = metrics::share_during(addr, metrics::RECORD_GROUPS, consumes).await;
    let [preview, consume] = consumes?;
    let [preview, consume] = [sides[0].result(preview), sides[1].result(consume)];
    let (consume_groups_from_memory, consume_groups_from_memory_unavailable) = split_share(consume_groups);
    let consume_check_ratio = rate_ratio(&preview, &consume);
    let record = Side {
        name: "record POST /v1/events/record",
        events_per_request: Some(1),
        headers: &headers,
        target: Arc::new(Target {
            method: Method::POST,
            path: Uri::from_static("/v1/events/record"),
            bodies: workload::record_bodies(customers),
        }),
    };
    let sides = [baseline, record];
    let [bare_beside_records, record] = alternate(&mut server, &sides, concurrency, warmup, duration).await?;
    bare.extend(bare_beside_records);
    let mut results = vec![sides[0].result(bare), plain, rate_limited, consume, preview, sides[1].result(record)];

    server.check_alive()?;
    let name = format!("batch POST /v1/events/batch ({batch_size} events)");
    eprintln!("limitry-bench: {name}");
    let batches = Arc::new(Target {
        method: Method::POST,
        path: Uri::from_static("/v1/events/batch"),
        bodies: workload::batch_bodies(customers, batch_size),
    });
    let outcome = load::run(&server, headers.clone(), batches, concurrency, warmup, duration).await?;
    results.push(ScenarioResult::new(&name, Some(batch_size), outcome));

    // Mixed: checks and single records at once against the same customers, half the
    // connections each, with the share of checks that touched no database.
    server.check_alive()?;
    let check_connections = (concurrency / 2).max(1);
    let record_connections = concurrency.saturating_sub(check_connections).max(1);
    eprintln!("limitry-bench: mixed ({check_connections} check + {record_connections} record connections)");
    let lanes = [
        Lane {
            addr: server.addr,
            headers: headers.clone(),
            target: Arc::new(Target {
                method: Method::POST,
                path: Uri::from_static("/v1/limits/check"),
                bodies: workload::check_bodies(customers),
            }),
            connections: check_connections,
        },
        Lane {
            addr: server.addr,
            headers: headers.clone(),
            target: Arc::new(Target {
                method: Method::POST,
                path: Uri::from_static("/v1/events/record"),
                bodies: workload::record_bodies(customers),
            }),
            connections: record_connections,
        },
    ];
    // Two lanes share one process: its CPU time is not one scenario's.
    let mixed = load::run_lanes(&lanes, warmup, duration, load::CpuSources::default());
    let (mixed, mixed_checks) = metrics::share_during(server.addr, metrics::CHECKS, mixed).await;
    let mut mixed = mixed?.into_iter();
    let (mixed_checks_from_memory, mixed_checks_from_memory_unavailable) = split_share(mixed_checks);
    let total_connections = check_connections + record_connections;
    let check_outcome = mixed.next().context("the mixed check lane")?;
    let record_outcome = mixed.next().context("the mixed record lane")?;
    results.push(ScenarioResult::new(
        &format!("mixed: check ({check_connections} of {total_connections} connections)"),
        None,
        check_outcome,
    ));
    results.push(ScenarioResult::new(
        &format!("mixed: record ({record_connections} of {total_connections} connections)"),
        Some(1),
        record_outcome,
    ));
    server.check_alive()?;

    // Two instances on one PostgreSQL database (SQLite refuses a second service on a file).
    let mut two_instances = None;
    let mut second_warnings = (0, Vec::new());
    if database.kind() == "postgres" {
        eprintln!("limitry-bench: two instances (check and record on both)");
        let outcome = instances::run(instances::Setup {
            binary: &args.binary,
            database_url: database.url(),
            key: &key,
            first: &server,
            customers,
            concurrency,
            warmup,
            duration,
        })
        .await?;
        results.push(outcome.check);
        results.push(outcome.record);
        two_instances = Some(outcome.agreement);
        second_warnings = (outcome.warnings, outcome.warning_samples);
        server.check_alive()?;
    }

    let (mut server_warnings, mut server_warning_samples) = match server.log.lock() {
        Ok(log) => (log.warning_count, log.warnings.clone()),
        Err(_) => (0, Vec::new()),
    };
    server_warnings += second_warnings.0;
    server_warning_samples.extend(second_warnings.1.into_iter().map(|line| format!("(second instance) {line}")));
    let status = server.stop().await?;
    if !status.success() {
        eprintln!("limitry-bench: the service exited with {status} after SIGTERM");
    }
    let baseline = results.first().map(|r| r.requests_per_second).filter(|&rps| rps > 0.0);
    if let Some(baseline) = baseline {
        for result in &mut results {
            result.baseline_ratio = Some(result.requests_per_second / baseline);
        }
    }
    let ratio = results.get(1).and_then(|check| check.baseline_ratio);
    let report = Report {
        settings: Settings {
            database: database.kind().to_string(),
            events: args.events,
            customers,
            concurrency,
            duration_seconds: args.duration,
            warmup_seconds: args.warmup,
            batch_size,
            preload_parallel,
        },
        preload,
        scenarios: results,
        check_baseline_ratio: ratio,
        rate_limited_check_ratio,
        consume_check_ratio,
        consume_groups_from_memory,
        consume_groups_from_memory_unavailable,
        mixed_checks_from_memory,
        mixed_checks_from_memory_unavailable,
        two_instances,
        database_bytes: database.size_on_disk(),
        server_warnings,
        server_warning_samples,
    };
    println!("{}", report.markdown());
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_slices_run_each_scenario_once_each_way() {
        assert_eq!(palindrome(2).collect::<Vec<_>>(), [0, 1, 1, 0]);
        assert_eq!(palindrome(3).collect::<Vec<_>>(), [0, 1, 2, 2, 1, 0]);
    }
}
