//! Webhooks as pure rules: event types, endpoint subscriptions, Standard Webhooks signatures,
//! the retry schedule, and when a limit alert is due.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::quantity::Quantity;

/// What a webhook event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "limit.threshold_reached")]
    LimitThresholdReached,
    #[serde(rename = "limit.exceeded")]
    LimitExceeded,
    #[serde(rename = "balance.low")]
    BalanceLow,
    #[serde(rename = "usage.summary")]
    UsageSummary,
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::LimitThresholdReached,
        EventType::LimitExceeded,
        EventType::BalanceLow,
        EventType::UsageSummary,
        EventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LimitThresholdReached => "limit.threshold_reached",
            EventType::LimitExceeded => "limit.exceeded",
            EventType::BalanceLow => "balance.low",
            EventType::UsageSummary => "usage.summary",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How often an endpoint receives `usage.summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryFrequency {
    Daily,
    Weekly,
    Monthly,
}

impl SummaryFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryFrequency::Daily => "daily",
            SummaryFrequency::Weekly => "weekly",
            SummaryFrequency::Monthly => "monthly",
        }
    }

    pub fn parse(s: &str) -> Option<SummaryFrequency> {
        [Self::Daily, Self::Weekly, Self::Monthly].into_iter().find(|f| f.as_str() == s)
    }

    /// The window period whose closed instances are summarised.
    pub fn period(self) -> super::windows::Period {
        match self {
            SummaryFrequency::Daily => super::windows::Period::Day,
            SummaryFrequency::Weekly => super::windows::Period::Week,
            SummaryFrequency::Monthly => super::windows::Period::Month,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered to this endpoint; empty means all.
    #[schema(value_type = Vec<String>)]
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub summary_frequency: Option<SummaryFrequency>,
    /// When deliveries started failing, if they still do.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the service disabled the endpoint, if it did.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    pub fn subscribes_to(&self, event_type: EventType) -> bool {
        // A test event goes only to the endpoint it was sent to, whatever its filter.
        event_type == EventType::WebhookTest || self.event_types.is_empty() || self.event_types.contains(&event_type)
    }
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` header: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed
/// with the base64-decoded part of the `whsec_` secret (Standard Webhooks).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let signature = match <Hmac<Sha256> as Mac>::new_from_slice(&key) {
        Ok(mut mac) => {
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => String::new(),
    };
    format!("v1,{signature}")
}

/// When to try again after failed attempts, e.g. 5 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        RetrySchedule(vec![
            Duration::from_secs(5),
            Duration::from_secs(30),
            minutes(2),
            minutes(10),
            minutes(60),
            minutes(6 * 60),
            minutes(24 * 60),
        ])
    }
}

impl RetrySchedule {
    /// Parses `5s,30s,2m,10m,1h,6h,24h` (also `ms`).
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        text.split(',')
            .map(|part| {
                let part = part.trim();
                let (number, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len()));
                let n: u64 = number.parse().map_err(|_| format!("{part} is not a duration like 30s"))?;
                match unit {
                    "ms" => Ok(Duration::from_millis(n)),
                    "s" => Ok(Duration::from_secs(n)),
                    "m" => Ok(Duration::from_secs(n * 60)),
                    "h" => Ok(Duration::from_secs(n * 3600)),
                    _ => Err(format!("{part}: use ms, s, m or h")),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|delays| if delays.is_empty() { Err("empty schedule".into()) } else { Ok(RetrySchedule(delays)) })
    }

    /// The delay before the next try after `failed_attempts` failures, or `None` when the
    /// schedule is used up.
    pub fn delay_after(&self, failed_attempts: usize) -> Option<Duration> {
        failed_attempts.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }
}

/// The thresholds (percent) a counter has reached: `used ≥ threshold% of limit`.
pub fn reached_thresholds(thresholds: &[u8], used: Quantity, limit: Quantity) -> Vec<u8> {
    thresholds.iter().copied().filter(|t| i128::from(used.0) * 100 >= i128::from(*t) * i128::from(limit.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_retry_schedule_parses_and_runs_out() {
        let schedule = RetrySchedule::parse("100ms, 2s,1m").unwrap();
        assert_eq!(schedule.delay_after(1), Some(Duration::from_millis(100)));
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(60)));
        assert_eq!(schedule.delay_after(4), None);
        assert!(RetrySchedule::parse("5x").is_err());
        assert_eq!(RetrySchedule::default().0.len(), 7);
    }

    #[test]
    fn thresholds_are_reached_at_their_percentage() {
        let limit = Quantity(1000);
        assert_eq!(reached_thresholds(&[50, 80, 100], Quantity(499), limit), Vec::<u8>::new());
        assert_eq!(reached_thresholds(&[50, 80, 100], Quantity(500), limit), vec![50]);
        assert_eq!(reached_thresholds(&[50, 80, 100], Quantity(1200), limit), vec![50, 80, 100]);
    }
}
