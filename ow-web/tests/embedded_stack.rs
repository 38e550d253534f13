//! The one-command embedded stack, end to end: a loopback HTTP server plays OverFast with the
//! recorded bodies; a player is looked up on the dashboard (request → producer → raw event →
//! processor → web stores → page); then OverFast answers a second snapshot with bumped counters,
//! "refresh now" is pressed, and the change shows on the page. The processor is paused from the
//! pipeline page while the player is refreshed again: its lag grows, then falls back to zero
//! once it is resumed. Finally the stack restarts on the same state directory and still knows
//! the player.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::{get, post};
use ow_producer::fixture_server::FixtureServer;
use ow_web::embedded::EmbeddedStack;
use ow_web::{WebConfig, app};
use serde_json::Value;

const PLAYER: &str = "TeKrop-2217";

fn config(state_dir: &std::path::Path, overfast: &str) -> WebConfig {
    WebConfig::parse_from([
        "ow-web",
        "--state-dir",
        state_dir.to_str().unwrap(),
        "--overfast-url",
        overfast,
        "--commit-interval-ms",
        "100",
        "--refresh-cooldown",
        "1s",
        "--listen",
        "127.0.0.1:0",
    ])
}

/// Polls the player's JSON until `check` accepts it (a generous safety net, not a speed
/// assertion).
async fn wait_for_player(
    router: &axum::Router,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = get(router, &format!("/api/players/{PLAYER}")).await;
        if answer.status.is_success() {
            let json = answer.json();
            if check(&json) {
                return json;
            }
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The processor's lag on the raw topic, as the pipeline page reports it.
async fn processor_lag(router: &axum::Router) -> i64 {
    let pipeline = get(router, "/api/pipeline").await.json();
    pipeline["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["group"] == "ow-processor")
        .flat_map(|g| g["partitions"].as_array().unwrap().iter())
        .filter(|p| p["topic"] == "ow.raw.player-profiles")
        .filter_map(|p| p["lag"].as_i64())
        .sum()
}

/// Polls the processor's lag until `check` accepts it (a safety net, not a speed assertion).
async fn wait_for_lag(router: &axum::Router, what: &str, check: impl Fn(i64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lag = processor_lag(router).await;
        if check(lag) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}: lag {lag}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bump(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    let updated = v["summary"]["last_updated_at"].as_i64().unwrap();
    v["summary"]["last_updated_at"] = Value::from(updated + 3600);
    let all_heroes = v["stats"]["pc"]["competitive"]["career_stats"]["all-heroes"]
        .as_array_mut()
        .unwrap();
    for category in all_heroes {
        if category["category"] != "game" {
            continue;
        }
        for stat in category["stats"].as_array_mut().unwrap() {
            let add = match stat["key"].as_str().unwrap() {
                "games_played" => 3,
                "games_won" => 2,
                "games_lost" => 1,
                "time_played" => 3600,
                _ => 0,
            };
            let value = stat["value"].as_i64().unwrap();
            stat["value"] = Value::from(value + add);
        }
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_looked_up_on_the_embedded_stack() {
    let overfast = FixtureServer::with_samples().await.unwrap();
    overfast.set_cache_headers(None, None);
    let state = tempfile::tempdir().unwrap();
    let config = config(state.path(), &overfast.url());

    let stack = EmbeddedStack::start(&config).await.unwrap();
    let router = app(stack.app_state(config.settings()).unwrap());

    // A player nobody has looked at: a request goes out and the page waits.
    let first = get(&router, &format!("/players/{PLAYER}")).await;
    assert!(first.status.is_success(), "{}", first.status);
    let json = wait_for_player(&router, "the first snapshot", |j| {
        j["status"]["state"] == "ready" && j["status"]["has_stats"] == true
    })
    .await;
    assert_eq!(json["profile"]["username"], "TeKrop");
    assert_eq!(overfast.hits(PLAYER), 1);
    let page = get(
        &router,
        &format!("/players/{PLAYER}?platform=pc&mode=competitive"),
    )
    .await;
    assert!(
        page.body.contains("Games Played"),
        "the game category is shown"
    );
    assert!(!page.body.contains('▲'), "no change yet");

    // OverFast now has three more games; "refresh now" fetches them.
    let body = std::fs::read_to_string(FixtureServer::samples_dir().join(format!("{PLAYER}.json")))
        .unwrap();
    overfast.add_profile(PLAYER, bump(&body));
    let refreshed = post(&router, &format!("/players/{PLAYER}/refresh")).await;
    assert!(
        refreshed.status.is_redirection() || refreshed.status.is_success(),
        "{}",
        refreshed.status
    );
    wait_for_player(&router, "the second snapshot's deltas", |j| {
        j.to_string().contains("\"games_played\":3.0")
            || j.to_string().contains("\"games_played\":3,")
    })
    .await;
    assert_eq!(overfast.hits(PLAYER), 2);
    // The web's stores follow the processor's topics each at its own pace: the deltas may be
    // in before the new snapshot's stats, and a card shows a change only next to the stats
    // of the snapshot it belongs to. The page catches up once both are in.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let page = get(
            &router,
            &format!("/players/{PLAYER}?platform=pc&mode=competitive"),
        )
        .await;
        if page.body.contains('▲') {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change since the previous snapshot is shown"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The pipeline page sees all three stages and no lag left.
    let pipeline = get(&router, "/api/pipeline").await.json();
    let stages: Vec<&str> = pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["producer", "processor", "web"]);

    // The lesson of the pipeline page: pause the processor, refresh the player, and the
    // processor's lag on the raw topic grows; resume it, and the lag falls back to zero.
    wait_for_lag(&router, "no lag before the pause", |lag| lag == 0).await;
    let paused = post(&router, "/pipeline/stages/processor/pause").await;
    assert!(paused.status.is_redirection(), "{}", paused.status);
    let pipeline = get(&router, "/api/pipeline").await.json();
    assert_eq!(pipeline["stages"][1]["paused"], true);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the refresh cooldown
    let refreshed = post(&router, &format!("/players/{PLAYER}/refresh")).await;
    assert!(
        refreshed.status.is_redirection() || refreshed.status.is_success(),
        "{}",
        refreshed.status
    );
    wait_for_lag(&router, "lag while the processor is paused", |lag| lag >= 1).await;
    assert_eq!(overfast.hits(PLAYER), 3, "the producer kept working");
    // Still there a moment later: nobody is consuming.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(processor_lag(&router).await >= 1);
    let resumed = post(&router, "/pipeline/stages/processor/resume").await;
    assert!(resumed.status.is_redirection(), "{}", resumed.status);
    wait_for_lag(&router, "the lag back to zero after resuming", |lag| {
        lag == 0
    })
    .await;

    drop(router);
    stack.close().await.unwrap();

    // Data survives a restart.
    let stack = EmbeddedStack::start(&config).await.unwrap();
    let router = app(stack.app_state(config.settings()).unwrap());
    let json = wait_for_player(&router, "the player after a restart", |j| {
        j["status"]["has_stats"] == true
    })
    .await;
    assert_eq!(json["profile"]["username"], "TeKrop");
    drop(router);
    stack.close().await.unwrap();
}

/// `--topic-prefix` is a namespace for the whole stack: every topic, and every stage's
/// application id (so its consumer group, internal topics and state directory), carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_prefix_namespaces_topics_groups_and_state() {
    let overfast = FixtureServer::with_samples().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut args = vec![
        "ow-web".to_string(),
        "--state-dir".into(),
        state.path().to_str().unwrap().into(),
        "--overfast-url".into(),
        overfast.url(),
        "--commit-interval-ms".into(),
        "100".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(["--topic-prefix".into(), "staging.".into()]);
    let config = WebConfig::parse_from(args);
    let stack = EmbeddedStack::start(&config).await.unwrap();
    let router = app(stack.app_state(config.settings()).unwrap());
    let first = get(&router, &format!("/players/{PLAYER}")).await;
    assert!(first.status.is_success(), "{}", first.status);
    wait_for_player(&router, "the first snapshot", |j| {
        j["status"]["has_stats"] == true
    })
    .await;

    let pipeline = get(&router, "/api/pipeline").await.json();
    let mut groups: Vec<&str> = pipeline["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for group in [
        "staging.ow-processor",
        "staging.ow-producer",
        "staging.ow-web",
    ] {
        assert!(groups.contains(&group), "{group} not in {groups:?}");
    }
    assert!(
        groups.iter().all(|g| g.starts_with("staging.")),
        "a group outside the namespace: {groups:?}"
    );
    let topics: Vec<&str> = pipeline["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        topics.contains(&"staging.ow.raw.player-profiles"),
        "{topics:?}"
    );
    assert!(
        topics.iter().all(|t| t.starts_with("staging.")),
        "a topic outside the namespace: {topics:?}"
    );
    assert!(state.path().join("staging.ow-processor").is_dir());
    drop(router);
    stack.close().await.unwrap();
}
