//! Settings of the dashboard: flags and environment variables ([`WebConfig`]), and the part
//! the HTTP layer needs ([`WebSettings`]).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use ow_cli::StreamsArgs;

/// Flags and environment variables of the `ow-web` binary.
///
/// The shared settings (`--brokers`/`OW_BROKERS`, `--schema-registry-url`, `--state-dir`,
/// `--log`...) come from the shared [`StreamsArgs`] of every ow-stream binary; when no broker is configured the
/// binary runs the one-process embedded stack.
///
/// ```
/// use clap::Parser;
/// use ow_web::WebConfig;
///
/// let config = WebConfig::parse_from([
///     "ow-web", "--brokers", "localhost:9092", "--lookup-timeout", "90s",
/// ]);
/// assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
/// assert_eq!(config.lookup_timeout.as_secs(), 90);
/// assert_eq!(config.streams.brokers.as_deref(), Some("localhost:9092"));
/// ```
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "ow-web",
    version,
    about = "The ow-stream Overwatch dashboard",
    long_about = None
)]
#[non_exhaustive]
pub struct WebConfig {
    /// Address the dashboard listens on.
    #[arg(long, env = "OW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// How long a look-up of a new player may wait for the pipeline before the page says what
    /// is known (`90`, `90s`, `2m`, `500ms`).
    #[arg(long, env = "OW_LOOKUP_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub lookup_timeout: Duration,

    /// Shortest time between two "refresh now" requests for the same player.
    #[arg(long, env = "OW_REFRESH_COOLDOWN", default_value = "60s", value_parser = parse_duration)]
    pub refresh_cooldown: Duration,

    /// Player requests (refreshes and look-ups of new players) one client address may make per
    /// minute.
    #[arg(long, env = "OW_CLIENT_REQUESTS_PER_MINUTE", default_value = "10")]
    pub client_requests_per_minute: NonZeroU32,

    /// Bytes of rendered player pages kept for unchanged data (`0`: render every page from
    /// the stores).
    #[arg(long, env = "OW_PAGE_CACHE_BYTES", default_value_t = DEFAULT_PAGE_CACHE_BYTES)]
    pub page_cache_bytes: usize,

    /// Partitions of the pipeline's topics when the embedded stack creates them.
    #[arg(long, env = "OW_PARTITIONS", default_value_t = 2)]
    pub partitions: i32,

    /// OverFast settings of the embedded stack's producer (unused when the web runs alone).
    #[command(flatten)]
    pub overfast: ow_producer::cli::OverfastArgs,

    /// Tracked-player settings of the embedded stack's producer (unused when the web runs
    /// alone).
    #[command(flatten)]
    pub tracking: ow_producer::cli::TrackingArgs,

    /// Settings shared by every stage (`--brokers`, `--schema-registry-url`, `--state-dir`,
    /// `--topic-prefix`...).
    #[command(flatten)]
    pub streams: StreamsArgs,
}

impl WebConfig {
    /// The settings the HTTP layer uses.
    pub fn settings(&self) -> WebSettings {
        WebSettings {
            lookup_timeout: self.lookup_timeout,
            refresh_interval: self.refresh_cooldown,
            client_requests_per_minute: self.client_requests_per_minute,
            page_cache_bytes: self.page_cache_bytes,
            ..WebSettings::default()
        }
    }
}

/// What the HTTP layer needs to know: time-outs and rate limits.
///
/// ```
/// use std::time::Duration;
/// use ow_web::WebSettings;
///
/// let settings = WebSettings::default().with_lookup_timeout(Duration::from_secs(5));
/// assert_eq!(settings.lookup_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSettings {
    /// How long a look-up may wait before the page stops waiting (default 60 s).
    pub lookup_timeout: Duration,
    /// Shortest time between two refreshes of one player (default 60 s).
    pub refresh_interval: Duration,
    /// Player requests per minute and client address (default 10).
    pub client_requests_per_minute: NonZeroU32,
    /// Shortest time between two `view` requests for one player: viewing a known player's
    /// page tells the producer to keep the player tracked (default 10 minutes).
    pub view_interval: Duration,
    /// Most look-ups waiting at once; older ones are forgotten beyond it (default 10 000).
    pub max_pending_lookups: usize,
    /// Players listed as recently viewed on the home page (default 8).
    pub recent_players: usize,
    /// Bytes of rendered player pages kept for unchanged data, with
    /// [`AppState::with_store_changes`](crate::AppState::with_store_changes) (default
    /// [`DEFAULT_PAGE_CACHE_BYTES`]; `0`: none).
    pub page_cache_bytes: usize,
}

/// The default [`WebSettings::page_cache_bytes`]: 32 MiB, about 2 000 pages of 15 KB.
pub const DEFAULT_PAGE_CACHE_BYTES: usize = 32 << 20;

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            lookup_timeout: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(60),
            client_requests_per_minute: NonZeroU32::new(10).expect("10 is not zero"),
            view_interval: Duration::from_secs(600),
            max_pending_lookups: 10_000,
            recent_players: 8,
            page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES,
        }
    }
}

impl WebSettings {
    /// Sets the look-up time-out.
    pub fn with_lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    /// Sets the shortest time between two refreshes of one player.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Sets the bytes of rendered pages kept (`0`: none).
    pub fn with_page_cache_bytes(mut self, bytes: usize) -> Self {
        self.page_cache_bytes = bytes;
        self
    }

    /// Sets the player requests allowed per minute and client address.
    pub fn with_client_requests_per_minute(mut self, n: NonZeroU32) -> Self {
        self.client_requests_per_minute = n;
        self
    }
}

/// Parses `90`, `90s`, `2m`, `1h` or `500ms` into a duration (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 2m or 500ms"))?;
    let duration = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    if duration.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn flags_and_defaults() {
        let config = WebConfig::parse_from(["ow-web"]);
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.lookup_timeout, Duration::from_secs(60));
        let settings = config.settings();
        assert_eq!(settings.client_requests_per_minute.get(), 10);
        let config = WebConfig::parse_from([
            "ow-web",
            "--listen",
            "0.0.0.0:9000",
            "--refresh-cooldown",
            "5m",
            "--client-requests-per-minute",
            "3",
        ]);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.settings().refresh_interval, Duration::from_secs(300));
        assert_eq!(config.settings().client_requests_per_minute.get(), 3);
        assert!(WebConfig::try_parse_from(["ow-web", "--lookup-timeout", "soon"]).is_err());
        assert!(
            WebConfig::try_parse_from(["ow-web", "--client-requests-per-minute", "0"]).is_err()
        );
    }
}
