//! Scenario 1: a recorded player looked up through the web's HTTP API shows its stats; a
//! refresh brings a second snapshot, whose deltas and daily sums the web then shows too. Every
//! stage is its own process, on tansu.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ow_e2e::bodies::{self, web_stat};
use ow_e2e::{Options, Pipeline, eventually};
use serde_json::Value;

const PLAYER: &str = "TeKrop-2217";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looked_up_player_shows_stats_then_deltas_and_daily_sums() {
    let mut pipeline = Pipeline::start(Options::default()).await;
    pipeline
        .overfast
        .add_profile_sequence(PLAYER, bodies::snapshots(PLAYER, 2));

    // A player the pipeline has never seen: the page asks for it.
    let (status, _) = pipeline.get(&format!("/players/{PLAYER}")).await;
    assert_eq!(status, 200);
    let first = eventually(
        "the first snapshot's stats and profile",
        Duration::from_secs(120),
        || async {
            let (_, body) = pipeline.get(&format!("/api/players/{PLAYER}")).await;
            // Stats and profile come from different topics and stores: wait for both.
            let profile_ready = body["profile"]["username"].is_string();
            web_stat(&body, "all-heroes", "game", "games_played")
                .filter(|_| profile_ready)
                .map(|_| body)
        },
    )
    .await;
    let games_0 = bodies::body_stat(0, "all-heroes", "game", "games_played").unwrap();
    assert_eq!(
        web_stat(&first, "all-heroes", "game", "games_played"),
        Some(games_0)
    );
    assert_eq!(first["profile"]["username"], "TeKrop");
    assert_eq!(pipeline.overfast.hits(PLAYER), 1);

    // A refresh: the stand-in answers with the second snapshot (one more game of everything).
    let status = pipeline.post(&format!("/players/{PLAYER}/refresh")).await;
    assert_eq!(status, 303, "a refresh redirects to the player page");
    let second = eventually(
        "the second snapshot's deltas and daily sums",
        Duration::from_secs(120),
        || async {
            let (_, body) = pipeline.get(&format!("/api/players/{PLAYER}")).await;
            let delta = &body["deltas"]["platforms"]["pc"]["competitive"]["all-heroes"];
            let day = body["history"]["platforms"]["pc"]["competitive"]
                .as_object()
                .and_then(|days| days.values().next().cloned());
            (delta.is_object() && day.is_some()).then_some(body)
        },
    )
    .await;
    let games_1 = bodies::body_stat(1, "all-heroes", "game", "games_played").unwrap();
    assert_eq!(
        web_stat(&second, "all-heroes", "game", "games_played"),
        Some(games_1),
        "the stats are the second snapshot's"
    );
    let delta = &second["deltas"]["platforms"]["pc"]["competitive"]["all-heroes"];
    assert_eq!(delta["games_played"].as_f64(), Some(games_1 - games_0));
    assert_eq!(delta["player_id"], PLAYER);
    let days: Vec<&Value> = second["history"]["platforms"]["pc"]["competitive"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert_eq!(days.len(), 1, "one day of history: {days:?}");
    assert_eq!(days[0]["games_played"].as_f64(), Some(games_1 - games_0));
    assert_eq!(days[0]["delta_count"], 1);
    assert_eq!(pipeline.overfast.hits(PLAYER), 2);

    let exited = pipeline.exited();
    assert!(exited.is_empty(), "{exited:?}");
    println!(
        "e2e summary: scenario 1 (lookup) passed: stats, deltas and daily sums of {PLAYER} through the web's API"
    );
}
