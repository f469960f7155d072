//! Webhooks as pure rules: event types, endpoint subscriptions, Standard Webhooks signatures,
//! the retry schedule, and when a limit alert is due.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// After a rotation: until when the secret it replaced signs deliveries too (each delivery
    /// then carries two `v1,` signatures). Null when no rotation left one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl WebhookEndpoint {
    /// Until when the previous secret still signs, if it does at `now`.
    pub fn previous_secret_signs_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous_secret_expires_at.filter(|until| now < *until)
    }

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

/// The `webhook-signature` header signed with each secret: the signatures separated by spaces,
/// as Standard Webhooks allows, so a receiver that knows any one of the secrets verifies it.
pub fn sign_all(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|secret| sign(secret, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// The longest grace period a rotated secret may keep signing for: 30 days.
pub const MAX_SECRET_GRACE_HOURS: i64 = 720;

/// Which receivers webhooks may be sent to. By default only public addresses: a URL that
/// names (or resolves to) a private, loopback, link-local or otherwise internal address would
/// let any API key holder make the service call into its own network (SSRF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Self-hosted setups whose receivers live on the private network (and tests) allow them.
    pub allow_private: bool,
}

impl TargetPolicy {
    /// Checks a URL as written: its scheme, a literal address in any notation the URL parser
    /// understands (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` are all normalised by it), and
    /// host names reserved for internal use. Other names are checked again when they resolve.
    pub fn check_url(self, url: &str) -> Result<(), String> {
        match self.check_url_literal(url)? {
            Some(name) => self.check_host_name(&name),
            None => Ok(()),
        }
    }

    /// The check at send time: the scheme and literal addresses, which connect without a
    /// lookup. Names are left to the resolver, which checks the name and every address it
    /// resolves to (`webhooks::GuardedResolver`). Returns the host name, if the URL has one.
    pub fn check_url_literal(self, url: &str) -> Result<Option<String>, String> {
        let not_http = || "must be an http:// or https:// URL".to_string();
        let parsed = url::Url::parse(url).map_err(|_| not_http())?;
        match parsed.host() {
            _ if !matches!(parsed.scheme(), "http" | "https") => Err(not_http()),
            None => Err(not_http()),
            Some(url::Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip)).map(|()| None),
            Some(url::Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip)).map(|()| None),
            Some(url::Host::Domain(name)) => Ok(Some(name.to_string())),
        }
    }

    /// Refuses names reserved for internal use, whatever they resolve to.
    pub fn check_host_name(self, name: &str) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let internal = name == "localhost"
            || INTERNAL_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
            || name == "metadata.google.internal";
        if internal {
            return Err(format!("{name} is an internal host name; webhooks go to public addresses only"));
        }
        Ok(())
    }

    /// Checks one address a receiver's name resolved to, or that its URL names.
    pub fn check_address(self, ip: IpAddr) -> Result<(), String> {
        if self.allow_private || is_public_address(ip) {
            Ok(())
        } else {
            Err(format!("{ip} is not a public address; webhooks go to public addresses only"))
        }
    }
}

/// Names reserved for local or private use: loopback (RFC 6761), mDNS, the `.internal` TLD
/// (cloud metadata services live there) and home networks (RFC 8375).
const INTERNAL_SUFFIXES: [&str; 4] = [".localhost", ".local", ".internal", ".home.arpa"];

/// Whether an address is globally routable unicast: everything else (private, loopback,
/// link-local, CGNAT, multicast, documentation, reserved, IPv4 embedded in IPv6) could reach
/// the service's own network.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                    // "this network", 0.0.0.0
        || a == 10                              // private
        || a == 127                             // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)               // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))  // private
        || (a == 192 && b == 0 && c == 0)       // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)       // documentation
        || (a == 192 && b == 88 && c == 99)     // 6to4 relay anycast
        || (a == 192 && b == 168)               // private
        || (a == 198 && (18..20).contains(&b))  // benchmarking
        || (a == 198 && b == 51 && c == 100)    // documentation
        || (a == 203 && b == 0 && c == 113)     // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96, which holds :: and ::1) forms
    // reach IPv4 hosts through the dual stack: refuse them outright rather than judge the
    // embedded address, so no notation slips through.
    if segments[..5] == [0; 5] && (segments[5] == 0 || segments[5] == 0xffff) {
        return false;
    }
    let first = segments[0];
    !((first & 0xfe00) == 0xfc00             // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80        // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0        // site-local fec0::/10 (deprecated)
        || (first & 0xff00) == 0xff00        // multicast
        || (first == 0x64 && segments[1] == 0xff9b) // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x2001 && segments[1] == 0)      // Teredo
        || first == 0x2002                   // 6to4, embeds any IPv4 address
        || first == 0x0100) // discard-only 100::/64
}

/// The most of a receiver's answer kept in the log (`responseExcerpt`): enough to diagnose a
/// failing receiver, too little to turn the delivery log into a way of reading what a URL
/// answers.
pub const RESPONSE_EXCERPT_BYTES: usize = 256;

/// At most [`RESPONSE_EXCERPT_BYTES`] of text, cut before a partial character.
pub fn excerpt(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(RESPONSE_EXCERPT_BYTES)];
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        // Only the cut split a character: drop its start.
        Err(err) if err.error_len().is_none() => String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned(),
        // Not text: show it with replacement characters.
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
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
    /// Parses delays separated by commas, each a `humantime` duration: `5s,30s,2m,10m,1h,6h,24h`,
    /// also `100ms`, `1h 30m` or `2days`.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        text.split(',')
            .map(|part| {
                let part = part.trim();
                humantime::parse_duration(part).map_err(|err| format!("{part:?} is not a duration like 30s: {err}"))
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

    #[test]
    fn internal_targets_are_refused_in_every_notation() {
        let policy = TargetPolicy::default();
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://127.0.0.1:8080/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://printer.local/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fd00::1]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::a00:1]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "ftp://example.com/",
        ] {
            assert!(policy.check_url(url).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn excerpts_keep_the_start_and_never_split_a_character() {
        assert_eq!(excerpt(b"ok"), "ok");
        assert_eq!(excerpt(&[b'x'; 1000]).len(), RESPONSE_EXCERPT_BYTES);
        let mut text = vec![b'x'; RESPONSE_EXCERPT_BYTES - 1];
        text.extend_from_slice("é".as_bytes());
        assert_eq!(excerpt(&text), "x".repeat(RESPONSE_EXCERPT_BYTES - 1));
    }

    #[test]
    fn public_targets_are_accepted_and_private_ones_when_allowed() {
        let policy = TargetPolicy::default();
        for url in ["https://example.com/hook", "http://8.8.8.8/", "https://[2606:4700::1111]/", "http://100.128.0.1/"]
        {
            assert_eq!(policy.check_url(url), Ok(()), "{url}");
        }
        let open = TargetPolicy { allow_private: true };
        for url in ["http://127.0.0.1:9/x", "http://localhost/", "http://[::1]/", "http://10.1.2.3/"] {
            assert_eq!(open.check_url(url), Ok(()), "{url}");
        }
        assert!(open.check_url("ftp://example.com/").is_err(), "the scheme is checked whatever the policy");
    }
}
