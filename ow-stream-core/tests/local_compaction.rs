//! The local backend stays bounded: a store's changelog is compacted (latest value per key),
//! repartition records are purged once committed, and a store rebuilt from its compacted
//! changelog is still exact.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestEnv, wait_for};
use ow_stream_core::admin::Admin;
use ow_stream_core::client::Producer;
use ow_stream_core::config::{LocalFsync, LocalOptions, StreamsConfig};
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::runtime::Streams;
use ow_stream_core::serde::StringSerde;
use ow_stream_core::{StreamsBuilder, Topic, Topology};

const KEYS: usize = 8;
const RECORDS: usize = 6_000;

fn topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&Topic::<String, String>::new(
        "letters",
        StringSerde,
        StringSerde,
    ))
    .group_by(
        |_, letter| letter.clone(),
        Grouped::as_("by-letter")
            .with_key_serde(StringSerde)
            .with_value_serde(StringSerde),
    )
    .count(Materialized::as_("letter-counts"));
    b.build().unwrap()
}

fn config(env: &TestEnv, state: &std::path::Path) -> StreamsConfig {
    // No record cache: the test needs a changelog write per update to compact.
    env.config("compact", state)
        .with_internal_topic_partitions(2)
        .with_cache_max_bytes(0)
        .with_local_options(
            LocalOptions::default()
                .with_fsync(LocalFsync::Never)
                .with_segment_bytes(8 * 1024)
                .with_maintenance_interval(Duration::from_millis(50)),
        )
}

async fn counts(streams: &Streams) -> BTreeMap<String, i64> {
    streams
        .key_value_store::<String, i64>("letter-counts")
        .unwrap()
        .all()
        .unwrap()
        .into_iter()
        .collect()
}

async fn changelog_bytes(admin: &Admin) -> (u64, i64) {
    let t = admin
        .topic_offsets(&["compact-letter-counts-changelog"])
        .await
        .unwrap();
    let p = &t[0].partitions;
    (
        p.iter().map(|p| p.size_bytes.unwrap()).sum(),
        p.iter().map(|p| p.end).sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changelogs_stay_small_and_restore_exactly() {
    let env = TestEnv::local();
    env.create("letters", 2).await;
    let state = tempfile::tempdir().unwrap();
    let config = config(&env, state.path());
    let producer = Producer::new(&config).unwrap();
    let topic: Topic<String, String> = Topic::new("letters", StringSerde, StringSerde);
    for i in 0..RECORDS {
        let letter = ((b'a' + (i % KEYS) as u8) as char).to_string();
        producer
            .send(&topic, &format!("k{i}"), &letter)
            .await
            .unwrap();
    }

    let mut streams = Streams::new(topology(), config.clone()).unwrap();
    streams.start().await.unwrap();
    wait_for("every letter counted", Duration::from_secs(60), || {
        futures::executor::block_on(counts(&streams))
            .values()
            .sum::<i64>()
            == RECORDS as i64
    })
    .await;
    let expected = counts(&streams).await;
    assert!(expected.values().all(|n| *n == (RECORDS / KEYS) as i64));
    streams.close().await.unwrap();

    // Every store write went to the changelog (one per record, plus commit markers)...
    let admin = Admin::new(&config).unwrap();
    let (_, written) = changelog_bytes(&admin).await;
    assert!(
        written >= RECORDS as i64,
        "{written} changelog records written"
    );
    // ...and compaction keeps it to about the latest value per key plus the open segments.
    let mut small = false;
    for _ in 0..100 {
        let (bytes, _) = changelog_bytes(&admin).await;
        if bytes < 64 * 1024 {
            small = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (bytes, _) = changelog_bytes(&admin).await;
    assert!(
        small,
        "changelog still {bytes} bytes on disk after compaction"
    );
    // Repartition records are deleted once the downstream task committed them.
    let repartition = admin
        .topic_offsets(&["compact-by-letter-repartition"])
        .await
        .unwrap();
    let kept: i64 = repartition[0].records();
    assert!(kept < RECORDS as i64 / 2, "{kept} repartition records kept");

    // Lose the local state: the store comes back from the compacted changelog, exactly.
    std::fs::remove_dir_all(state.path().join("compact")).unwrap();
    let mut streams = Streams::new(topology(), config).unwrap();
    streams.start().await.unwrap();
    wait_for("the restored counts", Duration::from_secs(60), || {
        futures::executor::block_on(counts(&streams)) == expected
    })
    .await;
    streams.close().await.unwrap();
}

/// Topics created through [`Admin`] on the local log get the retention they ask for, by size
/// and by time, and the backend's default time retention (7 days, as on Kafka) when they ask
/// for none: a long-running embedded stack stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topics_are_bounded_by_their_retention() {
    use ow_stream_core::Headers;
    use ow_stream_core::admin::TopicSpec;

    let env = TestEnv::local();
    let state = tempfile::tempdir().unwrap();
    let config = config(&env, state.path());
    let admin = Admin::new(&config).unwrap();
    admin
        .create_topics(&[
            TopicSpec::new("sized", 1).with_retention_bytes(16 * 1024),
            TopicSpec::new("defaulted", 1),
            TopicSpec::new("kept-a-month", 1).with_retention(Duration::from_secs(30 * 86_400)),
        ])
        .await
        .unwrap();
    let producer = Producer::new(&config).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let eight_days_ago = now - 8 * 86_400_000;
    let value = [b'x'; 100];
    for topic in ["sized", "defaulted", "kept-a-month"] {
        for i in 0..600 {
            // The first half is eight days old.
            let at = if i < 300 { eight_days_ago } else { now };
            producer
                .send_raw(topic, Some(b"k"), Some(&value), at, &Headers::new())
                .await
                .unwrap();
        }
    }
    let offsets = |name: &'static str| {
        let admin = &admin;
        async move { admin.topic_offsets(&[name]).await.unwrap()[0].partitions[0].clone() }
    };
    // Size: at most the limit plus the active segment (8 KiB here), with the index files.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sized = offsets("sized").await;
        let defaulted = offsets("defaulted").await;
        if sized.size_bytes.unwrap() <= 16 * 1024 + 8 * 1024 + 4096 && defaulted.start >= 250 {
            assert_eq!(sized.end, 600);
            assert!(sized.start > 0);
            // Time: every sealed segment of eight-day-old records is gone, nothing newer.
            assert!(defaulted.start <= 300, "{defaulted:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not bounded: {sized:?} {defaulted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let month = offsets("kept-a-month").await;
    assert_eq!((month.start, month.end), (0, 600), "within its retention");
}
