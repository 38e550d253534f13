//! Tracked players: refreshed on schedule (never while OverFast's cache is fresh), no longer
//! polled once nobody asked for them for the untrack time, and kept across restarts (from the
//! state file, or rebuilt from the requests topic when the file is gone). The schedule runs on a
//! manual clock; Kafka, HTTP and the tasks run in real time. On librdkafka's mock cluster and on
//! the library's local log.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, PATIENCE, samples_server, small_profile, wait_for, wait_passes};
use ow_domain::RequestOrigin;
use ow_producer::clock::{Clock, ManualClock};
use ow_producer::fixture_server::FixtureServer;
use ow_producer::topics::raw_event_headers;
use ow_producer::{ProducerConfig, TrackingConfig};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_players_follow_the_schedule_on_the_mock_cluster() {
    tracked_players_follow_the_schedule(Env::mock(2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_players_follow_the_schedule_on_the_local_log() {
    tracked_players_follow_the_schedule(Env::local(2).await).await;
}

fn config(env: &Env, server: &FixtureServer, state: &Path, clock: &ManualClock) -> ProducerConfig {
    let tracking = TrackingConfig::default()
        .with_players(vec![common::id("Conf-1111")])
        .with_refresh_interval(10 * MINUTE)
        .with_untrack_after(60 * MINUTE)
        .with_check_interval(Duration::from_millis(20));
    env.producer_config(server, state)
        .with_tracking(tracking)
        .with_clock(clock.clone())
}

fn hits(server: &FixtureServer) -> [usize; 3] {
    [
        server.hits("Conf-1111"),
        server.hits("Req-2222"),
        server.hits("Viewer-3333"),
    ]
}

async fn tracked_players_follow_the_schedule(env: Env) {
    let server = samples_server().await;
    for player in ["Conf-1111", "Req-2222", "Viewer-3333"] {
        server.add_profile(player, small_profile(player));
    }
    let clock = ManualClock::starting_now();
    let t0 = clock.now_ms();
    let state = tempfile::tempdir().unwrap();
    let producer = ow_producer::start(config(&env, &server, state.path(), &clock))
        .await
        .unwrap();

    // The configured player is fetched at once; requested players by their request.
    wait_for("the configured player fetched", PATIENCE, || {
        producer.metrics().scheduled_fetches == 1
    })
    .await;
    env.request("Req-2222", "search-1", RequestOrigin::Search, t0)
        .await;
    env.request("Viewer-3333", "view-1", RequestOrigin::View, t0)
        .await;
    wait_for("both requests answered", PATIENCE, || {
        producer.metrics().raw_events_written == 3
    })
    .await;
    // A view of fresh data fetches nothing.
    env.request("Req-2222", "view-2", RequestOrigin::View, t0)
        .await;
    wait_for("the view answered from fresh data", PATIENCE, || {
        producer.metrics().requests_fresh == 1
    })
    .await;
    wait_for("three tracked players", PATIENCE, || {
        producer.metrics().tracked == 3
    })
    .await;
    assert_eq!(hits(&server), [1, 1, 1]);
    let tracked = producer.tracked_players();
    let names: Vec<&str> = tracked.iter().map(|t| t.player_id.as_str()).collect();
    assert_eq!(names, ["Conf-1111", "Req-2222", "Viewer-3333"]);
    assert!(tracked[0].configured && !tracked[1].configured);
    assert_eq!(tracked[1].last_viewed_at, Some(t0));

    // Five minutes on, everything is still in OverFast's cache: nothing is fetched.
    clock.advance(5 * MINUTE);
    wait_passes(&producer, 3).await;
    assert_eq!(hits(&server), [1, 1, 1]);
    assert_eq!(producer.metrics().in_flight, 0);

    // Ten minutes after the fetches, each tracked player is refreshed once.
    clock.advance(5 * MINUTE + Duration::from_secs(1));
    wait_for("three refreshes", PATIENCE, || hits(&server) == [2, 2, 2]).await;
    wait_for("the refreshes written", PATIENCE, || {
        producer.metrics().raw_events_written == 6
    })
    .await;
    wait_passes(&producer, 3).await;
    assert_eq!(hits(&server), [2, 2, 2]);
    assert_eq!(producer.metrics().scheduled_fetches, 4);
    producer.close().await.unwrap();
    let scheduled: Vec<_> = env
        .raw_events()
        .await
        .into_iter()
        .filter(|e| {
            e.header_values(raw_event_headers::TRIGGER) == [raw_event_headers::TRIGGER_SCHEDULE]
        })
        .collect();
    assert_eq!(scheduled.len(), 4);
    assert!(scheduled.iter().all(|e| {
        e.event
            .request_id
            .starts_with(&format!("schedule-{}-", e.key))
    }));

    // A restart keeps the tracked set and the fetch times: nothing is due yet.
    let producer = ow_producer::start(config(&env, &server, state.path(), &clock))
        .await
        .unwrap();
    wait_for("three tracked players after the restart", PATIENCE, || {
        producer.metrics().tracked == 3
    })
    .await;
    wait_passes(&producer, 3).await;
    assert_eq!(hits(&server), [2, 2, 2]);
    let group = producer.tracker_group().unwrap().to_owned();
    producer.close().await.unwrap();

    // Without the state file, the tracked set is rebuilt from the requests topic under a new
    // tracker group; the fetch times are lost, so each player is refreshed once.
    std::fs::remove_file(state.path().join("ow-producer/tracked-players.json")).unwrap();
    let producer = ow_producer::start(config(&env, &server, state.path(), &clock))
        .await
        .unwrap();
    assert_ne!(producer.tracker_group(), Some(group.as_str()));
    wait_for("the rebuilt set refreshed", PATIENCE, || {
        hits(&server) == [3, 3, 3]
    })
    .await;
    wait_for("three tracked players after the rebuild", PATIENCE, || {
        producer.metrics().tracked == 3
    })
    .await;
    wait_for("the refreshes written", PATIENCE, || {
        producer.metrics().raw_events_written == 3
    })
    .await;

    // An hour after the last requests, the requested players are no longer polled; the
    // configured one still is.
    clock.set(t0 + 61 * 60_000);
    wait_for("one tracked player", PATIENCE, || {
        producer.metrics().tracked == 1
    })
    .await;
    wait_for("the configured player refreshed", PATIENCE, || {
        hits(&server)[0] == 4
    })
    .await;
    wait_passes(&producer, 3).await;
    assert_eq!(hits(&server), [4, 3, 3]);
    let tracked = producer.tracked_players();
    assert_eq!(tracked.len(), 1);
    assert_eq!(tracked[0].player_id.as_str(), "Conf-1111");

    // A new view tracks a player again, and its stale data is fetched.
    env.request("Viewer-3333", "view-3", RequestOrigin::View, clock.now_ms())
        .await;
    wait_for("the viewer fetched again", PATIENCE, || {
        hits(&server) == [4, 3, 4]
    })
    .await;
    wait_for("two tracked players", PATIENCE, || {
        producer.metrics().tracked == 2
    })
    .await;
    producer.close().await.unwrap();
    env.wait_all_committed().await;
}
