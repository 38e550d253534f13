//! Operations routes: `/healthz`, `/metrics`, and the static stylesheet and script.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ow_stream_core::runtime::StreamsState;
use serde_json::json;

use crate::AppState;

/// The stylesheet, embedded in the binary.
const APP_CSS: &str = include_str!("../../static/app.css");
/// The page script, embedded in the binary.
const APP_JS: &str = include_str!("../../static/app.js");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/app.css`.
pub(crate) async fn css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /static/app.js`.
pub(crate) async fn js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

fn state_name(state: StreamsState) -> &'static str {
    match state {
        StreamsState::Created => "created",
        StreamsState::Running => "running",
        StreamsState::PendingShutdown => "pending_shutdown",
        StreamsState::NotRunning => "not_running",
        StreamsState::Error => "error",
        // States the library may add later.
        _ => "unknown",
    }
}

/// `GET /healthz`: 200 while the web's streams app runs (or when there is none), 503 when it
/// failed or stopped, or while it reaches no broker (with `reason` saying which).
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let Some(streams) = &state.inner.streams else {
        return Json(json!({ "status": "ok" })).into_response();
    };
    let s = streams.state();
    let failure = streams.failure();
    let outage = state.broker_outage();
    let running = failure.is_none() && matches!(s, StreamsState::Created | StreamsState::Running);
    let healthy = running && outage.is_none();
    let reason = if !running {
        Some("the streams application failed or stopped (the error is logged)".to_owned())
    } else {
        outage.as_ref().map(|o| o.text.clone())
    };
    let body = json!({
        "status": if healthy { "ok" } else { "failing" },
        "reason": reason,
        "streams": {
            "application_id": streams.application_id(),
            "state": state_name(s),
            // The failure text stays in the logs: it may name hosts and paths.
            "failed": failure.is_some(),
        },
        "brokers": {
            "reachable": outage.is_none(),
            "unreachable_since": outage.as_ref().map(|o| o.since_ms),
        },
        "lookups_pending": state.inner.lookups.len(),
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: the dashboard's metrics, the web's streams app's, and consumer lag when
/// the pipeline source knows it, as one OpenMetrics document.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    use ow_stream_core::metrics::prometheus_client::encoding::text;
    let metrics = &state.inner.metrics;
    metrics.set_lookups_pending(state.inner.lookups.len());
    if let Some(source) = &state.inner.pipeline {
        match source.snapshot().await {
            Ok(view) => {
                let mut lag = Vec::new();
                for group in &view.groups {
                    let mut topics: Vec<&str> =
                        group.partitions.iter().map(|p| p.topic.as_str()).collect();
                    topics.sort_unstable();
                    topics.dedup();
                    for topic in topics {
                        if let Some(n) = view.lag(&group.group, topic) {
                            lag.push((group.group.clone(), topic.to_owned(), n));
                        }
                    }
                }
                metrics.set_consumer_lag(lag);
            }
            Err(e) => tracing::debug!(error = %e, "no lag for /metrics"),
        }
    }
    let mut out = String::new();
    let encoded = text::encode_registry(&mut out, metrics.registry())
        .and_then(|()| match &state.inner.streams {
            Some(streams) => streams.encode_metrics(&mut out),
            None => Ok(()),
        })
        .and_then(|()| text::encode_eof(&mut out));
    if let Err(e) = encoded {
        tracing::error!(error = %e, "encoding /metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(ow_stream_core::metrics::CONTENT_TYPE),
        )],
        out,
    )
        .into_response()
}
