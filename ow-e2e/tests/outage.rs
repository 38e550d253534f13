//! Scenario 3: the broker stops for 30 s while tracked players are being refreshed, then comes
//! back on the same data. Every stage reconnects by itself (no process exits or is restarted),
//! the web reports the outage on `/healthz` (503 with a reason) and on the pipeline page while
//! it lasts and recovers after, and nothing is lost: each player's stats end up those of the
//! last body the OverFast stand-in served.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ow_e2e::bodies::{self, web_stat};
use ow_e2e::{Options, Pipeline, eventually};

const PLAYERS: &[&str] = &["Outage-1001", "Outage-1002", "Outage-1003"];
/// More snapshots than the run fetches: every fetch brings new counters.
const SNAPSHOTS: u32 = 200;
const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_rides_out_a_30_s_broker_outage() {
    let mut pipeline = Pipeline::start(Options {
        producer_args: vec![
            "--track".into(),
            PLAYERS.join(","),
            "--refresh-interval".into(),
            "2s".into(),
        ],
        profiles: PLAYERS
            .iter()
            .map(|p| ((*p).to_owned(), bodies::snapshots(p, SNAPSHOTS)))
            .collect(),
        ..Options::default()
    })
    .await;
    for player in PLAYERS {
        eventually(
            &format!("{player} has stats and a second snapshot"),
            Duration::from_secs(120),
            || async {
                let (_, body) = pipeline.get(&format!("/api/players/{player}")).await;
                let first = bodies::body_stat(0, "all-heroes", "game", "games_played")?;
                let games = web_stat(&body, "all-heroes", "game", "games_played")?;
                (games > first).then_some(())
            },
        )
        .await;
    }

    // The outage.
    let hits_before = pipeline.overfast.total_hits();
    let down_at = Instant::now();
    pipeline.broker.kill();
    let health = eventually(
        "/healthz reports the outage",
        Duration::from_secs(30),
        || async {
            match pipeline.try_get("/healthz").await {
                Ok((503, body)) if body["brokers"]["reachable"] == false => Some(body),
                _ => None,
            }
        },
    )
    .await;
    let reason = health["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unreachable"), "{health}");
    let page = pipeline
        .http()
        .get(format!("{}/pipeline", pipeline.web_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Kafka brokers have been unreachable"),
        "the pipeline page does not report the outage"
    );
    let detected_after = down_at.elapsed();
    tokio::time::sleep(OUTAGE.saturating_sub(down_at.elapsed())).await;
    let outage = down_at.elapsed();
    pipeline.broker.restart();

    // Back: every stage reconnects by itself.
    pipeline.wait_healthy(Duration::from_secs(90)).await;
    let page = pipeline
        .http()
        .get(format!("{}/pipeline", pipeline.web_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Kafka brokers have been unreachable"));
    // The producer writes again: more fetches after the outage than before it ended.
    eventually(
        "the producer fetches again",
        Duration::from_secs(60),
        || async { (pipeline.overfast.total_hits() > hits_before + PLAYERS.len()).then_some(()) },
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
        assert_eq!(p.starts(), 1, "{} was restarted", p.name());
    }
    println!(
        "e2e summary: scenario 3 (broker outage): broker down {:.0} s (the web reported it after {:.1} s), every stage reconnected by itself, {compared} players' last snapshots, every delta and daily sum arrived",
        outage.as_secs_f64(),
        detected_after.as_secs_f64()
    );
}
