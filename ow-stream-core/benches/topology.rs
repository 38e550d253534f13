//! Throughput of a count topology (`stream → group_by_key → count → to`) run by the
//! broker-free [`TopologyTestDriver`], in records/s, with the store in memory and in redb
//! files (persistent).
//!
//! Each record goes through the whole topology: decode (string key, string value), count
//! (store read, store write, changelog record), encode the count and write it to the output
//! topic. Keys cycle over 1000 distinct values. By default the driver commits after every
//! record, as Kafka Streams' test driver does, so the persistent store pays one redb commit per
//! record: that is the driver's default, not the runtime's (which commits every
//! `commit_interval`). The `commit-every-1000` rows set `TestDriverConfig::commit_every` to
//! 1000 records (and commit once more at the end, inside the measurement): one redb transaction
//! per 1000 records. Keys cycle in order, so each commit window holds every key once and the
//! record cache collapses nothing: every record still gives one count.
//!
//! A fresh driver is built for each batch of iterations, outside the measurement, because the
//! driver keeps every record written in memory.
//!
//! Run: `cargo bench -p ow-stream-core --bench topology -- --warm-up-time 1 --measurement-time 5`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{StreamsBuilder, Topic, Topology};

/// Distinct keys.
const KEYS: u64 = 1000;

fn events() -> Topic<String, String> {
    Topic::new("events", StringSerde, StringSerde)
}

fn counts() -> Topic<String, i64> {
    Topic::new("counts-out", StringSerde, JsonSerde::new())
}

fn count_topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(&events())
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&counts());
    builder.build().expect("the count topology builds")
}

/// Pipes `iters` records through a fresh driver; returns the time the piping took.
fn run(config: &TestDriverConfig, keys: &[String], iters: u64) -> Duration {
    let driver = TopologyTestDriver::with_config(count_topology(), config.clone())
        .unwrap_or_else(|e| panic!("cannot create the test driver: {e}"));
    let input = driver.input_topic(&events());
    let output = driver.output_topic(&counts());
    let value = "v".repeat(100);
    let start = Instant::now();
    for i in 0..iters {
        let key = keys[(i % KEYS) as usize].clone();
        input
            .pipe_input_at(key, value.clone(), i as i64)
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
    }
    driver
        .commit()
        .unwrap_or_else(|e| panic!("the last commit failed: {e}"));
    let elapsed = start.elapsed();
    assert_eq!(output.queue_size() as u64, iters, "one count per record");
    elapsed
}

fn topology(c: &mut Criterion) {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("player-{k:04}")).collect();
    let mut group = c.benchmark_group("topology/count");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for (name, config) in [
        ("in-memory", TestDriverConfig::default()),
        (
            "persistent",
            TestDriverConfig::default().with_persistent_stores(),
        ),
        (
            "in-memory/commit-every-1000",
            TestDriverConfig::default().with_commit_every(1000),
        ),
        (
            "persistent/commit-every-1000",
            TestDriverConfig::default()
                .with_persistent_stores()
                .with_commit_every(1000),
        ),
    ] {
        group.bench_function(name, |b| b.iter_custom(|iters| run(&config, &keys, iters)));
    }
    group.finish();
}

criterion_group!(benches, topology);
criterion_main!(benches);
