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
//! The scenarios (issue 10; figures in RELIABILITY.md):
//!
//! | file | scenario |
//! |---|---|
//! | `tests/lookup.rs` | 1. a player looked up through the web: stats, then deltas and daily sums |
//! | `tests/kills.rs` | 2. two processors in one group, 20 SIGKILLs, results equal a run without |
//! | `tests/outage.rs` | 3. the broker killed for 30 s: every stage reconnects, nothing lost |
//! | `tests/poison.rs` | 4. 10,000 poison records: all dead-lettered with provenance, good ones through |
//! | `tests/hostile.rs` | 5. 100 hostile battletags: each a 4xx, no OverFast request |
//! | `tests/registry_outage.rs` | 6. the registry killed for 30 s: cached schemas carry on |
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
