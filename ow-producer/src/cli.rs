//! Command-line and environment settings of the producer, as `clap` argument groups that the
//! `ow-producer` binary and the embedded stack (`ow-web`) flatten into their parsers, next to
//! the shared [`StreamsArgs`](ow_cli::StreamsArgs) of every ow-stream binary.
//!
//! | flag | env | default |
//! |---|---|---|
//! | `--overfast-url` | `OW_OVERFAST_URL` | `https://overfast-api.tekrop.fr` (`file:///dir` replays) |
//! | `--replay` | `OW_REPLAY` | — |
//! | `--record` | `OW_RECORD` | — |
//! | `--overfast-rate` | `OW_OVERFAST_RATE` | `2` requests/s |
//! | `--overfast-burst` | `OW_OVERFAST_BURST` | `5` |
//! | `--overfast-concurrency` | `OW_OVERFAST_CONCURRENCY` | `4` |
//! | `--overfast-timeout` | `OW_OVERFAST_TIMEOUT` | `10s` |
//! | `--overfast-attempts` | `OW_OVERFAST_ATTEMPTS` | `4` |
//! | `--overfast-max-body` | `OW_OVERFAST_MAX_BODY` | `8MiB` |
//! | `--track` | `OW_TRACK` | — |
//! | `--track-file` | `OW_TRACK_FILE` | — |
//! | `--refresh-interval` | `OW_REFRESH_INTERVAL` | `10m` |
//! | `--untrack-after` | `OW_UNTRACK_AFTER` | `14d` |
//! | `--schedule` | `OW_SCHEDULE` | `true` |
//!
//! ```
//! use clap::Parser;
//! use ow_producer::cli::ProducerArgs;
//! use ow_cli::StreamsArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     streams: StreamsArgs,
//!     #[command(flatten)]
//!     producer: ProducerArgs,
//! }
//!
//! let args = Args::parse_from([
//!     "app", "--brokers", "localhost:9092", "--schema-registry-url", "http://localhost:8081",
//!     "--track", "TeKrop#2217,JohnV1-1190", "--refresh-interval", "5m",
//! ]);
//! let config = ow_producer::ProducerConfig::from_args(&args.streams, &args.producer).unwrap();
//! assert_eq!(config.tracking.players.len(), 2);
//! assert_eq!(config.tracking.refresh_interval.as_secs(), 300);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use ow_domain::battletag::PlayerId;
use ow_stream_core::config::StreamsConfig;

use crate::config::{ProducerConfig, TrackingConfig};
use crate::error::ProducerError;
use crate::overfast::{ClientConfig, ConfigError, DEFAULT_URL, Source};

/// Where OverFast answers come from, and how politely it is asked.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct OverfastArgs {
    /// OverFast API base URL; `file:///dir` replays recorded answers from a directory.
    #[arg(long, env = "OW_OVERFAST_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub overfast_url: String,

    /// Replay recorded answers from this directory instead of asking OverFast (the layout of
    /// `samples/overfast/`; same as `--overfast-url file:///DIR`).
    #[arg(
        long,
        env = "OW_REPLAY",
        value_name = "DIR",
        conflicts_with = "overfast_url"
    )]
    pub replay: Option<PathBuf>,

    /// Save every ok, private and not-found answer from OverFast into this directory, in the
    /// replay layout.
    #[arg(long, env = "OW_RECORD", value_name = "DIR")]
    pub record: Option<PathBuf>,

    /// Requests per second sent to OverFast, on average (token bucket).
    #[arg(
        long,
        env = "OW_OVERFAST_RATE",
        default_value_t = 2.0,
        value_name = "PER_SECOND"
    )]
    pub overfast_rate: f64,

    /// Requests that may go to OverFast at once after a quiet spell (bucket size).
    #[arg(long, env = "OW_OVERFAST_BURST", default_value_t = 5, value_name = "N")]
    pub overfast_burst: u32,

    /// Requests to OverFast in flight at once.
    #[arg(
        long,
        env = "OW_OVERFAST_CONCURRENCY",
        default_value_t = 4,
        value_name = "N"
    )]
    pub overfast_concurrency: usize,

    /// Longest wait for one complete OverFast answer (e.g. `10s`, `1500ms`).
    #[arg(long, env = "OW_OVERFAST_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub overfast_timeout: Duration,

    /// HTTP attempts per fetch, the first included (retries back off exponentially).
    #[arg(
        long,
        env = "OW_OVERFAST_ATTEMPTS",
        default_value_t = 4,
        value_name = "N"
    )]
    pub overfast_attempts: u32,

    /// Largest OverFast answer accepted; a longer body is an `upstream_error` (bytes, or with a
    /// `KiB`/`MiB` suffix, e.g. `8MiB`).
    #[arg(long, env = "OW_OVERFAST_MAX_BODY", default_value = "8MiB", value_parser = parse_bytes, value_name = "BYTES")]
    pub overfast_max_body: usize,
}

/// A byte count: digits, optionally followed by `B`, `KiB` or `MiB`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (e.g. `8MiB`, `65536`)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        other => return Err(format!("unknown unit `{other}` (use B, KiB or MiB)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

impl OverfastArgs {
    /// The client settings these flags describe (the other settings keep their defaults).
    ///
    /// # Errors
    /// A [`ConfigError`] for a URL that does not parse or a value out of range.
    pub fn to_client_config(&self) -> Result<ClientConfig, ConfigError> {
        let source = match &self.replay {
            Some(dir) => Source::replay(dir),
            None => Source::parse(&self.overfast_url)?,
        };
        let mut config = ClientConfig::new(source);
        config.record_dir = self.record.clone();
        config.rate_per_second = self.overfast_rate;
        config.burst = self.overfast_burst;
        config.concurrency = self.overfast_concurrency;
        config.timeout = self.overfast_timeout;
        config.max_attempts = self.overfast_attempts;
        config.max_body_bytes = self.overfast_max_body;
        config.validate()?;
        Ok(config)
    }
}

/// Which players are refreshed on a schedule, and how often.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct TrackingArgs {
    /// Players refreshed on the schedule whether or not anyone asks for them: battletags,
    /// comma-separated (`Name#1234` or `Name-1234`).
    #[arg(
        long,
        env = "OW_TRACK",
        value_delimiter = ',',
        value_name = "BATTLETAGS"
    )]
    pub track: Vec<String>,

    /// A file of players to track, one battletag per line (blank lines and lines starting
    /// with `#` are ignored).
    #[arg(long, env = "OW_TRACK_FILE", value_name = "PATH")]
    pub track_file: Option<PathBuf>,

    /// How often tracked players are refreshed; never sooner than OverFast's cache of the
    /// last answer allows (e.g. `10m`, `1h`).
    #[arg(long, env = "OW_REFRESH_INTERVAL", default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub refresh_interval: Duration,

    /// A requested player nobody asked about for this long stops being refreshed (e.g.
    /// `14d`).
    #[arg(long, env = "OW_UNTRACK_AFTER", default_value = "14d", value_parser = parse_duration, value_name = "DURATION")]
    pub untrack_after: Duration,

    /// Whether this instance refreshes tracked players. Run exactly one instance with
    /// `true` per deployment; the others answer requests only.
    #[arg(long, env = "OW_SCHEDULE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub schedule: bool,
}

impl TrackingArgs {
    /// The schedule these flags describe; reads the `--track-file`.
    ///
    /// # Errors
    /// [`ProducerError::TrackedPlayer`] for an entry that is not a battletag (with the file
    /// and line), [`ProducerError::TrackFile`] when the file cannot be read.
    pub fn to_config(&self) -> Result<TrackingConfig, ProducerError> {
        let mut players = Vec::new();
        for entry in &self.track {
            if entry.trim().is_empty() {
                continue;
            }
            players.push(parse_tracked(entry, "--track".into())?);
        }
        if let Some(path) = &self.track_file {
            players.extend(read_track_file(path)?);
        }
        players.sort();
        players.dedup();
        Ok(TrackingConfig::default()
            .with_schedule(self.schedule)
            .with_players(players)
            .with_refresh_interval(self.refresh_interval)
            .with_untrack_after(self.untrack_after))
    }
}

/// Every setting of the producer stage besides the shared ones.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ProducerArgs {
    /// OverFast settings.
    #[command(flatten)]
    pub overfast: OverfastArgs,
    /// Schedule settings.
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

impl ProducerArgs {
    /// The producer configuration for `streams` (whose application id is kept).
    ///
    /// # Errors
    /// As [`OverfastArgs::to_client_config`] and [`TrackingArgs::to_config`].
    pub fn to_config(&self, streams: StreamsConfig) -> Result<ProducerConfig, ProducerError> {
        let config = ProducerConfig::new(streams, self.overfast.to_client_config()?)
            .with_tracking(self.tracking.to_config()?);
        Ok(config)
    }
}

fn parse_tracked(text: &str, origin: String) -> Result<PlayerId, ProducerError> {
    PlayerId::parse(text).map_err(|source| ProducerError::TrackedPlayer {
        input: text.trim().to_owned(),
        origin,
        source,
    })
}

/// The battletags of a track file: one per line, blank lines and `#` comments ignored.
pub(crate) fn read_track_file(path: &Path) -> Result<Vec<PlayerId>, ProducerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProducerError::TrackFile {
        path: path.to_owned(),
        source,
    })?;
    let mut players = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        // A battletag never starts with `#`: its name comes first.
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        players.push(parse_tracked(
            line,
            format!("{}:{}", path.display(), number + 1),
        )?);
    }
    Ok(players)
}

/// Parses a duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`), several of them in a
/// row (`1h30m`), or a bare number of seconds. The parser every ow-stream binary shares (`ow_cli`), re-exported here.
///
/// ```
/// use std::time::Duration;
/// use ow_producer::cli::parse_duration;
///
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
/// assert!(parse_duration("ten minutes").is_err());
/// ```
pub use ow_cli::parse_duration;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Args {
        #[command(flatten)]
        producer: ProducerArgs,
    }

    #[test]
    fn defaults_match_the_libraries_defaults() {
        let args = Args::try_parse_from(["x"]).unwrap();
        let client = args.producer.overfast.to_client_config().unwrap();
        let default = ClientConfig::default();
        assert_eq!(client.source, default.source);
        assert_eq!(client.rate_per_second, default.rate_per_second);
        assert_eq!(client.burst, default.burst);
        assert_eq!(client.concurrency, default.concurrency);
        assert_eq!(client.timeout, default.timeout);
        assert_eq!(client.max_attempts, default.max_attempts);
        assert_eq!(client.max_body_bytes, default.max_body_bytes);
        assert_eq!(client.record_dir, None);
        assert_eq!(
            args.producer.tracking.to_config().unwrap(),
            TrackingConfig::default()
        );
    }

    #[test]
    fn body_limits_parse_with_units() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes(" 8MiB "), Ok(8 << 20));
        assert_eq!(parse_bytes("3 MiB"), Ok(3 << 20));
        assert!(parse_bytes("8GiB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999999999MiB").is_err());
        let args = Args::try_parse_from(["x", "--overfast-max-body", "1MiB"]).unwrap();
        let client = args.producer.overfast.to_client_config().unwrap();
        assert_eq!(client.max_body_bytes, 1 << 20);
        // Zero is refused by the client's own validation.
        let args = Args::try_parse_from(["x", "--overfast-max-body", "0"]).unwrap();
        assert!(args.producer.overfast.to_client_config().is_err());
    }

    #[test]
    fn flags_reach_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tracked.txt");
        std::fs::write(&file, "# friends\nJohnV1-1190\n\n  TeKrop#2217  \n").unwrap();
        let args = Args::try_parse_from([
            "x",
            "--replay",
            dir.path().to_str().unwrap(),
            "--overfast-rate",
            "0.5",
            "--overfast-timeout",
            "1500ms",
            "--track",
            "TeKrop#2217, Player-137712",
            "--track-file",
            file.to_str().unwrap(),
            "--refresh-interval",
            "1h",
            "--untrack-after",
            "2d",
            "--schedule",
            "false",
        ])
        .unwrap();
        let client = args.producer.overfast.to_client_config().unwrap();
        assert_eq!(client.source, Source::replay(dir.path()));
        assert_eq!(client.rate_per_second, 0.5);
        assert_eq!(client.timeout, Duration::from_millis(1500));
        let tracking = args.producer.tracking.to_config().unwrap();
        let names: Vec<&str> = tracking.players.iter().map(PlayerId::as_str).collect();
        assert_eq!(names, ["JohnV1-1190", "Player-137712", "TeKrop-2217"]);
        assert_eq!(tracking.refresh_interval, Duration::from_secs(3600));
        assert_eq!(tracking.untrack_after, Duration::from_secs(2 * 86_400));
        assert!(!tracking.schedule);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tracked.txt");
        std::fs::write(&file, "JohnV1-1190\nnot a battletag\n").unwrap();
        let args = Args::try_parse_from(["x", "--track-file", file.to_str().unwrap()]).unwrap();
        let err = args.producer.tracking.to_config().unwrap_err();
        assert!(
            matches!(&err, ProducerError::TrackedPlayer { origin, .. } if origin.ends_with("tracked.txt:2")),
            "{err}"
        );
        let args = Args::try_parse_from(["x", "--track", "../etc#1"]).unwrap();
        assert!(matches!(
            args.producer.tracking.to_config(),
            Err(ProducerError::TrackedPlayer { .. })
        ));
        let args = Args::try_parse_from(["x", "--track-file", "/nonexistent/ow"]).unwrap();
        assert!(matches!(
            args.producer.tracking.to_config(),
            Err(ProducerError::TrackFile { .. })
        ));
        assert!(Args::try_parse_from(["x", "--refresh-interval", "soon"]).is_err());
        assert!(
            Args::try_parse_from(["x", "--overfast-url", "http://a", "--replay", "/tmp"]).is_err()
        );
        let args = Args::try_parse_from(["x", "--overfast-url", "ftp://a"]).unwrap();
        assert!(args.producer.overfast.to_client_config().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 2m30s "), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        for bad in ["", "m", "10x", "1.5h", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
