//! The producer stage's errors.

use std::path::PathBuf;

use ow_domain::battletag::BattletagError;
use ow_stream_core::serde::SerdeError;

use crate::overfast::ConfigError;

/// Why the producer stage could not start, or stopped.
///
/// Bad *records* are not errors of the stage: an undecodable request or one whose player id is
/// not a battletag goes to the dead-letter topic and the stage goes on (see the
/// [crate documentation](crate#bad-requests)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// A producer setting is unusable.
    #[error("invalid producer setting {setting}: {reason}")]
    Config {
        /// The setting (`ProducerConfig` field or flag) at fault.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// An OverFast client setting is unusable.
    #[error(transparent)]
    Overfast(#[from] ConfigError),
    /// A player given to `--track` / `--track-file` is not a battletag.
    #[error("tracked player {input:?} ({origin}) is not a battletag: {source}")]
    TrackedPlayer {
        /// The text as given.
        input: String,
        /// Where it was given: `--track`, or `<file>:<line>`.
        origin: String,
        /// Why it is not a battletag.
        #[source]
        source: BattletagError,
    },
    /// The `--track-file` cannot be read.
    #[error("cannot read the track file {path}: {source}")]
    TrackFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The schema registry cannot be used or a schema cannot be loaded into a serde.
    #[error("schema {schema}: {source}")]
    Schema {
        /// The schema (or registry) concerned.
        schema: &'static str,
        /// Why.
        #[source]
        source: SerdeError,
    },
    /// A topic the producer reads or writes does not exist.
    #[error("topic {topic} does not exist: create it first")]
    MissingTopic {
        /// The topic.
        topic: String,
    },
    /// A client of the streams library failed (configuration, connection, consumer).
    #[error("{operation}: {source}")]
    Streams {
        /// What was being done.
        operation: &'static str,
        /// The library's error.
        #[source]
        source: Box<ow_stream_core::Error>,
    },
    /// A record could not be written. Nothing after the request it answers is committed, so
    /// the request is fetched again after a restart.
    #[error("cannot write a record with key {key:?} to {topic}: {source}")]
    Delivery {
        /// The destination topic.
        topic: String,
        /// The record key (a player id, or the key bytes of a dead letter as text).
        key: String,
        /// The library's error.
        #[source]
        source: Box<ow_stream_core::Error>,
    },
    /// The tracked-player state file cannot be read or written.
    #[error("tracked-player state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tracked-player state file holds something else than the producer wrote.
    #[error(
        "tracked-player state {path} is unreadable ({reason}); move it away to rebuild the \
         tracked players from the requests topic"
    )]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The stage's task ended without a result (it panicked or was cancelled).
    #[error("the producer stopped unexpectedly: {reason}")]
    Stopped {
        /// What happened.
        reason: String,
    },
}

impl ProducerError {
    pub(crate) fn streams(operation: &'static str) -> impl FnOnce(ow_stream_core::Error) -> Self {
        move |source| ProducerError::Streams {
            operation,
            source: Box::new(source),
        }
    }
}
