//! Durability against `kill -9`, recovery of torn and corrupt data, and the
//! directory lock across processes.
//!
//! The child processes are this test binary itself, re-executed with
//! `OW_LOG_CHILD` set: the `child_process` test does nothing unless that
//! variable selects a mode.

// Helpers outside `#[test]` functions unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Rng, opts, read_all, rec, value_str};
use ow_stream_log::{
    CleanupPolicy, FsyncPolicy, Log, LogError, LogOptions, NewRecord, TopicConfig,
};

const CHILD: &str = "OW_LOG_CHILD";
const CHILD_DIR: &str = "OW_LOG_DIR";
const CHILD_ROUND: &str = "OW_LOG_ROUND";
const WRITERS: u32 = 3;
const COMPACT_KEYS: u64 = 20;

/// Entry point of the child processes; a no-op in a normal test run.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let dir = std::env::var(CHILD_DIR).expect("OW_LOG_DIR");
    // libtest printed "test child_process ... " without a newline.
    println!();
    match mode.as_str() {
        "writer-always" => writer(&dir, FsyncPolicy::Always),
        "writer-interval" => writer(&dir, FsyncPolicy::Interval(Duration::from_millis(20))),
        "lock-probe" => match Log::open(&dir, LogOptions::default()) {
            Err(LogError::Locked { pid, .. }) => {
                println!("LOCKED {}", pid.map_or(-1, i64::from));
            }
            Ok(_) => println!("OPENED"),
            Err(e) => println!("ERROR {e}"),
        },
        other => panic!("unknown child mode {other}"),
    }
}

/// The batch size of writer `seq` (so the checker knows it without an ack).
fn batch_len(seq: u64) -> usize {
    1 + (seq % 4) as usize
}

fn value(round: u32, writer: u32, seq: u64, j: usize) -> String {
    format!(
        "r{round}-w{writer}-s{seq}-{j}-{}",
        "p".repeat((seq % 7 * 50) as usize)
    )
}

/// Appends forever from several threads to one partition (exercising group
/// commit) and commits the end offset from another, printing every
/// acknowledgement; the parent kills it with SIGKILL.
fn writer(dir: &str, fsync: FsyncPolicy) -> ! {
    let round: u32 = std::env::var(CHILD_ROUND)
        .expect("round")
        .parse()
        .expect("round number");
    // Background maintenance keeps compacting "c", so kills also land in
    // the middle of compactions.
    let log = Log::open(
        dir,
        LogOptions::default()
            .with_fsync(fsync)
            .with_maintenance_interval(Some(Duration::from_millis(2))),
    )
    .expect("open");
    log.create_topic(
        "t",
        TopicConfig::new(1)
            .with_segment_bytes(16 * 1024)
            .with_retention(None),
    )
    .expect("create topic");
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(4096)
            .with_min_cleanable_ratio(0.0),
    )
    .expect("create compacted topic");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let say = move |line: String| {
        let mut o = out.lock().expect("stdout lock");
        writeln!(o, "{line}").expect("stdout");
        o.flush().expect("stdout");
    };
    for w in 0..WRITERS {
        let log = log.clone();
        let say = say.clone();
        std::thread::spawn(move || {
            for seq in 0u64.. {
                let recs: Vec<NewRecord> = (0..batch_len(seq))
                    .map(|j| rec(&format!("w{w}"), &value(round, w, seq, j), seq as i64))
                    .collect();
                let a = log.append("t", 0, &recs).expect("append");
                say(format!("A {round} {w} {seq} {}", a.base_offset));
            }
        });
    }
    {
        let log = log.clone();
        let say = say.clone();
        std::thread::spawn(move || {
            for seq in 0u64.. {
                let key = format!("k{}", seq % COMPACT_KEYS);
                let v = format!("r{round}-s{seq}-{}", "q".repeat(100));
                log.append("c", 0, &[rec(&key, &v, 0)]).expect("append c");
                say(format!("K {round} {seq}"));
            }
        });
    }
    loop {
        let (_, end) = log.offsets("t", 0).expect("offsets");
        if end > 0 {
            say(format!("C? {end}"));
            log.commit("g", &[("t", 0, end)]).expect("commit");
            say(format!("C {end}"));
        } else {
            std::thread::yield_now();
        }
    }
}

fn child(mode: &str, dir: &Path, round: u32) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, mode)
    .env(CHILD_DIR, dir)
    .env(CHILD_ROUND, round.to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    c
}

#[derive(Default)]
struct Acks {
    /// (round, writer, seq) -> acknowledged base offset.
    batches: HashMap<(u32, u32, u64), i64>,
    commit_acked: i64,
    commit_attempted: i64,
    /// Compacted topic: key -> latest acknowledged (round, seq).
    latest: HashMap<u64, (u32, u64)>,
}

#[test]
fn kill_9_never_loses_acknowledged_records_or_commits() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let seed = Rng::seed_from_time();
    eprintln!("kill -9 test seed: {seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acks = Acks {
        commit_acked: -1,
        commit_attempted: -1,
        ..Acks::default()
    };
    for round in 0..10u32 {
        let mode = if round % 2 == 0 {
            "writer-always"
        } else {
            "writer-interval"
        };
        let mut proc = child(mode, dir.path(), round).spawn().unwrap();
        let stdout = proc.stdout.take().unwrap();
        let kill_after = rng.range(1, 600);
        let mut seen = 0;
        let mut killed = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["A", r, w, s, base] => {
                    let key = (r.parse().unwrap(), w.parse().unwrap(), s.parse().unwrap());
                    acks.batches.insert(key, base.parse().unwrap());
                }
                ["C?", end] => {
                    acks.commit_attempted = acks.commit_attempted.max(end.parse().unwrap());
                }
                ["C", end] => acks.commit_acked = acks.commit_acked.max(end.parse().unwrap()),
                ["K", r, s] => {
                    let (r, s): (u32, u64) = (r.parse().unwrap(), s.parse().unwrap());
                    let e = acks.latest.entry(s % COMPACT_KEYS).or_default();
                    *e = (*e).max((r, s));
                }
                _ => continue,
            }
            seen += 1;
            if !killed && seen >= kill_after {
                // SIGKILL; the lines already in the pipe are still read.
                proc.kill().unwrap();
                killed = true;
            }
        }
        let status = proc.wait().unwrap();
        assert!(
            killed,
            "round {round}: the writer exited by itself: {status}"
        );
        let end = verify(dir.path(), &acks, round);
        eprintln!(
            "round {round} ({mode}): killed after {kill_after} lines; {} batches acknowledged \
             so far, log end {end}, last acknowledged commit {}",
            acks.batches.len(),
            acks.commit_acked
        );
    }
}

/// Every acknowledged batch is present exactly once at its offsets, offsets
/// are contiguous, every batch present is whole, nothing corrupt is returned,
/// and the committed offset is neither lost nor invented.
fn verify(dir: &Path, acks: &Acks, round: u32) -> i64 {
    let log = Log::open(dir, opts(FsyncPolicy::Always)).expect("reopen after kill");
    let all = read_all(&log, "t", 0);
    let (start, end) = log.offsets("t", 0).unwrap();
    assert_eq!(start, 0);
    assert_eq!(all.len() as i64, end, "round {round}");
    let mut batches: HashMap<(u32, u32, u64), Vec<(i64, usize)>> = HashMap::new();
    let mut values = HashSet::new();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "round {round}: offsets not contiguous");
        let v = value_str(r).unwrap();
        assert!(
            values.insert(v.clone()),
            "round {round}: duplicate record {v}"
        );
        let f: Vec<&str> = v.split('-').collect();
        let id = (
            f[0][1..].parse().unwrap(),
            f[1][1..].parse().unwrap(),
            f[2][1..].parse().unwrap(),
        );
        let j: usize = f[3].parse().unwrap();
        assert_eq!(
            v,
            value(id.0, id.1, id.2, j),
            "round {round}: damaged record"
        );
        batches.entry(id).or_default().push((r.offset, j));
    }
    // Atomic batches: whole, contiguous, in order.
    for (id, recs) in &batches {
        assert_eq!(
            recs.len(),
            batch_len(id.2),
            "round {round}: partial batch {id:?}"
        );
        for (k, (offset, j)) in recs.iter().enumerate() {
            assert_eq!(*j, k);
            assert_eq!(*offset, recs[0].0 + k as i64);
        }
    }
    // Every acknowledged batch, at its acknowledged offset.
    for (id, base) in &acks.batches {
        let recs = batches
            .get(id)
            .unwrap_or_else(|| panic!("round {round}: acknowledged batch {id:?} lost"));
        assert_eq!(recs[0].0, *base, "round {round}: batch {id:?} moved");
    }
    let committed = log.committed("g", "t", 0);
    if acks.commit_acked >= 0 {
        let c = committed.expect("acknowledged commit lost");
        assert!(c >= acks.commit_acked, "round {round}: commit went back");
        assert!(c <= acks.commit_attempted, "round {round}: commit invented");
        assert!(c <= end, "round {round}: commit beyond the log");
    } else if let Some(c) = committed {
        assert!(c <= acks.commit_attempted);
    }

    // Compacted topic: offsets increase (gaps allowed), records are intact,
    // per key the versions only go forward, and the newest version of every
    // key is at least the newest acknowledged one.
    let compacted = read_all(&log, "c", 0);
    let mut newest: HashMap<u64, (u32, u64)> = HashMap::new();
    for pair in compacted.windows(2) {
        assert!(
            pair[0].offset < pair[1].offset,
            "round {round}: offsets out of order"
        );
    }
    for r in &compacted {
        let v = value_str(r).unwrap();
        let f: Vec<&str> = v.split('-').collect();
        let version: (u32, u64) = (f[0][1..].parse().unwrap(), f[1][1..].parse().unwrap());
        assert_eq!(
            v,
            format!("r{}-s{}-{}", version.0, version.1, "q".repeat(100))
        );
        let key = version.1 % COMPACT_KEYS;
        assert_eq!(common::key_str(r).unwrap(), format!("k{key}"));
        let e = newest.entry(key).or_default();
        assert!(
            version > *e || *e == (0, 0),
            "round {round}: key k{key} went back"
        );
        *e = version;
    }
    eprintln!(
        "round {round}: compacted topic holds {} records below offset {}",
        compacted.len(),
        log.offsets("c", 0).unwrap().1
    );
    for (key, acked) in &acks.latest {
        let have = newest.get(key).copied();
        assert!(
            have.is_some_and(|h| h >= *acked),
            "round {round}: key k{key}: acknowledged {acked:?}, log has {have:?}"
        );
    }
    end
}

#[test]
fn second_open_from_another_process_is_locked() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    let out = child("lock-probe", dir.path(), 0).output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.lines()
            .any(|l| l == format!("LOCKED {}", std::process::id())),
        "{out}"
    );
    drop(log);
    let out = child("lock-probe", dir.path(), 0).output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.lines().any(|l| l == "OPENED"), "{out}");
}

fn active_segment(dir: &Path, topic: &str) -> std::path::PathBuf {
    let pdir = dir.join("topics").join(topic).join("0");
    let mut logs: Vec<_> = fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn torn_last_batch_is_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        log.create_topic("t", TopicConfig::new(1)).unwrap();
        for i in 0..10 {
            log.append("t", 0, &[rec("k", &format!("v{i}"), 0), rec("k", "w", 0)])
                .unwrap();
        }
    }
    let seg = active_segment(dir.path(), "t");
    let len = fs::metadata(&seg).unwrap().len();
    // Tear the last batch (as a crash mid-write would).
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 18));
    let all = read_all(&log, "t", 0);
    assert_eq!(all.len(), 18);
    assert_eq!(value_str(&all[16]).as_deref(), Some("v8"));
    // Appends continue right after the last whole batch.
    assert_eq!(
        log.append("t", 0, &[rec("k", "x", 0)]).unwrap().base_offset,
        18
    );
    drop(log);
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(read_all(&log, "t", 0).len(), 19);
}

#[test]
fn garbage_after_the_last_batch_is_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        log.create_topic("t", TopicConfig::new(1)).unwrap();
        log.append("t", 0, &[rec("k", "v", 0)]).unwrap();
    }
    let seg = active_segment(dir.path(), "t");
    let good = fs::metadata(&seg).unwrap().len();
    // Zeros, as a file system may leave after power loss.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 512]).unwrap();
    drop(f);
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (0, 1));
    assert_eq!(fs::metadata(&seg).unwrap().len(), good);
}

#[test]
fn corruption_inside_a_closed_segment_is_reported_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        log.create_topic("t", TopicConfig::new(1).with_segment_bytes(4096))
            .unwrap();
        for i in 0..100 {
            log.append("t", 0, &[rec("k", &format!("{i:0100}"), 0)])
                .unwrap();
        }
    }
    let first = dir.path().join("topics/t/0/00000000000000000000.log");
    let mut bytes = fs::read(&first).unwrap();
    // Flip a bit in the value of the second record (batches are 177 bytes:
    // 52 header + 24 record overhead + 1 key byte + 100 value bytes).
    let at = 177 + 52 + 24 + 1 + 50;
    bytes[at] ^= 0x10;
    fs::write(&first, bytes).unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    // The records before the damage come back; the damaged one never.
    let recs = log.read("t", 0, 0, 100, 1 << 20).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].offset, 0);
    match log.read("t", 0, 1, 100, 1 << 20) {
        Err(LogError::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(path, first);
            assert_eq!(offset, 177);
            assert_eq!(reason, "batch crc mismatch");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Other segments still read fine.
    assert!(!log.read("t", 0, 50, 10, 1 << 20).unwrap().is_empty());
}

/// Found by the `log_recovery` fuzz target (input kept in
/// `fuzz/regressions/log_recovery/`): a batch of the active segment damaged
/// while the log was closed cleanly. The clean open used to trust the segment,
/// so the damaged batch stayed in the middle, appends went after it, and the
/// next open after a crash cut at the damage, taking acknowledged appends with
/// it. Every open now re-validates the active segment: the first one cuts, and
/// nothing appended after it is lost.
#[test]
fn damage_found_on_a_clean_open_never_takes_later_appends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), dense_index()).unwrap();
        log.create_topic("t", TopicConfig::new(1)).unwrap();
        for i in 0..4 {
            log.append("t", 0, &[rec(&format!("k{i}"), "before", i)])
                .unwrap();
        }
    }
    assert!(dir.path().join("CLEAN_SHUTDOWN").exists());
    // Flip a bit in the second batch's value while the log is closed.
    let segment = dir.path().join("topics/t/0/00000000000000000000.log");
    let mut bytes = fs::read(&segment).unwrap();
    let frame = bytes.len() / 4;
    bytes[frame + frame - 3] ^= 0x10;
    fs::write(&segment, &bytes).unwrap();

    let log = Log::open(dir.path(), dense_index()).unwrap();
    let kept = read_all(&log, "t", 0);
    assert_eq!(kept.len(), 1, "the batch before the damage, and only it");
    assert_eq!(kept[0].offset, 0);
    let appended = log.append("t", 0, &[rec("k", "after", 9)]).unwrap();
    assert_eq!(appended.base_offset, 1);
    drop(log);
    // A crash now: the next open has no clean-shutdown marker.
    fs::remove_file(dir.path().join("CLEAN_SHUTDOWN")).unwrap();
    let log = Log::open(dir.path(), dense_index()).unwrap();
    let after: Vec<_> = read_all(&log, "t", 0).iter().map(value_str).collect();
    assert_eq!(after, [Some("before".into()), Some("after".into())]);
}

/// An index entry at every batch: a clean open then trusts everything before
/// the last batch.
fn dense_index() -> LogOptions {
    opts(FsyncPolicy::Always).with_index_interval_bytes(1)
}

/// Found by the `log_recovery` fuzz target (`fuzz/regressions/log_recovery/stale-index-entry.bin`):
/// a damaged entry in the index of a segment that is not the active one (a bit flipped in a
/// position while the log was closed) is trusted on a clean open, and a read from that
/// entry's offset found no batch there and failed as "corrupt data", although every batch of
/// the segment was intact. The index is a cache: a read it leads astray now scans the segment
/// from its start, and every record reads back from its own offset.
#[test]
fn a_damaged_index_entry_loses_no_read() {
    let dir = tempfile::tempdir().unwrap();
    let value = "v".repeat(400);
    {
        let log = Log::open(dir.path(), dense_index()).unwrap();
        log.create_topic("t", TopicConfig::new(1).with_segment_bytes(4096))
            .unwrap();
        for i in 0..30 {
            log.append("t", 0, &[rec(&format!("k{i}"), &value, i)])
                .unwrap();
        }
    }
    let partition = dir.path().join("topics/t/0");
    assert!(
        partition.join("00000000000000000000.log").exists()
            && fs::read_dir(&partition).unwrap().count() > 2,
        "more than one segment"
    );
    // Move the third entry's position of the first segment's index a few bytes into its batch
    // (still increasing, so the file decodes).
    let index = partition.join("00000000000000000000.index");
    let mut bytes = fs::read(&index).unwrap();
    assert!(bytes.len() >= 4 * 24, "a dense index");
    let entry = 2 * 24;
    let offset = i64::from_le_bytes(bytes[entry..entry + 8].try_into().unwrap());
    let position = u64::from_le_bytes(bytes[entry + 8..entry + 16].try_into().unwrap());
    bytes[entry + 8..entry + 16].copy_from_slice(&(position + 5).to_le_bytes());
    fs::write(&index, &bytes).unwrap();

    let log = Log::open(dir.path(), dense_index()).unwrap();
    for o in 0..30 {
        let read = log
            .read("t", 0, o, 1, 1 << 20)
            .unwrap_or_else(|e| panic!("offset {o} (damaged entry at {offset}): {e}"));
        assert_eq!(read.len(), 1, "offset {o}");
        assert_eq!(read[0].offset, o);
        assert_eq!(read[0].key.as_deref(), Some(format!("k{o}").as_bytes()));
    }
    assert_eq!(read_all(&log, "t", 0).len(), 30);
}
