//! The producer's settings: the streams library's, the OverFast client's, and the schedule's.

use std::sync::Arc;
use std::time::Duration;

use ow_domain::battletag::PlayerId;
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::registry::SchemaRegistry;

use crate::clock::{Clock, SystemClock};
use crate::error::ProducerError;
use crate::overfast::ClientConfig;

/// The producer's application id: its consumer group on `ow.player-requests`, the prefix of
/// its tracker group (`ow-producer-tracker-<epoch>`) and dead-letter topic (`ow-producer-dlq`),
/// and its directory under the state directory.
pub const APPLICATION_ID: &str = "ow-producer";

/// The refresh schedule of tracked players (see [`crate::tracking`]).
///
/// ```
/// use std::time::Duration;
/// use ow_producer::TrackingConfig;
/// use ow_domain::battletag::PlayerId;
///
/// let tracking = TrackingConfig::default()
///     .with_players(vec![PlayerId::parse("TeKrop#2217").unwrap()])
///     .with_refresh_interval(Duration::from_secs(300));
/// assert_eq!(tracking.untrack_after, Duration::from_secs(14 * 86_400));
/// assert!(tracking.schedule);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackingConfig {
    /// Whether this instance refreshes tracked players. Exactly one instance of a deployment
    /// should (see [`crate::tracking`]). Default: true.
    pub schedule: bool,
    /// Players refreshed whether or not anyone asks (`--track`, `--track-file`).
    pub players: Vec<PlayerId>,
    /// How often a tracked player is refreshed; never sooner than OverFast's cache of the last
    /// answer allows. Default: 10 minutes.
    pub refresh_interval: Duration,
    /// A requested player nobody asked about for this long stops being refreshed.
    /// Default: 14 days.
    pub untrack_after: Duration,
    /// How often the schedule looks for players to refresh. Default: 1 second.
    pub check_interval: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            schedule: true,
            players: Vec::new(),
            refresh_interval: Duration::from_secs(600),
            untrack_after: Duration::from_secs(14 * 86_400),
            check_interval: Duration::from_secs(1),
        }
    }
}

impl TrackingConfig {
    /// Sets whether this instance schedules refreshes.
    pub fn with_schedule(mut self, schedule: bool) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the players tracked by configuration.
    pub fn with_players(mut self, players: Vec<PlayerId>) -> Self {
        self.players = players;
        self
    }

    /// Sets the refresh interval.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Sets how long a requested player stays tracked without a request.
    pub fn with_untrack_after(mut self, after: Duration) -> Self {
        self.untrack_after = after;
        self
    }

    /// Sets how often the schedule looks for players to refresh.
    pub fn with_check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    fn validate(&self) -> Result<(), ProducerError> {
        for (setting, value) in [
            ("refresh_interval", self.refresh_interval),
            ("untrack_after", self.untrack_after),
            ("check_interval", self.check_interval),
        ] {
            if value.is_zero() {
                return Err(ProducerError::Config {
                    setting,
                    reason: "must be longer than zero".into(),
                });
            }
        }
        Ok(())
    }
}

/// Everything the producer stage needs to run.
///
/// ```
/// use ow_producer::{APPLICATION_ID, ProducerConfig};
/// use ow_producer::overfast::ClientConfig;
/// use ow_stream_core::config::{Backend, StreamsConfig};
///
/// let config = ProducerConfig::new(
///     StreamsConfig::new(APPLICATION_ID, Backend::kafka("localhost:9092"))
///         .with_schema_registry("http://localhost:8081"),
///     ClientConfig::default(),
/// );
/// assert_eq!(config.streams.dead_letter_topic(), "ow-producer-dlq");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// The streams settings: backend, schema registry URL, state directory (the tracked-player
    /// state lives in `<state_dir>/<application_id>/`), commit interval, pass-through Kafka
    /// settings. Its application id is used as it is; [`ProducerConfig::from_args`] sets
    /// [`APPLICATION_ID`]. Raw events are compressed with zstd unless the Kafka settings
    /// choose a `compression.type` (or `compression.codec`).
    pub streams: StreamsConfig,
    /// An open schema registry to use instead of the one `streams` names (the embedded stack
    /// shares its in-process registry this way).
    pub registry: Option<SchemaRegistry>,
    /// The OverFast client.
    pub client: ClientConfig,
    /// The refresh schedule.
    pub tracking: TrackingConfig,
    /// Prepended to the pipeline's topic names (a namespace such as `staging.`). Default: none.
    pub topic_prefix: String,
    /// Requests read and not answered yet beyond which no more are read (backpressure).
    /// Default: 256.
    pub max_pending_requests: usize,
    /// How long [`ProducerHandle::close`](crate::ProducerHandle::close) lets fetches in flight
    /// finish before dropping them (their requests are answered again after a restart).
    /// Default: 10 seconds.
    pub shutdown_grace: Duration,
    /// The clock of the schedule. Default: [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl ProducerConfig {
    /// A configuration with the default schedule, asking OverFast as `client` says.
    pub fn new(streams: StreamsConfig, client: ClientConfig) -> Self {
        ProducerConfig {
            streams,
            registry: None,
            client,
            tracking: TrackingConfig::default(),
            topic_prefix: String::new(),
            max_pending_requests: 256,
            shutdown_grace: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }

    /// The configuration the command-line flags describe, with application id
    /// [`APPLICATION_ID`] and the shared `--topic-prefix` (reads the `--track-file`).
    ///
    /// # Errors
    /// [`ProducerError::Streams`] when no broker is configured or a shared flag is malformed,
    /// and the errors of [`ProducerArgs::to_config`](crate::cli::ProducerArgs::to_config).
    pub fn from_args(
        streams: &ow_cli::StreamsArgs,
        args: &crate::cli::ProducerArgs,
    ) -> Result<Self, ProducerError> {
        let config = streams
            .to_config(APPLICATION_ID)
            .map_err(ProducerError::streams("configuration"))?;
        Ok(args
            .to_config(config)?
            .with_topic_prefix(streams.topic_prefix.clone()))
    }

    /// Uses an open registry instead of the one the streams settings name.
    pub fn with_registry(mut self, registry: SchemaRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Sets the refresh schedule.
    pub fn with_tracking(mut self, tracking: TrackingConfig) -> Self {
        self.tracking = tracking;
        self
    }

    /// Sets the topic prefix.
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    /// Sets the clock of the schedule (tests use a [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets the most requests read and not answered yet.
    pub fn with_max_pending_requests(mut self, max: usize) -> Self {
        self.max_pending_requests = max;
        self
    }

    /// Sets how long closing waits for fetches in flight.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks what can be checked without connecting anywhere.
    ///
    /// # Errors
    /// [`ProducerError::Streams`], [`ProducerError::Overfast`] or [`ProducerError::Config`]
    /// naming the setting at fault.
    pub fn validate(&self) -> Result<(), ProducerError> {
        self.streams
            .validate()
            .map_err(ProducerError::streams("configuration"))?;
        self.client.validate()?;
        self.tracking.validate()?;
        if self.max_pending_requests == 0 {
            return Err(ProducerError::Config {
                setting: "max_pending_requests",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ow_stream_core::config::Backend;

    use super::*;
    use crate::overfast::{ConfigError, Source};

    #[test]
    fn validation_names_the_setting() {
        let base = ProducerConfig::new(
            StreamsConfig::new(APPLICATION_ID, Backend::kafka("h:1")),
            ClientConfig::default(),
        );
        assert!(base.validate().is_ok());
        let c = base
            .clone()
            .with_tracking(TrackingConfig::default().with_refresh_interval(Duration::ZERO));
        assert!(matches!(
            c.validate(),
            Err(ProducerError::Config {
                setting: "refresh_interval",
                ..
            })
        ));
        let c = base.clone().with_max_pending_requests(0);
        assert!(matches!(
            c.validate(),
            Err(ProducerError::Config {
                setting: "max_pending_requests",
                ..
            })
        ));
        let mut c = base.clone();
        c.client.burst = 0;
        assert!(matches!(c.validate(), Err(ProducerError::Overfast(_))));
        // A live source that is not http(s) is a configuration error, not a panic later.
        let mut c = base;
        c.client.source = Source::Live(url::Url::parse("mailto:someone@example.com").unwrap());
        let err = c.validate().unwrap_err();
        assert!(
            matches!(
                err,
                ProducerError::Overfast(ConfigError::UnsupportedScheme { .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("mailto"), "{err}");
    }
}
