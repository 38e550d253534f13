//! Sliding windows (KIP-450): the windows a handful of records create, in order, out of order
//! and late, computed by hand from Kafka Streams' definition; final results through
//! `suppress`; and the window store exact after a crash, from its changelog alone, on both
//! backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{
    BufferConfig, Materialized, SlidingWindows, Suppressed, Window, Windowed,
};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

fn clicks() -> Topic<String, i64> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

fn counts_out() -> Topic<Windowed<String>, i64> {
    Topic::new("click-counts", JsonSerde::new(), JsonSerde::new())
}

/// Clicks per user in sliding windows of `diff` ms with `grace` ms, and their total value.
fn topology(diff: u64, grace: u64) -> Topology {
    let b = StreamsBuilder::new();
    let grouped = b.stream(&clicks()).group_by_key();
    let windows = SlidingWindows::with_time_difference_and_grace(
        Duration::from_millis(diff),
        Duration::from_millis(grace),
    );
    grouped
        .windowed_by_sliding(windows)
        .count(Materialized::as_("click-counts"))
        .to_stream()
        .to(&counts_out());
    grouped.windowed_by_sliding(windows).aggregate(
        || 0,
        |_, v, total: i64| total + v,
        Materialized::as_("click-values").with_value_serde(JsonSerde::new()),
    );
    b.build().unwrap()
}

fn w(start: i64, end: i64) -> Windowed<String> {
    Windowed {
        key: "ada".to_string(),
        window: Window { start, end },
    }
}

type Windows = BTreeMap<(String, i64, i64), i64>;

fn windows(all: Vec<(Windowed<String>, i64)>) -> Windows {
    all.into_iter()
        .map(|(w, n)| ((w.key, w.window.start, w.window.end), n))
        .collect()
}

/// Records at 10, 15, 30 (in order), 25 (out of order, within grace), 12 (late: even its
/// right window closed) and 22 (its own left window closed, the others open), with a time
/// difference of 10 and a grace of 5. By KIP-450 every window is `[start, start + 10]`,
/// both ends inclusive: each record's left window `[t - 10, t]`, and its right window
/// `[t + 1, t + 11]` when a later record falls in it.
#[test]
fn windows_follow_the_records_in_and_out_of_order() {
    let driver = TopologyTestDriver::new(topology(10, 5)).unwrap();
    let input = driver.input_topic(&clicks());
    let mut output = driver.output_topic(&counts_out());
    let updates = |output: &mut ow_stream_core::testing::TestOutputTopic<Windowed<String>, i64>| {
        output
            .read_records()
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect::<Vec<_>>()
    };

    input.pipe_input_at("ada".into(), 1, 10).unwrap();
    // Its left window; no right window, no record follows.
    assert_eq!(updates(&mut output), [(w(0, 10), 1, 10)]);

    input.pipe_input_at("ada".into(), 1, 15).unwrap();
    // The right window of the record at 10 now holds 15; the left window of 15 holds both.
    assert_eq!(
        updates(&mut output),
        [(w(11, 21), 1, 15), (w(5, 15), 2, 15)]
    );

    input.pipe_input_at("ada".into(), 1, 30).unwrap();
    // 15 is more than 10 before 30: a left window of its own, and nothing else changes.
    assert_eq!(updates(&mut output), [(w(20, 30), 1, 30)]);

    // Stream time 30, grace 5: windows ending at 25 or later are open.
    input.pipe_input_at("ada".into(), 1, 25).unwrap();
    assert_eq!(
        updates(&mut output),
        [
            // The window it falls in.
            (w(20, 30), 2, 30),
            // The right window of 15, created: it holds only 25.
            (w(16, 26), 1, 25),
            // Its left window: 15 and 25.
            (w(15, 25), 2, 25),
            // Its right window: 30, copied from [20, 30] as it was before 25.
            (w(26, 36), 1, 30),
        ]
    );
    assert_eq!(driver.metrics().late_records_dropped, 0);

    // Its right window [13, 23] ends before 25: dropped by both aggregations.
    input.pipe_input_at("ada".into(), 1, 12).unwrap();
    assert_eq!(updates(&mut output), []);
    assert_eq!(driver.metrics().late_records_dropped, 2);

    // Its left window [12, 22] is closed (dropped and counted, once per aggregation); the
    // open windows it falls in are updated and its right window is created.
    input.pipe_input_at("ada".into(), 1, 22).unwrap();
    assert_eq!(
        updates(&mut output),
        [
            (w(20, 30), 3, 30),
            (w(16, 26), 2, 25),
            (w(15, 25), 3, 25),
            (w(23, 33), 2, 30),
        ]
    );
    assert_eq!(driver.metrics().late_records_dropped, 4);

    // Every window holds exactly the records {10, 15, 22, 25, 30} in it (22's left window
    // excepted: it was closed).
    let want: Windows = [
        ((0, 10), 1),
        ((5, 15), 2),
        ((11, 21), 1),
        ((15, 25), 3),
        ((16, 26), 2),
        ((20, 30), 3),
        ((23, 33), 2),
        ((26, 36), 1),
    ]
    .into_iter()
    .map(|((s, e), n)| (("ada".to_string(), s, e), n))
    .collect();
    let counts = driver
        .window_store::<String, i64>("click-counts")
        .unwrap()
        .fetch_all(i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(windows(counts), want);
    // Values of 1 each: the totals are the counts.
    let values = driver
        .window_store::<String, i64>("click-values")
        .unwrap()
        .fetch_all(i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(windows(values), want);
}

#[test]
fn keys_have_windows_of_their_own() {
    let driver = TopologyTestDriver::new(topology(10, 100)).unwrap();
    let input = driver.input_topic(&clicks());
    input.pipe_input_at("ada".into(), 1, 100).unwrap();
    input.pipe_input_at("bob".into(), 1, 105).unwrap();
    input.pipe_input_at("ada".into(), 1, 108).unwrap();
    let store = driver.window_store::<String, i64>("click-counts").unwrap();
    let ada: Vec<(Window, i64)> = store.fetch(&"ada".into(), 0, 1_000).unwrap();
    assert_eq!(
        ada,
        [
            (
                Window {
                    start: 90,
                    end: 100
                },
                1
            ),
            (
                Window {
                    start: 98,
                    end: 108
                },
                2
            ),
            (
                Window {
                    start: 101,
                    end: 111
                },
                1
            ),
        ]
    );
    let bob = store.fetch(&"bob".into(), 0, 1_000).unwrap();
    assert_eq!(
        bob,
        [(
            Window {
                start: 95,
                end: 105
            },
            1
        )]
    );
}

#[test]
fn suppress_emits_each_window_once_when_it_closes() {
    let b = StreamsBuilder::new();
    let out: Topic<Windowed<String>, i64> =
        Topic::new("final-counts", JsonSerde::new(), JsonSerde::new());
    b.stream(&clicks())
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_without_grace(
            Duration::from_millis(10),
        ))
        .count(Materialized::as_("final-counts"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let input = driver.input_topic(&clicks());
    input.pipe_input_at("ada".into(), 1, 10).unwrap();
    input.pipe_input_at("ada".into(), 1, 15).unwrap();
    // Stream time 21: [0, 10] and [5, 15] closed; [11, 21] still takes records at 21.
    input.pipe_input_at("bob".into(), 1, 21).unwrap();
    let mut output = driver.output_topic(&out);
    assert_eq!(
        output.read_key_values().unwrap(),
        [(w(0, 10), 1), (w(5, 15), 2)]
    );
    // At 21, [11, 21] is still open: it takes this record, and the right window of 15
    // is created.
    input.pipe_input_at("ada".into(), 1, 21).unwrap();
    assert_eq!(output.read_key_values().unwrap(), []);
    input.pipe_input_at("bob".into(), 1, 40).unwrap();
    let mut ada: Vec<(Windowed<String>, i64)> = output
        .read_key_values()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.key == "ada")
        .collect();
    ada.sort();
    assert_eq!(ada, [(w(11, 21), 2), (w(16, 26), 1)]);
}

#[test]
fn describe_shows_the_sliding_window_stores() {
    let text = topology(10, 5).describe().to_string();
    assert!(
        text.contains("Processor: click-counts (stores: [click-counts])"),
        "{text}"
    );
    assert!(
        text.contains("Processor: click-values (stores: [click-values])"),
        "{text}"
    );
}

const SECOND: i64 = 1_000;

/// Clicks of 6 users (from an epoch time on: a producer given timestamp 0 stamps the
/// record with the current time instead), irregularly spaced so that some fall within the
/// 10 s time difference of each other and some do not, each user's last click of a half
/// arriving 3 s out of order (within the 5 s grace).
fn records(half: i64) -> Vec<(String, i64, i64)> {
    let base = 1_700_000_000_000;
    let mut out = Vec::new();
    for user in 0..6i64 {
        let mut t = base + half * 200 * SECOND + user * 100;
        for i in 0..12i64 {
            t += [4, 7, 13, 2, 9][(i + user) as usize % 5] * SECOND;
            out.push((format!("u{user}"), i + 1, t));
        }
        let last = out.len() - 1;
        out[last].2 -= 3 * SECOND;
    }
    // Time order across users, the out-of-order ones where they fall.
    out.sort_by_key(|(_, _, t)| *t);
    out
}

/// What the test driver makes of all the records: the oracle for the backends.
fn expected() -> Windows {
    let driver = TopologyTestDriver::new(topology(10_000, 5_000)).unwrap();
    let input = driver.input_topic(&clicks());
    for half in 0..2 {
        for (k, v, t) in records(half) {
            input.pipe_input_at(k, v, t).unwrap();
        }
    }
    assert_eq!(driver.metrics().late_records_dropped, 0);
    windows(
        driver
            .window_store::<String, i64>("click-values")
            .unwrap()
            .fetch_all(i64::MIN, i64::MAX)
            .unwrap(),
    )
}

on_both_backends!(sliding_windows_are_exact_after_a_crash);

async fn sliding_windows_are_exact_after_a_crash(env: TestEnv) {
    env.create("clicks", 2).await;
    env.create("click-counts", 2).await;
    env.create_internal("sliding-app-click-counts-changelog", 2);
    env.create_internal("sliding-app-click-values-changelog", 2);
    env.create_internal("sliding-app-dlq", 1);
    let want = expected();
    assert!(want.len() > 100, "{}", want.len());
    produce_at(&env, &clicks(), &records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("sliding-app", dir.path());
    let first = {
        let mut s = Streams::new(topology(10_000, 5_000), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    let n = records(0).len() as u64;
    wait_for("the first half", Duration::from_secs(60), || {
        first.metrics().records_consumed >= n && first.metrics().commits > 2
    })
    .await;
    // A crash, and the state directory lost with it: the stores come back from their
    // changelogs alone.
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    produce_at(&env, &clicks(), &records(1)).await;
    let mut second = Streams::new(topology(10_000, 5_000), config).unwrap();
    second.start().await.unwrap();
    let values = second.window_store::<String, i64>("click-values").unwrap();
    let got = || {
        values
            .fetch_all(i64::MIN, i64::MAX)
            .map(windows)
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got() != want && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got(), want);
    assert_eq!(second.metrics().late_records_dropped, 0);
    second.close().await.unwrap();
}
