//! `/healthz` (the process answers), `/readyz` (NATS and every enabled bridge
//! connected) and `/metrics` (Prometheus text).

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ],
            )
            // Static buckets and a valid matcher cannot fail.
            .expect("valid buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (an embedding program): ours still
        // renders what it records, which is then nothing; say so once.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// How often histogram samples are folded into their buckets. The exporter
/// otherwise keeps every sample until `/metrics` is read: a process nobody
/// scrapes would grow by a few dozen bytes per message, forever.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Fold recorded samples into the histograms now and then, until `stop`.
pub async fn keep_metrics(stop: tokio_util::sync::CancellationToken) {
    let handle = metrics_handle();
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let report = state.health.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "nats": report.nats,
            "bridges": report.bridges,
            "silent_s": report.silent_s,
        })),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Silence is a time since: read now, not counted along the way.
    for (bridge, secs) in state.health.report().silent_s {
        metrics::gauge!("jetbridge_bridge_silent_seconds", "bridge" => bridge).set(secs as f64);
    }
    let handle = metrics_handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
