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

/// `GET /metrics`: the dashboard's counters, the web's streams app's counters, and consumer
/// lag when the pipeline source knows it.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.inner.metrics.render(&mut out);
    out.push_str("# HELP ow_web_lookups_pending Player look-ups waiting for the pipeline.\n");
    out.push_str("# TYPE ow_web_lookups_pending gauge\n");
    out.push_str(&format!(
        "ow_web_lookups_pending {}\n",
        state.inner.lookups.len()
    ));
    if let Some(streams) = &state.inner.streams {
        out.push_str(&streams.metrics().to_prometheus(&streams.application_id()));
    }
    if let Some(source) = &state.inner.pipeline {
        match source.snapshot().await {
            Ok(view) => {
                out.push_str(
                    "# HELP ow_web_consumer_lag Records not yet consumed, by group and topic.\n",
                );
                out.push_str("# TYPE ow_web_consumer_lag gauge\n");
                for group in &view.groups {
                    let mut topics: Vec<&str> =
                        group.partitions.iter().map(|p| p.topic.as_str()).collect();
                    topics.sort_unstable();
                    topics.dedup();
                    for topic in topics {
                        if let Some(lag) = view.lag(&group.group, topic) {
                            out.push_str(&format!(
                                "ow_web_consumer_lag{{group=\"{}\",topic=\"{}\"}} {lag}\n",
                                escape(&group.group),
                                escape(topic)
                            ));
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "no lag for /metrics"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}
