//! Helpers shared by the integration tests (each test file uses some of them).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ow_domain::battletag::PlayerId;
use ow_domain::{PlayerRequest, RawPlayerProfile, RequestOrigin};
use ow_producer::fixture_server::FixtureServer;
use ow_producer::overfast::{ClientConfig, OverfastClient, Source};
use ow_producer::topics::Topics;
use ow_producer::{ProducerConfig, ProducerHandle, TrackingConfig};
use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::{Consumer, Delivered, Producer};
use ow_stream_core::config::{Backend, LocalFsync, LocalOptions, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::BytesSerde;
use ow_stream_core::{Headers, RawRecord, Topic};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A player id the test knows is valid.
pub(crate) fn id(text: &str) -> PlayerId {
    PlayerId::parse(text).expect("test player ids are valid")
}

/// The repository's `samples/overfast/`.
pub(crate) fn samples() -> PathBuf {
    FixtureServer::samples_dir()
}

/// A sample file's bytes, as text.
pub(crate) fn sample(file: &str) -> String {
    std::fs::read_to_string(samples().join(file)).expect("the sample exists")
}

/// A client of `server` with the default settings changed by `tweak`.
pub(crate) fn client(
    server: &FixtureServer,
    tweak: impl FnOnce(&mut ClientConfig),
) -> OverfastClient {
    let mut config =
        ClientConfig::new(Source::parse(&server.url()).expect("the server url parses"));
    tweak(&mut config);
    OverfastClient::new(config).expect("the test config is valid")
}

/// A replay client of `dir`.
pub(crate) fn replay_client(dir: impl Into<PathBuf>) -> OverfastClient {
    OverfastClient::new(ClientConfig::new(Source::replay(dir))).expect("the replay dir exists")
}

/// A small public profile body (OverFast's shape, a few bytes).
pub(crate) fn small_profile(name: &str) -> String {
    format!(
        r#"{{"summary":{{"username":"{name}","avatar":null}},"stats":{{"pc":{{"quickplay":{{"heroes_comparisons":{{}},"career_stats":{{}}}}}}}}}}"#
    )
}

/// The fixture server with the repository's samples.
pub(crate) async fn samples_server() -> FixtureServer {
    FixtureServer::with_samples()
        .await
        .expect("the fixture server starts")
}

/// Polls `check` until it returns true; panics with `what` after `limit` (a safety net for a
/// hung test, not a performance assertion).
pub(crate) async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] with an asynchronous check.
pub(crate) async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Safety net for waits in the Kafka-path tests.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Where a test's topics live.
enum Place {
    /// librdkafka's mock cluster: the real Kafka protocol on loopback.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// The library's durable local log.
    Local(tempfile::TempDir),
}

/// A test's topics and schema registry, on the mock cluster or the local log.
pub(crate) struct Env {
    place: Place,
    /// An in-process registry of the test's own.
    pub(crate) registry: SchemaRegistry,
    /// The producer's topics over that registry.
    pub(crate) topics: Topics,
    writer: Producer,
}

/// A raw event read back, decoded.
#[derive(Debug)]
pub(crate) struct RawEvent {
    pub(crate) key: String,
    pub(crate) event: RawPlayerProfile,
    pub(crate) headers: Headers,
}

impl RawEvent {
    /// Every value of the header `name`, in order.
    pub(crate) fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| v.map(|v| String::from_utf8_lossy(v).into_owned()))
            .collect()
    }
}

impl Env {
    /// The mock cluster, with the requests topic in `request_partitions` partitions.
    pub(crate) async fn mock(request_partitions: i32) -> Env {
        init_tracing();
        let mock = MockCluster::new(1).expect("mock cluster");
        for (topic, partitions) in [
            (ow_domain::topics::PLAYER_REQUESTS, request_partitions),
            (ow_domain::topics::RAW_PLAYER_PROFILES, 2),
            ("ow-producer-dlq", 1),
        ] {
            mock.create_topic(topic, partitions, 1)
                .expect("create topic");
        }
        Env::new(Place::Mock(mock)).await
    }

    /// The local log, with the requests topic in `request_partitions` partitions.
    pub(crate) async fn local(request_partitions: i32) -> Env {
        init_tracing();
        let env = Env::new(Place::Local(tempfile::tempdir().unwrap())).await;
        let admin = Admin::new(&env.streams("admin", Path::new("."))).unwrap();
        admin
            .create_topics(&[
                TopicSpec::new(ow_domain::topics::PLAYER_REQUESTS, request_partitions),
                TopicSpec::new(ow_domain::topics::RAW_PLAYER_PROFILES, 2),
            ])
            .await
            .unwrap();
        env
    }

    async fn new(place: Place) -> Env {
        let registry = SchemaRegistry::mock(&format!("producer-test-{}", rand::random::<u64>()));
        let topics = Topics::new(&registry, "").unwrap();
        let streams = streams_config(&place, "test-writer", Path::new("."));
        let writer = Producer::new(&streams).unwrap();
        Env {
            place,
            registry,
            topics,
            writer,
        }
    }

    /// Whether the topics are on the mock cluster.
    pub(crate) fn is_mock(&self) -> bool {
        matches!(self.place, Place::Mock(_))
    }

    /// Streams settings for `app` with state in `state_dir`.
    pub(crate) fn streams(&self, app: &str, state_dir: &Path) -> StreamsConfig {
        streams_config(&self.place, app, state_dir)
    }

    /// A producer configuration asking `server`, politely but quickly, with a schedule that
    /// looks for due players every 20 ms.
    pub(crate) fn producer_config(
        &self,
        server: &FixtureServer,
        state_dir: &Path,
    ) -> ProducerConfig {
        let mut client = ClientConfig::new(Source::parse(&server.url()).unwrap());
        client.rate_per_second = 1000.0;
        client.burst = 100;
        client.concurrency = 8;
        client.timeout = Duration::from_secs(10);
        client.max_attempts = 2;
        client.backoff_base = Duration::from_millis(10);
        client.backoff_max = Duration::from_millis(50);
        ProducerConfig::new(self.streams(ow_producer::APPLICATION_ID, state_dir), client)
            .with_registry(self.registry.clone())
            .with_tracking(TrackingConfig::default().with_check_interval(Duration::from_millis(20)))
            .with_shutdown_grace(Duration::from_secs(5))
    }

    /// Writes a request for `player`.
    pub(crate) async fn request(
        &self,
        player: &str,
        request_id: &str,
        origin: RequestOrigin,
        requested_at: i64,
    ) -> Delivered {
        let request = PlayerRequest {
            request_id: request_id.into(),
            player_id: player.into(),
            requested_at,
            origin,
        };
        self.writer
            .send(&self.topics.requests, &player.to_string(), &request)
            .await
            .unwrap()
    }

    /// Writes a search request for `player` (its id is `search-<player>`) stamped now.
    pub(crate) async fn search(&self, player: &str) -> Delivered {
        let now = ow_producer::clock::Clock::now_ms(&ow_producer::clock::SystemClock);
        self.request(
            player,
            &format!("search-{player}"),
            RequestOrigin::Search,
            now,
        )
        .await
    }

    /// Writes bytes to the requests topic as they are.
    pub(crate) async fn request_bytes(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Delivered {
        self.writer
            .send_raw(
                ow_domain::topics::PLAYER_REQUESTS,
                key,
                value,
                1_700_000_000_000,
                &Headers::new().with("trace", "t-1"),
            )
            .await
            .unwrap()
    }

    /// Every raw event written so far, decoded, by (key, fetched_at).
    pub(crate) async fn raw_events(&self) -> Vec<RawEvent> {
        let mut out: Vec<RawEvent> = self
            .read_all(ow_domain::topics::RAW_PLAYER_PROFILES)
            .await
            .into_iter()
            .map(|r| RawEvent {
                key: self
                    .topics
                    .raw
                    .deserialize_key(r.key.as_deref().unwrap())
                    .unwrap(),
                event: self
                    .topics
                    .raw
                    .deserialize_value(r.value.as_deref().unwrap())
                    .unwrap(),
                headers: r.headers,
            })
            .collect();
        out.sort_by(|a, b| (&a.key, a.event.fetched_at).cmp(&(&b.key, b.event.fetched_at)));
        out
    }

    /// Raw events per key.
    pub(crate) async fn raw_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in self.raw_events().await {
            *counts.entry(e.key).or_default() += 1;
        }
        counts
    }

    /// Every record of the dead-letter topic.
    pub(crate) async fn dead_letters(&self) -> Vec<RawRecord> {
        self.read_all("ow-producer-dlq").await
    }

    /// The committed offsets of `group` on the requests topic, by partition.
    pub(crate) async fn committed(&self, group: &str) -> Vec<Option<i64>> {
        let admin = Admin::new(&self.streams("admin", Path::new("."))).unwrap();
        admin
            .group_lag(group, &[ow_domain::topics::PLAYER_REQUESTS])
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.committed)
            .collect()
    }

    /// The start and end offsets of the requests topic, by partition.
    pub(crate) async fn request_offsets(&self) -> Vec<(i64, i64)> {
        let admin = Admin::new(&self.streams("admin", Path::new("."))).unwrap();
        admin
            .topic_offsets(&[ow_domain::topics::PLAYER_REQUESTS])
            .await
            .unwrap()
            .into_iter()
            .flat_map(|t| t.partitions)
            .map(|p| (p.start, p.end))
            .collect()
    }

    /// Whether `group` has committed every request written so far (an empty partition needs
    /// no commit).
    pub(crate) async fn all_committed(&self, group: &str) -> bool {
        let committed = self.committed(group).await;
        let offsets = self.request_offsets().await;
        committed.len() == offsets.len()
            && committed
                .iter()
                .zip(&offsets)
                .all(|(c, (start, end))| end <= start || *c == Some(*end))
    }

    /// Waits until the producer's group has committed every request written so far.
    pub(crate) async fn wait_all_committed(&self) {
        wait_until("every request committed", PATIENCE, || {
            self.all_committed(ow_producer::APPLICATION_ID)
        })
        .await;
    }

    /// Every record of `topic` up to its current end, in (partition, offset) order.
    pub(crate) async fn read_all(&self, topic: &str) -> Vec<RawRecord> {
        let config = self.streams("reader", Path::new("."));
        let admin = Admin::new(&config).unwrap();
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
        if remaining.is_empty() {
            return Vec::new();
        }
        let bytes: Topic<Vec<u8>, Vec<u8>> = Topic::new(topic.to_string(), BytesSerde, BytesSerde);
        let group = format!("reader-{}", rand::random::<u64>());
        let consumer = Consumer::subscribe(&config, &group, &bytes).unwrap();
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
        drop(consumer);
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

fn streams_config(place: &Place, app: &str, state_dir: &Path) -> StreamsConfig {
    match place {
        Place::Mock(mock) => StreamsConfig::new(app, Backend::kafka(mock.bootstrap_servers()))
            .with_state_dir(state_dir)
            .with_commit_interval(Duration::from_millis(100))
            .with_kafka_setting("session.timeout.ms", "6000")
            .with_kafka_setting("heartbeat.interval.ms", "500")
            .with_kafka_setting("fetch.wait.max.ms", "20")
            .with_kafka_setting("compression.type", "zstd"),
        Place::Local(dir) => StreamsConfig::new(app, Backend::local(dir.path().join("log")))
            .with_state_dir(state_dir)
            .with_commit_interval(Duration::from_millis(100))
            .with_local_options(LocalOptions::default().with_fsync(LocalFsync::Never)),
    }
}

/// Waits for `n` more schedule passes of `producer` than now. The counter moves at the end of a
/// pass, so with `n >= 2` at least one whole pass began after this call.
pub(crate) async fn wait_passes(producer: &ProducerHandle, n: u64) {
    let start = producer.metrics().schedule_passes;
    wait_for("schedule passes", PATIENCE, || {
        producer.metrics().schedule_passes >= start + n
    })
    .await;
}
