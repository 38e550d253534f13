//! The `ow-producer` binary documents every setting, with its environment variable, and fails
//! with a clear message when one is wrong.

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// Every flag of the binary and the environment variable it falls back to.
const SETTINGS: &[(&str, &str)] = &[
    ("--brokers", "OW_BROKERS"),
    ("--schema-registry-url", "OW_SCHEMA_REGISTRY_URL"),
    ("--state-dir", "OW_STATE_DIR"),
    ("--commit-interval-ms", "OW_COMMIT_INTERVAL_MS"),
    ("--kafka-config", "OW_KAFKA_CONFIG"),
    ("--log", "RUST_LOG"),
    ("--overfast-url", "OW_OVERFAST_URL"),
    ("--replay", "OW_REPLAY"),
    ("--record", "OW_RECORD"),
    ("--overfast-rate", "OW_OVERFAST_RATE"),
    ("--overfast-burst", "OW_OVERFAST_BURST"),
    ("--overfast-concurrency", "OW_OVERFAST_CONCURRENCY"),
    ("--overfast-timeout", "OW_OVERFAST_TIMEOUT"),
    ("--overfast-attempts", "OW_OVERFAST_ATTEMPTS"),
    ("--overfast-max-body", "OW_OVERFAST_MAX_BODY"),
    ("--threads", "OW_STREAM_THREADS"),
    ("--track", "OW_TRACK"),
    ("--track-file", "OW_TRACK_FILE"),
    ("--refresh-interval", "OW_REFRESH_INTERVAL"),
    ("--untrack-after", "OW_UNTRACK_AFTER"),
    ("--schedule", "OW_SCHEDULE"),
    ("--topic-prefix", "OW_TOPIC_PREFIX"),
];

/// The binary with none of its settings in the environment.
fn producer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ow-producer"));
    for (_, env) in SETTINGS {
        command.env_remove(env);
    }
    command
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let output = producer().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    // One entry per flag: the line that names it, then its description up to the next flag.
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        match entries.last_mut() {
            Some(entry) if !line.trim_start().starts_with('-') => {
                entry.push(' ');
                entry.push_str(line.trim());
            }
            _ => entries.push(line.trim().to_owned()),
        }
    }
    for (flag, env) in SETTINGS {
        let entry = entries
            .iter()
            .find(|e| e.starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("{flag} is not in the help:\n{help}"));
        assert!(
            entry.contains(&format!("[env: {env}=")),
            "{flag} does not name {env}:\n{entry}"
        );
    }
    for default in [
        "[default: https://overfast-api.tekrop.fr]",
        "[default: 10m]",
        "[default: 14d]",
        "[default: 2]",
        "[default: true]",
    ] {
        assert!(help.contains(default), "{default} is not in the help");
    }
}

#[test]
fn bad_settings_fail_with_a_clear_message() {
    // No broker: the local log in the state directory, where nobody created the topics.
    let state = tempfile::tempdir().unwrap();
    let output = producer()
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("topic ow.player-requests does not exist: create it first"),
        "{stderr}"
    );
    assert!(state.path().join("log").is_dir());

    let output = producer()
        .args(["--brokers", "localhost:9092", "--track", "not-a-battletag"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tracked player \"not-a-battletag\" (--track) is not a battletag"),
        "{stderr}"
    );

    let output = producer()
        .args(["--refresh-interval", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a duration"), "{stderr}");
}
