//! Helpers shared by the integration tests that run on librdkafka's mock cluster.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ow_stream_core::RawRecord;
use ow_stream_core::config::{Backend, StreamsConfig};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// An in-process Kafka cluster speaking the real protocol on loopback.
pub(crate) struct Cluster {
    pub(crate) mock: MockCluster<'static, DefaultProducerContext>,
}

impl Cluster {
    pub(crate) fn init_tracing() -> bool {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init()
            .is_ok()
    }

    pub(crate) fn new() -> Self {
        let _ = Self::init_tracing();
        Cluster {
            mock: MockCluster::new(1).expect("mock cluster"),
        }
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.mock.bootstrap_servers()
    }

    pub(crate) fn create(&self, topic: &str, partitions: i32) {
        self.mock
            .create_topic(topic, partitions, 1)
            .expect("create topic");
    }

    pub(crate) fn config(&self, app: &str, state_dir: &std::path::Path) -> StreamsConfig {
        StreamsConfig::new(app, Backend::kafka(self.bootstrap()))
            .with_state_dir(state_dir)
            .with_commit_interval(Duration::from_millis(100))
            .with_kafka_setting("session.timeout.ms", "6000")
            .with_kafka_setting("heartbeat.interval.ms", "500")
    }
}

/// Where a test's topics live: librdkafka's mock cluster or the durable local log.
pub(crate) enum TestEnv {
    Mock(Cluster),
    Local(tempfile::TempDir),
}

impl TestEnv {
    pub(crate) fn mock() -> Self {
        TestEnv::Mock(Cluster::new())
    }

    pub(crate) fn local() -> Self {
        let _ = Cluster::init_tracing();
        TestEnv::Local(tempfile::tempdir().unwrap())
    }

    pub(crate) fn is_local(&self) -> bool {
        matches!(self, TestEnv::Local(_))
    }

    /// A configuration for `app` with stores in `state_dir`.
    pub(crate) fn config(&self, app: &str, state_dir: &std::path::Path) -> StreamsConfig {
        match self {
            TestEnv::Mock(c) => c.config(app, state_dir),
            TestEnv::Local(dir) => StreamsConfig::new(app, Backend::local(dir.path().join("log")))
                .with_state_dir(state_dir)
                .with_commit_interval(Duration::from_millis(100)),
        }
    }

    /// Creates a user topic.
    pub(crate) async fn create(&self, topic: &str, partitions: i32) {
        match self {
            TestEnv::Mock(c) => c.create(topic, partitions),
            TestEnv::Local(_) => {
                let admin = ow_stream_core::admin::Admin::new(
                    &self.config("admin", std::path::Path::new(".")),
                )
                .unwrap();
                admin
                    .create_topics(&[ow_stream_core::admin::TopicSpec::new(topic, partitions)])
                    .await
                    .unwrap();
            }
        }
    }

    /// Creates an internal topic where the backend cannot create it itself (the mock cluster);
    /// the local backend creates its own.
    pub(crate) fn create_internal(&self, topic: &str, partitions: i32) {
        if let TestEnv::Mock(c) = self {
            c.create(topic, partitions);
        }
    }

    /// Every record of `topic`, read with the library's consumer up to the current end.
    pub(crate) async fn read_all(&self, topic: &str) -> Vec<RawRecord> {
        read_all_with(&self.config("reader", std::path::Path::new(".")), topic).await
    }

    /// The latest value per key of `topic`, decoded as UTF-8 JSON.
    pub(crate) async fn latest_json(&self, topic: &str) -> BTreeMap<String, serde_json::Value> {
        self.read_all(topic)
            .await
            .into_iter()
            .filter_map(|r| {
                let k = String::from_utf8(r.key?.to_vec()).ok()?;
                let v = serde_json::from_slice(&r.value?).ok()?;
                Some((k, v))
            })
            .collect()
    }
}

/// Every record of `topic` on the backend of `config`, read with the library's consumer up to
/// the current end, in (partition, offset) order.
pub(crate) async fn read_all_with(config: &StreamsConfig, topic: &str) -> Vec<RawRecord> {
    {
        let config = config.clone();
        let admin = ow_stream_core::admin::Admin::new(&config).unwrap();
        let offsets = admin.topic_offsets(&[topic]).await.unwrap();
        let Some(t) = offsets.first() else {
            return Vec::new();
        };
        let mut remaining: BTreeMap<i32, i64> = t
            .partitions
            .iter()
            .filter(|p| p.end > p.start)
            .map(|p| (p.partition, p.end))
            .collect();
        let group = format!("reader-{}", rand::random::<u64>());
        let bytes: ow_stream_core::Topic<Vec<u8>, Vec<u8>> = ow_stream_core::Topic::new(
            topic.to_string(),
            ow_stream_core::serde::BytesSerde,
            ow_stream_core::serde::BytesSerde,
        );
        let consumer =
            ow_stream_core::client::Consumer::subscribe(&config, &group, &bytes).unwrap();
        let mut out = Vec::new();
        while !remaining.is_empty() {
            let next = tokio::time::timeout(Duration::from_secs(30), consumer.next_raw())
                .await
                .expect("records within 30 s")
                .unwrap()
                .unwrap();
            if let Some(end) = remaining.get(&next.partition).copied()
                && next.offset + 1 >= end
            {
                remaining.remove(&next.partition);
            }
            out.push(next);
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

/// Polls `check` until it returns true; panics with `what` after `limit` (a safety net for a
/// hung test, not a performance assertion).
pub(crate) async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs an async scenario `fn name(env: TestEnv)` once on each backend: a module `name` with
/// the tests `mock_cluster` and `local_log`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mock_cluster() {
                super::$name(super::common::TestEnv::mock()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_log() {
                super::$name(super::common::TestEnv::local()).await
            }
        }
    };
}

/// Produces `(key, value, timestamp)` records to `topic`, one at a time, in order.
pub(crate) async fn produce_at<K: Clone + 'static, V: Clone + 'static>(
    env: &TestEnv,
    topic: &ow_stream_core::Topic<K, V>,
    records: &[(K, V, i64)],
) {
    let producer =
        ow_stream_core::client::Producer::new(&env.config("producer", std::path::Path::new(".")))
            .unwrap();
    for (k, v, ts) in records {
        producer
            .send_record(
                topic,
                &ow_stream_core::Record::new(k.clone(), v.clone(), *ts),
            )
            .await
            .unwrap();
    }
}
