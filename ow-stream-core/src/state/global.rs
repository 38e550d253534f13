//! Global stores: the store behind a [`GlobalTable`](crate::dsl::GlobalTable), a full copy of
//! its topic on every instance.
//!
//! Unlike a task's shard, a global store holds every partition of its topic, and the topic
//! itself is its changelog: there is no `-changelog` topic. Next to the data it keeps, per
//! partition, the next offset to read (its checkpoint, Kafka Streams' `.checkpoint` file of
//! the global state directory). A persistent global store writes both in one redb
//! transaction, in `<state_dir>/<application_id>/global/<store>.redb`, so after a crash it
//! resumes exactly where its data is; an in-memory one starts again from the beginning of the
//! topic.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::StoreDef;
use super::query::{QueryBase, QueryHandle};
use crate::config::{OnError, StoreBackend};
use crate::error::{Error, StoreError};
use crate::record::{Headers, RawRecord};
use crate::serde::SerdeError;

/// Checks that a record of a global topic decodes with the topic's serdes.
pub(crate) type DecodeCheck = Arc<dyn Fn(&RawRecord) -> Result<(), SerdeError> + Send + Sync>;

/// A global store as the topology declares it.
pub(crate) struct GlobalStoreDef {
    /// The store (key-value, no changelog: the topic is its changelog).
    pub(crate) store: Arc<StoreDef>,
    /// The topic it copies.
    pub(crate) topic: Arc<str>,
    /// Its source node's name, for `describe()`.
    pub(crate) source_name: Arc<str>,
    /// Its processor node's name (the node that writes the store), for `describe()`.
    pub(crate) processor_name: Arc<str>,
    /// Decodes a record, to apply the deserialization-error policy before it is stored.
    pub(crate) check: DecodeCheck,
    /// The topic's key and value serdes, described.
    pub(crate) key_describe: String,
    pub(crate) value_describe: String,
}

/// The global stores of a running application, by store name, as the joins read them.
pub(crate) type GlobalStores = Arc<RwLock<HashMap<Arc<str>, QueryHandle>>>;

const POSITIONS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("__ow_global_positions");

fn data_table(store: &str) -> String {
    format!("global:{store}")
}

enum Data {
    Memory(Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>),
    Redb {
        db: Arc<redb::Database>,
        table: String,
    },
}

/// What [`GlobalStore::apply`] did with one record.
pub(crate) enum Applied {
    /// Written (or deleted, or skipped as the policy says).
    Done,
    /// Undecodable, and the policy dead-letters it: these headers go with its bytes to the
    /// dead-letter topic.
    DeadLetter(Headers),
}

/// One global store, open.
pub(crate) struct GlobalStore {
    def: Arc<GlobalStoreDef>,
    data: Data,
    /// Next offset to read, per partition (the checkpoint).
    positions: BTreeMap<i32, i64>,
    /// Writes since the last [`GlobalStore::commit`] (`None`: delete), for persistent stores.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl GlobalStore {
    /// Opens `def`'s store: in memory, or in `dir/<store>.redb` with the checkpoint it holds.
    pub(crate) fn open(
        def: Arc<GlobalStoreDef>,
        dir: &Path,
        default_backend: StoreBackend,
    ) -> Result<GlobalStore, Error> {
        let name = def.store.name.clone();
        let redb_err = |e: redb::Error| Error::store(name.clone(), StoreError::redb(e));
        let (data, positions) = match def.store.backend.unwrap_or(default_backend) {
            StoreBackend::InMemory => (Data::Memory(Arc::default()), BTreeMap::new()),
            StoreBackend::Persistent => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let path = dir.join(format!("{name}.redb"));
                let db = redb::Database::create(&path).map_err(|e| redb_err(e.into()))?;
                let table = data_table(&name);
                let txn = db.begin_write().map_err(|e| redb_err(e.into()))?;
                let mut positions = BTreeMap::new();
                {
                    txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&table))
                        .map_err(|e| redb_err(e.into()))?;
                    let meta = txn.open_table(POSITIONS).map_err(|e| redb_err(e.into()))?;
                    if let Some(raw) = meta.get(&*name).map_err(|e| redb_err(e.into()))? {
                        positions = serde_json::from_slice(raw.value()).map_err(|e| {
                            Error::store(
                                name.clone(),
                                StoreError::Io {
                                    path: path.clone(),
                                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                                },
                            )
                        })?;
                    }
                }
                txn.commit().map_err(|e| redb_err(e.into()))?;
                (
                    Data::Redb {
                        db: Arc::new(db),
                        table,
                    },
                    positions,
                )
            }
        };
        Ok(GlobalStore {
            def,
            data,
            positions,
            pending: BTreeMap::new(),
        })
    }

    /// The store's declaration.
    pub(crate) fn def(&self) -> &Arc<GlobalStoreDef> {
        &self.def
    }

    /// The next offset to read in each partition read so far.
    pub(crate) fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    /// A read view of the committed data, for joins and interactive queries.
    pub(crate) fn query_handle(&self) -> QueryHandle {
        QueryHandle {
            base: match &self.data {
                Data::Memory(map) => QueryBase::Memory(map.clone()),
                Data::Redb { db, table } => QueryBase::Redb {
                    db: db.clone(),
                    table: table.clone(),
                    pending: Default::default(),
                },
            },
            cache: None,
        }
    }

    /// Applies one record of the topic: a tombstone deletes its key, a record without a key
    /// is skipped (as Kafka Streams does), an undecodable one follows `policy`. Moves the
    /// partition's position past the record.
    pub(crate) fn apply(
        &mut self,
        raw: &RawRecord,
        policy: OnError,
        application_id: &str,
    ) -> Result<Applied, Error> {
        self.positions.insert(raw.partition, raw.offset + 1);
        let Some(key) = raw.key.as_deref() else {
            tracing::warn!(
                store = %self.def.store.name, topic = %raw.topic, partition = raw.partition,
                offset = raw.offset, "skipping a record without a key in a global table's topic"
            );
            return Ok(Applied::Done);
        };
        if let Err(error) = (self.def.check)(raw) {
            let error = match error {
                SerdeError::Registry(e) if e.is_transient() => return Err(Error::Registry(e)),
                other => other,
            };
            return match policy {
                OnError::Fail => Err(Error::Deserialize {
                    topic: raw.topic.clone(),
                    partition: raw.partition,
                    offset: raw.offset,
                    source: error,
                    record: Some(Box::new(raw.clone())),
                }),
                OnError::LogAndSkip => {
                    tracing::warn!(
                        store = %self.def.store.name, topic = %raw.topic,
                        partition = raw.partition, offset = raw.offset, error = %error,
                        "skipping a global table record that cannot be decoded"
                    );
                    Ok(Applied::Done)
                }
                OnError::DeadLetter => Ok(Applied::DeadLetter(dead_letter_headers(
                    raw,
                    &self.def.processor_name,
                    &error.to_string(),
                    application_id,
                ))),
            };
        }
        let value = raw.value.as_deref().map(<[u8]>::to_vec);
        match &self.data {
            Data::Memory(map) => {
                let mut map = map.write();
                match value {
                    Some(v) => map.insert(key.to_vec(), v),
                    None => map.remove(key),
                };
            }
            Data::Redb { .. } => {
                self.pending.insert(key.to_vec(), value);
            }
        }
        Ok(Applied::Done)
    }

    /// Makes what was applied durable together with the positions it reflects (one redb
    /// transaction; nothing to do in memory).
    pub(crate) fn commit(&mut self) -> Result<(), Error> {
        let Data::Redb { db, table } = &self.data else {
            return Ok(());
        };
        let name = self.def.store.name.clone();
        let redb_err = |e: redb::Error| Error::store(name.clone(), StoreError::redb(e));
        let txn = db.begin_write().map_err(|e| redb_err(e.into()))?;
        {
            let mut t = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .map_err(|e| redb_err(e.into()))?;
            for (k, v) in std::mem::take(&mut self.pending) {
                match v {
                    Some(v) => t.insert(k.as_slice(), v.as_slice()),
                    None => t.remove(k.as_slice()),
                }
                .map_err(|e| redb_err(e.into()))?;
            }
            let positions = serde_json::to_vec(&self.positions).map_err(|e| {
                Error::store(
                    name.clone(),
                    StoreError::Io {
                        path: "global checkpoint".into(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    },
                )
            })?;
            let mut meta = txn.open_table(POSITIONS).map_err(|e| redb_err(e.into()))?;
            meta.insert(&*name, positions.as_slice())
                .map_err(|e| redb_err(e.into()))?;
        }
        txn.commit().map_err(|e| redb_err(e.into()))?;
        Ok(())
    }

    /// Number of keys (for logs).
    pub(crate) fn len(&self) -> Result<u64, Error> {
        match &self.data {
            Data::Memory(map) => Ok(map.read().len() as u64),
            Data::Redb { db, table } => {
                let name = self.def.store.name.clone();
                let redb_err = |e: redb::Error| Error::store(name.clone(), StoreError::redb(e));
                let read = db.begin_read().map_err(|e| redb_err(e.into()))?;
                let t = read
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                    .map_err(|e| redb_err(e.into()))?;
                t.len().map_err(|e| redb_err(e.into()))
            }
        }
    }
}

/// The provenance headers of a dead-lettered global table record (stage `deserialize`), as a
/// stream thread writes them.
fn dead_letter_headers(raw: &RawRecord, node: &str, error: &str, application: &str) -> Headers {
    use crate::processor::dead_letter_headers as h;
    let mut headers = raw.headers.clone();
    headers.insert(h::TOPIC, Some(Bytes::copy_from_slice(raw.topic.as_bytes())));
    headers.insert(h::PARTITION, Some(Bytes::from(raw.partition.to_string())));
    headers.insert(h::OFFSET, Some(Bytes::from(raw.offset.to_string())));
    headers.insert(h::TIMESTAMP, Some(Bytes::from(raw.timestamp.to_string())));
    headers.insert(h::STAGE, Some(Bytes::from_static(b"deserialize")));
    headers.insert(h::NODE, Some(Bytes::copy_from_slice(node.as_bytes())));
    headers.insert(h::ERROR, Some(Bytes::copy_from_slice(error.as_bytes())));
    headers.insert(
        h::APPLICATION,
        Some(Bytes::copy_from_slice(application.as_bytes())),
    );
    headers
}
