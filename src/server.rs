//! Wiring: shared state, the router (health, API, dashboard, static files) and serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::keys::KeyAuthenticator;
use crate::auth::operators::{random_token, require_operator, SessionKeys, UiSettings};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub keys: Arc<KeyAuthenticator>,
    pub ui: Arc<UiSettings>,
    pub leptos: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Connects to the database, applies migrations and makes sure the default project exists.
pub async fn build_state(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url).await?;
    db.ensure_default_project(clock.now().timestamp_millis()).await?;
    let secret = match &config.session_secret {
        Some(secret) => secret.clone(),
        None => db.setting_or_insert("session_secret", &random_token()).await?,
    };
    let ui = UiSettings { session_keys: SessionKeys::new(&secret)?, cookie_secure: config.secure_cookies() };
    let leptos = LeptosOptions::builder().output_name("limitry").site_addr(config.bind).build();
    Ok(AppState {
        engine: Arc::new(Engine::new(db, clock, config.max_backdate_days)),
        keys: Arc::new(KeyAuthenticator::default()),
        ui: Arc::new(ui),
        leptos,
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
        .layer(middleware::from_fn_with_state(state.clone(), require_operator));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/style.css", get(stylesheet))
        .route("/favicon.svg", get(favicon))
        .merge(crate::api::router())
        .merge(dashboard)
        .with_state(state)
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
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "server stopped with an error");
        }
    });
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
    axum::serve(listener, router(state.clone())).with_graceful_shutdown(shutdown_signal()).await?;
    workers.iter().for_each(JoinHandle::abort);
    state.engine.db().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often held reservations past their expiry are released. Operations on a balance also
/// expire its due holds first, so this only bounds how long a reading can show a stale hold.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// The background work: expiring holds and delivering webhooks.
fn spawn_workers(state: &AppState, config: &Config) -> Vec<JoinHandle<()>> {
    vec![
        spawn_expiry_worker(state.engine.clone()),
        crate::webhooks::spawn_worker(state.engine.clone(), config.webhooks.clone()),
    ]
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
