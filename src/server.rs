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
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tower_service::Service;

use crate::auth::keys::KeyAuthenticator;
use crate::auth::operators::{random_token, require_operator, SessionKeys, UiSettings};
use crate::auth::rate_limit::RateLimiter;
use crate::clock::Clock;
use crate::config::{Config, ConnectionLimits};
use crate::db::Db;
use crate::domain::webhooks::TargetPolicy;
use crate::engine::Engine;
use crate::error::{ErrorBody, ErrorDetail};

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub keys: Arc<KeyAuthenticator>,
    pub ui: Arc<UiSettings>,
    pub leptos: LeptosOptions,
    /// Which webhook receivers endpoints may name.
    pub webhook_policy: TargetPolicy,
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
    db.ensure_default_project(clock.now().timestamp_millis()).await?;
    let secret = match &config.session_secret {
        Some(secret) => secret.clone(),
        None => db.setting_or_insert("session_secret", &random_token()).await?,
    };
    let ui = UiSettings { session_keys: SessionKeys::new(&secret)?, cookie_secure: config.secure_cookies() };
    let leptos = LeptosOptions::builder().output_name("limitry").site_addr(config.bind).build();
    let rate_limits = Arc::new(RateLimiter::new(config.rate_limits, db.clone(), clock.clone()));
    Ok(AppState {
        rate_limits,
        cors_allowed_origins: Arc::new(config.cors_allowed_origins.clone()),
        engine: Arc::new(Engine::new(db, clock, config.max_backdate_days)),
        keys: Arc::new(KeyAuthenticator::default()),
        ui: Arc::new(ui),
        leptos,
        webhook_policy: config.webhooks.target_policy,
    })
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
        .layer(middleware::from_fn_with_state(state.clone(), require_operator))
        .layer(middleware::map_response(dashboard_headers));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::telemetry::render))
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

/// The router with the limits every request is served under.
fn service(state: AppState, limits: &ConnectionLimits) -> Router {
    router(state).layer(RequestTimeoutLayer(limits.request_timeout))
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

/// A server running in the background, stopped by `shutdown` (or when dropped).
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub async fn shutdown(mut self) {
        self.workers.iter().for_each(JoinHandle::abort);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.engine.db().close().await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.workers.iter().for_each(JoinHandle::abort);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds (port 0 picks a free port) and serves in the background.
pub async fn spawn(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    let state = build_state(config, clock).await?;
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = service(state.clone(), &config.connections);
    let limits = config.connections;
    let task = tokio::spawn(serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    let workers = spawn_workers(&state, config);
    Ok(RunningServer { addr, state, stop: Some(stop), task: Some(task), workers })
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let state = build_state(&config, clock).await?;
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(database = state.engine.db().kind(), "listening on http://{addr}");
    let workers = spawn_workers(&state, &config);
    serve(listener, service(state.clone(), &config.connections), config.connections, shutdown_signal()).await;
    workers.iter().for_each(JoinHandle::abort);
    state.engine.db().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves HTTP/1.1 until `shutdown`, then lets in-flight requests finish. Unlike
/// `axum::serve` it bounds what a client can hold: headers must arrive within the header-read
/// timeout (slow-loris clients are cut off, idle keep-alive connections closed), and at most
/// `max_connections` are served at once — beyond that, connections wait in the listen backlog
/// rather than costing the process file descriptors and memory.
async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
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
            () = &mut shutdown => break,
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
    graceful.shutdown().await;
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

/// The background work: expiring holds, delivering webhooks, hearing other instances.
fn spawn_workers(state: &AppState, config: &Config) -> Vec<JoinHandle<()>> {
    let mut workers = vec![
        spawn_expiry_worker(state.engine.clone()),
        crate::webhooks::spawn_worker(state.engine.clone(), config.webhooks.clone()),
        crate::auth::rate_limit::spawn_flusher(state.rate_limits.clone()),
        crate::auth::client_tokens::spawn_sweeper(state.engine.clone()),
    ];
    workers.extend(crate::engine::listener::spawn(state.engine.clone()));
    workers
}

fn spawn_expiry_worker(engine: Arc<Engine>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EXPIRY_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = engine.db().expire_due_holds(engine.now()).await {
                tracing::warn!(error = %err, "could not expire reservations");
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
