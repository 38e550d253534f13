//! The dashboard's own counters, in the Prometheus text format: HTTP requests by route and
//! status, a latency histogram by route, and player requests by origin.
//!
//! A handful of counters behind one mutex: a metrics crate with a global recorder would be more
//! machinery than this needs, and the library's counters come from its own
//! [`MetricsSnapshot::to_prometheus`](ow_stream_core::metrics::MetricsSnapshot::to_prometheus).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    /// (route, method, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (route, method) → latency.
    latency: BTreeMap<(String, String), Latency>,
    /// origin → player requests written.
    player_requests: BTreeMap<&'static str, u64>,
    /// kind → requests refused by a rate limit.
    rate_limited: BTreeMap<&'static str, u64>,
}

/// The HTTP layer's counters.
#[derive(Default)]
pub(crate) struct HttpMetrics {
    counters: Mutex<Counters>,
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl HttpMetrics {
    /// Counts one answered request.
    pub(crate) fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut c = self.counters.lock();
        *c.requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let l = c
            .latency
            .entry((route.to_owned(), method.to_owned()))
            .or_default();
        l.count += 1;
        l.sum += secs;
        for (bucket, bound) in l.buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
    }

    /// Counts a player request written.
    pub(crate) fn player_request(&self, origin: &'static str) {
        *self
            .counters
            .lock()
            .player_requests
            .entry(origin)
            .or_default() += 1;
    }

    /// Counts a request refused by a rate limit.
    pub(crate) fn rate_limited(&self, kind: &'static str) {
        *self.counters.lock().rate_limited.entry(kind).or_default() += 1;
    }

    /// Appends the counters in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        let c = self.counters.lock();
        let _ = writeln!(
            out,
            "# HELP ow_web_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE ow_web_http_requests_total counter");
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "ow_web_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ow_web_http_request_duration_seconds Time to answer HTTP requests, by route."
        );
        let _ = writeln!(out, "# TYPE ow_web_http_request_duration_seconds histogram");
        for ((route, method), l) in &c.latency {
            let labels = format!("route=\"{}\",method=\"{}\"", label(route), label(method));
            for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                let _ = writeln!(
                    out,
                    "ow_web_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "ow_web_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "ow_web_http_request_duration_seconds_sum{{{labels}}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "ow_web_http_request_duration_seconds_count{{{labels}}} {}",
                l.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP ow_web_player_requests_total Player requests written to ow.player-requests, by origin."
        );
        let _ = writeln!(out, "# TYPE ow_web_player_requests_total counter");
        for (origin, n) in &c.player_requests {
            let _ = writeln!(
                out,
                "ow_web_player_requests_total{{origin=\"{origin}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ow_web_rate_limited_total Requests refused by a rate limit, by limit."
        );
        let _ = writeln!(out, "# TYPE ow_web_rate_limited_total counter");
        for (kind, n) in &c.rate_limited {
            let _ = writeln!(out, "ow_web_rate_limited_total{{limit=\"{kind}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let m = HttpMetrics::default();
        m.observe("/players/{id}", "GET", 200, Duration::from_millis(3));
        m.observe("/players/{id}", "GET", 400, Duration::from_millis(30));
        m.player_request("search");
        m.rate_limited("client");
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "ow_web_http_requests_total{route=\"/players/{id}\",method=\"GET\",status=\"200\"} 1\n"
        ));
        assert!(out.contains(
            "ow_web_http_request_duration_seconds_bucket{route=\"/players/{id}\",method=\"GET\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "ow_web_http_request_duration_seconds_bucket{route=\"/players/{id}\",method=\"GET\",le=\"+Inf\"} 2\n"
        ));
        assert!(out.contains(
            "ow_web_http_request_duration_seconds_count{route=\"/players/{id}\",method=\"GET\"} 2\n"
        ));
        assert!(out.contains("ow_web_player_requests_total{origin=\"search\"} 1\n"));
        assert!(out.contains("ow_web_rate_limited_total{limit=\"client\"} 1\n"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
