//! The stores of one task: reads, writes, changelogging, commit and restore.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::StoreDef;
use super::cache::{self, CacheBudget, CacheEntry, Overlay, SharedCache};
use super::changelog::{Checkpoint, marker_headers, marker_key};
use super::query::{QueryBase, QueryHandle};
use crate::config::StoreBackend;
use crate::error::{Error, StoreError};
use crate::metrics::{StoreMetrics, TaskMetrics};
use crate::record::Headers;
use crate::runtime::collector::{Delivery, OutRecord, RecordCollector};
use crate::runtime::context::TaskId;

mod restore;

pub(crate) use restore::{ChangelogRange, ChangelogReader};

type Bytes2 = (Vec<u8>, Vec<u8>);
/// Writes to a persistent shard since its last commit (`None` = deleted), shared with the
/// shard's interactive queries.
pub(crate) type Pending = Arc<RwLock<BTreeMap<Vec<u8>, Option<Vec<u8>>>>>;
type RoTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("__ow_meta");
const META_CHECKPOINT: &str = "checkpoint";

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Meta {
    checkpoint: Option<Checkpoint>,
    /// Next changelog offset to read per store.
    positions: BTreeMap<String, i64>,
}

struct Db {
    db: Arc<redb::Database>,
    tables: Vec<Option<RoTable>>,
}

enum SlotData {
    Memory(Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>),
    Redb {
        table: String,
        /// Writes since the last commit (`None` = deleted).
        cache: Pending,
    },
}

struct Slot {
    def: Arc<StoreDef>,
    changelog: Option<Arc<str>>,
    /// Next changelog offset after the last commit marker this shard reflects.
    position: i64,
    data: SlotData,
    /// The record cache, for the stores of aggregations while the budget is positive.
    cache: Option<SharedCache>,
    /// What processors asked of the shard (detached counters until
    /// [`StateManager::instrument`]).
    metrics: StoreMetrics,
}

/// The stores of one task, its input positions and its commit protocol.
pub(crate) struct StateManager {
    task: TaskId,
    slots: Vec<Slot>,
    db: Option<Db>,
    /// Sequence number of the last commit.
    seq: u64,
    offsets: BTreeMap<(Arc<str>, i32), i64>,
    dedup: BTreeMap<(Arc<str>, i32), (i64, u32)>,
    stream_time: i64,
    dirty: bool,
    /// The checkpoint of the persistent shards' last local commit as opened (what they
    /// reflect before restore), also when it is not the task's (a task with shards in memory
    /// too). Restore reads it.
    persisted: Option<Checkpoint>,
    markers: Vec<(usize, Delivery)>,
    /// The cache budget of the thread the task runs on.
    budget: Arc<CacheBudget>,
}

static NO_HEADERS: Headers = Headers::new();

impl StateManager {
    /// Opens the shards of `defs` for `task`. Persistent shards live in `dir/state.redb`; the
    /// stores that cache take their bytes from `budget`.
    pub(crate) fn open(
        task: TaskId,
        defs: &[(Arc<StoreDef>, Option<Arc<str>>)],
        dir: &Path,
        default_backend: StoreBackend,
        budget: Arc<CacheBudget>,
    ) -> Result<Self, Error> {
        let persistent =
            |d: &StoreDef| d.backend.unwrap_or(default_backend) == StoreBackend::Persistent;
        let mut db = None;
        let mut meta = Meta::default();
        if defs.iter().any(|(d, _)| persistent(d)) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let path = dir.join("state.redb");
            let database = redb::Database::create(&path)
                .map_err(|e| Error::store(format!("task {task}"), StoreError::redb(e)))?;
            let redb_err =
                |e: redb::Error| Error::store(format!("task {task}"), StoreError::redb(e));
            let txn = database.begin_write().map_err(|e| redb_err(e.into()))?;
            {
                let meta_table = txn.open_table(META).map_err(|e| redb_err(e.into()))?;
                if let Some(raw) = meta_table
                    .get(META_CHECKPOINT)
                    .map_err(|e| redb_err(e.into()))?
                {
                    meta = serde_json::from_slice(raw.value()).map_err(|e| {
                        Error::store(
                            format!("task {task}"),
                            StoreError::Io {
                                path: path.clone(),
                                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                            },
                        )
                    })?;
                }
                for (d, _) in defs.iter().filter(|(d, _)| persistent(d)) {
                    let name = table_name(&d.name);
                    txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                        .map_err(|e| redb_err(e.into()))?;
                }
            }
            txn.commit().map_err(|e| redb_err(e.into()))?;
            db = Some(Db {
                db: Arc::new(database),
                tables: Vec::new(),
            });
        }
        let slots = defs
            .iter()
            .map(|(def, changelog)| Slot {
                def: def.clone(),
                changelog: changelog.clone(),
                position: if persistent(def) {
                    meta.positions.get(&*def.name).copied().unwrap_or(0)
                } else {
                    0
                },
                data: if persistent(def) {
                    SlotData::Redb {
                        table: table_name(&def.name),
                        cache: Pending::default(),
                    }
                } else {
                    SlotData::Memory(Arc::new(RwLock::new(BTreeMap::new())))
                },
                cache: (def.caching && budget.enabled()).then(SharedCache::default),
                metrics: StoreMetrics::default(),
            })
            .collect();
        let mut manager = StateManager {
            task,
            slots,
            db,
            seq: 0,
            offsets: BTreeMap::new(),
            dedup: BTreeMap::new(),
            stream_time: i64::MIN,
            dirty: false,
            persisted: meta.checkpoint.clone(),
            markers: Vec::new(),
            budget,
        };
        // A persistent checkpoint only speaks for the state when every store is persistent:
        // in-memory shards start empty and are rebuilt from their changelogs.
        if manager
            .slots
            .iter()
            .all(|s| matches!(s.data, SlotData::Redb { .. }))
            && let Some(cp) = meta.checkpoint
        {
            manager.apply_checkpoint(&cp);
        }
        manager.refresh_read()?;
        Ok(manager)
    }

    fn apply_checkpoint(&mut self, cp: &Checkpoint) {
        self.seq = cp.seq;
        self.stream_time = self.stream_time.max(cp.stream_time);
        self.offsets = cp
            .offsets
            .iter()
            .map(|(t, p, o)| ((t.clone(), *p), *o))
            .collect();
        self.dedup = cp
            .dedup
            .iter()
            .map(|(t, p, o, s)| ((t.clone(), *p), (*o, *s)))
            .collect();
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            seq: self.seq,
            offsets: self
                .offsets
                .iter()
                .map(|((t, p), o)| (t.clone(), *p, *o))
                .collect(),
            dedup: self
                .dedup
                .iter()
                .map(|((t, p), (o, s))| (t.clone(), *p, *o, *s))
                .collect(),
            stream_time: self.stream_time,
            changelogs: self
                .slots
                .iter()
                .filter_map(|s| s.changelog.clone())
                .collect(),
        }
    }

    /// The task's stream time.
    pub(crate) fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// Advances the task's stream time.
    pub(crate) fn set_stream_time(&mut self, t: i64) {
        self.stream_time = t;
    }

    fn err(&self, index: usize, e: impl Into<StoreError>) -> Error {
        Error::store(self.slots[index].def.name.clone(), e)
    }

    fn task_err(&self, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::store(format!("task {}", self.task), StoreError::redb(e))
    }

    fn refresh_read(&mut self) -> Result<(), Error> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let read = db.db.begin_read().map_err(|e| self.task_err(e))?;
        let mut tables = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            match &slot.data {
                SlotData::Redb { table, .. } => {
                    let t = read
                        .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                        .map_err(|e| Error::store(slot.def.name.clone(), StoreError::redb(e)))?;
                    tables.push(Some(t));
                }
                SlotData::Memory(_) => tables.push(None),
            }
        }
        if let Some(db) = &mut self.db {
            db.tables = tables;
        }
        Ok(())
    }

    /// Counts the gets, puts, deletes and range scans of every store from now on in the
    /// instruments of `task` (`store_name` labels).
    pub(crate) fn instrument(&mut self, task: &TaskMetrics) {
        for slot in &mut self.slots {
            slot.metrics = task.store(&slot.def.name);
        }
    }

    /// Counts a put (`value` set) or a delete of store `index`.
    fn count_put(&self, index: usize, value: Option<&[u8]>) {
        let m = &self.slots[index].metrics;
        if value.is_some() {
            m.put.incr();
        } else {
            m.delete.incr();
        }
    }

    /// The declaration of store `index`.
    pub(crate) fn def(&self, index: usize) -> &Arc<StoreDef> {
        &self.slots[index].def
    }

    /// Reads a key (through the store's record cache).
    pub(crate) fn get(&self, index: usize, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.slots[index].metrics.get.incr();
        if let Some(cache) = &self.slots[index].cache
            && let Some(hit) = cache.read().get(key)
        {
            return Ok(hit.value.clone());
        }
        self.get_stored(index, key)
    }

    /// Reads a key from the store itself, under its record cache.
    fn get_stored(&self, index: usize, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match &self.slots[index].data {
            SlotData::Memory(map) => Ok(map.read().get(key).cloned()),
            SlotData::Redb { cache, .. } => {
                if let Some(hit) = cache.read().get(key) {
                    return Ok(hit.clone());
                }
                let table = self.table(index)?;
                let got = table
                    .get(key)
                    .map_err(|e| self.err(index, StoreError::redb(e)))?;
                Ok(got.map(|g| g.value().to_vec()))
            }
        }
    }

    fn table(&self, index: usize) -> Result<&RoTable, Error> {
        self.db
            .as_ref()
            .and_then(|db| db.tables.get(index))
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Closed {
                reason: format!("store {} has no open table", self.slots[index].def.name),
            })
    }

    /// Writes (or, with `None`, deletes) a key, and logs the change to the changelog. The
    /// write replaces whatever the record cache held for the key.
    pub(crate) fn put(
        &mut self,
        index: usize,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        out: &mut dyn RecordCollector,
    ) -> Result<(), Error> {
        self.count_put(index, value);
        if let Some(c) = &self.slots[index].cache {
            cache::remove(c, &self.budget, key);
        }
        self.write_through(index, key, value, timestamp, out)
    }

    /// Whether store `index` has a record cache.
    pub(crate) fn caching(&self, index: usize) -> bool {
        self.slots[index].cache.is_some()
    }

    /// Puts an update into the record cache of store `index` (which must have one, see
    /// [`StateManager::caching`]; without one, the update is written through). Returns whether
    /// the thread's cache budget is now exceeded: the caller then flushes the store.
    pub(crate) fn put_cached(
        &mut self,
        index: usize,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        headers: &Headers,
        out: &mut dyn RecordCollector,
    ) -> Result<bool, Error> {
        self.count_put(index, value);
        let Some(c) = &self.slots[index].cache else {
            self.write_through(index, key, value, timestamp, out)?;
            return Ok(false);
        };
        cache::insert(c, &self.budget, key, value, timestamp, headers);
        self.dirty = true;
        Ok(self.budget.exceeded())
    }

    /// Whether store `index` has no record cache or an empty one.
    pub(crate) fn cache_is_empty(&self, index: usize) -> bool {
        self.slots[index]
            .cache
            .as_ref()
            .is_none_or(|c| c.read().is_empty())
    }

    /// Whether any record cache of the task holds updates.
    pub(crate) fn has_cached(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.cache.as_ref().is_some_and(|c| !c.read().is_empty()))
    }

    /// Writes the record cache of store `index` to the store and its changelog, in key order,
    /// and empties it. Returns the updates written, for the caller to forward. With
    /// `skip_unchanged`, an update whose value equals the stored one is neither written nor
    /// returned.
    pub(crate) fn flush_cache(
        &mut self,
        index: usize,
        skip_unchanged: bool,
        out: &mut dyn RecordCollector,
    ) -> Result<Vec<(Vec<u8>, CacheEntry)>, Error> {
        let Some(c) = self.slots[index].cache.clone() else {
            return Ok(Vec::new());
        };
        // The cache stays locked (and readable through it, for queries) until every entry is
        // in the store, so that no reader sees a key go back to its older value meanwhile.
        let mut guard = c.write();
        if guard.is_empty() {
            return Ok(Vec::new());
        }
        let mut written = Vec::with_capacity(guard.len());
        for (key, entry) in guard.iter() {
            if skip_unchanged && self.get_stored(index, key)?.as_deref() == entry.value.as_deref() {
                written.push(false);
                continue;
            }
            self.write_through(index, key, entry.value.as_deref(), entry.timestamp, out)?;
            written.push(true);
        }
        let entries = cache::take_locked(&mut guard, &self.budget);
        Ok(entries
            .into_iter()
            .zip(written)
            .filter_map(|(entry, w)| w.then_some(entry))
            .collect())
    }

    fn write_through(
        &mut self,
        index: usize,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        out: &mut dyn RecordCollector,
    ) -> Result<(), Error> {
        let slot = &mut self.slots[index];
        match &mut slot.data {
            SlotData::Memory(map) => {
                let mut map = map.write();
                match value {
                    Some(v) => {
                        map.insert(key.to_vec(), v.to_vec());
                    }
                    None => {
                        map.remove(key);
                    }
                }
            }
            SlotData::Redb { cache, .. } => {
                cache
                    .write()
                    .insert(key.to_vec(), value.map(<[u8]>::to_vec));
            }
        }
        if let Some(changelog) = &slot.changelog {
            out.send(OutRecord {
                topic: changelog,
                partition: Some(self.task.partition),
                key: Some(key),
                value,
                timestamp,
                headers: &NO_HEADERS,
            })?;
        }
        self.dirty = true;
        Ok(())
    }

    /// Key-value pairs with keys in the given bounds, in key order, at most `limit` (through
    /// the store's record cache).
    pub(crate) fn range(
        &self,
        index: usize,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes2>, Error> {
        let slot = &self.slots[index];
        slot.metrics.range.incr();
        let cached = slot.cache.as_ref().map(|c| c.read());
        let over_cache = cached.iter().flat_map(|c| {
            c.range::<[u8], _>((lower, upper))
                .map(|(k, e)| (k.as_slice(), e.value.as_deref()))
        });
        match &slot.data {
            SlotData::Memory(map) => {
                let map = map.read();
                let stored = map
                    .range::<[u8], _>((lower, upper))
                    .map(|(k, v)| Ok((k.clone(), v.clone())));
                Overlay::new(stored, over_cache).take(limit).collect()
            }
            SlotData::Redb { cache, .. } => {
                let stored = self
                    .table(index)?
                    .range::<&[u8]>((lower, upper))
                    .map_err(|e| self.err(index, StoreError::redb(e)))?
                    .map(|r| {
                        r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                            .map_err(|e| self.err(index, StoreError::redb(e)))
                    });
                let pending = cache.read();
                let over_pending = pending
                    .range::<[u8], _>((lower, upper))
                    .map(|(k, v)| (k.as_slice(), v.as_deref()));
                Overlay::new(Overlay::new(stored, over_pending), over_cache)
                    .take(limit)
                    .collect()
            }
        }
    }

    /// Notes that the input record at `offset` of `topic`/`partition` has been processed.
    pub(crate) fn record_input(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        match self.offsets.get_mut(&(topic.clone(), partition)) {
            Some(o) => *o = offset + 1,
            None => {
                self.offsets.insert((topic.clone(), partition), offset + 1);
            }
        }
        self.dirty = true;
    }

    /// Sets where reading an input partition starts (after an assignment), without marking
    /// the state dirty.
    pub(crate) fn set_position(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        self.offsets.insert((topic.clone(), partition), offset);
    }

    /// Whether a record at `offset` was already processed by this task.
    pub(crate) fn is_behind(&self, topic: &Arc<str>, partition: i32, offset: i64) -> bool {
        self.offsets
            .get(&(topic.clone(), partition))
            .is_some_and(|next| offset < *next)
    }

    /// The next offset to read per input partition, as of the last processed record.
    pub(crate) fn offsets(&self) -> &BTreeMap<(Arc<str>, i32), i64> {
        &self.offsets
    }

    /// Whether a repartitioned record was already processed (a copy sent again by an upstream
    /// task that crashed); records it as processed otherwise.
    pub(crate) fn is_duplicate(
        &mut self,
        via: &str,
        upstream: &str,
        partition: i32,
        offset: i64,
        sub: u32,
    ) -> bool {
        let key: Arc<str> = format!("{via}\u{1}{upstream}").into();
        match self.dedup.get_mut(&(key.clone(), partition)) {
            Some(last) if (offset, sub) <= *last => true,
            Some(last) => {
                *last = (offset, sub);
                false
            }
            None => {
                self.dedup.insert((key, partition), (offset, sub));
                false
            }
        }
    }

    /// First half of a commit: writes a commit marker to every changelog. The caller then
    /// flushes its producer and calls [`StateManager::finish_commit`].
    pub(crate) fn prepare_commit(&mut self, out: &mut dyn RecordCollector) -> Result<(), Error> {
        self.markers.clear();
        if !self.dirty {
            return Ok(());
        }
        self.seq += 1;
        let value = self.checkpoint().encode();
        let headers = marker_headers();
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(changelog) = &slot.changelog {
                let delivery = out.send_tracked(OutRecord {
                    topic: changelog,
                    partition: Some(self.task.partition),
                    key: Some(marker_key(self.seq)),
                    value: Some(&value),
                    timestamp: 0,
                    headers: &headers,
                })?;
                self.markers.push((index, delivery));
            }
        }
        Ok(())
    }

    /// Second half of a commit, after every record sent so far was acknowledged: commits the
    /// persistent shards with the input offsets and changelog positions in one transaction.
    pub(crate) fn finish_commit(&mut self) -> Result<(), Error> {
        if !self.dirty {
            return Ok(());
        }
        for (index, delivery) in std::mem::take(&mut self.markers) {
            match delivery.offset() {
                Some(Ok(offset)) => self.slots[index].position = offset + 1,
                Some(Err(e)) => {
                    return Err(Error::kafka_failure("write commit marker", e, false));
                }
                None => {
                    return Err(Error::Closed {
                        reason: "commit marker not acknowledged after flush".into(),
                    });
                }
            }
        }
        self.persist(true)?;
        self.dirty = false;
        Ok(())
    }

    /// Writes cached changes (and, with `with_meta`, the checkpoint) to redb.
    fn persist(&mut self, with_meta: bool) -> Result<(), Error> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let txn = db.db.begin_write().map_err(|e| self.task_err(e))?;
        for slot in &self.slots {
            if let SlotData::Redb { table, cache } = &slot.data {
                let mut t = txn
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(|e| Error::store(slot.def.name.clone(), StoreError::redb(e)))?;
                // Cleared only once committed, so that queries never miss a write meanwhile.
                for (k, v) in cache.read().iter() {
                    let r = match v {
                        Some(v) => t.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                        None => t.remove(k.as_slice()).map(|_| ()),
                    };
                    r.map_err(|e| Error::store(slot.def.name.clone(), StoreError::redb(e)))?;
                }
            }
        }
        if with_meta {
            let meta = Meta {
                checkpoint: Some(self.checkpoint()),
                positions: self
                    .slots
                    .iter()
                    .filter(|s| matches!(s.data, SlotData::Redb { .. }))
                    .map(|s| (s.def.name.to_string(), s.position))
                    .collect(),
            };
            let bytes = serde_json::to_vec(&meta).unwrap_or_default();
            let mut m = txn.open_table(META).map_err(|e| self.task_err(e))?;
            m.insert(META_CHECKPOINT, bytes.as_slice())
                .map_err(|e| self.task_err(e))?;
        }
        txn.commit().map_err(|e| self.task_err(e))?;
        self.refresh_read()?;
        for slot in &self.slots {
            if let SlotData::Redb { cache, .. } = &slot.data {
                cache.write().clear();
            }
        }
        Ok(())
    }

    /// Handles for interactive queries of every shard.
    pub(crate) fn query_handles(&self) -> Vec<(Arc<str>, QueryHandle)> {
        self.slots
            .iter()
            .map(|slot| {
                let base = match &slot.data {
                    SlotData::Memory(map) => QueryBase::Memory(map.clone()),
                    SlotData::Redb { table, cache } => match &self.db {
                        Some(db) => QueryBase::Redb {
                            db: db.db.clone(),
                            table: table.clone(),
                            pending: cache.clone(),
                        },
                        None => QueryBase::Memory(Arc::default()),
                    },
                };
                let handle = QueryHandle {
                    base,
                    cache: slot.cache.clone(),
                };
                (slot.def.name.clone(), handle)
            })
            .collect()
    }
}

fn table_name(store: &str) -> String {
    format!("store:{store}")
}
