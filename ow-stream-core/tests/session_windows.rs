//! Session windows: sessions grow and merge (the merged-away ones forwarded as tombstones),
//! late records within grace are merged and beyond it dropped and counted, and the session
//! store comes back exact after a crash, from its changelog alone, on both backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{Materialized, SessionWindows, Windowed};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

const SECOND: i64 = 1_000;

fn clicks() -> Topic<String, i64> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

fn sessions_out() -> Topic<Windowed<String>, Option<i64>> {
    Topic::new("sessions", JsonSerde::new(), JsonSerde::new())
}

/// Clicks per user and session (gap 60 s, grace 10 s), and their total value per session.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let grouped = b.stream(&clicks()).group_by_key();
    let windows =
        SessionWindows::with_inactivity_gap(Duration::from_secs(60)).grace(Duration::from_secs(10));
    grouped
        .windowed_by_session(windows)
        .count(Materialized::as_("visits"))
        .to_stream()
        .to(&sessions_out());
    grouped.windowed_by_session(windows).aggregate(
        || 0,
        |_, v, total: i64| total + v,
        |_, a, b| a + b,
        Materialized::as_("visit-values").with_value_serde(JsonSerde::new()),
    );
    b.build().unwrap()
}

type Sessions = BTreeMap<(String, i64, i64), i64>;

fn sessions(all: Vec<(Windowed<String>, i64)>) -> Sessions {
    all.into_iter()
        .map(|(w, n)| ((w.key, w.window.start, w.window.end), n))
        .collect()
}

#[test]
fn sessions_grow_merge_and_forward_tombstones() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let input = driver.input_topic(&clicks());
    input.pipe_input_at("ada".into(), 1, 0).unwrap();
    input.pipe_input_at("ada".into(), 2, 100 * SECOND).unwrap();
    // Within the gap of both: one session [0, 100 s].
    input.pipe_input_at("ada".into(), 3, 50 * SECOND).unwrap();
    let w = |start, end| Windowed {
        key: "ada".to_string(),
        window: ow_stream_core::dsl::Window { start, end },
    };
    let out = driver
        .output_topic(&sessions_out())
        .read_key_values()
        .unwrap();
    assert_eq!(
        out,
        vec![
            (w(0, 0), Some(1)),
            (w(100 * SECOND, 100 * SECOND), Some(1)),
            (w(0, 0), None),
            (w(100 * SECOND, 100 * SECOND), None),
            (w(0, 100 * SECOND), Some(3)),
        ]
    );
    let values = driver
        .key_value_store::<Windowed<String>, i64>("visit-values")
        .unwrap();
    assert_eq!(values.all().unwrap(), vec![(w(0, 100 * SECOND), 6)]);
}

#[test]
fn late_records_within_grace_merge_and_beyond_are_dropped() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let input = driver.input_topic(&clicks());
    input.pipe_input_at("ada".into(), 1, 200 * SECOND).unwrap();
    input.pipe_input_at("bob".into(), 1, 300 * SECOND).unwrap();
    // Stream time 300 s: sessions ending before 300 - 10 - 60 = 230 s are closed. Ada's
    // [200 s] session extended by a record at 235 s still ends after 230 s: merged.
    input.pipe_input_at("ada".into(), 1, 235 * SECOND).unwrap();
    // A new session at 220 s would end before 230 s: late.
    input.pipe_input_at("cy".into(), 1, 220 * SECOND).unwrap();
    // Dropped by both session aggregations of the topology.
    assert_eq!(driver.metrics().late_records_dropped, 2);
    let visits = driver
        .key_value_store::<Windowed<String>, i64>("visits")
        .unwrap();
    let got = sessions(visits.all().unwrap());
    let want: Sessions = [
        (("ada".to_string(), 200 * SECOND, 235 * SECOND), 2),
        (("bob".to_string(), 300 * SECOND, 300 * SECOND), 1),
    ]
    .into();
    assert_eq!(got, want);
}

#[test]
fn describe_shows_the_session_stores() {
    let text = topology().describe().to_string();
    assert!(
        text.contains("Processor: visits (stores: [visits])"),
        "{text}"
    );
    assert!(
        text.contains("Processor: visit-values (stores: [visit-values])"),
        "{text}"
    );
}

/// Clicks of 6 users, 70 s apart (each one a session of its own, the gap being 60 s), in
/// time order: the first half up to 630 s; the second starts with a click at 665 s that
/// merges the last session of the first half with the first of the second.
fn records(half: usize) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for user in 0..6i64 {
        // From an epoch time on: a producer given timestamp 0 stamps the record with the
        // current time instead.
        let at = |t: i64| 1_700_000_000_000 + t + user * SECOND;
        let range = if half == 0 { 0..10 } else { 10..20 };
        for i in range {
            out.push((format!("u{user}"), i, at(i * 70 * SECOND)));
        }
        if half == 1 {
            out.push((format!("u{user}"), 100, at(665 * SECOND)));
        }
    }
    out.sort_by_key(|(_, _, t)| *t);
    out
}

/// What the test driver makes of all the records: the oracle for the backends.
fn expected() -> Sessions {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let input = driver.input_topic(&clicks());
    for half in 0..2 {
        for (k, v, t) in records(half) {
            input.pipe_input_at(k, v, t).unwrap();
        }
    }
    sessions(
        driver
            .key_value_store::<Windowed<String>, i64>("visits")
            .unwrap()
            .all()
            .unwrap(),
    )
}

on_both_backends!(sessions_are_exact_after_a_crash);

async fn sessions_are_exact_after_a_crash(env: TestEnv) {
    env.create("clicks", 2).await;
    env.create("sessions", 2).await;
    env.create_internal("sessions-app-visits-changelog", 2);
    env.create_internal("sessions-app-visit-values-changelog", 2);
    env.create_internal("sessions-app-dlq", 1);
    let want = expected();
    produce_at(&env, &clicks(), &records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("sessions-app", dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
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
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    let visits = second
        .key_value_store::<Windowed<String>, i64>("visits")
        .unwrap();
    let done = || visits.all().map(sessions).ok().as_ref() == Some(&want);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(visits.all().map(sessions).unwrap(), want);
    assert_eq!(second.metrics().late_records_dropped, 0);
    second.close().await.unwrap();
}
