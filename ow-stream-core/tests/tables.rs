//! Tables derived from streams and tables: `Stream::to_table`, `Table::filter` and
//! `Table::map_values`, each in a store of its own, on the test driver and on both backends.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{TestEnv, produce_at, wait_for};
use ow_stream_core::dsl::Materialized;
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::TopologyTestDriver;
use ow_stream_core::{StreamsBuilder, Topic, TopologyError};

fn ints(name: &str) -> Topic<String, i64> {
    Topic::new(name, StringSerde, JsonSerde::new())
}

fn strings(name: &str) -> Topic<String, String> {
    Topic::new(name, StringSerde, StringSerde)
}

#[test]
fn to_table_keeps_the_latest_value_per_key_and_joins() {
    let b = StreamsBuilder::new();
    let ranks = b
        .stream(&ints("ranks"))
        .to_table(Materialized::as_("latest-rank"));
    assert_eq!(ranks.store_name(), "latest-rank");
    ranks.to_stream().to(&ints("rank-updates"));
    b.stream(&strings("matches"))
        .join(&ranks, |_player, game, rank| format!("{game}@{rank}"))
        .to(&strings("ranked"));
    let d = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let r = d.input_topic(&ints("ranks"));
    let m = d.input_topic(&strings("matches"));
    r.pipe_input_at("ana".into(), 10, 1).unwrap();
    r.pipe_input_at("bob".into(), 20, 2).unwrap();
    m.pipe_input_at("ana".into(), "g1".into(), 3).unwrap();
    r.pipe_input_at("ana".into(), 11, 4).unwrap();
    m.pipe_input_at("ana".into(), "g2".into(), 5).unwrap();
    m.pipe_input_at("cid".into(), "g3".into(), 6).unwrap();
    assert_eq!(
        d.output_topic(&strings("ranked")).read_values().unwrap(),
        vec!["g1@10", "g2@11"]
    );
    assert_eq!(
        d.output_topic(&ints("rank-updates"))
            .read_key_values()
            .unwrap(),
        vec![
            ("ana".to_string(), 10),
            ("bob".to_string(), 20),
            ("ana".to_string(), 11)
        ]
    );
    let store = d.key_value_store::<String, i64>("latest-rank").unwrap();
    assert_eq!(store.get(&"ana".to_string()).unwrap(), Some(11));
    assert_eq!(store.get(&"bob".to_string()).unwrap(), Some(20));
}

#[test]
fn to_table_after_a_new_key_goes_through_a_repartition_topic() {
    let b = StreamsBuilder::new();
    b.stream(&strings("plays"))
        // key: match, value: hero → key: hero, value: match
        .map(|game, hero| (hero, game))
        .to_table(
            Materialized::as_("last-match")
                .with_key_serde(StringSerde)
                .with_value_serde(StringSerde),
        );
    let topology = b.build().unwrap();
    let text = topology.describe().to_string();
    assert!(text.contains("last-match-repartition"), "{text}");
    let d = TopologyTestDriver::new(topology).unwrap();
    let i = d.input_topic(&strings("plays"));
    i.pipe_input("m1".into(), "ana".into()).unwrap();
    i.pipe_input("m2".into(), "ana".into()).unwrap();
    i.pipe_input("m2".into(), "genji".into()).unwrap();
    let store = d.key_value_store::<String, String>("last-match").unwrap();
    assert_eq!(store.get(&"ana".to_string()).unwrap(), Some("m2".into()));
    assert_eq!(store.get(&"genji".to_string()).unwrap(), Some("m2".into()));
}

#[test]
fn table_filter_keeps_matching_rows_and_drops_the_others() {
    let b = StreamsBuilder::new();
    let skill = b.table(&ints("skill"), Materialized::as_("skill"));
    let good = skill.filter(|_, v| *v >= 10, Materialized::as_("good-players"));
    good.to_stream().to(&ints("good"));
    b.stream(&strings("lobby"))
        .join(&good, |_, lobby, skill| format!("{lobby}:{skill}"))
        .to(&strings("matched"));
    let d = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let s = d.input_topic(&ints("skill"));
    let l = d.input_topic(&strings("lobby"));
    s.pipe_input("ana".into(), 5).unwrap();
    s.pipe_input("ana".into(), 12).unwrap();
    s.pipe_input("bob".into(), 20).unwrap();
    l.pipe_input("ana".into(), "l1".into()).unwrap();
    // Ana falls below the bar: her row leaves the filtered table.
    s.pipe_input("ana".into(), 3).unwrap();
    l.pipe_input("ana".into(), "l2".into()).unwrap();
    l.pipe_input("bob".into(), "l3".into()).unwrap();
    assert_eq!(
        d.output_topic(&ints("good")).read_key_values().unwrap(),
        vec![("ana".to_string(), 12), ("bob".to_string(), 20)]
    );
    assert_eq!(
        d.output_topic(&strings("matched")).read_values().unwrap(),
        vec!["l1:12", "l3:20"]
    );
    let store = d.key_value_store::<String, i64>("good-players").unwrap();
    assert_eq!(store.get(&"ana".to_string()).unwrap(), None);
    assert_eq!(store.get(&"bob".to_string()).unwrap(), Some(20));
    // The source table still has every row.
    let all = d.key_value_store::<String, i64>("skill").unwrap();
    assert_eq!(all.get(&"ana".to_string()).unwrap(), Some(3));
}

#[test]
fn table_map_values_keeps_the_mapped_rows() {
    let b = StreamsBuilder::new();
    b.table(&ints("skill"), Materialized::as_("skill"))
        .map_values(
            |v| format!("tier-{}", v / 10),
            Materialized::as_("tiers").with_value_serde(StringSerde),
        )
        .to_stream()
        .to(&strings("tiers"));
    let d = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let s = d.input_topic(&ints("skill"));
    s.pipe_input("ana".into(), 5).unwrap();
    s.pipe_input("bob".into(), 27).unwrap();
    s.pipe_input("ana".into(), 14).unwrap();
    assert_eq!(
        d.output_topic(&strings("tiers")).read_values().unwrap(),
        vec!["tier-0", "tier-2", "tier-1"]
    );
    let store = d.key_value_store::<String, String>("tiers").unwrap();
    assert_eq!(
        store.get(&"ana".to_string()).unwrap(),
        Some("tier-1".into())
    );
}

#[test]
fn table_map_values_without_a_value_serde_fails_the_build() {
    let b = StreamsBuilder::new();
    b.table(&ints("skill"), Materialized::as_("skill"))
        .map_values(|v| v.to_string(), Materialized::as_("as-text"));
    match b.build() {
        Err(TopologyError::Invalid { node, reason }) => {
            assert_eq!(node, "as-text");
            assert!(reason.contains("value serde"), "{reason}");
        }
        other => panic!("expected a missing serde, got {:?}", other.map(|_| ())),
    }
}

on_both_backends!(derived_tables_on_a_stream_thread);

/// `to_table` then `filter`, on a real stream thread: the filtered rows reach the output
/// topic and both stores answer queries.
async fn derived_tables_on_a_stream_thread(env: TestEnv) {
    let app = "derived-tables";
    env.create("skill-updates", 2).await;
    env.create("good", 2).await;
    for store in ["latest-skill", "good-skill"] {
        env.create_internal(&format!("{app}-{store}-changelog"), 2);
    }
    env.create_internal(&format!("{app}-dlq"), 1);
    env.create_internal(&format!("{app}-shutdown"), 1);
    let b = StreamsBuilder::new();
    b.stream(&ints("skill-updates"))
        .to_table(Materialized::as_("latest-skill"))
        .filter(|_, v| *v >= 10, Materialized::as_("good-skill"))
        .to_stream()
        .to(&ints("good"));
    produce_at(
        &env,
        &ints("skill-updates"),
        &[
            ("ana".to_string(), 12, 1),
            ("bob".to_string(), 4, 2),
            ("cid".to_string(), 30, 3),
            ("ana".to_string(), 2, 4),
            ("bob".to_string(), 15, 5),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut streams = Streams::new(b.build().unwrap(), env.config(app, dir.path())).unwrap();
    streams.start().await.unwrap();
    let get = |store: &str, key: &str| {
        streams
            .key_value_store::<String, i64>(store)
            .ok()
            .and_then(|s| s.get(&key.to_string()).ok().flatten())
    };
    wait_for("the last update", Duration::from_secs(60), || {
        get("good-skill", "bob") == Some(15)
    })
    .await;
    assert_eq!(get("latest-skill", "ana"), Some(2));
    assert_eq!(get("latest-skill", "bob"), Some(15));
    assert_eq!(get("good-skill", "ana"), None);
    assert_eq!(get("good-skill", "cid"), Some(30));
    let mut good: Vec<(String, i64)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while good.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "output so far: {good:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        good = env
            .read_all("good")
            .await
            .into_iter()
            .map(|r| {
                let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                let v: i64 = serde_json::from_slice(&r.value.unwrap()).unwrap();
                (k, v)
            })
            .collect();
    }
    good.sort();
    assert_eq!(
        good,
        vec![
            ("ana".to_string(), 12),
            ("bob".to_string(), 15),
            ("cid".to_string(), 30)
        ]
    );
    streams.close().await.unwrap();
}
