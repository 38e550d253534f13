//! Append and read throughput of `ow-stream-log`, in records/s.
//!
//! Run: `cargo bench -p ow-stream-log -- --warm-up-time 1 --measurement-time 3`
//!
//! - `append/<policy>/<value bytes>B/batch<n>`: one thread appending batches
//!   of `n` records to one partition under each `FsyncPolicy`.
//! - `append_concurrent/always/100B/4threads`: four threads appending single
//!   records to one partition under `Always` (group commit shares fsyncs).
//! - `read/<value bytes>B/batch<n>`: sequential reads of `n` records from a
//!   filled partition (reads do not depend on the fsync policy).
//! - `transaction/<policy>/100B/batch<n>`: one transaction per iteration:
//!   begin, `n` records appended to one partition, a group offset sent,
//!   commit (to compare with `append/<policy>/100B/batch<n>`).
//! - `read_committed/100B/batch<n>`: like `read`, with read_committed
//!   isolation over a partition written by committed transactions.
//!
//! Partitions are bounded with `retention_bytes` and background maintenance
//! so a long run does not fill the disk.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ow_stream_log::{Bytes, FsyncPolicy, Isolation, Log, LogOptions, NewRecord, TopicConfig};

fn topic_config() -> TopicConfig {
    TopicConfig::new(1)
        .with_segment_bytes(32 << 20)
        .with_retention(None)
        .with_retention_bytes(Some(256 << 20))
}

fn open(dir: &std::path::Path, fsync: FsyncPolicy) -> Log {
    let log = Log::open(
        dir,
        LogOptions::default()
            .with_fsync(fsync)
            .with_maintenance_interval(Some(Duration::from_millis(200))),
    )
    .unwrap();
    log.create_topic("bench", topic_config()).unwrap();
    log
}

fn batch(value_size: usize, n: usize) -> Vec<NewRecord> {
    let value = Bytes::from(vec![b'v'; value_size]);
    (0..n)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("key-{i:08}"))),
            value: Some(value.clone()),
            timestamp: 1_700_000_000_000,
            headers: Vec::new(),
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10);
    for (name, policy) in [
        ("always", FsyncPolicy::Always),
        (
            "interval10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("never", FsyncPolicy::Never),
    ] {
        for value_size in [100usize, 10_000] {
            for n in [1usize, 100] {
                let dir = tempfile::tempdir().unwrap();
                let log = open(dir.path(), policy);
                let records = batch(value_size, n);
                g.throughput(Throughput::Elements(n as u64));
                g.bench_function(format!("{name}/{value_size}B/batch{n}"), |b| {
                    b.iter(|| black_box(log.append("bench", 0, &records).unwrap()));
                });
            }
        }
    }
    g.finish();
}

fn append_concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_concurrent");
    g.sample_size(10);
    const THREADS: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Always);
    let records = Arc::new(batch(100, 1));
    g.throughput(Throughput::Elements(THREADS));
    g.bench_function("always/100B/4threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let log = log.clone();
                    let records = Arc::clone(&records);
                    std::thread::spawn(move || {
                        for _ in 0..iters {
                            log.append("bench", 0, &records).unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            start.elapsed()
        });
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(20);
    for (value_size, total) in [(100usize, 200_000i64), (10_000, 20_000)] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), FsyncPolicy::Never);
        // Filled the way producers write: batches of 100.
        let chunk = batch(value_size, 100);
        for _ in 0..total / 100 {
            log.append("bench", 0, &chunk).unwrap();
        }
        for n in [1usize, 100] {
            g.throughput(Throughput::Elements(n as u64));
            let mut next = 0i64;
            g.bench_function(format!("{value_size}B/batch{n}"), |b| {
                b.iter(|| {
                    let recs = log.read("bench", 0, next, n, 64 << 20).unwrap();
                    assert_eq!(recs.len(), n);
                    next = (next + n as i64) % (total - n as i64);
                    black_box(recs)
                });
            });
        }
    }
    g.finish();
}

fn transaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("transaction");
    g.sample_size(10);
    for (name, policy) in [
        ("always", FsyncPolicy::Always),
        ("never", FsyncPolicy::Never),
    ] {
        for n in [1usize, 100] {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path(), policy);
            let mut producer = log.init_transactions("bench").unwrap();
            let records = batch(100, n);
            let mut offset = 0;
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(format!("{name}/100B/batch{n}"), |b| {
                b.iter(|| {
                    offset += 1;
                    producer.begin().unwrap();
                    black_box(producer.append("bench", 0, &records).unwrap());
                    producer
                        .send_offsets("bench-group", &[("bench", 0, offset)])
                        .unwrap();
                    producer.commit().unwrap();
                });
            });
        }
    }
    g.finish();
}

fn read_committed(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_committed");
    g.sample_size(20);
    let total = 200_000i64;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Never);
    let mut producer = log.init_transactions("bench").unwrap();
    let chunk = batch(100, 100);
    for _ in 0..total / 100 {
        producer.begin().unwrap();
        producer.append("bench", 0, &chunk).unwrap();
        producer.commit().unwrap();
    }
    let end = log.offsets("bench", 0).unwrap().1;
    for n in [1usize, 100] {
        g.throughput(Throughput::Elements(n as u64));
        let mut next = 0i64;
        g.bench_function(format!("100B/batch{n}"), |b| {
            b.iter(|| {
                let f = log
                    .fetch("bench", 0, next, n, 64 << 20, Isolation::ReadCommitted)
                    .unwrap();
                assert_eq!(f.records.len(), n);
                // Each transaction is 100 records and a marker.
                next = if f.next_offset + 101 >= end {
                    0
                } else {
                    f.next_offset
                };
                black_box(f)
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    append,
    append_concurrent,
    read,
    transaction,
    read_committed
);
criterion_main!(benches);
