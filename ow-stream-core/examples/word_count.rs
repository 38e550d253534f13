//! Word count on Kafka: the "hello world" of stream processing, end to end.
//!
//! What it shows:
//! - a topology written with the DSL: lines → words (`flat_map_values`) → `group_by` the word
//!   (through the repartition topic `word-count-words-repartition`) → `count` into the store
//!   `counts` (backed by the changelog `word-count-counts-changelog`) → the topic `word-counts`;
//! - producing the input with the typed [`Producer`];
//! - running it with [`Streams`] and asking the running application for a count (an
//!   interactive query on the store);
//! - reading the results back with the typed [`Consumer`], then closing everything cleanly.
//!
//! The Kafka cluster is librdkafka's in-process mock cluster (the real protocol on loopback),
//! so nothing needs to be installed or started. The mock cannot create topics on request, so
//! the example creates every topic the application needs up front, internal ones included:
//! on a real cluster `Streams::start` creates the internal topics itself.
//!
//! Run: `cargo run -p ow-stream-core --example word_count` (about 10 seconds, most of it the
//! mock's 3-second wait before a new consumer group's first rebalance, once for the
//! application and once for the reader, as on a broker; set `RUST_LOG=info` to see the
//! library's logs).

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ow_stream_core::admin::Admin;
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use rdkafka::mocking::MockCluster;

/// The application id: the consumer group and the prefix of the internal topics.
const APP: &str = "word-count";

/// What the example writes to its input topic, one record per line.
pub(crate) const LINES: &[&str] = &[
    "the quick brown fox jumps over the lazy dog",
    "The dog barks",
    "a fox is quick and a dog is lazy",
    "the end",
];

/// The input: lines of text keyed by line number.
fn lines_topic() -> Topic<String, String> {
    Topic::new("lines", StringSerde, StringSerde)
}

/// The output: the latest count of each word, keyed by the word.
fn counts_topic() -> Topic<String, i64> {
    Topic::new("word-counts", StringSerde, JsonSerde::new())
}

/// The word-count topology.
fn topology() -> Result<Topology, Box<dyn Error>> {
    let builder = StreamsBuilder::new();
    builder
        .stream(&lines_topic())
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        // The new key is the word: records go through a repartition topic so that all the
        // records of a word are counted by one task.
        .group_by(
            |_line_number, word| word.clone(),
            Grouped::as_("words")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&counts_topic());
    Ok(builder.build()?)
}

/// Runs the example; returns the final count of each word, as read from the output topic.
pub(crate) async fn run() -> Result<BTreeMap<String, i64>, Box<dyn Error>> {
    // An in-process Kafka cluster with one broker, alive until the end of this function.
    let cluster = MockCluster::new(1)?;
    let partitions = 2;
    for (topic, partitions) in [
        ("lines", partitions),
        ("word-counts", partitions),
        // The internal topics the application would create on a real cluster.
        ("word-count-words-repartition", partitions),
        ("word-count-counts-changelog", partitions),
        ("word-count-dlq", 1),
    ] {
        cluster.create_topic(topic, partitions, 1)?;
    }
    let state = tempfile::tempdir()?;
    let config = StreamsConfig::new(APP, Backend::kafka(cluster.bootstrap_servers()))
        .with_state_dir(state.path())
        .with_commit_interval(Duration::from_millis(100))
        // Quicker group membership than the defaults, for a short-lived example.
        .with_kafka_setting("session.timeout.ms", "6000")
        .with_kafka_setting("heartbeat.interval.ms", "500");

    let topology = topology()?;

    // Produce the lines with the typed producer: it encodes with the topic's serdes.
    let producer = Producer::new(&config)?;
    for (n, line) in LINES.iter().enumerate() {
        producer
            .send(&lines_topic(), &format!("line-{n}"), &line.to_string())
            .await?;
    }
    producer.flush().await?;
    let words: usize = LINES.iter().map(|l| l.split_whitespace().count()).sum();
    println!("produced {} lines ({words} words) to `lines`", LINES.len());

    let mut streams = Streams::new(topology, config.clone())?;
    // The topology, with the internal topic names resolved for this application.
    println!("{}", streams.describe());
    streams.start().await?;

    // Interactive query: the `counts` store of the running application, until every word is
    // counted.
    let store = streams.key_value_store::<String, i64>("counts")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(failure) = streams.failure() {
            return Err(format!("the application failed: {failure}").into());
        }
        let counted: i64 = store.all()?.iter().map(|(_, n)| n).sum();
        if counted == words as i64 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {counted} of {words} words counted after 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "interactive query: count of \"the\" = {:?}",
        store.get(&"the".to_string())?
    );
    let metrics = streams.metrics();
    println!(
        "metrics: {} records consumed (lines and repartitioned words), {} produced \
         (words, counts and changelog records)",
        metrics.records_consumed, metrics.records_produced
    );
    // Close: the application commits and leaves its group.
    streams.close().await?;

    // Read `word-counts` back with a typed consumer, up to its current end.
    let counts = read_to_end(&config, &counts_topic()).await?;
    println!("word-counts (latest record per word):");
    let mut by_count: Vec<_> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (word, count) in by_count {
        println!("  {word:<6} {count}");
    }
    Ok(counts)
}

/// Reads every record of `topic` with a new consumer group, up to the end offsets it has now;
/// returns the latest value per key.
async fn read_to_end(
    config: &StreamsConfig,
    topic: &Topic<String, i64>,
) -> Result<BTreeMap<String, i64>, Box<dyn Error>> {
    let admin = Admin::new(config)?;
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for t in admin.topic_offsets(&[topic.name()]).await? {
        for p in t.partitions.iter().filter(|p| p.end > p.start) {
            remaining.insert(p.partition, p.end);
        }
    }
    let consumer = Consumer::subscribe(config, "word-count-reader", topic)?;
    let mut latest = BTreeMap::new();
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
        latest.insert(next.record.key, next.record.value);
        // At-least-once: committed once the record is in the result.
        consumer.commit(&next.metadata)?;
    }
    // Commits what was read for good and leaves the group.
    consumer.close().await?;
    Ok(latest)
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
            eprintln!("word_count failed: {e}");
            ExitCode::FAILURE
        }
    }
}
