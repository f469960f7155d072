//! Prometheus metrics: each engine owns a recorder, rendered at `GET /metrics`.
//!
//! A recorder per engine rather than one for the process keeps several services in one process
//! (the test suite) apart. Instrumented code calls the `metrics` macros inside `Metrics::record`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::server::AppState;

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }
}

impl Metrics {
    /// Runs `measure` (the `metrics` macros) against this recorder.
    pub fn record(&self, measure: impl FnOnce()) {
        metrics::with_local_recorder(&self.recorder, measure);
    }

    /// Every measurement so far, in Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// `GET /metrics`: this service's measurements, in Prometheus text format.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.engine.metrics().render())
}
