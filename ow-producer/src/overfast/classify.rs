//! From one answer (HTTP or replayed) to an outcome: the single place that decides `ok`,
//! `private`, `not_found`, `rate_limited` or `upstream_error`, and whether to try again.
//!
//! The bodies OverFast sends (from `TeKrop/overfast-api`, see `samples/overfast/README.md`):
//!
//! * 200: the player, `{"summary": {...}, "stats": {...}}`; a private profile has `"stats": null`.
//! * 404, three shapes, all meaning "no such player":
//!   - the app's first answer, nested: `{"error":{"error":"Player not found","retry_after":600,
//!     "next_check_at":1739634000,"check_count":1}}`;
//!   - nginx's answer while the player is in cooldown, flat: `{"error":"Player not found",
//!     "retry_after":540,"next_check_at":1739634000,"check_count":1}`;
//!   - without the unknown-player cache: `{"error":"Player not found"}`.
//! * 429 (nginx rate limit) with `Retry-After: 1`; 503 with `Retry-After` (Blizzard rate limits
//!   OverFast); 500; 504 (Blizzard did not answer): `{"error":"..."}`.

use std::time::{Duration, SystemTime};

use ow_schemas::FetchOutcome;
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

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
        200 => classify_profile(text, body),
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

/// A 200: `ok` when `stats` holds something, `private` when it is `null`.
fn classify_profile(text: &str, body: Option<String>) -> Verdict {
    match serde_json::from_str::<ProfileProbe>(text) {
        Ok(ProfileProbe {
            stats: StatsProbe::Present,
        }) => Verdict {
            outcome: FetchOutcome::Ok,
            body,
            error: None,
            retry: Retry::No,
            not_found_wait: None,
        },
        Ok(ProfileProbe {
            stats: StatsProbe::Null,
        }) => Verdict {
            outcome: FetchOutcome::Private,
            body,
            error: None,
            retry: Retry::No,
            not_found_wait: None,
        },
        Ok(ProfileProbe {
            stats: StatsProbe::Missing,
        }) => {
            let error = FetchError::NotAProfile {
                reason: "no `stats` field".into(),
            };
            Verdict::upstream(body, error, Retry::Backoff)
        }
        Err(e) => {
            let error = if e.is_data() {
                FetchError::NotAProfile {
                    reason: e.to_string(),
                }
            } else {
                FetchError::InvalidJson {
                    reason: e.to_string(),
                }
            };
            Verdict::upstream(body, error, Retry::Backoff)
        }
    }
}

/// Checks a whole 200 body is JSON and looks at `stats` without building the tree.
struct ProfileProbe {
    stats: StatsProbe,
}

enum StatsProbe {
    Missing,
    Null,
    Present,
}

impl<'de> Deserialize<'de> for ProfileProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = ProfileProbe;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a json object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProfileProbe, A::Error> {
                let mut stats = StatsProbe::Missing;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "stats" {
                        stats = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ProfileProbe { stats })
            }
        }
        d.deserialize_map(Object)
    }
}

impl<'de> Deserialize<'de> for StatsProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<IgnoredAny>::deserialize(d)? {
            None => StatsProbe::Null,
            Some(_) => StatsProbe::Present,
        })
    }
}

/// The `error` text of an OverFast error body (`{"error": "..."}`).
fn error_message(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value.get("error")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(inner) => inner.get("error")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// What a 404 body says, whichever of the three shapes it has.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NotFoundBody {
    pub(crate) message: Option<String>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) next_check_at: Option<i64>,
    pub(crate) check_count: Option<u64>,
}

impl NotFoundBody {
    pub(crate) fn parse(text: &str) -> NotFoundBody {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return NotFoundBody::default();
        };
        // Nested (`{"error": {...}}`) or flat/plain (`{"error": "...", ...}`).
        let fields = match value.get("error") {
            Some(inner @ serde_json::Value::Object(_)) => inner,
            _ => &value,
        };
        let number = |key: &str| -> Option<f64> {
            let v = fields.get(key)?;
            v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)
        };
        NotFoundBody {
            message: fields
                .get("error")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            retry_after: number("retry_after").map(|n| n as u64),
            next_check_at: number("next_check_at").map(|n| n as i64),
            check_count: number("check_count").map(|n| n as u64),
        }
    }

    /// How long not to ask: `retry_after` (relative, so immune to clock skew), else
    /// `next_check_at - now`; `None` when the body says neither.
    pub(crate) fn wait(&self, now: SystemTime) -> Option<Duration> {
        if let Some(secs) = self.retry_after {
            return Some(Duration::from_secs(secs));
        }
        let at = u64::try_from(self.next_check_at?).ok()?;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
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
        assert_eq!(
            NotFoundBody::parse(nested),
            NotFoundBody {
                message: Some("Player not found".into()),
                retry_after: Some(600),
                next_check_at: Some(1_000_600),
                check_count: Some(1)
            }
        );
        assert_eq!(
            NotFoundBody::parse(flat),
            NotFoundBody {
                message: Some("Player not found".into()),
                retry_after: Some(540),
                next_check_at: Some(1_000_600),
                check_count: Some(2)
            }
        );
        assert_eq!(
            NotFoundBody::parse(plain),
            NotFoundBody {
                message: Some("Player not found".into()),
                ..NotFoundBody::default()
            }
        );
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
