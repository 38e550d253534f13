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
    /// Brings every shard up to date from its changelog and decides what the task's state is
    /// after a crash. Returns whether the caller must *seal* the restore before processing:
    /// flush what restore sent (compensation records), then commit (a marker in every
    /// changelog).
    ///
    /// Each changelog is read from the position its shard reflects. A commit's markers are
    /// written only once every record of the commit (outputs, changelog and repartition
    /// records) is acknowledged (`TaskManager::commit`), so a marker of commit `T` in *any*
    /// changelog of the task means that all of `T`'s changes are in all of them. Under
    /// at-least-once the markers are appended one changelog after the other, and a kill among
    /// them leaves `T` marked in some changelogs only. Let `T` be the newest commit the task's
    /// changelogs (or the local checkpoint) reached:
    ///
    /// * **Roll forward** when a changelog that `T`'s marker was meant for lacks it: every
    ///   changelog holds all of `T` (and nothing after it), so every change read is applied
    ///   and the task resumes after `T`'s input offsets. The seal then writes the missing
    ///   markers (with a fresh sequence number), before any new change can follow.
    /// * Otherwise the changes after `T`'s marker belong to a commit that never got a marker
    ///   anywhere: they are **discarded**, and compensation records (the restored value of
    ///   every key they touched) go to the changelogs, so that they read correctly from any
    ///   point; the seal flushes them before writing its markers, so the next restore finds
    ///   them in every changelog whenever it finds one of the seal's markers.
    ///
    /// A second kill during a seal leaves a state of the same kind: the rule applies again.
    /// Sequence numbers stay unique (a seal is `T + 1`), so "the newest commit" is well
    /// defined. A changelog that `T`'s checkpoint does not name (a store added since) is no
    /// reason to roll forward.
    ///
    /// A persistent store without a changelog pins the task to its local checkpoint (it cannot
    /// be rolled forward): everything the changelogs hold past that checkpoint is discarded.
    pub(crate) fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
        out: &mut dyn RecordCollector,
    ) -> Result<bool, Error> {
        let pin = self.pinned();
        let results = self.restore_slots(reader, pin)?;
        let newest_seen = results.iter().filter_map(|r| r.newest_seen).max();
        // The commit to resume from, and whether to roll forward to it.
        let (target, forward) = match pin {
            Some(_) => (self.persisted.clone(), false),
            None => {
                let target = results
                    .iter()
                    .filter(|r| r.changelog.is_some())
                    .filter_map(SlotRestore::reached)
                    .max_by_key(|cp| cp.seq)
                    .cloned();
                let forward = target.as_ref().is_some_and(|t| {
                    results.iter().any(|r| {
                        r.changelog.as_ref().is_some_and(|c| t.written_to(c))
                            && r.reached().map(|cp| cp.seq) != Some(t.seq)
                    })
                });
                (target, forward)
            }
        };
        if forward && let Some(t) = &target {
            tracing::info!(
                task = %self.task, seq = t.seq,
                "a commit marked in some changelogs only: rolling forward to it (its changes \
                 are in every changelog)"
            );
        }
        let mut compensate: Vec<(usize, BTreeSet<Vec<u8>>)> = Vec::new();
        for (index, r) in results.into_iter().enumerate() {
            if r.changelog.is_none() {
                continue;
            }
            let has_target = r.reached().map(|cp| cp.seq) == target.as_ref().map(|t| t.seq);
            if forward && !has_target {
                // All of this changelog's changes since its last marker belong to commits up
                // to the target (their markers did not get here).
                self.apply_all(index, r.tail)?;
                self.slots[index].position = r.end;
                continue;
            }
            // Changes after the target's marker (or, pinned, after the pin's) belong to a
            // commit that no changelog has a marker of.
            let mut discard = r.held;
            discard.extend(r.tail.into_iter().map(|(k, _)| k));
            if !discard.is_empty() {
                tracing::info!(
                    task = %self.task, store = %self.slots[index].def.name, keys = discard.len(),
                    "discarding changes of a commit that never finished"
                );
                compensate.push((index, discard));
            }
            self.slots[index].position = r.last.map_or(r.start, |(_, pos)| pos);
        }
        if let Some(cp) = &target {
            self.apply_checkpoint(cp);
        }
        // Undo the discarded changes in the changelogs: write back what the restored state says.
        let mut wrote = false;
        for (index, keys) in compensate {
            let Some(changelog) = self.slots[index].changelog.clone() else {
                continue;
            };
            for key in keys {
                let value = self.get(index, &key)?;
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
        // The seal's sequence number must be new in every changelog, also when restore went
        // back before markers it read (a pinned task).
        self.seq = self.seq.max(newest_seen.unwrap_or(0));
        let seal = wrote || forward;
        self.dirty = seal;
        Ok(seal)
    }

    /// The sequence number a persistent store without a changelog pins the task to (its
    /// local checkpoint's, 0 when it has none), if the task has such a store.
    fn pinned(&self) -> Option<u64> {
        self.slots
            .iter()
            .any(|s| s.changelog.is_none() && matches!(s.data, SlotData::Redb { .. }))
            .then(|| self.persisted.as_ref().map_or(0, |cp| cp.seq))
    }

    fn apply_all(
        &mut self,
        index: usize,
        data: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
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
    /// applying the changes followed by a marker as they come (up to the marker of `pin`, if
    /// set).
    fn restore_slots(
        &mut self,
        reader: &mut dyn ChangelogReader,
        pin: Option<u64>,
    ) -> Result<Vec<SlotRestore>, Error> {
        let mut results = Vec::with_capacity(self.slots.len());
        // (slot index, changelog, from, end) of the shards that have something to read.
        let mut reads: Vec<(usize, Arc<str>, i64, i64)> = Vec::new();
        for index in 0..self.slots.len() {
            let (r, read) = self.plan_slot(index, reader)?;
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
                pin,
                pending: Vec::new(),
                to_apply: Vec::new(),
            })
            .collect();
        reader.read_many(&ranges, &mut |i, rec| {
            let (index, changelog, _, _) = &reads[i];
            let scan = &mut scans[i];
            scan.push(rec, changelog, partition)?;
            // Apply (and persist) confirmed changes as we go, not all at the end.
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
                ..
            } = scan;
            self.apply_all(*index, to_apply)?;
            r.tail = pending;
            tracing::debug!(
                task = %self.task, changelog = %changelog, from, end,
                last_marker = ?r.last.as_ref().map(|(cp, _)| cp.seq),
                tail = r.tail.len(), "restored"
            );
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
    ) -> Result<(SlotRestore, Option<(Arc<str>, i64, i64)>), Error> {
        let persistent = matches!(self.slots[index].data, SlotData::Redb { .. });
        let mut r = SlotRestore {
            changelog: self.slots[index].changelog.clone(),
            // A persistent shard reflects the local checkpoint; one in memory starts empty.
            base: if persistent {
                self.persisted.clone()
            } else {
                None
            },
            start: self.slots[index].position,
            end: self.slots[index].position,
            last: None,
            newest_seen: None,
            held: BTreeSet::new(),
            tail: Vec::new(),
        };
        let Some(changelog) = r.changelog.clone() else {
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
            r.base = None;
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
        r.start = from;
        r.end = from;
        if from >= end {
            return Ok((r, None));
        }
        r.end = end;
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

/// One change read from a changelog (`None` = deleted).
type Change = (Vec<u8>, Option<Vec<u8>>);

/// The state of a changelog scan during restore.
struct Scan {
    r: SlotRestore,
    /// Apply only the changes up to the marker of this commit (a pinned task).
    pin: Option<u64>,
    /// Changes since the last marker.
    pending: Vec<Change>,
    /// Changes followed by a marker, not applied yet.
    to_apply: Vec<Change>,
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
            self.r.newest_seen = self.r.newest_seen.max(Some(cp.seq));
            if self.r.held.is_empty() && self.pin.is_none_or(|pin| cp.seq <= pin) {
                self.to_apply.append(&mut self.pending);
                self.r.last = Some((cp, rec.offset + 1));
            } else {
                self.r
                    .held
                    .extend(self.pending.drain(..).map(|(key, _)| key));
            }
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

/// What restore found for one shard.
struct SlotRestore {
    changelog: Option<Arc<str>>,
    /// The commit the shard's state reflected before its changelog was read: the local
    /// checkpoint of a persistent shard, `None` for a shard in memory (or rebuilt).
    base: Option<Checkpoint>,
    /// The changelog offset reading started at, and the end it read to.
    start: i64,
    end: i64,
    /// The last marker whose changes were applied, and the offset after it.
    last: Option<(Checkpoint, i64)>,
    /// The highest sequence number of any marker read.
    newest_seen: Option<u64>,
    /// Keys changed by commits past the pin (a pinned task), not applied.
    held: BTreeSet<Vec<u8>>,
    /// Changes after the last marker, not applied.
    tail: Vec<Change>,
}

impl SlotRestore {
    /// A placeholder while a scan owns the real one.
    fn empty() -> Self {
        SlotRestore {
            changelog: None,
            base: None,
            start: 0,
            end: 0,
            last: None,
            newest_seen: None,
            held: BTreeSet::new(),
            tail: Vec::new(),
        }
    }

    /// The newest commit this shard's changelog (or its local checkpoint) has: its last
    /// marker, or the checkpoint it started from. `None`: it has none (a shard in memory whose
    /// changelog holds no marker yet, a new store, or a task that never committed).
    fn reached(&self) -> Option<&Checkpoint> {
        self.last.as_ref().map(|(cp, _)| cp).or(self.base.as_ref())
    }
}

#[cfg(test)]
mod tests {
    //! Crashes inside commits, on the real local log: the changelogs are topics of an
    //! [`ow_stream_log::Log`], written by the local backend's collector and read back by its
    //! changelog reader. A kill among a commit's appends is a collector that never appends to
    //! some changelogs ([`Cut`]), followed by a new [`StateManager`] on the same state
    //! directory (the old one is dropped without its local commit).

    use std::path::PathBuf;

    use ow_stream_log::{CleanupPolicy, FsyncPolicy, Log, LogOptions, TopicConfig};

    use super::*;
    use crate::backend::local::{LocalChangelogReader, LocalCollector};
    use crate::config::StoreBackend;
    use crate::metrics::Metrics;
    use crate::runtime::collector::Delivery;
    use crate::runtime::context::TaskId;
    use crate::runtime::manager::Collector;
    use crate::state::cache::CacheBudget;
    use crate::state::{StoreDef, StoreKind};

    const INPUT: &str = "in";

    /// A log, a state directory, and the stores of one task.
    struct World {
        _dir: tempfile::TempDir,
        state_dir: PathBuf,
        log: Arc<Log>,
        metrics: Arc<Metrics>,
        backend: StoreBackend,
    }

    /// A store; `logged` ones write to `<name>-changelog`.
    struct Store {
        name: &'static str,
        logged: bool,
    }

    const A: Store = Store {
        name: "a",
        logged: true,
    };
    const B: Store = Store {
        name: "b",
        logged: true,
    };

    fn changelog(store: &str) -> String {
        format!("{store}-changelog")
    }

    impl World {
        fn new(backend: StoreBackend) -> World {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(
                dir.path().join("log"),
                LogOptions::default()
                    .with_fsync(FsyncPolicy::Never)
                    .with_maintenance_interval(None),
            )
            .unwrap();
            World {
                state_dir: dir.path().join("state"),
                _dir: dir,
                log: Arc::new(log),
                metrics: Arc::new(Metrics::default()),
                backend,
            }
        }

        /// A process's view of the task: its stores opened (their changelogs created).
        fn open(&self, stores: &[Store]) -> StateManager {
            let defs: Vec<(Arc<StoreDef>, Option<Arc<str>>)> = stores
                .iter()
                .map(|s| {
                    let def = StoreDef {
                        name: s.name.into(),
                        kind: StoreKind::KeyValue,
                        backend: Some(self.backend),
                        logging: s.logged,
                        caching: false,
                        serdes: Arc::new(()),
                        key_describe: String::new(),
                        value_describe: String::new(),
                    };
                    let topic = s.logged.then(|| {
                        let name = changelog(s.name);
                        self.log
                            .create_topic(
                                &name,
                                TopicConfig::new(1).with_cleanup(CleanupPolicy::Compact),
                            )
                            .unwrap();
                        Arc::<str>::from(name)
                    });
                    (Arc::new(def), topic)
                })
                .collect();
            let task = TaskId {
                subtopology: 0,
                partition: 0,
            };
            StateManager::open(
                task,
                &defs,
                &self.state_dir,
                self.backend,
                CacheBudget::new(0),
            )
            .unwrap()
        }

        fn collector(&self) -> LocalCollector {
            LocalCollector::new(self.log.clone(), self.metrics.clone())
        }

        /// Opens the task in a new process and restores it; seals the restore as the task
        /// manager does, through `seal` (a [`Cut`] for a kill during the seal). Returns the
        /// state and whether restore asked for a seal.
        fn restart(&self, stores: &[Store], lost: &[&str]) -> (StateManager, bool) {
            let mut state = self.open(stores);
            let mut out = self.collector();
            let mut reader = LocalChangelogReader {
                log: self.log.clone(),
                metrics: self.metrics.clone(),
            };
            let seal = state.restore(&mut reader, &mut out).unwrap();
            if seal {
                out.flush().unwrap();
                commit(&mut state, &mut out, lost);
            }
            (state, seal)
        }

        /// Markers in `store`'s changelog.
        fn markers(&self, store: &str) -> usize {
            let topic = changelog(store);
            let mut reader = LocalChangelogReader {
                log: self.log.clone(),
                metrics: self.metrics.clone(),
            };
            let (start, end) = reader.watermarks(&topic, 0).unwrap();
            let mut n = 0;
            reader
                .read(&topic, 0, start, end, &mut |r| {
                    n += usize::from(is_marker(&r.headers));
                    Ok(())
                })
                .unwrap();
            n
        }
    }

    /// Processes input record `offset`: writes `(key, value)` to the stores `writes` names.
    fn process(
        state: &mut StateManager,
        out: &mut dyn RecordCollector,
        offset: i64,
        writes: &[(usize, &str, Option<&str>)],
    ) {
        for (index, key, value) in writes {
            state
                .put(
                    *index,
                    key.as_bytes(),
                    value.map(str::as_bytes),
                    offset,
                    out,
                )
                .unwrap();
        }
        state.record_input(&INPUT.into(), 0, offset);
    }

    /// A commit as `TaskManager::commit` makes it: the changes flushed, then the markers,
    /// flushed. Whatever goes to a changelog of `lost` stores is never appended: the process
    /// is killed there, and the local commit never happens. Returns whether it finished.
    fn commit(state: &mut StateManager, out: &mut LocalCollector, lost: &[&str]) -> bool {
        out.flush().unwrap();
        let lost: Vec<String> = lost.iter().map(|s| changelog(s)).collect();
        state
            .prepare_commit(&mut Cut {
                inner: &mut *out,
                lost: &lost,
            })
            .unwrap();
        out.flush().unwrap();
        if !lost.is_empty() {
            return false;
        }
        state.finish_commit().unwrap();
        true
    }

    /// A collector that never appends to the topics in `lost` (the process died first).
    struct Cut<'a> {
        inner: &'a mut LocalCollector,
        lost: &'a [String],
    }

    impl RecordCollector for Cut<'_> {
        fn send(&mut self, r: OutRecord<'_>) -> Result<(), Error> {
            if self.lost.iter().any(|t| t == r.topic) {
                return Ok(());
            }
            self.inner.send(r)
        }

        fn send_tracked(&mut self, r: OutRecord<'_>) -> Result<Delivery, Error> {
            if self.lost.iter().any(|t| t == r.topic) {
                return Ok(Delivery::default());
            }
            self.inner.send_tracked(r)
        }

        fn partition_count(&mut self, topic: &str) -> Result<i32, Error> {
            self.inner.partition_count(topic)
        }
    }

    fn get(state: &StateManager, index: usize, key: &str) -> Option<String> {
        state
            .get(index, key.as_bytes())
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn next_input(state: &StateManager) -> Option<i64> {
        state.offsets().get(&(INPUT.into(), 0)).copied()
    }

    const BACKENDS: [StoreBackend; 2] = [StoreBackend::Persistent, StoreBackend::InMemory];

    /// A kill among the markers of a task's *first* commit: only `a`'s changelog got one. The
    /// commit's changes are in both changelogs (markers come after them), so restore rolls it
    /// forward — it neither adopts the commit's offsets while dropping `b`'s change, nor
    /// drops the commit.
    #[test]
    fn a_first_commit_marked_in_some_changelogs_only_is_rolled_forward() {
        for backend in BACKENDS {
            let world = World::new(backend);
            let mut state = world.open(&[A, B]);
            let mut out = world.collector();
            process(
                &mut state,
                &mut out,
                0,
                &[(0, "k", Some("v0")), (1, "k", Some("v0"))],
            );
            assert!(!commit(&mut state, &mut out, &["b"]));
            drop(state);

            let (state, seal) = world.restart(&[A, B], &[]);
            assert!(seal, "{backend:?}: the missing marker must be written");
            assert_eq!(next_input(&state), Some(1), "{backend:?}");
            assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"), "{backend:?}");
            assert_eq!(get(&state, 1, "k").as_deref(), Some("v0"), "{backend:?}");
            assert_eq!((world.markers("a"), world.markers("b")), (2, 1));
            drop(state);

            let (state, seal) = world.restart(&[A, B], &[]);
            assert!(!seal, "{backend:?}");
            assert_eq!(next_input(&state), Some(1), "{backend:?}");
            assert_eq!(get(&state, 1, "k").as_deref(), Some("v0"), "{backend:?}");
        }
    }

    /// A kill among a commit's markers, then another one in the commit that seals its restore
    /// (again before `b`'s marker): `a`'s changelog is then two markers ahead of `b`'s. Still
    /// nothing of the commit is lost and nothing is applied twice.
    #[test]
    fn a_second_kill_in_the_seal_loses_nothing() {
        for backend in BACKENDS {
            let world = World::new(backend);
            let mut state = world.open(&[A, B]);
            let mut out = world.collector();
            process(
                &mut state,
                &mut out,
                0,
                &[(0, "k", Some("v0")), (1, "k", Some("v0"))],
            );
            assert!(commit(&mut state, &mut out, &[]));
            process(
                &mut state,
                &mut out,
                1,
                &[(0, "k", Some("v1")), (1, "k", Some("v1"))],
            );
            assert!(!commit(&mut state, &mut out, &["b"]));
            drop(state);

            let (state, seal) = world.restart(&[A, B], &["b"]);
            assert!(seal);
            drop(state);
            assert_eq!((world.markers("a"), world.markers("b")), (3, 1));

            let (state, seal) = world.restart(&[A, B], &[]);
            assert!(seal, "{backend:?}");
            assert_eq!(next_input(&state), Some(2), "{backend:?}");
            assert_eq!(get(&state, 0, "k").as_deref(), Some("v1"), "{backend:?}");
            assert_eq!(get(&state, 1, "k").as_deref(), Some("v1"), "{backend:?}");
            drop(state);

            let (state, seal) = world.restart(&[A, B], &[]);
            assert!(!seal, "{backend:?}");
            assert_eq!(next_input(&state), Some(2), "{backend:?}");
            assert_eq!(get(&state, 1, "k").as_deref(), Some("v1"), "{backend:?}");
        }
    }

    /// A kill after a commit's changes were appended but before any marker: they are
    /// discarded (and undone in the changelogs), the input is read again. A second kill in the
    /// seal, after `a`'s marker, changes nothing: the seal's undo records were flushed first,
    /// so `b`'s changelog has them.
    #[test]
    fn changes_no_changelog_has_a_marker_for_are_discarded() {
        for backend in BACKENDS {
            let world = World::new(backend);
            let mut state = world.open(&[A, B]);
            let mut out = world.collector();
            process(&mut state, &mut out, 0, &[(0, "k", Some("v0"))]);
            assert!(commit(&mut state, &mut out, &[]));
            process(
                &mut state,
                &mut out,
                1,
                &[(0, "k", Some("v1")), (1, "j", Some("x"))],
            );
            out.flush().unwrap();
            drop(state);

            let (state, seal) = world.restart(&[A, B], &["b"]);
            assert!(seal, "{backend:?}");
            assert_eq!(next_input(&state), Some(1), "{backend:?}");
            assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"), "{backend:?}");
            assert_eq!(get(&state, 1, "j"), None, "{backend:?}");
            drop(state);

            for _ in 0..2 {
                let (state, _) = world.restart(&[A, B], &[]);
                assert_eq!(next_input(&state), Some(1), "{backend:?}");
                assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"), "{backend:?}");
                assert_eq!(get(&state, 1, "j"), None, "{backend:?}");
            }
        }
    }

    /// A store added since the last commit has no marker of it: that is no reason to roll
    /// forward (and apply changes no marker confirms).
    #[test]
    fn a_store_added_since_the_last_commit_does_not_roll_anything_forward() {
        const C: Store = Store {
            name: "c",
            logged: true,
        };
        for backend in BACKENDS {
            let world = World::new(backend);
            let mut state = world.open(&[A, B]);
            let mut out = world.collector();
            process(&mut state, &mut out, 0, &[(0, "k", Some("v0"))]);
            assert!(commit(&mut state, &mut out, &[]));
            drop(state);

            // The new version, with store `c`, processes input 1 and dies before its commit.
            let (mut state, _) = world.restart(&[A, B, C], &[]);
            process(
                &mut state,
                &mut out,
                1,
                &[(0, "k", Some("v1")), (2, "k", Some("v1"))],
            );
            out.flush().unwrap();
            drop(state);

            let (state, seal) = world.restart(&[A, B, C], &[]);
            assert!(seal, "{backend:?}");
            assert_eq!(next_input(&state), Some(1), "{backend:?}");
            assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"), "{backend:?}");
            assert_eq!(get(&state, 2, "k"), None, "{backend:?}");
        }
    }

    /// A persistent store without a changelog cannot be rolled forward: a commit whose markers
    /// are all written but whose local commit never happened is discarded instead.
    #[test]
    fn an_unlogged_persistent_store_pins_the_task_to_its_local_checkpoint() {
        const U: Store = Store {
            name: "u",
            logged: false,
        };
        let world = World::new(StoreBackend::Persistent);
        let mut state = world.open(&[A, U]);
        let mut out = world.collector();
        process(
            &mut state,
            &mut out,
            0,
            &[(0, "k", Some("v0")), (1, "k", Some("v0"))],
        );
        assert!(commit(&mut state, &mut out, &[]));
        process(
            &mut state,
            &mut out,
            1,
            &[(0, "k", Some("v1")), (1, "k", Some("v1"))],
        );
        out.flush().unwrap();
        state.prepare_commit(&mut out).unwrap();
        out.flush().unwrap();
        // Killed before `finish_commit`.
        drop(state);

        let (state, seal) = world.restart(&[A, U], &[]);
        assert!(seal);
        assert_eq!(next_input(&state), Some(1));
        assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"));
        assert_eq!(get(&state, 1, "k").as_deref(), Some("v0"));
        drop(state);
        let (state, seal) = world.restart(&[A, U], &[]);
        assert!(!seal);
        assert_eq!(next_input(&state), Some(1));
        assert_eq!(get(&state, 0, "k").as_deref(), Some("v0"));
    }
}
