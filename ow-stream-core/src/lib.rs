#![doc = include_str!("docs/guide.md")]

pub mod admin;
pub mod client;
pub mod config;
pub mod dsl;
pub mod error;
pub(crate) mod kafka;
pub(crate) mod local;
pub mod metrics;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod state;
pub mod testing;
pub mod topic;
pub mod topology;

/// Schema registries: the client side of [`ow_stream_registry`], re-exported.
pub use ow_stream_registry as registry;

pub use dsl::{Stream, StreamsBuilder, Table};
pub use error::{Error, TopologyError};
pub use record::{Headers, RawRecord, Record, RecordMetadata};
pub use registry::SchemaRegistry;
pub use runtime::Streams;
pub use topic::Topic;
pub use topology::{Topology, TopologyDescription};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
