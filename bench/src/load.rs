//! The load generator: C tasks, each with its own keep-alive connection, sending pre-built
//! requests back to back until a fixed deadline, timing every one. Several lanes (different
//! requests, or different service instances) can run side by side on one clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hyper::{Method, Uri};
use tokio::time::Instant;

use crate::client::{Client, Headers};
use crate::server::{machine_ticks, process_cpu, processes_cpu, MachineTicks, Server};

/// Error answers kept verbatim for the report; the rest are only counted.
const MAX_ERROR_SAMPLES: usize = 5;

/// What one scenario sends. Bodies are cycled through; each task starts at its own offset so
/// that concurrent requests name different customers.
pub struct Target {
    pub method: Method,
    pub path: Uri,
    /// Empty for a bodiless request.
    pub bodies: Vec<Bytes>,
}

impl Target {
    fn body_index(&self, i: usize) -> Option<usize> {
        (!self.bodies.is_empty()).then(|| i % self.bodies.len())
    }

    fn body(&self, i: usize) -> Bytes {
        self.body_index(i).map_or_else(Bytes::new, |i| self.bodies[i].clone())
    }
}

/// Everything measured after the warmup.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One entry per measured request, successful or not, in microseconds.
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub warmup_errors: u64,
    pub error_samples: Vec<String>,
    /// From the end of the warmup until the last task's last answer.
    pub elapsed: Duration,
    /// 2xx answers per body index of the target, warmup included: what the service
    /// acknowledged, so a scenario can compare it with what was stored.
    pub acknowledged: Vec<u32>,
    /// The CPU time the service used over the measured seconds, when it was measured.
    pub service_cpu: Option<Duration>,
    /// The CPU time the database server's processes used over the measured seconds, when it
    /// runs on this machine as processes of its own (PostgreSQL).
    pub database_cpu: Option<Duration>,
    /// The machine's CPU time over the measured seconds, and the part of it the hypervisor
    /// gave to other virtual machines (steal), where `/proc/stat` tells.
    pub machine: Option<MachineTicks>,
}

impl Outcome {
    fn note_error(&mut self, measured: bool, sample: impl FnOnce() -> String) {
        if measured {
            self.errors += 1;
        } else {
            self.warmup_errors += 1;
        }
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(sample());
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.warmup_errors += other.warmup_errors;
        let room = MAX_ERROR_SAMPLES.saturating_sub(self.error_samples.len());
        self.error_samples.extend(other.error_samples.into_iter().take(room));
        if self.acknowledged.len() < other.acknowledged.len() {
            self.acknowledged.resize(other.acknowledged.len(), 0);
        }
        for (mine, theirs) in self.acknowledged.iter_mut().zip(other.acknowledged) {
            *mine += theirs;
        }
    }

    /// Adds a later run of the same scenario: its requests, and its measured time.
    pub fn extend(&mut self, later: Outcome) {
        self.elapsed += later.elapsed;
        self.service_cpu = self.service_cpu.zip(later.service_cpu).map(|(mine, theirs)| mine + theirs);
        self.database_cpu = self.database_cpu.zip(later.database_cpu).map(|(mine, theirs)| mine + theirs);
        self.machine = self.machine.zip(later.machine).map(|(mine, theirs)| mine + theirs);
        self.merge(later);
    }

    fn acknowledge(&mut self, body: Option<usize>) {
        if let Some(count) = body.and_then(|i| self.acknowledged.get_mut(i)) {
            *count += 1;
        }
    }
}

/// The command name of every PostgreSQL server process.
const POSTGRES_PROCESSES: &str = "postgres";

/// Whose CPU time a run measures: the service's process, and the processes of a database
/// server by their command name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSources {
    pub service: Option<u32>,
    pub database: Option<&'static str>,
}

/// CPU time used so far by each of `CpuSources`, and by the whole machine.
struct CpuTimes {
    service: Option<Duration>,
    database: Option<Duration>,
    machine: Option<MachineTicks>,
}

impl CpuSources {
    fn read(self) -> CpuTimes {
        CpuTimes {
            service: self.service.and_then(process_cpu),
            database: self.database.and_then(processes_cpu),
            machine: machine_ticks(),
        }
    }
}

/// One group of connections sending the same target to one service instance.
pub struct Lane {
    pub addr: SocketAddr,
    pub headers: Headers,
    pub target: Arc<Target>,
    pub connections: usize,
}

/// Runs `concurrency` tasks against `server` for `warmup` (unmeasured) and then `duration`,
/// and measures the service's CPU time over the measured seconds, and its database's when
/// that is PostgreSQL on this machine.
pub async fn run(
    server: &Server,
    headers: Headers,
    target: Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let lanes = [Lane { addr: server.addr, headers, target, connections: concurrency }];
    let cpu = CpuSources { service: server.pid(), database: server.local_postgres.then_some(POSTGRES_PROCESSES) };
    let mut outcomes = run_lanes(&lanes, warmup, duration, cpu).await?;
    outcomes.pop().context("one lane, one outcome")
}

/// Runs every lane at once, on one warmup and one deadline, and returns one outcome per lane
/// (each lane's `elapsed` runs to its own last answer). Each outcome carries the CPU time of
/// the processes `cpu` names over the measured seconds, spent on every lane together.
pub async fn run_lanes(
    lanes: &[Lane],
    warmup: Duration,
    duration: Duration,
    cpu: CpuSources,
) -> anyhow::Result<Vec<Outcome>> {
    // Connect first so that connection setup is not charged to the warmup or the measurement.
    let mut clients = Vec::with_capacity(lanes.len());
    for lane in lanes {
        let mut lane_clients = Vec::with_capacity(lane.connections);
        for _ in 0..lane.connections {
            lane_clients.push(Client::connect(lane.addr, lane.headers.clone()).await?);
        }
        clients.push(lane_clients);
    }
    let measure_from = Instant::now() + warmup;
    let deadline = measure_from + duration;
    let lane_tasks: Vec<Vec<_>> = lanes
        .iter()
        .zip(clients)
        .map(|(lane, clients)| {
            let stride = (lane.target.bodies.len() / lane.connections.max(1)).max(1);
            clients
                .into_iter()
                .enumerate()
                .map(|(task, client)| {
                    let (target, headers, addr) = (lane.target.clone(), lane.headers.clone(), lane.addr);
                    tokio::spawn(async move {
                        let outcome =
                            worker(addr, headers, client, &target, task * stride, measure_from, deadline).await;
                        (outcome, Instant::now())
                    })
                })
                .collect()
        })
        .collect();
    tokio::time::sleep_until(measure_from).await;
    let cpu_before = cpu.read();
    let mut outcomes = Vec::with_capacity(lanes.len());
    for tasks in lane_tasks {
        let mut total = Outcome::default();
        let mut last_answer = measure_from;
        for task in tasks {
            let (outcome, finished) = task.await.context("a load task panicked")?;
            total.merge(outcome);
            last_answer = last_answer.max(finished);
        }
        total.elapsed = last_answer.saturating_duration_since(measure_from);
        outcomes.push(total);
    }
    let cpu_after = cpu.read();
    let spent = |before: Option<Duration>, after: Option<Duration>| {
        before.zip(after).map(|(before, after)| after.saturating_sub(before))
    };
    for outcome in &mut outcomes {
        outcome.service_cpu = spent(cpu_before.service, cpu_after.service);
        outcome.database_cpu = spent(cpu_before.database, cpu_after.database);
        outcome.machine = cpu_before.machine.zip(cpu_after.machine).map(|(before, after)| after - before);
    }
    Ok(outcomes)
}

/// Sends every body of `target` exactly once over `parallel` connections (the preload), and
/// times the whole.
pub async fn send_all(
    addr: SocketAddr,
    headers: Headers,
    target: Arc<Target>,
    parallel: usize,
) -> anyhow::Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(parallel);
    for _ in 0..parallel {
        let mut client = Client::connect(addr, headers.clone()).await?;
        let (target, next) = (target.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = target.bodies.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = client.send(&target.method, &target.path, body.clone()).await;
                outcome.latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                match answer {
                    Ok((status, _)) if status.is_success() => {}
                    Ok((status, body)) => outcome.note_error(true, || {
                        format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))
                    }),
                    // Unlike the timed scenarios there is no point going on: the data set
                    // would be incomplete.
                    Err(err) => {
                        outcome.note_error(true, || format!("transport: {err:#}"));
                        break;
                    }
                }
            }
            outcome
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        total.merge(task.await.context("a preload task panicked")?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn worker(
    addr: SocketAddr,
    headers: Headers,
    client: Client,
    target: &Target,
    offset: usize,
    measure_from: Instant,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome {
        latencies_us: Vec::with_capacity(1 << 14),
        acknowledged: vec![0; target.bodies.len()],
        ..Outcome::default()
    };
    let mut client = Some(client);
    let mut i = offset;
    loop {
        let started = Instant::now();
        if started >= deadline {
            break;
        }
        let measured = started >= measure_from;
        // A dropped connection is counted as an error and replaced; if even reconnecting
        // fails the server is gone, and this task stops rather than spin.
        let conn = match client.as_mut() {
            Some(conn) => conn,
            None => match Client::connect(addr, headers.clone()).await {
                Ok(conn) => client.insert(conn),
                Err(err) => {
                    outcome.note_error(measured, || format!("reconnect failed: {err:#}"));
                    break;
                }
            },
        };
        let answer = conn.send(&target.method, &target.path, target.body(i)).await;
        let sent = target.body_index(i);
        i += 1;
        let latency = started.elapsed();
        if measured {
            outcome.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        }
        match answer {
            Ok((status, _)) if status.is_success() => outcome.acknowledge(sent),
            Ok((status, body)) => outcome.note_error(measured, || {
                format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))
            }),
            Err(err) => {
                outcome.note_error(measured, || format!("transport: {err:#}"));
                client = None;
            }
        }
    }
    outcome
}
