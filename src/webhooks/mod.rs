//! Webhook delivery: a background worker sends the durable outbox with Standard Webhooks
//! signatures, retries on a schedule, logs every attempt, disables endpoints that keep
//! failing, and queues usage summaries when their period closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::webhooks::{AttemptResult, DeliveryJob, NextStep};
use crate::domain::webhooks::{excerpt, sign_all, RetrySchedule, TargetPolicy, RESPONSE_EXCERPT_BYTES};
use crate::domain::windows::window_containing;
use crate::engine::query::usage_summary;
use crate::engine::Engine;

/// How the worker behaves; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub retry: RetrySchedule,
    pub timeout: Duration,
    /// An endpoint failing for this long is disabled.
    pub disable_after: chrono::Duration,
    pub poll_interval: Duration,
    /// Which receivers may be reached (checked at creation and again at every send).
    pub target_policy: TargetPolicy,
    /// How long a rotated secret keeps signing beside the new one, unless the rotation says.
    pub secret_grace: chrono::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(10),
            disable_after: chrono::Duration::hours(24),
            poll_interval: Duration::from_millis(500),
            target_policy: TargetPolicy::default(),
            secret_grace: chrono::Duration::hours(DEFAULT_SECRET_GRACE_HOURS),
        }
    }
}

/// Hours a rotated secret keeps signing by default.
pub const DEFAULT_SECRET_GRACE_HOURS: i64 = 24;

/// Deliveries in flight at once; a hanging receiver holds one slot until its timeout.
const CONCURRENT_DELIVERIES: usize = 16;
/// The client every delivery uses. Redirects are never followed (a public receiver could
/// otherwise bounce the request inside), system proxies are ignored (the checked address must
/// be the one connected to), and names resolve through [`GuardedResolver`].
pub fn delivery_client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy: settings.target_policy }))
        .build()
}

/// Resolves receivers' host names and refuses the connection when any address is not allowed,
/// so the address checked is the address connected to: a name cannot pass a check and then
/// resolve elsewhere for the request (DNS rebinding).
struct GuardedResolver {
    policy: TargetPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // Every address, not only the first: the connector may try any of them.
            for address in &addresses {
                policy.check_address(address.ip()).map_err(|reason| format!("refused: {host} resolves to {reason}"))?;
            }
            // A reserved name is refused even while it resolves to a public address.
            policy.check_host_name(&host).map_err(|reason| format!("refused: {reason}"))?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Sends due deliveries until `stop`, then waits for the attempts in flight to be recorded
/// (each bounded by the receiver timeout), so a graceful stop leaves no delivery half-tried.
pub fn spawn_worker(engine: Arc<Engine>, settings: WebhookSettings, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match delivery_client(&settings) {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "webhook client could not start; deliveries stay queued");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
        let mut ticks = tokio::time::interval(settings.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => break,
            }
            if let Err(err) = queue_usage_summaries(&engine).await {
                tracing::warn!(error = %err, "could not queue usage summaries");
            }
            if let Err(err) = send_due(&engine, &client, &settings, &slots).await {
                tracing::warn!(error = %err, "could not send webhooks");
            }
        }
        let _all_attempts_done = slots.acquire_many(CONCURRENT_DELIVERIES as u32).await;
    })
}

async fn send_due(
    engine: &Arc<Engine>,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    slots: &Arc<Semaphore>,
) -> crate::db::DbResult<()> {
    let now = engine.now();
    let free = slots.available_permits();
    if free == 0 {
        return Ok(());
    }
    for (id, seen_next_attempt_at) in engine.db().due_deliveries(now, free as i64).await? {
        let Ok(slot) = slots.clone().try_acquire_owned() else { break };
        // The lease outlasts the attempt, so a crash mid-attempt only delays the next one.
        let lease_until =
            now + chrono::Duration::from_std(settings.timeout * 3).unwrap_or(chrono::Duration::seconds(30));
        if !engine.db().claim_delivery(&id, seen_next_attempt_at, lease_until).await? {
            continue;
        }
        let Some(job) = engine.db().delivery_job(&id).await? else { continue };
        let (engine, client, settings) = (engine.clone(), client.clone(), settings.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(err) = attempt(&engine, &client, &settings, &job).await {
                tracing::warn!(error = %err, delivery = %job.delivery_id, "could not record a webhook attempt");
            }
        });
    }
    Ok(())
}

/// Sends one delivery once and records how it went.
async fn attempt(
    engine: &Engine,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    job: &DeliveryJob,
) -> crate::db::DbResult<()> {
    let now = engine.now();
    let timestamp = now.timestamp();
    let started = Instant::now();
    // Literal addresses never reach the resolver, and a URL stored before the policy (or
    // under another) must not be sent either: check the text again at every send.
    if let Err(reason) = settings.target_policy.check_url_literal(&job.url) {
        let result = AttemptResult {
            status_code: None,
            error: Some(format!("refused: {reason}")),
            duration_ms: 0,
            response_body: None,
        };
        return settle(engine, settings, job, result, false).await;
    }
    let sent = client
        .post(&job.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("limitry/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &job.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign_all(&job.signing_secrets(now), &job.event_id, timestamp, &job.payload))
        .body(job.payload.clone())
        .send()
        .await;
    let (result, delivered) = match sent {
        Ok(response) => {
            let status = response.status();
            let excerpt = response_excerpt(response).await;
            let result = AttemptResult {
                status_code: Some(i64::from(status.as_u16())),
                error: (!status.is_success()).then(|| format!("receiver answered {status}")),
                duration_ms: started.elapsed().as_millis() as i64,
                response_body: Some(excerpt),
            };
            (result, status.is_success())
        }
        Err(err) => {
            let error =
                if err.is_timeout() { format!("timed out after {:?}", settings.timeout) } else { error_chain(&err) };
            let result = AttemptResult {
                status_code: None,
                error: Some(error),
                duration_ms: started.elapsed().as_millis() as i64,
                response_body: None,
            };
            (result, false)
        }
    };
    settle(engine, settings, job, result, delivered).await
}

/// Records an attempt and decides what comes next.
async fn settle(
    engine: &Engine,
    settings: &WebhookSettings,
    job: &DeliveryJob,
    result: AttemptResult,
    delivered: bool,
) -> crate::db::DbResult<()> {
    let now = engine.now();
    let failures = usize::try_from(job.attempts + 1).unwrap_or(usize::MAX);
    let next = match (delivered, settings.retry.delay_after(failures)) {
        (true, _) => NextStep::Delivered,
        (false, Some(delay)) => {
            NextStep::RetryAt(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)))
        }
        (false, None) => NextStep::GiveUp,
    };
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retrying",
        NextStep::GiveUp => "gave_up",
    };
    engine.db().record_attempt(job, &result, &next, now, now - settings.disable_after).await?;
    engine.metrics().webhook_delivery(outcome);
    Ok(())
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of a receiver's answer, cut at a character boundary;
/// the rest is never read, so a huge answer costs neither memory nor time.
async fn response_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::with_capacity(RESPONSE_EXCERPT_BYTES);
    while bytes.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_EXCERPT_BYTES - bytes.len())]),
            _ => break,
        }
    }
    excerpt(&bytes)
}

/// reqwest's message with its causes: the cause (a refused address, a refused connection) is
/// what the operator needs to read in the delivery log.
fn error_chain(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Queues each subscribed endpoint's summary of the last closed period (UTC), once.
async fn queue_usage_summaries(engine: &Engine) -> crate::db::DbResult<()> {
    let now = engine.now();
    for (project_id, endpoint) in engine.db().summary_endpoints().await? {
        let Some(frequency) = endpoint.summary_frequency else { continue };
        let current = window_containing(frequency.period(), now, Tz::UTC, None);
        let closed =
            window_containing(frequency.period(), current.start - chrono::Duration::milliseconds(1), Tz::UTC, None);
        let Some(end) = closed.end else { continue };
        // Periods that ended before the endpoint existed are history, not news.
        if end <= endpoint.created_at || engine.db().summary_sent(&endpoint.id, closed.start_ms()).await? {
            continue;
        }
        let rows = usage_summary(engine.db(), &project_id, &[(closed.start, end)]).await?;
        let data = serde_json::json!({
            "frequency": frequency.as_str(),
            "periodStart": closed.start,
            "periodEnd": end,
            "totals": rows,
        });
        engine.db().enqueue_summary_once(&project_id, &endpoint.id, closed.start_ms(), data, now).await?;
    }
    Ok(())
}
