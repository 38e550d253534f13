//! From one answer (HTTP or replayed) to an outcome: the single place that decides `ok`,
//! `private`, `not_found`, `rate_limited` or `upstream_error`, and whether to try again.
//!
//! The status decides between an answer and an error; what a body is, and which 200 bodies are
//! a player, is the domain's body model ([`ow_domain::overfast`]), the one the processor reads
//! bodies with: a 200 is `ok` or `private` exactly when the processor can read it.

use std::time::{Duration, SystemTime};

use ow_domain::FetchOutcome;
use ow_domain::overfast::{BodyError, NotFoundBody, classify_profile, error_message};

use super::cache::CacheInfo;
use super::fetch::FetchError;

/// Longest "not before" taken from a 404 (OverFast's own cap is 6 hours).
pub(crate) const MAX_NOT_FOUND_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// One answer, before classification.
#[derive(Debug)]
pub(crate) struct Answer {
    /// HTTP status; `None` when no answer came.
    pub(crate) status: Option<u16>,
    /// Its cache headers.
    pub(crate) cache: CacheInfo,
    /// Its `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// The complete body, or why there is none.
    pub(crate) body: Result<Vec<u8>, FetchError>,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Final answer.
    No,
    /// Rate limited: wait as told (or back off when not told), then try again.
    After(Option<Duration>),
    /// Upstream error: back off, then try again.
    Backoff,
}

/// The classification of one answer.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) outcome: FetchOutcome,
    pub(crate) body: Option<String>,
    pub(crate) error: Option<FetchError>,
    pub(crate) retry: Retry,
    /// For `not_found`: how long not to ask again.
    pub(crate) not_found_wait: Option<Duration>,
}

impl Verdict {
    fn upstream(body: Option<String>, error: FetchError, retry: Retry) -> Verdict {
        Verdict {
            outcome: FetchOutcome::UpstreamError,
            body,
            error: Some(error),
            retry,
            not_found_wait: None,
        }
    }
}

/// Classifies one answer; `not_found_default` is the wait when a 404 does not say.
pub(crate) fn classify(answer: &Answer, now: SystemTime, not_found_default: Duration) -> Verdict {
    let bytes = match &answer.body {
        Ok(bytes) => bytes,
        Err(error) => return Verdict::upstream(None, error.clone(), Retry::Backoff),
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let error = FetchError::BodyNotUtf8 {
                reason: e.to_string(),
            };
            return Verdict::upstream(None, error, Retry::Backoff);
        }
    };
    let body = (!text.is_empty()).then(|| text.to_owned());
    let Some(status) = answer.status else {
        let error = FetchError::Connection {
            reason: "no status".into(),
        };
        return Verdict::upstream(body, error, Retry::Backoff);
    };
    match status {
        200 => classify_profile_answer(text, body),
        404 => {
            let info = NotFoundBody::parse(text);
            let wait = info.wait(now).unwrap_or(not_found_default);
            Verdict {
                outcome: FetchOutcome::NotFound,
                body,
                error: Some(FetchError::NotFound {
                    message: info.message,
                }),
                retry: Retry::No,
                not_found_wait: Some(wait.min(MAX_NOT_FOUND_WAIT)),
            }
        }
        429 => rate_limited(status, answer.retry_after, text, body),
        503 if answer.retry_after.is_some() => rate_limited(status, answer.retry_after, text, body),
        500..=599 => {
            let error = FetchError::Status {
                status,
                message: error_message(text),
            };
            Verdict::upstream(body, error, Retry::Backoff)
        }
        _ => {
            let error = FetchError::Status {
                status,
                message: error_message(text),
            };
            Verdict::upstream(body, error, Retry::No)
        }
    }
}

fn rate_limited(
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
    body: Option<String>,
) -> Verdict {
    Verdict {
        outcome: FetchOutcome::RateLimited,
        body,
        error: Some(FetchError::RateLimited {
            status,
            retry_after,
            message: error_message(text),
        }),
        retry: Retry::After(retry_after),
        not_found_wait: None,
    }
}

/// A 200: `ok` or `private` when the body is a player ([`classify_profile`]), else an upstream
/// error worth retrying (the body is kept).
fn classify_profile_answer(text: &str, body: Option<String>) -> Verdict {
    match classify_profile(text) {
        Ok(kind) => Verdict {
            outcome: kind.outcome(),
            body,
            error: None,
            retry: Retry::No,
            not_found_wait: None,
        },
        Err(e) => Verdict::upstream(body, not_a_player(e), Retry::Backoff),
    }
}

/// The fetch error of a 200 body that is not a player.
fn not_a_player(error: BodyError) -> FetchError {
    match error {
        BodyError::MalformedJson { source } => FetchError::InvalidJson {
            reason: source.to_string(),
        },
        BodyError::UnexpectedShape { source } => FetchError::NotAProfile {
            reason: source.to_string(),
        },
        other @ (BodyError::MissingSummary
        | BodyError::MissingStats
        | BodyError::OutOfRange { .. }) => FetchError::NotAProfile {
            reason: other.to_string(),
        },
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (0.0..1e9)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(600);

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: Some(status),
            cache: CacheInfo::default(),
            retry_after: None,
            body: Ok(body.as_bytes().to_vec()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn profiles() {
        let v = classify(
            &answer(200, r#"{"summary":{},"stats":{"pc":null}}"#),
            at(0),
            DEFAULT,
        );
        assert_eq!(v.outcome, FetchOutcome::Ok);
        assert_eq!(v.error, None);
        assert_eq!(v.retry, Retry::No);
        let v = classify(
            &answer(200, r#"{"summary":{},"stats":null}"#),
            at(0),
            DEFAULT,
        );
        assert_eq!(v.outcome, FetchOutcome::Private);
        let v = classify(&answer(200, r#"{"summary":{}}"#), at(0), DEFAULT);
        assert_eq!(v.outcome, FetchOutcome::UpstreamError);
        assert!(matches!(v.error, Some(FetchError::NotAProfile { .. })));
        let v = classify(
            &answer(200, r#"{"summary":{},"stats":{"pc""#),
            at(0),
            DEFAULT,
        );
        assert_eq!(v.outcome, FetchOutcome::UpstreamError);
        assert!(matches!(v.error, Some(FetchError::InvalidJson { .. })));
        assert_eq!(v.retry, Retry::Backoff);
        assert_eq!(v.body.as_deref(), Some(r#"{"summary":{},"stats":{"pc""#));
        let v = classify(&answer(200, "[1,2]"), at(0), DEFAULT);
        assert!(matches!(v.error, Some(FetchError::NotAProfile { .. })));
        let v = classify(&answer(200, "{\"stats\":null} x"), at(0), DEFAULT);
        assert!(matches!(v.error, Some(FetchError::InvalidJson { .. })));
        // Bodies with a non-null `stats` that are still not a player: the processor could not
        // read them, so they are not `ok` (they were, before the body model was shared).
        for body in [
            r#"{"stats":{"pc":null}}"#,
            r#"{"summary":null,"stats":{}}"#,
            r#"{"summary":{},"stats":[]}"#,
            r#"{"summary":{"last_updated_at":9223372036854775807},"stats":{}}"#,
            r#"{"summary":{},"stats":{"pc":{"quickplay":{"career_stats":{"ana":{}}}}}}"#,
        ] {
            let v = classify(&answer(200, body), at(0), DEFAULT);
            assert_eq!(v.outcome, FetchOutcome::UpstreamError, "{body}");
            assert!(
                matches!(v.error, Some(FetchError::NotAProfile { .. })),
                "{body}: {:?}",
                v.error
            );
            assert_eq!(v.retry, Retry::Backoff);
            assert_eq!(v.body.as_deref(), Some(body));
        }
    }

    #[test]
    fn not_utf8() {
        let mut a = answer(200, "");
        a.body = Ok(vec![b'{', 0xff, b'}']);
        let v = classify(&a, at(0), DEFAULT);
        assert_eq!(v.outcome, FetchOutcome::UpstreamError);
        assert_eq!(v.body, None);
        assert!(matches!(v.error, Some(FetchError::BodyNotUtf8 { .. })));
    }

    #[test]
    fn not_found_shapes() {
        let nested = r#"{"error":{"error":"Player not found","retry_after":600,"next_check_at":1000600,"check_count":1}}"#;
        let flat = r#"{"error":"Player not found","retry_after":540,"next_check_at":1000600,"check_count":2}"#;
        let plain = r#"{"error":"Player not found"}"#;
        for (body, wait) in [
            (nested, 600),
            (flat, 540),
            (plain, 600),
            ("<html>", 600),
            ("", 600),
        ] {
            let v = classify(&answer(404, body), at(1_000_000), DEFAULT);
            assert_eq!(v.outcome, FetchOutcome::NotFound, "{body}");
            assert_eq!(v.retry, Retry::No);
            assert_eq!(v.not_found_wait, Some(Duration::from_secs(wait)), "{body}");
        }
        // `next_check_at` alone.
        let v = classify(
            &answer(404, r#"{"error":"x","next_check_at":1000030}"#),
            at(1_000_000),
            DEFAULT,
        );
        assert_eq!(v.not_found_wait, Some(Duration::from_secs(30)));
        // A huge `retry_after` is capped.
        let v = classify(
            &answer(404, r#"{"error":"x","retry_after":1e300}"#),
            at(0),
            DEFAULT,
        );
        assert_eq!(v.not_found_wait, Some(MAX_NOT_FOUND_WAIT));
        let v = classify(&answer(404, ""), at(0), DEFAULT);
        assert_eq!(v.body, None);
    }

    #[test]
    fn statuses() {
        let mut a = answer(
            429,
            r#"{"error": "API rate limit reached, please wait for 1 second before retrying"}"#,
        );
        a.retry_after = Some(Duration::from_secs(1));
        let v = classify(&a, at(0), DEFAULT);
        assert_eq!(v.outcome, FetchOutcome::RateLimited);
        assert_eq!(v.retry, Retry::After(Some(Duration::from_secs(1))));
        let mut a = answer(
            503,
            r#"{"error":"Blizzard is temporarily rate limiting this API. Please retry after 5 seconds."}"#,
        );
        a.retry_after = Some(Duration::from_secs(5));
        assert_eq!(
            classify(&a, at(0), DEFAULT).outcome,
            FetchOutcome::RateLimited
        );
        a.retry_after = None;
        let v = classify(&a, at(0), DEFAULT);
        assert_eq!(v.outcome, FetchOutcome::UpstreamError);
        assert_eq!(v.retry, Retry::Backoff);
        let v = classify(
            &answer(504, r#"{"error":"Couldn't get Blizzard page"}"#),
            at(0),
            DEFAULT,
        );
        assert_eq!(
            v.error,
            Some(FetchError::Status {
                status: 504,
                message: Some("Couldn't get Blizzard page".into())
            })
        );
        let v = classify(&answer(400, ""), at(0), DEFAULT);
        assert_eq!(v.outcome, FetchOutcome::UpstreamError);
        assert_eq!(v.retry, Retry::No);
    }

    #[test]
    fn retry_after_forms() {
        let now = at(1_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(at(1_000_010));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(10)));
        let past = httpdate::fmt_http_date(at(10));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
