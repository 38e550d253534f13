//! One segment: a `<base offset>.log` file of batch frames plus its
//! `<base offset>.index`, and the recovery scan that validates them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::{IoContext, LogError};
use crate::index::{self, ENTRY_LEN, IndexEntry};

/// Width of the zero-padded base offset in file names (Kafka uses 20 too).
const NAME_DIGITS: usize = 20;
/// Bytes fetched by the first read syscall of a reader; each refill doubles
/// it up to `MAX_CHUNK`, so a one-record read stays cheap and a long scan
/// makes few syscalls.
const FIRST_CHUNK: usize = 32 << 10;
const MAX_CHUNK: usize = 1 << 20;

pub(crate) fn log_name(base: i64) -> String {
    format!("{base:0NAME_DIGITS$}.log")
}

pub(crate) fn index_name(base: i64) -> String {
    format!("{base:0NAME_DIGITS$}.index")
}

pub(crate) fn cleaned_name(base: i64) -> String {
    format!("{base:0NAME_DIGITS$}.cleaned")
}

pub(crate) fn swap_name(base: i64, end: i64) -> String {
    format!("{base:0NAME_DIGITS$}-{end:0NAME_DIGITS$}.swap")
}

/// Parses a 20-digit offset.
pub(crate) fn parse_offset(s: &str) -> Option<i64> {
    if s.len() == NAME_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A segment shared by the writer, readers and maintenance.
///
/// Only the partition writer (under its lock) appends; it publishes what it
/// wrote through the atomics, readers never look past `committed`.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base: i64,
    pub(crate) log_path: PathBuf,
    pub(crate) index_path: PathBuf,
    pub(crate) file: File,
    /// Bytes readers may read (complete, committed batches).
    pub(crate) committed: AtomicU64,
    /// Bytes written.
    pub(crate) size: AtomicU64,
    /// One past the last offset of the last batch written (`base` if empty).
    pub(crate) next_offset: AtomicI64,
    /// Largest record timestamp (`i64::MIN` if empty).
    pub(crate) max_ts: AtomicI64,
    pub(crate) index: RwLock<Vec<IndexEntry>>,
    /// Set once a read found an index entry that points at no batch starting at or before its
    /// offset (a damaged index file of a segment trusted on open): from then on, reads of the
    /// segment scan it from its start.
    index_damaged: AtomicBool,
}

/// How much of a segment to re-validate when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Validate every batch (the active segment, on every open).
    Full,
    /// Trust the index; validate batches after its last entry.
    Tail,
}

/// Decides where the next index entry goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexPolicy {
    pub(crate) interval: u64,
}

impl IndexPolicy {
    /// Whether a batch starting at `pos` gets an entry, given the position of
    /// the last entry (or none).
    pub(crate) fn wants(&self, pos: u64, last: Option<u64>) -> bool {
        pos > 0 && pos - last.unwrap_or(0) >= self.interval
    }
}

impl Segment {
    /// Creates an empty segment (fails if the file exists).
    pub(crate) fn create(dir: &Path, base: i64) -> Result<(Segment, File), LogError> {
        let log_path = dir.join(log_name(base));
        let index_path = dir.join(index_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)
            .at(&log_path)?;
        let index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&index_path)
            .at(&index_path)?;
        Ok((
            Segment {
                base,
                log_path,
                index_path,
                file,
                committed: AtomicU64::new(0),
                size: AtomicU64::new(0),
                next_offset: AtomicI64::new(base),
                max_ts: AtomicI64::new(i64::MIN),
                index: RwLock::new(Vec::new()),
                index_damaged: AtomicBool::new(false),
            },
            index_file,
        ))
    }

    /// Wraps a complete segment file whose contents are already known (the
    /// output of compaction).
    pub(crate) fn from_parts(
        dir: &Path,
        base: i64,
        index: Vec<IndexEntry>,
        size: u64,
        next_offset: i64,
        max_ts: i64,
    ) -> Result<Segment, LogError> {
        let log_path = dir.join(log_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        Ok(Segment {
            base,
            index_path: dir.join(index_name(base)),
            log_path,
            file,
            committed: AtomicU64::new(size),
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(next_offset),
            max_ts: AtomicI64::new(max_ts),
            index: RwLock::new(index),
            index_damaged: AtomicBool::new(false),
        })
    }

    /// Opens an existing segment, validates it and cuts off a torn tail.
    /// Returns the segment and how many bytes were cut off.
    pub(crate) fn open(
        dir: &Path,
        base: i64,
        scan: Scan,
        policy: IndexPolicy,
    ) -> Result<(Segment, u64), LogError> {
        let log_path = dir.join(log_name(base));
        let index_path = dir.join(index_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        let file_len = file.metadata().at(&log_path)?.len();

        // Load the index unless we are going to rebuild it anyway.
        let mut entries = Vec::new();
        let mut rewrite = scan == Scan::Full;
        if scan == Scan::Tail {
            entries = load_index(&index_path, base, file_len);
            // The last entry must point at a valid batch with that offset,
            // otherwise the index belongs to other data: rebuild it.
            if let Some(last) = entries.last().copied() {
                let mut r = FrameReader::new(&file, &log_path, file_len);
                let ok = matches!(
                    r.frame_at(last.position)?,
                    Next::Frame(h, _) if h.base_offset == last.offset
                );
                if !ok {
                    tracing::warn!(path = %index_path.display(), "index does not match its segment; rebuilding");
                    entries.clear();
                    rewrite = true;
                }
            }
        }
        let loaded_entries = entries.len();
        let (start_pos, mut max_ts) = entries
            .last()
            .map_or((0, i64::MIN), |e| (e.position, e.max_ts_before));

        // Scan forward from `start_pos`, validating every batch.
        let mut reader = FrameReader::new(&file, &log_path, file_len);
        let mut pos = start_pos;
        let mut next_offset = entries.last().map_or(base, |e| e.offset);
        let mut last_entry_pos = entries.last().map(|e| e.position);
        loop {
            match reader.frame_at(pos)? {
                Next::End => break,
                Next::Invalid(reason) => {
                    tracing::warn!(
                        path = %log_path.display(),
                        position = pos,
                        reason,
                        "cutting off invalid tail of segment"
                    );
                    break;
                }
                Next::Frame(h, _) => {
                    if h.base_offset < next_offset.max(base) {
                        tracing::warn!(
                            path = %log_path.display(),
                            position = pos,
                            "batch offsets go backwards; cutting off the rest of the segment"
                        );
                        break;
                    }
                    if policy.wants(pos, last_entry_pos) {
                        entries.push(IndexEntry {
                            offset: h.base_offset,
                            position: pos,
                            max_ts_before: max_ts,
                        });
                        last_entry_pos = Some(pos);
                    }
                    max_ts = max_ts.max(h.max_timestamp);
                    next_offset = h.next_offset();
                    pos += u64::from(h.size);
                }
            }
        }
        let cut = file_len - pos;
        if cut > 0 {
            file.set_len(pos).at(&log_path)?;
            file.sync_all().at(&log_path)?;
        }
        if rewrite || cut > 0 || entries.len() != loaded_entries {
            write_index(&index_path, &entries)?;
        }
        Ok((
            Segment {
                base,
                log_path,
                index_path,
                file,
                committed: AtomicU64::new(pos),
                size: AtomicU64::new(pos),
                next_offset: AtomicI64::new(next_offset),
                max_ts: AtomicI64::new(max_ts),
                index: RwLock::new(entries),
                index_damaged: AtomicBool::new(false),
            },
            cut,
        ))
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn max_ts(&self) -> i64 {
        self.max_ts.load(Ordering::Acquire)
    }

    /// Where to start scanning for `offset`: the index's position for it, or 0 once the index
    /// is known to be damaged. A reader starting at a position above 0 checks the first frame
    /// it finds there with [`Segment::index_led_astray`].
    pub(crate) fn position_for(&self, offset: i64) -> u64 {
        if self.index_damaged.load(Ordering::Acquire) {
            return 0;
        }
        index::lookup(&self.index.read(), offset).map_or(0, |e| e.position)
    }

    /// Whether `next`, the first frame found at the index's position `pos` for `offset`,
    /// shows the index to be damaged: not a valid frame, or a batch that starts after
    /// `offset` (an intact index points at a batch starting at or before it). Then the index
    /// is distrusted for good (logged once) and the caller reads again from position 0.
    /// (`Next::End` is not taken as damage: an entry may point at a batch being appended.)
    pub(crate) fn index_led_astray(&self, next: &Next, pos: u64, offset: i64) -> bool {
        let astray = match next {
            Next::Invalid(_) => true,
            Next::Frame(h, _) => h.base_offset > offset,
            Next::End => false,
        };
        if astray && pos > 0 && !self.index_damaged.swap(true, Ordering::AcqRel) {
            tracing::error!(
                path = %self.index_path.display(),
                position = pos,
                offset,
                "the index points at no batch holding the offset: it is damaged; reads of this \
                 segment scan it from its start"
            );
        }
        astray && pos > 0
    }

    /// Reads every committed batch of the segment, in order.
    pub(crate) fn for_each_batch(
        &self,
        mut f: impl FnMut(&BatchHeader, &Bytes) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let limit = self.committed.load(Ordering::Acquire);
        let mut r = FrameReader::new(&self.file, &self.log_path, limit);
        let mut pos = 0;
        loop {
            match r.frame_at(pos)? {
                Next::End => return Ok(()),
                Next::Invalid(reason) => {
                    return Err(LogError::corrupt(&self.log_path, pos, reason));
                }
                Next::Frame(h, frame) => {
                    f(&h, &frame)?;
                    pos += u64::from(h.size);
                }
            }
        }
    }
}

/// Reads an index file, dropping entries that cannot belong to a segment of
/// `file_len` bytes starting at `base`. Any problem yields an empty index
/// (which makes the caller rebuild it).
fn load_index(path: &Path, base: i64, file_len: u64) -> Vec<IndexEntry> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    match index::decode(&bytes) {
        Ok(mut entries) => {
            if entries.first().is_some_and(|e| e.offset < base) {
                return Vec::new();
            }
            entries.retain(|e| e.position + HEADER_LEN as u64 <= file_len);
            entries
        }
        Err(reason) => {
            tracing::warn!(path = %path.display(), reason, "ignoring unreadable index");
            Vec::new()
        }
    }
}

/// Writes a whole index file (a cache: no fsync needed for correctness, but
/// done by the caller where it matters).
pub(crate) fn write_index(path: &Path, entries: &[IndexEntry]) -> Result<(), LogError> {
    let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        buf.extend_from_slice(&e.encode());
    }
    let mut f = File::create(path).at(path)?;
    f.write_all(&buf).at(path)?;
    Ok(())
}

/// Result of looking for a batch frame at a position.
#[derive(Debug)]
pub(crate) enum Next {
    /// A complete frame with a valid CRC.
    Frame(BatchHeader, Bytes),
    /// The position is the end of the readable area.
    End,
    /// Bytes at the position are not a valid frame (torn or corrupt).
    Invalid(&'static str),
}

/// Sequential frame reader over a file, fetching large chunks with `pread` so
/// small batches cost no syscall each. Returned frames are zero-copy slices of
/// the chunk.
pub(crate) struct FrameReader<'a> {
    file: &'a File,
    path: &'a Path,
    limit: u64,
    buf: Bytes,
    buf_start: u64,
    chunk: usize,
}

impl<'a> FrameReader<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, limit: u64) -> Self {
        FrameReader {
            file,
            path,
            limit,
            buf: Bytes::new(),
            buf_start: 0,
            chunk: FIRST_CHUNK,
        }
    }

    /// Makes `[pos, pos + len)` available in the buffer; false if the file
    /// ends first.
    fn ensure(&mut self, pos: u64, len: usize) -> Result<bool, LogError> {
        let have_end = self.buf_start + self.buf.len() as u64;
        if pos >= self.buf_start && pos + len as u64 <= have_end {
            return Ok(true);
        }
        let want = len.max(self.chunk).min((self.limit - pos) as usize);
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        if want < len {
            return Ok(false);
        }
        let mut v = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match self.file.read_at(&mut v[filled..], pos + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LogError::io(self.path, e)),
            }
        }
        v.truncate(filled);
        self.buf = Bytes::from(v);
        self.buf_start = pos;
        Ok(filled >= len)
    }

    fn slice(&self, pos: u64, len: usize) -> Bytes {
        let at = (pos - self.buf_start) as usize;
        self.buf.slice(at..at + len)
    }

    pub(crate) fn frame_at(&mut self, pos: u64) -> Result<Next, LogError> {
        if pos >= self.limit {
            return Ok(Next::End);
        }
        if !self.ensure(pos, HEADER_LEN)? {
            return Ok(Next::Invalid("torn batch header"));
        }
        let head = self.slice(pos, HEADER_LEN);
        let h = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(reason) => return Ok(Next::Invalid(reason)),
        };
        if !self.ensure(pos, h.size as usize)? {
            return Ok(Next::Invalid("torn batch"));
        }
        let frame = self.slice(pos, h.size as usize);
        if !h.crc_ok(&frame) {
            return Ok(Next::Invalid("batch crc mismatch"));
        }
        Ok(Next::Frame(h, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::encode_new;
    use crate::record::NewRecord;

    fn write_batches(path: &Path, n: usize, per: usize) -> Vec<u64> {
        let mut f = File::create(path).unwrap();
        let mut positions = Vec::new();
        let mut pos = 0u64;
        for i in 0..n {
            let recs: Vec<NewRecord> = (0..per)
                .map(|j| {
                    NewRecord::new(
                        Some(format!("k{j}")),
                        Some(vec![b'x'; 100]),
                        (i * 10 + j) as i64,
                    )
                })
                .collect();
            let mut b = encode_new(&recs);
            let frame = b.seal((i * per) as i64);
            positions.push(pos);
            pos += frame.len() as u64;
            f.write_all(frame).unwrap();
        }
        positions
    }

    #[test]
    fn names_roundtrip() {
        assert_eq!(log_name(42), "00000000000000000042.log");
        assert_eq!(parse_offset("00000000000000000042"), Some(42));
        assert_eq!(parse_offset("42"), None);
        assert_eq!(parse_offset("0000000000000000004x"), None);
    }

    #[test]
    fn open_rebuilds_missing_index_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(log_name(0));
        write_batches(&path, 50, 3);
        let full = std::fs::metadata(&path).unwrap().len();
        // Tear the last batch.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 7).unwrap();
        drop(f);

        let policy = IndexPolicy { interval: 1024 };
        let (seg, cut) = Segment::open(dir.path(), 0, Scan::Tail, policy).unwrap();
        assert!(cut > 0);
        assert_eq!(seg.next_offset(), 49 * 3);
        assert_eq!(seg.size(), full - 7 - cut);
        assert!(!seg.index.read().is_empty());
        assert_eq!(seg.max_ts(), 48 * 10 + 2);
        let index_len = std::fs::metadata(dir.path().join(index_name(0)))
            .unwrap()
            .len();
        assert_eq!(index_len as usize, seg.index.read().len() * ENTRY_LEN);

        // Reopening with the written index gives the same answer.
        let entries = seg.index.read().clone();
        drop(seg);
        let (seg, cut) = Segment::open(dir.path(), 0, Scan::Tail, policy).unwrap();
        assert_eq!(cut, 0);
        assert_eq!(*seg.index.read(), entries);
        assert_eq!(seg.next_offset(), 49 * 3);
    }

    #[test]
    fn corrupt_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(log_name(0));
        let positions = write_batches(&path, 40, 2);
        let policy = IndexPolicy { interval: 1024 };
        let (seg, _) = Segment::open(dir.path(), 0, Scan::Full, policy).unwrap();
        let good = seg.index.read().clone();
        drop(seg);
        // An index entry pointing into the middle of a batch.
        let bogus = IndexEntry {
            offset: 10,
            position: positions[5] + 3,
            max_ts_before: 0,
        };
        std::fs::write(dir.path().join(index_name(0)), bogus.encode()).unwrap();
        let (seg, _) = Segment::open(dir.path(), 0, Scan::Tail, policy).unwrap();
        assert_eq!(*seg.index.read(), good);
        // Index lookups land on batch starts at or before the offset.
        for e in seg.index.read().iter() {
            assert!(positions.contains(&e.position));
        }
        let p = seg.position_for(33);
        assert!(positions.contains(&p));
    }

    #[test]
    fn garbage_after_valid_batches_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(log_name(0));
        write_batches(&path, 5, 1);
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        drop(f);
        let (seg, cut) =
            Segment::open(dir.path(), 0, Scan::Full, IndexPolicy { interval: 4096 }).unwrap();
        assert_eq!(cut, 4096);
        assert_eq!(seg.size(), good_len);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    }
}
