//! The record cache of aggregations through the test driver: updates collapse until a commit,
//! a full budget flushes early, reads see the cache, and turning it off (or off for one store)
//! gives every update. The crash side is in `streams_backends.rs`
//! (`cached_counts_collapse_and_stay_exact_across_crashes`, on both backends).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use ow_stream_core::dsl::{Materialized, TimeWindows, Windowed};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use ow_stream_core::{Error, StreamsBuilder, Topic, Topology};

fn input() -> Topic<String, String> {
    Topic::new("in", StringSerde, StringSerde)
}

fn counts_out() -> Topic<String, i64> {
    Topic::new("counts-out", StringSerde, JsonSerde::new())
}

fn count_topology(materialized: Materialized<String, i64>) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&input())
        .group_by_key()
        .count(materialized)
        .to_stream()
        .to(&counts_out());
    b.build().unwrap()
}

fn pipe(driver: &TopologyTestDriver, keys: &[&str]) -> Result<(), Error> {
    let i = driver.input_topic(&input());
    for k in keys {
        i.pipe_input((*k).into(), "x".into())?;
    }
    Ok(())
}

/// Changelog records that are not commit markers.
fn changelog_data(driver: &TopologyTestDriver, store: &str) -> usize {
    driver
        .raw_records(&format!("test-app-{store}-changelog"))
        .iter()
        .filter(|r| r.headers.last("ow.commit").is_none())
        .count()
}

#[test]
fn updates_collapse_until_the_commit_and_reads_see_them_before() -> Result<(), Error> {
    for persistent in [false, true] {
        let mut config = TestDriverConfig::default().with_commit_every(0);
        if persistent {
            config = config.with_persistent_stores();
        }
        let driver =
            TopologyTestDriver::with_config(count_topology(Materialized::as_("counts")), config)?;
        pipe(&driver, &["a", "a", "b", "a"])?;
        let mut out = driver.output_topic(&counts_out());
        assert!(out.is_empty(), "nothing leaves the cache before the commit");
        assert_eq!(changelog_data(&driver, "counts"), 0);
        // Interactive queries read through the cache.
        let store = driver.key_value_store::<String, i64>("counts")?;
        assert_eq!(store.get(&"a".into())?, Some(3));
        assert_eq!(store.all()?, vec![("a".into(), 3), ("b".into(), 1)]);

        driver.commit()?;
        assert_eq!(
            out.read_key_values()?,
            vec![("a".to_string(), 3), ("b".to_string(), 1)],
            "one record per key, its newest value (persistent: {persistent})"
        );
        assert_eq!(changelog_data(&driver, "counts"), 2);
        assert_eq!(store.get(&"a".into())?, Some(3));

        // The next commit window starts from the committed values.
        pipe(&driver, &["b", "b"])?;
        driver.commit()?;
        assert_eq!(out.read_key_values()?, vec![("b".to_string(), 3)]);
        assert_eq!(store.all()?, vec![("a".into(), 3), ("b".into(), 3)]);
    }
    Ok(())
}

#[test]
fn without_a_cache_every_update_is_written_and_forwarded() -> Result<(), Error> {
    let off = TopologyTestDriver::with_config(
        count_topology(Materialized::as_("counts")),
        TestDriverConfig::default()
            .with_commit_every(0)
            .with_cache_max_bytes(0),
    )?;
    let disabled = TopologyTestDriver::with_config(
        count_topology(Materialized::as_("counts").with_caching_disabled()),
        TestDriverConfig::default().with_commit_every(0),
    )?;
    for driver in [off, disabled] {
        pipe(&driver, &["a", "a", "b", "a"])?;
        let mut out = driver.output_topic(&counts_out());
        assert_eq!(
            out.read_values()?,
            vec![1, 2, 1, 3],
            "every update, before any commit"
        );
        assert_eq!(changelog_data(&driver, "counts"), 4);
    }
    Ok(())
}

#[test]
fn the_default_cadence_still_shows_every_update() -> Result<(), Error> {
    // Committing after every record (the default), the cache holds one update at a time.
    let driver = TopologyTestDriver::new(count_topology(Materialized::as_("counts")))?;
    pipe(&driver, &["a", "a", "b"])?;
    let mut out = driver.output_topic(&counts_out());
    assert_eq!(out.read_values()?, vec![1, 2, 1]);
    Ok(())
}

#[test]
fn a_full_budget_flushes_before_the_commit() -> Result<(), Error> {
    // About three entries of a one-byte key and a one-byte count fit in 200 bytes.
    let driver = TopologyTestDriver::with_config(
        count_topology(Materialized::as_("counts")),
        TestDriverConfig::default()
            .with_commit_every(0)
            .with_cache_max_bytes(200),
    )?;
    let keys = ["a", "b", "c", "d", "e"];
    let mut piped = 0;
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for _round in 0..10 {
        for k in keys {
            for _ in 0..5 {
                pipe(&driver, &[k])?;
                piped += 1;
                *expected.entry(k.to_string()).or_default() += 1;
            }
        }
    }
    let mut out = driver.output_topic(&counts_out());
    let before_commit = out.read_key_values()?;
    assert!(
        !before_commit.is_empty(),
        "the budget was exceeded: the cache flushed without a commit"
    );
    driver.commit()?;
    let mut all = before_commit;
    all.extend(out.read_key_values()?);
    assert!(
        all.len() < piped / 2,
        "{} records for {piped} updates: the updates of a key collapsed",
        all.len()
    );
    let latest: BTreeMap<String, i64> = all.into_iter().collect();
    assert_eq!(latest, expected);
    assert_eq!(
        driver.key_value_store::<String, i64>("counts")?.all()?,
        expected.into_iter().collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn an_update_back_to_the_stored_value_emits_nothing_on_change() -> Result<(), Error> {
    let latest: Topic<String, String> = Topic::new("latest-out", StringSerde, StringSerde);
    let b = StreamsBuilder::new();
    b.stream(&input())
        .group_by_key()
        .reduce(
            |_, newer| newer,
            Materialized::as_("latest")
                .with_value_serde(StringSerde)
                .emit_on_change(),
        )
        .to_stream()
        .to(&latest);
    let driver = TopologyTestDriver::with_config(
        b.build()?,
        TestDriverConfig::default().with_commit_every(0),
    )?;
    let i = driver.input_topic(&input());
    i.pipe_input("a".into(), "x".into())?;
    driver.commit()?;
    i.pipe_input("a".into(), "y".into())?;
    i.pipe_input("a".into(), "x".into())?;
    driver.commit()?;
    let mut out = driver.output_topic(&latest);
    assert_eq!(out.read_values()?, vec!["x".to_string()]);
    assert_eq!(changelog_data(&driver, "latest"), 1);
    Ok(())
}

#[test]
fn windowed_updates_collapse_per_window() -> Result<(), Error> {
    let out: Topic<Windowed<String>, i64> =
        Topic::new("per-minute-out", JsonSerde::new(), JsonSerde::new());
    let b = StreamsBuilder::new();
    b.stream(&input())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("per-minute").with_retention(Duration::from_secs(3600)))
        .to_stream()
        .to(&out);
    let driver = TopologyTestDriver::with_config(
        b.build()?,
        TestDriverConfig::default().with_commit_every(0),
    )?;
    let i = driver.input_topic(&input());
    let s = 1000;
    for t in [5 * s, 30 * s, 59 * s, 61 * s, 62 * s] {
        i.pipe_input_at("u".into(), "x".into(), t)?;
    }
    let store = driver.window_store::<String, i64>("per-minute")?;
    assert_eq!(
        store
            .fetch(&"u".into(), 0, 120 * s)?
            .into_iter()
            .map(|(w, v)| (w.start, v))
            .collect::<Vec<_>>(),
        vec![(0, 3), (60 * s, 2)],
        "queries read through the cache"
    );
    let mut o = driver.output_topic(&out);
    assert!(o.is_empty());
    driver.commit()?;
    let got: Vec<(i64, i64)> = o
        .read_key_values()?
        .into_iter()
        .map(|(k, v)| (k.window.start, v))
        .collect();
    assert_eq!(got, vec![(0, 3), (60 * s, 2)]);
    Ok(())
}

#[test]
fn persistent_stores_committed_every_n_records_count_exactly() -> Result<(), Error> {
    let driver = TopologyTestDriver::with_config(
        count_topology(Materialized::as_("counts")),
        TestDriverConfig::default()
            .with_persistent_stores()
            .with_commit_every(100),
    )?;
    let keys: Vec<String> = (0..1000).map(|i| format!("k{}", i % 7)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    pipe(&driver, &refs)?;
    let mut out = driver.output_topic(&counts_out());
    let records = out.read_key_values()?;
    // Ten commits of seven keys each.
    assert_eq!(records.len(), 70);
    let latest: BTreeMap<String, i64> = records.into_iter().collect();
    let mut expected = BTreeMap::new();
    for k in &keys {
        *expected.entry(k.clone()).or_insert(0) += 1;
    }
    assert_eq!(latest, expected);
    assert_eq!(driver.metrics().commits, 10);
    Ok(())
}
