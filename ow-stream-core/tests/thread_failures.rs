//! A stream thread that dies — here, a panic in an operator's closure — on both backends and
//! in the test driver, under every [`ThreadFailurePolicy`]: the application never looks
//! healthy with a dead thread, and stores stay exact when the thread is replaced.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::config::{StreamsConfig, ThreadFailurePolicy};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::{Streams, StreamsState};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{Error, StreamsBuilder, Topic, Topology};

const PARTITIONS: i32 = 2;
const RECORDS: i64 = 40;
const KEYS: i64 = 8;

fn orders() -> Topic<String, i64> {
    Topic::new("orders", StringSerde, JsonSerde::new())
}

/// Counts orders per key; `panics(value)` says whether the closure panics on a value.
fn topology(panics: impl Fn(i64) -> bool + Send + Sync + 'static) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&orders())
        .map_values(move |v: i64| {
            if panics(v) {
                panic!("boom at {v}");
            }
            v
        })
        .group_by_key()
        .count(Materialized::as_("counts"));
    b.build().unwrap()
}

async fn setup(env: &TestEnv, app: &str) {
    env.create("orders", PARTITIONS).await;
    env.create_internal(&format!("{app}-counts-changelog"), PARTITIONS);
    env.create_internal(&format!("{app}-dlq"), 1);
    env.create_internal(&format!("{app}-shutdown"), 1);
}

async fn produce(env: &TestEnv, from: i64, to: i64) {
    let records: Vec<(String, i64, i64)> = (from..to)
        .map(|i| (format!("k{}", i % KEYS), i, 1_000 + i))
        .collect();
    produce_at(env, &orders(), &records).await;
}

fn config(
    env: &TestEnv,
    app: &str,
    dir: &std::path::Path,
    policy: ThreadFailurePolicy,
) -> StreamsConfig {
    env.config(app, dir).with_thread_failure_policy(policy)
}

async fn start(topology: Topology, config: StreamsConfig) -> Streams {
    let mut s = Streams::new(topology, config).unwrap();
    s.start().await.unwrap();
    s
}

fn counts(streams: &Streams) -> BTreeMap<String, i64> {
    streams
        .key_value_store::<String, i64>("counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect()
}

async fn wait_for_error(streams: &Streams) {
    wait_for("the application to fail", Duration::from_secs(60), || {
        streams.state() == StreamsState::Error
    })
    .await;
}

on_both_backends!(shutdown_client_is_the_default_and_shows_the_panic);

async fn shutdown_client_is_the_default_and_shows_the_panic(env: TestEnv) {
    setup(&env, "panic-client").await;
    produce(&env, 0, RECORDS).await;
    let dir = tempfile::tempdir().unwrap();
    // The default policy, not set explicitly.
    let streams = start(
        topology(|v| v == 17),
        env.config("panic-client", dir.path()),
    )
    .await;
    wait_for_error(&streams).await;
    let failure = streams.failure().unwrap();
    assert!(failure.contains("panicked"), "{failure}");
    assert!(failure.contains("boom at 17"), "{failure}");
    assert!(
        failure.contains("orders/"),
        "the failure names the record: {failure}"
    );
    let m = streams.metrics();
    assert_eq!(m.stream_thread_failures, 1);
    assert_eq!(m.stream_threads_replaced, 0);
    assert_eq!(m.stream_threads_alive, 0);
    let mut text = String::new();
    streams.encode_metrics(&mut text).unwrap();
    assert!(
        text.contains("ow_stream_stream_threads_alive{application_id=\"panic-client\"} 0\n"),
        "{text}"
    );
    match streams.failed().await {
        Error::Closed { reason } => assert!(reason.contains("boom at 17"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    match streams.close().await {
        Err(e) => assert!(e.to_string().contains("boom at 17"), "{e}"),
        Ok(()) => panic!("close() hid the dead thread"),
    }
}

on_both_backends!(replace_thread_keeps_counting_exactly);

async fn replace_thread_keeps_counting_exactly(env: TestEnv) {
    setup(&env, "panic-replace").await;
    produce(&env, 0, RECORDS).await;
    let dir = tempfile::tempdir().unwrap();
    let panicked = Arc::new(AtomicBool::new(false));
    let once = panicked.clone();
    let streams = start(
        topology(move |v| v == 17 && !once.swap(true, Ordering::SeqCst)),
        config(
            &env,
            "panic-replace",
            dir.path(),
            ThreadFailurePolicy::ReplaceThread,
        ),
    )
    .await;
    wait_for("every order counted", Duration::from_secs(60), || {
        counts(&streams).values().sum::<i64>() == RECORDS
    })
    .await;
    assert!(panicked.load(Ordering::SeqCst));
    // Exactly once into the store, although the dead thread had counted part of a batch.
    let c = counts(&streams);
    assert_eq!(c.len() as i64, KEYS);
    assert!(c.values().all(|n| *n == RECORDS / KEYS), "{c:?}");
    assert_eq!(streams.state(), StreamsState::Running);
    assert_eq!(streams.failure(), None);
    let m = streams.metrics();
    assert_eq!(m.stream_thread_failures, 1);
    assert_eq!(m.stream_threads_replaced, 1);
    assert_eq!(m.stream_threads_alive, 1);
    // The new thread goes on with new records.
    produce(&env, RECORDS, RECORDS + KEYS).await;
    wait_for("the new records counted", Duration::from_secs(60), || {
        counts(&streams).values().sum::<i64>() == RECORDS + KEYS
    })
    .await;
    streams.close().await.unwrap();
}

/// On the local backend one process runs the application: shutting it down is shutting the
/// client down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_application_on_the_local_log_stops_the_instance() {
    let env = TestEnv::local();
    setup(&env, "panic-app").await;
    produce(&env, 0, RECORDS).await;
    let dir = tempfile::tempdir().unwrap();
    let streams = start(
        topology(|v| v == 17),
        config(
            &env,
            "panic-app",
            dir.path(),
            ThreadFailurePolicy::ShutdownApplication,
        ),
    )
    .await;
    wait_for_error(&streams).await;
    assert!(streams.failure().unwrap().contains("boom at 17"));
    assert_eq!(streams.metrics().stream_thread_failures, 1);
    assert!(streams.close().await.is_err());
}

/// On Kafka, the instance whose thread dies asks the others to stop: one that never panics
/// fails too, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_application_on_kafka_stops_every_instance() {
    let env = TestEnv::mock();
    setup(&env, "panic-app").await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let policy = ThreadFailurePolicy::ShutdownApplication;
    // B never panics; A panics on the first record it gets.
    let b = start(
        topology(|_| false),
        config(&env, "panic-app", b_dir.path(), policy),
    )
    .await;
    let a = start(
        topology(|_| true),
        config(&env, "panic-app", a_dir.path(), policy),
    )
    .await;
    // Produce until A has had a record (which partitions it gets is the group's choice).
    let mut next = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.state() != StreamsState::Error {
        assert!(std::time::Instant::now() < deadline, "A never failed");
        produce(&env, next, next + 4).await;
        next += 4;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.failure().unwrap().contains("panicked"));
    wait_for_error(&b).await;
    let reason = b.failure().unwrap();
    assert!(
        reason.contains("asked the application to shut down") && reason.contains("boom at"),
        "{reason}"
    );
    assert_eq!(b.metrics().stream_thread_failures, 1);
    assert!(a.close().await.is_err());
    assert!(b.close().await.is_err());
}

/// The test driver reports a panic as the stream thread would, as an error of the record.
#[test]
fn the_test_driver_reports_a_panic_as_an_error() {
    let driver = TopologyTestDriver::new(topology(|v| v == 2)).unwrap();
    let input = driver.input_topic(&orders());
    input.pipe_input_at("a".into(), 1, 0).unwrap();
    match input.pipe_input_at("a".into(), 2, 0) {
        Err(Error::Panicked {
            location, message, ..
        }) => {
            assert_eq!(message, "boom at 2");
            assert!(location.contains("orders/0@1"), "{location}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
