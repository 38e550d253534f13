//! The dashboard of the ow-stream Overwatch pipeline: server-rendered pages (axum + maud) drawn
//! from the web stage's own materialized view of the pipeline's output topics.
//!
//! # Design
//! The web never calls OverFast. It is a stage of the pipeline like the others:
//!
//! * it **reads** the processor's four output topics into its own stores with the library's
//!   DSL ([`materialize`]: one store value per player and topic, so a page is four lookups),
//!   and answers pages with interactive queries ([`StoreRepository`]);
//! * it **writes** a [`PlayerRequest`](ow_domain::PlayerRequest) to `ow.player-requests` when
//!   someone looks up a player it has never seen, or presses "refresh now"
//!   ([`PlayerRequests`]), and the page follows the request until its answer arrives (or a
//!   time-out passes).
//!
//! Routes talk to traits, not to the stores or the producer, so every page is tested through
//! [`app`] with `tower::ServiceExt::oneshot`, over plain values ([`MemoryRepository`]) or a
//! [`TopologyTestDriver`](ow_stream_core::testing::TopologyTestDriver)'s stores.
//!
//! # Pages
//! See [`app`] for the routes. Every page works without JavaScript; the one static script
//! (`/static/app.js`, no inline script anywhere: the Content-Security-Policy forbids it) only
//! makes waiting pages update by themselves, refreshes the pipeline page and sorts tables in
//! place.
//!
//! # Safety
//! Every value from OverFast is escaped by maud (nothing uses `PreEscaped`), and image URLs are
//! drawn only when they are absolute `https` URLs. Answers carry a strict
//! Content-Security-Policy, `X-Content-Type-Options`, `Referrer-Policy` and
//! `X-Frame-Options`. A string that is not a battletag gets a 400 page saying why, and is
//! never sent upstream; refreshes and new-player look-ups are rate-limited per player and per
//! client address; URIs and bodies are bounded; POSTs from other sites are refused.
//!
//! # Hooks for the embedded stack
//! | hook | what the stack provides |
//! |---|---|
//! | [`PipelineSource`] | stages, topics, offsets and lag for `/pipeline` |
//! | [`StageControl`] | pause and resume per stage |
//! | [`TopicBrowser`] | last records of a topic, decoded |
//! | [`StreamsProbe`] | the web's streams app for `/metrics` and `/healthz` (implemented for [`Streams`](ow_stream_core::Streams)) |
//! | [`StoreChanges`] | which players' data changed in the web's stores: caches rendered player pages, and lets the status endpoint long-poll ([`AppState::with_store_changes`]) |
//!
//! Build an [`AppState`] with them and [`serve`] it; [`WebStage`] starts the web's streams app.
//!
//! ```no_run
//! use clap::Parser;
//!
//! # async fn main_() -> Result<(), ow_web::Error> {
//! let config = ow_web::WebConfig::parse();
//! ow_web::run(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod career;
mod changes;
pub mod cluster;
mod config;
pub mod embedded;
mod error;
mod format;
mod limits;
mod lookup;
pub mod materialize;
mod metrics;
mod page_cache;
pub mod pipeline;
mod repository;
mod requests;
mod routes;
mod stage;
mod state;
mod topics;
mod views;

use std::sync::Arc;

pub use changes::StoreChanges;
pub use config::{DEFAULT_PAGE_CACHE_BYTES, WebConfig, WebSettings};
pub use error::Error;
pub use pipeline::{
    BrowsedRecord, GroupLag, GroupView, LocalStage, PartitionView, PipelineSource, PipelineView,
    StageControl, StageState, StageView, StreamsProbe, TopicBrowser, TopicView,
};
pub use repository::{MemoryRepository, PlayerRepository, StoreRepository};
pub use requests::{PlayerRequests, ProducerRequests};
pub use routes::app;
pub use stage::{WebStage, run, serve};
pub use state::AppState;
pub use topics::Topics;

/// The current time in milliseconds since the Unix epoch; replaceable in tests
/// ([`AppState::with_clock`]).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}
