//! State stores: named, partitioned, changelog-backed key-value and window stores.
//!
//! Every stateful operator of the DSL keeps its state in a store named by its
//! [`Materialized`](crate::dsl::Materialized). A store is split like its input topic: each task
//! (one partition of a sub-topology) owns one shard. A shard lives either in memory or in a
//! [redb](https://docs.rs/redb) file under the state directory, and every change is also written
//! to the store's **changelog topic** `<application_id>-<store>-changelog`, so a shard can be
//! rebuilt on another machine, or after its files are lost.
//!
//! # Guarantee
//! Store writes, the input offsets they reflect and the de-duplication marks of repartitioned
//! records commit together: in one redb transaction locally, and as a commit marker in the
//! changelog (see the `changelog` module). After a crash, a task resumes from the offsets its
//! state reflects, so no record is ever counted twice into a store, although output records
//! written between the last commit and the crash are written again (at-least-once on the wire).
//!
//! Under [`ProcessingGuarantee::ExactlyOnce`](crate::config::ProcessingGuarantee) the changelog
//! records and markers are part of the stream thread's transaction, and the redb commit comes
//! after the transaction's: the checkpoint in redb names the changelog position (after the
//! marker) it reflects, so when a crash falls between the two commits, restore reads the
//! changelog from that position, read committed, up to the transaction's marker, and the store
//! is where the committed outputs and offsets are. Changelogs are always restored read
//! committed: an aborted transaction's store writes never reach a store.
//!
//! # Reading stores
//! Inside a topology, custom processors use [`KeyValueStore`]. From outside, a running
//! application or the test driver hands out [`ReadOnlyKeyValueStore`] and
//! [`ReadOnlyWindowStore`] views (interactive queries).

pub(crate) mod cache;
pub(crate) mod changelog;
pub(crate) mod global;
pub(crate) mod manager;
pub(crate) mod query;
pub(crate) mod window;

use std::any::Any;
use std::sync::Arc;

pub(crate) use manager::{ChangelogRange, ChangelogReader, StateManager};
pub(crate) use query::StoreRegistry;
pub use query::{ReadOnlyKeyValueStore, ReadOnlyWindowStore};

use crate::config::StoreBackend;
use crate::error::{Error, StoreError};
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext};

/// What a store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// Keys to values.
    KeyValue,
    /// (window start, key) to values.
    Window {
        /// Window size in milliseconds.
        size_ms: i64,
        /// How long windows are kept after their end, in milliseconds (at least the grace).
        retention_ms: i64,
    },
    /// The buffers of a stream–stream join: a side's records by (key, timestamp, sequence),
    /// or the unjoined records of both sides by (timestamp, side, key, sequence).
    JoinWindow {
        /// Join window size (before + after) in milliseconds.
        size_ms: i64,
        /// How long records are kept, by stream time (window size + grace).
        retention_ms: i64,
    },
}

/// A store as the topology declares it.
pub(crate) struct StoreDef {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StoreKind,
    /// `None`: the application's default.
    pub(crate) backend: Option<StoreBackend>,
    /// Whether changes go to a changelog topic.
    pub(crate) logging: bool,
    /// Whether updates collapse in a record cache (aggregations only; see `cache`).
    pub(crate) caching: bool,
    /// `StoreSerdes<K, V>`, type-erased.
    pub(crate) serdes: Arc<dyn Any + Send + Sync>,
    pub(crate) key_describe: String,
    pub(crate) value_describe: String,
}

impl std::fmt::Debug for StoreDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The serdes of a store's keys and values.
pub(crate) struct StoreSerdes<K, V> {
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
}

impl StoreDef {
    pub(crate) fn serdes<K: 'static, V: 'static>(&self) -> Result<&StoreSerdes<K, V>, Error> {
        self.serdes
            .downcast_ref::<StoreSerdes<K, V>>()
            .ok_or_else(|| Error::UnknownStore {
                store: self.name.to_string(),
                reason: format!(
                    "it holds other types than {} -> {}",
                    std::any::type_name::<K>(),
                    std::any::type_name::<V>()
                ),
            })
    }
}

/// A typed key-value store, as a custom [`Processor`](crate::processor::Processor) sees it.
///
/// Writes go to the task's shard and its changelog; they commit with the input offsets.
pub struct KeyValueStore<'c, 'a, K, V> {
    cx: &'c mut TaskCx<'a>,
    index: usize,
    name: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    scratch: Vec<u8>,
}

impl<'c, 'a, K: 'static, V: 'static> KeyValueStore<'c, 'a, K, V> {
    pub(crate) fn new(cx: &'c mut TaskCx<'a>, index: usize) -> Result<Self, Error> {
        let def = cx.state.def(index).clone();
        let serdes = def.serdes::<K, V>()?;
        Ok(KeyValueStore {
            key: serdes.key.clone(),
            value: serdes.value.clone(),
            name: def.name.clone(),
            cx,
            index,
            scratch: Vec::new(),
        })
    }

    fn key_bytes(&mut self, key: &K) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.cx
            .encode(&*self.key, SerdeContext::key(&self.name), key, &mut out)
            .map_err(|e| Error::store(self.name.clone(), e))?;
        Ok(out)
    }

    /// The value of `key`.
    pub fn get(&mut self, key: &K) -> Result<Option<V>, Error> {
        let k = self.key_bytes(key)?;
        match self.cx.state.get(self.index, &k)? {
            None => Ok(None),
            Some(bytes) => self
                .cx
                .decode(&*self.value, SerdeContext::value(&self.name), &bytes)
                .map(Some)
                .map_err(|e| Error::store(self.name.clone(), StoreError::Serde(e))),
        }
    }

    /// Sets the value of `key`.
    pub fn put(&mut self, key: &K, value: &V) -> Result<(), Error> {
        let k = self.key_bytes(key)?;
        self.scratch.clear();
        let mut buf = std::mem::take(&mut self.scratch);
        self.cx
            .encode(
                &*self.value,
                SerdeContext::value(&self.name),
                value,
                &mut buf,
            )
            .map_err(|e| Error::store(self.name.clone(), e))?;
        let ts = self.cx.stream_time;
        let result = self
            .cx
            .state
            .put(self.index, &k, Some(&buf), ts, self.cx.out);
        self.scratch = buf;
        result
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &K) -> Result<(), Error> {
        let k = self.key_bytes(key)?;
        let ts = self.cx.stream_time;
        self.cx.state.put(self.index, &k, None, ts, self.cx.out)
    }
}
