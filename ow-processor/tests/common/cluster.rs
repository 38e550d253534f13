//! librdkafka's mock cluster, set up for the processor: its topics, a producer of raw events,
//! readers of the output topics, and the consumer group's lag.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ow_processor::{
    APPLICATION_ID, DAILY_STORE, PROFILE_STORE, Processor, ProcessorConfig, SNAPSHOT_STORE, Topics,
};
use ow_stream_core::client::Producer;
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::{Headers, RawRecord, Record};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::pipeline::Outputs;
use super::stream::StreamEvent;

/// Partitions of the raw topic, the outputs and the changelogs.
pub(crate) const PARTITIONS: i32 = 4;

/// An in-process Kafka cluster speaking the real protocol on loopback, with the processor's
/// topics created (the mock cluster cannot create topics on request).
pub(crate) struct Cluster {
    /// Declared first: dropped before the cluster it talks to.
    producer: Producer,
    pub(crate) mock: MockCluster<'static, DefaultProducerContext>,
    pub(crate) topics: Topics,
    pub(crate) registry: SchemaRegistry,
}

impl Cluster {
    /// A cluster with the raw topic, the four outputs, the three changelogs and the
    /// dead-letter topic; schemas in a registry of its own.
    pub(crate) fn new(registry: SchemaRegistry) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let mock = MockCluster::new(1).expect("mock cluster");
        let topics = Topics::new(&registry, "").unwrap();
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
        let config = StreamsConfig::new("test-producer", Backend::kafka(mock.bootstrap_servers()))
            .with_kafka_setting("compression.type", "zstd");
        let producer = Producer::new(&config).unwrap();
        Cluster {
            mock,
            topics,
            registry,
            producer,
        }
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.mock.bootstrap_servers()
    }

    /// Settings for a client of this cluster: zstd compression (raw bodies and outputs stay far
    /// below the mock's 5 MiB per partition), quick commits and failure detection.
    pub(crate) fn streams_config(&self, app: &str, state_dir: &Path) -> StreamsConfig {
        StreamsConfig::new(app, Backend::kafka(self.bootstrap()))
            .with_state_dir(state_dir)
            .with_commit_interval(Duration::from_millis(100))
            .with_kafka_setting("compression.type", "zstd")
            .with_kafka_setting("session.timeout.ms", "3000")
            .with_kafka_setting("heartbeat.interval.ms", "300")
            .with_kafka_setting("fetch.wait.max.ms", "20")
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
        for chunk in events.chunks(64) {
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

    fn reader(&self, group: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader")
    }

    /// `(low, high)` watermarks of every partition of `topic`.
    fn watermarks(&self, consumer: &BaseConsumer, topic: &str) -> Vec<(i64, i64)> {
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

    /// Raw records the processor's group has not committed yet (over every partition).
    pub(crate) fn lag(&self) -> i64 {
        let consumer = self.reader(APPLICATION_ID);
        let topic = self.topics.raw.name();
        let ends = self.watermarks(&consumer, topic);
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

    /// Every record of `topic`, partition by partition, from the start to the current end.
    pub(crate) fn read_all(&self, topic: &str) -> Vec<RawRecord> {
        let consumer = self.reader("test-reader");
        let mut out = Vec::new();
        for (p, (low, high)) in self.watermarks(&consumer, topic).into_iter().enumerate() {
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

    /// What the processor wrote to the output topics so far.
    pub(crate) fn outputs(&self) -> Outputs {
        Outputs::decode(&self.topics, |topic| self.read_all(topic))
    }

    /// The highest first offset over the partitions of `topic` (0 when the mock's retention
    /// dropped nothing), and the bytes of its fullest partition (keys, values and headers,
    /// uncompressed: an upper bound of what the mock stores, as records are written
    /// zstd-compressed).
    pub(crate) fn partition_usage(&self, topic: &str) -> (i64, usize) {
        let consumer = self.reader("test-reader");
        let first = self
            .watermarks(&consumer, topic)
            .into_iter()
            .map(|(low, _)| low)
            .max()
            .unwrap_or(0);
        let mut sizes = vec![0usize; PARTITIONS as usize];
        for r in self.read_all(topic) {
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

/// Polls `check` until it returns true; panics with `what` after `limit` (a safety net for a
/// hung test, not a performance assertion).
pub(crate) async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
