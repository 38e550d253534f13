//! Streams applications on both backends — librdkafka's mock cluster and the durable local log,
//! one test body each: exact state across crashes, repartitioning, dead letters, sink
//! partitioners, restores and interactive queries over many shards; and, on Kafka, rebalances
//! between instances of one consumer group. Also the typed clients on both backends.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{TestEnv, wait_for};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::{Grouped, Materialized, Produced};
use ow_stream_core::runtime::{Streams, StreamsState};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{Error, Headers, StreamsBuilder, Topic, Topology};
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
        // Crash after a random number of records, or once everything is counted (a round that
        // resumes near the end has fewer records left than the number drawn).
        let stop_after = rng.random_range(200..(N as u64));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while streams.metrics().records_consumed < stop_after
            && total(&store_counts(&[&streams])) < N as i64
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

on_both_backends!(cached_counts_collapse_and_stay_exact_across_crashes);

/// With the record cache on and no commit before the crash, nothing leaves the cache: the crash
/// loses only uncommitted updates, which the next run counts again, once. Its final commit
/// writes one record per key, to the output topic and to the changelog.
async fn cached_counts_collapse_and_stay_exact_across_crashes(cluster: TestEnv) {
    cluster.create("events", PARTITIONS).await;
    cluster.create("counts-out", PARTITIONS).await;
    cluster.create_internal("cached-counts-changelog", PARTITIONS);
    cluster.create_internal("cached-dlq", 1);
    const N: usize = 3000;
    const KEYS: usize = 30;
    produce_events(&cluster, 0, N, KEYS).await;
    let state = tempfile::tempdir().unwrap();
    let config = || {
        cluster
            .config("cached", state.path())
            .with_commit_interval(Duration::from_secs(600))
    };
    for _crash in 0..2 {
        let streams = start(count_topology(), config()).await;
        // Interactive queries see the counts in the cache, before any commit.
        wait_for(
            "every event counted in the cache",
            Duration::from_secs(60),
            || total(&store_counts(&[&streams])) == N as i64,
        )
        .await;
        streams.abort();
        assert!(
            cluster.read_all("counts-out").await.is_empty(),
            "nothing is written before the first commit"
        );
    }
    let streams = start(count_topology(), config()).await;
    wait_for("every event counted", Duration::from_secs(60), || {
        total(&store_counts(&[&streams])) == N as i64
    })
    .await;
    streams.close().await.unwrap();
    let out = cluster.read_all("counts-out").await;
    assert_eq!(out.len(), KEYS, "one output record per key");
    let latest = cluster.latest_json("counts-out").await;
    assert!(
        latest
            .values()
            .all(|v| v.as_i64() == Some((N / KEYS) as i64)),
        "{latest:?}"
    );
    let changelog = cluster.read_all("cached-counts-changelog").await;
    let data = changelog
        .iter()
        .filter(|r| r.headers.last("ow.commit").is_none())
        .count();
    assert_eq!(data, KEYS, "one changelog record per key");

    // A restart restores the committed counts and counts nothing twice.
    std::fs::remove_dir_all(state.path()).ok();
    let streams = start(count_topology(), config()).await;
    produce_events(&cluster, N, N + KEYS, KEYS).await;
    wait_for("the new events counted", Duration::from_secs(60), || {
        total(&store_counts(&[&streams])) == (N + KEYS) as i64
    })
    .await;
    let counts = store_counts(&[&streams]);
    assert!(
        counts.values().all(|c| *c == (N / KEYS) as i64 + 1),
        "{counts:?}"
    );
    streams.close().await.unwrap();
}

/// On the local log, where no group protocol splits partitions, a second instance of a running
/// application on the same directory is refused (it would count every record again into stores
/// of its own); once the first is closed, or crashes, the application may start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_local_instance_of_an_application_is_refused() {
    let cluster = TestEnv::local();
    cluster.create("events", PARTITIONS).await;
    cluster.create("counts-out", PARTITIONS).await;
    produce_events(&cluster, 0, 100, 10).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = start(count_topology(), cluster.config("solo", a.path())).await;
    let mut second = Streams::new(count_topology(), cluster.config("solo", b.path())).unwrap();
    match second.start().await {
        Err(Error::Config { field, reason }) => {
            assert_eq!(field, "application_id");
            assert!(reason.contains("solo is already running"), "{reason}");
        }
        other => panic!("a second instance started: {other:?}"),
    }
    // Another application on the same log is fine.
    let other = start(count_topology(), cluster.config("other", b.path())).await;
    wait_for("both count everything", Duration::from_secs(30), || {
        total(&store_counts(&[&first])) == 100 && total(&store_counts(&[&other])) == 100
    })
    .await;
    other.close().await.unwrap();
    first.abort();
    let again = start(count_topology(), cluster.config("solo", a.path())).await;
    wait_for(
        "the restarted instance holds every count",
        Duration::from_secs(30),
        || total(&store_counts(&[&again])) == 100,
    )
    .await;
    again.close().await.unwrap();
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
        // Crash after a random number of records, or once every word is counted.
        let stop_after = rng.random_range(100..(LINES as u64 * 3));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while s.metrics().records_consumed < stop_after
            && total(&store_counts(&[&s])) < (LINES * 3) as i64
            && std::time::Instant::now() < deadline
        {
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

on_both_backends!(a_twelve_partition_restore_rebuilds_every_store);

/// A second instance, with in-memory stores and an empty state directory, rebuilds both stores
/// (one in memory, one in redb) of all twelve tasks from their changelogs, and answers range,
/// prefix and multi-key queries across the twelve shards. The time the restore took is printed
/// (the figure behind the restore consumer's settings; not asserted).
async fn a_twelve_partition_restore_rebuilds_every_store(cluster: TestEnv) {
    const P: i32 = 12;
    const N: usize = 6000;
    const KEYS: usize = 120;
    cluster.create("events", P).await;
    for store in ["counts", "sums"] {
        cluster.create_internal(&format!("restore-app-{store}-changelog"), P);
    }
    cluster.create_internal("restore-app-dlq", 1);
    let topology = || {
        let b = StreamsBuilder::new();
        let grouped = b.stream(&events()).group_by_key();
        grouped.count(Materialized::as_("counts").in_memory());
        grouped.reduce(|a, b| a + b, Materialized::as_("sums").persistent());
        b.build().unwrap()
    };
    produce_events(&cluster, 0, N, KEYS).await;
    let sum = |s: &Streams, store: &str| -> i64 {
        s.key_value_store::<String, i64>(store)
            .unwrap()
            .all()
            .unwrap()
            .iter()
            .map(|(_, v)| v)
            .sum()
    };
    let want_sum = (0..N as i64).sum::<i64>();
    let state = tempfile::tempdir().unwrap();
    // No record cache: every update goes to the changelogs, so that restore has 2 N to read.
    let config = |dir: &std::path::Path| cluster.config("restore-app", dir).with_cache_max_bytes(0);
    let first = start(topology(), config(state.path())).await;
    wait_for("every event counted", Duration::from_secs(60), || {
        sum(&first, "counts") == N as i64 && sum(&first, "sums") == want_sum
    })
    .await;
    first.close().await.unwrap();

    let fresh = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let second = start(topology(), config(fresh.path())).await;
    let mut first_restored = None;
    wait_for("both stores restored", Duration::from_secs(120), || {
        if first_restored.is_none() && second.metrics().records_restored > 0 {
            first_restored = Some(started.elapsed());
        }
        sum(&second, "counts") == N as i64 && sum(&second, "sums") == want_sum
    })
    .await;
    let done = started.elapsed();
    let restored = second.metrics().records_restored;
    assert!(restored >= 2 * N as u64, "{restored} records restored");
    assert_eq!(
        second.metrics().records_consumed,
        0,
        "nothing left to process"
    );
    eprintln!(
        "restore of {restored} changelog records, {} partitions: {:?} from start, {:?} from the \
         first restored record",
        2 * P,
        done,
        done - first_restored.unwrap_or_default()
    );
    // Queries merge the twelve shards, in byte order of the (UTF-8) keys.
    for store in ["counts", "sums"] {
        let view = second.key_value_store::<String, i64>(store).unwrap();
        let range: Vec<String> = view
            .range(&"k10".into(), &"k19".into())
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut want: Vec<String> = (10..20).map(|i| format!("k{i}")).collect();
        want.extend((100..120).map(|i| format!("k{i}")));
        want.sort();
        assert_eq!(range, want, "{store}");
        let prefixed = view.prefix_scan(b"k11").unwrap();
        assert_eq!(prefixed.len(), 11, "{store}: k11 and k110..k119");
        assert!(prefixed.windows(2).all(|w| w[0].0 < w[1].0));
        let many = view
            .get_many(&["k0".into(), "nope".into(), "k119".into()])
            .unwrap();
        assert!(many[0].is_some() && many[1].is_none() && many[2].is_some());
    }
    assert_eq!(
        second
            .key_value_store::<String, i64>("counts")
            .unwrap()
            .get_many(&["k7".into()])
            .unwrap(),
        vec![Some((N / KEYS) as i64)]
    );
    // Shared, the application is closed through any handle; both closes wait for the threads.
    let second = Arc::new(second);
    let other = second.clone();
    let (a, b) = tokio::join!(second.close(), other.close());
    a.unwrap();
    b.unwrap();
    assert_eq!(second.state(), StreamsState::NotRunning);
}

on_both_backends!(sink_partitioners_place_records_alike);

/// A sink's partitioner places records where murmur2 over its bytes says, on Kafka (where the
/// library computes the partition from the topic's partition count) as on the local log; and
/// `to` agrees with Kafka's default partitioner over the key bytes.
async fn sink_partitioners_place_records_alike(cluster: TestEnv) {
    const P: i32 = 5;
    cluster.create("events", PARTITIONS).await;
    cluster.create("by-key", P).await;
    cluster.create("by-group", P).await;
    cluster.create_internal("placing-dlq", 1);
    let out = |name: &str| Topic::new(name.to_string(), StringSerde, JsonSerde::<i64>::new());
    let b = StreamsBuilder::new();
    let s = b.stream(&events());
    s.to(&out("by-key"));
    // Keys "k<n>": grouped by n % 3, each group in one partition.
    s.to_with(
        &out("by-group"),
        Produced::new().with_partitioner(|k: &String, _| {
            let n: usize = k[1..].parse().unwrap_or(0);
            format!("group-{}", n % 3).into_bytes()
        }),
    );
    produce_events(&cluster, 0, 300, 30).await;
    let state = tempfile::tempdir().unwrap();
    let streams = start(b.build().unwrap(), cluster.config("placing", state.path())).await;
    wait_for("every event read", Duration::from_secs(60), || {
        streams.metrics().records_consumed == 300
    })
    .await;
    streams.close().await.unwrap();
    let by_key = cluster.read_all("by-key").await;
    assert_eq!(by_key.len(), 300);
    for r in &by_key {
        let key = r.key.as_deref().unwrap();
        assert_eq!(r.partition, ow_stream_log::partition_for_key(key, P));
    }
    let by_group = cluster.read_all("by-group").await;
    assert_eq!(by_group.len(), 300);
    let mut used = std::collections::BTreeSet::new();
    for r in &by_group {
        let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
        let n: usize = key[1..].parse().unwrap();
        let group = format!("group-{}", n % 3);
        assert_eq!(
            r.partition,
            ow_stream_log::partition_for_key(group.as_bytes(), P),
            "{key}"
        );
        used.insert(r.partition);
    }
    assert!(used.len() > 1, "the groups are spread: {used:?}");
}

on_both_backends!(consumers_hand_back_undecodable_records_and_close);

/// `Consumer::next` returns an undecodable record byte for byte with its error; commits made
/// before `close` are durable: a new consumer of the group goes on after them. A record larger
/// than the backend accepts fails with `Error::RecordTooLarge`.
async fn consumers_hand_back_undecodable_records_and_close(cluster: TestEnv) {
    cluster.create("events", 1).await;
    let config = cluster.config("clients", std::path::Path::new("."));
    let producer = Producer::new(&config).unwrap();
    producer.send(&events(), &"a".into(), &1).await.unwrap();
    producer
        .send_raw(
            "events",
            Some(b"b"),
            Some(b"{not json"),
            7,
            &Headers::new().with("trace", "t-1"),
        )
        .await
        .unwrap();
    producer.send(&events(), &"c".into(), &3).await.unwrap();
    producer.send(&events(), &"d".into(), &4).await.unwrap();

    let consumer = Consumer::subscribe(&config, "readers", &events()).unwrap();
    let next = || async {
        tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a record within 30 s")
            .expect("a record")
    };
    let first = next().await.unwrap();
    assert_eq!(first.record.value, 1);
    consumer.commit(&first.metadata).unwrap();
    let error = next().await.unwrap_err();
    assert!(
        matches!(error, Error::Deserialize { offset: 1, .. }),
        "{error}"
    );
    let raw = error.raw_record().expect("the undecodable record");
    assert_eq!(raw.key.as_deref(), Some(&b"b"[..]));
    assert_eq!(raw.value.as_deref(), Some(&b"{not json"[..]));
    assert_eq!(raw.timestamp, 7);
    assert_eq!(raw.headers.last_str("trace"), Some("t-1"));
    assert_eq!((raw.partition, raw.offset), (0, 1));
    consumer.commit(&raw.metadata()).unwrap();
    let third = next().await.unwrap();
    assert_eq!(third.record.value, 3);
    consumer.commit(&third.metadata).unwrap();
    consumer.close().await.unwrap();

    // The group goes on after the last commit.
    let again = Consumer::subscribe(&config, "readers", &events()).unwrap();
    let fourth = tokio::time::timeout(Duration::from_secs(60), again.next())
        .await
        .expect("a record within 60 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        (fourth.record.key.as_str(), fourth.metadata.offset),
        ("d", 3)
    );
    again.close().await.unwrap();

    // Too large: over `message.max.bytes` on Kafka, over the batch limit on the local log.
    let (config, size) = if cluster.is_local() {
        (config, 65 << 20)
    } else {
        (
            config.with_kafka_setting("message.max.bytes", "10000"),
            20_000,
        )
    };
    let producer = Producer::new(&config).unwrap();
    let big = vec![b'x'; size];
    let error = producer
        .send_raw("events", Some(b"big"), Some(&big), 0, &Headers::new())
        .await
        .unwrap_err();
    match &error {
        Error::RecordTooLarge {
            topic,
            bytes,
            limit,
        } => {
            assert_eq!(&**topic, "events");
            assert!(*bytes >= size as u64, "{error}");
            assert!(limit.is_some_and(|l| l < *bytes), "{error}");
        }
        other => panic!("not RecordTooLarge: {other}"),
    }
    assert!(error.is_record_too_large());
}

on_both_backends!(concurrent_sends_keep_their_order);

/// Sends in flight at the same time land in the order they were made, partition by partition
/// (Kafka's idempotent producer keeps it; the local log's writer queues sends as they are made).
async fn concurrent_sends_keep_their_order(cluster: TestEnv) {
    cluster.create("ordered", PARTITIONS).await;
    let config = cluster.config("ordered-producer", std::path::Path::new("."));
    let producer = Producer::new(&config).unwrap();
    let topic: Topic<String, i64> = Topic::new("ordered", StringSerde, JsonSerde::new());
    const N: i64 = 3000;
    let sends: Vec<_> = (0..N)
        .map(|i| {
            let (producer, topic) = (&producer, &topic);
            async move { producer.send(topic, &format!("k{}", i % 3), &i).await }
        })
        .collect();
    let delivered: Vec<_> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let records = cluster.read_all("ordered").await;
    assert_eq!(records.len(), N as usize);
    let mut last: BTreeMap<(i32, String), (i64, i64)> = BTreeMap::new();
    for r in &records {
        let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        let value: i64 = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        if let Some((offset, previous)) = last.insert((r.partition, key.clone()), (r.offset, value))
        {
            assert!(
                offset < r.offset && previous < value,
                "{key}: {previous}@{offset} then {value}@{}",
                r.offset
            );
        }
    }
    // Offsets handed back agree with where the records are.
    for (i, d) in delivered.iter().enumerate() {
        let r = records
            .iter()
            .find(|r| r.partition == d.partition && r.offset == d.offset)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<i64>(r.value.as_deref().unwrap()).unwrap(),
            i as i64
        );
    }
}
