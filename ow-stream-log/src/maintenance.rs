//! Segment roll by age, retention (delete whole old segments) and compaction
//! (keep the latest record per key), per partition.
//!
//! All of it works on *closed* segments only: the active segment, where the
//! writer appends, is never read, rewritten or deleted here. (Retention that
//! finds even the active segment expired first rolls it, as Kafka does.)
//! A partition's maintenance is serialised by `Partition::maint`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, BatchBuilder, BatchHeader, NO_HORIZON};
use crate::config::duration_ms;
use crate::error::{IoContext, LogError};
use crate::index::IndexEntry;
use crate::info::{DeleteReason, MaintenanceAction};
use crate::partition::{
    AbortedRange, Isolation, MaintState, Partition, replace_with_swap, sync_dir,
};
use crate::record::StoredRecord;
use crate::segment::{self, Segment};

impl Partition {
    /// One maintenance pass at time `now`.
    pub(crate) fn maintain(
        &self,
        now: i64,
        out: &mut Vec<MaintenanceAction>,
    ) -> Result<(), LogError> {
        let mut st = self.maint.lock();
        if let Some(base) = self.roll_if(now, |_, expired| expired)? {
            out.push(self.rolled(base));
        }
        if self.config.cleanup.deletes() {
            if let Some(retention) = self.config.retention {
                self.retain_time(now, now.saturating_sub(duration_ms(retention)), out)?;
            }
            if let Some(limit) = self.config.retention_bytes {
                self.retain_size(limit, out)?;
            }
        }
        if self.config.cleanup.compacts() {
            self.compact(now, &mut st, out)?;
        }
        Ok(())
    }

    fn rolled(&self, new_base_offset: i64) -> MaintenanceAction {
        MaintenanceAction::Rolled {
            topic: self.topic.to_string(),
            partition: self.id,
            new_base_offset,
        }
    }

    fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments.read().clone()
    }

    /// Deletes the oldest closed segments whose newest record is older than
    /// `cutoff`.
    fn retain_time(
        &self,
        now: i64,
        cutoff: i64,
        out: &mut Vec<MaintenanceAction>,
    ) -> Result<(), LogError> {
        let segs = self.snapshot();
        let closed = &segs[..segs.len() - 1];
        let mut n = closed.iter().take_while(|s| s.max_ts() < cutoff).count();
        if n == closed.len()
            && let Some(base) = self.roll_if(now, |active, _| active.max_ts() < cutoff)?
        {
            out.push(self.rolled(base));
            n += 1;
        }
        self.delete_prefix(n, DeleteReason::RetentionTime, out)
    }

    /// Deletes the oldest closed segments while the partition stays at least
    /// `limit` bytes without them (Kafka's rule).
    fn retain_size(&self, limit: u64, out: &mut Vec<MaintenanceAction>) -> Result<(), LogError> {
        let segs = self.snapshot();
        let mut total: u64 = segs.iter().map(|s| s.size()).sum();
        let mut n = 0;
        for s in &segs[..segs.len() - 1] {
            if total - s.size() >= limit {
                total -= s.size();
                n += 1;
            } else {
                break;
            }
        }
        self.delete_prefix(n, DeleteReason::RetentionBytes, out)
    }

    /// Deletes closed segments all of whose offsets are below `before`;
    /// returns the new start offset.
    pub(crate) fn delete_records(
        &self,
        before: i64,
        out: &mut Vec<MaintenanceAction>,
    ) -> Result<i64, LogError> {
        let _st = self.maint.lock();
        let segs = self.snapshot();
        let n = segs.windows(2).take_while(|w| w[1].base <= before).count();
        self.delete_prefix(n, DeleteReason::DeleteRecords, out)?;
        Ok(self.start())
    }

    /// Removes the first `n` segments (never the active one), oldest first so
    /// a crash in between leaves a log that merely starts later.
    fn delete_prefix(
        &self,
        n: usize,
        reason: DeleteReason,
        out: &mut Vec<MaintenanceAction>,
    ) -> Result<(), LogError> {
        if n == 0 {
            return Ok(());
        }
        let removed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write();
            let n = n.min(segs.len() - 1);
            segs.drain(..n).collect()
        };
        for seg in removed {
            fs::remove_file(&seg.log_path).at(&seg.log_path)?;
            if let Err(e) = fs::remove_file(&seg.index_path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(LogError::io(&seg.index_path, e));
            }
            tracing::debug!(topic = %self.topic, partition = self.id, base = seg.base, ?reason, "deleted segment");
            out.push(MaintenanceAction::Deleted {
                topic: self.topic.to_string(),
                partition: self.id,
                base_offset: seg.base,
                bytes: seg.size(),
                reason,
            });
        }
        Ok(())
    }

    /// Compacts the closed segments if enough of them is new (or a kept
    /// tombstone expired).
    fn compact(
        &self,
        now: i64,
        st: &mut MaintState,
        out: &mut Vec<MaintenanceAction>,
    ) -> Result<(), LogError> {
        let all = self.snapshot();
        // Only segments wholly below the last stable offset: what an open
        // transaction wrote may still be aborted, so it cannot decide which
        // record of a key is the latest. The first segment that is not
        // stable bounds the run as the active segment otherwise does.
        let stable_end = self.visible_end(Isolation::ReadCommitted);
        let stable = all[..all.len() - 1]
            .iter()
            .take_while(|s| s.next_offset() <= stable_end)
            .count();
        let segs = &all[..=stable];
        if segs.len() < 2 {
            return Ok(());
        }
        let aborted = self.aborted.read().clone();
        let active_base = segs[segs.len() - 1].base;
        let closed = &segs[..segs.len() - 1];
        let total: u64 = closed.iter().map(|s| s.size()).sum();
        let dirty: u64 = closed
            .iter()
            .filter(|s| s.base >= st.clean_end)
            .map(|s| s.size())
            .sum();
        let tombstones_due = st.tombstone_deadline.is_some_and(|d| now >= d);
        let dirty_enough =
            dirty > 0 && dirty as f64 >= self.config.min_cleanable_ratio * total as f64;
        if !dirty_enough && !tombstones_due {
            return Ok(());
        }

        // 1. The offset of the latest record of every key in the closed part.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for seg in closed {
            seg.for_each_batch(|h, frame| {
                if hidden(h, &aborted) {
                    return Ok(());
                }
                let records = batch::decode_records(h, frame)
                    .map_err(|reason| LogError::corrupt(&seg.log_path, 0, reason))?;
                for r in records {
                    if let Some(k) = r.key {
                        match latest.get_mut(&k[..]) {
                            Some(o) => *o = r.offset,
                            None => {
                                latest.insert(Bytes::copy_from_slice(&k), r.offset);
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }

        // 2. Rewrite runs of consecutive segments into one output segment
        //    each, so the number of files shrinks along with the data.
        let mut deadline = None;
        let mut i = 0;
        while i < closed.len() {
            let (next, action) = self.rewrite(segs, i, &latest, &aborted, now, &mut deadline)?;
            out.extend(action);
            i = next;
        }
        st.clean_end = active_base;
        st.tombstone_deadline = deadline;
        Ok(())
    }

    /// Rewrites closed segments from `segs[first]` on into one segment named
    /// after the first, taking further inputs while the output plus the next
    /// input is sure to fit in `segment_bytes` (an input never grows).
    /// Returns the index of the first segment not consumed.
    ///
    /// Crash safety: the output is written to `<base>.cleaned` and fsynced;
    /// renaming it to `<base>-<end>.swap` is the commit point (a crash before
    /// leaves the old segments and a `.cleaned` file that open deletes); after
    /// it, the inputs are deleted and the swap renamed to `<base>.log`, which
    /// open also completes if interrupted.
    fn rewrite(
        &self,
        segs: &[Arc<Segment>],
        first: usize,
        latest: &HashMap<Bytes, i64>,
        aborted: &[AbortedRange],
        now: i64,
        deadline: &mut Option<i64>,
    ) -> Result<(usize, Option<MaintenanceAction>), LogError> {
        let closed = &segs[..segs.len() - 1];
        let base = closed[first].base;
        let cleaned_path = self.dir.join(segment::cleaned_name(base));
        let file = File::create(&cleaned_path).at(&cleaned_path)?;
        // Removes the unfinished output if we bail out before the commit
        // point (open would remove it too).
        let mut cleanup = RemoveOnDrop(Some(&cleaned_path));
        let mut out = SegmentWriter {
            w: BufWriter::with_capacity(1 << 20, file),
            path: &cleaned_path,
            policy: self.shared.index,
            pos: 0,
            index: Vec::new(),
            last_index_pos: None,
            max_ts: i64::MIN,
            next_offset: base,
        };
        let new_horizon = now.saturating_add(duration_ms(self.config.delete_retention));
        let mut changed = false;
        let mut removed = 0u64;

        let mut next = first;
        while next < closed.len()
            && (next == first || out.pos + closed[next].size() <= self.config.segment_bytes)
        {
            let seg = &closed[next];
            next += 1;
            seg.for_each_batch(|h, frame| {
                if hidden(h, aborted) {
                    // Transaction markers and aborted data: nobody reading
                    // committed data sees them, and below the last stable
                    // offset recovery no longer needs them.
                    removed += u64::from(h.record_count);
                    changed = true;
                    return Ok(());
                }
                let records = batch::decode_records(h, frame)
                    .map_err(|reason| LogError::corrupt(&seg.log_path, 0, reason))?;
                let tombstones_expired = h.delete_horizon != NO_HORIZON && now >= h.delete_horizon;
                let keep: Vec<&StoredRecord> = records
                    .iter()
                    .filter(|r| match &r.key {
                        // Cannot be appended to compacted topics; kept if
                        // present (e.g. written before a policy change).
                        None => true,
                        Some(k) => {
                            latest.get(&k[..]) == Some(&r.offset)
                                && !(r.value.is_none() && tombstones_expired)
                        }
                    })
                    .collect();
                removed += (records.len() - keep.len()) as u64;
                if keep.is_empty() {
                    changed = true;
                    return Ok(());
                }
                let has_tombstone = keep.iter().any(|r| r.value.is_none());
                let horizon = if has_tombstone && h.delete_horizon == NO_HORIZON {
                    new_horizon
                } else {
                    h.delete_horizon
                };
                if has_tombstone {
                    *deadline = Some(deadline.map_or(horizon, |d: i64| d.min(horizon)));
                }
                if keep.len() == records.len() && horizon == h.delete_horizon {
                    return out.push(frame, h);
                }
                changed = true;
                let mut b = BatchBuilder::with_capacity(frame.len());
                b.set_producer(h.attributes, h.producer_id);
                for r in &keep {
                    b.push(
                        (r.offset - h.base_offset) as u32,
                        r.timestamp,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &r.headers,
                    );
                }
                // The batch keeps its offset span and max timestamp (as in
                // Kafka), so offsets and time retention are unaffected.
                let mut sealed = b.finish(h.last_offset_delta, h.max_timestamp, horizon);
                out.push(sealed.seal(h.base_offset), h)
            })?;
        }
        let group = &closed[first..next];
        changed |= group.len() > 1;
        let bytes_before: u64 = group.iter().map(|s| s.size()).sum();
        // The segment after the run (maybe the active one) bounds it.
        let end_offset = segs[next].base;

        let SegmentWriter {
            w,
            pos,
            index,
            max_ts,
            next_offset,
            ..
        } = out;
        if !changed {
            drop(w);
            cleanup.0 = None;
            fs::remove_file(&cleaned_path).at(&cleaned_path)?;
            return Ok((next, None));
        }
        let file = w
            .into_inner()
            .map_err(|e| LogError::io(&cleaned_path, e.into_error()))?;
        file.sync_all().at(&cleaned_path)?;
        drop(file);

        // Commit point.
        let swap_path = self.dir.join(segment::swap_name(base, end_offset));
        fs::rename(&cleaned_path, &swap_path).at(&swap_path)?;
        cleanup.0 = None;
        sync_dir(&self.dir)?;
        replace_with_swap(&self.dir, base, end_offset)?;
        let index_path = self.dir.join(segment::index_name(base));
        segment::write_index(&index_path, &index)?;

        let seg = Arc::new(Segment::from_parts(
            &self.dir,
            base,
            index,
            pos,
            next_offset,
            max_ts,
        )?);
        {
            let mut segs = self.segments.write();
            let at = segs.partition_point(|s| s.base < base);
            let matches = segs.len() > at + group.len()
                && segs[at..at + group.len()]
                    .iter()
                    .zip(group)
                    .all(|(a, b)| Arc::ptr_eq(a, b));
            if !matches {
                // Only maintenance removes segments and it is serialised, so
                // this cannot happen; refuse to guess if it does.
                return Err(LogError::corrupt(
                    &seg.log_path,
                    0,
                    "segment list changed during compaction",
                ));
            }
            segs.splice(at..at + group.len(), std::iter::once(seg));
        }
        tracing::debug!(
            topic = %self.topic, partition = self.id, base, segments = group.len(),
            bytes_before, bytes_after = pos, removed, "compacted"
        );
        Ok((
            next,
            Some(MaintenanceAction::Compacted {
                topic: self.topic.to_string(),
                partition: self.id,
                base_offset: base,
                segments: group.len(),
                bytes_before,
                bytes_after: pos,
                records_removed: removed,
            }),
        ))
    }
}

/// Whether compaction drops a whole batch: a transaction marker, or data of
/// an aborted transaction.
fn hidden(h: &BatchHeader, aborted: &[AbortedRange]) -> bool {
    h.is_control()
        || h.transactional().is_some_and(|producer| {
            aborted.iter().any(|a| {
                a.producer == producer && a.first <= h.base_offset && h.base_offset < a.marker
            })
        })
}

/// Deletes a file when dropped, unless disarmed by taking the path.
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes batches into a new segment file, building its index.
struct SegmentWriter<'a> {
    w: BufWriter<File>,
    path: &'a Path,
    policy: segment::IndexPolicy,
    pos: u64,
    index: Vec<IndexEntry>,
    last_index_pos: Option<u64>,
    max_ts: i64,
    next_offset: i64,
}

impl SegmentWriter<'_> {
    fn push(&mut self, bytes: &[u8], h: &BatchHeader) -> Result<(), LogError> {
        if self.policy.wants(self.pos, self.last_index_pos) {
            self.index.push(IndexEntry {
                offset: h.base_offset,
                position: self.pos,
                max_ts_before: self.max_ts,
            });
            self.last_index_pos = Some(self.pos);
        }
        self.w.write_all(bytes).at(self.path)?;
        self.pos += bytes.len() as u64;
        self.max_ts = self.max_ts.max(h.max_timestamp);
        self.next_offset = h.next_offset();
        Ok(())
    }
}
