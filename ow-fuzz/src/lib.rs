//! The properties ow-stream is fuzzed for, one module per fuzz target, each with a
//! `check(data: &[u8])` that panics when the property breaks.
//!
//! | module | what is fuzzed |
//! |---|---|
//! | [`avro_frame`] | Confluent framing and the core's Avro decoder over a registry |
//! | [`overfast_body`] | the OverFast body model and the processor's transform into records |
//! | [`battletag`] | the battletag parser |
//! | [`log_recovery`] | the local log's recovery from damaged segment and index files |
//!
//! The libFuzzer targets in `fuzz/` (outside the workspace; `fuzz/run.sh` builds and runs them
//! on stable Rust) are one line each, calling these functions. The tests of this crate run the
//! committed corpus (`fuzz/corpus/<target>/`) and every input that once broke a property
//! (`fuzz/regressions/<target>/`) through the same functions, in every `cargo test`.
//!
//! ```
//! ow_fuzz::battletag::check(b"TeKrop#2217");
//! ow_fuzz::overfast_body::check(br#"{"summary": {}, "stats": null}"#);
//! ```

pub mod avro_frame;
pub mod battletag;
pub mod log_recovery;
pub mod overfast_body;
pub mod pipeline;
