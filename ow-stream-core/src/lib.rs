#![doc = include_str!("docs/guide.md")]

pub mod admin;
pub(crate) mod backend;
pub mod client;
pub mod config;
pub mod dsl;
pub mod error;
pub mod metrics;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod state;
pub mod testing;
pub mod topic;
pub mod topology;

/// The `apache-avro` crate this library is built with (0.22), re-exported.
///
/// Avro types appear in the public API — the [`Schema`](avro::Schema) an
/// [`AvroSerde`](serde::AvroSerde) is made with or a [`SchemaRegistry`] registers, the error
/// inside [`SerdeError::Avro`](serde::SerdeError::Avro) — so take them from here
/// (`ow_stream_core::avro::Schema`): your code then never needs an `apache-avro` dependency of
/// its own pinned to the same version. Types derived with `apache-avro`'s `AvroSchema` derive
/// macro still need the crate as a direct dependency, since the macro names it.
pub use apache_avro as avro;
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
