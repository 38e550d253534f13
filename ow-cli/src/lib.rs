//! The flags and environment variables every ow-stream binary shares.
//!
//! `ow-stream-core` reads no flags and no environment: it is configured by its
//! [`StreamsConfig`] alone. This crate is the command-line side of that configuration for the
//! binaries of the workspace (`ow-producer`, `ow-processor`, `ow-web`), so that every stage
//! names its settings the same way:
//!
//! | setting | flag | env | default |
//! |---|---|---|---|
//! | Kafka bootstrap servers, or `local:///path` | `--brokers` | `OW_BROKERS` | unset: the local log in `<state-dir>/log` |
//! | schema registry | `--schema-registry-url` | `OW_SCHEMA_REGISTRY_URL` | unset: persisted in `<state-dir>/schema-registry` on the local log |
//! | state directory | `--state-dir` | `OW_STATE_DIR` | `./.ow-state` |
//! | commit interval | `--commit-interval-ms` | `OW_COMMIT_INTERVAL_MS` | `1000` |
//! | record cache of the stores, bytes (`0`: off) | `--cache-max-bytes` | `OW_CACHE_MAX_BYTES` | `10485760` (10 MiB) |
//! | librdkafka pass-through | `--kafka-config k=v,…` | `OW_KAFKA_CONFIG` | — |
//! | stream threads | `--threads` | `OW_STREAM_THREADS` | `1` |
//! | processing guarantee | `--processing-guarantee` | `OW_PROCESSING_GUARANTEE` | `at_least_once` (ow-web's embedded stack: `exactly_once`) |
//! | topic prefix | `--topic-prefix` | `OW_TOPIC_PREFIX` | — |
//! | log filter | `--log` | `RUST_LOG` | `info` |
//!
//! Flatten [`StreamsArgs`] into an application's `clap` parser, build the library's
//! configuration with [`StreamsArgs::to_config`], and parse durations the same way everywhere
//! with [`parse_duration`]. [`init_logging`] and [`shutdown_signal`] are the rest of what every
//! `main` does: logs on stderr with the `--log` filter, and a clean stop on Ctrl-C or SIGTERM.
//!
//! ```
//! use clap::Parser;
//! use ow_cli::StreamsArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     streams: StreamsArgs,
//! }
//!
//! let args = Args::parse_from(["app", "--brokers", "localhost:9092", "--kafka-config", "compression.type=zstd"]);
//! let config = args.streams.to_config("my-app").unwrap();
//! assert_eq!(config.kafka.get("compression.type").map(String::as_str), Some("zstd"));
//! ```

mod process;

use std::path::PathBuf;
use std::time::Duration;

use ow_stream_core::Error;
use ow_stream_core::config::{Backend, ProcessingGuarantee, StreamsConfig};

pub use process::{init_logging, shutdown_signal};

/// Settings every stage shares.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct StreamsArgs {
    /// Kafka bootstrap servers (`host:port,...`), or `local:///path` for the durable local log;
    /// unset: the local log in `<state-dir>/log`.
    #[arg(long, env = "OW_BROKERS")]
    pub brokers: Option<String>,

    /// Schema registry URL: `http(s)://host:port` (Confluent-compatible) or `mock://<scope>`.
    #[arg(long, env = "OW_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,

    /// Directory for state stores (and, for the local backend, topics).
    #[arg(long, env = "OW_STATE_DIR", default_value = "./.ow-state")]
    pub state_dir: PathBuf,

    /// How often stores and offsets are committed, in milliseconds (default
    /// [`DEFAULT_COMMIT_INTERVAL_MS`]; an application may choose another default, as ow-web's
    /// embedded stack does).
    #[arg(long, env = "OW_COMMIT_INTERVAL_MS")]
    pub commit_interval_ms: Option<u64>,

    /// Bytes of record cache for the stores of aggregations (updates of a key collapse until
    /// the next commit); `0` writes and forwards every update at once.
    #[arg(long, env = "OW_CACHE_MAX_BYTES", default_value_t = ow_stream_core::config::DEFAULT_CACHE_MAX_BYTES)]
    pub cache_max_bytes: usize,

    /// librdkafka settings passed through, as `key=value` (repeatable or comma-separated).
    #[arg(long = "kafka-config", env = "OW_KAFKA_CONFIG", value_delimiter = ',')]
    pub kafka_config: Vec<String>,

    /// Stream threads of a streams application (each is one member of its consumer group).
    #[arg(long, env = "OW_STREAM_THREADS", default_value_t = 1)]
    pub threads: usize,

    /// Processing guarantee of the stage's stream threads: `at_least_once` (outputs may repeat
    /// after a crash; stores stay exact) or `exactly_once` (outputs, input offsets and stores
    /// commit as one transaction; readers of the outputs read committed). On the local
    /// backend through the log's transactions; on Kafka through a transactional producer per
    /// stream thread (`exactly_once_v2`; the broker must support transactions). Unset:
    /// at_least_once, except in ow-web's embedded stack, which runs exactly_once.
    #[arg(long, env = "OW_PROCESSING_GUARANTEE", value_name = "GUARANTEE", value_parser = parse_guarantee)]
    pub processing_guarantee: Option<ProcessingGuarantee>,

    /// Prefix prepended to every topic name and to the stage's application id (a namespace,
    /// e.g. `staging.`): with it, the consumer groups, internal topics and state directories
    /// of two namespaces on one cluster are apart too.
    #[arg(long, env = "OW_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Log filter (`tracing` env-filter syntax, e.g. `info,ow_stream_core=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

/// The commit interval when `--commit-interval-ms` is not given: 1 s, as in Kafka Streams.
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 1000;

impl StreamsArgs {
    /// The backend named by `--brokers`; `None` when it is not set.
    pub fn backend(&self) -> Result<Option<Backend>, Error> {
        self.brokers.as_deref().map(Backend::parse).transpose()
    }

    /// A library configuration for `application_id`: on the backend `--brokers` names or,
    /// when it is unset, on the durable local log in `<state-dir>/log` (with the schema
    /// registry persisted beside it, see [`StreamsConfig::schema_registry`]).
    pub fn to_config(&self, application_id: &str) -> Result<StreamsConfig, Error> {
        let backend = self
            .backend()?
            .unwrap_or_else(|| Backend::local(self.state_dir.join("log")));
        self.to_config_with(application_id, backend)
    }

    /// The application id of the stage `base` in this namespace: `--topic-prefix` followed by
    /// `base` (`staging.ow-processor`). Its consumer group, its internal topics
    /// (`<application id>-<store>-changelog`, …) and its state directory carry the prefix as
    /// the stage's own topics do, which is also what the topic manifest creates when
    /// `ow-admin create-topics` applies the prefix.
    ///
    /// ```
    /// use clap::Parser;
    ///
    /// #[derive(Parser)]
    /// struct Args {
    ///     #[command(flatten)]
    ///     streams: ow_cli::StreamsArgs,
    /// }
    ///
    /// let args = Args::parse_from(["app", "--topic-prefix", "staging."]);
    /// assert_eq!(args.streams.application_id("ow-processor"), "staging.ow-processor");
    /// ```
    pub fn application_id(&self, base: &str) -> String {
        format!("{}{base}", self.topic_prefix)
    }

    /// A library configuration for the stage `application_id` on the given backend (with
    /// `--threads` stream threads). The application id gets the topic prefix
    /// ([`StreamsArgs::application_id`]); the topic names are the application's to prefix.
    pub fn to_config_with(
        &self,
        application_id: &str,
        backend: Backend,
    ) -> Result<StreamsConfig, Error> {
        let mut config = StreamsConfig::new(self.application_id(application_id), backend)
            .with_state_dir(&self.state_dir)
            .with_commit_interval(Duration::from_millis(
                self.commit_interval_ms
                    .unwrap_or(DEFAULT_COMMIT_INTERVAL_MS)
                    .max(1),
            ))
            .with_stream_threads(self.threads)
            .with_cache_max_bytes(self.cache_max_bytes)
            .with_processing_guarantee(
                self.processing_guarantee
                    .unwrap_or(ProcessingGuarantee::AtLeastOnce),
            );
        if let Some(url) = &self.schema_registry_url {
            config = config.with_schema_registry(url);
        }
        for setting in &self.kafka_config {
            let Some((k, v)) = setting.split_once('=') else {
                return Err(Error::Config {
                    field: "kafka_config",
                    reason: format!("{setting:?} is not key=value"),
                });
            };
            config = config.with_kafka_setting(k.trim(), v.trim());
        }
        config.validate()?;
        Ok(config)
    }
}

/// Parses a processing guarantee (`at_least_once`, `exactly_once`; Kafka Streams' names, `-`
/// or `_`), as a `clap` value parser.
///
/// ```
/// use ow_cli::parse_guarantee;
/// use ow_stream_core::config::ProcessingGuarantee;
///
/// assert_eq!(parse_guarantee("exactly-once"), Ok(ProcessingGuarantee::ExactlyOnce));
/// assert!(parse_guarantee("twice").is_err());
/// ```
pub fn parse_guarantee(s: &str) -> Result<ProcessingGuarantee, String> {
    ProcessingGuarantee::parse(s).map_err(|e| e.to_string())
}

/// Parses a duration: a number with a unit (`ms`, `s`, `m` or `min`, `h`, `d`), several of
/// them in a row (`1h30m`), or a bare number of seconds. Use it as a `clap` value parser
/// (`#[arg(value_parser = parse_duration)]`).
///
/// ```
/// use std::time::Duration;
/// use ow_cli::parse_duration;
///
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
/// assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("ten minutes").is_err());
/// ```
///
/// # Errors
/// A message saying what a duration looks like.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 10m, 1h30m or 14d");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs_per_unit = match &rest[..unit_len] {
            "ms" => None,
            "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let part = match secs_per_unit {
            None => Duration::from_millis(n),
            Some(unit) => Duration::from_secs(n.checked_mul(unit).ok_or_else(invalid)?),
        };
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        streams: StreamsArgs,
    }

    #[test]
    fn defaults_and_errors() {
        let args = Args::parse_from(["x"]);
        assert_eq!(args.streams.state_dir, PathBuf::from("./.ow-state"));
        // No broker: the local log in the state directory.
        assert_eq!(
            args.streams.to_config("a").unwrap().backend,
            Backend::local("./.ow-state/log")
        );
        let args = Args::parse_from([
            "x",
            "--brokers",
            "local:///tmp/ow",
            "--commit-interval-ms",
            "50",
        ]);
        let c = args.streams.to_config("a").unwrap();
        assert_eq!(c.backend, Backend::local("/tmp/ow"));
        assert_eq!(c.commit_interval, Duration::from_millis(50));
        assert_eq!(
            c.cache_max_bytes,
            ow_stream_core::config::DEFAULT_CACHE_MAX_BYTES
        );
        let args = Args::parse_from(["x", "--cache-max-bytes", "0"]);
        assert_eq!(args.streams.to_config("a").unwrap().cache_max_bytes, 0);
        let args = Args::parse_from(["x", "--brokers", "h:1", "--kafka-config", "nokey"]);
        assert!(args.streams.to_config("a").is_err());
    }

    #[test]
    fn threads_and_topic_prefix() {
        let args = Args::parse_from(["x", "--brokers", "h:1"]);
        assert_eq!(args.streams.threads, 1);
        assert_eq!(args.streams.topic_prefix, "");
        let args = Args::parse_from([
            "x",
            "--brokers",
            "h:1",
            "--threads",
            "3",
            "--topic-prefix",
            "staging.",
        ]);
        let config = args.streams.to_config("a").unwrap();
        assert_eq!(config.num_stream_threads, 3);
        assert_eq!(args.streams.topic_prefix, "staging.");
        // The namespace covers the application id (its group, internal topics, state).
        assert_eq!(config.application_id, "staging.a");
        let args = Args::parse_from(["x", "--topic-prefix", "bad prefix/"]);
        assert!(args.streams.to_config("a").is_err());
        assert!(Args::try_parse_from(["x", "--threads", "many"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 2m30s "), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d2h"), Ok(Duration::from_secs(93_600)));
        for bad in ["", "m", "10x", "1.5h", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
