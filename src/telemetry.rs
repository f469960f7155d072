//! Observability: Prometheus metrics (a recorder per engine, rendered at `GET /metrics`), the
//! layer that measures every HTTP request and logs failed ones with their cause, request ids,
//! request spans, and the log format.
//!
//! A recorder per engine rather than one for the process keeps several services in one process
//! (the test suite) apart. What the hot path counts is registered once, when the engine starts,
//! so a check or a request costs a few atomic increments and no label is built per request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::engine::Engine;
use crate::error::{AppError, ErrorCause};
use crate::server::AppState;

/// The log filter when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// The route label of requests no route matched: never the raw path, which a client chooses.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets, in seconds: from a check answered from memory to a slow export.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How a check was answered, as the wire's `reason` says it (`allowed` when none).
const CHECK_OUTCOMES: [&str; 3] = ["allowed", "limit_exceeded", "insufficient_balance"];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// By source (memory, database), then by outcome (`CHECK_OUTCOMES`).
    checks: [[Counter; 3]; 2],
    events_stored: Counter,
    events_duplicate: Counter,
    record_groups: RecordGroups,
    requests_in_flight: Gauge,
    /// Request counters and latency histograms by route template, then method and status;
    /// registered on a route's first answer of each kind.
    http: RwLock<HashMap<Box<str>, Vec<HttpSeries>>>,
}

/// Record transactions (group commits) by source: memory (nothing read before writing) or
/// database. Shared with the group commit's writer.
#[derive(Clone)]
pub struct RecordGroups([Counter; 2]);

impl RecordGroups {
    pub fn committed(&self, from_memory: bool) {
        self.0[usize::from(!from_memory)].increment(1);
    }
}

struct HttpSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("limitry_http_request_duration_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let (checks, events_stored, events_duplicate, record_groups, requests_in_flight) =
            metrics::with_local_recorder(&recorder, || {
                describe();
                let checks = ["memory", "database"].map(|source| {
                    CHECK_OUTCOMES.map(
                        |outcome| metrics::counter!("limitry_checks_total", "source" => source, "outcome" => outcome),
                    )
                });
                (
                    checks,
                    metrics::counter!("limitry_events_recorded_total", "outcome" => "stored"),
                    metrics::counter!("limitry_events_recorded_total", "outcome" => "duplicate"),
                    RecordGroups(
                        ["memory", "database"]
                            .map(|source| metrics::counter!("limitry_record_groups_total", "source" => source)),
                    ),
                    metrics::gauge!("limitry_http_requests_in_flight"),
                )
            });
        Metrics {
            recorder,
            handle,
            checks,
            events_stored,
            events_duplicate,
            record_groups,
            requests_in_flight,
            http: RwLock::default(),
        }
    }
}

/// Help lines of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("limitry_http_requests_total", "HTTP requests answered, by method, route template and status");
    describe_histogram!(
        "limitry_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's headers to its answer's headers, by method, route template and status"
    );
    describe_gauge!("limitry_http_requests_in_flight", "HTTP requests being answered now");
    describe_counter!(
        "limitry_checks_total",
        "Limit checks answered, by source (memory: nothing read from the database) and outcome \
         (allowed, limit_exceeded, insufficient_balance)"
    );
    describe_counter!(
        "limitry_events_recorded_total",
        "Events acknowledged, by outcome (stored, or duplicate: an idempotency key seen before)"
    );
    describe_counter!(
        "limitry_record_groups_total",
        "Record transactions committed (each one a group of records, batches and consumes), by source \
         (memory: nothing read from the database before writing)"
    );
    describe_counter!(
        "limitry_balance_operations_total",
        "Balance operations answered, by operation (credit, debit, reserve, commit, release) and outcome \
         (applied, insufficient_balance, replayed: an Idempotency-Key seen before)"
    );
    describe_counter!(
        "limitry_webhook_deliveries_total",
        "Webhook delivery attempts, by outcome (delivered, retrying: failed and scheduled again, gave_up: \
         failed for the last time)"
    );
    describe_gauge!("limitry_webhook_queue_depth", "Webhook deliveries waiting to be sent or retried");
    describe_gauge!("limitry_record_queue_depth", "Record requests queued for the next group commit");
    describe_gauge!("limitry_db_pool_connections", "Database connections held by the pool, by state (idle, in_use)");
    describe_gauge!("limitry_db_pool_max_connections", "Most connections the database pool opens");
    describe_gauge!(
        "limitry_cache_entries",
        "Entries held in memory for the check path, by cache (customers, counters)"
    );
}

impl Metrics {
    /// Runs `measure` (the `metrics` macros) against this recorder. For paths that are not
    /// hot: each call looks its series up by name and labels.
    pub fn record(&self, measure: impl FnOnce()) {
        metrics::with_local_recorder(&self.recorder, measure);
    }

    /// A check's answer: whether it read the database, and its `reason` (none when allowed).
    pub fn check_answered(&self, read_database: bool, reason: Option<&str>) {
        let outcome = match reason {
            None => 0,
            Some("limit_exceeded") => 1,
            Some(_) => 2,
        };
        self.checks[usize::from(read_database)][outcome].increment(1);
    }

    /// Events acknowledged by one record or batch.
    pub fn events_recorded(&self, duplicates: usize, stored: usize) {
        self.events_stored.increment(stored as u64);
        self.events_duplicate.increment(duplicates as u64);
    }

    /// The counters of record transactions, for the writer that commits them.
    pub fn record_groups(&self) -> RecordGroups {
        self.record_groups.clone()
    }

    /// A balance operation answered with `outcome`.
    pub fn balance_operation(&self, operation: &'static str, outcome: &'static str) {
        self.record(|| {
            metrics::counter!("limitry_balance_operations_total", "operation" => operation, "outcome" => outcome)
                .increment(1)
        });
    }

    /// A webhook delivery attempt settled with `outcome`.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.record(|| metrics::counter!("limitry_webhook_deliveries_total", "outcome" => outcome).increment(1));
    }

    /// One answered request. The route is the template (`/v1/limits/{id}`), never the raw path.
    fn request_answered(&self, method: &'static str, route: Option<&str>, status: u16, elapsed: Duration) {
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        let seconds = elapsed.as_secs_f64();
        {
            let series = self.http.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = series.get(route).and_then(|all| all.iter().find(|s| s.is(method, status))) {
                series.requests.increment(1);
                series.duration.record(seconds);
                return;
            }
        }
        let mut all = self.http.write().unwrap_or_else(PoisonError::into_inner);
        let of_route = all.entry(route.into()).or_default();
        if !of_route.iter().any(|s| s.is(method, status)) {
            let labels = [
                ("method", method.to_string()),
                ("route", route_label(route).into_owned()),
                ("status", status.to_string()),
            ];
            let (requests, duration) = metrics::with_local_recorder(&self.recorder, || {
                (
                    metrics::counter!("limitry_http_requests_total", &labels),
                    metrics::histogram!("limitry_http_request_duration_seconds", &labels),
                )
            });
            of_route.push(HttpSeries { method, status, requests, duration });
        }
        if let Some(series) = of_route.iter().find(|s| s.is(method, status)) {
            series.requests.increment(1);
            series.duration.record(seconds);
        }
    }

    /// Every measurement so far, in Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded latencies into their histograms; without it they pile up between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl HttpSeries {
    fn is(&self, method: &str, status: u16) -> bool {
        self.status == status && self.method == method
    }
}

/// A route template as labels and logs show it: `/v1/meters/:id` for axum's
/// `/v1/meters/{id}`, so that PromQL regular expressions (`route=~"/v1/meters/.*"`) and text
/// parsers need no escaping of braces.
pub fn route_label(template: &str) -> std::borrow::Cow<'_, str> {
    if !template.contains('{') {
        return template.into();
    }
    template
        .split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if name.starts_with('*') => name.to_string(),
            Some(name) => format!(":{name}"),
            None => segment.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
        .into()
}

/// A bounded set of method labels: any other method a client invents is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: this service's measurements, in Prometheus text format. Gauges of the
/// database, the queues and the caches are read now.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let engine = &state.engine;
    let pending_deliveries = match engine.db().pending_deliveries().await {
        Ok(pending) => Some(pending),
        Err(err) => {
            tracing::warn!(error = %err, "could not count queued webhook deliveries");
            None
        }
    };
    let pool = engine.db().pool_usage();
    let (customers, counters) = engine.cache_sizes();
    let record_queue = engine.record_queue_depth();
    engine.metrics().record(|| {
        if let Some(pending) = pending_deliveries {
            metrics::gauge!("limitry_webhook_queue_depth").set(pending as f64);
        }
        metrics::gauge!("limitry_record_queue_depth").set(record_queue as f64);
        metrics::gauge!("limitry_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
        metrics::gauge!("limitry_db_pool_connections", "state" => "in_use").set(f64::from(pool.in_use()));
        metrics::gauge!("limitry_db_pool_max_connections").set(f64::from(pool.max));
        metrics::gauge!("limitry_cache_entries", "cache" => "customers").set(customers as f64);
        metrics::gauge!("limitry_cache_entries", "cache" => "counters").set(counters as f64);
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], engine.metrics().render())
}

/// Measures every request (count and latency by route template and status, requests in
/// flight), turns a panic in a handler into a 500, and logs every 5xx with its cause and the
/// request's id. Sits inside the request-id layers and outside the request timeout, so it
/// sees the id and the 408s.
#[derive(Clone)]
pub struct ObserveLayer {
    engine: Arc<Engine>,
}

impl ObserveLayer {
    pub fn new(engine: Arc<Engine>) -> Self {
        ObserveLayer { engine }
    }
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, engine: self.engine.clone() }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S> tower_service::Service<Request> for Observe<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.engine.metrics().requests_in_flight.increment(1.0);
        let facts = RequestFacts {
            engine: self.engine.clone(),
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            request_id: request.extensions().get::<RequestId>().map(|id| id.header_value().clone()),
            started: Instant::now(),
        };
        ObservedResponse { answer: self.inner.call(request), facts: Some(facts) }
    }
}

/// What is known of a request before it is answered. Dropped unanswered (the client hung up),
/// it still leaves the in-flight gauge.
struct RequestFacts {
    engine: Arc<Engine>,
    method: &'static str,
    route: Option<MatchedPath>,
    request_id: Option<HeaderValue>,
    started: Instant,
}

impl Drop for RequestFacts {
    fn drop(&mut self) {
        self.engine.metrics().requests_in_flight.decrement(1.0);
    }
}

impl RequestFacts {
    fn answered(self, response: &Response) {
        let status = response.status();
        let route = self.route.as_ref().map(MatchedPath::as_str);
        self.engine.metrics().request_answered(self.method, route, status.as_u16(), self.started.elapsed());
        if status.is_server_error() {
            let cause = response.extensions().get::<ErrorCause>().map(|cause| cause.0.as_str());
            let request_id = self.request_id.as_ref().and_then(|id| id.to_str().ok());
            let route = route.map_or(UNMATCHED_ROUTE.into(), route_label);
            // A 503 without a cause is a readiness answer, already logged where it was made.
            if cause.is_some() || status.as_u16() != 503 {
                tracing::error!(
                    request_id,
                    method = self.method,
                    route = %route,
                    status = status.as_u16(),
                    cause,
                    "request failed"
                );
            }
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ObservedResponse<F> {
        #[pin]
        answer: F,
        facts: Option<RequestFacts>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ObservedResponse<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = this.answer;
        // A panicking handler (the release build checks overflow) fails its own request with a
        // 500 instead of dropping the connection; the future is not polled again.
        let response = match std::panic::catch_unwind(AssertUnwindSafe(|| answer.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => response,
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(panic) => {
                AppError::Internal(anyhow::anyhow!("the handler panicked: {}", panic_message(&*panic))).into_response()
            }
        };
        if let Some(facts) = this.facts.take() {
            facts.answered(&response);
        }
        Poll::Ready(Ok(response))
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}

/// Request ids for requests that come without `x-request-id`: 128 random bits in hex, from the
/// thread's generator (no system call per request).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id: u128 = rand::random();
        // Hex on the stack: formatting through `format!` cost more than the rest of the layer.
        let mut hex = [0u8; 32];
        hex::encode_to_slice(id.to_be_bytes(), &mut hex).ok()?;
        HeaderValue::from_bytes(&hex).ok().map(RequestId::new)
    }
}

/// The span every request runs in: method, route template, path and request id. At debug
/// level, so that it costs next to nothing unless asked for (`RUST_LOG=info,tower_http=debug` shows a
/// line per answered request, with its latency).
pub fn request_span(request: &Request) -> Span {
    // The field values are only computed when the span is enabled.
    tracing::debug_span!(
        target: "tower_http::trace::make_span",
        "request",
        method = %request.method(),
        route = %request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE.into(), |p| route_label(p.as_str())),
        path = request.uri().path(),
        request_id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()),
    )
}

/// Logs to stderr, as text or as one JSON object a line, filtered by `RUST_LOG`. Panics are
/// logged through it too, so JSON output stays one object a line.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    std::panic::set_hook(Box::new(|panic| {
        let location = panic.location().map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(location, "panic: {}", panic_message(panic.payload()));
    }));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::clock::SystemClock;
    use crate::db::Db;

    #[test]
    fn route_labels_name_parameters_without_braces() {
        assert_eq!(route_label("/v1/meters/{id}"), "/v1/meters/:id");
        assert_eq!(
            route_label("/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver"),
            "/v1/webhooks/:id/deliveries/:delivery_id/redeliver"
        );
        assert_eq!(route_label("/files/{*rest}"), "/files/*rest");
        assert_eq!(route_label("/v1/limits/check"), "/v1/limits/check");
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_its_cause_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let engine = Arc::new(Engine::new(db, Arc::new(SystemClock), 35));
        let panics = tower::service_fn(|_: Request| async {
            if true {
                panic!("boom");
            }
            Ok::<Response, Infallible>(Response::new(Body::empty()))
        });
        let response =
            ObserveLayer::new(engine.clone()).layer(panics).oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = &response.extensions().get::<ErrorCause>().unwrap().0;
        assert!(cause.contains("panicked: boom"), "{cause}");
        let text = engine.metrics().render();
        assert!(
            text.contains(r#"limitry_http_requests_total{method="GET",route="unmatched",status="500"} 1"#),
            "{text}"
        );
        assert!(text.contains("limitry_http_requests_in_flight 0"), "{text}");
    }
}
