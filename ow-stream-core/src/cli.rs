//! Command-line and environment settings shared by every binary built on the library.
//!
//! Flatten [`StreamsArgs`] into an application's `clap` parser so every stage names its
//! settings the same way (`--brokers` / `OW_BROKERS`, `--schema-registry-url` /
//! `OW_SCHEMA_REGISTRY_URL`, `--state-dir` / `OW_STATE_DIR`, `--log` / `RUST_LOG`, ...).
//!
//! ```
//! use clap::Parser;
//! use ow_stream_core::cli::StreamsArgs;
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

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Backend, StreamsConfig};
use crate::error::Error;

/// Settings every stage shares.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct StreamsArgs {
    /// Kafka bootstrap servers (`host:port,...`), or `local:///path` for the durable local log.
    #[arg(long, env = "OW_BROKERS")]
    pub brokers: Option<String>,

    /// Schema registry URL: `http(s)://host:port` (Confluent-compatible) or `mock://<scope>`.
    #[arg(long, env = "OW_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,

    /// Directory for state stores (and, for the local backend, topics).
    #[arg(long, env = "OW_STATE_DIR", default_value = "./.ow-state")]
    pub state_dir: PathBuf,

    /// How often stores and offsets are committed, in milliseconds.
    #[arg(long, env = "OW_COMMIT_INTERVAL_MS", default_value_t = 1000)]
    pub commit_interval_ms: u64,

    /// librdkafka settings passed through, as `key=value` (repeatable or comma-separated).
    #[arg(long = "kafka-config", env = "OW_KAFKA_CONFIG", value_delimiter = ',')]
    pub kafka_config: Vec<String>,

    /// Log filter (`tracing` env-filter syntax, e.g. `info,ow_stream_core=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

impl StreamsArgs {
    /// The backend named by `--brokers`; `None` when it is not set.
    pub fn backend(&self) -> Result<Option<Backend>, Error> {
        self.brokers.as_deref().map(Backend::parse).transpose()
    }

    /// A library configuration for `application_id`. Fails when no broker is configured.
    pub fn to_config(&self, application_id: &str) -> Result<StreamsConfig, Error> {
        let backend = self.backend()?.ok_or(Error::Config {
            field: "brokers",
            reason: "set --brokers or OW_BROKERS (host:port,... for Kafka, local:///path for the local log)"
                .into(),
        })?;
        self.to_config_with(application_id, backend)
    }

    /// A library configuration for `application_id` on the given backend.
    pub fn to_config_with(
        &self,
        application_id: &str,
        backend: Backend,
    ) -> Result<StreamsConfig, Error> {
        let mut config = StreamsConfig::new(application_id, backend)
            .with_state_dir(&self.state_dir)
            .with_commit_interval(Duration::from_millis(self.commit_interval_ms.max(1)));
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
        assert!(args.streams.to_config("a").is_err());
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
        let args = Args::parse_from(["x", "--brokers", "h:1", "--kafka-config", "nokey"]);
        assert!(args.streams.to_config("a").is_err());
    }
}
