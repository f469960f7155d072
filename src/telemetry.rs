//! Prometheus metrics: one recorder for the process, rendered at `GET /metrics`.
//!
//! Instrumented code calls the `metrics` macros; this module installs the Prometheus recorder
//! they report to and renders its text format.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder on first use. `None` if another recorder was installed
/// first (then that one receives the measurements).
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

/// Makes sure measurements are recorded from the start.
pub fn install() {
    handle();
}

/// `GET /metrics`: every measurement of this process, in Prometheus text format.
pub async fn render() -> impl IntoResponse {
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
