//! The dashboard's own metrics, in one [`prometheus_client`] registry: HTTP requests by route,
//! method and status, a latency histogram by route, player requests by origin, requests
//! refused by a rate limit, look-ups waiting for the pipeline, and consumer lag.
//!
//! `/metrics` serves this registry followed by the web's streams app's
//! ([`Streams::metrics_registry`](ow_stream_core::runtime::Streams::metrics_registry)), as one
//! OpenMetrics document.
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `ow_web_http_requests_total` | counter | `route`, `method`, `status` |
//! | `ow_web_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `ow_web_player_requests_total` | counter | `origin` |
//! | `ow_web_rate_limited_total` | counter | `limit` |
//! | `ow_web_lookups_pending` | gauge | |
//! | `ow_web_consumer_lag` | gauge | `group`, `topic` (when the pipeline source knows it) |

use std::time::Duration;

use ow_stream_core::metrics::prometheus_client;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The HTTP layer's metrics.
pub(crate) struct HttpMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    player_requests: Family<OriginLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    lookups_pending: Gauge,
    consumer_lag: Family<LagLabels, Gauge>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ow_web");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let player_requests = Family::<OriginLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let lookups_pending = Gauge::default();
        let consumer_lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer HTTP requests, by route and method",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "player_requests",
            "Player requests written to ow.player-requests, by origin",
            player_requests.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by limit",
            rate_limited.clone(),
        );
        registry.register(
            "lookups_pending",
            "Player look-ups waiting for the pipeline",
            lookups_pending.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records not yet consumed, by group and topic",
            consumer_lag.clone(),
        );
        HttpMetrics {
            registry,
            requests,
            latency,
            player_requests,
            rate_limited,
            lookups_pending,
            consumer_lag,
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request.
    pub(crate) fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a player request written.
    pub(crate) fn player_request(&self, origin: &'static str) {
        self.player_requests
            .get_or_create(&OriginLabels { origin })
            .inc();
    }

    /// Counts a request refused by a rate limit.
    pub(crate) fn rate_limited(&self, kind: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit: kind })
            .inc();
    }

    /// Sets the look-ups waiting for the pipeline (at each scrape).
    pub(crate) fn set_lookups_pending(&self, pending: usize) {
        self.lookups_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Replaces the consumer lag by group and topic with `lag` (at each scrape).
    pub(crate) fn set_consumer_lag(&self, lag: impl IntoIterator<Item = (String, String, i64)>) {
        self.consumer_lag.clear();
        for (group, topic, lag) in lag {
            self.consumer_lag
                .get_or_create(&LagLabels { group, topic })
                .set(lag);
        }
    }

    /// The registry of every metric above.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[cfg(test)]
#[path = "../tests/common/openmetrics.rs"]
mod openmetrics;

#[cfg(test)]
mod tests {
    use super::*;

    use super::openmetrics;

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let m = HttpMetrics::default();
        m.observe("/players/{id}", "GET", 200, Duration::from_millis(3));
        m.observe("/players/{id}", "GET", 400, Duration::from_millis(30));
        m.player_request("search");
        m.rate_limited("client");
        m.set_lookups_pending(2);
        m.set_consumer_lag([("g".to_owned(), "t".to_owned(), 4)]);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, m.registry()).unwrap();
        let samples = openmetrics::parse(&out);
        let value =
            |name: &str, labels: &[(&str, &str)]| openmetrics::total(&samples, name, labels);
        let route = [("route", "/players/{id}"), ("method", "GET")];
        let with_status = |status| [route[0], route[1], ("status", status)];
        assert_eq!(
            value("ow_web_http_requests_total", &with_status("200")),
            1.0
        );
        assert_eq!(
            value("ow_web_http_requests_total", &with_status("400")),
            1.0
        );
        assert_eq!(
            value("ow_web_http_request_duration_seconds_count", &route),
            2.0
        );
        let le = |bound| [route[0], route[1], ("le", bound)];
        assert_eq!(
            value("ow_web_http_request_duration_seconds_bucket", &le("0.005")),
            1.0
        );
        assert_eq!(
            value("ow_web_http_request_duration_seconds_bucket", &le("+Inf")),
            2.0
        );
        assert_eq!(
            value("ow_web_player_requests_total", &[("origin", "search")]),
            1.0
        );
        assert_eq!(
            value("ow_web_rate_limited_total", &[("limit", "client")]),
            1.0
        );
        assert_eq!(value("ow_web_lookups_pending", &[]), 2.0);
        assert_eq!(
            value("ow_web_consumer_lag", &[("group", "g"), ("topic", "t")]),
            4.0
        );
    }
}
