//! The producer stage of the ow-stream Overwatch pipeline: it reads player requests, fetches each
//! player's profile from the [OverFast API](https://overfast-api.tekrop.fr) and emits one raw event
//! ([`ow_domain::RawPlayerProfile`]) per fetch, whatever its outcome; and it keeps the players
//! people look at fresh on a schedule.
//!
//! ```text
//!  ow.player-requests ──▶ answer (group ow-producer) ──┐
//!         │                coalesce per player          ├─▶ OverFast ─▶ ow.raw.player-profiles
//!         └──▶ views (ow-producer-tracker-<epoch>) ──▶ schedule ┘      (key = player id)
//!                                    bad requests ─▶ ow-producer-dlq
//! ```
//!
//! # Answers
//!
//! Requests ([`ow_domain::PlayerRequest`], key = player id) are read in the consumer group
//! [`APPLICATION_ID`]. A request for a player whose fetch is already in flight (asked by another
//! request or by the schedule) joins that fetch: N requests while one fetch runs make one HTTP
//! request and one raw event. The event's `request_id` is the request that started the fetch;
//! the header `ow.request.id` lists every request it answers (see
//! [`topics::raw_event_headers`]). A `view` request (someone opened the player's page) fetches
//! only when the last answer is no longer fresh; `search`, `refresh`, `track` and `other` always
//! fetch (or join the fetch in flight).
//!
//! # Delivery
//!
//! At least once. A request's offset is committed only after its raw event (or dead letter) is
//! acknowledged, and a partition's commit point never passes a request still in flight, even when
//! later requests finish first. After a crash the requests read since the last commit are
//! answered again; those committed are not (a restart re-fetches nothing already answered, and
//! loses nothing pending). A raw event that cannot be written stops the stage with
//! [`ProducerError::Delivery`] (nothing past its request is committed); an answer larger than the
//! topic accepts is written without its body, as an `upstream_error` that says so.
//!
//! # Bad requests
//!
//! A record that is not a request (not Avro of the request schema, a tombstone, a key that is not
//! an Avro string) and a request whose player id is not a battletag (or whose key names another
//! player) produce **no** raw event: they are logged and written byte for byte to the dead-letter
//! topic `<application id>-dlq` (`ow-producer-dlq`) with the headers of
//! [`topics::dead_letter_headers`] (source topic, partition, offset, timestamp, stage, error),
//! the names the streams library uses for its own dead letters. A raw event with outcome
//! `not_found` was the other option; it was not taken because it would put ids that are not
//! battletags into every downstream table, keyed by arbitrary text. The dashboard checks ids with
//! [`PlayerId::parse`](ow_domain::battletag::PlayerId::parse) before it writes a request, and
//! tells the user at once. A schema registry out of reach is not the record's fault: it stops
//! the stage instead.
//!
//! # Tracked players
//!
//! Every requested player, and those given with `--track` / `--track-file`, is refreshed on a
//! schedule that respects OverFast's cache, until nobody asked for them for `--untrack-after`;
//! the set survives restarts. One instance of a deployment owns the schedule. The rules, where
//! the set is kept and why: [`tracking`].
//!
//! # Running it
//!
//! The binary `ow-producer` runs [`run`] until Ctrl-C or SIGTERM; every setting is a flag with an
//! environment variable ([`cli`], `ow-producer --help`). In-process (the embedded stack), keep
//! the handle of [`start`]:
//!
//! ```no_run
//! use ow_producer::{APPLICATION_ID, ProducerConfig};
//! use ow_producer::overfast::{ClientConfig, Source};
//! use ow_stream_core::config::{Backend, StreamsConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let streams = StreamsConfig::new(APPLICATION_ID, Backend::local("/var/lib/ow/log"))
//!     .with_state_dir("/var/lib/ow/state");
//! let client = ClientConfig::new(Source::parse("file:///srv/ow/samples/overfast")?);
//! let producer = ow_producer::start(ProducerConfig::new(streams, client)).await?;
//! producer.pause();
//! println!("{:?}", producer.metrics());
//! producer.resume();
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! * [`overfast`]: the HTTP client with its outcome classification, retries, rate limit,
//!   not-found memory, cache helpers, and the offline replay / recording of answers. What a body
//!   is (and which bodies are `ok`) is [`ow_domain::overfast`], shared with the processor; the
//!   player id is [`ow_domain::battletag::PlayerId`].
//! * [`tracking`]: the schedule of tracked players and its state.
//! * [`topics`]: the typed topics and the headers written.
//! * [`cli`]: the `clap` flags, for the binary and the embedded stack.
//! * [`clock`]: the schedule's clock (a manual one for tests).
//! * `fixture_server` (feature `fixture-server`): a loopback HTTP server that serves recorded
//!   OverFast answers and injects failures, for tests here and in the rest of the pipeline.
//!
//! | feature | what it adds |
//! |---|---|
//! | `fixture-server` | `fixture_server`: the test server (pulls in `axum`) |

pub mod cli;
pub mod clock;
mod config;
mod error;
#[cfg(feature = "fixture-server")]
pub mod fixture_server;
mod metrics;
mod offsets;
pub mod overfast;
mod stage;
pub mod topics;
pub mod tracking;

pub use config::{APPLICATION_ID, ProducerConfig, TrackingConfig};
pub use error::ProducerError;
pub use metrics::{FetchCounts, ProducerMetrics};
pub use stage::{ProducerHandle, run, start};
pub use tracking::TrackedPlayer;
