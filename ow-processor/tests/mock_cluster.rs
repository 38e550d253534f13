//! The processor's guarantees on both backends — librdkafka's mock cluster and the durable local
//! log, one test body each: duplicate deliveries and crashes at arbitrary points with restarts
//! change nothing in the outputs compared with a straight run of the same stream (computed by
//! the same topology in the test driver), and a player's records share one partition number in
//! every topic. On Kafka, instances joining and leaving change nothing either.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{Cluster, PARTITIONS, TestEnv, wait_for};
use common::pipeline::{Outputs, drive, registry};
use common::stream::{StreamEvent, snapshot_stream, with_duplicates};
use ow_domain::PlayerProfile;
use ow_processor::PROFILE_STORE;
use ow_stream_core::serde::SerdeContext;
use rand::Rng;

/// Players of the stream, and snapshots of each (the first is the baseline).
const PLAYERS: usize = 100;
const SNAPSHOTS: usize = 5;
/// The mock cluster keeps 5 MiB per partition and silently drops older data.
const MOCK_RETENTION: usize = 5 << 20;

/// Runs a scenario once on each backend.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mock_cluster() {
                super::$name(super::TestEnv::Mock).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_log() {
                super::$name(super::TestEnv::Local).await
            }
        }
    };
}

/// What a straight run of `events` through the topology writes.
fn straight_run(events: &[StreamEvent]) -> Outputs {
    let driven = drive("straight");
    driven.pipe_all(events);
    assert!(driven.driver.dead_letters().is_empty());
    assert_eq!(driven.driver.metrics().late_records_dropped, 0);
    driven.outputs()
}

/// Checks the straight run is not vacuous: the competitive games of the daily sums are the
/// games the stream played.
fn check_straight(want: &Outputs, players: usize) {
    let games: f64 = want
        .daily
        .iter()
        .filter(|(k, _)| k.gamemode == "competitive")
        .map(|(_, v)| v.games_played)
        .sum();
    let played: usize = (0..players)
        .flat_map(|p| (1..SNAPSHOTS).map(move |k| 1 + (p + k) % 3))
        .sum();
    assert_eq!(games, played as f64);
    assert_eq!(want.profiles.len(), players);
    assert_eq!(want.distinct_deltas().len(), want.deltas.len());
    // Competitive: all-heroes and Reaper at every advance; quickplay all-heroes at two.
    assert_eq!(want.deltas.len(), players * (2 * (SNAPSHOTS - 1) + 2));
    // Competitive on both days, quickplay on both days.
    assert_eq!(want.daily.len(), players * 4);
}

/// Checks what the cluster holds against the straight run. `exact`: no output record may be
/// written twice (no crash happened).
async fn check_outputs(cluster: &Cluster, want: &Outputs, exact: bool) {
    let got = cluster.outputs().await;
    if exact {
        assert_eq!(got.deltas, want.deltas, "the same deltas, none twice");
        assert_eq!(got.category_records, want.category_records);
    } else {
        // At least once on the wire: a crash may write a delta again, always identical.
        assert_eq!(got.distinct_deltas(), want.deltas);
        assert!(got.category_records >= want.category_records);
    }
    assert_eq!(got.daily, want.daily);
    assert_eq!(got.profiles, want.profiles);
    assert_eq!(got.categories, want.categories);
    assert!(cluster.read_all("ow-processor-dlq").await.is_empty());
    check_co_partitioned(cluster).await;
    // Nothing was dropped by retention (the mock's 5 MiB per partition; the local log's by
    // record time, kept off for these 2024 records): every partition still starts at offset 0,
    // and holds less than the mock's limit even counted uncompressed.
    for topic in [
        "ow.raw.player-profiles",
        "ow.stats.by-category",
        "ow.players.profile",
        "ow.stats.deltas",
        "ow.stats.daily",
        "ow-processor-player-last-snapshot-changelog",
        "ow-processor-player-profile-changelog",
        "ow-processor-player-daily-stats-changelog",
    ] {
        let (first_offset, bytes) = cluster.partition_usage(topic).await;
        assert_eq!(first_offset, 0, "{topic}: records were dropped");
        assert!(
            bytes < MOCK_RETENTION,
            "{topic}: {bytes} bytes in one partition"
        );
    }
}

/// `(player, partition)` of every record of `topic`, the player read from the record key.
async fn players_of(
    cluster: &Cluster,
    topic: &str,
    player: impl Fn(&[u8]) -> String,
) -> Vec<(String, i32)> {
    cluster
        .read_all(topic)
        .await
        .into_iter()
        .map(|r| (player(r.key.as_deref().unwrap()), r.partition))
        .collect()
}

/// Checks that every record of a player, in every output topic, is in the partition number of
/// the player's raw events (the composite keys of `ow.stats.by-category` and `ow.stats.daily`
/// are partitioned by their player id alone). Returns how many records it checked per topic.
async fn check_co_partitioned(cluster: &Cluster) -> BTreeMap<String, usize> {
    let topics = &cluster.topics;
    let player_key = |name: &str| {
        let serde = topics.raw.key_serde().clone();
        let name = name.to_owned();
        move |bytes: &[u8]| serde.deserialize(SerdeContext::key(&name), bytes).unwrap()
    };
    let mut home: BTreeMap<String, i32> = BTreeMap::new();
    let raw = topics.raw.name();
    for (player, partition) in players_of(cluster, raw, player_key(raw)).await {
        let known = *home.entry(player.clone()).or_insert(partition);
        assert_eq!(known, partition, "raw events of {player} in two partitions");
    }
    let category_key = |bytes: &[u8]| {
        let name = topics.stats_by_category.name();
        let key = topics.stats_by_category.key_serde();
        key.deserialize(SerdeContext::key(name), bytes)
            .unwrap()
            .partition_key()
            .to_owned()
    };
    let daily_key = |bytes: &[u8]| {
        let name = topics.daily.name();
        let key = topics.daily.key_serde();
        key.deserialize(SerdeContext::key(name), bytes)
            .unwrap()
            .partition_key()
            .to_owned()
    };
    let (profiles, deltas) = (topics.profiles.name(), topics.deltas.name());
    let (categories, daily) = (topics.stats_by_category.name(), topics.daily.name());
    let outputs: [(&str, Vec<(String, i32)>); 4] = [
        (
            profiles,
            players_of(cluster, profiles, player_key(profiles)).await,
        ),
        (
            deltas,
            players_of(cluster, deltas, player_key(deltas)).await,
        ),
        (
            categories,
            players_of(cluster, categories, category_key).await,
        ),
        (daily, players_of(cluster, daily, daily_key).await),
    ];
    let mut checked = BTreeMap::new();
    for (topic, records) in outputs {
        for (player, partition) in &records {
            assert_eq!(
                home.get(player),
                Some(partition),
                "{topic}: a record of {player} outside the partition of its raw events"
            );
        }
        checked.insert(topic.to_owned(), records.len());
    }
    checked
}

fn profiles_hosted(instances: &[&ow_processor::Processor]) -> usize {
    instances
        .iter()
        .map(|p| {
            p.streams()
                .key_value_store::<String, PlayerProfile>(PROFILE_STORE)
                .unwrap()
                .len()
                .unwrap()
        })
        .sum()
}

on_both_backends!(duplicate_deliveries_change_nothing);

async fn duplicate_deliveries_change_nothing(env: TestEnv) {
    const FEW: usize = 40;
    let events = snapshot_stream(FEW, SNAPSHOTS);
    let want = straight_run(&events);
    check_straight(&want, FEW);

    let cluster = Cluster::new(env, registry("duplicates")).await;
    let mut twice = with_duplicates(&events);
    // The newest snapshot of every player, delivered twice at the end.
    twice.extend(
        events
            .iter()
            .filter(|e| e.advance == SNAPSHOTS - 1)
            .cloned(),
    );
    let state = tempfile::tempdir().unwrap();
    // Through `run`, as the binary does: it runs until told to shut down, then closes cleanly.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ow_processor::run(
        cluster.processor_config(state.path()),
        async {
            let _ = stopped.await;
        },
    ));
    cluster.produce(&twice).await;
    wait_for(
        "every raw event committed",
        Duration::from_secs(90),
        async || cluster.lag().await == 0,
    )
    .await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    check_outputs(&cluster, &want, true).await;
}

on_both_backends!(crashes_at_arbitrary_points_change_nothing);

async fn crashes_at_arbitrary_points_change_nothing(env: TestEnv) {
    const ROUNDS: usize = 12;
    let events = snapshot_stream(PLAYERS, SNAPSHOTS);
    let want = straight_run(&events);
    check_straight(&want, PLAYERS);

    let cluster = Cluster::new(env, registry("crashes")).await;
    let stream = with_duplicates(&events);
    let state = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let chunk = stream.len().div_ceil(ROUNDS);
    for (round, events) in stream.chunks(chunk).enumerate() {
        // Every third round also loses the local state: the stores come back from their
        // changelogs alone.
        if round % 3 == 2 {
            std::fs::remove_dir_all(state.path()).ok();
        }
        let processor = cluster.start_with_batches_of(state.path(), 4).await;
        cluster.produce(events).await;
        // Mostly after a random number of records (ten rounds); rounds 4 and 9 as soon as the
        // chunk is written (while joining the group or restoring).
        let stop_after = if round % 5 == 4 {
            0
        } else {
            rng.random_range(1..=events.len() as u64)
        };
        wait_for("records to process", Duration::from_secs(60), async || {
            processor.streams().metrics().records_consumed >= stop_after
        })
        .await;
        // Killed without a clean shutdown: no commit, no flush.
        processor.abort();
    }
    let processor = cluster.start(state.path()).await;
    wait_for(
        "every raw event committed",
        Duration::from_secs(90),
        async || cluster.lag().await == 0,
    )
    .await;
    processor.close().await.unwrap();
    check_outputs(&cluster, &want, false).await;
}

// Kafka only: the local backend runs one instance of an application per log directory (a second
// is refused with `Error::Config`), so there is no group for instances to join or leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_join_and_leave_without_losing_or_doubling() {
    let events = snapshot_stream(PLAYERS, SNAPSHOTS);
    let want = straight_run(&events);
    let stream = with_duplicates(&events);
    let thirds: Vec<&[StreamEvent]> = stream.chunks(stream.len().div_ceil(3)).collect();

    let cluster = Cluster::new(TestEnv::Mock, registry("rebalance")).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let drained = async || cluster.lag().await == 0;
    let a = cluster.start(dir_a.path()).await;
    cluster.produce(thirds[0]).await;
    wait_for("a alone", Duration::from_secs(60), drained).await;
    assert_eq!(profiles_hosted(&[&a]), PLAYERS);

    // A second instance joins: the partitions are shared, every player hosted once.
    let b = cluster.start(dir_b.path()).await;
    wait_for("b to get partitions", Duration::from_secs(60), async || {
        profiles_hosted(&[&b]) > 0
    })
    .await;
    cluster.produce(thirds[1]).await;
    wait_for("a and b", Duration::from_secs(60), drained).await;
    wait_for("a rebalanced group", Duration::from_secs(60), async || {
        profiles_hosted(&[&a, &b]) == PLAYERS
    })
    .await;
    let on_a = profiles_hosted(&[&a]);
    assert!(
        on_a > 0 && on_a < PLAYERS,
        "both instances host players: {on_a} on a"
    );

    // The first one leaves: the other takes its partitions over from the changelogs.
    a.close().await.unwrap();
    cluster.produce(thirds[2]).await;
    wait_for("b alone", Duration::from_secs(60), drained).await;
    wait_for("b to host everyone", Duration::from_secs(60), async || {
        profiles_hosted(&[&b]) == PLAYERS
    })
    .await;
    assert!(b.streams().metrics().records_restored > 0);
    b.close().await.unwrap();
    check_outputs(&cluster, &want, true).await;
}

on_both_backends!(a_players_records_share_one_partition_number_in_every_topic);

async fn a_players_records_share_one_partition_number_in_every_topic(env: TestEnv) {
    const FEW: usize = 24;
    let events = snapshot_stream(FEW, 3);
    let cluster = Cluster::new(env, registry("co-partitioned")).await;
    let state = tempfile::tempdir().unwrap();
    let processor = cluster.start(state.path()).await;
    cluster.produce(&events).await;
    wait_for(
        "every raw event committed",
        Duration::from_secs(90),
        async || cluster.lag().await == 0,
    )
    .await;
    processor.close().await.unwrap();
    let checked = check_co_partitioned(&cluster).await;
    assert!(checked.values().all(|n| *n > 0), "{checked:?}");
    // Not vacuous: the players are spread over every partition.
    let used: std::collections::BTreeSet<i32> = cluster
        .read_all(cluster.topics.stats_by_category.name())
        .await
        .iter()
        .map(|r| r.partition)
        .collect();
    assert_eq!(used.len(), PARTITIONS as usize);
}
