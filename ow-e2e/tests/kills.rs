//! Scenario 2: two `ow-processor` instances in one consumer group while 100 tracked players
//! are refreshed; one and then the other is killed with SIGKILL at random moments, 20 times or
//! more in all, and restarted each time. At the end every player's stats, deltas and daily sums,
//! as the web serves them, equal those of a run of the same players without kills.
//!
//! The processors run at least once (Kafka exactly-once needs transactions, which tansu 0.6.0
//! does not have): a kill may make a processor write a delta again. The web keeps the latest
//! delta per (player, platform, game mode, hero), so a repeated, identical copy is the
//! documented dedupe and changes nothing it serves; daily sums come from a store that commits
//! with the input offsets, so they are exact.
//!
//! A SIGKILLed member stays in the group until its session times out, holding its partitions:
//! the processors run with `session.timeout.ms=6000` so that each kill stalls its partitions
//! for seconds rather than the default 45.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ow_e2e::bodies;
use ow_e2e::{Options, Pipeline, eventually};
use rand::Rng;
use serde_json::Value;

const PLAYERS: usize = 100;
/// Snapshots per player; once served, the last one again (deduplicated by the processor).
const SNAPSHOTS: u32 = 20;
const KILLS: usize = 20;

fn players() -> Vec<String> {
    (0..PLAYERS).map(|i| format!("Kill-{}", 1001 + i)).collect()
}

fn options(refresh: &str) -> Options {
    let players = players();
    Options {
        partitions: 4,
        processors: 2,
        producer_args: vec![
            "--track".into(),
            players.join(","),
            "--refresh-interval".into(),
            refresh.into(),
            // A fetch waits for tansu to acknowledge its record (about a second): enough in
            // flight for a hundred players.
            "--overfast-concurrency".into(),
            "64".into(),
        ],
        processor_args: vec![
            "--kafka-config".into(),
            "session.timeout.ms=6000,heartbeat.interval.ms=1000".into(),
        ],
        profiles: players
            .iter()
            .map(|p| (p.clone(), bodies::snapshots(p, SNAPSHOTS)))
            .collect(),
        ..Options::default()
    }
}

/// Stamps of when the producer fetched a snapshot: they differ between any two runs.
const FETCH_TIMES: &[&str] = &["snapshot_at", "previous_snapshot_at", "last_snapshot_at"];

/// `value` without the [`FETCH_TIMES`] fields, at any depth.
fn without_fetch_times(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !FETCH_TIMES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_fetch_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_fetch_times).collect()),
        other => other.clone(),
    }
}

/// What is compared of a player's JSON: the stats, the deltas and the daily sums, without the
/// fetch times. (The daily sums are keyed by the day of the fetch: a run that crosses midnight
/// UTC between the two runs would differ there.)
fn compared(body: &Value) -> Value {
    without_fetch_times(&serde_json::json!({
        "categories": body["categories"],
        "deltas": body["deltas"],
        "history": body["history"],
    }))
}

/// The first place where `a` and `b` differ, as a JSON path with both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (va, vb) = (&x.get(key), &y.get(key));
                match (va, vb) {
                    (Some(va), Some(vb)) => {
                        if let Some(d) = first_difference(&format!("{path}.{key}"), va, vb) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{path}.{key}: {va:?} vs {vb:?}")),
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// The consumer group of the processors.
const GROUP: &str = "ow-processor";

/// Works around a defect of tansu 0.6.0's group coordinator, visibly: when a SIGKILLed member
/// expires while a rebalance is under way, tansu may keep the leader's assignment of the old
/// member list, and the dead member's partitions then belong to nobody until the next
/// membership change ([`Broker::orphaning_members`](ow_e2e::broker::Broker::orphaning_members)).
/// Once the kills are over this waits for a formed generation; if its assignment names a
/// member that is gone, one processor is restarted cleanly (SIGTERM: it leaves the group, so
/// the rebalance that follows has only live members), and it looks again. Returns how many
/// restarts it took (each is printed; the scenario's kills are not counted among them).
async fn repair_orphaned_partitions(pipeline: &mut Pipeline) -> usize {
    let mut repairs = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Past the session timeout (6 s): the last killed member has expired.
    tokio::time::sleep(Duration::from_secs(8)).await;
    loop {
        assert!(
            Instant::now() < deadline,
            "the processors' group did not settle on an assignment of live members in 120 s"
        );
        match pipeline.broker.orphaning_members(GROUP) {
            None => {}
            Some(gone) if gone.is_empty() => return repairs,
            Some(gone) => {
                assert!(
                    repairs < 5,
                    "tansu orphaned partitions again after {repairs} repairs"
                );
                println!(
                    "tansu 0.6.0 assigned partitions of {GROUP} to members that are gone ({gone:?}): restarting processor-1 cleanly"
                );
                let victim = &mut pipeline.processors[0];
                assert!(
                    victim.terminate(Duration::from_secs(30)).is_some(),
                    "processor-1 did not stop on SIGTERM"
                );
                victim.restart();
                repairs += 1;
                tokio::time::sleep(Duration::from_secs(8)).await;
                continue;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until the OverFast stand-in has served every snapshot of every player, stops the
/// producer cleanly, then waits until the web shows every player's last snapshot with all its
/// deltas; what the web then serves, per player.
async fn final_state(pipeline: &mut Pipeline) -> BTreeMap<String, Value> {
    let players = players();
    eventually(
        "every snapshot of every player is served",
        Duration::from_secs(300),
        || {
            let exited = pipeline.producer.exited();
            assert!(
                exited.is_none(),
                "the producer exited: {exited:?}\n{}",
                pipeline.producer.log_tail(20)
            );
            let served = players
                .iter()
                .all(|p| pipeline.overfast.hits(p) >= SNAPSHOTS as usize);
            async move { served.then_some(()) }
        },
    )
    .await;
    assert!(
        pipeline
            .producer
            .terminate(Duration::from_secs(30))
            .is_some(),
        "the producer did not stop on SIGTERM"
    );
    let mut out = BTreeMap::new();
    for player in &players {
        let body = pipeline
            .wait_for_complete_history(player, SNAPSHOTS - 1)
            .await;
        out.insert(player.clone(), compared(&body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_of_two_processors_change_no_stat_delta_or_daily_sum() {
    // The run without kills (quick refreshes: only the order of a player's snapshots matters).
    let reference = {
        let mut pipeline = Pipeline::start(options("1s")).await;
        let state = final_state(&mut pipeline).await;
        let exited = pipeline.exited_but_producer();
        assert!(exited.is_empty(), "reference run: {exited:?}");
        state
    };

    // The run with kills: refreshes slow enough that snapshots keep coming while the
    // processors are killed.
    let mut pipeline = Pipeline::start(options("4s")).await;
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut kills = 0;
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..6_000))).await;
        let victim = &mut pipeline.processors[kills % 2];
        assert!(
            victim.is_running(),
            "{} exited by itself:\n{}",
            victim.name(),
            victim.log_tail(20)
        );
        victim.kill();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..3_000))).await;
        victim.restart();
    }
    let killing = started.elapsed();
    let repairs = repair_orphaned_partitions(&mut pipeline).await;
    let state = final_state(&mut pipeline).await;

    let mut differing = Vec::new();
    for (player, want) in &reference {
        if state.get(player) != Some(want) {
            differing.push(player.clone());
        }
    }
    if let Some(first) = differing.first() {
        let at = first_difference("", &state[first], &reference[first]);
        panic!(
            "{} players differ from the run without kills; {first} (with kills vs without) at {}",
            differing.len(),
            at.unwrap_or_default()
        );
    }
    let exited = pipeline.exited_but_producer();
    assert!(exited.is_empty(), "{exited:?}");
    let restarts: usize = pipeline.processors.iter().map(|p| p.starts() - 1).sum();
    assert_eq!(restarts, KILLS + repairs);
    println!(
        "e2e summary: scenario 2 (kills): {kills} SIGKILLs of 2 processors in {:.0} s survived; {} players' stats, deltas and daily sums identical to a run without kills ({repairs} clean restart(s) to undo tansu's orphaned assignments)",
        killing.as_secs_f64(),
        reference.len()
    );
}
