//! `Streams::broker_connectivity` on librdkafka's mock cluster: an outage shows while the
//! stream thread is busy (its consumer is not polled then: the producer's reports carry it),
//! a busy thread alone is not an outage, and the state comes back when the broker does.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::runtime::{BrokerConnectivity, Streams, StreamsState};
use ow_stream_core::serde::StringSerde;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

fn input() -> Topic<String, String> {
    Topic::new("conn-in", StringSerde, StringSerde)
}

fn output() -> Topic<String, String> {
    Topic::new("conn-out", StringSerde, StringSerde)
}

/// A closure that blocks on the record "block" until released, and notes what it saw.
#[derive(Clone, Default)]
struct Gate {
    blocked: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

/// Releases the gate when dropped, so that a failing test does not leave its stream thread
/// blocked (closing the application would wait for it forever).
struct ReleaseOnDrop(Gate);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release.store(true, Ordering::SeqCst);
    }
}

impl Gate {
    /// Whether it saw `value` (at least once: a record may come again after a rebalance).
    fn saw(&self, value: &str) -> bool {
        self.seen.lock().unwrap().iter().any(|v| v == value)
    }
}

fn topology(gate: Gate) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&input())
        .peek(move |_, v: &String| {
            if v == "block" {
                gate.blocked.store(true, Ordering::SeqCst);
                while !gate.release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                gate.blocked.store(false, Ordering::SeqCst);
            }
            gate.seen.lock().unwrap().push(v.clone());
        })
        .to(&output());
    b.build().unwrap()
}

async fn start(env: &TestEnv, app: &str, gate: Gate) -> (Streams, tempfile::TempDir) {
    env.create("conn-in", 1).await;
    env.create("conn-out", 1).await;
    env.create_internal(&format!("{app}-dlq"), 1);
    env.create_internal(&format!("{app}-shutdown"), 1);
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(topology(gate), env.config(app, dir.path())).unwrap();
    streams.start().await.unwrap();
    (streams, dir)
}

fn record(v: &str, ts: i64) -> (String, String, i64) {
    ("k".to_owned(), v.to_owned(), ts)
}

fn unreachable(streams: &Streams) -> bool {
    matches!(
        streams.broker_connectivity(),
        BrokerConnectivity::Unreachable { .. }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_while_the_stream_thread_is_busy_and_clears_after() {
    let env = TestEnv::mock();
    let TestEnv::Mock(cluster) = &env else {
        unreachable!()
    };
    let gate = Gate::default();
    let (streams, _dir) = start(&env, "conn-busy", gate.clone()).await;
    // Declared after `streams`, so dropped (released) before it.
    let _release = ReleaseOnDrop(gate.clone());
    produce_at(&env, &input(), &[record("a", 1_000)]).await;
    wait_for("the first record", Duration::from_secs(60), || {
        gate.saw("a")
    })
    .await;
    produce_at(&env, &input(), &[record("block", 2_000)]).await;
    wait_for("the thread to block", Duration::from_secs(60), || {
        gate.blocked.load(Ordering::SeqCst)
    })
    .await;
    assert!(!unreachable(&streams));

    cluster.mock.broker_down(1).unwrap();
    wait_for(
        "the outage to show while the thread is blocked",
        Duration::from_secs(30),
        || unreachable(&streams),
    )
    .await;
    assert!(
        gate.blocked.load(Ordering::SeqCst),
        "seen only once the thread polled again"
    );
    match streams.broker_connectivity() {
        BrokerConnectivity::Unreachable { reason, since_ms } => {
            assert!(!reason.is_empty());
            assert!(since_ms > 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(streams.state(), StreamsState::Running);

    cluster.mock.broker_up(1).unwrap();
    gate.release.store(true, Ordering::SeqCst);
    wait_for(
        "the brokers to be reachable again",
        Duration::from_secs(60),
        || !unreachable(&streams),
    )
    .await;
    produce_at(&env, &input(), &[record("b", 3_000)]).await;
    wait_for("records after the outage", Duration::from_secs(60), || {
        gate.saw("block") && gate.saw("b")
    })
    .await;
    assert_eq!(streams.state(), StreamsState::Running);
    streams.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_thread_with_the_broker_up_is_not_an_outage() {
    let env = TestEnv::mock();
    let gate = Gate::default();
    let (streams, _dir) = start(&env, "conn-idle", gate.clone()).await;
    // Declared after `streams`, so dropped (released) before it.
    let _release = ReleaseOnDrop(gate.clone());
    produce_at(
        &env,
        &input(),
        &[record("a", 1_000), record("block", 2_000)],
    )
    .await;
    wait_for("the thread to block", Duration::from_secs(60), || {
        gate.blocked.load(Ordering::SeqCst)
    })
    .await;
    // Blocked well past the time a client's last "up" counts for (2.5 s): the producer's
    // statistics, every second, keep saying the broker is there.
    for _ in 0..80 {
        assert!(
            !unreachable(&streams),
            "{:?} while the broker is up",
            streams.broker_connectivity()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gate.release.store(true, Ordering::SeqCst);
    wait_for("both records", Duration::from_secs(60), || {
        gate.saw("block")
    })
    .await;
    assert!(!unreachable(&streams));
    streams.close().await.unwrap();
}
