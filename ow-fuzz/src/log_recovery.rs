//! Recovery of the local log ([`ow_stream_log::Log::open`]) from damaged segment and index files.
//!
//! The input describes a run: batches of records appended to one partition (small segments and
//! a dense index, so there are several of each), a clean close, then damage to the partition's
//! files (truncations, bit flips, zeroed ranges of `.log` and `.index` files), and whether the
//! close counts as a crash (the clean-shutdown marker removed). Then the log is reopened, and:
//!
//! - opening never panics and succeeds: damage to data files loses data, not the log;
//! - nothing corrupt is returned as valid: every record a read returns is the record appended
//!   at that offset, byte for byte (key, value, timestamp, headers);
//! - every record before the damage is kept: a record whose batch, and everything before it in
//!   its segment file, is untouched reads back from its own offset (index files are caches:
//!   damage to them loses nothing);
//! - recovery is idempotent: closing and reopening (cleanly, or as after a crash) changes
//!   neither the segment files nor what any read returns;
//! - the recovered log takes new appends, at its end offset, and reads them back.
//!
//! Where the records sit in the files is read from the pristine segment files before the
//! damage, by the on-disk format of the crate docs (a frame's length at byte 0, its base offset
//! at byte 8, its last offset delta at byte 20), not from the crate's internals.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use ow_stream_log::{
    Bytes, FsyncPolicy, Header, Log, LogError, LogOptions, NewRecord, StoredRecord, TopicConfig,
};

const TOPIC: &str = "fuzz";
/// The clean-shutdown marker of the crate's on-disk format.
const CLEAN_MARKER: &str = "CLEAN_SHUTDOWN";

/// One fuzzed run: what is written, and how the files are damaged afterwards.
#[derive(Arbitrary, Debug)]
pub struct Case {
    batches: Vec<Vec<Rec>>,
    /// Segment size: 4 KiB (the least the log allows) plus this many 64-byte units.
    segment_extra: u8,
    /// Index interval: 16 bytes plus this many 16-byte units.
    index_interval: u8,
    damage: Vec<Damage>,
    /// Remove the clean-shutdown marker before reopening, as after a crash.
    crash: bool,
    /// Reopen as after a crash for the idempotence check too.
    crash_again: bool,
}

/// A record to append: key, value and headers from the input, the value padded to reach
/// segment sizes with few input bytes.
#[derive(Arbitrary, Debug)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    pad: u16,
    timestamp: i32,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Damage to one file of the partition (`file` indexes the sorted file list).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Damage {
    Truncate { file: u8, at: u32 },
    Flip { file: u8, at: u32, bit: u8 },
    Zero { file: u8, at: u32, len: u8 },
}

/// Checks recovery on the run `data` describes; panics if a property is broken.
pub fn check(data: &[u8]) {
    if let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(data)) {
        run(&case);
    }
}

/// Runs one case (see the module docs).
pub fn run(case: &Case) {
    if case.batches.iter().all(Vec::is_empty) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = || {
        LogOptions::default()
            .with_fsync(FsyncPolicy::Always)
            .with_maintenance_interval(None)
            .with_index_interval_bytes(16 + 16 * u32::from(case.index_interval))
    };
    let written = write(dir.path(), case, options());
    let partition = dir.path().join("topics").join(TOPIC).join("0");
    let layout = layout(&partition);
    let damaged_from = damage(&partition, &case.damage);
    if case.crash {
        remove_marker(dir.path());
    }

    let log = open(dir.path(), options());
    let first = observe(&log, &written);
    check_records(&first, &written, &layout, &damaged_from);
    drop(log);

    let files = segment_files(&partition);
    if case.crash_again {
        remove_marker(dir.path());
    }
    let log = open(dir.path(), options());
    let second = observe(&log, &written);
    assert_eq!(first, second, "a second recovery reads differently");
    assert_eq!(
        files,
        segment_files(&partition),
        "a second recovery changed the segments"
    );

    let end = first.end;
    let appended = log
        .append(
            TOPIC,
            0,
            &[NewRecord::new(Some("after"), Some("recovery"), 7)],
        )
        .unwrap_or_else(|e| panic!("the recovered log refuses an append: {e}"));
    assert_eq!(appended.base_offset, end, "appended past the recovered end");
    let back = log
        .read(TOPIC, 0, end, 10, 1 << 20)
        .unwrap_or_else(|e| panic!("cannot read the record appended after recovery: {e}"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].value.as_deref(), Some(&b"recovery"[..]));
}

/// Appends the case's batches and closes the log cleanly; returns every record by offset.
fn write(dir: &Path, case: &Case, options: LogOptions) -> BTreeMap<i64, NewRecord> {
    let log = open(dir, options);
    let config =
        TopicConfig::new(1).with_segment_bytes((4 << 10) + 64 * u64::from(case.segment_extra));
    log.create_topic(TOPIC, config)
        .expect("a valid topic config");
    let mut written = BTreeMap::new();
    for batch in case.batches.iter().filter(|b| !b.is_empty()) {
        let records: Vec<NewRecord> = batch.iter().map(Rec::to_record).collect();
        let result = log
            .append(TOPIC, 0, &records)
            .unwrap_or_else(|e| panic!("append before any damage failed: {e}"));
        for (offset, record) in (result.base_offset..).zip(records) {
            written.insert(offset, record);
        }
    }
    written
}

impl Rec {
    fn to_record(&self) -> NewRecord {
        let value = self.value.as_ref().map(|v| {
            let mut v = v.clone();
            v.extend((0..self.pad % 1024).map(|i| i as u8));
            Bytes::from(v)
        });
        NewRecord {
            key: self.key.clone().map(Bytes::from),
            value,
            timestamp: i64::from(self.timestamp),
            headers: self
                .headers
                .iter()
                .map(|(key, value)| Header {
                    key: key.clone(),
                    value: value.clone().map(Bytes::from),
                })
                .collect(),
        }
    }
}

fn open(dir: &Path, options: LogOptions) -> Log {
    Log::open(dir, options).unwrap_or_else(|e| panic!("the log does not open: {e}"))
}

fn remove_marker(dir: &Path) {
    let marker = dir.join(CLEAN_MARKER);
    fs::remove_file(&marker)
        .unwrap_or_else(|e| panic!("no clean-shutdown marker at {}: {e}", marker.display()));
}

/// Where one batch sits: its segment file, its byte range, its offsets.
#[derive(Debug)]
struct Frame {
    file: PathBuf,
    end: u64,
    first: i64,
    last: i64,
}

/// The batches of the pristine segment files, read by the documented frame layout.
fn layout(partition: &Path) -> Vec<Frame> {
    let mut frames = Vec::new();
    for (file, bytes) in segment_files(partition) {
        let mut pos = 0usize;
        while pos + 24 <= bytes.len() {
            let word = |at: usize| -> [u8; 4] {
                bytes[pos + at..pos + at + 4].try_into().expect("4 bytes")
            };
            let len = u32::from_le_bytes(word(0)) as usize + 8;
            let base = i64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes"));
            let delta = i64::from(u32::from_le_bytes(word(20)));
            frames.push(Frame {
                file: file.clone(),
                end: (pos + len) as u64,
                first: base,
                last: base + delta,
            });
            pos += len;
        }
        assert_eq!(
            pos,
            bytes.len(),
            "{} does not end on a frame",
            file.display()
        );
    }
    frames
}

/// The `.log` files of the partition with their bytes, in offset order.
fn segment_files(partition: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = partition_files(partition)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

fn partition_files(partition: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(partition)
        .expect("the partition directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
}

/// Applies the damage; returns, per damaged file, the first byte it touched.
fn damage(partition: &Path, damage: &[Damage]) -> BTreeMap<PathBuf, u64> {
    let files = partition_files(partition);
    let mut first = BTreeMap::new();
    for d in damage.iter().take(8) {
        let (Damage::Truncate { file, .. } | Damage::Flip { file, .. } | Damage::Zero { file, .. }) =
            *d;
        let path = &files[usize::from(file) % files.len()];
        let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let len = bytes.len() as u64;
        let touched = match *d {
            Damage::Truncate { at, .. } => {
                let at = u64::from(at) % (len + 1);
                bytes.truncate(at as usize);
                (at < len).then_some(at)
            }
            Damage::Flip { at, bit, .. } if len > 0 => {
                let at = u64::from(at) % len;
                bytes[at as usize] ^= 1 << (bit % 8);
                Some(at)
            }
            Damage::Zero { at, len: n, .. } if len > 0 => {
                let at = u64::from(at) % len;
                let end = (at + u64::from(n)).min(len);
                let changed = bytes[at as usize..end as usize].iter().any(|&b| b != 0);
                bytes[at as usize..end as usize].fill(0);
                changed.then_some(at)
            }
            _ => None,
        };
        fs::write(path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(at) = touched {
            let entry = first.entry(path.clone()).or_insert(at);
            *entry = (*entry).min(at);
        }
    }
    first
}

/// What the reopened log shows: its offsets, and what a read from each offset returns.
#[derive(Debug, PartialEq)]
struct Observed {
    start: i64,
    end: i64,
    /// From each offset in `start..=end` (and one past the written ones), the first record a
    /// read returns, or its error.
    reads: Vec<(i64, Result<Option<StoredRecord>, String>)>,
    /// A scan from `start` in small reads, until the end or the first error.
    scan: Vec<StoredRecord>,
    scan_error: Option<String>,
}

fn observe(log: &Log, written: &BTreeMap<i64, NewRecord>) -> Observed {
    let (start, end) = log
        .offsets(TOPIC, 0)
        .unwrap_or_else(|e| panic!("no offsets for the partition: {e}"));
    let written_end = written.keys().next_back().map_or(0, |o| o + 1);
    let reads = (start..=end.max(written_end))
        .map(|from| {
            let read = log
                .read(TOPIC, 0, from, 3, 1 << 20)
                .map(|records| records.into_iter().next())
                .map_err(|e| describe(&e));
            (from, read)
        })
        .collect();
    let mut scan = Vec::new();
    let mut scan_error = None;
    let mut from = start;
    while from < end {
        match log.read(TOPIC, 0, from, 2, 1 << 20) {
            Ok(records) if records.is_empty() => break,
            Ok(records) => {
                for r in &records {
                    assert!(
                        r.offset >= from,
                        "read from {from} returned offset {}",
                        r.offset
                    );
                }
                from = records.last().map_or(from, |r| r.offset + 1);
                scan.extend(records);
            }
            Err(e) => {
                scan_error = Some(describe(&e));
                break;
            }
        }
    }
    Observed {
        start,
        end,
        reads,
        scan,
        scan_error,
    }
}

fn describe(e: &LogError) -> String {
    e.to_string()
}

/// Every record returned is the one written at its offset; every record before the damage is
/// returned from its own offset.
fn check_records(
    seen: &Observed,
    written: &BTreeMap<i64, NewRecord>,
    layout: &[Frame],
    damaged_from: &BTreeMap<PathBuf, u64>,
) {
    let same = |r: &StoredRecord| {
        let w = written
            .get(&r.offset)
            .unwrap_or_else(|| panic!("read a record at offset {}, never written", r.offset));
        assert!(
            r.key == w.key
                && r.value == w.value
                && r.timestamp == w.timestamp
                && r.headers == w.headers,
            "offset {} reads {r:?}, but {w:?} was written",
            r.offset
        );
    };
    let mut last = None;
    for r in &seen.scan {
        same(r);
        assert!(
            last < Some(r.offset),
            "the scan went backwards at {}",
            r.offset
        );
        last = Some(r.offset);
    }
    for (from, read) in &seen.reads {
        if let Ok(Some(r)) = read {
            same(r);
            assert!(
                r.offset >= *from,
                "read from {from} returned offset {}",
                r.offset
            );
        }
    }
    let intact = |f: &Frame| damaged_from.get(&f.file).is_none_or(|&at| at >= f.end);
    for frame in layout.iter().filter(|f| intact(f)) {
        for offset in frame.first..=frame.last {
            if !written.contains_key(&offset) {
                continue;
            }
            let read = seen
                .reads
                .iter()
                .find(|(from, _)| *from == offset)
                .map(|(_, read)| read);
            match read {
                Some(Ok(Some(r))) if r.offset == offset => {}
                other => panic!(
                    "offset {offset}, in an intact batch of {} before the damage, reads {other:?}",
                    frame.file.display()
                ),
            }
        }
    }
    // The scan from the start reaches every intact record of the first segments, up to the
    // first damaged batch.
    let first_damaged = layout
        .iter()
        .find(|f| !intact(f))
        .map_or(i64::MAX, |f| f.first);
    for offset in written.keys().filter(|&&o| o < first_damaged) {
        assert!(
            seen.scan.iter().any(|r| r.offset == *offset),
            "the scan from the start misses offset {offset}, before the first damage"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Rec> {
        (0..n)
            .map(|i| Rec {
                key: Some(format!("k{i}").into_bytes()),
                value: (i % 5 != 0).then(|| vec![i as u8; 8]),
                pad: 700,
                timestamp: i as i32,
                headers: vec![("h".into(), (i % 2 == 0).then(|| vec![1, 2]))],
            })
            .collect()
    }

    fn case(damage: Vec<Damage>, crash: bool) -> Case {
        Case {
            batches: vec![
                records(3),
                records(1),
                records(4),
                records(2),
                records(5),
                records(3),
            ],
            segment_extra: 0,
            index_interval: 10,
            damage,
            crash,
            crash_again: !crash,
        }
    }

    #[test]
    fn the_cases_write_several_segments_with_indexes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let c = case(Vec::new(), false);
        let options = LogOptions::default()
            .with_maintenance_interval(None)
            .with_index_interval_bytes(176);
        let written = write(dir.path(), &c, options);
        assert_eq!(written.len(), 18);
        let partition = dir.path().join("topics").join(TOPIC).join("0");
        let frames = layout(&partition);
        assert_eq!(frames.len(), 6);
        assert!(segment_files(&partition).len() >= 3);
        let indexes = partition_files(&partition)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "index"))
            .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .count();
        assert!(indexes >= 1, "no index entries");
    }

    #[test]
    fn damage_of_every_kind_in_every_file_is_recovered_from() {
        for file in 0..8 {
            for crash in [false, true] {
                run(&case(
                    vec![Damage::Flip {
                        file,
                        at: 3000,
                        bit: 3,
                    }],
                    crash,
                ));
                run(&case(vec![Damage::Truncate { file, at: 1500 }], crash));
                run(&case(
                    vec![Damage::Zero {
                        file,
                        at: 60,
                        len: 200,
                    }],
                    crash,
                ));
            }
        }
    }
}
