//! Wiring: shared state, the router (health, API, dashboard, static files) and serving.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tower_service::Service;
use tracing::Level;

use crate::auth::keys::KeyAuthenticator;
use crate::auth::operators::{random_token, require_operator, session_key, session_layer, UiSettings};
use crate::auth::rate_limit::RateLimiter;
use crate::clock::Clock;
use crate::config::{Config, ConnectionLimits};
use crate::db::Db;
use crate::domain::webhooks::TargetPolicy;
use crate::engine::Engine;
use crate::error::{ErrorBody, ErrorDetail};
use crate::telemetry::{request_span, ObserveLayer, RandomRequestId};

/// What every handler shares. Every layer and extractor that takes the state clones it for
/// each request, so it is one `Arc`: a clone costs one reference count, not one per field (the
/// Leptos options alone hold several).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub engine: Arc<Engine>,
    pub keys: Arc<KeyAuthenticator>,
    pub ui: Arc<UiSettings>,
    pub leptos: LeptosOptions,
    /// Which webhook receivers endpoints may name.
    pub webhook_policy: TargetPolicy,
    /// How long a rotated webhook secret keeps signing, unless the rotation says.
    pub webhook_secret_grace: chrono::Duration,
    pub rate_limits: Arc<RateLimiter>,
    /// Origins allowed to call `/v1/client/…` from a browser.
    pub cors_allowed_origins: Arc<Vec<String>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Connects to the database, applies migrations and makes sure the default project exists.
pub async fn build_state(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url).await?;
    db.claim_sole_writer()?;
    // Only the file's sole writer may: another process may be serving it meanwhile.
    db.recount_unsaved_counters(clock.now()).await?;
    db.ensure_default_project(clock.now().timestamp_millis()).await?;
    let secret = match &config.session_secret {
        Some(secret) => secret.clone(),
        None => db.setting_or_insert("session_secret", &random_token()).await?,
    };
    let ui = UiSettings {
        sessions: db.session_rows().await?,
        session_key: session_key(&secret),
        cookie_secure: config.secure_cookies(),
    };
    let leptos = LeptosOptions::builder().output_name("limitry").site_addr(config.bind).build();
    let rate_limits = Arc::new(RateLimiter::new(config.rate_limits, db.clone(), clock.clone()));
    Ok(AppState(Arc::new(SharedState {
        rate_limits,
        cors_allowed_origins: Arc::new(config.cors_allowed_origins.clone()),
        engine: Arc::new(Engine::new(db, clock, config.max_backdate_days)),
        keys: Arc::new(KeyAuthenticator::default()),
        ui: Arc::new(ui),
        leptos,
        webhook_policy: config.webhooks.target_policy,
        webhook_secret_grace: config.webhooks.secret_grace,
    })))
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(crate::ui::App);
    let context_state = state.clone();
    // Every dashboard page, form and download sits behind an operator session; the JSON API
    // and health checks stay outside it, so the hot path pays nothing for it.
    let dashboard = Router::new()
        .leptos_routes_with_context(&state, routes, move || provide_context(context_state.clone()), crate::ui::shell)
        .merge(crate::ui::forms::router())
        .merge(crate::ui::downloads::router())
        .merge(crate::ui::projects::router())
        // Inside `require_operator`, whose session it reads.
        .layer(middleware::from_fn_with_state(state.clone(), crate::ui::projects::choose_project))
        .layer(middleware::from_fn_with_state(state.clone(), require_operator))
        .layer(session_layer(&state.ui))
        .layer(middleware::map_response(dashboard_headers));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/style.css", get(stylesheet))
        .route("/favicon.svg", get(favicon))
        .merge(
            crate::api::router()
                .route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::rate_limit::limit_api_keys)),
        )
        .merge(crate::api::client::client_routes(&state.cors_allowed_origins))
        .merge(dashboard)
        // Outermost, so that no error answer of any layer escapes without our JSON body.
        .layer(middleware::from_fn(crate::error::uniform_errors))
        .with_state(state)
}

/// The router with `GET /metrics` (unless it has a listener of its own) and the layers every
/// request is served under.
fn service(state: AppState, limits: &ConnectionLimits, with_metrics: bool) -> Router {
    let mut app = router(state.clone());
    if with_metrics {
        app = app.route("/metrics", get(crate::telemetry::render).with_state(state.clone()));
    }
    observed(app, &state.engine, limits)
}

/// `GET /metrics` alone, for a listener of its own (`--metrics-bind`).
fn metrics_service(state: AppState, limits: &ConnectionLimits) -> Router {
    let engine = state.engine.clone();
    observed(Router::new().route("/metrics", get(crate::telemetry::render)).with_state(state), &engine, limits)
}

/// The layers around every route, outermost first: the request id (the client's
/// `x-request-id`, else a new one) echoed on every answer; the request's span; measurement,
/// panics turned into 500s and 5xx logged with their cause; then the request timeout, inside
/// them all so that its 408s are measured, logged and carry the id too.
fn observed(app: Router, engine: &Arc<Engine>, limits: &ConnectionLimits) -> Router {
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG).latency_unit(LatencyUnit::Micros))
                    .on_body_chunk(())
                    .on_eos(())
                    // Failed requests are logged by `ObserveLayer`, with their cause.
                    .on_failure(()),
            )
            .layer(ObserveLayer::new(engine.clone()))
            .layer(RequestTimeoutLayer(limits.request_timeout)),
    )
}

/// Pages render on the server and work without JavaScript: nothing needs a script, an inline
/// style or a frame, so the policy allows none of them — injected markup could do nothing.
const DASHBOARD_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every dashboard answer (the API and static files go without: JSON is
/// not rendered by browsers, and the hot path pays nothing). Pages show operators' data and,
/// once, new secrets: nothing is stored by browsers or proxies (`no-store`).
async fn dashboard_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DASHBOARD_CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The process is up. Also the bare baseline the benchmark compares against.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.db().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../style/main.css"))
}

async fn favicon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml")], include_str!("../public/favicon.svg"))
}

/// A server running in the background, stopped by `shutdown` (or abruptly, when dropped).
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, when it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    serving: Option<Serving>,
}

impl RunningServer {
    /// Stops gracefully, as the service does on SIGTERM: see `Serving::stop`.
    pub async fn shutdown(mut self) {
        if let Some(serving) = self.serving.take() {
            serving.stop(&self.state).await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.stop.cancel();
            serving.workers.abort();
        }
    }
}

/// Binds (port 0 picks a free port) and serves in the background.
pub async fn spawn(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    let (state, serving, addr, metrics_addr) = start(config, clock).await?;
    Ok(RunningServer { addr, metrics_addr, state, serving: Some(serving) })
}

/// Serves until Ctrl-C or SIGTERM, then stops gracefully (see `Serving::stop`).
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let (state, serving, addr, metrics_addr) = start(&config, clock).await?;
    tracing::info!(database = state.engine.db().kind(), "listening on http://{addr}");
    if let Some(metrics_addr) = metrics_addr {
        tracing::info!("metrics on http://{metrics_addr}/metrics");
    }
    shutdown_signal().await;
    tracing::info!("stopping: finishing requests in flight, queued records and webhook attempts");
    serving.stop(&state).await;
    tracing::info!("stopped");
    Ok(())
}

/// What runs once started: the listeners and the background workers, all stopped by `stop`.
struct Serving {
    stop: CancellationToken,
    listeners: Vec<JoinHandle<()>>,
    workers: Workers,
}

async fn start(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(AppState, Serving, SocketAddr, Option<SocketAddr>)> {
    let state = build_state(config, clock).await?;
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_bind {
        Some(bind) => Some(TcpListener::bind(bind).await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let stop = CancellationToken::new();
    let limits = config.connections;
    let app = service(state.clone(), &limits, metrics_listener.is_none());
    let mut listeners = vec![tokio::spawn(serve(listener, app, limits, stop.clone()))];
    if let Some(metrics_listener) = metrics_listener {
        let app = metrics_service(state.clone(), &limits);
        listeners.push(tokio::spawn(serve(metrics_listener, app, limits, stop.clone())));
    }
    let workers = spawn_workers(&state, config, &stop);
    Ok((state, Serving { stop, listeners, workers }, addr, metrics_addr))
}

impl Serving {
    /// Stops accepting connections and lets the requests in flight finish (each within the
    /// request timeout); meanwhile the workers stop, webhook attempts in flight being recorded
    /// first. Then every queued record is committed and the database closed. Whatever was
    /// acknowledged is stored, and the outbox holds whatever is still to deliver.
    async fn stop(self, state: &AppState) {
        self.stop.cancel();
        for listener in self.listeners {
            let _ = listener.await;
        }
        self.workers.stop().await;
        state.engine.shutdown().await;
        state.engine.db().close().await;
    }
}

/// How long after the request timeout a graceful stop still waits for connections to finish.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 until `stop`, then lets in-flight requests finish. Unlike
/// `axum::serve` it bounds what a client can hold: headers must arrive within the header-read
/// timeout (slow-loris clients are cut off, idle keep-alive connections closed), and at most
/// `max_connections` are served at once — beyond that, connections wait in the listen backlog
/// rather than costing the process file descriptors and memory.
async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Answers are small and written whole: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // Handlers see the peer as axum's `ConnectInfo`, as with `into_make_service_with_connect_info`.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            app.clone().call(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's doing (reset, timed out, malformed): nothing to report.
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close now; a request in flight is answered within the request timeout
    // (a download still streaming past that is cut off).
    let drain = limits.request_timeout + DRAIN_MARGIN;
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open {}s after the stop began are abandoned", drain.as_secs());
    }
}

/// Bounds the time from a request's headers to its answer, reading the body included, so a
/// client trickling a body cannot hold a handler. A response that has started (a streamed
/// download) is not cut. Hand-written rather than `tower_http::timeout`, whose 408 is an empty
/// body that keeps the connection: this one answers in the JSON error shape on every route and
/// closes the connection, which may still hold the unread rest of a trickled body.
#[derive(Clone, Copy)]
struct RequestTimeoutLayer(Duration);

impl<S> tower_layer::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;
    fn layer(&self, inner: S) -> RequestTimeout<S> {
        RequestTimeout { inner, timeout: self.0 }
    }
}

#[derive(Clone)]
struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for RequestTimeout<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TimedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        TimedResponse { answer: self.inner.call(request), deadline: tokio::time::sleep(self.timeout) }
    }
}

pin_project_lite::pin_project! {
    struct TimedResponse<F> {
        #[pin]
        answer: F,
        #[pin]
        deadline: tokio::time::Sleep,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for TimedResponse<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.answer.poll(cx) {
            return Poll::Ready(answer);
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(request_timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// 408 in the error shape every API answer uses.
fn request_timed_out() -> Response {
    let status = StatusCode::REQUEST_TIMEOUT;
    let body = ErrorBody {
        error: ErrorDetail {
            code: "request_timeout".into(),
            message: "the request took too long to arrive or to answer".into(),
            status: status.as_u16(),
            field: None,
        },
    };
    // The connection may hold the rest of an unread body: close it rather than read on.
    (status, [(header::CONNECTION, "close")], Json(body)).into_response()
}

/// How often held reservations past their expiry are released. Operations on a balance also
/// expire its due holds first, so this only bounds how long a reading can show a stale hold.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// How often recorded latencies are folded into their histograms between scrapes.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The background work: expiring holds, delivering webhooks, metrics upkeep (stopped by the
/// token, each between two rounds of work) and hearing other instances (aborted).
struct Workers {
    graceful: Vec<JoinHandle<()>>,
    abortable: Vec<JoinHandle<()>>,
}

impl Workers {
    async fn stop(self) {
        self.abortable.iter().for_each(JoinHandle::abort);
        for worker in self.graceful {
            let _ = worker.await;
        }
    }

    fn abort(&self) {
        self.graceful.iter().chain(&self.abortable).for_each(JoinHandle::abort);
    }
}

fn spawn_workers(state: &AppState, config: &Config, stop: &CancellationToken) -> Workers {
    let engine = &state.engine;
    let graceful = vec![
        every(EXPIRY_INTERVAL, stop.clone(), engine.clone(), |engine| async move {
            if let Err(err) = engine.expire_due_holds().await {
                tracing::warn!(error = %err, "could not expire reservations");
            }
            if let Err(err) = engine.expire_due_reservations().await {
                tracing::warn!(error = %err, "could not expire reservations on limits");
            }
        }),
        every(METRICS_UPKEEP_INTERVAL, stop.clone(), engine.clone(), |engine| async move {
            engine.metrics().run_upkeep();
        }),
        crate::webhooks::spawn_worker(engine.clone(), config.webhooks.clone(), stop.clone()),
    ];
    let mut abortable = vec![
        crate::auth::operators::spawn_session_cleanup(state.ui.sessions.clone()),
        crate::auth::rate_limit::spawn_flusher(state.rate_limits.clone()),
        crate::auth::client_tokens::spawn_sweeper(state.engine.clone()),
    ];
    abortable.extend(crate::engine::listener::spawn(engine.clone()));
    Workers { graceful, abortable }
}

/// Runs `work` every `interval` until `stop`; a round under way is finished first.
fn every<W, F>(interval: Duration, stop: CancellationToken, engine: Arc<Engine>, work: W) -> JoinHandle<()>
where
    W: Fn(Arc<Engine>) -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => work(engine.clone()).await,
                () = stop.cancelled() => return,
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
