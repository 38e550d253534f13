//! [`AppError`]: what a handler answers when it cannot answer normally. Client mistakes say
//! what was wrong; server failures are logged in full and answered with a generic message, so
//! internals (broker addresses, paths, upstream bodies) never reach a page.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ow_domain::battletag::BattletagError;

use crate::Error;
use crate::limits::Limited;
use crate::views;

/// Why a request failed, as the client may know it.
#[derive(Debug)]
pub(crate) enum AppError {
    /// Not a battletag: 400 with the reason.
    BadPlayerId {
        /// What was typed.
        input: String,
        /// Why it is not a battletag.
        reason: BattletagError,
    },
    /// Another malformed request: 400.
    BadRequest(String),
    /// Nothing there: 404.
    NotFound(String),
    /// A state-changing request from another site: 403.
    CrossSite,
    /// The URL is too long: 414.
    UriTooLong,
    /// A rate limit refused it: 429 with `Retry-After`.
    Limited(Limited),
    /// The feature is not wired in this deployment: 503.
    Unavailable(&'static str),
    /// The server failed: 500 (details logged only).
    Internal(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownStage { stage } => AppError::NotFound(format!("no stage named {stage}")),
            Error::UnknownTopic { topic } => AppError::NotFound(format!("no topic named {topic}")),
            other => AppError::Internal(other),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

/// Whole seconds, rounded up, at least one.
fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::BadPlayerId { .. } | AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::CrossSite => StatusCode::FORBIDDEN,
            AppError::UriTooLong => StatusCode::URI_TOO_LONG,
            AppError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A title and a message safe to show.
    fn public_text(&self) -> (&'static str, String) {
        match self {
            AppError::BadPlayerId { reason, .. } => {
                ("That is not a battletag", format!("{reason}."))
            }
            AppError::BadRequest(reason) => ("Bad request", reason.clone()),
            AppError::NotFound(what) => ("Not found", format!("{what}.")),
            AppError::CrossSite => (
                "Refused",
                "This request came from another site; send it from the dashboard itself.".into(),
            ),
            AppError::UriTooLong => ("Address too long", "The address is too long.".into()),
            AppError::Limited(limited) => {
                let secs = retry_secs(limited.retry_after());
                let what = match limited {
                    Limited::Player { .. } => "This player was refreshed moments ago",
                    Limited::Client { .. } => "Too many requests from your address",
                };
                ("Slow down", format!("{what}: try again in {secs} s."))
            }
            AppError::Unavailable(what) => (
                "Not available",
                format!("{what} is not available in this deployment."),
            ),
            AppError::Internal(_) => (
                "Something went wrong",
                "The dashboard could not answer. The problem is logged; try again in a moment."
                    .into(),
            ),
        }
    }

    fn log(&self) {
        if let AppError::Internal(e) = self {
            tracing::error!(error = %e, "request failed");
        }
    }

    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            AppError::Limited(l) => {
                HeaderValue::from_str(&retry_secs(l.retry_after()).to_string()).ok()
            }
            _ => None,
        }
    }

    /// The same error as a JSON answer (`{"error": "..."}`), for `/api` routes.
    pub(crate) fn json(self) -> Response {
        self.log();
        let status = self.status();
        let retry = self.retry_after();
        let (_, message) = self.public_text();
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if let Some(v) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let retry = self.retry_after();
        let (title, message) = self.public_text();
        let typed = match &self {
            AppError::BadPlayerId { input, .. } => Some(input.as_str()),
            _ => None,
        };
        let mut response =
            (status, views::error::page(status, title, &message, typed)).into_response();
        if let Some(v) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// An [`AppError`] answered as JSON.
pub(crate) struct ApiError(pub(crate) AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
