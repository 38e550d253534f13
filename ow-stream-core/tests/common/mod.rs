//! Helpers shared by the integration tests that run on librdkafka's mock cluster.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::{Headers, RawRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// An in-process Kafka cluster speaking the real protocol on loopback.
pub(crate) struct Cluster {
    pub(crate) mock: MockCluster<'static, DefaultProducerContext>,
}

impl Cluster {
    pub(crate) fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
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

    /// Every record of `topic`, partition by partition, from the start to the current end.
    pub(crate) fn read_all(&self, topic: &str) -> Vec<RawRecord> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut out = Vec::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            if high <= low {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .unwrap();
            consumer.assign(&tpl).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        let mut headers = Headers::new();
                        if let Some(h) = m.headers() {
                            for h in h.iter() {
                                headers.insert(h.key, h.value.map(Bytes::copy_from_slice));
                            }
                        }
                        out.push(RawRecord {
                            topic: topic.into(),
                            partition: p,
                            offset: m.offset(),
                            timestamp: m.timestamp().to_millis().unwrap_or(0),
                            key: m.key().map(Bytes::copy_from_slice),
                            value: m.payload().map(Bytes::copy_from_slice),
                            headers,
                        });
                        if m.offset() + 1 >= high {
                            break;
                        }
                    }
                    Some(Err(e)) => panic!("read {topic}: {e}"),
                    None => {}
                }
            }
        }
        out
    }

    /// The latest value per key of `topic`, decoded as UTF-8 JSON.
    pub(crate) fn latest_json(&self, topic: &str) -> BTreeMap<String, serde_json::Value> {
        self.read_all(topic)
            .into_iter()
            .filter_map(|r| {
                let k = String::from_utf8(r.key?.to_vec()).ok()?;
                let v = serde_json::from_slice(&r.value?).ok()?;
                Some((k, v))
            })
            .collect()
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
