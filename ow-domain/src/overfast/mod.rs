//! The OverFast body model: what the bodies of `GET /players/{player_id}` are, how to read them,
//! and which of them are a player. The producer's classification and the processor's parsing both
//! go through [`PlayerBody::parse`], so a body the producer calls `ok` is a body the processor
//! reads (the HTTP client itself, with its retries, stays in the producer).
//!
//! # The bodies OverFast sends
//! (from `TeKrop/overfast-api`; recorded examples in `samples/overfast/`)
//!
//! * 200: the player, `{"summary": {...}, "stats": {...}}`; a private profile has
//!   `"stats": null`. Other top-level fields (`heroes_comparisons`, `privacy`…) are skipped.
//! * 404, three shapes, all meaning "no such player" ([`NotFoundBody`]):
//!   - the app's first answer, nested: `{"error":{"error":"Player not found","retry_after":600,
//!     "next_check_at":1739634000,"check_count":1}}`;
//!   - nginx's answer while the player is in cooldown, flat: `{"error":"Player not found",
//!     "retry_after":540,"next_check_at":1739634000,"check_count":1}`;
//!   - without the unknown-player cache: `{"error":"Player not found"}`.
//! * 429 (nginx rate limit), 503 (Blizzard rate limits OverFast), 500, 504 (Blizzard did not
//!   answer): `{"error":"..."}` ([`error_message`]).
//!
//! # Which 200 bodies are a player
//! [`PlayerBody::parse`] (or [`classify_profile`], which keeps only the verdict) checks, in this
//! order, and the first check that fails is the [`BodyError`]:
//!
//! | check | error | outcome at the producer |
//! |---|---|---|
//! | the whole text is JSON | [`BodyError::MalformedJson`] | `upstream_error` (retried) |
//! | every value has the type of the model below | [`BodyError::UnexpectedShape`] | `upstream_error` (retried) |
//! | `summary` is there and not `null` | [`BodyError::MissingSummary`] | `upstream_error` (retried) |
//! | `summary.last_updated_at` fits in milliseconds | [`BodyError::OutOfRange`] | `upstream_error` (retried) |
//! | `stats` is there (`null` is fine) | [`BodyError::MissingStats`] | `upstream_error` (retried) |
//! | — passed, `stats` holds something | — | `ok` ([`ProfileKind::Public`]) |
//! | — passed, `"stats": null` | — | `private` ([`ProfileKind::Private`]) |
//!
//! The processor reads the body of an `ok` or `private` raw event with the same function; a body
//! that fails is a dead letter, which only a raw event written by something else than the
//! producer can cause.
//!
//! # The model
//! The body is deserialized straight into borrowed structures ([`Summary`], [`StatsBody`] →
//! [`GamemodeStats`] → [`Category`] → [`Stat`]): strings without escapes point into the body
//! ([`Text`]), objects whose keys are data (platforms, game modes, heroes, roles) keep their
//! order as sent ([`Entries`]), and everything unused (`heroes_comparisons`, unknown fields) is
//! skipped without being built. No platform, game mode, hero, role, category or stat is named
//! here, so new ones pass through.
//!
//! Leniency: numbers may be integers, floats or numeric strings (`"12"`, `"45%"`, `"1:02:03"`,
//! see [`Number`], [`Int`]); `null` stands for "absent" everywhere (unplayed heroes, missing
//! platforms, a stat without a value). A value of another type is an error, and so is an array
//! where the model has an object ([`Obj`]).
//!
//! ```
//! use ow_domain::overfast::{BodyError, ProfileKind, classify_profile};
//!
//! assert_eq!(classify_profile(r#"{"summary": {}, "stats": {"pc": null}}"#)?, ProfileKind::Public);
//! assert_eq!(classify_profile(r#"{"summary": {}, "stats": null}"#)?, ProfileKind::Private);
//! assert!(matches!(classify_profile(r#"{"stats": {}}"#), Err(BodyError::MissingSummary)));
//! assert!(matches!(classify_profile(r#"{"summary": {}, "stats": 3}"#),
//!                  Err(BodyError::UnexpectedShape { .. })));
//! assert!(matches!(classify_profile(r#"{"summary": {"#), Err(BodyError::MalformedJson { .. })));
//! # Ok::<(), BodyError>(())
//! ```

mod body;
mod error_body;
mod lenient;

pub use body::{
    Category, EndorsementBody, GamemodeStats, PlatformRanks, PlayerBody, RankBody, Stat, StatsBody,
    Summary,
};
pub use error_body::{NotFoundBody, error_message};
pub use lenient::{Entries, Int, Number, Obj, Text};

use crate::FetchOutcome;

/// What a 200 body of `GET /players/{player_id}` is, once it passed [`PlayerBody::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// `stats` holds something: the fetch is `ok`.
    Public,
    /// `"stats": null`: the fetch is `private`.
    Private,
}

impl ProfileKind {
    /// The outcome of a fetch that got this body.
    ///
    /// ```
    /// use ow_domain::FetchOutcome;
    /// use ow_domain::overfast::ProfileKind;
    ///
    /// assert_eq!(ProfileKind::Public.outcome(), FetchOutcome::Ok);
    /// assert_eq!(ProfileKind::Private.outcome(), FetchOutcome::Private);
    /// ```
    pub fn outcome(self) -> FetchOutcome {
        match self {
            ProfileKind::Public => FetchOutcome::Ok,
            ProfileKind::Private => FetchOutcome::Private,
        }
    }
}

/// Why a 200 body is not a player (the checks are in the [module docs](self)).
///
/// Deliberately exhaustive: a new way for a body to be wrong has to be handled by every stage
/// that reads bodies, so that they keep agreeing.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON: truncated, garbage, trailing characters.
    #[error("not json: {source}")]
    MalformedJson {
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// JSON, but a value has the wrong type (an array for an object, a string for a number, a
    /// stat without key…).
    #[error("not shaped like an overfast player: {source}")]
    UnexpectedShape {
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// No `summary`, or `"summary": null`.
    #[error("no `summary`")]
    MissingSummary,
    /// No `stats` field (a private profile has `"stats": null`).
    #[error("no `stats` field")]
    MissingStats,
    /// A number out of the range it can have.
    #[error("`{field}` is out of range: {value}")]
    OutOfRange {
        /// Path of the field in the body.
        field: &'static str,
        /// The value found.
        value: i64,
    },
}

impl BodyError {
    fn from_json(source: serde_json::Error) -> BodyError {
        if source.is_data() {
            BodyError::UnexpectedShape { source }
        } else {
            BodyError::MalformedJson { source }
        }
    }

    /// Whether the body is not JSON at all ([`BodyError::MalformedJson`]), as opposed to JSON
    /// that is not a player (every other variant).
    pub fn is_malformed_json(&self) -> bool {
        matches!(self, BodyError::MalformedJson { .. })
    }
}

/// The verdict of [`PlayerBody::parse`] on a 200 body, without keeping the body: the producer's
/// classification of a `GET /players/{player_id}` answer.
///
/// # Errors
/// As [`PlayerBody::parse`].
pub fn classify_profile(text: &str) -> Result<ProfileKind, BodyError> {
    PlayerBody::parse(text).map(|body| body.kind())
}
