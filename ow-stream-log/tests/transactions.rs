//! Transactions of the local log: what `read_committed` readers see while a
//! transaction is open, after it commits or aborts, after fencing, after a
//! crash image is reopened (the files as `kill -9` leaves them, also with
//! torn tails), and a property test of the transaction state across
//! restarts against a model.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{opts, rec, value_str};
use ow_stream_log::{
    CleanupPolicy, FsyncPolicy, Isolation, Log, LogError, NewRecord, StoredRecord, TopicConfig,
};
use proptest::prelude::*;

const COMMITTED: Isolation = Isolation::ReadCommitted;
const UNCOMMITTED: Isolation = Isolation::ReadUncommitted;

/// Every record of a partition a reader with `isolation` sees, following
/// `next_offset`.
fn read_all(log: &Log, topic: &str, partition: i32, isolation: Isolation) -> Vec<StoredRecord> {
    let (start, _) = log.offsets(topic, partition).unwrap();
    let mut out = Vec::new();
    let mut next = start;
    loop {
        let f = log
            .fetch(topic, partition, next, 1000, 1 << 20, isolation)
            .unwrap();
        if f.records.is_empty() && f.next_offset == next {
            return out;
        }
        next = f.next_offset;
        out.extend(f.records);
    }
}

fn values(log: &Log, topic: &str, partition: i32, isolation: Isolation) -> Vec<String> {
    read_all(log, topic, partition, isolation)
        .iter()
        .map(|r| value_str(r).unwrap())
        .collect()
}

fn open(dir: &Path, fsync: FsyncPolicy) -> Log {
    let log = Log::open(dir, opts(fsync)).unwrap();
    log.create_topic("a", TopicConfig::new(2)).unwrap();
    log.create_topic("b", TopicConfig::new(1)).unwrap();
    log
}

/// Copies a log directory as it is on disk right now: what a `kill -9` at
/// this instant would leave behind (the lock is the kernel's, not copied).
fn crash_image(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            crash_image(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_reader_sees_an_open_transaction_only_once_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Always);
    log.append("a", 0, &[rec("k", "before", 1)]).unwrap();
    let mut p = log.init_transactions("t").unwrap();
    p.begin().unwrap();
    p.append("a", 0, &[rec("k", "t1", 2), rec("k", "t2", 3)])
        .unwrap();
    p.append("b", 0, &[rec("k", "t3", 4)]).unwrap();
    // A plain append after the transaction's first record is held back too
    // (the last stable offset is where the transaction starts).
    log.append("a", 0, &[rec("k", "after", 5)]).unwrap();

    // A reader starting now, and one waiting, see nothing of it.
    assert_eq!(values(&log, "a", 0, COMMITTED), ["before"]);
    assert!(values(&log, "b", 0, COMMITTED).is_empty());
    assert_eq!(
        values(&log, "a", 0, UNCOMMITTED),
        ["before", "t1", "t2", "after"]
    );
    assert_eq!(log.visible_end("a", 0, COMMITTED).unwrap(), 1);
    assert!(
        !log.wait_for_any_with(
            &[("a", 0, 1), ("b", 0, 0)],
            COMMITTED,
            Duration::from_millis(20)
        )
        .unwrap()
    );
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || {
            assert!(
                log.wait_for_any_with(&[("b", 0, 0)], COMMITTED, Duration::from_secs(30))
                    .unwrap()
            );
            values(&log, "b", 0, COMMITTED)
        })
    };
    p.commit().unwrap();
    assert_eq!(waiter.join().unwrap(), ["t3"]);
    assert_eq!(
        values(&log, "a", 0, COMMITTED),
        ["before", "t1", "t2", "after"]
    );
    // The marker took an offset, as in Kafka; readers never see it.
    assert_eq!(log.offsets("a", 0).unwrap().1, 5);
    assert_eq!(log.read("a", 0, 0, 100, 1 << 20).unwrap().len(), 4);
}

#[test]
fn an_aborted_transaction_is_never_seen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Never);
    let mut p = log.init_transactions("t").unwrap();
    p.begin().unwrap();
    p.append("a", 1, &[rec("k", "lost", 1)]).unwrap();
    p.send_offsets("g", &[("b", 0, 7)]).unwrap();
    log.append("a", 1, &[rec("k", "plain", 2)]).unwrap();
    p.abort().unwrap();
    assert_eq!(values(&log, "a", 1, COMMITTED), ["plain"]);
    assert_eq!(values(&log, "a", 1, UNCOMMITTED), ["lost", "plain"]);
    assert_eq!(log.committed("g", "b", 0), None);
    // The next transaction of the same producer commits normally.
    p.begin().unwrap();
    p.append("a", 1, &[rec("k", "kept", 3)]).unwrap();
    p.commit().unwrap();
    assert_eq!(values(&log, "a", 1, COMMITTED), ["plain", "kept"]);
    // And after a reopen, the abort still holds.
    drop(p);
    drop(log);
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(values(&log, "a", 1, COMMITTED), ["plain", "kept"]);
}

#[test]
fn initialising_an_id_again_fences_the_old_producer_and_aborts_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Never);
    let mut zombie = log.init_transactions("app-0").unwrap();
    zombie.begin().unwrap();
    zombie.append("a", 0, &[rec("k", "zombie", 1)]).unwrap();
    zombie.send_offsets("g", &[("b", 0, 1)]).unwrap();
    let mut fresh = log.init_transactions("app-0").unwrap();
    assert!(fresh.epoch() > zombie.epoch());
    assert_eq!(fresh.producer_id(), zombie.producer_id());
    assert!(matches!(
        zombie.append("a", 0, &[rec("k", "late", 2)]),
        Err(LogError::ProducerFenced { .. })
    ));
    assert!(matches!(
        zombie.commit(),
        Err(LogError::ProducerFenced { .. })
    ));
    assert!(values(&log, "a", 0, COMMITTED).is_empty());
    assert_eq!(log.committed("g", "b", 0), None);
    fresh.begin().unwrap();
    fresh.append("a", 0, &[rec("k", "fresh", 3)]).unwrap();
    fresh.send_offsets("g", &[("b", 0, 1)]).unwrap();
    fresh.commit().unwrap();
    assert_eq!(values(&log, "a", 0, COMMITTED), ["fresh"]);
    assert_eq!(log.committed("g", "b", 0), Some(1));
    // Misuse is an error, not a panic.
    assert!(matches!(
        fresh.append("a", 0, &[rec("k", "x", 4)]),
        Err(LogError::InvalidTransaction { .. })
    ));
    assert!(matches!(
        log.init_transactions(""),
        Err(LogError::InvalidTransaction { .. })
    ));
}

#[test]
fn a_dropped_producer_aborts_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Never);
    let mut p = log.init_transactions("t").unwrap();
    p.begin().unwrap();
    p.append("a", 0, &[rec("k", "gone", 1)]).unwrap();
    drop(p);
    log.append("a", 0, &[rec("k", "plain", 2)]).unwrap();
    assert_eq!(values(&log, "a", 0, COMMITTED), ["plain"]);
}

#[test]
fn a_crash_image_with_an_open_transaction_reopens_with_it_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Always);
    let mut p = log.init_transactions("t").unwrap();
    p.begin().unwrap();
    p.append("a", 0, &[rec("k", "c1", 1)]).unwrap();
    p.send_offsets("g", &[("b", 0, 1)]).unwrap();
    p.commit().unwrap();
    p.begin().unwrap();
    p.append("a", 0, &[rec("k", "open", 2)]).unwrap();
    p.append("b", 0, &[rec("k", "open", 2)]).unwrap();
    p.send_offsets("g", &[("b", 0, 2)]).unwrap();
    crash_image(dir.path(), image.path());

    let reopened = Log::open(image.path(), opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(values(&reopened, "a", 0, COMMITTED), ["c1"]);
    assert!(values(&reopened, "b", 0, COMMITTED).is_empty());
    assert_eq!(reopened.committed("g", "b", 0), Some(1));
    // Recovery wrote the abort markers: nothing holds readers back.
    reopened.append("a", 0, &[rec("k", "next", 3)]).unwrap();
    assert_eq!(values(&reopened, "a", 0, COMMITTED), ["c1", "next"]);
    // The original goes on as if nothing happened.
    p.commit().unwrap();
    assert_eq!(values(&log, "a", 0, COMMITTED), ["c1", "open"]);
}

/// Calls `f` with the name of every step of a commit or abort the log
/// reports (its `ow_stream_log::txn` trace events), on this thread.
struct StepHook<F>(F);

impl<S: tracing::Subscriber, F: Fn(&str) + Send + Sync + 'static> tracing_subscriber::Layer<S>
    for StepHook<F>
{
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Step(Option<String>);
        impl tracing::field::Visit for Step {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "step" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() == "ow_stream_log::txn" {
            let mut step = Step(None);
            event.record(&mut step);
            if let Some(step) = step.0 {
                (self.0)(&step);
            }
        }
    }
}

/// Where a crash lands in a commit, and which file's last write it tears.
struct CrashPoint {
    step: &'static str,
    /// Which occurrence of the step.
    nth: usize,
    /// The file whose last write is torn (relative to the log directory).
    torn: &'static str,
    /// Whether the transaction must be committed after recovery.
    committed_if_whole: bool,
    committed_if_torn: bool,
}

const SEG_A: &str = "topics/a/0/00000000000000000000.log";
const SEG_B: &str = "topics/b/0/00000000000000000000.log";

#[test]
fn a_crash_anywhere_in_a_commit_recovers_all_or_nothing_also_with_a_torn_last_write() {
    use tracing_subscriber::layer::SubscriberExt;
    let points = [
        // Data written, not decided: aborted either way.
        CrashPoint {
            step: "preparing",
            nth: 1,
            torn: SEG_B,
            committed_if_whole: false,
            committed_if_torn: false,
        },
        // The decision is durable: committed. Torn: it never was.
        CrashPoint {
            step: "commit-prepared",
            nth: 1,
            torn: "transactions.log",
            committed_if_whole: true,
            committed_if_torn: false,
        },
        // Past the commit point, markers or offsets half done: recovery completes.
        CrashPoint {
            step: "marker-written",
            nth: 1,
            torn: SEG_A,
            committed_if_whole: true,
            committed_if_torn: true,
        },
        CrashPoint {
            step: "marker-written",
            nth: 2,
            torn: SEG_B,
            committed_if_whole: true,
            committed_if_torn: true,
        },
        CrashPoint {
            step: "offsets-committed",
            nth: 1,
            torn: "consumer-offsets.log",
            committed_if_whole: true,
            committed_if_torn: true,
        },
        CrashPoint {
            step: "committed",
            nth: 1,
            torn: "transactions.log",
            committed_if_whole: true,
            committed_if_torn: true,
        },
    ];
    for point in &points {
        for tear in [0u64, 1, 9, 20] {
            let dir = tempfile::tempdir().unwrap();
            let image = tempfile::tempdir().unwrap();
            let log = open(dir.path(), FsyncPolicy::Always);
            let mut p = log.init_transactions("t").unwrap();
            for n in 0..3i64 {
                p.begin().unwrap();
                p.append("a", 0, &[rec("k", &format!("a{n}"), n)]).unwrap();
                p.append("b", 0, &[rec("k", &format!("b{n}"), n)]).unwrap();
                p.send_offsets("g", &[("b", 1, n + 1)]).unwrap_err();
                p.send_offsets("g", &[("a", 1, n + 1)]).unwrap();
                if n < 2 {
                    p.commit().unwrap();
                    continue;
                }
                let seen = std::sync::atomic::AtomicUsize::new(0);
                let (from, to) = (dir.path().to_owned(), image.path().to_owned());
                let (step_name, nth) = (point.step, point.nth);
                let hook = StepHook(move |step: &str| {
                    if step == step_name {
                        let k = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        if k == nth {
                            crash_image(&from, &to);
                        }
                    }
                });
                let subscriber = tracing_subscriber::registry().with(hook);
                tracing::subscriber::with_default(subscriber, || p.commit().unwrap());
            }
            assert!(
                image.path().join("transactions.log").exists(),
                "{} never reached",
                point.step
            );
            if tear > 0 {
                let torn = image.path().join(point.torn);
                let len = fs::metadata(&torn).unwrap().len();
                fs::OpenOptions::new()
                    .write(true)
                    .open(&torn)
                    .unwrap()
                    .set_len(len - tear)
                    .unwrap();
            }
            let reopened = Log::open(image.path(), opts(FsyncPolicy::Always)).unwrap();
            let committed = if tear > 0 {
                point.committed_if_torn
            } else {
                point.committed_if_whole
            };
            let n = if committed { 3 } else { 2 };
            let what = format!("crash at {} #{}, tear {tear}", point.step, point.nth);
            let want_a: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
            let want_b: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
            assert_eq!(values(&reopened, "a", 0, COMMITTED), want_a, "{what}");
            assert_eq!(values(&reopened, "b", 0, COMMITTED), want_b, "{what}");
            assert_eq!(reopened.committed("g", "a", 1), Some(n as i64), "{what}");
            // Nothing is left open: new data is readable at once.
            reopened.append("b", 0, &[rec("k", "plain", 9)]).unwrap();
            assert_eq!(
                values(&reopened, "b", 0, COMMITTED)
                    .last()
                    .map(String::as_str),
                Some("plain"),
                "{what}"
            );
            // And a second recovery changes nothing.
            drop(reopened);
            let again = Log::open(image.path(), opts(FsyncPolicy::Always)).unwrap();
            assert_eq!(values(&again, "a", 0, COMMITTED), want_a, "{what}");
        }
    }
}

#[test]
fn compaction_keeps_the_latest_committed_value_not_an_aborted_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(4096)
            .with_min_cleanable_ratio(0.0),
    )
    .unwrap();
    let mut p = log.init_transactions("t").unwrap();
    let big = "x".repeat(300);
    for n in 0..40 {
        p.begin().unwrap();
        p.append(
            "c",
            0,
            &[rec(&format!("k{}", n % 4), &format!("{n}{big}"), n)],
        )
        .unwrap();
        if n % 3 == 2 {
            p.abort().unwrap();
        } else {
            p.commit().unwrap();
        }
    }
    // An open transaction over the newest segments: compaction stops before it.
    p.begin().unwrap();
    p.append("c", 0, &[rec("k0", "open", 99)]).unwrap();
    log.maintain().unwrap();
    let latest: BTreeMap<String, String> = read_all(&log, "c", 0, COMMITTED)
        .iter()
        .map(|r| {
            let v = value_str(r).unwrap();
            (
                common::key_str(r).unwrap(),
                v.trim_end_matches('x').to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = (0..4)
        .map(|k| {
            let n = (0..40).filter(|n| n % 4 == k && n % 3 != 2).max().unwrap();
            (format!("k{k}"), n.to_string())
        })
        .collect();
    assert_eq!(latest, want);
    p.abort().unwrap();
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Begin,
    /// A transactional append to partition `p` of topic "a".
    Append(i32),
    /// A plain append to partition `p` of topic "a".
    Plain(i32),
    Offsets(i64),
    Commit,
    Abort,
    /// The process dies: the log is reopened from a crash image.
    Crash,
    /// A clean close and reopen.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Begin),
        6 => (0..2i32).prop_map(Op::Append),
        3 => (0..2i32).prop_map(Op::Plain),
        2 => (0..100i64).prop_map(Op::Offsets),
        3 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

/// What the log should hold.
#[derive(Default)]
struct Model {
    /// Per partition, in append order: (value, transaction number or none).
    appended: BTreeMap<i32, Vec<(String, Option<u32>)>>,
    /// Fate of each transaction: `None` open, `Some(true)` committed.
    fate: BTreeMap<u32, Option<bool>>,
    current: Option<u32>,
    pending_offset: Option<i64>,
    committed_offset: Option<i64>,
    next_txn: u32,
}

impl Model {
    /// What a read_committed reader of partition `p` sees: the plain and
    /// committed records before the first record of an open transaction.
    fn visible(&self, p: i32) -> Vec<String> {
        let mut out = Vec::new();
        for (v, txn) in self.appended.get(&p).into_iter().flatten() {
            match txn.map(|t| self.fate[&t]) {
                Some(None) => break,
                Some(Some(false)) => {}
                None | Some(Some(true)) => out.push(v.clone()),
            }
        }
        out
    }

    fn end_transaction(&mut self, commit: bool) {
        if let Some(t) = self.current.take() {
            self.fate.insert(t, Some(commit));
            if commit && let Some(o) = self.pending_offset.take() {
                self.committed_offset = Some(o);
            }
        }
        self.pending_offset = None;
    }
}

fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    for p in 0..2 {
        prop_assert_eq!(values(log, "a", p, COMMITTED), model.visible(p));
    }
    prop_assert_eq!(log.committed("g", "b", 0), model.committed_offset);
    Ok(())
}

fn run(ops: &[Op], fsync: FsyncPolicy) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let mut generation = 0;
    let mut dir = root.path().join("0");
    let mut log = open(&dir, fsync);
    let mut producer = Some(log.init_transactions("prop").unwrap());
    let mut model = Model::default();
    let mut seq = 0;
    for op in ops {
        seq += 1;
        let value = format!("v{seq}");
        match op {
            Op::Begin => {
                let p = producer.as_mut().unwrap();
                if model.current.is_none() {
                    p.begin().unwrap();
                    model.current = Some(model.next_txn);
                    model.fate.insert(model.next_txn, None);
                    model.next_txn += 1;
                } else {
                    prop_assert!(p.begin().is_err());
                }
            }
            Op::Append(partition) => {
                let p = producer.as_mut().unwrap();
                let res = p.append("a", *partition, &[rec("k", &value, seq)]);
                match model.current {
                    Some(t) => {
                        res.unwrap();
                        model
                            .appended
                            .entry(*partition)
                            .or_default()
                            .push((value, Some(t)));
                    }
                    None => prop_assert!(res.is_err()),
                }
            }
            Op::Plain(partition) => {
                log.append("a", *partition, &[rec("k", &value, seq)])
                    .unwrap();
                model
                    .appended
                    .entry(*partition)
                    .or_default()
                    .push((value, None));
            }
            Op::Offsets(o) => {
                let p = producer.as_mut().unwrap();
                let res = p.send_offsets("g", &[("b", 0, *o)]);
                if model.current.is_some() {
                    res.unwrap();
                    model.pending_offset = Some(*o);
                } else {
                    prop_assert!(res.is_err());
                }
            }
            Op::Commit | Op::Abort => {
                let commit = matches!(op, Op::Commit);
                let p = producer.as_mut().unwrap();
                let res = if commit { p.commit() } else { p.abort() };
                if model.current.is_some() {
                    res.unwrap();
                    model.end_transaction(commit);
                } else {
                    prop_assert!(res.is_err());
                }
            }
            Op::Crash => {
                generation += 1;
                let image = root.path().join(generation.to_string());
                crash_image(&dir, &image);
                // The crashed process's handles vanish without a word; the
                // original directory is abandoned.
                std::mem::forget(producer.take());
                dir = image;
                log = Log::open(&dir, opts(fsync)).unwrap();
                model.end_transaction(false);
                producer = Some(log.init_transactions("prop").unwrap());
            }
            Op::Reopen => {
                // A clean close: the open transaction is aborted by the drop.
                drop(producer.take());
                drop(log);
                model.end_transaction(false);
                log = Log::open(&dir, opts(fsync)).unwrap();
                producer = Some(log.init_transactions("prop").unwrap());
            }
        }
        check(&log, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn transaction_state_survives_restarts_and_crashes(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops, FsyncPolicy::Never)?;
    }

    #[test]
    fn transaction_state_survives_restarts_and_crashes_with_fsync(ops in prop::collection::vec(op(), 1..25)) {
        run(&ops, FsyncPolicy::Always)?;
    }
}

#[test]
fn records_appended_by_many_transactions_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), FsyncPolicy::Never);
    let mut p = log.init_transactions("t").unwrap();
    let mut q = log.init_transactions("u").unwrap();
    p.begin().unwrap();
    q.begin().unwrap();
    p.append("a", 0, &[rec("k", "p1", 1)]).unwrap();
    q.append("a", 0, &[rec("k", "q1", 2)]).unwrap();
    p.append("a", 0, &[rec("k", "p2", 3)]).unwrap();
    // q commits first, but p's open records come before q's: held back.
    q.commit().unwrap();
    assert!(values(&log, "a", 0, COMMITTED).is_empty());
    p.abort().unwrap();
    assert_eq!(values(&log, "a", 0, COMMITTED), ["q1"]);
    let n: Vec<NewRecord> = (0..3).map(|i| rec("k", &format!("n{i}"), i)).collect();
    log.append("a", 0, &n).unwrap();
    assert_eq!(values(&log, "a", 0, COMMITTED), ["q1", "n0", "n1", "n2"]);
}
