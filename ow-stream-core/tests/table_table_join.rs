//! Table–table joins (`Table::join`, `left_join`, `outer_join`): inserts, updates and deletes
//! on both sides give the hand-computed change sequences on the test driver; deletes reach
//! derived tables and joins, over aggregates and suppressed tables too; the result stores come back exact after a crash, from their
//! changelogs alone, on both backends; tables that are not co-partitioned are refused.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestEnv;
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::dsl::{BufferConfig, Materialized, Suppressed};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{Headers, StreamsBuilder, Topic, Topology};

fn names() -> Topic<String, String> {
    Topic::new("names", StringSerde, StringSerde)
}

fn scores() -> Topic<String, i64> {
    Topic::new("scores", StringSerde, JsonSerde::new())
}

fn out(name: &str) -> Topic<String, Option<String>> {
    Topic::new(name, StringSerde, JsonSerde::new())
}

fn show(name: Option<String>, score: Option<i64>) -> String {
    let name = name.unwrap_or_else(|| "-".into());
    let score = score.map_or_else(|| "-".into(), |s| s.to_string());
    format!("{name}/{score}")
}

const JOINS: [&str; 3] = ["inner", "left-joined", "outer"];

/// The three joins of the names table with the scores table, each result's changes written
/// to a topic named after its store plus `-out`.
fn topology() -> Topology {
    let b = StreamsBuilder::new();
    let names = b.table(&names(), Materialized::as_("names"));
    let scores = b.table(&scores(), Materialized::as_("scores"));
    names
        .join(
            &scores,
            |_, n, s| show(Some(n), Some(s)),
            Materialized::as_("inner").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("inner-out"));
    names
        .left_join(
            &scores,
            |_, n, s| show(Some(n), s),
            Materialized::as_("left-joined").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("left-joined-out"));
    names
        .outer_join(
            &scores,
            |_, n, s| show(n, s),
            Materialized::as_("outer").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("outer-out"));
    b.build().unwrap()
}

type Changes = Vec<(String, Option<String>)>;

fn changes(list: &[(&str, Option<&str>)]) -> Changes {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

#[test]
fn inserts_updates_and_deletes_on_both_sides() {
    let d = TopologyTestDriver::new(topology()).unwrap();
    let n = d.input_topic(&names());
    let s = d.input_topic(&scores());
    n.pipe_input_at("a".into(), "A1".into(), 1).unwrap();
    s.pipe_input_at("a".into(), 1, 2).unwrap();
    n.pipe_input_at("a".into(), "A2".into(), 3).unwrap();
    s.pipe_input_at("b".into(), 2, 4).unwrap();
    s.pipe_tombstone_at("a".into(), 5).unwrap();
    n.pipe_tombstone_at("a".into(), 6).unwrap();
    n.pipe_input_at("b".into(), "B1".into(), 7).unwrap();
    s.pipe_tombstone_at("b".into(), 8).unwrap();
    // A delete of a key neither side has changes nothing.
    n.pipe_tombstone_at("c".into(), 9).unwrap();
    s.pipe_tombstone_at("c".into(), 10).unwrap();

    let read = |t: &str| d.output_topic(&out(t)).read_key_values().unwrap();
    assert_eq!(
        read("inner-out"),
        changes(&[
            ("a", Some("A1/1")),
            ("a", Some("A2/1")),
            ("a", None),
            ("b", Some("B1/2")),
            ("b", None),
        ])
    );
    assert_eq!(
        read("left-joined-out"),
        changes(&[
            ("a", Some("A1/-")),
            ("a", Some("A1/1")),
            ("a", Some("A2/1")),
            ("a", Some("A2/-")),
            ("a", None),
            ("b", Some("B1/2")),
            ("b", Some("B1/-")),
        ])
    );
    assert_eq!(
        read("outer-out"),
        changes(&[
            ("a", Some("A1/-")),
            ("a", Some("A1/1")),
            ("a", Some("A2/1")),
            ("b", Some("-/2")),
            ("a", Some("A2/-")),
            ("a", None),
            ("b", Some("B1/2")),
            ("b", Some("B1/-")),
        ])
    );
    let store = |name: &str| {
        d.key_value_store::<String, String>(name)
            .unwrap()
            .all()
            .unwrap()
    };
    assert_eq!(store("inner"), vec![]);
    assert_eq!(store("left-joined"), vec![("b".to_string(), "B1/-".into())]);
    assert_eq!(store("outer"), vec![("b".to_string(), "B1/-".into())]);
    // The outer join's row for a key only the right side had goes once both are gone.
    s.pipe_input_at("z".into(), 9, 11).unwrap();
    s.pipe_tombstone_at("z".into(), 12).unwrap();
    assert_eq!(
        read("outer-out")[8..],
        changes(&[("z", Some("-/9")), ("z", None)])
    );
}

#[test]
fn deletes_reach_derived_tables_and_joins_over_them() {
    let b = StreamsBuilder::new();
    let names = b.table(&names(), Materialized::as_("names"));
    let scores = b
        .table(&scores(), Materialized::as_("scores"))
        .filter(|_, s| *s > 0, Materialized::as_("positive"));
    let upper = names.map_values(
        |n: String| n.to_uppercase(),
        Materialized::as_("upper").with_value_serde(StringSerde),
    );
    upper.to_change_stream().to(&out("upper-out"));
    upper
        .join(
            &scores,
            |_, n, s| show(Some(n), Some(s)),
            Materialized::as_("joined").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("joined-out"));
    let d = TopologyTestDriver::new(b.build().unwrap()).unwrap();
    let n = d.input_topic(&self::names());
    let s = d.input_topic(&self::scores());
    n.pipe_input_at("a".into(), "ana".into(), 1).unwrap();
    s.pipe_input_at("a".into(), 5, 2).unwrap();
    // Fails the filter: the row leaves `positive`, so the join's result goes too.
    s.pipe_input_at("a".into(), -1, 3).unwrap();
    s.pipe_input_at("a".into(), 7, 4).unwrap();
    // Deleted in the source table: deleted in the mapped table, and in the join.
    n.pipe_tombstone_at("a".into(), 5).unwrap();
    assert_eq!(
        d.output_topic(&out("upper-out")).read_key_values().unwrap(),
        changes(&[("a", Some("ANA")), ("a", None)])
    );
    assert_eq!(
        d.output_topic(&out("joined-out"))
            .read_key_values()
            .unwrap(),
        changes(&[
            ("a", Some("ANA/5")),
            ("a", None),
            ("a", Some("ANA/7")),
            ("a", None),
        ])
    );
    let upper = d.key_value_store::<String, String>("upper").unwrap();
    assert_eq!(upper.get(&"a".into()).unwrap(), None);
    let positive = d.key_value_store::<String, i64>("positive").unwrap();
    assert_eq!(positive.get(&"a".into()).unwrap(), Some(7));
}

#[test]
fn joins_over_a_cached_aggregate_and_a_suppressed_table() {
    let visits: Topic<String, String> = Topic::new("visits", StringSerde, StringSerde);
    let b = StreamsBuilder::new();
    let names = b.table(&names(), Materialized::as_("names"));
    // Cached: its updates reach the join when the cache flushes, at the commit.
    let counts = b
        .stream(&visits)
        .group_by_key()
        .count(Materialized::as_("visit-counts"));
    names
        .join(
            &counts,
            |_, n, c| show(Some(n), Some(c)),
            Materialized::as_("named-counts").with_value_serde(StringSerde),
        )
        .to_change_stream()
        .to(&out("named-counts-out"));
    // A suppressed table forwards updates only: its side of the join takes those.
    let held = counts.suppress(Suppressed::until_time_limit(
        Duration::from_secs(60),
        BufferConfig::max_records(100),
    ));
    held.left_join(
        &names,
        |_, c, n: Option<String>| show(n, Some(c)),
        Materialized::as_("held-counts").with_value_serde(StringSerde),
    );
    let config = TestDriverConfig::default().with_commit_every(0);
    let d = TopologyTestDriver::with_config(b.build().unwrap(), config).unwrap();
    d.input_topic(&self::names())
        .pipe_input_at("a".into(), "ana".into(), 0)
        .unwrap();
    let v = d.input_topic(&visits);
    v.pipe_input_at("a".into(), "x".into(), 1).unwrap();
    v.pipe_input_at("a".into(), "y".into(), 2).unwrap();
    let mut joined = d.output_topic(&out("named-counts-out"));
    assert!(joined.is_empty(), "the counts are still in the cache");
    d.commit().unwrap();
    assert_eq!(
        joined.read_key_values().unwrap(),
        changes(&[("a", Some("ana/2"))])
    );
    let held = d.key_value_store::<String, String>("held-counts").unwrap();
    assert_eq!(held.get(&"a".into()).unwrap(), None, "held back 60 s");
    v.pipe_input_at("b".into(), "x".into(), 70_000).unwrap();
    d.commit().unwrap();
    assert_eq!(held.get(&"a".into()).unwrap(), Some("ana/2".into()));
}

#[test]
fn describe_shows_the_join_nodes_and_stores() {
    let text = topology().describe().to_string();
    for join in JOINS {
        for side in ["this-join", "other-join"] {
            assert!(
                text.contains(&format!(
                    "Processor: {join}-{side} (stores: [names, scores])"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains(&format!("Processor: {join} (stores: [{join}])")),
            "{text}"
        );
    }
    // Both tables and the three joins are one sub-topology.
    assert_eq!(topology().describe().subtopologies.len(), 1, "{text}");
}

#[test]
fn a_join_without_a_value_serde_fails_the_build() {
    let b = StreamsBuilder::new();
    let names = b.table(&names(), Materialized::as_("names"));
    let scores = b.table(&scores(), Materialized::as_("scores"));
    names.join(&scores, |_, n, s| format!("{n}{s}"), Materialized::as_("j"));
    match b.build() {
        Err(ow_stream_core::TopologyError::Invalid { node, reason }) => {
            assert_eq!(node, "j");
            assert!(reason.contains("value serde"), "{reason}");
        }
        other => panic!("expected a missing serde, got {:?}", other.map(|_| ())),
    }
}

/// One change of either table: `(side, key, value)`, `None` a tombstone; side 0 is names.
type Op = (u8, String, Option<i64>);

/// Changes of 12 keys on both sides: inserts, updates, deletes and re-inserts. The second
/// half changes only k0–k5: the results of k6–k11 after a crash are those restored.
fn ops(half: usize) -> Vec<Op> {
    let mut out = Vec::new();
    let (rounds, keys) = if half == 0 {
        (0..6, 0..12)
    } else {
        (6..12, 0..6)
    };
    for round in rounds {
        for key in keys.clone() {
            let k = format!("k{key}");
            let x = round * 12 + key;
            // Names: every key but k11, deleted every fourth round for keys divisible by 3.
            if key != 11 {
                let v = (round % 4 != 3 || key % 3 != 0).then_some(x);
                out.push((0, k.clone(), v));
            }
            // Scores: every key but k10, deleted on odd rounds for even keys.
            if key != 10 {
                let v = (round % 2 == 0 || key % 2 == 1).then_some(x * 10);
                out.push((1, k, v));
            }
        }
    }
    out
}

fn name_of(x: i64) -> String {
    format!("n{x}")
}

/// What the test driver makes of all the changes: the oracle for the backends.
fn expected() -> BTreeMap<&'static str, Vec<(String, String)>> {
    let d = TopologyTestDriver::new(topology()).unwrap();
    let n = d.input_topic(&names());
    let s = d.input_topic(&scores());
    for (i, (side, k, v)) in ops(0).into_iter().chain(ops(1)).enumerate() {
        let t = i as i64;
        match (side, v) {
            (0, Some(v)) => n.pipe_input_at(k, name_of(v), t).unwrap(),
            (0, None) => n.pipe_tombstone_at(k, t).unwrap(),
            (_, Some(v)) => s.pipe_input_at(k, v, t).unwrap(),
            (_, None) => s.pipe_tombstone_at(k, t).unwrap(),
        }
    }
    JOINS
        .into_iter()
        .map(|j| {
            let mut rows = d
                .key_value_store::<String, String>(j)
                .unwrap()
                .all()
                .unwrap();
            rows.sort();
            (j, rows)
        })
        .collect()
}

async fn produce_ops(env: &TestEnv, ops: &[Op], base: i64) {
    let producer =
        ow_stream_core::client::Producer::new(&env.config("producer", std::path::Path::new(".")))
            .unwrap();
    for (i, (side, k, v)) in ops.iter().enumerate() {
        let (topic, value) = match (side, v) {
            (0, v) => ("names", v.map(|v| name_of(v).into_bytes())),
            (_, v) => ("scores", v.map(|v| v.to_string().into_bytes())),
        };
        // From an epoch time on: a producer given timestamp 0 stamps the current time.
        let ts = 1_700_000_000_000 + base + i as i64;
        producer
            .send_raw(
                topic,
                Some(k.as_bytes()),
                value.as_deref(),
                ts,
                &Headers::new(),
            )
            .await
            .unwrap();
    }
}

/// The input topics (names, scores) with the given partition counts, the output topics, and
/// the internal topics the mock cluster cannot create itself.
async fn create_topics(env: &TestEnv, app: &str, partitions: (i32, i32)) {
    for store in ["names", "scores"].into_iter().chain(JOINS) {
        env.create_internal(&format!("{app}-{store}-changelog"), partitions.0);
    }
    env.create_internal(&format!("{app}-dlq"), 1);
    env.create_internal(&format!("{app}-shutdown"), 1);
    env.create("names", partitions.0).await;
    env.create("scores", partitions.1).await;
    for join in JOINS {
        env.create(&format!("{join}-out"), 2).await;
    }
}

async fn results(streams: &Streams) -> Option<BTreeMap<&'static str, Vec<(String, String)>>> {
    let mut out = BTreeMap::new();
    for j in JOINS {
        let mut rows = streams
            .key_value_store::<String, String>(j)
            .ok()?
            .all()
            .ok()?;
        // Rows come partition by partition.
        rows.sort();
        out.insert(j, rows);
    }
    Some(out)
}

on_both_backends!(join_results_are_exact_after_a_crash);

async fn join_results_are_exact_after_a_crash(env: TestEnv) {
    let app = "table-joins";
    create_topics(&env, app, (3, 3)).await;
    let want = expected();
    assert!(want.values().all(|rows| !rows.is_empty()), "{want:?}");
    produce_ops(&env, &ops(0), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let config: StreamsConfig = env.config(app, dir.path());
    let first = {
        let mut s = Streams::new(topology(), config.clone()).unwrap();
        s.start().await.unwrap();
        s
    };
    let n = ops(0).len() as u64;
    common::wait_for("the first half", Duration::from_secs(60), || {
        first.metrics().records_consumed >= n && first.metrics().commits > 2
    })
    .await;
    // A crash, and the state directory lost with it: every store comes back from its
    // changelog alone.
    first.abort();
    std::fs::remove_dir_all(dir.path()).unwrap();
    produce_ops(&env, &ops(1), 1_000_000).await;
    let mut second = Streams::new(topology(), config).unwrap();
    second.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while results(&second).await.as_ref() != Some(&want) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(results(&second).await, Some(want));
    second.close().await.unwrap();
}

on_both_backends!(tables_that_are_not_copartitioned_are_refused);

async fn tables_that_are_not_copartitioned_are_refused(env: TestEnv) {
    let app = "table-joins-uneven";
    create_topics(&env, app, (3, 2)).await;
    let dir = tempfile::tempdir().unwrap();
    let result = match Streams::new(topology(), env.config(app, dir.path())) {
        Ok(mut s) => s.start().await,
        Err(e) => Err(e),
    };
    match result {
        Err(ow_stream_core::Error::NotCopartitioned {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (3, 2)),
        other => panic!("expected NotCopartitioned, got {:?}", other.map(|_| ())),
    }
}
