//! `cogroup`: clicks (`i64`) and purchases (`f64`, re-keyed by user with `group_by`) folded
//! into one summary per user in one store, plain and in time windows; the repartition topic a
//! re-keyed input gets; co-partitioning; and the store exact after a crash, from its changelog
//! alone, on both backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::{Grouped, Materialized, TimeWindows, Window};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, Topology};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Summary {
    clicks: i64,
    purchases: i64,
    spent: f64,
}

/// Clicks per user: the key is the user.
fn clicks() -> Topic<String, i64> {
    Topic::new("clicks", StringSerde, JsonSerde::new())
}

/// Purchase amounts keyed by `<user>/<order>`.
fn purchases() -> Topic<String, f64> {
    Topic::new("purchases", StringSerde, JsonSerde::new())
}

fn summaries_out() -> Topic<String, Summary> {
    Topic::new("summaries", StringSerde, JsonSerde::new())
}

fn user_of(order: &str) -> String {
    order.split('/').next().unwrap_or_default().to_string()
}

fn add_clicks(_: &String, n: i64, s: Summary) -> Summary {
    Summary {
        clicks: s.clicks + n,
        ..s
    }
}

fn add_purchase(_: &String, amount: f64, s: Summary) -> Summary {
    Summary {
        purchases: s.purchases + 1,
        spent: s.spent + amount,
        ..s
    }
}

/// One summary per user from both topics, the purchases re-keyed by user with `group_by`.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let clicks = b.stream(&clicks()).group_by_key();
    let by_user = b.stream(&purchases()).group_by(
        |order: &String, _| user_of(order),
        Grouped::as_("purchases-by-user").with_key_serde(StringSerde),
    );
    clicks
        .cogroup(add_clicks)
        .cogroup(&by_user, add_purchase)
        .aggregate(
            Summary::default,
            Materialized::as_("summaries").with_value_serde(JsonSerde::new()),
        )
        .to_stream()
        .to(&summaries_out());
    b.build().unwrap()
}

fn summary(clicks: i64, purchases: i64, spent: f64) -> Summary {
    Summary {
        clicks,
        purchases,
        spent,
    }
}

#[test]
fn both_streams_fold_into_one_summary_per_user() {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    let clicks_in = driver.input_topic(&clicks());
    let purchases_in = driver.input_topic(&purchases());
    clicks_in.pipe_input_at("ada".into(), 2, 1).unwrap();
    purchases_in.pipe_input_at("ada/o1".into(), 9.5, 2).unwrap();
    purchases_in
        .pipe_input_at("bob/o2".into(), 4.25, 3)
        .unwrap();
    clicks_in.pipe_input_at("ada".into(), 1, 4).unwrap();
    purchases_in.pipe_input_at("ada/o3".into(), 0.5, 5).unwrap();
    let store = driver
        .key_value_store::<String, Summary>("summaries")
        .unwrap();
    assert_eq!(
        store.all().unwrap(),
        [
            ("ada".to_string(), summary(3, 2, 10.0)),
            ("bob".to_string(), summary(0, 1, 4.25)),
        ]
    );
    // Every update of the shared aggregate, from either input, in the order processed.
    let updates = driver
        .output_topic(&summaries_out())
        .read_key_values()
        .unwrap();
    assert_eq!(
        updates,
        [
            ("ada".to_string(), summary(2, 0, 0.0)),
            ("ada".to_string(), summary(2, 1, 9.5)),
            ("bob".to_string(), summary(0, 1, 4.25)),
            ("ada".to_string(), summary(3, 1, 9.5)),
            ("ada".to_string(), summary(3, 2, 10.0)),
        ]
    );
}

#[test]
fn windowed_cogroup_aggregates_per_window() {
    let b = StreamsBuilder::new();
    let by_user = b.stream(&purchases()).group_by(
        |order: &String, _| user_of(order),
        Grouped::as_("purchases-by-user").with_key_serde(StringSerde),
    );
    let table = b
        .stream(&clicks())
        .group_by_key()
        .cogroup(add_clicks)
        .cogroup(&by_user, add_purchase)
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_millis(100),
            Duration::ZERO,
        ))
        .aggregate(
            Summary::default,
            Materialized::as_("summaries-per-100ms").with_value_serde(JsonSerde::new()),
        );
    assert_eq!(table.store_name(), "summaries-per-100ms");
    let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let clicks_in = driver.input_topic(&clicks());
    let purchases_in = driver.input_topic(&purchases());
    clicks_in.pipe_input_at("ada".into(), 1, 10).unwrap();
    purchases_in
        .pipe_input_at("ada/o1".into(), 2.5, 90)
        .unwrap();
    clicks_in.pipe_input_at("ada".into(), 4, 150).unwrap();
    // Window [0, 100) closed at stream time 150: late, dropped and counted.
    purchases_in
        .pipe_input_at("ada/o2".into(), 1.0, 99)
        .unwrap();
    assert_eq!(driver.metrics().late_records_dropped, 1);
    let got: Vec<(Window, Summary)> = driver
        .window_store::<String, Summary>("summaries-per-100ms")
        .unwrap()
        .fetch(&"ada".into(), 0, 1_000)
        .unwrap();
    assert_eq!(
        got,
        [
            (Window { start: 0, end: 100 }, summary(1, 1, 2.5)),
            (
                Window {
                    start: 100,
                    end: 200
                },
                summary(4, 0, 0.0)
            ),
        ]
    );
}

#[test]
fn describe_shows_one_store_fed_by_both_inputs() {
    let text = topology().describe().to_string();
    for node in [
        "Processor: summaries-cogroup-0 (stores: [summaries])",
        "Processor: summaries-cogroup-1 (stores: [summaries])",
        "Processor: summaries-merge (stores: [])",
    ] {
        assert!(text.contains(node), "{node} in {text}");
    }
    // The group_by's own repartition topic; the clicks need none.
    assert!(text.contains("purchases-by-user-repartition"), "{text}");
    assert!(!text.contains("summaries-cogroup-0-repartition"), "{text}");
    assert!(!text.contains("summaries-cogroup-1-repartition"), "{text}");
}

#[test]
fn a_rekeyed_input_is_repartitioned_first() {
    let b = StreamsBuilder::new();
    let by_user = b
        .stream(&purchases())
        .select_key(|order: &String, _| user_of(order))
        .group_by_key();
    b.stream(&clicks())
        .group_by_key()
        .cogroup(add_clicks)
        .cogroup(&by_user, add_purchase)
        .aggregate(
            Summary::default,
            Materialized::as_("summaries").with_value_serde(JsonSerde::new()),
        );
    let topology = b.build().unwrap();
    let text = topology.describe().to_string();
    assert!(text.contains("summaries-cogroup-1-repartition"), "{text}");
    assert!(!text.contains("summaries-cogroup-0-repartition"), "{text}");
    // The re-keyed purchases meet the clicks in the store's tasks.
    let driver = TopologyTestDriver::new(topology).unwrap();
    driver
        .input_topic(&clicks())
        .pipe_input_at("ada".into(), 1, 1)
        .unwrap();
    driver
        .input_topic(&purchases())
        .pipe_input_at("ada/o1".into(), 2.0, 2)
        .unwrap();
    let store = driver
        .key_value_store::<String, Summary>("summaries")
        .unwrap();
    assert_eq!(store.get(&"ada".into()).unwrap(), Some(summary(1, 1, 2.0)));
}

#[test]
fn the_store_needs_a_value_serde() {
    let b = StreamsBuilder::new();
    b.stream(&clicks())
        .group_by_key()
        .cogroup(add_clicks)
        .aggregate(Summary::default, Materialized::as_("summaries"));
    let e = b.build().unwrap_err().to_string();
    assert!(e.contains("summaries") && e.contains("value serde"), "{e}");
}

const USERS: i64 = 8;

/// Clicks and purchases of 8 users, one half at a time (amounts in quarters: sums of them
/// are exact in any order).
fn click_records(half: i64) -> Vec<(String, i64, i64)> {
    let base = 1_700_000_000_000 + half * 100_000;
    (0..40)
        .map(|i| (format!("u{}", i % USERS), i % 3 + 1, base + i * 1_000))
        .collect()
}

fn purchase_records(half: i64) -> Vec<(String, f64, i64)> {
    let base = 1_700_000_000_000 + half * 100_000 + 500;
    (0..30)
        .map(|i| {
            let order = format!("u{}/o{}-{}", (i * 3) % USERS, half, i);
            (order, (i % 7) as f64 * 0.25 + 1.0, base + i * 1_000)
        })
        .collect()
}

/// What the test driver makes of all the records: the oracle for the backends.
fn expected() -> BTreeMap<String, Summary> {
    let driver = TopologyTestDriver::new(topology()).unwrap();
    for half in 0..2 {
        let clicks_in = driver.input_topic(&clicks());
        for (k, v, t) in click_records(half) {
            clicks_in.pipe_input_at(k, v, t).unwrap();
        }
        let purchases_in = driver.input_topic(&purchases());
        for (k, v, t) in purchase_records(half) {
            purchases_in.pipe_input_at(k, v, t).unwrap();
        }
    }
    driver
        .key_value_store::<String, Summary>("summaries")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect()
}

on_both_backends!(summaries_are_exact_after_a_crash);

async fn summaries_are_exact_after_a_crash(env: TestEnv) {
    for t in ["clicks", "purchases", "summaries"] {
        env.create(t, 2).await;
    }
    env.create_internal("cogroup-app-purchases-by-user-repartition", 2);
    env.create_internal("cogroup-app-summaries-changelog", 2);
    env.create_internal("cogroup-app-dlq", 1);
    let want = expected();
    assert_eq!(want.len(), USERS as usize);
    produce_at(&env, &clicks(), &click_records(0)).await;
    produce_at(&env, &purchases(), &purchase_records(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.config("cogroup-app", dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    // Both inputs, and the purchases once more through the repartition topic.
    let n = (click_records(0).len() + 2 * purchase_records(0).len()) as u64;
    wait_for("the first half", Duration::from_secs(60), || {
        first.metrics().records_consumed >= n && first.metrics().commits > 2
    })
    .await;
    // A crash, and the state directory lost with it: the store comes back from its
    // changelog alone.
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    produce_at(&env, &clicks(), &click_records(1)).await;
    produce_at(&env, &purchases(), &purchase_records(1)).await;
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    let store = second
        .key_value_store::<String, Summary>("summaries")
        .unwrap();
    let got = || -> BTreeMap<String, Summary> {
        store
            .all()
            .map(|a| a.into_iter().collect())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got() != want && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got(), want);
    second.close().await.unwrap();
}

on_both_backends!(inputs_must_be_copartitioned);

async fn inputs_must_be_copartitioned(env: TestEnv) {
    env.create("clicks", 2).await;
    env.create("purchases", 3).await;
    env.create_internal("copart-app-summaries-changelog", 2);
    env.create_internal("copart-app-dlq", 1);
    let b = StreamsBuilder::new();
    // Keyed by user already (marked so): no repartition topic to even the counts out.
    let by_user = b.stream(&purchases()).group_by_key();
    b.stream(&clicks())
        .group_by_key()
        .cogroup(add_clicks)
        .cogroup(&by_user, add_purchase)
        .aggregate(
            Summary::default,
            Materialized::as_("summaries").with_value_serde(JsonSerde::new()),
        );
    let dir = tempfile::tempdir().unwrap();
    let mut streams =
        Streams::new(b.build().unwrap(), env.config("copart-app", dir.path())).unwrap();
    let e = streams.start().await.unwrap_err().to_string();
    assert!(e.contains("clicks") && e.contains("purchases"), "{e}");
}
