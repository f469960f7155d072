//! What is sent: the meter and limits, the preload batches and each scenario's request
//! bodies, all serialized before any clock starts so the generator spends no time on JSON.

use std::fmt::Write as _;

use bytes::Bytes;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub const EVENT_TYPE: &str = "llm.completion";
/// The batch endpoint's ceiling, used for preloading.
pub const PRELOAD_BATCH: usize = 1000;
/// Preloaded events are dated within this many days back (the service accepts up to 35), so
/// that most of them fall outside the current day's window and some outside the month's.
const PRELOAD_SPREAD_DAYS: i64 = 30;
/// Distinct single-event and batch bodies per scenario; cycled through during the run.
const RECORD_BODIES: usize = 4096;
const BATCH_BODIES: usize = 64;
const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b"];

/// A fixed seed keeps runs comparable: the same customers get the same events.
fn rng(stream: u64) -> StdRng {
    StdRng::seed_from_u64(0x11_4D17_2B3E ^ stream)
}

pub fn meter() -> serde_json::Value {
    json!({
        "name": "Tokens",
        "aggregation": "sum",
        "field": "values.tokens",
        "eventFilter": {"eventType": EVENT_TYPE}
    })
}

/// Project-wide limits far above anything the run records, so every check is `allowed` and
/// evaluates both windows.
pub fn limits(meter_id: &str) -> [serde_json::Value; 2] {
    [
        json!({"name": "Daily tokens", "meterId": meter_id, "limitValue": 1_000_000_000i64, "period": "day"}),
        json!({"name": "Monthly tokens", "meterId": meter_id, "limitValue": 30_000_000_000i64, "period": "month"}),
    ]
}

/// Appends one event object. Customer ids and models are plain ASCII, so `write!` yields
/// valid JSON without a serializer, which matters when building a million events.
fn push_event(out: &mut String, rng: &mut StdRng, customers: usize, at: Option<DateTime<Utc>>) {
    let customer = rng.gen_range(0..customers);
    let tokens = rng.gen_range(1..=2000);
    let model = MODELS[rng.gen_range(0..MODELS.len())];
    let _ = write!(
        out,
        r#"{{"customerId":"cust-{customer}","eventType":"{EVENT_TYPE}","values":{{"tokens":{tokens}}},"dimensions":{{"model":"{model}"}}"#
    );
    if let Some(at) = at {
        let _ = write!(out, r#","timestamp":"{}""#, at.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    out.push('}');
}

fn batch_body(
    rng: &mut StdRng,
    customers: usize,
    size: usize,
    mut at: impl FnMut(&mut StdRng) -> Option<DateTime<Utc>>,
) -> Bytes {
    let mut out = String::with_capacity(size * 140 + 16);
    out.push_str(r#"{"events":["#);
    for i in 0..size {
        if i > 0 {
            out.push(',');
        }
        let at = at(rng);
        push_event(&mut out, rng, customers, at);
    }
    out.push_str("]}");
    Bytes::from(out)
}

/// `events` spread uniformly over the last 30 days (ending a minute before `now`, well clear
/// of the service's future-skew check), in batches of up to 1,000.
pub fn preload_batches(events: usize, customers: usize, now: DateTime<Utc>) -> Vec<Bytes> {
    let mut rng = rng(1);
    let newest = now - Duration::minutes(1);
    let span_ms = (Duration::days(PRELOAD_SPREAD_DAYS) - Duration::minutes(1)).num_milliseconds();
    let mut remaining = events;
    let mut batches = Vec::with_capacity(events.div_ceil(PRELOAD_BATCH));
    while remaining > 0 {
        let size = remaining.min(PRELOAD_BATCH);
        batches.push(batch_body(&mut rng, customers, size, |rng| {
            Some(newest - Duration::milliseconds(rng.gen_range(0..span_ms)))
        }));
        remaining -= size;
    }
    batches
}

/// One check body per customer, in customer order.
pub fn check_bodies(customers: usize) -> Vec<Bytes> {
    (0..customers).map(|c| Bytes::from(format!(r#"{{"customerId":"cust-{c}"}}"#))).collect()
}

/// Single events stamped by the server ("now"): the path a live integration takes.
pub fn record_bodies(customers: usize) -> Vec<Bytes> {
    let mut rng = rng(2);
    (0..RECORD_BODIES)
        .map(|_| {
            let mut out = String::with_capacity(160);
            push_event(&mut out, &mut rng, customers, None);
            Bytes::from(out)
        })
        .collect()
}

/// Checks with `mode: consume`, each carrying one event stamped by the server: judged and
/// recorded in one step. The limits are far above what a run records, so every one is recorded.
pub fn consume_bodies(customers: usize) -> Vec<Bytes> {
    let mut rng = rng(4);
    (0..RECORD_BODIES)
        .map(|_| {
            let customer = rng.gen_range(0..customers);
            let tokens = rng.gen_range(1..=2000);
            let model = MODELS[rng.gen_range(0..MODELS.len())];
            Bytes::from(format!(
                r#"{{"customerId":"cust-{customer}","mode":"consume","event":{{"eventType":"{EVENT_TYPE}","values":{{"tokens":{tokens}}},"dimensions":{{"model":"{model}"}}}}}}"#
            ))
        })
        .collect()
}

pub fn batch_bodies(customers: usize, size: usize) -> Vec<Bytes> {
    let mut rng = rng(3);
    (0..BATCH_BODIES).map(|_| batch_body(&mut rng, customers, size, |_| None)).collect()
}

/// The tokens one record or batch body carries, for comparing what was acknowledged with
/// what was stored.
pub fn tokens_of(body: &Bytes) -> anyhow::Result<i64> {
    let parsed: serde_json::Value = serde_json::from_slice(body)?;
    let tokens = |event: &serde_json::Value| {
        event["values"]["tokens"].as_i64().ok_or_else(|| anyhow::anyhow!("an event without whole tokens"))
    };
    match parsed["events"].as_array() {
        Some(events) => events.iter().map(tokens).sum(),
        None => tokens(&parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_batches_are_valid_json_within_the_backdate_window() {
        let now = Utc::now();
        let batches = preload_batches(2_500, 10, now);
        assert_eq!(batches.len(), 3);
        let mut total = 0;
        for batch in &batches {
            let parsed: serde_json::Value = serde_json::from_slice(batch).unwrap();
            let events = parsed["events"].as_array().unwrap();
            total += events.len();
            for event in events {
                let at = DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).unwrap();
                assert!(at < now && at > now - Duration::days(31));
                assert!(event["values"]["tokens"].as_i64().unwrap() > 0);
            }
        }
        assert_eq!(total, 2_500);
    }

    #[test]
    fn scenario_bodies_parse() {
        for body in check_bodies(3).iter().chain(&record_bodies(3)[..3]).chain(&consume_bodies(3)[..3]) {
            let parsed: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(parsed["customerId"].as_str().unwrap().starts_with("cust-"));
        }
        let consume: serde_json::Value = serde_json::from_slice(&consume_bodies(3)[0]).unwrap();
        assert_eq!(consume["mode"], "consume");
        assert!(consume["event"]["values"]["tokens"].as_i64().unwrap() > 0);
        let batch: serde_json::Value = serde_json::from_slice(&batch_bodies(3, 7)[0]).unwrap();
        assert_eq!(batch["events"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn tokens_of_a_record_and_of_a_batch() {
        assert_eq!(tokens_of(&Bytes::from_static(br#"{"customerId":"c","values":{"tokens":12}}"#)).unwrap(), 12);
        let batch = Bytes::from_static(br#"{"events":[{"values":{"tokens":2}},{"values":{"tokens":3}}]}"#);
        assert_eq!(tokens_of(&batch).unwrap(), 5);
        assert!(tokens_of(&Bytes::from_static(br#"{"values":{}}"#)).is_err());
    }
}
