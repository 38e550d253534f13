//! Streams applications on both backends — librdkafka's mock cluster and the durable local log,
//! one test body each: exact state across crashes, repartitioning, dead letters; and, on Kafka,
//! rebalances between instances of one consumer group.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, wait_for};
use ow_stream_core::client::Producer;
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{Headers, StreamsBuilder, Topic, Topology};
use rand::Rng;

const PARTITIONS: i32 = 4;

fn events() -> Topic<String, i64> {
    Topic::new("events", StringSerde, JsonSerde::new())
}

fn count_topology() -> Topology {
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

/// Runs a scenario once on each backend.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mock_cluster() {
                super::$name(super::TestEnv::mock()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_log() {
                super::$name(super::TestEnv::local()).await
            }
        }
    };
}

async fn produce_events(cluster: &TestEnv, from: usize, to: usize, keys: usize) {
    let config = cluster.config("producer", std::path::Path::new("."));
    let producer = Producer::new(&config).unwrap();
    let topic = events();
    for chunk in (from..to).collect::<Vec<_>>().chunks(500) {
        let sends = chunk.iter().map(|i| {
            let key = format!("k{}", i % keys);
            let topic = &topic;
            let producer = &producer;
            async move { producer.send(topic, &key, &(*i as i64)).await }
        });
        for r in futures::future::join_all(sends).await {
            r.unwrap();
        }
    }
}

fn store_counts(streams: &[&Streams]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in streams {
        for (k, v) in s
            .key_value_store::<String, i64>("counts")
            .unwrap()
            .all()
            .unwrap()
        {
            assert!(out.insert(k.clone(), v).is_none(), "key {k} hosted twice");
        }
    }
    out
}

fn total(counts: &BTreeMap<String, i64>) -> i64 {
    counts.values().sum()
}

async fn start(topology: Topology, config: StreamsConfig) -> Streams {
    let mut s = Streams::new(topology, config).unwrap();
    s.start().await.unwrap();
    s
}

on_both_backends!(counts_stay_exact_across_crashes);

async fn counts_stay_exact_across_crashes(cluster: TestEnv) {
    cluster.create("events", PARTITIONS).await;
    cluster.create("counts-out", PARTITIONS).await;
    cluster.create_internal("crashy-counts-changelog", PARTITIONS);
    cluster.create_internal("crashy-dlq", 1);
    const N: usize = 6000;
    const KEYS: usize = 60;
    produce_events(&cluster, 0, N, KEYS).await;

    let state = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    for round in 0..6 {
        // Every other round also loses the local state: stores then come back from the
        // changelogs alone.
        if round % 2 == 1 {
            std::fs::remove_dir_all(state.path()).ok();
        }
        let streams = start(count_topology(), cluster.config("crashy", state.path())).await;
        let stop_after = rng.random_range(200..(N as u64));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while streams.metrics().records_consumed < stop_after
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        streams.abort();
    }
    let streams = start(count_topology(), cluster.config("crashy", state.path())).await;
    wait_for("every event counted", Duration::from_secs(60), || {
        total(&store_counts(&[&streams])) == N as i64
    })
    .await;
    let counts = store_counts(&[&streams]);
    assert_eq!(counts.len(), KEYS);
    assert!(
        counts.values().all(|c| *c == (N / KEYS) as i64),
        "{counts:?}"
    );
    streams.close().await.unwrap();
    // The output topic's latest value per key is the exact count too.
    let latest = cluster.latest_json("counts-out").await;
    assert_eq!(latest.len(), KEYS);
    assert!(
        latest
            .values()
            .all(|v| v.as_i64() == Some((N / KEYS) as i64))
    );
}

/// Only on Kafka: a local log directory belongs to one process, whose stream threads split the
/// partitions among themselves without a group protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_partitions_and_restore_each_others_stores() {
    let cluster = TestEnv::mock();
    cluster.create("events", PARTITIONS).await;
    cluster.create("counts-out", PARTITIONS).await;
    cluster.create_internal("group-counts-changelog", PARTITIONS);
    cluster.create_internal("group-dlq", 1);
    const KEYS: usize = 40;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let a = start(count_topology(), cluster.config("group", dirs[0].path())).await;
    let b = start(count_topology(), cluster.config("group", dirs[1].path())).await;
    produce_events(&cluster, 0, 2000, KEYS).await;
    wait_for("two members counting 2000", Duration::from_secs(60), || {
        total(&store_counts(&[&a, &b])) == 2000
    })
    .await;
    let shards_a = a
        .key_value_store::<String, i64>("counts")
        .unwrap()
        .len()
        .unwrap();
    let shards_b = b
        .key_value_store::<String, i64>("counts")
        .unwrap()
        .len()
        .unwrap();
    assert!(
        shards_a > 0 && shards_b > 0,
        "both members own partitions: {shards_a} / {shards_b}"
    );

    // A third member joins.
    let c = start(count_topology(), cluster.config("group", dirs[2].path())).await;
    produce_events(&cluster, 2000, 4000, KEYS).await;
    wait_for(
        "three members counting 4000",
        Duration::from_secs(60),
        || total(&store_counts(&[&a, &b, &c])) == 4000,
    )
    .await;

    // One leaves cleanly; its partitions move to the others, whose stores restore them from
    // the changelog.
    a.close().await.unwrap();
    produce_events(&cluster, 4000, 6000, KEYS).await;
    wait_for(
        "two remaining members counting 6000",
        Duration::from_secs(60),
        || total(&store_counts(&[&b, &c])) == 6000,
    )
    .await;
    let counts = store_counts(&[&b, &c]);
    assert!(
        counts.values().all(|v| *v == (6000 / KEYS) as i64),
        "{counts:?}"
    );
    assert!(
        b.metrics().records_restored + c.metrics().records_restored > 0,
        "moved partitions were restored from their changelogs"
    );
    b.close().await.unwrap();
    c.close().await.unwrap();
}

on_both_backends!(repartitioned_word_counts_stay_exact_across_crashes);

async fn repartitioned_word_counts_stay_exact_across_crashes(cluster: TestEnv) {
    let lines: Topic<String, String> = Topic::new("lines", StringSerde, StringSerde);
    cluster.create("lines", 2).await;
    cluster.create("word-counts", 3).await;
    cluster.create_internal("words-app-words-repartition", 3);
    cluster.create_internal("words-app-counts-changelog", 3);
    cluster.create_internal("words-app-dlq", 1);
    let topology = || {
        let b = StreamsBuilder::new();
        b.stream(&lines)
            .flat_map_values(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>())
            .group_by(
                |_, w| w.clone(),
                Grouped::as_("words")
                    .with_key_serde(StringSerde)
                    .with_value_serde(StringSerde),
            )
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&Topic::new(
                "word-counts",
                StringSerde,
                JsonSerde::<i64>::new(),
            ));
        b.build().unwrap()
    };
    let producer = Producer::new(&cluster.config("p", std::path::Path::new("."))).unwrap();
    const LINES: usize = 1500;
    for i in 0..LINES {
        let line = format!("w{} w{} w{}", i % 7, i % 11, i % 13);
        producer
            .send(&lines, &format!("l{i}"), &line)
            .await
            .unwrap();
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..LINES {
        for w in [i % 7, i % 11, i % 13] {
            *expected.entry(format!("w{w}")).or_default() += 1;
        }
    }
    let state = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    for _ in 0..5 {
        let s = start(
            topology(),
            cluster
                .config("words-app", state.path())
                .with_internal_topic_partitions(3),
        )
        .await;
        let stop_after = rng.random_range(100..(LINES as u64 * 3));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while s.metrics().records_consumed < stop_after && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.abort();
    }
    let s = start(
        topology(),
        cluster
            .config("words-app", state.path())
            .with_internal_topic_partitions(3),
    )
    .await;
    let want = expected.values().sum::<i64>();
    wait_for("all words counted", Duration::from_secs(60), || {
        let got = s
            .key_value_store::<String, i64>("counts")
            .unwrap()
            .all()
            .unwrap();
        got.iter().map(|(_, v)| v).sum::<i64>() >= want
    })
    .await;
    let got: BTreeMap<String, i64> = s
        .key_value_store::<String, i64>("counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, expected);
    s.close().await.unwrap();
}

on_both_backends!(poison_records_land_in_the_dead_letter_topic);

async fn poison_records_land_in_the_dead_letter_topic(cluster: TestEnv) {
    cluster.create("events", PARTITIONS).await;
    cluster.create("counts-out", PARTITIONS).await;
    cluster.create_internal("dlq-app-counts-changelog", PARTITIONS);
    cluster.create_internal("dlq-app-dlq", 1);
    let producer = Producer::new(&cluster.config("p", std::path::Path::new("."))).unwrap();
    let mut good = 0;
    let mut poison = Vec::new();
    for i in 0..400 {
        let key = format!("k{}", i % 10);
        if i % 7 == 3 {
            let d = producer
                .send_raw(
                    "events",
                    Some(key.as_bytes()),
                    Some(b"{not json"),
                    1000 + i,
                    &Headers::new(),
                )
                .await
                .unwrap();
            poison.push((d.partition, d.offset));
        } else {
            producer.send(&events(), &key, &i).await.unwrap();
            good += 1;
        }
    }
    let state = tempfile::tempdir().unwrap();
    let s = start(count_topology(), cluster.config("dlq-app", state.path())).await;
    wait_for("good records counted", Duration::from_secs(60), || {
        total(&store_counts(&[&s])) == good
    })
    .await;
    wait_for(
        "poison records dead-lettered",
        Duration::from_secs(30),
        || s.metrics().dead_letters == poison.len() as u64,
    )
    .await;
    s.close().await.unwrap();
    let dlq = cluster.read_all("dlq-app-dlq").await;
    assert_eq!(dlq.len(), poison.len());
    let mut seen: Vec<(i32, i64)> = dlq
        .iter()
        .map(|r| {
            assert_eq!(r.value.as_deref(), Some(&b"{not json"[..]));
            assert_eq!(r.headers.last_str("ow.dlq.topic"), Some("events"));
            assert_eq!(r.headers.last_str("ow.dlq.stage"), Some("deserialize"));
            assert!(r.headers.last_str("ow.dlq.error").is_some());
            (
                r.headers
                    .last_str("ow.dlq.partition")
                    .unwrap()
                    .parse()
                    .unwrap(),
                r.headers
                    .last_str("ow.dlq.offset")
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .collect();
    seen.sort();
    poison.sort();
    assert_eq!(seen, poison);
}
