//! The backends the processor runs on in tests — librdkafka's mock cluster and the durable
//! local log — set up for the processor: its topics, a producer of raw events, readers of the
//! output topics, and the consumer group's lag.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ow_processor::{
    APPLICATION_ID, DAILY_STORE, PROFILE_STORE, Processor, ProcessorConfig, SNAPSHOT_STORE, Topics,
};
use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::BytesSerde;
use ow_stream_core::{Headers, RawRecord, Record, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::pipeline::Outputs;
use super::stream::StreamEvent;

/// Partitions of the raw topic, the outputs and the changelogs.
pub(crate) const PARTITIONS: i32 = 4;

/// Time retention of the topics the tests create on the local log: the stream's records are
/// stamped in 2024, and the log's default (7 days, by record time) would delete them.
const KEEP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestEnv {
    /// librdkafka's mock cluster.
    Mock,
    /// The durable local log, in a temporary directory.
    Local,
}

/// Where the topics live.
enum Broker {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Local {
        /// Declared first: closes its share of the log before the directory goes.
        admin: Admin,
        /// The log is in `log/` under it.
        dir: tempfile::TempDir,
    },
}

/// The processor's topics on one backend: an in-process Kafka cluster speaking the real
/// protocol on loopback, or a local log in a directory of its own.
pub(crate) struct Cluster {
    /// Declared first: dropped before the cluster it talks to.
    producer: Producer,
    broker: Broker,
    pub(crate) topics: Topics,
    pub(crate) registry: SchemaRegistry,
}

impl Cluster {
    /// The raw topic, the four outputs, the three changelogs and the dead-letter topic on
    /// `env`; schemas in a registry of its own. The mock cluster cannot create topics on
    /// request, so all are created here; on the local log the outputs get the shapes of
    /// [`Topics::output_specs`] (the tables compacted), and the changelogs are created by the
    /// processor as it starts.
    pub(crate) async fn new(env: TestEnv, registry: SchemaRegistry) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let topics = Topics::new(&registry, "").unwrap();
        let (broker, config) = match env {
            TestEnv::Mock => {
                let mock = MockCluster::new(1).expect("mock cluster");
                for topic in [
                    topics.raw.name(),
                    topics.stats_by_category.name(),
                    topics.profiles.name(),
                    topics.deltas.name(),
                    topics.daily.name(),
                ] {
                    mock.create_topic(topic, PARTITIONS, 1).unwrap();
                }
                for store in [PROFILE_STORE, SNAPSHOT_STORE, DAILY_STORE] {
                    mock.create_topic(
                        &format!("{APPLICATION_ID}-{store}-changelog"),
                        PARTITIONS,
                        1,
                    )
                    .unwrap();
                }
                mock.create_topic(&format!("{APPLICATION_ID}-dlq"), 1, 1)
                    .unwrap();
                let config =
                    StreamsConfig::new("test-producer", Backend::kafka(mock.bootstrap_servers()))
                        .with_kafka_setting("compression.type", "zstd");
                (Broker::Mock(mock), config)
            }
            TestEnv::Local => {
                let dir = tempfile::tempdir().unwrap();
                let config = local_config("test-producer", dir.path());
                let admin = Admin::new(&config).unwrap();
                let mut specs = vec![TopicSpec::new(topics.raw.name(), PARTITIONS)];
                specs.extend(topics.output_specs(PARTITIONS));
                // Created before the processor would create it, to keep every dead letter.
                specs.push(TopicSpec::new(format!("{APPLICATION_ID}-dlq"), 1));
                let specs: Vec<TopicSpec> =
                    specs.into_iter().map(|s| s.with_retention(KEEP)).collect();
                admin.create_topics(&specs).await.unwrap();
                (Broker::Local { admin, dir }, config)
            }
        };
        let producer = Producer::new(&config).unwrap();
        Cluster {
            broker,
            topics,
            registry,
            producer,
        }
    }

    /// Settings for a client of this cluster. On the mock: zstd compression (raw bodies and
    /// outputs stay far below the mock's 5 MiB per partition), quick commits and failure
    /// detection; on the local log: quick commits.
    pub(crate) fn streams_config(&self, app: &str, state_dir: &Path) -> StreamsConfig {
        match &self.broker {
            Broker::Mock(mock) => StreamsConfig::new(app, Backend::kafka(mock.bootstrap_servers()))
                .with_state_dir(state_dir)
                .with_commit_interval(Duration::from_millis(100))
                .with_kafka_setting("compression.type", "zstd")
                .with_kafka_setting("session.timeout.ms", "3000")
                .with_kafka_setting("heartbeat.interval.ms", "300")
                .with_kafka_setting("fetch.wait.max.ms", "20"),
            Broker::Local { dir, .. } => local_config(app, dir.path())
                .with_state_dir(state_dir)
                .with_commit_interval(Duration::from_millis(100)),
        }
    }

    /// The processor's configuration on this cluster, sharing the cluster's registry.
    pub(crate) fn processor_config(&self, state_dir: &Path) -> ProcessorConfig {
        ProcessorConfig::new(self.streams_config(APPLICATION_ID, state_dir))
            .with_registry(self.registry.clone())
    }

    /// Starts a processor instance.
    pub(crate) async fn start(&self, state_dir: &Path) -> Processor {
        ow_processor::start(self.processor_config(state_dir))
            .await
            .unwrap()
    }

    /// Starts a processor instance that takes at most `max` records per batch (a stream thread
    /// checks for an abort between batches, so small batches make kills land anywhere).
    pub(crate) async fn start_with_batches_of(&self, state_dir: &Path, max: usize) -> Processor {
        let mut config = self.processor_config(state_dir);
        config.streams.max_poll_records = max;
        ow_processor::start(config).await.unwrap()
    }

    /// Writes raw events in order (keyed by player id, stamped with `fetched_at`).
    pub(crate) async fn produce(&self, events: &[StreamEvent]) {
        let producer = &self.producer;
        // Sends in flight together keep their order on Kafka, not on the local log (each
        // append is a blocking task of its own): there, one at a time.
        let in_flight = match self.broker {
            Broker::Mock(_) => 64,
            Broker::Local { .. } => 1,
        };
        for chunk in events.chunks(in_flight) {
            let sends = chunk.iter().map(|e| {
                let record = Record::new(e.raw.player_id.clone(), e.raw.clone(), e.raw.fetched_at);
                let topic = &self.topics.raw;
                async move { producer.send_record(topic, &record).await }
            });
            for sent in futures::future::join_all(sends).await {
                sent.unwrap();
            }
        }
    }

    /// Raw records the processor's group has not committed yet (over every partition).
    pub(crate) async fn lag(&self) -> i64 {
        match &self.broker {
            Broker::Mock(mock) => mock_lag(mock, self.topics.raw.name()),
            Broker::Local { admin, .. } => {
                let lags = admin
                    .group_lag(APPLICATION_ID, &[self.topics.raw.name()])
                    .await
                    .unwrap();
                assert_eq!(lags.len(), PARTITIONS as usize, "{lags:?}");
                lags.iter().map(|p| p.lag).sum()
            }
        }
    }

    /// Every record of `topic`, partition by partition, from the start to the current end.
    pub(crate) async fn read_all(&self, topic: &str) -> Vec<RawRecord> {
        match &self.broker {
            Broker::Mock(mock) => mock_read_all(mock, topic),
            Broker::Local { dir, admin } => local_read_all(dir.path(), admin, topic).await,
        }
    }

    /// What the processor wrote to the output topics so far.
    pub(crate) async fn outputs(&self) -> Outputs {
        let mut records = BTreeMap::new();
        for topic in [
            self.topics.stats_by_category.name(),
            self.topics.profiles.name(),
            self.topics.deltas.name(),
            self.topics.daily.name(),
        ] {
            records.insert(topic.to_owned(), self.read_all(topic).await);
        }
        Outputs::decode(&self.topics, |topic| {
            records
                .get(topic)
                .cloned()
                .unwrap_or_else(|| panic!("{topic} is not an output topic"))
        })
    }

    /// The highest first offset over the partitions of `topic` (0 when retention dropped
    /// nothing), and the bytes of its fullest partition (keys, values and headers,
    /// uncompressed: an upper bound of what the mock stores, as records are written
    /// zstd-compressed).
    pub(crate) async fn partition_usage(&self, topic: &str) -> (i64, usize) {
        let first = match &self.broker {
            Broker::Mock(mock) => {
                let consumer = reader(mock, "test-reader");
                watermarks(&consumer, topic)
                    .into_iter()
                    .map(|(low, _)| low)
                    .max()
                    .unwrap_or(0)
            }
            Broker::Local { admin, .. } => admin
                .topic_offsets(&[topic])
                .await
                .unwrap()
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.start))
                .max()
                .unwrap_or(0),
        };
        let mut sizes = vec![0usize; PARTITIONS as usize];
        for r in self.read_all(topic).await {
            let headers: usize = r
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
                .sum();
            sizes[r.partition as usize] +=
                r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len()) + headers;
        }
        (first, sizes.into_iter().max().unwrap_or(0))
    }
}

/// A client of the local log in `dir` (the log itself is in `dir/log`).
fn local_config(app: &str, dir: &Path) -> StreamsConfig {
    StreamsConfig::new(app, Backend::local(dir.join("log")))
}

/// Every record of `topic` on the local log in `dir`, read with the library's consumer (a
/// group of its own) up to the current end, in (partition, offset) order.
async fn local_read_all(dir: &Path, admin: &Admin, topic: &str) -> Vec<RawRecord> {
    let offsets = admin.topic_offsets(&[topic]).await.unwrap();
    let Some(t) = offsets.first() else {
        return Vec::new();
    };
    let ends: BTreeMap<i32, i64> = t
        .partitions
        .iter()
        .filter(|p| p.end > p.start)
        .map(|p| (p.partition, p.end))
        .collect();
    if ends.is_empty() {
        return Vec::new();
    }
    let mut remaining = ends.clone();
    let bytes: Topic<Vec<u8>, Vec<u8>> = Topic::new(topic.to_owned(), BytesSerde, BytesSerde);
    let group = format!("test-reader-{}", rand::random::<u64>());
    let consumer = Consumer::subscribe(&local_config("test-reader", dir), &group, &bytes).unwrap();
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let next = tokio::time::timeout(Duration::from_secs(60), consumer.next_raw())
            .await
            .unwrap_or_else(|_| panic!("gave up reading {topic}"))
            .unwrap()
            .unwrap();
        let end = ends.get(&next.partition).copied().unwrap_or(0);
        if next.offset + 1 >= end {
            remaining.remove(&next.partition);
        }
        if next.offset < end {
            out.push(next);
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

fn reader(mock: &MockCluster<'static, DefaultProducerContext>, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader")
}

/// `(low, high)` watermarks of every partition of `topic`.
fn watermarks(consumer: &BaseConsumer, topic: &str) -> Vec<(i64, i64)> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
        })
        .collect()
}

/// Records of the raw topic `topic` the processor's group has not committed yet, on the mock.
fn mock_lag(mock: &MockCluster<'static, DefaultProducerContext>, topic: &str) -> i64 {
    let consumer = reader(mock, APPLICATION_ID);
    let ends = watermarks(&consumer, topic);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(|p| {
            let done = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            ends[p as usize].1 - done
        })
        .sum()
}

/// Every record of `topic` on the mock, partition by partition, from the start to the
/// current end.
fn mock_read_all(
    mock: &MockCluster<'static, DefaultProducerContext>,
    topic: &str,
) -> Vec<RawRecord> {
    let consumer = reader(mock, "test-reader");
    let mut out = Vec::new();
    for (p, (low, high)) in watermarks(&consumer, topic).into_iter().enumerate() {
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p as i32, Offset::Offset(low))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "gave up reading {topic}/{p}");
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
                        partition: p as i32,
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

/// Polls `check` until it returns true; panics with `what` after `limit` (a safety net for a
/// hung test, not a performance assertion).
pub(crate) async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
