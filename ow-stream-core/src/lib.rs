//! ow-stream-core: a Kafka Streams–style stream processing library for Rust.
//!
//! (Crate documentation is written as the modules land.)

pub mod record;
pub mod registry;
pub mod serde;

pub use record::{Headers, RawRecord, Record, RecordMetadata};
