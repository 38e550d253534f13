//! Every committed corpus input and every regression input, through its target's check.

use std::fs;
use std::path::{Path, PathBuf};

/// The inputs of `target` under `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(target: &str, check: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "no corpus for {target}");
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = fs::read(path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} breaks {target}", path.display());
    }
}

#[test]
fn avro_frame() {
    run("avro_frame", ow_fuzz::avro_frame::check);
}

#[test]
fn overfast_body() {
    run("overfast_body", ow_fuzz::overfast_body::check);
}

#[test]
fn battletag() {
    run("battletag", ow_fuzz::battletag::check);
}

#[test]
fn log_recovery() {
    run("log_recovery", ow_fuzz::log_recovery::check);
}
