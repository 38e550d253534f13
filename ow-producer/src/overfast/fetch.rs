//! The result of one fetch, as data.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ow_domain::battletag::PlayerId;
use ow_domain::{FetchOutcome, RawPlayerProfile};

use super::cache::CacheInfo;

/// How one fetch of `GET /players/{player_id}` ended: every field of the raw event except the
/// request id (see [`ProfileFetch::into_raw`]).
///
/// A fetch never fails: timeouts, refused connections and unreadable bodies are outcomes too, with
/// the reason in [`error`](ProfileFetch::error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileFetch {
    /// The player asked about.
    pub player_id: PlayerId,
    /// The URL asked (`file://…/players/{id}` when replaying).
    pub request_url: String,
    /// When the last attempt's answer arrived (or failed), in milliseconds since the epoch.
    pub fetched_at: i64,
    /// HTTP status of the last attempt; `None` when no answer came (or none was asked).
    pub http_status: Option<u16>,
    /// How it ended.
    pub outcome: FetchOutcome,
    /// The last answer's body, byte for byte; `None` when there was none (or it was not UTF-8,
    /// or longer than the limit).
    pub body: Option<String>,
    /// The last answer's cache headers.
    pub cache: CacheInfo,
    /// What went wrong: set for every outcome but `ok` and `private`.
    pub error: Option<FetchError>,
    /// Attempts made, retries included; 0 when answered from the client's memory without asking.
    pub attempts: u32,
    /// Earliest time this player will be asked about again (`Retry-After`, or a not-found's next
    /// check), in milliseconds since the epoch.
    pub next_attempt_at: Option<i64>,
}

impl ProfileFetch {
    /// The raw event for this fetch, answering request `request_id`.
    ///
    /// ```
    /// # use ow_domain::battletag::PlayerId;
    /// # use ow_producer::overfast::{CacheInfo, ProfileFetch};
    /// # use ow_domain::FetchOutcome;
    /// let fetch = ProfileFetch {
    ///     player_id: PlayerId::parse("TeKrop-2217").unwrap(),
    ///     request_url: "https://overfast-api.tekrop.fr/players/TeKrop-2217".into(),
    ///     fetched_at: 1_700_000_000_000,
    ///     http_status: Some(200),
    ///     outcome: FetchOutcome::Private,
    ///     body: Some(r#"{"summary":{},"stats":null}"#.into()),
    ///     cache: CacheInfo { max_age_secs: Some(600), age_secs: None },
    ///     error: None,
    ///     attempts: 1,
    ///     next_attempt_at: None,
    /// };
    /// let raw = fetch.into_raw("request-1");
    /// assert_eq!(raw.request_id, "request-1");
    /// assert_eq!(raw.player_id, "TeKrop-2217");
    /// assert_eq!(raw.http_status, Some(200));
    /// assert_eq!(raw.cache_max_age_secs, Some(600));
    /// ```
    pub fn into_raw(self, request_id: impl Into<String>) -> RawPlayerProfile {
        RawPlayerProfile {
            request_id: request_id.into(),
            player_id: self.player_id.into(),
            fetched_at: self.fetched_at,
            request_url: self.request_url,
            http_status: self.http_status.map(i32::from),
            outcome: self.outcome,
            body: self.body,
            cache_max_age_secs: self.cache.max_age_secs,
            cache_age_secs: self.cache.age_secs,
            error: self.error.map(|e| e.to_string()),
            attempts: i32::try_from(self.attempts).unwrap_or(i32::MAX),
            next_attempt_at: self.next_attempt_at,
        }
    }

    /// Until when OverFast will answer this player from its cache (see
    /// [`CacheInfo::fresh_until`]).
    pub fn fresh_until(&self) -> Option<i64> {
        self.cache.fresh_until(self.fetched_at)
    }
}

/// What went wrong in a fetch (kept as data in [`ProfileFetch::error`]; its text goes to the raw
/// event's `error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// OverFast answered 404.
    #[error("player not found{}", detail(message))]
    NotFound {
        /// The `error` text of the 404 body, if any.
        message: Option<String>,
    },
    /// Answered from the client's memory of an earlier 404, without asking OverFast.
    #[error(
        "player was not found at the last check; not asking overfast again before {}",
        http_date(*until_ms)
    )]
    NotBefore {
        /// When OverFast may be asked again, in milliseconds since the epoch.
        until_ms: i64,
    },
    /// Replaying, and the directory has no answer for this player.
    #[error("no recorded answer for this player in {dir}")]
    NotRecorded {
        /// The replay directory.
        dir: String,
    },
    /// 429, or 503 with `Retry-After`, and no attempts (or patience) left.
    #[error(
        "rate limited by overfast (http {status}{}){}",
        retry(retry_after),
        detail(message)
    )]
    RateLimited {
        /// The status.
        status: u16,
        /// The `Retry-After` it sent.
        retry_after: Option<Duration>,
        /// The `error` text of the body, if any.
        message: Option<String>,
    },
    /// Every attempt was held back by an earlier `Retry-After` longer than the client waits.
    #[error("overfast asked this client to wait until {}; not asking before", http_date(*until_ms))]
    Paused {
        /// When the client may ask again, in milliseconds since the epoch.
        until_ms: i64,
    },
    /// Any other status that is not an answer (5xx, unexpected 4xx).
    #[error("overfast answered http {status}{}", detail(message))]
    Status {
        /// The status.
        status: u16,
        /// The `error` text of the body, if any.
        message: Option<String>,
    },
    /// No complete answer within the timeout.
    #[error("no complete answer within {}", secs(*after))]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The request could not be sent or no answer came (refused, reset, DNS, TLS…).
    #[error("connection failed: {reason}")]
    Connection {
        /// What went wrong.
        reason: String,
    },
    /// The answer started but its body was cut off.
    #[error("response body was cut off: {reason}")]
    BodyInterrupted {
        /// What went wrong.
        reason: String,
    },
    /// The body is longer than the client reads.
    #[error("response body is longer than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not UTF-8 (so it cannot be kept as text).
    #[error("response body is not valid utf-8: {reason}")]
    BodyNotUtf8 {
        /// Where it breaks.
        reason: String,
    },
    /// A 200 whose body is not JSON.
    #[error("200 response body is not valid json: {reason}")]
    InvalidJson {
        /// What the parser said.
        reason: String,
    },
    /// A 200 whose body is JSON but not a player: no `summary`, no `stats` field, a value of the
    /// wrong type… (the checks of [`ow_domain::overfast::PlayerBody::parse`]).
    #[error("200 response body is not a player profile: {reason}")]
    NotAProfile {
        /// What is missing.
        reason: String,
    },
    /// Replaying, and a recorded file cannot be read.
    #[error("recorded answer {path} cannot be read: {reason}")]
    Replay {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn detail(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": {m}"),
        None => String::new(),
    }
}

fn retry(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}", secs(*d)),
        None => String::new(),
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, for milliseconds since the epoch.
fn http_date(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `ms + d`, saturating.
pub(crate) fn add_ms(ms: i64, d: Duration) -> i64 {
    ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts() {
        assert_eq!(
            FetchError::NotFound {
                message: Some("Player not found".into())
            }
            .to_string(),
            "player not found: Player not found"
        );
        assert_eq!(
            FetchError::NotBefore { until_ms: 0 }.to_string(),
            "player was not found at the last check; not asking overfast again before \
             Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            FetchError::RateLimited {
                status: 429,
                retry_after: Some(Duration::from_secs(1)),
                message: None
            }
            .to_string(),
            "rate limited by overfast (http 429, retry after 1s)"
        );
        assert_eq!(
            FetchError::Timeout {
                after: Duration::from_millis(1500)
            }
            .to_string(),
            "no complete answer within 1.500s"
        );
    }

    #[test]
    fn time_arithmetic_saturates() {
        assert_eq!(add_ms(i64::MAX - 1, Duration::from_secs(10)), i64::MAX);
        assert_eq!(add_ms(1_000, Duration::from_millis(500)), 1_500);
    }
}
