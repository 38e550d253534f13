//! One partition: an ordered list of segments, the single writer, group
//! commit, reads and the wake-up event.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use event_listener::{Event, Listener};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::{self, BatchBuilder, MAX_BATCH_BYTES, SealedBody};
use crate::config::{Clock, FsyncPolicy, TopicConfig, duration_ms};
use crate::error::{IoContext, LogError};
use crate::index::{ENTRY_LEN, IndexEntry};
use crate::info::PartitionInfo;
use crate::record::{AppendResult, NewRecord, StoredRecord};
use crate::segment::{self, IndexPolicy, Next, Scan, Segment};

/// State shared by every partition of a log.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) fsync: FsyncPolicy,
    pub(crate) index: IndexPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    /// Notified on every append to any partition (for `wait_for_any`).
    pub(crate) any_append: Event,
    pub(crate) records_appended: AtomicU64,
    pub(crate) bytes_appended: AtomicU64,
}

/// The writer's private state, behind `Partition::writer`.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) active: Arc<Segment>,
    index_file: File,
    last_index_pos: Option<u64>,
    pub(crate) next_offset: i64,
    /// Clock time when the active segment was opened (for `segment_time`).
    created_ms: i64,
    /// The first offset here of each transactional producer's open
    /// transaction.
    open_txns: HashMap<u16, i64>,
}

/// The data of an aborted transaction in one partition: batches of
/// `producer` in `[first, marker)` are invisible to `read_committed` readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedRange {
    pub(crate) producer: u16,
    pub(crate) first: i64,
    pub(crate) marker: i64,
}

/// Which records a read returns (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Isolation {
    /// Every record appended, also those of open and aborted transactions
    /// (but never transaction markers). Kafka's default.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions and plain appends, up to the
    /// last stable offset (the first offset of the oldest open transaction).
    ReadCommitted,
}

/// What [`Log::fetch`](crate::Log::fetch) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The records, in offset order.
    pub records: Vec<crate::StoredRecord>,
    /// Where the next fetch starts: past the last record returned and past
    /// any markers, aborted data or compaction gaps that followed it.
    pub next_offset: i64,
}

/// Maintenance bookkeeping, behind `Partition::maint` (which also serialises
/// maintenance of the partition).
#[derive(Debug, Default)]
pub(crate) struct MaintState {
    /// Closed segments with a base below this were compacted already.
    pub(crate) clean_end: i64,
    /// Earliest time a kept tombstone may be dropped.
    pub(crate) tombstone_deadline: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: Arc<str>,
    pub(crate) id: i32,
    pub(crate) dir: PathBuf,
    pub(crate) config: Arc<TopicConfig>,
    pub(crate) shared: Arc<Shared>,
    /// Oldest first; the last one is the active segment.
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    pub(crate) writer: Mutex<Writer>,
    /// Offsets below this are visible to readers.
    end: AtomicI64,
    /// Offsets below this are on stable storage.
    durable_end: AtomicI64,
    /// The first offset of the oldest open transaction (`i64::MAX` if none):
    /// `read_committed` readers stop before it.
    first_unstable: AtomicI64,
    /// Aborted transactions with data here, by marker offset.
    pub(crate) aborted: RwLock<Vec<AbortedRange>>,
    syncing: Mutex<bool>,
    sync_done: Condvar,
    event: Event,
    poisoned: AtomicBool,
    pub(crate) maint: Mutex<MaintState>,
    records_appended: AtomicU64,
}

impl Partition {
    /// Opens (or creates) the partition directory and recovers it.
    pub(crate) fn open(
        topic: Arc<str>,
        id: i32,
        dir: PathBuf,
        config: Arc<TopicConfig>,
        shared: Arc<Shared>,
        clean_shutdown: bool,
    ) -> Result<Partition, LogError> {
        fs::create_dir_all(&dir).at(&dir)?;
        finish_interrupted_compactions(&dir)?;
        let bases = list_segments(&dir)?;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let n = bases.len();
        for (i, base) in bases.into_iter().enumerate() {
            // The active segment is re-validated whole on every open, after a clean close
            // too: a batch damaged on disk while the log was closed would otherwise stay in
            // the middle of the segment, new appends would go after it, and the next unclean
            // open (which cuts at the first bad batch) would take those appends with it.
            let scan = if i + 1 == n { Scan::Full } else { Scan::Tail };
            let (seg, cut) = Segment::open(&dir, base, scan, shared.index)?;
            if cut > 0 && clean_shutdown {
                tracing::error!(
                    topic = %topic, partition = id, segment = base, bytes = cut,
                    "recovery cut off damaged data of a segment that was closed cleanly"
                );
            } else if cut > 0 {
                tracing::warn!(
                    topic = %topic, partition = id, segment = base, bytes = cut,
                    "recovery cut off a torn tail"
                );
            }
            segments.push(Arc::new(seg));
        }
        for pair in segments.windows(2) {
            if pair[0].next_offset() > pair[1].base {
                return Err(LogError::corrupt(
                    &pair[1].log_path,
                    0,
                    format!(
                        "segment starts at offset {} but the previous one ends at {}",
                        pair[1].base,
                        pair[0].next_offset()
                    ),
                ));
            }
        }
        let index_file;
        if let Some(last) = segments.last() {
            index_file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&last.index_path)
                .at(&last.index_path)?;
        } else {
            let (seg, f) = Segment::create(&dir, 0)?;
            sync_dir(&dir)?;
            segments.push(Arc::new(seg));
            index_file = f;
        }
        let active = Arc::clone(segments.last().expect("a partition always has a segment"));
        let end = active.next_offset();
        let last_index_pos = active.index.read().last().map(|e| e.position);
        let now = shared.clock.now_ms();
        Ok(Partition {
            topic,
            id,
            dir,
            config,
            shared,
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer {
                active,
                index_file,
                last_index_pos,
                next_offset: end,
                created_ms: now,
                open_txns: HashMap::new(),
            }),
            end: AtomicI64::new(end),
            durable_end: AtomicI64::new(end),
            first_unstable: AtomicI64::new(i64::MAX),
            aborted: RwLock::new(Vec::new()),
            syncing: Mutex::new(false),
            sync_done: Condvar::new(),
            event: Event::new(),
            poisoned: AtomicBool::new(false),
            maint: Mutex::new(MaintState::default()),
            records_appended: AtomicU64::new(0),
        })
    }

    /// The offset the next record will get, as far as readers can see.
    pub(crate) fn end(&self) -> i64 {
        self.end.load(Ordering::Acquire)
    }

    pub(crate) fn start(&self) -> i64 {
        self.segments.read()[0].base
    }

    /// The end as a reader with `isolation` sees it.
    pub(crate) fn visible_end(&self, isolation: Isolation) -> i64 {
        let end = self.end();
        match isolation {
            Isolation::ReadUncommitted => end,
            Isolation::ReadCommitted => end.min(self.first_unstable.load(Ordering::Acquire)),
        }
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        // Wake group-commit waiters so they see it.
        let _g = self.syncing.lock();
        self.sync_done.notify_all();
    }

    fn poisoned_error(&self) -> LogError {
        LogError::Poisoned {
            topic: self.topic.to_string(),
            partition: self.id,
        }
    }

    fn publish(&self, end: i64) {
        self.end.fetch_max(end, Ordering::AcqRel);
        self.event.notify(usize::MAX);
        self.shared.any_append.notify(usize::MAX);
    }

    pub(crate) fn append(&self, records: &[NewRecord]) -> Result<AppendResult, LogError> {
        self.append_as(records, 0)
    }

    /// Appends records, as part of the open transaction of `producer` when
    /// it is not 0.
    pub(crate) fn append_as(
        &self,
        records: &[NewRecord],
        producer: u16,
    ) -> Result<AppendResult, LogError> {
        if records.is_empty() {
            return Err(LogError::EmptyBatch {
                topic: self.topic.to_string(),
                partition: self.id,
            });
        }
        if self.config.cleanup.compacts() && records.iter().any(|r| r.key.is_none()) {
            return Err(LogError::MissingKey {
                topic: self.topic.to_string(),
                partition: self.id,
            });
        }
        // Encode and checksum outside the lock.
        let body = batch::encode_new_for(records, producer);
        if body.len() > MAX_BATCH_BYTES {
            return Err(LogError::BatchTooLarge {
                topic: self.topic.to_string(),
                partition: self.id,
                bytes: body.len() as u64,
                max: MAX_BATCH_BYTES as u64,
            });
        }
        let count = records.len() as i64;
        let base = self.write(body, count, |w, base| {
            if producer != 0 {
                w.open_txns.entry(producer).or_insert(base);
                self.update_first_unstable(w);
            }
        })?;
        Ok(AppendResult {
            base_offset: base,
            last_offset: base + count - 1,
        })
    }

    /// Appends the commit or abort marker of `producer`'s transaction, whose
    /// data here starts at or after `first`, and closes it. Returns the
    /// marker's offset.
    pub(crate) fn append_marker(
        &self,
        producer: u16,
        first: i64,
        commit: bool,
    ) -> Result<i64, LogError> {
        let body = batch::encode_marker(producer, commit, self.shared.clock.now_ms());
        self.write(body, 1, |w, base| {
            if !commit {
                // Registered before the transaction stops holding readers back.
                self.aborted.write().push(AbortedRange {
                    producer,
                    first,
                    marker: base,
                });
            }
            w.open_txns.remove(&producer);
            self.update_first_unstable(w);
        })
    }

    fn update_first_unstable(&self, w: &Writer) {
        let first = w.open_txns.values().copied().min().unwrap_or(i64::MAX);
        self.first_unstable.store(first, Ordering::Release);
    }

    /// Writes one sealed batch of `count` offsets at the end of the log;
    /// `before_publish` runs under the writer lock with the batch's base
    /// offset, before readers can see the batch. Returns the base offset.
    fn write(
        &self,
        mut body: SealedBody,
        count: i64,
        before_publish: impl FnOnce(&mut Writer, i64),
    ) -> Result<i64, LogError> {
        let len = body.len() as u64;
        let policy = self.shared.fsync;

        let (base, new_end) = {
            let mut w = self.writer.lock();
            if self.poisoned.load(Ordering::SeqCst) {
                return Err(self.poisoned_error());
            }
            let active_size = w.active.size();
            if active_size > 0 {
                let now = self.shared.clock.now_ms();
                if active_size + len > self.config.segment_bytes || self.segment_expired(&w, now) {
                    self.roll(&mut w, now)?;
                }
            }
            let base = w.next_offset;
            let seg = Arc::clone(&w.active);
            let pos = seg.size();
            let frame = body.seal(base);
            if let Err(e) = seg.file.write_all_at(frame, pos) {
                // Undo a partial write so the next batch lands on a boundary.
                if seg.file.set_len(pos).is_err() {
                    self.poison();
                }
                return Err(LogError::io(&seg.log_path, e));
            }
            if self.shared.index.wants(pos, w.last_index_pos) {
                let entry = IndexEntry {
                    offset: base,
                    position: pos,
                    max_ts_before: seg.max_ts(),
                };
                let slot = seg.index.read().len() * ENTRY_LEN;
                if let Err(e) = w.index_file.write_all_at(&entry.encode(), slot as u64) {
                    // The index is a cache, rebuilt on open when it does not
                    // match; the in-memory copy stays right.
                    tracing::warn!(path = %seg.index_path.display(), error = %e, "index write failed");
                }
                seg.index.write().push(entry);
                w.last_index_pos = Some(pos);
            }
            seg.max_ts.fetch_max(body.max_ts, Ordering::AcqRel);
            seg.next_offset.store(base + count, Ordering::Release);
            seg.size.store(pos + len, Ordering::Release);
            w.next_offset = base + count;
            before_publish(&mut w, base);
            if policy != FsyncPolicy::Always {
                seg.committed.store(pos + len, Ordering::Release);
                self.publish(base + count);
            }
            (base, base + count)
        };
        self.records_appended
            .fetch_add(count as u64, Ordering::Relaxed);
        self.shared
            .records_appended
            .fetch_add(count as u64, Ordering::Relaxed);
        self.shared.bytes_appended.fetch_add(len, Ordering::Relaxed);
        if policy == FsyncPolicy::Always {
            self.sync_to(new_end)?;
        }
        Ok(base)
    }

    fn segment_expired(&self, w: &Writer, now: i64) -> bool {
        self.config
            .segment_time
            .is_some_and(|t| now.saturating_sub(w.created_ms) >= duration_ms(t))
    }

    /// Closes the active segment and opens a new one at the log end. Called
    /// with the writer lock held; never on an empty active segment.
    pub(crate) fn roll(&self, w: &mut Writer, now: i64) -> Result<(), LogError> {
        let old = Arc::clone(&w.active);
        let durable = self.shared.fsync != FsyncPolicy::Never;
        if durable {
            if let Err(e) = old.file.sync_data() {
                self.poison();
                return Err(LogError::io(&old.log_path, e));
            }
            if let Err(e) = w.index_file.sync_data() {
                tracing::warn!(path = %old.index_path.display(), error = %e, "index fsync failed");
            }
        }
        let (seg, index_file) = Segment::create(&self.dir, w.next_offset)?;
        if durable {
            if let Err(e) = sync_dir(&self.dir) {
                // Leave no orphan behind that would block the next roll.
                let _ = fs::remove_file(&seg.log_path);
                let _ = fs::remove_file(&seg.index_path);
                return Err(e);
            }
            // Everything written so far is durable now.
            old.committed.store(old.size(), Ordering::Release);
            self.durable_end.fetch_max(w.next_offset, Ordering::AcqRel);
            self.publish(w.next_offset);
        }
        let seg = Arc::new(seg);
        self.segments.write().push(Arc::clone(&seg));
        w.active = seg;
        w.index_file = index_file;
        w.last_index_pos = None;
        w.created_ms = now;
        Ok(())
    }

    /// Rolls the active segment if it is non-empty and `pred` holds for it.
    pub(crate) fn roll_if(
        &self,
        now: i64,
        pred: impl FnOnce(&Segment, bool) -> bool,
    ) -> Result<Option<i64>, LogError> {
        let mut w = self.writer.lock();
        if w.active.size() == 0 || self.poisoned.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let expired = self.segment_expired(&w, now);
        if pred(&w.active, expired) {
            self.roll(&mut w, now)?;
            return Ok(Some(w.next_offset));
        }
        Ok(None)
    }

    /// Group commit: returns once offsets below `target` are on stable
    /// storage. One caller fsyncs for everyone waiting; callers arriving
    /// during an fsync are covered by the next one.
    pub(crate) fn sync_to(&self, target: i64) -> Result<(), LogError> {
        let mut syncing = self.syncing.lock();
        loop {
            if self.durable_end.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            if self.poisoned.load(Ordering::SeqCst) {
                return Err(self.poisoned_error());
            }
            if *syncing {
                self.sync_done.wait(&mut syncing);
                continue;
            }
            *syncing = true;
            drop(syncing);
            let res = self.sync_now();
            syncing = self.syncing.lock();
            *syncing = false;
            self.sync_done.notify_all();
            res?;
        }
    }

    fn sync_now(&self) -> Result<(), LogError> {
        let (seg, size, end) = {
            let w = self.writer.lock();
            (Arc::clone(&w.active), w.active.size(), w.next_offset)
        };
        if let Err(e) = seg.file.sync_data() {
            self.poison();
            return Err(LogError::io(&seg.log_path, e));
        }
        seg.committed.fetch_max(size, Ordering::AcqRel);
        self.durable_end.fetch_max(end, Ordering::AcqRel);
        if self.shared.fsync == FsyncPolicy::Always {
            self.publish(end);
        }
        Ok(())
    }

    /// Makes everything written so far durable (used by the interval flusher
    /// and `Log::flush`).
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        let target = self.writer.lock().next_offset;
        if self.durable_end.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        self.sync_to(target)
    }

    /// Clean shutdown: data and index of the active segment to disk.
    pub(crate) fn sync_for_close(&self) -> Result<(), LogError> {
        self.flush()?;
        let w = self.writer.lock();
        w.index_file.sync_all().at(&w.active.index_path)
    }

    pub(crate) fn read(
        &self,
        from: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.fetch(from, max_records, max_bytes, Isolation::ReadUncommitted)
            .map(|f| f.records)
    }

    pub(crate) fn fetch(
        &self,
        from: i64,
        max_records: usize,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<Fetched, LogError> {
        let end = self.end();
        let limit = match isolation {
            Isolation::ReadUncommitted => end,
            Isolation::ReadCommitted => end.min(self.first_unstable.load(Ordering::Acquire)),
        };
        // Only the segments from the one holding `from` on.
        let (start, segs) = {
            let all = self.segments.read();
            let first = all.partition_point(|s| s.base <= from).saturating_sub(1);
            (all[0].base, all[first..].to_vec())
        };
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition: self.id,
                requested: from,
                start,
                end,
            });
        }
        let mut out = Vec::new();
        if from >= limit || max_records == 0 {
            return Ok(Fetched {
                records: out,
                next_offset: from,
            });
        }
        // Aborted transactions that may hide batches of this read (usually
        // none: then no batch is checked).
        let aborted: Vec<AbortedRange> = if isolation == Isolation::ReadCommitted {
            self.aborted
                .read()
                .iter()
                .filter(|a| a.marker >= from && a.first < limit)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        let full = |out: Vec<StoredRecord>| {
            let next_offset = out.last().map_or(from, |r| r.offset + 1);
            Ok(Fetched {
                records: out,
                next_offset,
            })
        };
        let mut bytes = 0usize;
        for seg in &segs {
            let seg_limit = seg.committed.load(Ordering::Acquire);
            let mut pos = seg.position_for(from);
            let mut reader = segment::FrameReader::new(&seg.file, &seg.log_path, seg_limit);
            let mut first = pos > 0;
            loop {
                let next = reader.frame_at(pos)?;
                if std::mem::take(&mut first) && seg.index_led_astray(&next, pos, from) {
                    pos = 0;
                    continue;
                }
                let (h, frame) = match next {
                    Next::End => break,
                    Next::Invalid(reason) => {
                        return damaged(out, from, &seg.log_path, pos, reason.to_owned());
                    }
                    Next::Frame(h, frame) => (h, frame),
                };
                if h.base_offset >= limit {
                    return full_or_limit(out, from, limit);
                }
                pos += u64::from(h.size);
                if h.last_offset() < from || h.is_control() {
                    continue;
                }
                if let Some(producer) = h.transactional()
                    && aborted.iter().any(|a| {
                        a.producer == producer
                            && a.first <= h.base_offset
                            && h.base_offset < a.marker
                    })
                {
                    continue;
                }
                let wanted = max_records - out.len();
                let records = match batch::decode_records_from(&h, &frame, from, wanted) {
                    Ok(records) => records,
                    Err(reason) => {
                        return damaged(out, from, &seg.log_path, pos - u64::from(h.size), reason);
                    }
                };
                for r in records {
                    if r.offset >= limit {
                        return full_or_limit(out, from, limit);
                    }
                    let size =
                        BatchBuilder::record_size(r.key.as_deref(), r.value.as_deref(), &r.headers);
                    if !out.is_empty() && bytes + size > max_bytes {
                        return full(out);
                    }
                    bytes += size;
                    out.push(r);
                    if out.len() >= max_records {
                        return full(out);
                    }
                }
            }
        }
        full_or_limit(out, from, limit)
    }

    /// Whether `producer` has a commit (`Some(true)`) or abort marker at or
    /// after `from`, with its offset (recovery: did a decided transaction's
    /// marker reach this partition?).
    pub(crate) fn find_marker(
        &self,
        producer: u16,
        from: i64,
    ) -> Result<Option<(i64, bool)>, LogError> {
        let segs = {
            let all = self.segments.read();
            let first = all.partition_point(|s| s.base <= from).saturating_sub(1);
            all[first..].to_vec()
        };
        for seg in &segs {
            let mut found = None;
            let mut pos = seg.position_for(from);
            let limit = seg.size();
            let mut reader = segment::FrameReader::new(&seg.file, &seg.log_path, limit);
            let mut first = pos > 0;
            loop {
                let next = reader.frame_at(pos)?;
                if std::mem::take(&mut first) && seg.index_led_astray(&next, pos, from) {
                    pos = 0;
                    continue;
                }
                let Next::Frame(h, frame) = next else {
                    break;
                };
                pos += u64::from(h.size);
                if h.base_offset >= from && h.is_control() && h.producer_id == producer {
                    let records = batch::decode_records(&h, &frame)
                        .map_err(|reason| LogError::corrupt(&seg.log_path, pos, reason))?;
                    let commit = records
                        .first()
                        .and_then(|r| r.key.as_deref())
                        .is_some_and(|k| k == batch::CONTROL_COMMIT);
                    found = Some((h.base_offset, commit));
                    break;
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Blocks until `end > offset` or the deadline passes; returns whether
    /// `end > offset`.
    pub(crate) fn wait_past(&self, offset: i64, deadline: Option<Instant>) -> bool {
        loop {
            if self.end() > offset {
                return true;
            }
            let listener = self.event.listen();
            if self.end() > offset {
                return true;
            }
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return self.end() > offset;
                    }
                }
            }
        }
    }

    /// Resolves once `end > offset`.
    pub(crate) async fn past(self: Arc<Self>, offset: i64) {
        loop {
            if self.end() > offset {
                return;
            }
            let listener = self.event.listen();
            if self.end() > offset {
                return;
            }
            listener.await;
        }
    }

    pub(crate) fn info(&self) -> PartitionInfo {
        let segs = self.segments.read();
        PartitionInfo {
            partition: self.id,
            start_offset: segs[0].base,
            end_offset: self.end(),
            size_bytes: segs.iter().map(|s| s.size()).sum(),
            segments: segs.len(),
            records_appended: self.records_appended.load(Ordering::Relaxed),
        }
    }
}

/// Damage is reported, never returned: records read before it are returned
/// first (so a consumer gets as far as it can), the next read fails.
fn damaged(
    out: Vec<StoredRecord>,
    from: i64,
    path: &Path,
    pos: u64,
    reason: String,
) -> Result<Fetched, LogError> {
    match out.last() {
        None => Err(LogError::corrupt(path, pos, reason)),
        Some(last) => {
            let next_offset = last.offset + 1;
            debug_assert!(next_offset > from);
            Ok(Fetched {
                records: out,
                next_offset,
            })
        }
    }
}

/// The answer of a read that looked at everything below `limit`: the next
/// read starts there.
fn full_or_limit(out: Vec<StoredRecord>, from: i64, limit: i64) -> Result<Fetched, LogError> {
    Ok(Fetched {
        records: out,
        next_offset: limit.max(from),
    })
}

/// Lists `<base>.log` files, removing orphaned index files and leftovers of
/// compactions that never reached their commit point.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log")
            && let Some(base) = segment::parse_offset(stem)
        {
            logs.push(base);
        } else if let Some(stem) = name.strip_suffix(".index")
            && let Some(base) = segment::parse_offset(stem)
        {
            indexes.push(base);
        } else if name.ends_with(".cleaned") {
            let path = entry.path();
            fs::remove_file(&path).at(&path)?;
        }
    }
    logs.sort_unstable();
    for base in indexes {
        if logs.binary_search(&base).is_err() {
            let path = dir.join(segment::index_name(base));
            fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(logs)
}

/// Completes compactions that passed their commit point (the `.swap` rename)
/// before a crash: the swap file replaces every segment in its range.
fn finish_interrupted_compactions(dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".swap")
            && let Some((b, e)) = stem.split_once('-')
            && let (Some(b), Some(e)) = (segment::parse_offset(b), segment::parse_offset(e))
        {
            swaps.push((b, e));
        }
    }
    for (base, end) in swaps {
        tracing::info!(dir = %dir.display(), base, end, "completing an interrupted compaction");
        replace_with_swap(dir, base, end)?;
    }
    Ok(())
}

/// Removes segments with a base in `[base, end)` and renames the swap file to
/// `<base>.log`. Idempotent, so it is both the last step of compaction and
/// its recovery.
pub(crate) fn replace_with_swap(dir: &Path, base: i64, end: i64) -> Result<(), LogError> {
    let mut doomed = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name
            .strip_suffix(".log")
            .or_else(|| name.strip_suffix(".index"));
        if let Some(b) = stem.and_then(segment::parse_offset)
            && (base..end).contains(&b)
        {
            doomed.push((b, entry.path()));
        }
    }
    // The old `<base>.log` is replaced by the rename itself; everything else
    // (including `<base>.index`, which describes the old file) goes first.
    let keep = dir.join(segment::log_name(base));
    for (_, path) in &doomed {
        if *path != keep {
            fs::remove_file(path).at(path)?;
        }
    }
    sync_dir(dir)?;
    let swap = dir.join(segment::swap_name(base, end));
    fs::rename(&swap, &keep).at(&swap)?;
    sync_dir(dir)
}

/// fsync of a directory, making creations, renames and deletions in it
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
