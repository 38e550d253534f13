//! The processor on the local backend, killed with `kill -9` over and over in child
//! processes — at random times, and at random steps inside its commits (under exactly-once the
//! log's `ow_stream_log::txn` trace events: data written, decision written, each marker, the
//! group offsets, the end; under at-least-once the local collector's appends, one partition
//! after the other: outputs, changelog records, then each changelog's commit marker) — then
//! run to the end of its input:
//!
//! - under `ExactlyOnce`, every output topic read with read_committed is **identical**, partition
//!   by partition and record by record, to a straight run's (no duplicate delta, nothing
//!   missing), and matches the topology's output in the test driver;
//! - under `AtLeastOnce`, nothing is lost and the stores are exact: every delta of the straight
//!   run is there, none that it does not have (repeated copies allowed, each identical), and
//!   the tables and daily sums are the straight run's.
//!
//! The children are this test binary, re-executed with `OW_CRASH_CHILD` set: the `child_entry`
//! test does nothing unless that variable is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::pipeline::{Outputs, drive};
use common::stream::{StreamEvent, snapshot_stream, with_duplicates};
use ow_processor::{APPLICATION_ID, ProcessorConfig, Topics};
use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::Producer;
use ow_stream_core::config::{Backend, ProcessingGuarantee, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::{Headers, RawRecord, Record};
use ow_stream_log::{Isolation, Log, LogOptions};
use rand::Rng;

const CHILD: &str = "OW_CRASH_CHILD";
const ROOT: &str = "OW_CRASH_ROOT";
/// The child kills itself at this step (counted from its start), if set.
const KILL_AT_STEP: &str = "OW_CRASH_KILL_AT_STEP";
/// The trace events under exactly-once: the steps of the log's transactions.
const TXN_STEPS: &str = "ow_stream_log::txn";
/// The trace events under at-least-once: the local collector's appends.
const APPEND_STEPS: &str = "ow_stream_core::local::append";
const PARTITIONS: i32 = 4;
const PLAYERS: usize = 24;
const SNAPSHOTS: usize = 5;
const ROUNDS: usize = 50;
/// Time retention of the topics: the stream's records are stamped in 2024.
const KEEP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
const OUTPUTS: [&str; 4] = [
    "ow.stats.by-category",
    "ow.players.profile",
    "ow.stats.deltas",
    "ow.stats.daily",
];

fn guarantee(name: &str) -> ProcessingGuarantee {
    ProcessingGuarantee::parse(name).unwrap()
}

/// The processor's settings on the log under `root`: small batches and quick commits, so kills
/// land in the middle of batches and commits.
///
/// The record cache is off: with it, the updates of a table that reach its output topic are
/// the latest of each key *at each commit*, so a run whose commits fall elsewhere (every run
/// after a kill) writes a different, equally correct, sequence, and "identical, record by
/// record" would compare commit timing rather than exactly-once. What the cache changes is
/// tested in ow-stream-core's `tests/record_cache.rs`, crashes included.
fn processor_config(root: &Path, guarantee: ProcessingGuarantee) -> ProcessorConfig {
    let mut streams = StreamsConfig::new(APPLICATION_ID, Backend::local(root.join("log")))
        .with_state_dir(root.join("state"))
        .with_commit_interval(Duration::from_millis(15))
        .with_processing_guarantee(guarantee)
        .with_cache_max_bytes(0);
    streams.max_poll_records = 4;
    ProcessorConfig::new(streams).with_registry(registry(root))
}

fn registry(root: &Path) -> SchemaRegistry {
    SchemaRegistry::open_dir(root.join("registry")).unwrap()
}

fn client_config(root: &Path) -> StreamsConfig {
    StreamsConfig::new("test-client", Backend::local(root.join("log")))
}

/// The trace events that count as steps under `guarantee`.
fn step_target(guarantee: ProcessingGuarantee) -> &'static str {
    if guarantee.is_exactly_once() {
        TXN_STEPS
    } else {
        APPEND_STEPS
    }
}

/// Kills the process with SIGKILL at the `at`-th step (trace event of `target`) it reaches.
struct KillAtStep {
    target: &'static str,
    at: u64,
    seen: AtomicU64,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for KillAtStep {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == self.target
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.at
        {
            // `kill -9` of ourselves, from inside the commit: this thread waits in it.
            let _ = Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
        }
    }
}

/// The child processes: a processor that runs until it is killed.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    if let Some(at) = std::env::var(KILL_AT_STEP)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let target = step_target(guarantee(&mode));
        let hook = KillAtStep {
            target,
            at,
            seen: AtomicU64::new(0),
        }
        .with_filter(tracing_subscriber::EnvFilter::new(format!(
            "{target}=trace"
        )));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(hook)).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let processor = ow_processor::start(processor_config(&root, guarantee(&mode)))
            .await
            .unwrap();
        // The test harness printed "test child_entry ... " without a newline.
        println!("\nstarted");
        std::io::stdout().flush().unwrap();
        let error = processor.failed().await;
        panic!("the processor failed: {error}");
    });
}

fn spawn(root: &Path, guarantee: &str, kill_at_step: Option<u64>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, guarantee)
        .env(ROOT, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(at) = kill_at_step {
        command.env(KILL_AT_STEP, at.to_string());
    }
    command.spawn().unwrap()
}

/// Creates the processor's topics under `root` (the changelogs it creates itself).
async fn create_topics(root: &Path) {
    let registry = registry(root);
    let topics = Topics::new(&registry, "").unwrap();
    let admin = Admin::new(&client_config(root)).unwrap();
    let mut specs = vec![TopicSpec::new(topics.raw.name(), PARTITIONS)];
    specs.extend(topics.output_specs(PARTITIONS));
    specs.push(TopicSpec::new(format!("{APPLICATION_ID}-dlq"), 1));
    let specs: Vec<TopicSpec> = specs.into_iter().map(|s| s.with_retention(KEEP)).collect();
    admin.create_topics(&specs).await.unwrap();
    drop(admin);
    drop(open_log(root));
}

/// Appends raw events (keyed by player id, stamped with `fetched_at`), one at a time, and
/// waits until this process has closed the log again (for a child to open it).
async fn produce(root: &Path, events: &[StreamEvent]) {
    {
        let registry = registry(root);
        let topics = Topics::new(&registry, "").unwrap();
        let producer = Producer::new(&client_config(root)).unwrap();
        for e in events {
            let record = Record::new(e.raw.player_id.clone(), e.raw.clone(), e.raw.fetched_at);
            producer.send_record(&topics.raw, &record).await.unwrap();
        }
    }
    drop(open_log(root));
}

/// Opens the log under `root` directly, waiting while a client of this process that just
/// closed still holds it (its last handle may be dropped on another thread).
fn open_log(root: &Path) -> Log {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Log::open(
            root.join("log"),
            LogOptions::default().with_maintenance_interval(None),
        ) {
            Ok(log) => return log,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("open the log: {e}"),
        }
    }
}

/// Runs the processor in this process until its group has committed every raw event, then
/// closes it.
async fn run_to_the_end(root: &Path, guarantee: ProcessingGuarantee) {
    let processor = ow_processor::start(processor_config(root, guarantee))
        .await
        .unwrap();
    let admin = Admin::new(&client_config(root)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let lag: i64 = admin
            .group_lag(APPLICATION_ID, &["ow.raw.player-profiles"])
            .await
            .unwrap()
            .iter()
            .map(|p| p.lag)
            .sum();
        if lag == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {lag} raw events to process"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    processor.close().await.unwrap();
}

/// Every record of the output topics and the dead-letter topic under `root`, per topic and
/// partition in offset order, as a reader with `isolation` sees them (opened directly, with
/// no process running on the log).
fn read_outputs(root: &Path, isolation: Isolation) -> BTreeMap<String, Vec<RawRecord>> {
    let log = open_log(root);
    let dlq = format!("{APPLICATION_ID}-dlq");
    let mut out = BTreeMap::new();
    for topic in OUTPUTS.iter().copied().chain([dlq.as_str()]) {
        let info = log.topic(topic).unwrap();
        let mut records = Vec::new();
        for p in &info.partitions {
            let mut next = p.start_offset;
            loop {
                let f = log
                    .fetch(topic, p.partition, next, 1000, 16 << 20, isolation)
                    .unwrap();
                if f.next_offset == next {
                    break;
                }
                next = f.next_offset;
                for r in f.records {
                    let mut headers = Headers::new();
                    for h in r.headers {
                        headers.insert(h.key, h.value);
                    }
                    records.push(RawRecord {
                        topic: topic.into(),
                        partition: p.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers,
                    });
                }
            }
        }
        out.insert(topic.to_owned(), records);
    }
    out
}

/// What a consumer can compare: per topic and partition, the (key, value, timestamp) of every
/// record in order (offsets differ where a crashed transaction left aborted records behind).
type Contents = BTreeMap<(String, i32), Vec<(Option<Vec<u8>>, Option<Vec<u8>>, i64)>>;

fn contents(records: &BTreeMap<String, Vec<RawRecord>>) -> Contents {
    let mut out = Contents::new();
    for (topic, records) in records {
        for r in records {
            out.entry((topic.clone(), r.partition)).or_default().push((
                r.key.as_ref().map(|k| k.to_vec()),
                r.value.as_ref().map(|v| v.to_vec()),
                r.timestamp,
            ));
        }
    }
    out
}

fn decode(root: &Path, records: &BTreeMap<String, Vec<RawRecord>>) -> Outputs {
    let registry = registry(root);
    let topics = Topics::new(&registry, "").unwrap();
    Outputs::decode(&topics, |topic| records[topic].clone())
}

/// One child run, killed at a random step of its commits (even rounds) or after a random time
/// (the other rounds), or after a few seconds if the step never comes (input used up).
fn crash_round(root: &Path, guarantee: &str, round: usize, rng: &mut impl Rng) -> &'static str {
    let by_step = round.is_multiple_of(2);
    let exactly_once = self::guarantee(guarantee).is_exactly_once();
    // Exactly-once: round 0 dies at the first step of its first commit with data
    // ("preparing": the transaction's records are in the log, its decision is not), so at
    // least one transaction with output records is aborted by recovery. At-least-once: a
    // round's few input records make a commit or two of a few appends each (the first ones
    // of a run may be the commit that seals its restore).
    let step = if round == 0 && exactly_once {
        1
    } else if exactly_once {
        rng.random_range(1..=30)
    } else {
        rng.random_range(1..=24)
    };
    let mut child = spawn(root, guarantee, by_step.then_some(step));
    let started = Instant::now();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // Killed at a step before it even said it started (a restore's compensation commit):
    // the pipe closes.
    while line.trim() != "started" {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    let how = if by_step {
        let deadline = started + Duration::from_secs(4);
        loop {
            if child.try_wait().unwrap().is_some() {
                break "killed itself inside a commit";
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                break "killed after 4 s (step not reached)";
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    } else {
        std::thread::sleep(Duration::from_millis(rng.random_range(10..400)));
        child.kill().unwrap();
        "killed at a random time"
    };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "round {round}: the child ended otherwise than by kill -9: {status}"
    );
    how
}

async fn crash_rounds_then_finish(guarantee_name: &str) -> (tempfile::TempDir, Vec<StreamEvent>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let events = with_duplicates(&snapshot_stream(PLAYERS, SNAPSHOTS));
    let root = tempfile::tempdir().unwrap();
    create_topics(root.path()).await;
    let mut rng = rand::rng();
    let chunk = events.len().div_ceil(ROUNDS);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        // New input every round, while no child holds the log.
        let from = (round * chunk).min(events.len());
        let to = (from + chunk).min(events.len());
        produce(root.path(), &events[from..to]).await;
        let how = crash_round(root.path(), guarantee_name, round, &mut rng);
        *kinds.entry(how).or_default() += 1;
    }
    eprintln!("{guarantee_name}: {kinds:?}");
    assert!(
        kinds
            .get("killed itself inside a commit")
            .copied()
            .unwrap_or(0)
            >= ROUNDS / 4,
        "too few kills inside a commit: {kinds:?}"
    );
    run_to_the_end(root.path(), guarantee(guarantee_name)).await;
    (root, events)
}

/// What a straight run of `events` through the topology writes (the test driver).
fn driver_run(events: &[StreamEvent]) -> Outputs {
    let driven = drive("straight");
    driven.pipe_all(events);
    assert!(driven.driver.dead_letters().is_empty());
    driven.outputs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_outputs_are_identical_to_a_straight_run_after_kill_minus_nine() {
    let (crashed, events) = crash_rounds_then_finish("exactly_once").await;
    // The straight run: the same input, on a log of its own, never interrupted.
    let straight = tempfile::tempdir().unwrap();
    create_topics(straight.path()).await;
    produce(straight.path(), &events).await;
    run_to_the_end(straight.path(), ProcessingGuarantee::ExactlyOnce).await;

    let got = read_outputs(crashed.path(), Isolation::ReadCommitted);
    let want = read_outputs(straight.path(), Isolation::ReadCommitted);
    assert!(!want["ow.stats.deltas"].is_empty());
    let (got_c, want_c) = (contents(&got), contents(&want));
    for key in want_c.keys().chain(got_c.keys()) {
        assert_eq!(
            got_c.get(key).map(Vec::len),
            want_c.get(key).map(Vec::len),
            "{key:?}: record counts differ"
        );
    }
    assert!(
        got_c == want_c,
        "the outputs differ from the straight run's"
    );
    assert!(got[&format!("{APPLICATION_ID}-dlq")].is_empty());

    // And they are the topology's own outputs: every delta once, every table exact.
    let driver = driver_run(&events);
    let decoded = decode(crashed.path(), &got);
    assert_eq!(decoded.deltas, driver.deltas, "the same deltas, none twice");
    assert_eq!(decoded.category_records, driver.category_records);
    assert_eq!(decoded.daily, driver.daily);
    assert_eq!(decoded.profiles, driver.profiles);
    assert_eq!(decoded.categories, driver.categories);
    // Not vacuous: the crashes left aborted transactions behind (round 0's at least), which a
    // reader of everything sees.
    let uncommitted = read_outputs(crashed.path(), Isolation::ReadUncommitted);
    let all: usize = uncommitted.values().map(Vec::len).sum();
    let committed: usize = got.values().map(Vec::len).sum();
    assert!(
        all > committed,
        "no crash left an aborted transaction ({all} records)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_stores_stay_exact_after_kill_minus_nine() {
    let (crashed, events) = crash_rounds_then_finish("at_least_once").await;
    let got = decode(
        crashed.path(),
        &read_outputs(crashed.path(), Isolation::ReadUncommitted),
    );
    let want = driver_run(&events);
    // At least once on the wire: a crash may write a delta again, always identical, and never
    // one the straight run does not have — and never loses one. (Kills among the commit
    // markers used to: restore went back to the newest commit every changelog had, and when
    // that was a task's first commit, or when a second kill cut the commit sealing that
    // restore short, it adopted input offsets that some store's changes were dropped for. See
    // `StateManager::restore` in ow-stream-core.)
    let distinct = got.distinct_deltas();
    let missing: Vec<_> = want
        .deltas
        .iter()
        .filter(|d| !distinct.contains(d))
        .collect();
    let extra: Vec<_> = distinct
        .iter()
        .filter(|d| !want.deltas.contains(d))
        .collect();
    let exact = got.daily == want.daily
        && got.profiles == want.profiles
        && got.categories == want.categories;
    if !(missing.is_empty() && extra.is_empty() && exact) {
        eprintln!(
            "at least once: the crashed run's log and state are kept in {}",
            crashed.keep().display()
        );
    }
    assert!(
        extra.is_empty(),
        "deltas not in the straight run: {extra:#?}"
    );
    assert!(
        missing.is_empty(),
        "{} deltas of the straight run missing: {missing:#?}",
        missing.len()
    );
    // The stores are exact: the tables, and the daily sums (a windowed store).
    assert_eq!(got.daily, want.daily);
    assert_eq!(got.profiles, want.profiles);
    assert_eq!(got.categories, want.categories);
}
