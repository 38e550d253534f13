//! Interactive queries: read-only views of the stores of a running application.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{ReadableDatabase, TableDefinition};

use super::cache::{Overlay, SharedCache};
use super::manager::Pending;
use super::window::{Window, Windowed, decode_key, encode_time};
use super::{StoreDef, StoreKind};
use crate::error::{Error, StoreError};
use crate::serde::{Serde, SerdeContext, decode_blocking, encode_blocking};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type RawWindowEntry = (Windowed<Vec<u8>>, Vec<u8>);

/// Where a shard's data lives, as a query sees it.
#[derive(Clone)]
pub(crate) enum QueryBase {
    Memory(Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>),
    /// The committed state, seen through the writes since the last commit.
    Redb {
        db: Arc<redb::Database>,
        table: String,
        pending: Pending,
    },
}

/// A shard's data, as a query sees it: its store, seen through its record cache.
#[derive(Clone)]
pub(crate) struct QueryHandle {
    pub(crate) base: QueryBase,
    pub(crate) cache: Option<SharedCache>,
}

impl QueryHandle {
    fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Pairs, StoreError> {
        let cached = self.cache.as_ref().map(|c| c.read());
        let over_cache = cached.iter().flat_map(|c| {
            c.range::<[u8], _>((lower, upper))
                .map(|(k, e)| (k.as_slice(), e.value.as_deref()))
        });
        match &self.base {
            QueryBase::Memory(map) => {
                let map = map.read();
                let stored = map
                    .range::<[u8], _>((lower, upper))
                    .map(|(k, v)| Ok((k.clone(), v.clone())));
                Overlay::new(stored, over_cache).collect()
            }
            QueryBase::Redb { db, table, pending } => {
                let read = db.begin_read().map_err(StoreError::redb)?;
                let t = read
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(StoreError::redb)?;
                let stored = t
                    .range::<&[u8]>((lower, upper))
                    .map_err(StoreError::redb)?
                    .map(|r| {
                        r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                            .map_err(StoreError::redb)
                    });
                let pending = pending.read();
                let over_pending = pending
                    .range::<[u8], _>((lower, upper))
                    .map(|(k, v)| (k.as_slice(), v.as_deref()));
                Overlay::new(Overlay::new(stored, over_pending), over_cache).collect()
            }
        }
    }

    /// The value of `key` in the cache or the pending writes: `Some(found)` when one of them
    /// knows the key (`found` is `None` for a deletion), `None` when the committed state must
    /// be read.
    fn get_uncommitted(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.read().get(key)
        {
            return Some(hit.value.clone());
        }
        match &self.base {
            QueryBase::Memory(_) => None,
            QueryBase::Redb { pending, .. } => pending.read().get(key).cloned(),
        }
    }

    /// Fills the `None`s of `found` with the values of the matching `keys` this shard holds
    /// (one read transaction for them all).
    fn get_missing(
        &self,
        keys: &[Vec<u8>],
        found: &mut [Option<Vec<u8>>],
    ) -> Result<(), StoreError> {
        let mut committed = Vec::new();
        for (i, (key, slot)) in keys.iter().zip(found.iter_mut()).enumerate() {
            if slot.is_none() {
                match self.get_uncommitted(key) {
                    Some(value) => *slot = value,
                    None => committed.push(i),
                }
            }
        }
        if committed.is_empty() {
            return Ok(());
        }
        match &self.base {
            QueryBase::Memory(map) => {
                let map = map.read();
                for i in committed {
                    found[i] = map.get(&keys[i]).cloned();
                }
            }
            QueryBase::Redb { db, table, .. } => {
                let read = db.begin_read().map_err(StoreError::redb)?;
                let t = read
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(StoreError::redb)?;
                for i in committed {
                    found[i] = t
                        .get(keys[i].as_slice())
                        .map_err(StoreError::redb)?
                        .map(|v| v.value().to_vec());
                }
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.get_uncommitted(key) {
            return Ok(value);
        }
        match &self.base {
            QueryBase::Memory(map) => Ok(map.read().get(key).cloned()),
            QueryBase::Redb { db, table, .. } => {
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
///
/// Stores keep entries in the **byte order of their serialized keys**: [`range`](Self::range),
/// [`range_bytes`](Self::range_bytes), [`prefix_scan`](Self::prefix_scan) and
/// [`prefix_scan_key`](Self::prefix_scan_key) select and return entries in that order, merged
/// across shards (it is the order of `K` itself only for serdes that preserve it, such as UTF-8
/// strings).
pub struct ReadOnlyKeyValueStore<K, V> {
    registry: Arc<StoreRegistry>,
    def: Arc<StoreDef>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(registry: Arc<StoreRegistry>, name: &str) -> Result<Self, Error> {
        let def = registry.def(name)?;
        match def.kind {
            StoreKind::KeyValue => {}
            StoreKind::Window { .. } => {
                return Err(Error::UnknownStore {
                    store: name.to_string(),
                    reason: "it is a window store".into(),
                });
            }
            StoreKind::JoinWindow { .. } => return Err(join_buffer(name)),
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

    /// The values of `keys`, in the order of `keys` (`None` where no shard here holds the
    /// key). Each shard is read once for all of them.
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # use ow_stream_core::dsl::Materialized;
    /// # use ow_stream_core::testing::TopologyTestDriver;
    /// # let topic: Topic<String, String> = Topic::json("names");
    /// # let builder = StreamsBuilder::new();
    /// # builder.table(&topic, Materialized::as_("names"));
    /// # let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// # driver.input_topic(&topic).pipe_input("ada".into(), "Ada".into()).unwrap();
    /// let names = driver.key_value_store::<String, String>("names")?;
    /// let found = names.get_many(&["ada".to_string(), "bob".to_string()])?;
    /// assert_eq!(found, vec![Some("Ada".to_string()), None]);
    /// # Ok::<(), ow_stream_core::Error>(())
    /// ```
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<V>>, Error> {
        let encoded = keys
            .iter()
            .map(|key| encode_blocking(&*self.key, SerdeContext::key(&self.def.name), key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut found: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        for shard in self.registry.handles(&self.def.name) {
            if found.iter().all(Option::is_some) {
                break;
            }
            shard
                .get_missing(&encoded, &mut found)
                .map_err(|e| self.err(e))?;
        }
        found
            .into_iter()
            .map(|bytes| bytes.map(|b| self.decode_value(&b)).transpose())
            .collect()
    }

    /// The entries whose keys lie between `from` and `to`, both included, in the **byte
    /// order of the serialized keys** (which is the order of `K` only for serdes that keep it,
    /// such as [`StringSerde`](crate::serde::StringSerde) for strings; Avro and JSON keys sort
    /// by their encoded bytes). Entries of every shard here are merged in that order.
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # use ow_stream_core::dsl::Materialized;
    /// # use ow_stream_core::serde::StringSerde;
    /// # use ow_stream_core::testing::TopologyTestDriver;
    /// # let topic: Topic<String, String> = Topic::new("names", StringSerde, StringSerde);
    /// # let builder = StreamsBuilder::new();
    /// # builder.table(&topic, Materialized::as_("names"));
    /// # let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// # for k in ["ada", "bob", "cy"] { driver.input_topic(&topic).pipe_input(k.into(), k.to_uppercase()).unwrap(); }
    /// let names = driver.key_value_store::<String, String>("names")?;
    /// let keys: Vec<String> = names.range(&"b".into(), &"d".into())?.into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["bob", "cy"]);
    /// # Ok::<(), ow_stream_core::Error>(())
    /// ```
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>, Error> {
        let from = encode_blocking(&*self.key, SerdeContext::key(&self.def.name), from)
            .map_err(|e| self.err(e))?;
        let to = encode_blocking(&*self.key, SerdeContext::key(&self.def.name), to)
            .map_err(|e| self.err(e))?;
        self.range_bytes(Bound::Included(&from), Bound::Included(&to))
    }

    /// The entries whose serialized keys lie within the bounds, in byte order of the
    /// serialized keys, merged across shards.
    pub fn range_bytes(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(K, V)>, Error> {
        if is_empty_range(from, to) {
            return Ok(Vec::new());
        }
        let mut pairs = Vec::new();
        for shard in self.registry.handles(&self.def.name) {
            pairs.extend(shard.range(from, to).map_err(|e| self.err(e))?);
        }
        // Each shard is sorted already: merge them by key bytes.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        self.decode_pairs(pairs)
    }

    /// The entries whose **serialized** keys start with `prefix`, in byte order of the
    /// serialized keys. With [`StringSerde`](crate::serde::StringSerde) keys the prefix is
    /// the UTF-8 of a string prefix; with a composite key, the bytes its serde writes for the
    /// leading part (for Avro, the wire framing — magic byte and schema id — comes first).
    pub fn prefix_scan(&self, prefix: &[u8]) -> Result<Vec<(K, V)>, Error> {
        let upper = prefix_upper_bound(prefix);
        let to = match &upper {
            Some(u) => Bound::Excluded(u.as_slice()),
            None => Bound::Unbounded,
        };
        self.range_bytes(Bound::Included(prefix), to)
    }

    /// The entries whose serialized keys start with the bytes the store's key serde writes
    /// for `prefix`: a prefix scan by value for serdes whose encoding of a key is a byte
    /// prefix of the encodings of longer keys, such as strings with
    /// [`StringSerde`](crate::serde::StringSerde) or bytes with
    /// [`BytesSerde`](crate::serde::BytesSerde) (not length-prefixed encodings such as Avro).
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # use ow_stream_core::dsl::Materialized;
    /// # use ow_stream_core::serde::StringSerde;
    /// # use ow_stream_core::testing::TopologyTestDriver;
    /// # let topic: Topic<String, i64> = Topic::new("scores", StringSerde, ow_stream_core::serde::JsonSerde::new());
    /// # let builder = StreamsBuilder::new();
    /// # builder.table(&topic, Materialized::as_("scores"));
    /// # let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// # for (k, v) in [("ada/pc", 1), ("ada/console", 2), ("bob/pc", 3)] { driver.input_topic(&topic).pipe_input(k.into(), v).unwrap(); }
    /// let scores = driver.key_value_store::<String, i64>("scores")?;
    /// let ada: Vec<i64> = scores.prefix_scan_key(&"ada/".into())?.into_iter().map(|(_, v)| v).collect();
    /// assert_eq!(ada, [2, 1]); // "ada/console" < "ada/pc"
    /// # Ok::<(), ow_stream_core::Error>(())
    /// ```
    pub fn prefix_scan_key(&self, prefix: &K) -> Result<Vec<(K, V)>, Error> {
        let prefix = encode_blocking(&*self.key, SerdeContext::key(&self.def.name), prefix)
            .map_err(|e| self.err(e))?;
        self.prefix_scan(&prefix)
    }

    fn decode_value(&self, bytes: &[u8]) -> Result<V, Error> {
        decode_blocking(&*self.value, SerdeContext::value(&self.def.name), bytes)
            .map_err(|e| self.err(e))
    }

    fn decode_pairs(&self, pairs: Pairs) -> Result<Vec<(K, V)>, Error> {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let key = decode_blocking(&*self.key, SerdeContext::key(&self.def.name), &k)
                    .map_err(|e| self.err(e))?;
                Ok((key, self.decode_value(&v)?))
            })
            .collect()
    }

    /// Every entry, shard by shard, in key-byte order within a shard.
    pub fn all(&self) -> Result<Vec<(K, V)>, Error> {
        let mut out = Vec::new();
        for shard in self.registry.handles(&self.def.name) {
            let pairs = shard
                .range(Bound::Unbounded, Bound::Unbounded)
                .map_err(|e| self.err(e))?;
            out.extend(self.decode_pairs(pairs)?);
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

/// Whether no key can lie within the bounds (ordered maps panic on such ranges).
fn is_empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

/// The smallest byte string greater than every string starting with `prefix` (`None` when
/// there is none: the prefix is empty or all `0xff`).
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < u8::MAX {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

/// Stream–stream join buffers are internal: no typed view reads them.
fn join_buffer(name: &str) -> Error {
    Error::UnknownStore {
        store: name.to_string(),
        reason: "it is a stream-stream join's internal buffer".into(),
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
        let size_ms = match def.kind {
            StoreKind::Window { size_ms, .. } => size_ms,
            StoreKind::JoinWindow { .. } => return Err(join_buffer(name)),
            StoreKind::KeyValue => {
                return Err(Error::UnknownStore {
                    store: name.to_string(),
                    reason: "it is a key-value store".into(),
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bounds() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff\xff"), None);
        assert_eq!(prefix_upper_bound(b""), None);
    }

    #[test]
    fn empty_ranges() {
        use Bound::*;
        assert!(is_empty_range(Included(b"b"), Included(b"a")));
        assert!(!is_empty_range(Included(b"a"), Included(b"a")));
        assert!(is_empty_range(Included(b"a"), Excluded(b"a")));
        assert!(is_empty_range(Excluded(b"a"), Included(b"a")));
        assert!(!is_empty_range(Unbounded, Excluded(b"a")));
    }
}
