//! The Prometheus metrics, scraped and parsed: a windowed count over one partition, with a late
//! record, run on the test driver and on both backends; the encoded metrics must say how many
//! records each thread and task processed, how many puts the store took, that the late record
//! was dropped (reason `late`), that commits happened, and the partition's lag.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{Materialized, TimeWindows};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use prometheus_parse::{Sample, Scrape, Value};

const SECOND: i64 = 1_000;
const STORE: &str = "clicks-per-10s";

fn clicks() -> Topic<String, i64> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

/// Counts clicks per key in 10 s windows without grace.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&clicks())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .count(Materialized::as_(STORE));
    b.build().unwrap()
}

/// 15 clicks at 1 s … 15 s, then one at 2 s: late (its window closed at 10 s).
fn inputs() -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> = (1..=15)
        .map(|i| (format!("user-{}", i % 3), i, i * SECOND))
        .collect();
    out.push(("user-0".into(), 99, 2 * SECOND));
    out
}

const PROCESSED: f64 = 16.0;
const LATE: f64 = 1.0;
/// Every record but the late one is a put to the window store.
const PUTS: f64 = 15.0;

fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "a whole OpenMetrics document");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap()
        .samples
}

/// The sum of the samples named `name` with the labels `labels` (histograms: their count).
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            other => panic!("{name}: {other:?}"),
        })
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// What every run must report, whatever its backend.
fn check(samples: &[Sample], text: &str) {
    let value = |name: &str, labels: &[(&str, &str)]| {
        sum(samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(value("ow_stream_process_total", &[]), PROCESSED, "{text}");
    assert_eq!(
        value("ow_stream_task_process_total", &[("task_id", "0_0")]),
        PROCESSED
    );
    assert_eq!(value("ow_stream_records_consumed_total", &[]), PROCESSED);
    assert_eq!(
        value("ow_stream_process_latency_seconds", &[]),
        PROCESSED,
        "one latency per record"
    );
    assert_eq!(
        value(
            "ow_stream_store_put_total",
            &[("task_id", "0_0"), ("store_name", STORE)]
        ),
        PUTS
    );
    assert!(
        value(
            "ow_stream_store_get_total",
            &[("task_id", "0_0"), ("store_name", STORE)]
        ) >= PUTS,
        "a count reads its window before it writes it"
    );
    assert_eq!(
        value("ow_stream_dropped_records_total", &[("reason", "late")]),
        LATE
    );
    assert_eq!(
        value(
            "ow_stream_dropped_records_total",
            &[("reason", "join_miss")]
        ),
        0.0
    );
    assert!(value("ow_stream_commit_total", &[]) > 0.0, "{text}");
}

#[test]
fn the_test_driver_reports_the_metrics() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let input = driver.input_topic(&clicks());
    for (k, v, ts) in inputs() {
        input.pipe_input_at(k, v, ts).unwrap();
    }
    driver.commit().unwrap();
    let mut text = String::new();
    driver.encode_metrics(&mut text).unwrap();
    let samples = parse(&text);
    check(&samples, &text);
    assert_eq!(
        sum(
            &samples,
            "ow_stream_task_process_total",
            &[("thread_id", "test-driver")]
        ),
        Some(PROCESSED)
    );
}

async fn scraped_metrics_are_right(env: TestEnv) {
    env.create("clicks", 1).await;
    env.create_internal(&format!("metrics-app-{STORE}-changelog"), 1);
    env.create_internal("metrics-app-dlq", 1);
    produce_at(&env, &clicks(), &inputs()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(topology(), env.config("metrics-app", dir.path())).unwrap();
    streams.start().await.unwrap();
    let scrape = |streams: &Streams| {
        let mut text = String::new();
        streams.encode_metrics(&mut text).unwrap();
        let samples = parse(&text);
        (samples, text)
    };
    // Processed, committed after, and the lag known (the local log sets it at a commit, the
    // Kafka consumer's statistics every second).
    wait_for(
        "every record processed and its lag known",
        Duration::from_secs(60),
        || {
            let (samples, _) = scrape(&streams);
            sum(&samples, "ow_stream_process_total", &[]) == Some(PROCESSED)
                && sum(
                    &samples,
                    "ow_stream_records_lag",
                    &[("topic", "clicks"), ("partition", "0")],
                ) == Some(0.0)
        },
    )
    .await;
    let before = streams.metrics().commits;
    wait_for(
        "a commit after the last record",
        Duration::from_secs(30),
        || streams.metrics().commits > before,
    )
    .await;
    let (samples, text) = scrape(&streams);
    check(&samples, &text);
    let thread = [("thread_id", "metrics-app-stream-0")];
    assert_eq!(
        sum(&samples, "ow_stream_process_total", &thread),
        Some(PROCESSED),
        "{text}"
    );
    assert!(
        sum(&samples, "ow_stream_commit_latency_seconds", &thread).unwrap() > 0.0,
        "{text}"
    );
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("application_id") == Some("metrics-app")),
        "every metric names its application"
    );
    assert_eq!(
        sum(&samples, "ow_stream_stream_threads_alive", &[]),
        Some(1.0)
    );
    // The snapshot reads the same instruments.
    let m = streams.metrics();
    assert_eq!(m.records_consumed as f64, PROCESSED);
    assert_eq!(m.late_records_dropped as f64, LATE);
    streams.close().await.unwrap();
}

on_both_backends!(scraped_metrics_are_right);
