//! The OverFast API client: `GET {base}/players/{player_id}`, one [`ProfileFetch`] per call.
//!
//! # What a fetch gives
//!
//! Every call of [`OverfastClient::fetch`] ends with a [`ProfileFetch`], convertible to the raw
//! event [`ow_domain::RawPlayerProfile`] with [`ProfileFetch::into_raw`]. Nothing is lost to an
//! error: the outcome says how it went.
//!
//! | outcome | when | retried |
//! |---|---|---|
//! | `ok` | 200, a player body ([`ow_domain::overfast::PlayerBody::parse`] passes) whose `stats` is not null | — |
//! | `private` | 200, a player body with `"stats": null` | — |
//! | `not_found` | 404 (any of OverFast's three body shapes) | no; the player is not asked again before `retry_after` / `next_check_at` |
//! | `rate_limited` | 429, or 503 with `Retry-After` | after waiting as told, within the attempt budget |
//! | `upstream_error` | other 5xx, timeout, connection error, a 200 that is not a player (not JSON, or JSON that [`PlayerBody::parse`](ow_domain::overfast::PlayerBody::parse) refuses), a body that is not UTF-8 or over the size limit | with exponential backoff and jitter, within the attempt budget |
//!
//! Any other status (an unexpected 4xx) is an `upstream_error` without retry.
//!
//! # Politeness
//!
//! One client (clones share it) never has more than [`ClientConfig::concurrency`] requests in
//! flight and never sends more than [`ClientConfig::burst`] requests at once or more than
//! [`ClientConfig::rate_per_second`] on average: a token bucket, `governor`, on tokio's clock. A
//! `Retry-After` holds every fetch of the client back, not only the one that got it. A scheduler
//! can also skip fetches OverFast would answer from its cache: see [`CacheInfo::fresh_until`] and
//! [`earliest_refetch`].
//!
//! # Sources
//!
//! [`Source::Live`] asks OverFast over HTTP(S); [`Source::Replay`] answers from a directory of
//! recorded bodies through the same classification (layout in `samples/overfast/README.md`), and
//! [`ClientConfig::record_dir`] writes live answers into that layout.
//!
//! ```no_run
//! use ow_domain::battletag::PlayerId;
//! use ow_producer::overfast::{ClientConfig, OverfastClient, Source};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let replay = OverfastClient::new(ClientConfig::new(Source::parse("file:///srv/samples")?))?;
//! let fetch = replay.fetch(&PlayerId::parse("TeKrop-2217")?).await;
//! println!("{:?} after {} attempt(s)", fetch.outcome, fetch.attempts);
//! # Ok(()) }
//! ```

mod cache;
mod classify;
mod client;
mod config;
mod fetch;
mod http;
mod replay;
mod throttle;

pub use cache::{CacheInfo, earliest_refetch, fresh_until};
pub use client::OverfastClient;
pub use config::{ClientConfig, ConfigError, DEFAULT_URL, Source, USER_AGENT};
pub use fetch::{FetchError, ProfileFetch};

pub(crate) use fetch::now_ms;
