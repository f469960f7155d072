//! The service's `GET /metrics` (Prometheus text): how many checks were answered, and how many
//! record transactions written, from memory, and how many had to read the database, scraped
//! around a scenario.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use hyper::{Method, StatusCode, Uri};
use serde::Serialize;

use crate::client::{Client, Headers};

/// Checks answered, labelled `source="memory"` or `source="database"`.
pub const CHECKS: &str = "limitry_checks_total";
/// Record transactions (group commits), labelled the same way.
pub const RECORD_GROUPS: &str = "limitry_record_groups_total";

/// A counter's cumulative counts by source.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sources {
    pub memory: f64,
    pub database: f64,
}

/// What a counter counted during one scenario, by source.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryShare {
    pub memory: u64,
    pub database: u64,
    /// memory / (memory + database); `None` when no check was counted.
    pub share: Option<f64>,
}

impl MemoryShare {
    pub fn between(before: Sources, after: Sources) -> MemoryShare {
        // Counters only grow; a restart in between would show as a negative delta, clamped.
        let memory = (after.memory - before.memory).max(0.0) as u64;
        let database = (after.database - before.database).max(0.0) as u64;
        let total = memory + database;
        MemoryShare { memory, database, share: (total > 0).then(|| memory as f64 / total as f64) }
    }
}

/// `counter`'s share from memory while `scenario` runs. `Err` carries why there is no figure
/// (no endpoint yet, no counter, a transport failure) as a sentence for the report.
pub async fn share_during<T>(
    addr: SocketAddr,
    counter: &str,
    scenario: impl Future<Output = T>,
) -> (T, Result<MemoryShare, String>) {
    let before = sources(addr, counter).await;
    let outcome = scenario.await;
    let after = sources(addr, counter).await;
    (outcome, before.and_then(|before| Ok(MemoryShare::between(before, after?))))
}

async fn sources(addr: SocketAddr, counter: &str) -> Result<Sources, String> {
    scrape(addr, counter).await.map_err(|err| format!("{err:#}"))?
}

async fn scrape(addr: SocketAddr, counter: &str) -> anyhow::Result<Result<Sources, String>> {
    let headers = Headers::new(addr, None)?;
    let mut client = Client::connect(addr, headers).await?;
    let (status, body) = client.send(&Method::GET, &Uri::from_static("/metrics"), bytes::Bytes::new()).await?;
    if status == StatusCode::NOT_FOUND {
        return Ok(Err("the service has no GET /metrics (404)".to_string()));
    }
    if !status.is_success() {
        return Ok(Err(format!("GET /metrics answered {status}")));
    }
    let text = std::str::from_utf8(&body).context("GET /metrics is not UTF-8")?;
    Ok(parse(text, counter).ok_or_else(|| format!("GET /metrics has no {counter}{{source=…}} counter")))
}

/// The two counters from Prometheus text exposition; a label value not yet exported counts
/// as zero as long as the other one is there.
fn parse(text: &str, counter: &str) -> Option<Sources> {
    let mut sources = Sources::default();
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix(counter) else {
            continue;
        };
        let Some((labels, value)) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) else {
            continue;
        };
        // `value [timestamp]`
        let Some(value) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let source = labels.split(',').find_map(|label| {
            let (name, value) = label.trim().split_once('=')?;
            (name.trim() == "source").then(|| value.trim().trim_matches('"'))
        });
        match source {
            Some("memory") => sources.memory += value,
            Some("database") => sources.database += value,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_sources_and_ignores_the_rest() {
        let text = "# HELP limitry_checks_total Checks answered.\n\
                    # TYPE limitry_checks_total counter\n\
                    limitry_checks_total{source=\"memory\"} 990\n\
                    limitry_checks_total{source=\"database\"} 10 1700000000000\n\
                    limitry_checks_total_created{source=\"memory\"} 5\n\
                    limitry_records_total 7\n";
        assert_eq!(parse(text, CHECKS), Some(Sources { memory: 990.0, database: 10.0 }));
        assert_eq!(
            parse("limitry_checks_total{project=\"p\",source=\"memory\"} 3\n", CHECKS),
            Some(Sources { memory: 3.0, database: 0.0 })
        );
        assert_eq!(parse("limitry_records_total 7\n", CHECKS), None);
        assert_eq!(parse(text, RECORD_GROUPS), None);
        let groups = "limitry_record_groups_total{source=\"database\"} 4\n";
        assert_eq!(parse(&format!("{text}{groups}"), RECORD_GROUPS), Some(Sources { memory: 0.0, database: 4.0 }));
    }

    #[test]
    fn share_over_a_window() {
        let share =
            MemoryShare::between(Sources { memory: 100.0, database: 5.0 }, Sources { memory: 1090.0, database: 15.0 });
        assert_eq!((share.memory, share.database), (990, 10));
        assert_eq!(share.share, Some(0.99));
        assert_eq!(MemoryShare::between(Sources::default(), Sources::default()).share, None);
    }
}
