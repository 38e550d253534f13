//! A producer that stops as a crash would (aborted mid-stream, fetches in flight) resumes from
//! its committed offsets: answered requests are not fetched again, pending ones are not lost.
//! On librdkafka's mock cluster and on the library's local log.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, PATIENCE, samples_server, small_profile, wait_for, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_without_refetching_or_losing_requests_on_the_mock_cluster() {
    restart_resumes(Env::mock(1).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_without_refetching_or_losing_requests_on_the_local_log() {
    restart_resumes(Env::local(1).await).await;
}

async fn restart_resumes(env: Env) {
    let server = samples_server().await;
    let players = [
        "Ann-1111", "Bob-2222", "Cid-3333", "Dan-4444", "Eve-5555", "Fay-6666",
    ];
    for player in players {
        server.add_profile(player, small_profile(player));
    }
    let state = tempfile::tempdir().unwrap();
    let producer = ow_producer::start(env.producer_config(&server, state.path()))
        .await
        .unwrap();

    // D and E stay in flight until after the crash.
    let hold_d = server.hold("Dan-4444");
    let hold_e = server.hold("Eve-5555");
    for player in &players[..5] {
        env.search(player).await;
    }
    wait_until(
        "A, B and C committed while D and E are in flight",
        PATIENCE,
        || async {
            env.committed(ow_producer::APPLICATION_ID).await == [Some(3)]
                && server.hits("Dan-4444") == 1
                && server.hits("Eve-5555") == 1
        },
    )
    .await;
    assert_eq!(producer.metrics().in_flight, 2);
    producer.abort();
    hold_d.release();
    hold_e.release();

    let producer = ow_producer::start(env.producer_config(&server, state.path()))
        .await
        .unwrap();
    env.search(players[5]).await;
    env.wait_all_committed().await;
    assert_eq!(env.committed(ow_producer::APPLICATION_ID).await, [Some(6)]);

    // Answered before the crash: fetched once. In flight at the crash: fetched again, once.
    for (player, hits) in players.iter().zip([1, 1, 1, 2, 2, 1]) {
        assert_eq!(server.hits(player), hits, "{player}");
    }
    // One raw event each: the fetches the crash interrupted wrote nothing.
    let counts = env.raw_counts().await;
    assert_eq!(counts.len(), 6);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let m = producer.metrics();
    assert_eq!(m.requests_consumed, 3, "D and E again, and F");
    assert_eq!(m.raw_events_written, 3);
    // The tracked players came back from the state file and the tracker's group.
    wait_for("six tracked players", PATIENCE, || {
        producer.tracked_players().len() == 6
    })
    .await;
    assert_eq!(m.scheduled_fetches, 0, "answered players are fresh");
    producer.close().await.unwrap();
}
