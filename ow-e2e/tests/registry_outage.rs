//! Scenario 6: the schema registry is killed for 30 s while tracked players are refreshed.
//! Stages that hold their schemas already keep working (the producer writes, the processors
//! process, the web shows new stats); anything that needs a schema it has not seen fails
//! clearly: a processor started during the outage stops at start-up naming the registry, and
//! the web's first player request answers 503-class with a notice (its log names the registry). When the registry is back (same
//! state directory, same schema ids) everything recovers, and nothing was lost: each player's
//! stats, deltas and daily sums cover every snapshot served.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ow_e2e::bodies::{self, web_stat};
use ow_e2e::{Options, Pipeline, eventually};

const PLAYERS: &[&str] = &[
    "Registry-1001",
    "Registry-1002",
    "Registry-1003",
    "Registry-1004",
    "Registry-1005",
    "Registry-1006",
];
/// A player nobody tracks: the web asks for it during the outage.
const NEW_PLAYER: &str = "Registry-2001";
/// More snapshots than the run fetches: every fetch brings new counters.
const SNAPSHOTS: u32 = 300;
const OUTAGE: Duration = Duration::from_secs(30);

async fn games(pipeline: &Pipeline, player: &str) -> Option<f64> {
    let (_, body) = pipeline.get(&format!("/api/players/{player}")).await;
    web_stat(&body, "all-heroes", "game", "games_played")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_with_cached_schemas_ride_out_a_30_s_registry_outage() {
    let mut profiles: Vec<(String, Vec<Vec<u8>>)> = PLAYERS
        .iter()
        .map(|p| ((*p).to_owned(), bodies::snapshots(p, SNAPSHOTS)))
        .collect();
    profiles.push((NEW_PLAYER.to_owned(), bodies::snapshots(NEW_PLAYER, 2)));
    let mut pipeline = Pipeline::start(Options {
        processors: 2,
        producer_args: vec![
            "--track".into(),
            PLAYERS.join(","),
            "--refresh-interval".into(),
            "2s".into(),
        ],
        profiles,
        ..Options::default()
    })
    .await;
    let first = bodies::body_stat(0, "all-heroes", "game", "games_played").unwrap();
    for player in PLAYERS {
        eventually(
            &format!("{player} has stats and a second snapshot"),
            Duration::from_secs(120),
            || async { (games(&pipeline, player).await? > first).then_some(()) },
        )
        .await;
    }

    // The outage.
    let mut before = HashMap::new();
    for player in PLAYERS {
        before.insert(*player, games(&pipeline, player).await.unwrap());
    }
    let down_at = Instant::now();
    pipeline.registry.kill();

    // Cached schemas: the producer fetches and writes, the processors turn the answers into
    // stats, and the web reads them, with no registry.
    for player in PLAYERS {
        let was = before[player];
        eventually(
            &format!("{player}'s stats advance without the registry"),
            Duration::from_secs(20),
            || async { (games(&pipeline, player).await? > was).then_some(()) },
        )
        .await;
    }
    let advanced_after = down_at.elapsed();
    assert!(
        advanced_after < OUTAGE,
        "the stats took {advanced_after:?} to advance"
    );

    // A processor started now has no schema cached: it must register its output schemas
    // first, and stops saying why.
    // (SIGTERM, so that it leaves the consumer group: a SIGKILLed member is scenario 2's.)
    let restarted = &mut pipeline.processors[1];
    assert!(
        restarted.terminate(Duration::from_secs(30)).is_some(),
        "processor-2 did not stop on SIGTERM"
    );
    restarted.restart();
    let status = eventually(
        "the processor started during the outage stops",
        Duration::from_secs(60),
        || {
            let status = restarted.exited();
            async move { status }
        },
    )
    .await;
    assert!(!status.success(), "{status}");
    assert!(
        restarted.log_count("cannot reach schema registry") > 0,
        "the processor's log does not name the registry:\n{}",
        restarted.log_tail(20)
    );

    // The web has never written a player request: the first needs its schema registered.
    let (status, page) = pipeline
        .raw_request("GET", &format!("/players/{NEW_PLAYER}"))
        .await;
    assert!(
        (500..600).contains(&status),
        "a request that cannot be written answers {status}"
    );
    // The player is told the pipeline could not take it; the operator's log names the cause.
    assert!(
        page.contains("could not be handed to the pipeline"),
        "the page does not say what is wrong: {page}"
    );
    assert!(
        pipeline.web.log_count("cannot reach schema registry") > 0,
        "the web's log does not name the registry:\n{}",
        pipeline.web.log_tail(20)
    );
    assert_eq!(pipeline.overfast.hits(NEW_PLAYER), 0);

    // Back, on the same state directory.
    tokio::time::sleep(OUTAGE.saturating_sub(down_at.elapsed())).await;
    let outage = down_at.elapsed();
    pipeline.registry.restart();
    let subjects = format!("{}/subjects", pipeline.registry_url());
    eventually("the registry answers", Duration::from_secs(60), || async {
        let r = pipeline.http().get(&subjects).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    pipeline.processors[1].restart();
    let (status, _) = pipeline.get(&format!("/players/{NEW_PLAYER}")).await;
    assert_eq!(
        status, 200,
        "the request is written once the registry is back"
    );
    eventually(
        &format!("{NEW_PLAYER} has stats"),
        Duration::from_secs(120),
        || async { games(&pipeline, NEW_PLAYER).await },
    )
    .await;

    // A clean stop of the producer: everything it fetched is written.
    assert!(
        pipeline
            .producer
            .terminate(Duration::from_secs(30))
            .is_some(),
        "the producer did not stop on SIGTERM"
    );
    let mut compared = 0;
    for player in PLAYERS {
        let hits = u32::try_from(pipeline.overfast.hits(player)).unwrap();
        assert!(hits < SNAPSHOTS, "{player}: the sequence ran out");
        // Every snapshot served made it through: one delta per snapshot after the first, and
        // the daily sums add up to the whole change.
        pipeline.wait_for_complete_history(player, hits - 1).await;
        compared += 1;
    }
    let exited = pipeline.exited_but_producer();
    assert!(exited.is_empty(), "{exited:?}");
    for p in pipeline.processes() {
        let expected = match p.name() {
            "registry" => 2,
            "processor-2" => 3,
            _ => 1,
        };
        assert_eq!(p.starts(), expected, "{} starts", p.name());
    }
    println!(
        "e2e summary: scenario 6 (registry outage): registry down {:.0} s; with cached schemas every stage went on (stats advanced after {:.1} s); a processor started meanwhile and the web's first request failed naming the registry; {compared} players' stats, deltas and daily sums complete after it came back",
        outage.as_secs_f64(),
        advanced_after.as_secs_f64()
    );
}
