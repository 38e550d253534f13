//! The crate's error type.
//!
//! Every fallible function of `ow-web` returns [`Error`]. The traits the embedded stack
//! implements ([`PipelineSource`](crate::PipelineSource), [`StageControl`](crate::StageControl),
//! [`TopicBrowser`](crate::TopicBrowser), [`PlayerRequests`](crate::PlayerRequests)) return it
//! too, so their implementations pick the variant that says what went wrong (an unknown stage
//! is a 404, an unreachable broker a 503, anything else a 500).
//!
//! Pages never show an [`Error`]'s text: the HTTP layer logs it and answers with a generic
//! message (see the `routes` module), so broker addresses, file paths and upstream bodies stay
//! on the server.

use std::net::SocketAddr;

use ow_stream_core::registry::RegistryError;

/// Everything that can go wrong in `ow-web`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `run` was called without `--brokers`/`OW_BROKERS`: the one-process embedded stack
    /// A setting is unusable.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The setting at fault (`"schema_registry_url"`, `"lookup_timeout"`, ...).
        field: &'static str,
        /// Why it is unusable.
        reason: String,
    },
    /// The stream library failed (starting, running or closing the web's streams app).
    #[error(transparent)]
    Stream(#[from] ow_stream_core::Error),
    /// The materialization topology is malformed (a bug of this crate).
    #[error(transparent)]
    Topology(#[from] ow_stream_core::TopologyError),
    /// The schema registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The pipeline's topics could not be set up (a schema that does not parse, a prefix
    /// that makes an invalid topic name).
    #[error("topics: {0}")]
    Topics(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A materialized store could not be read.
    #[error("store {store}: {source}")]
    Store {
        /// The store.
        store: &'static str,
        /// Why.
        #[source]
        source: ow_stream_core::Error,
    },
    /// A player request could not be written to `ow.player-requests`.
    #[error("cannot write a request for player {player_id}: {source}")]
    Request {
        /// The player asked for.
        player_id: String,
        /// Why the write failed.
        #[source]
        source: ow_stream_core::Error,
    },
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
    /// Pipeline introspection (topics, offsets, lag) is unavailable or failed.
    #[error("pipeline introspection: {reason}")]
    Pipeline {
        /// Why.
        reason: String,
    },
    /// No stage of that name in the pipeline.
    #[error("no stage named {stage}")]
    UnknownStage {
        /// The stage asked for.
        stage: String,
    },
    /// No topic of that name in the pipeline.
    #[error("no topic named {topic}")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },
    /// A stage could not be paused or resumed.
    #[error("stage {stage} cannot {action}: {reason}")]
    StageControl {
        /// The stage.
        stage: String,
        /// `"pause"` or `"resume"`.
        action: &'static str,
        /// Why.
        reason: String,
    },
    /// A blocking task (a store read) panicked or was cancelled.
    #[error("background task: {reason}")]
    Task {
        /// What happened to it.
        reason: String,
    },
}
