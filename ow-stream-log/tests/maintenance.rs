//! Segment roll, retention, compaction, tombstones, gaps and the crash
//! safety of compaction. Time comes from a `ManualClock` and from record
//! timestamps: nothing sleeps.

// Helpers outside `#[test]` functions unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{key_str, opts, opts_with_clock, read_all, rec, value_str};
use ow_stream_log::{
    CleanupPolicy, DeleteReason, FsyncPolicy, Log, LogError, MaintenanceAction, NewRecord,
    TopicConfig,
};

const SEG: u64 = 4096;
const HOUR: i64 = 3_600_000;

/// A record whose encoded batch is exactly 180 bytes (52 header + 24 record
/// overhead + 4-byte key + 100-byte value), so a 4096-byte segment holds 22.
fn fixed(i: i64, ts: i64) -> NewRecord {
    NewRecord::new(
        Some(format!("k{:03}", i % 1000)),
        Some(format!("{i:0100}")),
        ts,
    )
}

fn segment_bases(dir: &Path, topic: &str, partition: i32) -> Vec<i64> {
    let pdir = dir.join("topics").join(topic).join(partition.to_string());
    let mut bases: Vec<i64> = fs::read_dir(pdir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|s| s.parse().unwrap())
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn segments_roll_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic("t", TopicConfig::new(1).with_segment_bytes(SEG))
        .unwrap();
    for i in 0..100 {
        log.append("t", 0, &[fixed(i, 0)]).unwrap();
    }
    assert_eq!(segment_bases(dir.path(), "t", 0), vec![0, 22, 44, 66, 88]);
    let info = log.topic("t").unwrap().partitions[0];
    assert_eq!(info.segments, 5);
    assert_eq!(info.size_bytes, 100 * 180);
}

#[test]
fn segments_roll_by_time_on_append_and_in_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let (options, clock) = opts_with_clock(FsyncPolicy::Never, 1_000_000);
    let log = Log::open(dir.path(), options).unwrap();
    log.create_topic(
        "t",
        TopicConfig::new(1)
            .with_segment_time(Some(Duration::from_secs(60)))
            .with_retention(None),
    )
    .unwrap();
    log.append("t", 0, &[fixed(0, 0)]).unwrap();
    clock.advance(Duration::from_secs(59));
    log.append("t", 0, &[fixed(1, 0)]).unwrap();
    assert_eq!(segment_bases(dir.path(), "t", 0), vec![0]);
    clock.advance(Duration::from_secs(1));
    // The append finds the segment expired and rolls first.
    log.append("t", 0, &[fixed(2, 0)]).unwrap();
    assert_eq!(segment_bases(dir.path(), "t", 0), vec![0, 2]);
    // A quiet partition is rolled by maintenance.
    clock.advance(Duration::from_secs(60));
    let report = log.maintain().unwrap();
    assert_eq!(
        report.actions,
        vec![MaintenanceAction::Rolled {
            topic: "t".into(),
            partition: 0,
            new_base_offset: 3
        }]
    );
    assert_eq!(segment_bases(dir.path(), "t", 0), vec![0, 2, 3]);
    // An empty active segment is never rolled.
    clock.advance(Duration::from_secs(600));
    assert!(log.maintain().unwrap().is_empty());
}

#[test]
fn retention_by_time_deletes_whole_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    let (options, clock) = opts_with_clock(FsyncPolicy::Never, t0);
    let log = Log::open(dir.path(), options).unwrap();
    log.create_topic(
        "t",
        TopicConfig::new(1)
            .with_segment_bytes(SEG)
            .with_retention(Some(Duration::from_secs(50))),
    )
    .unwrap();
    // Record i has timestamp t0 + i seconds.
    for i in 0..100 {
        log.append("t", 0, &[fixed(i, t0 + i * 1000)]).unwrap();
    }
    // Nothing is older than 50 s yet.
    assert!(log.maintain().unwrap().is_empty());

    // now = t0 + 100 s: cutoff t0 + 50 s. Segments [0,22) and [22,44) hold
    // only older records; [44,66) has records up to t0 + 65 s.
    clock.set(t0 + 100_000);
    let report = log.maintain().unwrap();
    assert_eq!(
        report.actions,
        vec![
            MaintenanceAction::Deleted {
                topic: "t".into(),
                partition: 0,
                base_offset: 0,
                bytes: 22 * 180,
                reason: DeleteReason::RetentionTime
            },
            MaintenanceAction::Deleted {
                topic: "t".into(),
                partition: 0,
                base_offset: 22,
                bytes: 22 * 180,
                reason: DeleteReason::RetentionTime
            },
        ]
    );
    assert_eq!(log.offsets("t", 0).unwrap(), (44, 100));
    assert_eq!(segment_bases(dir.path(), "t", 0), vec![44, 66, 88]);
    match log.read("t", 0, 43, 10, 1 << 20) {
        Err(LogError::OffsetOutOfRange {
            requested: 43,
            start: 44,
            end: 100,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(log.read("t", 0, 44, 1, 1 << 20).unwrap()[0].offset, 44);

    // Everything expired, the active segment too: it is rolled and deleted,
    // the log is empty but keeps its end offset.
    clock.set(t0 + 1_000_000);
    let report = log.maintain().unwrap();
    assert_eq!(report.segments_deleted(), 3);
    assert!(report.actions.contains(&MaintenanceAction::Rolled {
        topic: "t".into(),
        partition: 0,
        new_base_offset: 100
    }));
    assert_eq!(log.offsets("t", 0).unwrap(), (100, 100));
    assert_eq!(
        log.append("t", 0, &[fixed(100, t0)]).unwrap().base_offset,
        100
    );
    drop(log);
    // Survives reopen.
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(log.offsets("t", 0).unwrap(), (100, 101));
}

#[test]
fn retention_by_size_keeps_partition_between_limit_and_limit_plus_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    let limit = 3 * 22 * 180; // three full segments
    log.create_topic(
        "t",
        TopicConfig::new(1)
            .with_segment_bytes(SEG)
            .with_retention(None)
            .with_retention_bytes(Some(limit)),
    )
    .unwrap();
    for round in 0..5 {
        for i in 0..100 {
            log.append("t", 0, &[fixed(round * 100 + i, 0)]).unwrap();
        }
        log.maintain().unwrap();
        let p = log.topic("t").unwrap().partitions[0];
        assert!(p.size_bytes >= limit, "round {round}: {}", p.size_bytes);
        assert!(
            p.size_bytes < limit + SEG,
            "round {round}: {}",
            p.size_bytes
        );
        // Whatever is left reads back contiguously to the end.
        let all = read_all(&log, "t", 0);
        assert_eq!(all.first().unwrap().offset, p.start_offset);
        assert_eq!(all.last().unwrap().offset, p.end_offset - 1);
        assert_eq!(all.len() as i64, p.end_offset - p.start_offset);
    }
    // 500 records = 22 full segments + 16 in the active one (2880 bytes);
    // keeping >= 11880 bytes needs the active plus 3 full segments (14760).
    let p = log.topic("t").unwrap().partitions[0];
    assert_eq!((p.start_offset, p.end_offset), (418, 500));
    assert_eq!(p.size_bytes, 82 * 180);
}

#[test]
fn compact_policy_ignores_retention() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    let (options, clock) = opts_with_clock(FsyncPolicy::Never, t0);
    let log = Log::open(dir.path(), options).unwrap();
    let base = TopicConfig::new(1)
        .with_segment_bytes(SEG)
        .with_retention(Some(Duration::from_secs(1)))
        .with_min_cleanable_ratio(0.0);
    log.create_topic("c", base.clone().with_cleanup(CleanupPolicy::Compact))
        .unwrap();
    for i in 0..50 {
        log.append("c", 0, &[fixed(i % 2, t0)]).unwrap();
    }
    clock.set(t0 + HOUR);
    let report = log.maintain().unwrap();
    assert_eq!(report.segments_deleted(), 0);
    assert_eq!(report.compactions(), 1);
    assert_eq!(log.offsets("c", 0).unwrap().0, 0);
}

/// Writes `n` updates cycling over `keys` keys; the value says its offset.
fn write_updates(log: &Log, topic: &str, keys: i64, n: i64, ts: i64) -> HashMap<String, String> {
    let mut latest = HashMap::new();
    for _ in 0..n {
        let (_, end) = log.offsets(topic, 0).unwrap();
        let key = format!("key-{:02}", end % keys);
        let value = format!("offset-{end}");
        let a = log.append(topic, 0, &[rec(&key, &value, ts)]).unwrap();
        assert_eq!(a.base_offset, end);
        latest.insert(key, value);
    }
    latest
}

#[test]
fn compaction_keeps_exactly_the_latest_value_per_key_and_preserves_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(SEG)
            .with_min_cleanable_ratio(0.0),
    )
    .unwrap();
    let latest = write_updates(&log, "c", 10, 1000, 0);
    let before = read_all(&log, "c", 0);
    let (_, end) = log.offsets("c", 0).unwrap();
    let active_base = *segment_bases(dir.path(), "c", 0).last().unwrap();

    let report = log.maintain().unwrap();
    assert!(report.compactions() >= 1);
    assert!(report.bytes_reclaimed() > 0);

    let after = read_all(&log, "c", 0);
    // Offsets are preserved: every record still says its own offset.
    for r in &after {
        assert_eq!(value_str(r).unwrap(), format!("offset-{}", r.offset));
    }
    // The active segment is untouched.
    let in_active: Vec<_> = before.iter().filter(|r| r.offset >= active_base).collect();
    let in_active_after: Vec<_> = after.iter().filter(|r| r.offset >= active_base).collect();
    assert_eq!(in_active, in_active_after);
    // In the compacted part each key appears once, with its latest value
    // within that part.
    let closed_after: Vec<_> = after.iter().filter(|r| r.offset < active_base).collect();
    let mut expect_closed: HashMap<String, i64> = HashMap::new();
    for r in before.iter().filter(|r| r.offset < active_base) {
        expect_closed.insert(key_str(r).unwrap(), r.offset);
    }
    assert_eq!(closed_after.len(), expect_closed.len());
    for r in &closed_after {
        assert_eq!(expect_closed[&key_str(r).unwrap()], r.offset);
    }
    // The log as a whole still yields the latest value for every key.
    let mut table = HashMap::new();
    for r in &after {
        table.insert(key_str(r).unwrap(), value_str(r).unwrap());
    }
    assert_eq!(table, latest);
    assert_eq!(log.offsets("c", 0).unwrap(), (0, end));
    // Closed segments were merged into one.
    assert_eq!(segment_bases(dir.path(), "c", 0), vec![0, active_base]);

    // Survives reopen (indexes of compacted segments included).
    drop(log);
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(read_all(&log, "c", 0), after);
}

#[test]
fn compaction_bounds_the_size_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(SEG),
    )
    .unwrap();
    let mut written = 0u64;
    for _round in 0..10 {
        write_updates(&log, "c", 10, 500, 0);
        written += 500;
        log.maintain().unwrap();
        let p = log.topic("c").unwrap().partitions[0];
        // 10 live keys (~82 bytes each as single-record batches) in the
        // compacted segment, plus at most one full active segment.
        assert!(p.size_bytes <= SEG + 10 * 90, "{}", p.size_bytes);
        assert!(p.segments <= 2, "{}", p.segments);
        assert_eq!(p.end_offset as u64, written);
    }
}

#[test]
fn reads_skip_gaps_left_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(SEG)
            .with_min_cleanable_ratio(0.0),
    )
    .unwrap();
    // Offsets 0..=49: key "a" everywhere except "b" at 10 and "c" at 30.
    for i in 0..50 {
        let k = match i {
            10 => "b",
            30 => "c",
            _ => "a",
        };
        log.append("c", 0, &[rec(k, &format!("{i:0100}"), 0)])
            .unwrap();
    }
    // 177-byte batches: segments [0,23) [23,46) [46,..).
    let active_base = *segment_bases(dir.path(), "c", 0).last().unwrap();
    assert_eq!(active_base, 46);
    log.maintain().unwrap();
    let all = read_all(&log, "c", 0);
    let offsets: Vec<i64> = all.iter().map(|r| r.offset).collect();
    // Closed part: "b" at 10, "c" at 30 and key "a"'s latest there
    // (active_base - 1); then the untouched active segment.
    let mut want = vec![10, 30, active_base - 1];
    want.extend(active_base..50);
    assert_eq!(offsets, want);
    // Reading from a removed offset returns the next surviving record.
    assert_eq!(log.read("c", 0, 0, 1, 1 << 20).unwrap()[0].offset, 10);
    assert_eq!(log.read("c", 0, 11, 1, 1 << 20).unwrap()[0].offset, 30);
    assert_eq!(
        log.read("c", 0, 31, 1, 1 << 20).unwrap()[0].offset,
        active_base - 1
    );
    assert_eq!(log.offsets("c", 0).unwrap(), (0, 50));
}

#[test]
fn tombstones_survive_delete_retention_then_disappear() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    let (options, clock) = opts_with_clock(FsyncPolicy::Never, t0);
    let log = Log::open(dir.path(), options).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(SEG)
            .with_delete_retention(Duration::from_secs(3600))
            .with_min_cleanable_ratio(0.0),
    )
    .unwrap();
    log.append("c", 0, &[rec("gone", "v1", t0), rec("kept", "k1", t0)])
        .unwrap();
    log.append("c", 0, &[NewRecord::tombstone("gone", t0)])
        .unwrap();
    // Push these into a closed segment.
    for i in 0..40 {
        log.append("c", 0, &[fixed(i, t0)]).unwrap();
    }
    let keys_of = |log: &Log| -> Vec<(i64, Option<String>, bool)> {
        read_all(log, "c", 0)
            .iter()
            .filter(|r| r.offset < 3)
            .map(|r| (r.offset, key_str(r), r.is_tombstone()))
            .collect()
    };

    log.maintain().unwrap();
    // The old value is gone, the tombstone is kept.
    assert_eq!(
        keys_of(&log),
        vec![
            (1, Some("kept".into()), false),
            (2, Some("gone".into()), true)
        ]
    );
    // Half the delete retention later: still there (nothing else to do).
    clock.advance(Duration::from_secs(1800));
    log.maintain().unwrap();
    assert_eq!(keys_of(&log).len(), 2);
    // Reopening keeps the horizon (it is stored in the batch).
    drop(log);
    let (options, clock) = opts_with_clock(FsyncPolicy::Never, t0 + 1_800_000);
    let log = Log::open(dir.path(), options).unwrap();
    log.maintain().unwrap();
    assert_eq!(keys_of(&log).len(), 2);
    // Past the horizon the tombstone is dropped too.
    clock.advance(Duration::from_secs(1800));
    let report = log.maintain().unwrap();
    assert!(report.compactions() >= 1);
    assert_eq!(keys_of(&log), vec![(1, Some("kept".into()), false)]);
    assert_eq!(log.offsets("c", 0).unwrap(), (0, 43));
}

#[test]
fn delete_records_moves_the_start_to_a_segment_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    log.create_topic(
        "r",
        TopicConfig::new(1)
            .with_segment_bytes(SEG)
            .with_retention(None),
    )
    .unwrap();
    for i in 0..100 {
        log.append("r", 0, &[fixed(i, 0)]).unwrap();
    }
    // Segments [0,22) [22,44) [44,66) [66,88) [88,..).
    assert_eq!(log.delete_records("r", 0, 50).unwrap(), 44);
    assert_eq!(log.offsets("r", 0).unwrap(), (44, 100));
    assert_eq!(log.delete_records("r", 0, 44).unwrap(), 44);
    // Never the active segment.
    assert_eq!(log.delete_records("r", 0, 1000).unwrap(), 88);
    assert_eq!(read_all(&log, "r", 0).len(), 12);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn compacting_log(dir: &Path) -> Log {
    let log = Log::open(dir, opts(FsyncPolicy::Always)).unwrap();
    log.create_topic(
        "c",
        TopicConfig::new(1)
            .with_cleanup(CleanupPolicy::Compact)
            .with_segment_bytes(SEG)
            .with_min_cleanable_ratio(0.0),
    )
    .unwrap();
    log
}

#[test]
fn crash_before_the_compaction_commit_point_keeps_the_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = compacting_log(dir.path());
    write_updates(&log, "c", 5, 300, 0);
    let before = read_all(&log, "c", 0);
    drop(log);
    // A half-written output left by a crash.
    let pdir = dir.path().join("topics/c/0");
    fs::write(pdir.join("00000000000000000000.cleaned"), b"half a segment").unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    assert!(!pdir.join("00000000000000000000.cleaned").exists());
    assert_eq!(read_all(&log, "c", 0), before);
}

#[test]
fn crash_after_the_compaction_commit_point_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let pre = tempfile::tempdir().unwrap();
    let log = compacting_log(dir.path());
    write_updates(&log, "c", 5, 300, 0);
    drop(log);
    // `pre` is the state just before compaction.
    copy_dir(dir.path(), pre.path());
    let bases_before = segment_bases(dir.path(), "c", 0);
    assert!(bases_before.len() > 3);

    let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    let report = log.maintain().unwrap();
    let MaintenanceAction::Compacted {
        base_offset: 0,
        segments,
        ..
    } = report.actions[0]
    else {
        panic!("{:?}", report.actions)
    };
    let compacted = read_all(&log, "c", 0);
    drop(log);
    let bases_after = segment_bases(dir.path(), "c", 0);
    let end = bases_after[1];
    assert_eq!(end, bases_before[segments]);

    // Simulate the crash: in `pre`, the output has been renamed to its swap
    // name (the commit point) and one input was already deleted.
    let ppre = pre.path().join("topics/c/0");
    fs::copy(
        dir.path().join("topics/c/0/00000000000000000000.log"),
        ppre.join(format!("00000000000000000000-{end:020}.swap")),
    )
    .unwrap();
    fs::remove_file(ppre.join(format!("{:020}.log", bases_before[1]))).unwrap();
    fs::remove_file(pre.path().join("CLEAN_SHUTDOWN")).ok();

    let log = Log::open(pre.path(), opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(read_all(&log, "c", 0), compacted);
    assert_eq!(segment_bases(pre.path(), "c", 0), bases_after);
    let swaps = fs::read_dir(&ppre)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".swap")
        })
        .count();
    assert_eq!(swaps, 0);
}
