//! Rendered player pages, kept as bytes under the version of the data they were rendered from
//! ([`StoreChanges`](crate::StoreChanges)), so that a page of unchanged data costs a version
//! check and a reference-counted copy instead of four store reads and a render.
//!
//! A page is served from here only while
//! * its player's version is the one it was rendered at (the data changed: rendered again),
//! * no look-up of the player is in flight (a waiting page changes with the clock and the
//!   look-up; those are never kept), and
//! * it is younger than [`PAGE_TTL`]: pages say how long ago things happened ("3 minutes
//!   ago"), in minutes, so a kept page is at most that much late on those words, never on data.
//!
//! Bounded: at most [`CACHED_PAGES`] pages and
//! [`WebSettings::page_cache_bytes`](crate::WebSettings::page_cache_bytes) bytes, the least
//! recently used going first.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// How long a rendered page is served for unchanged data.
pub(crate) const PAGE_TTL: Duration = Duration::from_secs(1);
/// Pages kept at most (each player and query string is one).
pub(crate) const CACHED_PAGES: usize = 1024;

/// A rendered page: its bytes and their `ETag`.
#[derive(Clone)]
pub(crate) struct RenderedPage {
    body: Bytes,
    etag: HeaderValue,
}

impl RenderedPage {
    pub(crate) fn new(html: String) -> RenderedPage {
        let mut hasher = DefaultHasher::new();
        html.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        RenderedPage {
            body: Bytes::from(html),
            etag,
        }
    }

    /// A 200 with the page, or a 304 when `request` already holds these bytes
    /// (`If-None-Match`).
    pub(crate) fn respond(&self, status: StatusCode, request: &HeaderMap) -> Response {
        let matches = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == self.etag.as_bytes()
            });
        if matches && status == StatusCode::OK {
            return (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, self.etag.clone())],
            )
                .into_response();
        }
        (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::ETAG, self.etag.clone()),
            ],
            Body::from(self.body.clone()),
        )
            .into_response()
    }
}

struct Entry {
    /// The player's version the page was rendered at.
    version: u64,
    /// When it was rendered, in milliseconds since the epoch (the app's clock).
    rendered_at: i64,
    page: RenderedPage,
    /// The tick of its last use.
    used: u64,
}

/// The kept pages, by player and query.
pub(crate) struct PageCache {
    entries: Mutex<Entries>,
    ticks: AtomicU64,
    /// Bytes of pages kept at most (0: none).
    max_bytes: usize,
}

impl Default for PageCache {
    fn default() -> Self {
        PageCache::new(crate::config::DEFAULT_PAGE_CACHE_BYTES)
    }
}

#[derive(Default)]
struct Entries {
    pages: HashMap<String, Entry>,
    bytes: usize,
}

impl PageCache {
    /// A cache of at most `max_bytes` of pages.
    pub(crate) fn new(max_bytes: usize) -> PageCache {
        PageCache {
            entries: Mutex::default(),
            ticks: AtomicU64::new(0),
            max_bytes,
        }
    }

    /// The page kept under `key`, if rendered at `version` less than [`PAGE_TTL`] before `now`.
    pub(crate) fn get(&self, key: &str, version: u64, now: i64) -> Option<RenderedPage> {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock();
        let entry = entries.pages.get_mut(key)?;
        let age = now.saturating_sub(entry.rendered_at);
        if entry.version != version || !(0..ttl_ms()).contains(&age) {
            return None;
        }
        entry.used = tick;
        Some(entry.page.clone())
    }

    /// Keeps `page`, rendered at `version` and `now`, under `key`.
    pub(crate) fn put(&self, key: String, version: u64, now: i64, page: RenderedPage) {
        let used = self.ticks.fetch_add(1, Ordering::Relaxed);
        let size = page.body.len();
        if size > self.max_bytes {
            return;
        }
        let mut entries = self.entries.lock();
        if let Some(old) = entries.pages.remove(&key) {
            entries.bytes -= old.page.body.len();
        }
        while entries.pages.len() >= CACHED_PAGES || entries.bytes + size > self.max_bytes {
            let Some(oldest) = entries
                .pages
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = entries.pages.remove(&oldest) {
                entries.bytes -= old.page.body.len();
            }
        }
        entries.bytes += size;
        entries.pages.insert(
            key,
            Entry {
                version,
                rendered_at: now,
                page,
                used,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().pages.len()
    }
}

fn ttl_ms() -> i64 {
    i64::try_from(PAGE_TTL.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(s: &str) -> RenderedPage {
        RenderedPage::new(s.to_owned())
    }

    #[test]
    fn kept_for_its_version_and_ttl_only() {
        let c = PageCache::default();
        c.put("a".into(), 1, 1_000, page("one"));
        assert!(c.get("a", 1, 1_500).is_some());
        assert!(c.get("a", 2, 1_500).is_none(), "another version");
        assert!(c.get("a", 1, 2_000).is_none(), "too old");
        assert!(c.get("a", 1, 999).is_none(), "the clock went back");
        assert!(c.get("b", 1, 1_500).is_none());
    }

    #[test]
    fn bounded_least_recently_used_first() {
        let c = PageCache::default();
        for i in 0..CACHED_PAGES {
            c.put(format!("p{i}"), 0, 0, page("x"));
        }
        assert!(c.get("p0", 0, 0).is_some());
        c.put("new".into(), 0, 0, page("x"));
        assert_eq!(c.len(), CACHED_PAGES);
        assert!(c.get("p0", 0, 0).is_some(), "used lately: kept");
        assert!(c.get("p1", 0, 0).is_none(), "least recently used: gone");
    }

    #[test]
    fn a_cache_of_no_bytes_keeps_nothing() {
        let c = PageCache::new(0);
        c.put("a".into(), 0, 0, page("x"));
        assert!(c.get("a", 0, 0).is_none());
    }

    #[test]
    fn etags_follow_the_bytes_and_answer_304() {
        let a = page("one");
        assert_eq!(a.etag, page("one").etag);
        assert_ne!(a.etag, page("two").etag);
        let mut headers = HeaderMap::new();
        assert_eq!(a.respond(StatusCode::OK, &headers).status(), StatusCode::OK);
        headers.insert(header::IF_NONE_MATCH, a.etag.clone());
        assert_eq!(
            a.respond(StatusCode::OK, &headers).status(),
            StatusCode::NOT_MODIFIED
        );
        headers.insert(header::IF_NONE_MATCH, page("two").etag);
        assert_eq!(a.respond(StatusCode::OK, &headers).status(), StatusCode::OK);
    }
}
