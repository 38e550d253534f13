//! Interactive queries: read-only views of the stores of a running application.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{ReadableDatabase, TableDefinition};

use super::window::{Window, Windowed, decode_key, encode_time};
use super::{StoreDef, StoreKind};
use crate::error::{Error, StoreError};
use crate::serde::{Serde, SerdeContext, decode_blocking, encode_blocking};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type RawWindowEntry = (Windowed<Vec<u8>>, Vec<u8>);

/// A shard's data, as a query sees it.
#[derive(Clone)]
pub(crate) enum QueryHandle {
    Memory(Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>),
    /// Committed state only (writes since the last commit are not visible).
    Redb {
        db: Arc<redb::Database>,
        table: String,
    },
}

impl QueryHandle {
    fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Pairs, StoreError> {
        match self {
            QueryHandle::Memory(map) => Ok(map
                .read()
                .range::<[u8], _>((lower, upper))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
            QueryHandle::Redb { db, table } => {
                let read = db.begin_read().map_err(StoreError::redb)?;
                let t = read
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(StoreError::redb)?;
                let mut out = Vec::new();
                for entry in t.range::<&[u8]>((lower, upper)).map_err(StoreError::redb)? {
                    let (k, v) = entry.map_err(StoreError::redb)?;
                    out.push((k.value().to_vec(), v.value().to_vec()));
                }
                Ok(out)
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            QueryHandle::Memory(map) => Ok(map.read().get(key).cloned()),
            QueryHandle::Redb { db, table } => {
                let read = db.begin_read().map_err(StoreError::redb)?;
                let t = read
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(StoreError::redb)?;
                Ok(t.get(key)
                    .map_err(StoreError::redb)?
                    .map(|v| v.value().to_vec()))
            }
        }
    }
}

/// The stores of an application and the shards this process hosts.
#[derive(Default)]
pub(crate) struct StoreRegistry {
    defs: RwLock<HashMap<Arc<str>, Arc<StoreDef>>>,
    shards: RwLock<HashMap<Arc<str>, BTreeMap<i32, QueryHandle>>>,
}

impl StoreRegistry {
    pub(crate) fn declare(&self, def: &Arc<StoreDef>) {
        self.defs.write().insert(def.name.clone(), def.clone());
    }

    pub(crate) fn add_shard(&self, store: Arc<str>, partition: i32, handle: QueryHandle) {
        self.shards
            .write()
            .entry(store)
            .or_default()
            .insert(partition, handle);
    }

    pub(crate) fn remove_shard(&self, store: &str, partition: i32) {
        if let Some(shards) = self.shards.write().get_mut(store) {
            shards.remove(&partition);
        }
    }

    fn def(&self, name: &str) -> Result<Arc<StoreDef>, Error> {
        self.defs
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore {
                store: name.to_string(),
                reason: "the topology has no store of that name".into(),
            })
    }

    fn handles(&self, name: &str) -> Vec<QueryHandle> {
        self.shards
            .read()
            .get(name)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// A read-only view of a key-value store across every shard this process hosts.
///
/// Persistent stores show their committed state (at most one commit interval old); in-memory
/// stores show every write.
pub struct ReadOnlyKeyValueStore<K, V> {
    registry: Arc<StoreRegistry>,
    def: Arc<StoreDef>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(registry: Arc<StoreRegistry>, name: &str) -> Result<Self, Error> {
        let def = registry.def(name)?;
        if def.kind != StoreKind::KeyValue {
            return Err(Error::UnknownStore {
                store: name.to_string(),
                reason: "it is a window store".into(),
            });
        }
        let serdes = def.serdes::<K, V>()?;
        Ok(ReadOnlyKeyValueStore {
            key: serdes.key.clone(),
            value: serdes.value.clone(),
            registry,
            def,
        })
    }

    fn err(&self, e: impl Into<StoreError>) -> Error {
        Error::store(self.def.name.clone(), e)
    }

    /// The value of `key`, if any shard here holds it.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let k = encode_blocking(&*self.key, SerdeContext::key(&self.def.name), key)
            .map_err(|e| self.err(e))?;
        for shard in self.registry.handles(&self.def.name) {
            if let Some(bytes) = shard.get(&k).map_err(|e| self.err(e))? {
                let v = decode_blocking(&*self.value, SerdeContext::value(&self.def.name), &bytes)
                    .map_err(|e| self.err(e))?;
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Every entry, shard by shard, in key-byte order within a shard.
    pub fn all(&self) -> Result<Vec<(K, V)>, Error> {
        let mut out = Vec::new();
        for shard in self.registry.handles(&self.def.name) {
            for (k, v) in shard
                .range(Bound::Unbounded, Bound::Unbounded)
                .map_err(|e| self.err(e))?
            {
                let key = decode_blocking(&*self.key, SerdeContext::key(&self.def.name), &k)
                    .map_err(|e| self.err(e))?;
                let value = decode_blocking(&*self.value, SerdeContext::value(&self.def.name), &v)
                    .map_err(|e| self.err(e))?;
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// How many entries there are.
    pub fn len(&self) -> Result<usize, Error> {
        let mut n = 0;
        for shard in self.registry.handles(&self.def.name) {
            n += shard
                .range(Bound::Unbounded, Bound::Unbounded)
                .map_err(|e| self.err(e))?
                .len();
        }
        Ok(n)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

/// A read-only view of a window store across every shard this process hosts.
pub struct ReadOnlyWindowStore<K, V> {
    registry: Arc<StoreRegistry>,
    def: Arc<StoreDef>,
    size_ms: i64,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(registry: Arc<StoreRegistry>, name: &str) -> Result<Self, Error> {
        let def = registry.def(name)?;
        let StoreKind::Window { size_ms, .. } = def.kind else {
            return Err(Error::UnknownStore {
                store: name.to_string(),
                reason: "it is a key-value store".into(),
            });
        };
        let serdes = def.serdes::<K, V>()?;
        Ok(ReadOnlyWindowStore {
            key: serdes.key.clone(),
            value: serdes.value.clone(),
            size_ms,
            registry,
            def,
        })
    }

    fn err(&self, e: impl Into<StoreError>) -> Error {
        Error::store(self.def.name.clone(), e)
    }

    fn scan(&self, from: i64, to: i64) -> Result<Vec<RawWindowEntry>, Error> {
        let lower = encode_time(from);
        let upper = encode_time(to.saturating_add(1));
        let mut out = Vec::new();
        for shard in self.registry.handles(&self.def.name) {
            for (k, v) in shard
                .range(Bound::Included(&lower), Bound::Excluded(&upper))
                .map_err(|e| self.err(e))?
            {
                if let Some((start, key)) = decode_key(&k) {
                    out.push((
                        Windowed {
                            key: key.to_vec(),
                            window: Window {
                                start,
                                end: start + self.size_ms,
                            },
                        },
                        v,
                    ));
                }
            }
        }
        out.sort_by_key(|a| a.0.window);
        Ok(out)
    }

    /// The windows of `key` that start within `[from, to]` (milliseconds), oldest first.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(Window, V)>, Error> {
        let k = encode_blocking(&*self.key, SerdeContext::key(&self.def.name), key)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for (w, v) in self.scan(from, to)? {
            if w.key == k {
                let value = decode_blocking(&*self.value, SerdeContext::value(&self.def.name), &v)
                    .map_err(|e| self.err(e))?;
                out.push((w.window, value));
            }
        }
        Ok(out)
    }

    /// Every window starting within `[from, to]`, oldest first.
    pub fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<(Windowed<K>, V)>, Error> {
        let mut out = Vec::new();
        for (w, v) in self.scan(from, to)? {
            let key = decode_blocking(&*self.key, SerdeContext::key(&self.def.name), &w.key)
                .map_err(|e| self.err(e))?;
            let value = decode_blocking(&*self.value, SerdeContext::value(&self.def.name), &v)
                .map_err(|e| self.err(e))?;
            out.push((
                Windowed {
                    key,
                    window: w.window,
                },
                value,
            ));
        }
        Ok(out)
    }
}
