//! Restore: bringing a task's stores up to date from their changelogs after a restart or a
//! move, discarding what commits that never finished wrote (see [`crate::state`] for the
//! commit protocol this relies on).

use std::collections::BTreeSet;
use std::sync::Arc;

use redb::TableDefinition;

use super::{NO_HEADERS, SlotData, StateManager};
use crate::error::{Error, StoreError};
use crate::record::RawRecord;
use crate::runtime::collector::{OutRecord, RecordCollector};
use crate::state::changelog::{Checkpoint, is_marker};

/// A changelog partition to read during restore: the records of `[from, to)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChangelogRange<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) from: i64,
    pub(crate) to: i64,
}

/// Reads changelog partitions during restore (a Kafka consumer with manual assignment, the
/// local log, or the test driver's topics).
pub(crate) trait ChangelogReader {
    /// `(start, end)` offsets of a partition (end = the next offset to be written).
    fn watermarks(&mut self, topic: &str, partition: i32) -> Result<(i64, i64), Error>;
    /// Calls `f` for every record of `[from, to)` in order.
    fn read(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(&RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error>;

    /// Calls `f(i, record)` for every record of every range `ranges[i]`: in order within a
    /// range, ranges possibly interleaved. The default reads one range after the other;
    /// readers that pay a latency per partition read them all at once.
    fn read_many(
        &mut self,
        ranges: &[ChangelogRange<'_>],
        f: &mut dyn FnMut(usize, &RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for (i, r) in ranges.iter().enumerate() {
            self.read(r.topic, r.partition, r.from, r.to, &mut |rec| f(i, rec))?;
        }
        Ok(())
    }
}

impl StateManager {
    /// Brings every shard up to date from its changelog, discards changes of commits that
    /// never finished, and writes compensation records for them. Returns whether it wrote any
    /// (the caller must then commit before processing).
    ///
    /// The commit restored is the lowest latest marker over the task's changelogs, a shard
    /// that never reached a commit counting as commit 0 ([`SlotRestore::latest_seq`]). This
    /// assumes each changelog is at most one marker past that commit, which holds after one
    /// unfinished commit. Known gap: were a process killed again inside the compensation
    /// commit, after its marker reached some changelogs only, a changelog holding both the
    /// first unfinished marker and the compensation's would be two markers ahead; the scan
    /// applies every group followed by a marker as it reads, so that shard would keep the
    /// unfinished commit's writes (and its checkpoint could be the one restored). Closing it
    /// means choosing the commit before applying (the newest marker present in every
    /// changelog, with fresh sequence numbers for compensation commits).
    pub(crate) fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
        out: &mut dyn RecordCollector,
    ) -> Result<bool, Error> {
        let base = if self.seq > 0 {
            Some(self.checkpoint())
        } else {
            None
        };
        let results = self.restore_slots(reader, base.clone())?;
        // The commit every shard finished: the lowest latest marker. A logged shard that has
        // never seen a commit (no checkpoint, no marker in its changelog) counts as commit 0,
        // "nothing committed": see [`SlotRestore::latest_seq`].
        let target = results.iter().filter_map(|r| r.latest_seq()).min();
        let mut final_cp: Option<Checkpoint> = base;
        let mut compensate: Vec<(usize, BTreeSet<Vec<u8>>)> = Vec::new();
        for (index, r) in results.into_iter().enumerate() {
            let mut discard: BTreeSet<Vec<u8>> = r.tail.into_iter().map(|(k, _)| k).collect();
            match r.last {
                Some((cp, data, pos)) if Some(cp.seq) == target => {
                    self.apply_all(index, data)?;
                    self.slots[index].position = pos;
                    if final_cp.as_ref().is_none_or(|f| f.seq <= cp.seq) {
                        final_cp = Some(cp);
                    }
                }
                Some((cp, data, _)) => {
                    tracing::info!(
                        task = %self.task, store = %self.slots[index].def.name, seq = cp.seq,
                        "discarding a commit that did not reach every changelog"
                    );
                    discard.extend(data.into_iter().map(|(k, _)| k));
                    self.slots[index].position = r.prev_pos;
                    if let Some(prev) = r.prev
                        && final_cp.as_ref().is_none_or(|f| f.seq < prev.seq)
                    {
                        final_cp = Some(prev);
                    }
                }
                None => {
                    self.slots[index].position = r.prev_pos;
                    if let Some(prev) = r.prev
                        && final_cp.as_ref().is_none_or(|f| f.seq < prev.seq)
                    {
                        final_cp = Some(prev);
                    }
                }
            }
            if !discard.is_empty() {
                compensate.push((index, discard));
            }
        }
        if let Some(cp) = &final_cp {
            self.apply_checkpoint(cp);
        }
        // Undo the unfinished tails in the changelogs: write back what the restored state says.
        let mut wrote = false;
        for (index, keys) in compensate {
            for key in keys {
                let value = self.get(index, &key)?;
                let Some(changelog) = self.slots[index].changelog.clone() else {
                    continue;
                };
                out.send(OutRecord {
                    topic: &changelog,
                    partition: Some(self.task.partition),
                    key: Some(&key),
                    value: value.as_deref(),
                    timestamp: 0,
                    headers: &NO_HEADERS,
                })?;
                wrote = true;
            }
        }
        self.persist(true)?;
        self.dirty = wrote;
        Ok(wrote)
    }

    fn apply_all(
        &mut self,
        index: usize,
        data: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), Error> {
        match &mut self.slots[index].data {
            SlotData::Memory(map) => {
                let mut map = map.write();
                for (k, v) in data {
                    match v {
                        Some(v) => {
                            map.insert(k, v);
                        }
                        None => {
                            map.remove(&k);
                        }
                    }
                }
            }
            SlotData::Redb { cache, .. } => {
                let mut cache = cache.write();
                for (k, v) in data {
                    cache.insert(k, v);
                }
            }
        }
        if let SlotData::Redb { cache, .. } = &self.slots[index].data
            && cache.read().len() >= RESTORE_CHUNK
        {
            self.persist(false)?;
        }
        Ok(())
    }

    /// Reads every shard's changelog from its position to its end, all partitions at once,
    /// applying confirmed groups of changes as they come.
    fn restore_slots(
        &mut self,
        reader: &mut dyn ChangelogReader,
        base: Option<Checkpoint>,
    ) -> Result<Vec<SlotRestore>, Error> {
        let mut results = Vec::with_capacity(self.slots.len());
        // (slot index, changelog, from, end) of the shards that have something to read.
        let mut reads: Vec<(usize, Arc<str>, i64, i64)> = Vec::new();
        for index in 0..self.slots.len() {
            let (r, read) = self.plan_slot(index, reader, base.clone())?;
            results.push(r);
            if let Some((changelog, from, end)) = read {
                reads.push((index, changelog, from, end));
            }
        }
        if reads.is_empty() {
            return Ok(results);
        }
        let partition = self.task.partition;
        let ranges: Vec<ChangelogRange<'_>> = reads
            .iter()
            .map(|(_, changelog, from, end)| ChangelogRange {
                topic: changelog,
                partition,
                from: *from,
                to: *end,
            })
            .collect();
        let mut scans: Vec<Scan> = reads
            .iter()
            .map(|(index, _, _, _)| Scan {
                r: std::mem::replace(&mut results[*index], SlotRestore::empty()),
                pending: Vec::new(),
                to_apply: Vec::new(),
            })
            .collect();
        reader.read_many(&ranges, &mut |i, rec| {
            let (index, changelog, _, _) = &reads[i];
            let scan = &mut scans[i];
            scan.push(rec, changelog, partition)?;
            // Apply (and persist) confirmed groups as we go, not all at the end.
            if scan.to_apply.len() >= RESTORE_CHUNK {
                let data = std::mem::take(&mut scan.to_apply);
                self.apply_all(*index, data)?;
            }
            Ok(())
        })?;
        for ((index, changelog, from, end), scan) in reads.iter().zip(scans) {
            let Scan {
                mut r,
                pending,
                to_apply,
            } = scan;
            if !to_apply.is_empty() {
                self.apply_all(*index, to_apply)?;
            }
            r.tail = pending;
            tracing::debug!(task = %self.task, changelog = %changelog, from, end, "restored");
            results[*index] = r;
        }
        Ok(results)
    }

    /// Where restoring shard `index` starts: its restore state, and the changelog range to
    /// read (`None` when it is up to date or has no changelog).
    #[allow(clippy::type_complexity)]
    fn plan_slot(
        &mut self,
        index: usize,
        reader: &mut dyn ChangelogReader,
        base: Option<Checkpoint>,
    ) -> Result<(SlotRestore, Option<(Arc<str>, i64, i64)>), Error> {
        let mut r = SlotRestore {
            prev: base,
            prev_pos: self.slots[index].position,
            last: None,
            tail: Vec::new(),
            fresh: false,
        };
        let Some(changelog) = self.slots[index].changelog.clone() else {
            return Ok((r, None));
        };
        let partition = self.task.partition;
        let (low, end) = reader.watermarks(&changelog, partition)?;
        let mut from = self.slots[index].position;
        if from > end {
            tracing::warn!(
                task = %self.task, changelog = %changelog, local = from, end,
                "local state is ahead of its changelog (was the topic recreated?): rebuilding it"
            );
            self.wipe(index)?;
            r.prev = None;
            from = low;
        }
        if from < low {
            if from > 0 || low > 0 {
                tracing::warn!(
                    task = %self.task, changelog = %changelog, wanted = from, start = low,
                    "changelog starts later than the local state: older changes were removed by retention"
                );
            }
            from = low;
        }
        r.prev_pos = r.prev_pos.max(from);
        // No checkpoint and no changelog position: the shard reflects no commit (it never
        // committed, is in memory, or was just wiped), whatever it reads next.
        r.fresh = r.prev.is_none() && self.slots[index].position == 0;
        if from >= end {
            return Ok((r, None));
        }
        Ok((r, Some((changelog, from, end))))
    }

    fn wipe(&mut self, index: usize) -> Result<(), Error> {
        match &mut self.slots[index].data {
            SlotData::Memory(map) => map.write().clear(),
            SlotData::Redb { table, cache } => {
                cache.write().clear();
                let table = table.clone();
                if let Some(db) = &self.db {
                    let txn = db.db.begin_write().map_err(|e| self.task_err(e))?;
                    {
                        let mut t = txn
                            .open_table(TableDefinition::<&[u8], &[u8]>::new(&table))
                            .map_err(|e| self.task_err(e))?;
                        t.retain(|_, _| false).map_err(|e| self.task_err(e))?;
                    }
                    txn.commit().map_err(|e| self.task_err(e))?;
                }
                self.refresh_read()?;
            }
        }
        self.slots[index].position = 0;
        Ok(())
    }
}

/// Changelog records applied per chunk during restore.
const RESTORE_CHUNK: usize = 10_000;

/// The state of a changelog scan during restore.
struct Scan {
    r: SlotRestore,
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    to_apply: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Scan {
    fn push(&mut self, rec: &RawRecord, changelog: &Arc<str>, partition: i32) -> Result<(), Error> {
        let corrupt = |reason: String| {
            Error::store(
                changelog.clone(),
                StoreError::CorruptChangelog {
                    topic: changelog.to_string(),
                    partition,
                    offset: rec.offset,
                    reason,
                },
            )
        };
        if is_marker(&rec.headers) {
            let cp =
                Checkpoint::decode(rec.value.as_deref().unwrap_or_default()).map_err(corrupt)?;
            if let Some((prev_cp, data, pos)) = self.r.last.take() {
                self.to_apply.extend(data);
                self.r.prev = Some(prev_cp);
                self.r.prev_pos = pos;
            }
            self.r.last = Some((cp, std::mem::take(&mut self.pending), rec.offset + 1));
        } else {
            let Some(key) = &rec.key else {
                return Err(corrupt("record without a key".into()));
            };
            self.pending
                .push((key.to_vec(), rec.value.as_ref().map(|v| v.to_vec())));
        }
        Ok(())
    }
}

struct SlotRestore {
    /// The checkpoint the applied state reflects.
    prev: Option<Checkpoint>,
    prev_pos: i64,
    /// The last marker with the changes since the marker before it (not applied yet).
    #[allow(clippy::type_complexity)]
    last: Option<(Checkpoint, Vec<(Vec<u8>, Option<Vec<u8>>)>, i64)>,
    /// Changes after the last marker.
    tail: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The shard has a changelog and reflected no commit before the range it read (no
    /// checkpoint, position 0): without a marker in that range, it is at commit 0.
    fresh: bool,
}

impl SlotRestore {
    /// A placeholder while a scan owns the real one.
    fn empty() -> Self {
        SlotRestore {
            prev: None,
            prev_pos: 0,
            last: None,
            tail: Vec::new(),
            fresh: false,
        }
    }

    /// The latest commit this shard's changelog (or checkpoint) says it reached; `None` when
    /// it cannot tell (no changelog, or a shard with a local state but no checkpoint that
    /// speaks for it), and then it does not take part in choosing the commit to restore.
    ///
    /// A logged shard that reached no commit at all is at commit `0`, not "unknown": a kill
    /// in the middle of a task's *first* commit leaves the markers of that commit in some
    /// changelogs only (at-least-once appends them one changelog after the other). Were the
    /// shards without a marker left out, the lowest latest marker would be that first commit,
    /// restore would apply it where its marker got written and adopt its input offsets, and
    /// the other shards would lose the commit's writes (discarded as an unfinished tail) while
    /// its inputs are never read again. With `newer-snapshots`-style de-duplication in such a
    /// shard, the next input's outputs are then never written: lost under at-least-once.
    fn latest_seq(&self) -> Option<u64> {
        self.last
            .as_ref()
            .map(|(cp, _, _)| cp.seq)
            .or(self.prev.as_ref().map(|p| p.seq))
            .or(self.fresh.then_some(0))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;
    use crate::config::StoreBackend;
    use crate::record::Headers;
    use crate::runtime::collector::Delivery;
    use crate::runtime::context::TaskId;
    use crate::state::cache::CacheBudget;
    use crate::state::changelog::{marker_headers, marker_key};
    use crate::state::{StoreDef, StoreKind};

    /// Changelog partitions in memory (`topic` → records, offsets from 0).
    #[derive(Default)]
    struct Changelogs(BTreeMap<String, Vec<RawRecord>>);

    impl Changelogs {
        fn put(&mut self, topic: &str, key: &[u8], value: &[u8]) {
            self.push(topic, key, value, Headers::new());
        }

        fn marker(&mut self, topic: &str, cp: &Checkpoint) {
            self.push(topic, marker_key(cp.seq), &cp.encode(), marker_headers());
        }

        fn push(&mut self, topic: &str, key: &[u8], value: &[u8], headers: Headers) {
            let records = self.0.entry(topic.to_owned()).or_default();
            records.push(RawRecord {
                topic: topic.into(),
                partition: 0,
                offset: records.len() as i64,
                timestamp: 0,
                key: Some(Bytes::copy_from_slice(key)),
                value: Some(Bytes::copy_from_slice(value)),
                headers,
            });
        }
    }

    impl ChangelogReader for Changelogs {
        fn watermarks(&mut self, topic: &str, _: i32) -> Result<(i64, i64), Error> {
            Ok((0, self.0.get(topic).map_or(0, |r| r.len() as i64)))
        }

        fn read(
            &mut self,
            topic: &str,
            _: i32,
            from: i64,
            to: i64,
            f: &mut dyn FnMut(&RawRecord) -> Result<(), Error>,
        ) -> Result<(), Error> {
            for r in self.0.get(topic).into_iter().flatten() {
                if (from..to).contains(&r.offset) {
                    f(r)?;
                }
            }
            Ok(())
        }
    }

    /// Keeps what restore writes (its compensation records).
    #[derive(Default)]
    struct Sent(Vec<(String, Vec<u8>, Option<Vec<u8>>)>);

    impl RecordCollector for Sent {
        fn send(&mut self, r: OutRecord<'_>) -> Result<(), Error> {
            self.0.push((
                r.topic.to_owned(),
                r.key.unwrap_or_default().to_vec(),
                r.value.map(<[u8]>::to_vec),
            ));
            Ok(())
        }

        fn send_tracked(&mut self, r: OutRecord<'_>) -> Result<Delivery, Error> {
            self.send(r)?;
            Ok(Delivery::default())
        }

        fn partition_count(&mut self, _: &str) -> Result<i32, Error> {
            Ok(1)
        }
    }

    fn def(name: &str) -> (Arc<StoreDef>, Option<Arc<str>>) {
        let def = StoreDef {
            name: name.into(),
            kind: StoreKind::KeyValue,
            backend: Some(StoreBackend::InMemory),
            logging: true,
            caching: false,
            serdes: Arc::new(()),
            key_describe: String::new(),
            value_describe: String::new(),
        };
        (Arc::new(def), Some(format!("{name}-changelog").into()))
    }

    fn manager(dir: &std::path::Path) -> StateManager {
        let task = TaskId {
            subtopology: 0,
            partition: 0,
        };
        let defs = [def("a"), def("b")];
        StateManager::open(
            task,
            &defs,
            dir,
            StoreBackend::InMemory,
            CacheBudget::new(0),
        )
        .unwrap()
    }

    /// A kill in the middle of a task's first commit, at-least-once: the marker reached the
    /// changelog of store `a` only. Restore must go back to "nothing committed" (and read the
    /// input again), not adopt the commit's offsets while dropping `b`'s writes.
    #[test]
    fn first_commit_marked_in_some_changelogs_only_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let first = Checkpoint {
            seq: 1,
            offsets: vec![("in".into(), 0, 1)],
            dedup: Vec::new(),
            stream_time: 5,
        };
        let mut logs = Changelogs::default();
        logs.put("a-changelog", b"k", b"from input 0");
        logs.marker("a-changelog", &first);
        logs.put("b-changelog", b"k", b"from input 0");

        let mut state = manager(dir.path());
        let mut sent = Sent::default();
        assert!(state.restore(&mut logs, &mut sent).unwrap());
        assert!(
            state.offsets().is_empty(),
            "input 0 must be read again: {:?}",
            state.offsets()
        );
        assert_eq!(state.get(0, b"k").unwrap(), None);
        assert_eq!(state.get(1, b"k").unwrap(), None);
        // Both changelogs get a tombstone for the undone write.
        let mut undone: Vec<_> = sent.0.iter().map(|(t, k, v)| (t.as_str(), k, v)).collect();
        undone.sort();
        assert_eq!(
            undone,
            vec![
                ("a-changelog", &b"k".to_vec(), &None),
                ("b-changelog", &b"k".to_vec(), &None)
            ]
        );
    }

    /// The same first commit with its marker in every changelog is restored whole.
    #[test]
    fn first_commit_marked_everywhere_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let first = Checkpoint {
            seq: 1,
            offsets: vec![("in".into(), 0, 1)],
            dedup: Vec::new(),
            stream_time: 5,
        };
        let mut logs = Changelogs::default();
        for changelog in ["a-changelog", "b-changelog"] {
            logs.put(changelog, b"k", b"v");
            logs.marker(changelog, &first);
        }
        let mut state = manager(dir.path());
        let mut sent = Sent::default();
        assert!(!state.restore(&mut logs, &mut sent).unwrap());
        assert_eq!(state.offsets().get(&("in".into(), 0)), Some(&1));
        assert_eq!(state.get(0, b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(state.get(1, b"k").unwrap(), Some(b"v".to_vec()));
        assert!(sent.0.is_empty());
    }
}
