//! The producer stage of the ow-stream Overwatch pipeline: it reads player requests, fetches each
//! player's profile from the [OverFast API](https://overfast-api.tekrop.fr) and emits one raw event
//! ([`ow_schemas::RawPlayerProfile`]) per fetch, whatever its outcome.
//!
//! This crate holds the OverFast half of the stage:
//!
//! * [`battletag`]: [`PlayerId`](battletag::PlayerId), the validated `Name-1234` player id; a
//!   string that cannot be a battletag is rejected before any request.
//! * [`overfast`]: the HTTP client ([`OverfastClient`](overfast::OverfastClient)) with its
//!   outcome classification, retries, rate limit, not-found memory, cache helper, and the offline
//!   replay / recording of answers.
//! * `fixture_server` (feature `fixture-server`): a loopback HTTP server that serves recorded
//!   OverFast answers and injects failures, for tests here and in the rest of the pipeline.
//!
//! ```no_run
//! use ow_producer::battletag::PlayerId;
//! use ow_producer::overfast::{ClientConfig, OverfastClient};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = OverfastClient::new(ClientConfig::default())?;
//! let event = client.fetch(&PlayerId::parse("TeKrop#2217")?).await.into_raw("request-1");
//! println!("{:?}", event.outcome);
//! # Ok(()) }
//! ```
//!
//! | feature | what it adds |
//! |---|---|
//! | `fixture-server` | `fixture_server`: the test server (pulls in `axum`) |

pub mod battletag;
#[cfg(feature = "fixture-server")]
pub mod fixture_server;
pub mod overfast;
