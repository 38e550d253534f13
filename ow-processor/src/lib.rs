//! The ow-processor stage: from raw OverFast answers (`ow.raw.player-profiles`) to the four
//! outputs of the pipeline.
//!
//! The domain is pure functions with no Kafka and no DSL, testable with plain values; the
//! [`topology`] module wires them together with the ow-stream-core DSL, and [`start`] / [`run`]
//! run that topology.
//!
//! | output | function | state it needs |
//! |---|---|---|
//! | `ow.stats.by-category` | [`stats_by_category`] | none |
//! | `ow.players.profile` | [`apply_fetch`] | the previous profile (the table itself) |
//! | `ow.stats.deltas` | [`snapshot_of`], [`compute_deltas`], [`supersedes`] | the last [`PlayerSnapshot`](ow_domain::PlayerSnapshot) per player |
//! | `ow.stats.daily` | [`add_delta`], [`day_window`] | one [`DailyStats`](ow_domain::DailyStats) per (player, platform, mode, day) |
//!
//! The record types and schemas live in [`ow_domain`], and so does everything the processor
//! knows about Overwatch: the OverFast body model it reads raw bodies with
//! ([`ow_domain::overfast`], the one the producer classifies them with), stat units
//! ([`ow_domain::units`]), hero and stat keys ([`ow_domain::hero`], [`ow_domain::stat`]).
//!
//! # Parse once
//! Each function above parses the raw body itself. A topology that wants several outputs from
//! one event can parse once with [`PlayerFetch::parse`] and ask the result for each one; the
//! body is read straight into borrowed structures, never into a generic JSON tree.
//!
//! # Errors
//! A body that cannot be read (not JSON, no `summary`, no `stats`, wrong types) is a
//! [`ProcessError`] naming the player and the fetch, for the dead-letter topic. The producer
//! never writes such a body as `ok` or `private` (it reads bodies with the same model), so only
//! a raw event from elsewhere ends up there. Nothing here panics on input.
//!
//! # The stage
//! [`build`] wires these functions into a topology with the ow-stream-core DSL (its shape, and
//! why it needs no repartition topic, are in [`topology`]); [`start`] and [`run`] run it as the
//! streams application [`APPLICATION_ID`]:
//!
//! ```text
//! raw (key player id) ─ parse-fetch ─┬─ aggregate(apply_fetch) ────────────────▶ ow.players.profile
//!                                    └─ newer-snapshots (store player-last-snapshot)
//!                                        ├─ compute_deltas ───────────────────────▶ ow.stats.deltas
//!                                        │   └─ all-heroes, 1-day windows ─ add_delta ▶ ow.stats.daily
//!                                        └─ stats_by_category ───────────────────▶ ow.stats.by-category
//! ```
//!
//! # Example
//! ```
//! use ow_processor::{apply_fetch, stats_by_category};
//! use ow_domain::{FetchOutcome, RawPlayerProfile};
//!
//! let raw = RawPlayerProfile {
//!     request_id: "r1".into(),
//!     player_id: "Someone-1234".into(),
//!     fetched_at: 1_700_000_000_000,
//!     request_url: "https://overfast-api.tekrop.fr/players/Someone-1234".into(),
//!     http_status: Some(200),
//!     outcome: FetchOutcome::Private,
//!     body: Some(r#"{"summary": {"username": "Someone"}, "stats": null}"#.into()),
//!     cache_max_age_secs: None,
//!     cache_age_secs: None,
//!     error: None,
//!     attempts: 1,
//!     next_attempt_at: None,
//! };
//! assert!(stats_by_category(&raw)?.is_empty());
//! let profile = apply_fetch(None, &raw)?;
//! assert_eq!(profile.username.as_deref(), Some("Someone"));
//! assert_eq!(profile.status.outcome, FetchOutcome::Private);
//!
//! let garbage = RawPlayerProfile { body: Some("{\"summ".into()), ..raw };
//! assert!(apply_fetch(None, &garbage).is_err());
//! # Ok::<(), ow_processor::ProcessError>(())
//! ```

mod app;
pub mod category;
pub mod daily;
pub mod delta;
mod error;
mod fetch;
pub mod profile;
pub mod snapshot;
pub mod topology;

pub use app::{APPLICATION_ID, Processor, ProcessorConfig, run, start};
pub use category::stats_by_category;
pub use daily::{DAY_MS, GRACE_MS, add_delta, day_window};
pub use delta::compute_deltas;
pub use error::{ProcessError, ProcessorError};
pub use fetch::PlayerFetch;
pub use profile::apply_fetch;
pub use snapshot::{snapshot_of, supersedes};
pub use topology::{DAILY_STORE, PROFILE_STORE, SNAPSHOT_STORE, Topics, TopologyOptions, build};
