//! OverFast's cache headers, and when a new fetch can tell anything new.
//!
//! OverFast caches every `/players/{id}` answer (600 s on the public instance) and says so with
//! `Cache-Control: public, max-age=N` and, for an answer served from its cache, `Age: A`. Asking
//! again before `fetched_at + (N - A)` gets the same body back, so a scheduler should not.

use ow_domain::RawPlayerProfile;

/// The cache headers of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// `Cache-Control: max-age`, in seconds.
    pub max_age_secs: Option<i64>,
    /// `Age`, in seconds.
    pub age_secs: Option<i64>,
}

impl CacheInfo {
    /// The cache headers recorded in a raw event.
    pub fn of(raw: &RawPlayerProfile) -> CacheInfo {
        CacheInfo {
            max_age_secs: raw.cache_max_age_secs,
            age_secs: raw.cache_age_secs,
        }
    }

    /// Until when (milliseconds since the epoch) OverFast will answer from its cache, for an
    /// answer fetched at `fetched_at_ms`: `fetched_at + max(0, max-age - age)`. `None` without a
    /// `max-age`.
    ///
    /// ```
    /// use ow_producer::overfast::CacheInfo;
    ///
    /// let cache = CacheInfo { max_age_secs: Some(600), age_secs: Some(120) };
    /// assert_eq!(cache.fresh_until(1_000_000), Some(1_000_000 + 480_000));
    /// assert_eq!(CacheInfo::default().fresh_until(1_000_000), None);
    /// ```
    pub fn fresh_until(&self, fetched_at_ms: i64) -> Option<i64> {
        let max_age = self.max_age_secs?;
        let remaining = max_age.saturating_sub(self.age_secs.unwrap_or(0)).max(0);
        Some(fetched_at_ms.saturating_add(remaining.saturating_mul(1000)))
    }

    /// Reads `Cache-Control` (every value, comma-separated directives) and `Age`.
    pub(crate) fn from_headers(headers: &reqwest::header::HeaderMap) -> CacheInfo {
        let max_age_secs = headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_max_age);
        let age_secs = headers
            .get(reqwest::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_seconds);
        CacheInfo {
            max_age_secs,
            age_secs,
        }
    }
}

/// Until when a raw event's answer stays in OverFast's cache (see [`CacheInfo::fresh_until`]).
pub fn fresh_until(raw: &RawPlayerProfile) -> Option<i64> {
    CacheInfo::of(raw).fresh_until(raw.fetched_at)
}

/// The earliest time (milliseconds since the epoch) a new fetch of this player is useful: after
/// OverFast's cache of the last answer expires and after any `next_attempt_at`. `None` when
/// neither applies (asking now is fine).
///
/// ```
/// use ow_producer::overfast::earliest_refetch;
/// # let mut raw = ow_domain::RawPlayerProfile {
/// #     request_id: "r".into(), player_id: "TeKrop-2217".into(), fetched_at: 1_000_000,
/// #     request_url: String::new(), http_status: Some(200), outcome: ow_domain::FetchOutcome::Ok,
/// #     body: None, cache_max_age_secs: Some(600), cache_age_secs: None, error: None,
/// #     attempts: 1, next_attempt_at: None };
/// assert_eq!(earliest_refetch(&raw), Some(1_600_000));
/// raw.next_attempt_at = Some(2_000_000);
/// assert_eq!(earliest_refetch(&raw), Some(2_000_000));
/// ```
pub fn earliest_refetch(raw: &RawPlayerProfile) -> Option<i64> {
    match (fresh_until(raw), raw.next_attempt_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `max-age=N` out of one `Cache-Control` value.
pub(crate) fn parse_max_age(value: &str) -> Option<i64> {
    value.split(',').find_map(|directive| {
        let (name, arg) = directive.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            parse_seconds(arg.trim().trim_matches('"'))
        } else {
            None
        }
    })
}

/// A non-negative whole number of seconds.
fn parse_seconds(value: &str) -> Option<i64> {
    value.trim().parse::<u32>().ok().map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_forms() {
        assert_eq!(parse_max_age("public, max-age=600"), Some(600));
        assert_eq!(
            parse_max_age("public, max-age=600, stale-while-revalidate=60"),
            Some(600)
        );
        assert_eq!(parse_max_age("Max-Age=\"30\""), Some(30));
        assert_eq!(parse_max_age("s-maxage=10"), None);
        assert_eq!(parse_max_age("no-store"), None);
        assert_eq!(parse_max_age("max-age=-1"), None);
    }

    #[test]
    fn headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append("cache-control", "public".parse().unwrap());
        h.append("cache-control", "max-age=600".parse().unwrap());
        h.insert("age", "42".parse().unwrap());
        assert_eq!(
            CacheInfo::from_headers(&h),
            CacheInfo {
                max_age_secs: Some(600),
                age_secs: Some(42)
            }
        );
        assert_eq!(
            CacheInfo::from_headers(&reqwest::header::HeaderMap::new()),
            CacheInfo::default()
        );
    }

    #[test]
    fn freshness() {
        let c = CacheInfo {
            max_age_secs: Some(600),
            age_secs: Some(700),
        };
        assert_eq!(c.fresh_until(5_000), Some(5_000));
        let c = CacheInfo {
            max_age_secs: Some(600),
            age_secs: None,
        };
        assert_eq!(c.fresh_until(5_000), Some(605_000));
    }
}
