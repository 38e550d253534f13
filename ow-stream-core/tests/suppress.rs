//! `suppress`: final results of windows (one per window, only after grace, late records within
//! grace counted in), time-limited suppression collapsing a key's updates, bounded buffers
//! (shut down with an error, or emit early), tombstones of merged sessions, the buffer store in
//! `describe()`; and the same suppressed topology on both backends with several partitions,
//! across a clean restart and across a crash that loses the state directory.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, produce_at};
use ow_stream_core::dsl::{
    BufferConfig, Materialized, SessionWindows, Suppressed, TimeWindows, Window, Windowed,
};
use ow_stream_core::error::{Error, TopologyError};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{StreamsBuilder, Topic, Topology};

const SECOND: i64 = 1_000;

fn plays() -> Topic<String, i64> {
    Topic::new("plays", StringSerde, JsonSerde::new())
}

fn finals() -> Topic<Windowed<String>, i64> {
    Topic::new("play-finals", JsonSerde::new(), JsonSerde::new())
}

/// Plays per player and minute (grace 10 s), one final count per window.
fn windowed_topology(buffer: BufferConfig) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&plays())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("plays-per-minute"))
        .suppress(Suppressed::until_window_closes(buffer).with_name("final-plays"))
        .to_stream()
        .to(&finals());
    b.build().unwrap()
}

fn w(key: &str, start: i64) -> Windowed<String> {
    Windowed {
        key: key.to_string(),
        window: Window {
            start,
            end: start + 60 * SECOND,
        },
    }
}

#[test]
fn windowed_count_emits_one_final_per_window_only_after_grace() {
    let driver = TopologyTestDriver::new(windowed_topology(BufferConfig::unbounded())).unwrap();
    let input = driver.input_topic(&plays());
    let mut out = driver.output_topic(&finals());
    input.pipe_input_at("ana".into(), 1, SECOND).unwrap();
    input.pipe_input_at("bob".into(), 1, 2 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 1, 59 * SECOND).unwrap();
    // The window [0, 60 s) ended, but its grace runs to 70 s.
    input.pipe_input_at("ana".into(), 1, 61 * SECOND).unwrap();
    input.pipe_input_at("bob".into(), 1, 69 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![]);
    assert_eq!(driver.metrics().suppress_buffered, 4);
    // Stream time 70 s: the window closes, each key's final comes once.
    input.pipe_input_at("cy".into(), 1, 70 * SECOND).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![(w("ana", 0), 2), (w("bob", 0), 1)]
    );
    input.pipe_input_at("cy".into(), 1, 75 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![]);
    input.pipe_input_at("cy".into(), 1, 130 * SECOND).unwrap();
    let mut closed = out.read_key_values().unwrap();
    closed.sort();
    assert_eq!(
        closed,
        vec![
            (w("ana", 60 * SECOND), 1),
            (w("bob", 60 * SECOND), 1),
            (w("cy", 60 * SECOND), 2)
        ]
    );
    let m = driver.metrics();
    assert_eq!(m.suppress_emitted, 5);
    assert_eq!(m.suppress_emitted_early, 0);
    assert_eq!(m.suppress_buffered, 1);
}

#[test]
fn out_of_order_records_within_grace_count_into_the_final() {
    let driver = TopologyTestDriver::new(windowed_topology(BufferConfig::unbounded())).unwrap();
    let input = driver.input_topic(&plays());
    let mut out = driver.output_topic(&finals());
    input.pipe_input_at("ana".into(), 1, 10 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 1, 65 * SECOND).unwrap();
    // Stream time 65 s: [0, 60 s) is in its grace; a record at 30 s still counts.
    input.pipe_input_at("ana".into(), 1, 30 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 1, 80 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![(w("ana", 0), 2)]);
    // Beyond grace: dropped, and the final is not emitted again.
    input.pipe_input_at("ana".into(), 1, 20 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 1, 200 * SECOND).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![(w("ana", 60 * SECOND), 2)]
    );
    assert_eq!(driver.metrics().late_records_dropped, 1);
}

/// Record caches (commits every 7 records) change when updates reach the suppression, not
/// the finals: the same as without caches, each window once.
#[test]
fn finals_are_the_same_with_record_caches() {
    let run = |config: TestDriverConfig| {
        let driver =
            TopologyTestDriver::with_config(windowed_topology(BufferConfig::unbounded()), config)
                .unwrap();
        let input = driver.input_topic(&plays());
        for i in 0..200i64 {
            let key = format!("p{}", i % 5);
            input.pipe_input_at(key, 1, i * 3 * SECOND).unwrap();
        }
        driver.commit().unwrap();
        let mut all = driver.output_topic(&finals()).read_key_values().unwrap();
        all.sort();
        all
    };
    let uncached = run(TestDriverConfig::default().with_cache_max_bytes(0));
    let cached = run(TestDriverConfig::default().with_commit_every(7));
    assert!(uncached.len() > 40, "{}", uncached.len());
    let mut distinct = uncached.clone();
    distinct.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(distinct.len(), uncached.len(), "one final per window");
    assert_eq!(cached, uncached);
}

fn scores() -> Topic<String, i64> {
    Topic::new("scores", StringSerde, JsonSerde::new())
}

fn best_out() -> Topic<String, i64> {
    Topic::new("best", StringSerde, JsonSerde::new())
}

/// The best score per player, updates held for 60 s of stream time.
fn time_limit_topology(buffer: BufferConfig) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&scores())
        .group_by_key()
        .reduce(i64::max, Materialized::as_("best-score"))
        .suppress(
            Suppressed::until_time_limit(Duration::from_secs(60), buffer).with_name("best-held"),
        )
        .to_stream()
        .to(&best_out());
    b.build().unwrap()
}

#[test]
fn until_time_limit_collapses_updates() {
    let driver = TopologyTestDriver::new(time_limit_topology(BufferConfig::unbounded())).unwrap();
    let input = driver.input_topic(&scores());
    let mut out = driver.output_topic(&best_out());
    input.pipe_input_at("ana".into(), 10, 0).unwrap();
    input.pipe_input_at("bob".into(), 3, 10 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 30, 20 * SECOND).unwrap();
    input.pipe_input_at("ana".into(), 20, 59 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![]);
    // 60 s after ana's first update (not her last): her latest value, once.
    input.pipe_input_at("bob".into(), 5, 60 * SECOND).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![("ana".to_string(), 30)]
    );
    // Bob's first update was at 10 s: due at 70 s, with his latest value.
    input.pipe_input_at("ana".into(), 40, 70 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![("bob".to_string(), 5)]);
    // Ana's update at 70 s started a new period: due at 130 s.
    input.pipe_input_at("cy".into(), 1, 129 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![]);
    input.pipe_input_at("cy".into(), 2, 130 * SECOND).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![("ana".to_string(), 40)]
    );
    assert_eq!(driver.metrics().suppress_emitted, 3);
    assert_eq!(driver.metrics().suppress_buffered, 1);
}

#[test]
fn a_full_buffer_set_to_shut_down_fails_with_an_error_naming_the_operator() {
    let topology = time_limit_topology(BufferConfig::max_records(2).shut_down_when_full());
    let driver = TopologyTestDriver::new(topology).unwrap();
    let input = driver.input_topic(&scores());
    input.pipe_input_at("ana".into(), 1, 0).unwrap();
    input.pipe_input_at("bob".into(), 1, 0).unwrap();
    // An update of a buffered key does not grow the buffer.
    input.pipe_input_at("ana".into(), 2, 0).unwrap();
    let err = input.pipe_input_at("cy".into(), 1, 0).unwrap_err();
    let text = err.to_string();
    match err {
        Error::SuppressBufferFull {
            node,
            store,
            records,
            ..
        } => {
            assert_eq!(&*node, "best-held");
            assert_eq!(&*store, "best-held-store");
            assert_eq!(records, 3);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        text.contains("best-held") && text.contains("max 2 records"),
        "{text}"
    );
}

#[test]
fn a_full_buffer_set_to_emit_early_emits_its_oldest_entries() {
    let topology = time_limit_topology(BufferConfig::max_records(2));
    let driver = TopologyTestDriver::new(topology).unwrap();
    let input = driver.input_topic(&scores());
    let mut out = driver.output_topic(&best_out());
    input.pipe_input_at("ana".into(), 1, 0).unwrap();
    input.pipe_input_at("bob".into(), 1, SECOND).unwrap();
    input.pipe_input_at("ana".into(), 7, 2 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![]);
    // A third key: ana, buffered first, goes out early with her latest value.
    input.pipe_input_at("cy".into(), 1, 3 * SECOND).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![("ana".to_string(), 7)]);
    let m = driver.metrics();
    assert_eq!(m.suppress_emitted_early, 1);
    assert_eq!(m.suppress_emitted, 0);
    assert_eq!(m.suppress_buffered, 2);
    // The bytes limit works alike: every entry here is larger than 4 bytes.
    let driver = TopologyTestDriver::new(time_limit_topology(BufferConfig::max_bytes(4))).unwrap();
    let input = driver.input_topic(&scores());
    input.pipe_input_at("ana".into(), 1, 0).unwrap();
    assert_eq!(
        driver.output_topic(&best_out()).read_key_values().unwrap(),
        vec![("ana".to_string(), 1)]
    );
}

#[test]
fn final_results_refuse_emit_early_and_tables_without_windows_at_build() {
    let b = StreamsBuilder::new();
    b.stream(&plays())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::ZERO,
        ))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes(BufferConfig::max_records(
            10,
        )));
    match b.build() {
        Err(TopologyError::Invalid { node, reason }) => {
            assert_eq!(node, "counts-suppress");
            assert!(reason.contains("emit_early_when_full"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Bounded and shutting down when full is fine.
    windowed_topology(BufferConfig::max_records(10).shut_down_when_full());

    let b = StreamsBuilder::new();
    b.stream(&scores())
        .group_by_key()
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()));
    match b.build() {
        Err(TopologyError::Invalid { node, reason }) => {
            assert_eq!(node, "counts-suppress");
            assert!(reason.contains("windowed table"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn describe_shows_the_suppress_node_and_its_buffer_store() {
    let description = windowed_topology(BufferConfig::unbounded()).describe_for_application("app");
    let text = description.to_string();
    assert!(
        text.contains("Processor: final-plays (stores: [final-plays-store])"),
        "{text}"
    );
    let store = description
        .stores
        .iter()
        .find(|s| s.name == "final-plays-store")
        .unwrap();
    assert_eq!(
        store.changelog.as_deref(),
        Some("app-final-plays-store-changelog")
    );
    assert!(
        store.key_serde.starts_with("windowed("),
        "{}",
        store.key_serde
    );
    assert!(
        store.value_serde.starts_with("suppress-buffer("),
        "{}",
        store.value_serde
    );
}

fn clicks() -> Topic<String, i64> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

fn sessions_out() -> Topic<Windowed<String>, Option<i64>> {
    Topic::new("sessions", JsonSerde::new(), JsonSerde::new())
}

fn session_topology(suppressed: Suppressed) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&clicks())
        .group_by_key()
        .windowed_by_session(
            SessionWindows::with_inactivity_gap(Duration::from_secs(60))
                .grace(Duration::from_secs(60)),
        )
        .count(Materialized::as_("visits"))
        .suppress(suppressed)
        .to_stream()
        .to(&sessions_out());
    b.build().unwrap()
}

fn session(start: i64, end: i64) -> Windowed<String> {
    Windowed {
        key: "ada".into(),
        window: Window { start, end },
    }
}

/// Two sessions of ada (gap 60 s, grace 60 s), then a click between them that merges them
/// (the old sessions' tombstones) while both are open, then stream time moving on.
fn pipe_merging_sessions(driver: &TopologyTestDriver) {
    let input = driver.input_topic(&clicks());
    input.pipe_input_at("ada".into(), 1, 0).unwrap();
    input.pipe_input_at("ada".into(), 1, 100 * SECOND).unwrap();
    input.pipe_input_at("ada".into(), 1, 50 * SECOND).unwrap();
    input.pipe_input_at("bob".into(), 1, 300 * SECOND).unwrap();
}

#[test]
fn tombstones_pass_through_a_time_limited_buffer() {
    let driver = TopologyTestDriver::new(session_topology(Suppressed::until_time_limit(
        Duration::from_secs(30),
        BufferConfig::unbounded(),
    )))
    .unwrap();
    pipe_merging_sessions(&driver);
    let mut out = driver
        .output_topic(&sessions_out())
        .read_key_values()
        .unwrap();
    out.sort();
    // [0, 0] was due (30 s after its click) before the merge, and its tombstone came after;
    // [100 s, 100 s]'s update was still buffered when its tombstone replaced it.
    assert_eq!(
        out,
        vec![
            (session(0, 0), None),
            (session(0, 0), Some(1)),
            (session(0, 100 * SECOND), Some(3)),
            (session(100 * SECOND, 100 * SECOND), None),
        ]
    );
}

#[test]
fn final_results_of_sessions_drop_the_tombstones_of_merged_sessions() {
    let driver = TopologyTestDriver::new(session_topology(Suppressed::until_window_closes(
        BufferConfig::unbounded(),
    )))
    .unwrap();
    pipe_merging_sessions(&driver);
    let out = driver
        .output_topic(&sessions_out())
        .read_key_values()
        .unwrap();
    assert_eq!(out, vec![(session(0, 100 * SECOND), Some(3))]);
    assert_eq!(driver.metrics().suppress_buffered, 1);
}

/// Plays of 6 players, one every 7 s each, globally in time order (no record is late on any
/// partitioning); `half` 0 up to 280 s, `half` 1 after, ending with a play of each player at
/// 1000 s that closes every earlier window.
fn records(half: usize) -> Vec<(String, i64, i64)> {
    // From an epoch time on: a producer given timestamp 0 stamps the current time instead.
    let base = 1_700_000_040_000;
    let mut out = Vec::new();
    for player in 0..6i64 {
        let range = if half == 0 { 0..40 } else { 40..80 };
        for i in range {
            out.push((
                format!("p{player}"),
                1,
                base + i * 7 * SECOND + player * 100,
            ));
        }
        if half == 1 {
            out.push((format!("p{player}"), 1, base + 1000 * SECOND));
        }
    }
    out.sort_by_key(|(_, _, t)| *t);
    out
}

type Finals = Vec<(Windowed<String>, i64)>;

/// What the test driver makes of all the records: the oracle for the backends.
fn expected() -> Finals {
    let driver = TopologyTestDriver::new(windowed_topology(BufferConfig::unbounded())).unwrap();
    let input = driver.input_topic(&plays());
    for half in 0..2 {
        for (k, v, t) in records(half) {
            input.pipe_input_at(k, v, t).unwrap();
        }
    }
    let mut all = driver.output_topic(&finals()).read_key_values().unwrap();
    all.sort();
    all
}

async fn read_finals(env: &TestEnv) -> Finals {
    let mut all: Finals = env
        .read_all("play-finals")
        .await
        .into_iter()
        .map(|r| {
            (
                serde_json::from_slice(&r.key.unwrap()).unwrap(),
                serde_json::from_slice(&r.value.unwrap()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Waits (a safety net, not a timing assertion) until the output holds a final for every
/// window the oracle has, then returns all of it.
async fn finals_when_complete(env: &TestEnv, want: &Finals) -> Finals {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = read_finals(env).await;
        let mut windows: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
        windows.dedup();
        if windows.len() >= want.len() || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup(env: &TestEnv, app: &str) {
    env.create("plays", 3).await;
    env.create("play-finals", 3).await;
    env.create_internal(&format!("{app}-plays-per-minute-changelog"), 3);
    env.create_internal(&format!("{app}-final-plays-store-changelog"), 3);
    env.create_internal(&format!("{app}-dlq"), 1);
}

on_both_backends!(finals_are_exact_across_a_clean_restart);

/// The app stops cleanly mid-stream (committing) and starts again: every final exactly once,
/// as in an uninterrupted run: none emitted and committed before the stop comes again.
async fn finals_are_exact_across_a_clean_restart(env: TestEnv) {
    setup(&env, "suppress-app").await;
    let want = expected();
    assert_eq!(want.len(), 60);
    let topology = || windowed_topology(BufferConfig::unbounded());
    produce_at(&env, &plays(), &records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("suppress-app", dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    let n = records(0).len() as u64;
    common::wait_for("the first half", Duration::from_secs(60), || {
        first.metrics().records_consumed >= n && first.metrics().suppress_emitted > 0
    })
    .await;
    first.close().await.unwrap();
    let before = read_finals(&env).await;
    assert!(!before.is_empty() && before.len() < want.len());
    produce_at(&env, &plays(), &records(1)).await;
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    let got = finals_when_complete(&env, &want).await;
    assert_eq!(got, want);
    assert_eq!(second.metrics().late_records_dropped, 0);
    second.close().await.unwrap();
}

on_both_backends!(finals_are_exact_after_a_crash);

/// The app crashes mid-stream (no final commit) and its state directory is lost: the buffer
/// comes back from its changelog. Every window's final comes with the uninterrupted run's
/// value, none is missing, and a final comes twice only as the same record again (output
/// written after the last commit, at-least-once).
async fn finals_are_exact_after_a_crash(env: TestEnv) {
    let got = crash_and_restart(&env, "suppress-crash-app", false).await;
    let want = expected();
    let mut distinct = got.clone();
    distinct.dedup();
    assert_eq!(
        distinct, want,
        "every final, with the uninterrupted run's value"
    );
    let mut per_window: BTreeMap<Windowed<String>, usize> = BTreeMap::new();
    for (k, _) in &got {
        *per_window.entry(k.clone()).or_default() += 1;
    }
    // At-least-once allows the output of one commit interval again, not a second round of
    // everything.
    let repeated = per_window.values().filter(|n| **n > 1).count();
    assert!(repeated < want.len() / 2, "{repeated} finals repeated");
}

on_both_backends!(committed_finals_are_never_emitted_again_after_a_crash);

/// As above, but the crash comes after the first half's finals were emitted and committed
/// (two commits after the last input record): the restored buffer no longer holds them, so
/// the output is exactly the uninterrupted run's, each final once.
async fn committed_finals_are_never_emitted_again_after_a_crash(env: TestEnv) {
    let got = crash_and_restart(&env, "suppress-committed-app", true).await;
    assert_eq!(got, expected());
}

/// Runs the first half, crashes (after the first half is committed, with `committed`), loses
/// the state directory, runs the second half on a new instance; returns every final written.
async fn crash_and_restart(env: &TestEnv, app: &str, committed: bool) -> Finals {
    setup(env, app).await;
    let want = expected();
    let topology = || windowed_topology(BufferConfig::unbounded());
    produce_at(env, &plays(), &records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config(app, dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    let n = records(0).len() as u64;
    common::wait_for("the first half", Duration::from_secs(60), || {
        first.metrics().records_consumed >= n
            && first.metrics().suppress_emitted > 0
            && first.metrics().commits > 2
    })
    .await;
    if committed {
        let after = first.metrics().commits + 2;
        common::wait_for("two more commits", Duration::from_secs(60), || {
            first.metrics().commits >= after
        })
        .await;
    }
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    if committed {
        let before = read_finals(env).await;
        assert!(!before.is_empty() && before.len() < want.len());
    }
    produce_at(env, &plays(), &records(1)).await;
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    let got = finals_when_complete(env, &want).await;
    assert_eq!(second.metrics().late_records_dropped, 0);
    assert!(second.metrics().records_restored > 0);
    second.close().await.unwrap();
    got
}

on_both_backends!(a_full_buffer_fails_the_application_naming_the_operator);

/// A buffer of at most 3 keys set to shut down when full, fed 12 keys: the stream thread
/// fails through the thread failure policy (the default: the instance goes to `Error`), and
/// the failure names the operator and its buffer.
async fn a_full_buffer_fails_the_application_naming_the_operator(env: TestEnv) {
    let app = "suppress-full-app";
    env.create("scores", 2).await;
    env.create("best", 2).await;
    env.create_internal(&format!("{app}-best-score-changelog"), 2);
    env.create_internal(&format!("{app}-best-held-store-changelog"), 2);
    env.create_internal(&format!("{app}-dlq"), 1);
    let records: Vec<(String, i64, i64)> = (0..12i64)
        .map(|i| (format!("k{i}"), i, 1_700_000_000_000 + i))
        .collect();
    produce_at(&env, &scores(), &records).await;
    let dir = tempfile::tempdir().unwrap();
    let topology = time_limit_topology(BufferConfig::max_records(3).shut_down_when_full());
    let mut streams = Streams::new(topology, env.config(app, dir.path())).unwrap();
    streams.start().await.unwrap();
    common::wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == ow_stream_core::runtime::StreamsState::Error
    })
    .await;
    let failure = streams.failure().unwrap();
    assert!(failure.contains("suppress best-held"), "{failure}");
    assert!(failure.contains("best-held-store"), "{failure}");
    assert!(failure.contains("max 3 records"), "{failure}");
    assert_eq!(streams.metrics().stream_thread_failures, 1);
    // Nothing was emitted early: the limit stops the application instead.
    assert_eq!(streams.metrics().suppress_emitted_early, 0);
    assert!(streams.close().await.is_err());
}
