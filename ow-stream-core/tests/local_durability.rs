//! The local backend under `kill -9`: a producer and a streams application are killed at random
//! points, over and over, in child processes. Every acknowledged record must be in the log
//! exactly once, offsets contiguous, and the final counts exact.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestEnv, wait_for};
use ow_stream_core::client::Producer;
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use rand::Rng;

const CHILD: &str = "OW_DURABILITY_CHILD";
const KEYS: u64 = 25;

fn events() -> Topic<String, u64> {
    Topic::new("events", StringSerde, JsonSerde::new())
}

fn topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&events())
        .group_by_key()
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(&Topic::new(
            "counts-out",
            StringSerde,
            JsonSerde::<i64>::new(),
        ));
    b.build().unwrap()
}

fn config(root: &Path) -> StreamsConfig {
    StreamsConfig::new("durable", Backend::local(root.join("log")))
        .with_state_dir(root.join("state"))
        .with_commit_interval(Duration::from_millis(30))
}

/// The child processes: re-executions of this test binary running only this test.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let root = std::path::PathBuf::from(std::env::var("OW_ROOT").unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        match mode.as_str() {
            "produce" => {
                let start: u64 = std::env::var("OW_START").unwrap().parse().unwrap();
                let producer = Producer::new(&config(&root)).unwrap();
                let mut out = std::io::stdout().lock();
                // The test harness has printed "test child_entry ... " without a newline.
                writeln!(out).unwrap();
                for i in start.. {
                    let d = producer
                        .send(&events(), &format!("k{}", i % KEYS), &i)
                        .await
                        .unwrap();
                    writeln!(out, "ack {i} {} {}", d.partition, d.offset).unwrap();
                    out.flush().unwrap();
                }
            }
            "count" => {
                let mut streams = Streams::new(topology(), config(&root)).unwrap();
                streams.start().await.unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "\nstarted").unwrap();
                out.flush().unwrap();
                drop(out);
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
            other => panic!("unknown child mode {other}"),
        }
    });
}

fn spawn(mode: &str, root: &Path, start: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, mode)
        .env("OW_ROOT", root)
        .env("OW_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_acknowledged() {
    let _tracing = TestEnv::local();
    let root = tempfile::tempdir().unwrap();
    {
        let admin = ow_stream_core::admin::Admin::new(&config(root.path())).unwrap();
        admin
            .create_topics(&[
                ow_stream_core::admin::TopicSpec::new("events", 3),
                ow_stream_core::admin::TopicSpec::new("counts-out", 3),
            ])
            .await
            .unwrap();
    }
    let mut rng = rand::rng();
    let mut acked: BTreeMap<u64, (i32, i64)> = BTreeMap::new();
    let mut next = 0u64;
    for round in 0..10 {
        // A producer, killed after a random number of acknowledgements.
        let mut child = spawn("produce", root.path(), next);
        let stop_after = rng.random_range(20..250);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut record = |line: &str| {
            let mut parts = line.split(' ').skip(1);
            let i: u64 = parts.next().unwrap().parse().unwrap();
            let p: i32 = parts.next().unwrap().parse().unwrap();
            let o: i64 = parts.next().unwrap().parse().unwrap();
            assert!(
                acked.insert(i, (p, o)).is_none(),
                "record {i} acknowledged twice"
            );
        };
        let mut line = String::new();
        let mut read = 0;
        while read < stop_after {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the producer died"
            );
            if line.starts_with("ack ") {
                record(line.trim());
                read += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements printed before the kill count too.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        for line in rest.lines().filter(|l| l.starts_with("ack ")) {
            record(line);
        }
        next = acked.keys().max().map_or(0, |m| m + 1);

        // A streams application, killed after a random time.
        let mut child = spawn("count", root.path(), 0);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "started" {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "round {round}: the child died"
            );
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Every acknowledged record exactly once, where it was acknowledged; offsets contiguous.
    let config = config(root.path());
    let records = common::read_all_with(&config, "events").await;
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &records {
        by_partition.entry(r.partition).or_default().push(r.offset);
    }
    for (p, offsets) in &by_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &expected, "partition {p} has gaps");
    }
    // (A record written but killed before its acknowledgement was sent again by the next
    // round, so a value may appear twice; an acknowledged position holds its value once.)
    let at: BTreeMap<(i32, i64), u64> = records
        .iter()
        .map(|r| {
            let i: u64 = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            ((r.partition, r.offset), i)
        })
        .collect();
    for (i, position) in &acked {
        assert_eq!(
            at.get(position),
            Some(i),
            "record {i} acknowledged at {position:?}"
        );
    }
    let acked_positions: BTreeSet<(i32, i64)> = acked.values().copied().collect();
    assert_eq!(
        acked_positions.len(),
        acked.len(),
        "two acknowledgements for one position"
    );

    // The counts, after a final run, match the log exactly (unacknowledged records that did
    // reach the log are counted too, once).
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for r in &records {
        *expected
            .entry(String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap())
            .or_default() += 1;
    }
    let mut streams = Streams::new(topology(), config.clone()).unwrap();
    streams.start().await.unwrap();
    let total = records.len() as i64;
    wait_for("every record counted", Duration::from_secs(60), || {
        let counts = streams
            .key_value_store::<String, i64>("counts")
            .unwrap()
            .all()
            .unwrap();
        counts.iter().map(|(_, v)| v).sum::<i64>() >= total
    })
    .await;
    let got: BTreeMap<String, i64> = streams
        .key_value_store::<String, i64>("counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, expected);
    streams.close().await.unwrap();
    let lag = ow_stream_core::admin::Admin::new(&config)
        .unwrap()
        .group_lag("durable", &["events"])
        .await
        .unwrap();
    assert!(
        lag.iter().all(|l| l.lag == 0 && l.committed == Some(l.end)),
        "{lag:?}"
    );
}
