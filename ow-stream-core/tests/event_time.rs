//! Event time at the source, late records and window retention: a timestamp extractor moves
//! the task's clock (`with_timestamp` does not); records after their window's grace are
//! dropped and counted; closed windows stay queryable for a day by default.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{Consumed, DEFAULT_WINDOW_RETENTION, Materialized, TimeWindows};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

const SECOND: i64 = 1_000;

/// Values are event times; every record is written at time 0.
fn readings() -> Topic<String, i64> {
    Topic::new("readings", StringSerde, JsonSerde::new())
}

/// Counts readings per key in 10 s windows without grace, by the event time in the value:
/// extracted at the source (`extract`), or set downstream with `with_timestamp`.
fn topology(extract: bool) -> Topology {
    let b = StreamsBuilder::new();
    let stream = if extract {
        b.stream_with(
            &readings(),
            Consumed::new().with_timestamp_extractor(|_, event_time: &i64, _| *event_time),
        )
    } else {
        b.stream(&readings())
            .with_timestamp(|_, event_time| *event_time)
    };
    stream
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .count(Materialized::as_("per-10s"));
    b.build().unwrap()
}

/// Event times 1 s, 15 s, then 2 s: late once stream time is 15 s, if the clock follows them.
const EVENT_TIMES: [i64; 3] = [SECOND, 15 * SECOND, 2 * SECOND];

#[test]
fn an_extractor_moves_stream_time_and_with_timestamp_does_not() {
    for (extract, late) in [(true, 1), (false, 0)] {
        let driver = TopologyTestDriver::new(topology(extract)).unwrap();
        let input = driver.input_topic(&readings());
        for t in EVENT_TIMES {
            input.pipe_input_at("s".into(), t, 0).unwrap();
        }
        assert_eq!(
            driver.metrics().late_records_dropped,
            late,
            "extract: {extract}"
        );
        let store = driver.window_store::<String, i64>("per-10s").unwrap();
        let first = store.fetch(&"s".into(), 0, 0).unwrap();
        assert_eq!(first[0].1, 2 - late as i64, "extract: {extract}");
    }
}

#[test]
fn a_negative_extracted_timestamp_is_a_processing_error() {
    let driver = TopologyTestDriver::new(topology(true)).unwrap();
    let input = driver.input_topic(&readings());
    input.pipe_input_at("s".into(), -5, 0).unwrap();
    let dead = driver.dead_letters();
    assert_eq!(dead.len(), 1);
    let error = dead[0].headers.last("ow.dlq.error").unwrap_or_default();
    let error = String::from_utf8_lossy(error);
    assert!(error.contains("negative"), "{error}");
}

#[test]
fn closed_windows_stay_queryable_for_a_day_by_default() {
    let driver = TopologyTestDriver::new(topology(true)).unwrap();
    let input = driver.input_topic(&readings());
    input.pipe_input_at("s".into(), SECOND, 0).unwrap();
    let store = driver.window_store::<String, i64>("per-10s").unwrap();
    // Closed (no grace) an hour later, still there.
    input.pipe_input_at("s".into(), 3_600 * SECOND, 0).unwrap();
    assert_eq!(store.fetch(&"s".into(), 0, 0).unwrap().len(), 1);
    // A day after it ended, gone.
    let day = DEFAULT_WINDOW_RETENTION.as_millis() as i64;
    input
        .pipe_input_at("s".into(), 10 * SECOND + day + 10 * SECOND, 0)
        .unwrap();
    assert!(store.fetch(&"s".into(), 0, 0).unwrap().is_empty());
}

on_both_backends!(the_extracted_clock_drops_the_late_reading);

async fn the_extracted_clock_drops_the_late_reading(env: TestEnv) {
    env.create("readings", 1).await;
    env.create_internal("event-time-per-10s-changelog", 1);
    env.create_internal("event-time-dlq", 1);
    let records: Vec<(String, i64, i64)> = EVENT_TIMES
        .iter()
        .map(|t| ("s".to_string(), *t, 0))
        .collect();
    produce_at(&env, &readings(), &records).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(topology(true), env.config("event-time", dir.path())).unwrap();
    streams.start().await.unwrap();
    let store = streams.window_store::<String, i64>("per-10s").unwrap();
    let count = |start: i64| {
        store
            .fetch(&"s".into(), start, start)
            .unwrap()
            .first()
            .map(|(_, n)| *n)
    };
    wait_for(
        "every reading counted or dropped",
        Duration::from_secs(60),
        || streams.metrics().late_records_dropped == 1 && count(10 * SECOND) == Some(1),
    )
    .await;
    assert_eq!(count(0), Some(1));
    streams.close().await.unwrap();
}
