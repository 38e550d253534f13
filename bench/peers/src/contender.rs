//! The Rust contenders: ow-stream on either backend for workloads (a)–(c), and the raw
//! rdkafka consumers that set the ceiling. Each reads its input from offset zero, stops by
//! itself once it has consumed `expect` records, commits, and reports on stdout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ow_processor::{ProcessorConfig, TopologyOptions};
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::Materialized;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::{BytesSerde, JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message};
use serde::Serialize;

use crate::{BenchError, workload};

/// The keyed input topic of workloads (a) and (b).
pub const INPUT: &str = "bench.input";
/// Output of workload (a).
pub const MAP_FILTER_OUT: &str = "bench.map-filter";
/// Output of workload (b).
pub const COUNT_OUT: &str = "bench.counts";
/// The store of workload (b).
pub const COUNT_STORE: &str = "counts";

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Workload {
    /// (a) stateless map + filter.
    #[value(name = "a")]
    MapFilter,
    /// (b) keyed count into a persistent store with a changelog.
    #[value(name = "b")]
    Count,
    /// (c) the ow-processor topology on OverFast events.
    #[value(name = "c")]
    OverFast,
}

/// What a contender reports when it is done.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Report {
    /// Records consumed.
    pub records: u64,
    /// Milliseconds from the contender's start to its first record consumed.
    pub first_record_ms: f64,
    /// Milliseconds from the contender's start to its `bulk`-th record consumed.
    pub bulk_ms: f64,
    /// Sum of the decoded indices (raw decoding consumer), for the correctness check.
    pub checksum: Option<u64>,
}

fn keyed_input() -> Topic<String, Vec<u8>> {
    Topic::new(INPUT, StringSerde, BytesSerde)
}

/// Workload (a) or (b) as a user would write it on the public API.
pub fn topology(workload: Workload) -> Result<Topology, BenchError> {
    let b = StreamsBuilder::new();
    let input = b.stream(&keyed_input());
    match workload {
        Workload::MapFilter => {
            input
                .flat_map_values(|v: Vec<u8>| workload::map_filter(&v))
                .to(&Topic::new(MAP_FILTER_OUT, StringSerde, BytesSerde));
        }
        Workload::Count | Workload::OverFast => {
            input
                .group_by_key()
                .count(Materialized::as_(COUNT_STORE).persistent())
                .to_stream()
                .to(&Topic::new(COUNT_OUT, StringSerde, JsonSerde::<i64>::new()));
        }
    }
    Ok(b.build()?)
}

/// Polls `consumed` until it reaches `expect`; returns the times to the first record and to
/// the `bulk`-th, in milliseconds.
async fn wait_consumed(
    started: Instant,
    bulk: u64,
    expect: u64,
    mut consumed: impl FnMut() -> u64,
    failure: impl Fn() -> Option<String>,
) -> Result<(f64, f64), BenchError> {
    let mut first = None;
    let mut bulk_at = None;
    loop {
        let n = consumed();
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        if first.is_none() && n > 0 {
            first = Some(ms());
        }
        if bulk_at.is_none() && n >= bulk {
            bulk_at = Some(ms());
        }
        if n >= expect {
            return Ok((first.unwrap_or(0.0), bulk_at.unwrap_or(0.0)));
        }
        if let Some(reason) = failure() {
            return Err(BenchError::Contender { reason });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs ow-stream on `config` until it has consumed `expect` records, then closes it (the final
/// commit included).
pub async fn ow_stream(
    workload: Workload,
    config: StreamsConfig,
    bulk: u64,
    expect: u64,
    registry_dir: Option<PathBuf>,
) -> Result<Report, BenchError> {
    let started = Instant::now();
    if workload == Workload::OverFast {
        let dir = registry_dir.ok_or_else(|| BenchError::Input {
            what: "--registry-dir".into(),
            reason: "workload c needs the schema registry directory".into(),
        })?;
        let mut pc = ProcessorConfig::new(config)
            .with_topology_options(TopologyOptions::default())
            .with_registry(SchemaRegistry::open_dir(dir)?);
        pc.streams.application_id = ow_processor::APPLICATION_ID.into();
        let processor = ow_processor::start(pc).await?;
        let streams = processor.streams();
        let (first, bulk_ms) = wait_consumed(
            started,
            bulk,
            expect,
            || streams.metrics().records_consumed,
            || streams.failure(),
        )
        .await?;
        let records = streams.metrics().records_consumed;
        processor.close().await?;
        return Ok(Report {
            records,
            first_record_ms: first,
            bulk_ms,
            checksum: None,
        });
    }
    let mut streams = ow_stream_core::Streams::new(topology(workload)?, config)?;
    streams.start().await?;
    let (first, bulk_ms) = wait_consumed(
        started,
        bulk,
        expect,
        || streams.metrics().records_consumed,
        || streams.failure(),
    )
    .await?;
    let records = streams.metrics().records_consumed;
    streams.close().await?;
    Ok(Report {
        records,
        first_record_ms: first,
        bulk_ms,
        checksum: None,
    })
}

/// A raw rdkafka consumer of `topic` in group `group`: counts records (and with `decode`,
/// parses each value's index into a checksum), commits every `commit_interval`, stops after
/// `expect` records with a synchronous commit.
pub fn raw(
    brokers: &str,
    group: &str,
    topic: &str,
    bulk: u64,
    expect: u64,
    decode: bool,
    commit_interval: Duration,
) -> Result<Report, BenchError> {
    let started = Instant::now();
    let mut bulk_ms = None;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kafka)?;
    consumer.subscribe(&[topic]).map_err(kafka)?;
    let mut records = 0u64;
    let mut checksum = 0u64;
    let mut first = None;
    let mut last_commit = Instant::now();
    while records < expect {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => return Err(kafka(e)),
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
                records += 1;
                if records == bulk {
                    bulk_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
                if decode {
                    let key_ok = m.key().and_then(|k| std::str::from_utf8(k).ok()).is_some();
                    match m.payload().and_then(workload::index_of) {
                        Some(i) if key_ok => checksum = checksum.wrapping_add(i),
                        _ => {
                            return Err(BenchError::Contender {
                                reason: format!(
                                    "record at {}:{} does not decode",
                                    m.partition(),
                                    m.offset()
                                ),
                            });
                        }
                    }
                }
            }
        }
        if last_commit.elapsed() >= commit_interval {
            match consumer.commit_consumer_state(CommitMode::Async) {
                Ok(()) | Err(rdkafka::error::KafkaError::ConsumerCommit(_)) => {}
                Err(e) => return Err(kafka(e)),
            }
            last_commit = Instant::now();
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .map_err(kafka)?;
    Ok(Report {
        records,
        first_record_ms: first.unwrap_or(0.0),
        bulk_ms: bulk_ms.unwrap_or(0.0),
        checksum: decode.then_some(checksum),
    })
}

pub(crate) fn kafka(e: rdkafka::error::KafkaError) -> BenchError {
    BenchError::Kafka {
        reason: e.to_string(),
    }
}
