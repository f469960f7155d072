//! Turning raw latencies into the numbers reported, and printing them as markdown or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::instances::Agreement;
use crate::load::Outcome;
use crate::metrics::MemoryShare;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles; sorts in place.
    pub fn of(latencies_us: &mut [u32]) -> Latency {
        latencies_us.sort_unstable();
        let at = |q: f64| -> f64 {
            if latencies_us.is_empty() {
                return 0.0;
            }
            let rank = ((q * latencies_us.len() as f64).ceil() as usize).clamp(1, latencies_us.len());
            f64::from(latencies_us[rank - 1]) / 1000.0
        };
        Latency { p50_ms: at(0.50), p90_ms: at(0.90), p99_ms: at(0.99), max_ms: at(1.0) }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub name: String,
    pub requests: u64,
    /// Non-2xx answers and transport failures in the measured window.
    pub errors: u64,
    pub warmup_errors: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    /// For scenarios that record events: events recorded per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<f64>,
    pub latency: Latency,
    /// Requests per second over the bare baseline's of the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_ratio: Option<f64>,
    /// The service's CPU time (all its threads) over the measured seconds, per request: what
    /// a request costs the service, steadier from run to run than a rate on a shared machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_cpu_us_per_request: Option<f64>,
    /// The same for the database server's processes, when it is PostgreSQL on this machine:
    /// what a request costs the database, which a throughput figure alone does not separate
    /// from the service's share of the same CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_us_per_request: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// The host's 1-minute load average when the scenario ended. The generator and the
    /// service alone keep about 2 runnable on this 2-core machine; much more means something
    /// else shared the CPUs and the numbers are pessimistic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_load_1m: Option<f64>,
    /// The share of the machine's CPU time the hypervisor gave to other virtual machines over
    /// the measured seconds (steal, from `/proc/stat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_steal_share: Option<f64>,
}

impl ScenarioResult {
    pub fn new(name: &str, events_per_request: Option<usize>, mut outcome: Outcome) -> Self {
        let requests = outcome.latencies_us.len() as u64;
        let seconds = outcome.elapsed.as_secs_f64();
        let requests_per_second = if seconds > 0.0 { requests as f64 / seconds } else { 0.0 };
        ScenarioResult {
            name: name.to_string(),
            requests,
            errors: outcome.errors,
            warmup_errors: outcome.warmup_errors,
            seconds,
            requests_per_second,
            // Failed requests recorded nothing, so they are left out of the event rate.
            events_per_second: events_per_request.map(|n| {
                let ok = requests.saturating_sub(outcome.errors);
                if seconds > 0.0 {
                    (ok * n as u64) as f64 / seconds
                } else {
                    0.0
                }
            }),
            latency: Latency::of(&mut outcome.latencies_us),
            baseline_ratio: None,
            service_cpu_us_per_request: per_request(outcome.service_cpu, requests),
            database_cpu_us_per_request: per_request(outcome.database_cpu, requests),
            error_samples: outcome.error_samples,
            host_load_1m: host_load_1m(),
            host_steal_share: outcome.machine.and_then(|ticks| ticks.steal_share()),
        }
    }

    pub fn failed(&self) -> bool {
        self.errors > 0 || self.warmup_errors > 0
    }

    /// Its row of the report's table.
    fn markdown_row(&self) -> String {
        let events = self.events_per_second.map_or("–".to_string(), |e| format!("{e:.0}"));
        let errors = if self.warmup_errors > 0 {
            format!("{} (+{} in warmup)", self.errors, self.warmup_errors)
        } else {
            self.errors.to_string()
        };
        let ratio = self.baseline_ratio.map_or("–".to_string(), |ratio| format!("{ratio:.2}"));
        let cpu = |us: Option<f64>| us.map_or("–".to_string(), |us| format!("{us:.1}"));
        format!(
            "| {} | {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            self.name,
            self.requests,
            errors,
            self.requests_per_second,
            ratio,
            events,
            self.latency.p50_ms,
            self.latency.p90_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            cpu(self.service_cpu_us_per_request),
            cpu(self.database_cpu_us_per_request),
        )
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub database: String,
    pub events: usize,
    pub customers: usize,
    pub concurrency: usize,
    pub duration_seconds: u64,
    pub warmup_seconds: u64,
    pub batch_size: usize,
    pub preload_parallel: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub settings: Settings,
    /// The preload, as one `send every batch once` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload: Option<ScenarioResult>,
    pub scenarios: Vec<ScenarioResult>,
    /// `check` requests per second over `baseline` requests per second.
    pub check_baseline_ratio: Option<f64>,
    /// Checks per second with a rate-limited key over checks per second with an unlimited one.
    pub rate_limited_check_ratio: Option<f64>,
    /// Consumes (checks that also record) per second over preview checks per second, measured
    /// in alternating slices.
    pub consume_check_ratio: Option<f64>,
    /// Record transactions written from memory during the consume slices (warmup included),
    /// from the service's `GET /metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_groups_from_memory: Option<MemoryShare>,
    /// Why there is no such figure, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_groups_from_memory_unavailable: Option<String>,
    /// Checks answered from memory during the mixed scenario (warmup included), from the
    /// service's `GET /metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_checks_from_memory: Option<MemoryShare>,
    /// Why there is no such figure, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_checks_from_memory_unavailable: Option<String>,
    /// The two-instance scenario's comparison of checks with stored events (PostgreSQL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_instances: Option<Agreement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_bytes: Option<u64>,
    /// WARN/ERROR lines the service logged during the run.
    pub server_warnings: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_warning_samples: Vec<String>,
}

impl Report {
    /// Any failed request fails the run. Service warnings are reported but do not: a failure
    /// that matters to a client already shows up as a non-2xx answer.
    pub fn failed(&self) -> bool {
        self.steps().any(ScenarioResult::failed)
            || self.two_instances.as_ref().is_some_and(|agreement| !agreement.holds())
    }

    pub fn markdown(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### limitry-bench: {} preloaded events, {} database, concurrency {}, {} s per scenario after {} s warmup\n",
            s.events, s.database, s.concurrency, s.duration_seconds, s.warmup_seconds
        );
        if let Some(preload) = &self.preload {
            let _ = writeln!(
                out,
                "preload: {} events in {} batch requests ({} in parallel) in {:.1} s = **{:.0} events/s** (batch p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms), errors {}\n",
                s.events,
                preload.requests,
                s.preload_parallel,
                preload.seconds,
                preload.events_per_second.unwrap_or(0.0),
                preload.latency.p50_ms,
                preload.latency.p99_ms,
                preload.latency.max_ms,
                preload.errors,
            );
        }
        out.push_str(
            "| scenario | requests | errors | req/s | × baseline | events/s | p50 ms | p90 ms | p99 ms | max ms | service CPU µs/req | database CPU µs/req |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.scenarios {
            out.push_str(&r.markdown_row());
        }
        out.push('\n');
        match self.check_baseline_ratio {
            Some(ratio) => {
                let _ = writeln!(out, "check/baseline throughput ratio: {ratio:.2}");
            }
            None => out.push_str("check/baseline throughput ratio: n/a\n"),
        }
        if let Some(ratio) = self.rate_limited_check_ratio {
            let _ = writeln!(out, "check with a rate-limited key / check without: {ratio:.3}");
        }
        if let Some(ratio) = self.consume_check_ratio {
            let _ = writeln!(out, "consume / preview check: {ratio:.3}");
        }
        let shares = [
            (
                "consume: record transactions from memory",
                &self.consume_groups_from_memory,
                &self.consume_groups_from_memory_unavailable,
            ),
            (
                "mixed: checks answered from memory",
                &self.mixed_checks_from_memory,
                &self.mixed_checks_from_memory_unavailable,
            ),
        ];
        for (what, share, unavailable) in shares {
            match (share, unavailable) {
                (Some(share), _) => {
                    let percent = share.share.map_or("n/a".to_string(), |s| format!("{:.2} %", s * 100.0));
                    let _ = writeln!(
                        out,
                        "{what}: **{percent}** ({} from memory, {} read the database)",
                        share.memory, share.database
                    );
                }
                (None, Some(why)) => {
                    let _ = writeln!(out, "{what}: n/a ({why})");
                }
                (None, None) => {}
            }
        }
        if let Some(a) = &self.two_instances {
            let verdict = if a.holds() { "**exact**" } else { "**NOT exact**" };
            let _ = writeln!(
                out,
                "2 instances: {verdict}: {} of {} check entries ({} customers × 2 instances × limits) equal the stored events' sums ({} at the first look)",
                a.exact, a.compared, a.customers, a.exact_at_once
            );
            let stored = a.stored_tokens_added.map_or("n/a (the UTC day changed)".to_string(), |t| t.to_string());
            let _ = writeln!(
                out,
                "2 instances: acknowledged {} records carrying {} tokens; stored day total grew by {stored}",
                a.acknowledged_records, a.acknowledged_tokens
            );
            for sample in &a.mismatch_samples {
                let _ = writeln!(out, "    {sample}");
            }
        }
        if let Some(bytes) = self.database_bytes {
            let _ = writeln!(out, "database on disk at the end: {:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
        }
        let loads = self.per_step(|r| r.host_load_1m.map(|load| format!("{load:.1}")));
        if !loads.is_empty() {
            let _ =
                writeln!(out, "host 1-min load average after each step (≈2 is this run alone): {}", loads.join(", "));
        }
        out.push_str(&self.steal_lines());
        let _ = writeln!(out, "service WARN/ERROR log lines: {}", self.server_warnings);
        for line in &self.server_warning_samples {
            let _ = writeln!(out, "    {line}");
        }
        for r in self.steps() {
            for sample in &r.error_samples {
                let _ = writeln!(out, "error sample ({}): {sample}", r.name);
            }
        }
        out
    }

    /// The run's steps: the preload, then the scenarios.
    fn steps(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.preload.iter().chain(&self.scenarios)
    }

    /// `name value` for each step that has a value.
    fn per_step(&self, value: impl Fn(&ScenarioResult) -> Option<String>) -> Vec<String> {
        self.steps().filter_map(|r| Some(format!("{} {}", short_name(&r.name)?, value(r)?))).collect()
    }

    /// The CPU time stolen from this machine during each step, and a warning when it was
    /// enough to make this run's rates and ratios incomparable with another's.
    fn steal_lines(&self) -> String {
        let listed = self.per_step(|r| r.host_steal_share.map(|share| format!("{:.0} %", share * 100.0)));
        if listed.is_empty() {
            return String::new();
        }
        let mut out = format!("CPU time taken by other virtual machines (steal) in each step: {}\n", listed.join(", "));
        let worst = self.steps().filter_map(|r| r.host_steal_share).fold(0.0, f64::max);
        if worst >= STEAL_WARNING {
            let _ = writeln!(
                out,
                "**steal reached {:.0} %**: the host lent this machine's CPUs to others while it ran, \
                 by different amounts in different steps; compare CPU per request, not rates or ratios",
                worst * 100.0
            );
        }
        out
    }
}

/// Steal from which a run's rates are flagged as not comparable.
const STEAL_WARNING: f64 = 0.05;

/// A scenario's name without its request or its details: `check POST …` → `check`,
/// `mixed: check (…)` → `mixed check`; a name made of words only (`check, key with a rate
/// limit`) stays whole, so that no two scenarios share a short name.
fn short_name(name: &str) -> Option<String> {
    let name = name.replacen(": ", " ", 1);
    let end = [" GET ", " POST ", " ("].iter().filter_map(|cut| name.find(cut)).min().unwrap_or(name.len());
    let short = name[..end].trim();
    (!short.is_empty()).then(|| short.to_string())
}

/// CPU time per request, in microseconds, when it was measured over some requests.
fn per_request(cpu: Option<Duration>, requests: u64) -> Option<f64> {
    cpu.filter(|_| requests > 0).map(|cpu| cpu.as_secs_f64() * 1e6 / requests as f64)
}

/// The first field of `/proc/loadavg`; `None` where there is no such file.
fn host_load_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut us: Vec<u32> = (1..=100).rev().map(|i| i * 1000).collect();
        let latency = Latency::of(&mut us);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p90_ms, 90.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(Latency::of(&mut []).max_ms, 0.0);
    }

    #[test]
    fn cpu_is_reported_per_request_and_only_when_measured() {
        let outcome = |service_cpu, database_cpu| Outcome {
            latencies_us: vec![500; 4000],
            elapsed: Duration::from_secs(2),
            service_cpu,
            database_cpu,
            ..Outcome::default()
        };
        let measured = ScenarioResult::new(
            "check",
            None,
            outcome(Some(Duration::from_millis(70)), Some(Duration::from_millis(180))),
        );
        assert_eq!(measured.service_cpu_us_per_request, Some(17.5));
        assert_eq!(measured.database_cpu_us_per_request, Some(45.0));
        assert_eq!(measured.requests_per_second, 2000.0);
        let unmeasured = ScenarioResult::new("check", None, outcome(None, None));
        assert_eq!(unmeasured.service_cpu_us_per_request, None);
        assert_eq!(unmeasured.database_cpu_us_per_request, None);
        assert!(measured.markdown_row().ends_with("| 17.5 | 45.0 |\n"), "{}", measured.markdown_row());
        assert!(unmeasured.markdown_row().ends_with("| – | – |\n"), "{}", unmeasured.markdown_row());
    }

    #[test]
    fn steal_is_listed_per_step_and_flagged_when_high() {
        let step = |name: &str, steal: Option<f64>| {
            let mut result = ScenarioResult::new(name, None, Outcome::default());
            result.host_steal_share = steal;
            result
        };
        let report = |scenarios| Report {
            settings: Settings {
                database: "sqlite".into(),
                events: 0,
                customers: 1,
                concurrency: 1,
                duration_seconds: 1,
                warmup_seconds: 0,
                batch_size: 1,
                preload_parallel: 1,
            },
            preload: None,
            scenarios,
            check_baseline_ratio: None,
            rate_limited_check_ratio: None,
            consume_check_ratio: None,
            consume_groups_from_memory: None,
            consume_groups_from_memory_unavailable: None,
            mixed_checks_from_memory: None,
            mixed_checks_from_memory_unavailable: None,
            two_instances: None,
            database_bytes: None,
            server_warnings: 0,
            server_warning_samples: Vec::new(),
        };
        let quiet =
            report(vec![step("baseline GET /healthz", Some(0.004)), step("check POST /v1/limits/check", Some(0.01))]);
        let lines = quiet.steal_lines();
        assert_eq!(lines, "CPU time taken by other virtual machines (steal) in each step: baseline 0 %, check 1 %\n");
        assert!(quiet.markdown().contains(&lines));
        let shared =
            report(vec![step("baseline GET /healthz", Some(0.01)), step("record POST /v1/events/record", Some(0.21))]);
        assert!(shared.steal_lines().contains("**steal reached 21 %**"), "{}", shared.steal_lines());
        assert_eq!(report(vec![step("check POST /v1/limits/check", None)]).steal_lines(), "");
    }
}
