//! The errors of the processor: [`ProcessError`] for a raw event that cannot be turned into
//! outputs (it goes to the dead-letter topic), [`ProcessorError`] for the stage itself (it
//! cannot start, or stops).

use ow_domain::FetchOutcome;
use ow_domain::overfast::BodyError;
use ow_stream_core::TopologyError;
use ow_stream_core::registry::RegistryError;
use ow_stream_core::serde::SerdeError;

/// Why a raw event could not be turned into outputs.
///
/// Every variant names the player and the fetch, so a dead-letter record explains itself. The
/// processor never panics on what a raw event carries: bad bodies end up here. The body variants
/// ([`MalformedJson`](Self::MalformedJson) to [`OutOfRange`](Self::OutOfRange)) are the
/// [`BodyError`]s of the domain's body model, the one the producer classifies fetches with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// An `ok` or `private` fetch arrived without a body.
    #[error("fetch of player {player_id} at {fetched_at} ended {} but carries no body", outcome_name(*.outcome))]
    MissingBody {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
        /// Its outcome.
        outcome: FetchOutcome,
    },
    /// The body is not JSON (truncated, garbage, not UTF-8 text).
    #[error(
        "body of player {player_id} fetched at {fetched_at} is not json (line {}, column {})",
        source.line(),
        source.column()
    )]
    MalformedJson {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// The body is JSON but not shaped like OverFast's `GET /players/{id}` answer (a value of
    /// the wrong type, a stat without key or value…).
    #[error(
        "body of player {player_id} fetched at {fetched_at} is not a player career (line {}, column {})",
        source.line(),
        source.column()
    )]
    UnexpectedShape {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// The body has no `summary` (or a `null` one).
    #[error("body of player {player_id} fetched at {fetched_at} has no summary")]
    MissingSummary {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
    },
    /// The body has no `stats` field (a private profile has `"stats": null`).
    #[error("body of player {player_id} fetched at {fetched_at} has no stats field")]
    MissingStats {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
    },
    /// A number of the body is out of the range it can have.
    #[error("{field} of player {player_id} fetched at {fetched_at} is out of range: {value}")]
    OutOfRange {
        /// The player of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
        /// Path of the field in the body.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The record key of a raw event is not the player id it carries: the event would land in
    /// another player's state.
    #[error("raw event keyed {key:?} carries the fetch of player {player_id:?} at {fetched_at}")]
    KeyMismatch {
        /// The record key.
        key: String,
        /// `player_id` of the raw event.
        player_id: String,
        /// `fetched_at` of the raw event.
        fetched_at: i64,
    },
    /// A raw event has an empty player id.
    #[error("raw event fetched at {fetched_at} has an empty player id")]
    EmptyPlayerId {
        /// `fetched_at` of the raw event.
        fetched_at: i64,
    },
    /// A raw event was applied to the profile of another player.
    #[error(
        "fetch of player {fetched_player_id} cannot update the profile of player {profile_player_id}"
    )]
    PlayerMismatch {
        /// The player of the profile.
        profile_player_id: String,
        /// The player of the raw event.
        fetched_player_id: String,
    },
}

impl ProcessError {
    /// The error of a body the domain's model refuses, in a fetch of `player_id` at `fetched_at`.
    pub(crate) fn body(player_id: &str, fetched_at: i64, error: BodyError) -> ProcessError {
        let player_id = player_id.to_owned();
        match error {
            BodyError::MalformedJson { source } => ProcessError::MalformedJson {
                player_id,
                fetched_at,
                source,
            },
            BodyError::UnexpectedShape { source } => ProcessError::UnexpectedShape {
                player_id,
                fetched_at,
                source,
            },
            BodyError::MissingSummary => ProcessError::MissingSummary {
                player_id,
                fetched_at,
            },
            BodyError::MissingStats => ProcessError::MissingStats {
                player_id,
                fetched_at,
            },
            BodyError::OutOfRange { field, value } => ProcessError::OutOfRange {
                player_id,
                fetched_at,
                field,
                value,
            },
        }
    }
}

/// Why the processor stage could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessorError {
    /// Neither a schema registry URL nor an open registry was configured, on Kafka.
    #[error("no schema registry configured: set --schema-registry-url (OW_SCHEMA_REGISTRY_URL)")]
    NoRegistry,
    /// The schema registry URL is unusable.
    #[error("cannot use the schema registry at {url}")]
    Registry {
        /// The URL configured.
        url: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// One of the pipeline's Avro schemas could not be loaded into a serde.
    #[error("cannot use the avro schema of {what}")]
    Schema {
        /// Which record the schema describes (`"ow.stats.deltas value"`, ...).
        what: &'static str,
        /// Why.
        #[source]
        source: SerdeError,
    },
    /// The schemas of an output topic could not be registered.
    #[error("cannot register the schemas of topic {topic}")]
    Register {
        /// The topic.
        topic: String,
        /// Why (the registry refused or could not be reached).
        #[source]
        source: SerdeError,
    },
    /// The topology is malformed (a topic prefix that makes names invalid, for example).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The streams application failed to start, failed while running, or failed to close.
    #[error(transparent)]
    Streams(#[from] ow_stream_core::Error),
}

/// The schema symbol of an outcome, for messages.
pub(crate) fn outcome_name(outcome: FetchOutcome) -> &'static str {
    match outcome {
        FetchOutcome::Ok => "ok",
        FetchOutcome::Private => "private",
        FetchOutcome::NotFound => "not_found",
        FetchOutcome::RateLimited => "rate_limited",
        FetchOutcome::UpstreamError => "upstream_error",
    }
}
