//! Page views per user per minute: a windowed count with Avro values.
//!
//! What it shows:
//! - Avro values in the Confluent wire format, with schemas in the in-process `mock://`
//!   schema registry ([`SchemaRegistry::mock`], [`AvroSerde::from_avsc`]);
//! - event time: each view is produced with its own timestamp, and windows follow those
//!   timestamps, not the clock;
//! - 1-minute tumbling windows with a 10-second grace period: a view up to 10 s late still
//!   counts, a later one is dropped (and counted in the `late_records_dropped` metric);
//! - [`EmitStrategy::OnWindowClose`]: one final record per user and minute, written when the
//!   window closes (stream time past its end plus the grace period), not one per update;
//! - the results read back with the typed consumer, decoded from Avro, and printed.
//!
//! The Kafka cluster is librdkafka's in-process mock cluster, so nothing needs to be
//! installed; every topic is created up front (the mock cannot create topics on request).
//! The input topic has one partition: stream time advances per partition, and one partition
//! lets the example's last view close every earlier window.
//!
//! Run: `cargo run -p ow-stream-core --example page_views` (about 10 seconds, most of it the
//! mock's 3-second wait before each new consumer group's first rebalance).

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ow_stream_core::admin::Admin;
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::dsl::{EmitStrategy, Materialized, TimeWindows};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{AvroSerde, StringSerde};
use ow_stream_core::{Record, StreamsBuilder, Topic, Topology};
use rdkafka::mocking::MockCluster;
use serde::{Deserialize, Serialize};

/// The application id.
const APP: &str = "page-views";

/// 2024-01-01T12:00:00Z, in milliseconds.
const T0: i64 = 1_704_110_400_000;

/// One page view (the value of the input topic, keyed by user).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "PageView")]
struct PageView {
    user: String,
    page: String,
    viewed_at: i64,
}

const PAGE_VIEW_AVSC: &str = r#"{
  "type": "record", "name": "PageView", "namespace": "example",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "viewed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}"#;

/// The views of one user in one minute (the value of the output topic, keyed by user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "UserMinuteViews")]
pub(crate) struct UserMinuteViews {
    pub(crate) user: String,
    pub(crate) window_start: i64,
    pub(crate) window_end: i64,
    pub(crate) views: i64,
}

const USER_MINUTE_VIEWS_AVSC: &str = r#"{
  "type": "record", "name": "UserMinuteViews", "namespace": "example",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "window_start", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "window_end", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "views", "type": "long"}
  ]
}"#;

/// The views the example produces, in this order: (user, page, seconds after 12:00:00).
const VIEWS: &[(&str, &str, i64)] = &[
    ("alice", "/home", 5),
    ("bob", "/home", 10),
    ("alice", "/heroes", 20),
    ("carol", "/home", 30),
    ("alice", "/heroes/ana", 50),
    ("alice", "/home", 65),
    // 7 s late: stream time is 12:01:05, and 12:00–12:01 accepts views until 12:01:10.
    ("alice", "/stats", 58),
    ("bob", "/heroes", 70),
    // Stream time passes 12:01:10: the 12:00 window closes and is emitted.
    ("bob", "/stats", 80),
    // 35 s late, after its window closed: dropped.
    ("carol", "/stats", 45),
    ("bob", "/home", 95),
    ("carol", "/heroes", 125),
    // Stream time 12:03:20 closes the 12:01 and 12:02 windows (12:03 stays open).
    ("dave", "/home", 200),
];

/// The input and output topics, with Avro values.
struct Topics {
    /// `page-view-events`: views keyed by user.
    views: Topic<String, PageView>,
    /// `views-per-minute`: one record per user and closed window.
    per_minute: Topic<String, UserMinuteViews>,
}

impl Topics {
    /// The topics, with serdes taking schema ids from `registry`.
    fn new(registry: &SchemaRegistry) -> Result<Topics, Box<dyn Error>> {
        Ok(Topics {
            views: Topic::new(
                "page-view-events",
                StringSerde,
                AvroSerde::<PageView>::from_avsc(registry, PAGE_VIEW_AVSC)?,
            ),
            per_minute: Topic::new(
                "views-per-minute",
                StringSerde,
                AvroSerde::<UserMinuteViews>::from_avsc(registry, USER_MINUTE_VIEWS_AVSC)?,
            ),
        })
    }
}

/// Views per user in 1-minute tumbling windows, emitted when each window closes.
fn topology(
    views: &Topic<String, PageView>,
    per_minute: &Topic<String, UserMinuteViews>,
) -> Result<Topology, Box<dyn Error>> {
    let builder = StreamsBuilder::new();
    builder
        .stream(views)
        // Already keyed by user: no repartition needed.
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .emit(EmitStrategy::OnWindowClose)
        .count(Materialized::as_("views-per-minute"))
        .to_stream()
        .map(|windowed, views| {
            let value = UserMinuteViews {
                user: windowed.key.clone(),
                window_start: windowed.window.start,
                window_end: windowed.window.end,
                views,
            };
            (windowed.key, value)
        })
        .to(per_minute);
    Ok(builder.build()?)
}

/// `HH:MM` (UTC) of a time in milliseconds.
fn clock(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Runs the example; returns the windows emitted, in the order they were written per user.
pub(crate) async fn run() -> Result<Vec<UserMinuteViews>, Box<dyn Error>> {
    let cluster = MockCluster::new(1)?;
    for (topic, partitions) in [
        ("page-view-events", 1),
        ("views-per-minute", 1),
        ("page-views-views-per-minute-changelog", 1),
        ("page-views-dlq", 1),
    ] {
        cluster.create_topic(topic, partitions, 1)?;
    }
    let state = tempfile::tempdir()?;
    let config = StreamsConfig::new(APP, Backend::kafka(cluster.bootstrap_servers()))
        .with_state_dir(state.path())
        .with_commit_interval(Duration::from_millis(100))
        .with_kafka_setting("session.timeout.ms", "6000")
        .with_kafka_setting("heartbeat.interval.ms", "500");

    // Every handle on `mock://page-views-example` in this process shares one registry: the
    // producer registers the writer schema, the application and the reader find it by id.
    let registry = SchemaRegistry::mock("page-views-example");
    let Topics { views, per_minute } = Topics::new(&registry)?;

    let producer = Producer::new(&config)?;
    for (user, page, seconds) in VIEWS {
        let viewed_at = T0 + seconds * 1000;
        let view = PageView {
            user: user.to_string(),
            page: page.to_string(),
            viewed_at,
        };
        // The record's timestamp is the view's time: windows follow event time.
        producer
            .send_record(&views, &Record::new(user.to_string(), view, viewed_at))
            .await?;
    }
    producer.flush().await?;
    println!("produced {} page views to `{}`", VIEWS.len(), views.name());

    let mut streams = Streams::new(topology(&views, &per_minute)?, config.clone())?;
    streams.start().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while streams.metrics().records_consumed < VIEWS.len() as u64 {
        if let Some(failure) = streams.failure() {
            return Err(format!("the application failed: {failure}").into());
        }
        if Instant::now() > deadline {
            return Err("the views were not all processed within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = streams.metrics();
    streams.close().await?;
    println!(
        "processed {} views; dropped as too late (after their window closed): {}",
        metrics.records_consumed, metrics.late_records_dropped
    );

    let windows = read_to_end(&config, &per_minute).await?;
    println!("views per user and minute (closed windows only):");
    for w in &windows {
        println!(
            "  {}–{}  {:<6} {} view{}",
            clock(w.window_start),
            clock(w.window_end),
            w.user,
            w.views,
            if w.views == 1 { "" } else { "s" }
        );
    }
    Ok(windows)
}

/// Every value of `topic` up to its current end, decoded, with a new consumer group.
async fn read_to_end(
    config: &StreamsConfig,
    topic: &Topic<String, UserMinuteViews>,
) -> Result<Vec<UserMinuteViews>, Box<dyn Error>> {
    let admin = Admin::new(config)?;
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for t in admin.topic_offsets(&[topic.name()]).await? {
        for p in t.partitions.iter().filter(|p| p.end > p.start) {
            remaining.insert(p.partition, p.end);
        }
    }
    let consumer = Consumer::subscribe(config, "page-views-reader", topic)?;
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| format!("no record from {} within 30 s", topic.name()))?
            .ok_or("the consumer stopped")??;
        let (partition, offset) = (next.metadata.partition, next.metadata.offset);
        if remaining
            .get(&partition)
            .is_some_and(|end| offset + 1 >= *end)
        {
            remaining.remove(&partition);
        }
        out.push(next.record.value);
        // At-least-once: committed once the record is in the result.
        consumer.commit(&next.metadata)?;
    }
    // Commits what was read for good and leaves the group.
    consumer.close().await?;
    Ok(out)
}

#[allow(dead_code)] // The integration test includes this file and calls `run` only.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("page_views failed: {e}");
            ExitCode::FAILURE
        }
    }
}
