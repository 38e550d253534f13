//! End-to-end and fault tests of the pipeline on a real broker, as separate processes.
//!
//! This library is the harness; the scenarios are the integration tests in `tests/` (one file
//! each, behind the `broker` feature: they need tansu 0.6.0, which `cargo test --workspace`
//! does not assume). Run them with
//!
//! ```sh
//! cargo install tansu --version 0.6.0 --locked --features dynostore,libsql   # once
//! cargo test -p ow-e2e --features broker
//! ```
//!
//! A [`Pipeline`] starts tansu with `infra/local-broker.sh` (a fresh database per test, every
//! topic of `infra/topics.txt` created), the `ow-registry` binary, the OverFast stand-in
//! (`ow_producer::fixture_server`, in the test's process, over loopback HTTP, logging every
//! request) and the `ow-producer`, `ow-processor` and `ow-web` binaries from the target
//! directory, built first by [`Binaries::get`]. Each process logs to a file of the run
//! directory and is killed when the pipeline is dropped, whether the test passed or not; a
//! failing test prints the end of every log and keeps the run directory.
//!
//! Every function of the harness panics, with a message saying what failed, when a part does
//! not start or answer: it exists for tests.

pub mod binaries;
pub mod bodies;
pub mod broker;
pub mod pipeline;
pub mod process;

pub use binaries::Binaries;
pub use broker::Broker;
pub use pipeline::{Options, Pipeline, eventually};
pub use process::{Process, Spec};
