//! The HTTP surface: the router, its handlers, and the layers every answer goes through
//! (security headers, request metrics, URI and body limits, cross-site POST refusal, panics
//! turned into 500s).

mod client;
pub(crate) mod error;
mod ops;
mod pipeline;
mod players;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use self::error::AppError;
use crate::AppState;

/// The Content-Security-Policy of every answer: no inline script or style, images from
/// anywhere over https (OverFast's CDN), no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' https: data:; \
     style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";
/// Longest path and query accepted, in bytes.
pub(crate) const MAX_URI_BYTES: usize = 2048;
/// Largest request body accepted, in bytes (forms here carry nothing).
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// The dashboard's router over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that rate limits see client
/// addresses (see [`serve`](crate::serve)).
///
/// | method | path | what |
/// |---|---|---|
/// | GET | `/` | search box, recently viewed and tracked players |
/// | GET | `/search?q=Name%231234` | redirect to the player page, 400 if not a battletag |
/// | GET | `/players/{id}` | player page (`?platform=&mode=&hero=&sort=&dir=`) |
/// | POST | `/players/{id}/refresh` | ask for a new fetch, redirect back |
/// | GET | `/api/players/{id}` | the player's data as JSON |
/// | GET | `/api/players/{id}/status` | the look-up state; with `?version=V&wait_ms=` a long-poll that answers once it is not `V` (the page script) |
/// | GET | `/pipeline` | the pipeline page |
/// | GET | `/pipeline/topics/{name}` | last records of a topic |
/// | POST | `/pipeline/stages/{stage}/pause`, `/resume` | pause or resume a stage |
/// | GET | `/api/pipeline` | the pipeline as JSON |
/// | GET | `/api/topics/{name}/records?limit=` | last records of a topic as JSON |
/// | GET | `/healthz`, `/metrics` | health, Prometheus metrics |
/// | GET | `/static/app.css`, `/static/app.js` | stylesheet and script |
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(players::home))
        .route("/search", get(players::search))
        .route("/players/{id}", get(players::player))
        .route("/players/{id}/refresh", post(players::refresh))
        .route("/api/players/{id}", get(players::player_json))
        .route("/api/players/{id}/status", get(players::status_json))
        .route("/pipeline", get(pipeline::page))
        .route("/pipeline/topics/{name}", get(pipeline::records_page))
        .route("/pipeline/stages/{stage}/pause", post(pipeline::pause))
        .route("/pipeline/stages/{stage}/resume", post(pipeline::resume))
        .route("/api/pipeline", get(pipeline::json))
        .route("/api/topics/{name}/records", get(pipeline::records_json))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/static/app.css", get(ops::css))
        .route("/static/app.js", get(ops::js))
        .fallback(not_found)
        .layer(middleware::from_fn(guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state);
    let headers: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    let mut router = routes;
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(CatchPanicLayer::custom(|_panic| {
        tracing::error!("a request handler panicked");
        AppError::Internal(crate::Error::Task {
            reason: "handler panicked".into(),
        })
        .into_response()
    }))
}

async fn not_found() -> AppError {
    AppError::NotFound("there is no page at this address".into())
}

/// Refuses over-long URIs, and state-changing requests sent from other sites (a form on
/// another site posting to this dashboard): browsers say where a request comes from in
/// `Sec-Fetch-Site` and `Origin`.
/// Refusals of the JSON API (`/api/...`) are JSON, like its other errors; the rest are pages.
async fn guard(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let api = uri.path().starts_with("/api/");
    let refuse = |error: AppError| {
        if api {
            error.json()
        } else {
            error.into_response()
        }
    };
    let length = uri.path().len() + uri.query().map_or(0, str::len);
    if length > MAX_URI_BYTES {
        return refuse(AppError::UriTooLong);
    }
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && is_cross_site(&request)
    {
        return refuse(AppError::CrossSite);
    }
    next.run(request).await
}

fn is_cross_site(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        });
    match (origin_host, host) {
        (Some(o), Some(h)) => o != h,
        _ => true,
    }
}

/// Counts every answer by route template and status, with its latency.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.inner.metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
