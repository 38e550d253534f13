//! The peer benchmarks behind `bench/peers.sh`: ow-stream against Quix Streams and the raw
//! rdkafka ceiling, on one broker, in one run.
//!
//! The script starts a fresh tansu broker per run and calls this crate's binary, `ow-bench`:
//! `run` fills the input ([`workload`]), starts one contender under `/usr/bin/time`, trickles a
//! few records through it to measure end-to-end latency once the bulk is read, waits for it to
//! stop by itself, reads its output back and checks it ([`harness`]); `ow-stream` and `raw` are
//! the Rust contenders ([`contender`]); `table` turns the results into the Markdown table of
//! `BENCHMARKS.md` ([`report`]).

pub mod contender;
pub mod harness;
pub mod report;
pub mod workload;

use std::path::PathBuf;

/// What can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The library failed.
    #[error(transparent)]
    Streams(#[from] ow_stream_core::Error),
    /// A topology did not build.
    #[error(transparent)]
    Topology(#[from] ow_stream_core::TopologyError),
    /// The processor failed.
    #[error(transparent)]
    Processor(#[from] ow_processor::ProcessorError),
    /// The schema registry failed.
    #[error(transparent)]
    Registry(#[from] ow_stream_core::registry::RegistryError),
    /// A raw rdkafka client failed.
    #[error("kafka: {reason}")]
    Kafka {
        /// librdkafka's message.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input (file, flag) is not what the benchmark needs.
    #[error("{what}: {reason}")]
    Input {
        /// The input.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A contender did not run to its end.
    #[error("contender: {reason}")]
    Contender {
        /// What happened.
        reason: String,
    },
    /// Reading an output back failed.
    #[error("check: {reason}")]
    Check {
        /// What happened.
        reason: String,
    },
}
