//! `stream` and `table`: where records enter a topology.

use std::sync::Arc;

use super::table::TableChildren;
use crate::dsl::options::TimestampExtractor;
use crate::dsl::{Consumed, Data, Materialized, Stream, StreamsBuilder, Table};
use crate::error::{Error, StoreError, TopologyError};
use crate::processor::node::{BuildEnv, ErasedNode, NodeSpec, SourceNode};
use crate::record::{Headers, RawRecord, Record};
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext, SerdeError};
use crate::state::changelog::{PROVENANCE_HEADER, decode_provenance};
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topic::Topic;
use crate::topology::{NodeKind, TopicRef};

/// Decodes raw records of one topic and forwards them.
pub(crate) struct SourceSpec<K, V> {
    pub(crate) topic: TopicRef,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    /// Reads a repartition topic: drop copies of records already processed.
    pub(crate) dedup: bool,
    /// Materializes into this store (a table source).
    pub(crate) table: Option<TableStore<K, V>>,
    /// Takes each record's timestamp from the record (and moves the task's stream time by it).
    pub(crate) extractor: Option<TimestampExtractor<K, V>>,
}

pub(crate) struct TableStore<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    /// Writes and forwards nothing when a record leaves the stored value as it is.
    pub(crate) emit_on_change: bool,
}

impl<K, V> Clone for TableStore<K, V> {
    fn clone(&self) -> Self {
        TableStore {
            name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            emit_on_change: self.emit_on_change,
        }
    }
}

struct SourceNodeImpl<K, V> {
    topic: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    dedup: bool,
    table: Option<(TableStore<K, V>, usize)>,
    extractor: Option<TimestampExtractor<K, V>>,
    name: Arc<str>,
    children: TableChildren<K, V>,
    counter: Arc<std::sync::atomic::AtomicU64>,
    scratch: Vec<u8>,
}

impl<K: Data, V: Data> SourceNode for SourceNodeImpl<K, V> {
    fn process_raw(&mut self, raw: &RawRecord, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut headers = raw.headers.clone();
        if self.dedup {
            if let Some((upstream, partition, offset, sub)) = raw
                .headers
                .last(PROVENANCE_HEADER)
                .and_then(decode_provenance)
                && cx
                    .state
                    .is_duplicate(&self.topic, upstream, partition, offset, sub)
            {
                cx.env.metrics.duplicates_dropped.incr();
                return Ok(());
            }
            headers.remove_all(PROVENANCE_HEADER);
        }
        let key_bytes = raw.key.as_deref().unwrap_or_default();
        let key = match cx.decode(&*self.key, SerdeContext::key(&self.topic), key_bytes) {
            Ok(k) => k,
            Err(e) => return cx.deserialization_error(e),
        };
        if let Some((store, index)) = &self.table {
            return self.materialize(store.clone(), *index, key, raw, headers, cx);
        }
        let Some(value_bytes) = raw.value.as_deref() else {
            return cx.deserialization_error(SerdeError::Malformed {
                format: "record",
                reason: "a tombstone (null value) in a stream topic".into(),
            });
        };
        let value = match cx.decode(&*self.value, SerdeContext::value(&self.topic), value_bytes) {
            Ok(v) => v,
            Err(e) => return cx.deserialization_error(e),
        };
        let mut timestamp = raw.timestamp;
        if let Some(extract) = &self.extractor {
            timestamp = extract(&key, &value, raw.timestamp);
            if timestamp < 0 {
                let error = format!("the timestamp extractor returned {timestamp} (negative)");
                return cx.processing_error(&self.name, error.into());
            }
            if timestamp > cx.stream_time {
                cx.stream_time = timestamp;
                cx.state.set_stream_time(timestamp);
            }
        }
        self.children.forward(
            Record {
                key,
                value,
                timestamp,
                headers,
            },
            cx,
        )
    }

    fn extracts_timestamps(&self) -> bool {
        self.extractor.is_some()
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

impl<K: Data, V: Data> SourceNodeImpl<K, V> {
    fn materialize(
        &mut self,
        store: TableStore<K, V>,
        index: usize,
        key: K,
        raw: &RawRecord,
        headers: Headers,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        // Store bytes as they are when the store shares the topic's serdes; re-encode otherwise.
        let key_bytes: Vec<u8> = if Arc::ptr_eq(&store.key, &self.key) {
            raw.key.as_deref().unwrap_or_default().to_vec()
        } else {
            let mut out = Vec::new();
            cx.encode(&*store.key, SerdeContext::key(&store.name), &key, &mut out)
                .map_err(|e| Error::store(store.name.clone(), StoreError::Serde(e)))?;
            out
        };
        let Some(value_bytes) = raw.value.as_deref() else {
            if store.emit_on_change && cx.state.get(index, &key_bytes)?.is_none() {
                return Ok(());
            }
            let ts = raw.timestamp;
            cx.state.put(index, &key_bytes, None, ts, cx.out)?;
            return self.children.forward_delete(key, ts, headers, cx);
        };
        let value = match cx.decode(&*self.value, SerdeContext::value(&self.topic), value_bytes) {
            Ok(v) => v,
            Err(e) => return cx.deserialization_error(e),
        };
        let stored: &[u8] = if Arc::ptr_eq(&store.value, &self.value) {
            value_bytes
        } else {
            self.scratch.clear();
            cx.encode(
                &*store.value,
                SerdeContext::value(&store.name),
                &value,
                &mut self.scratch,
            )
            .map_err(|e| Error::store(store.name.clone(), StoreError::Serde(e)))?;
            &self.scratch
        };
        if store.emit_on_change && cx.state.get(index, &key_bytes)?.as_deref() == Some(stored) {
            return Ok(());
        }
        cx.state
            .put(index, &key_bytes, Some(stored), raw.timestamp, cx.out)?;
        self.children.forward(
            Record {
                key,
                value,
                timestamp: raw.timestamp,
                headers,
            },
            cx,
        )
    }
}

impl<K: Data, V: Data> NodeSpec for SourceSpec<K, V> {
    fn instantiate(
        &self,
        children: Vec<ErasedNode>,
        env: &BuildEnv<'_>,
    ) -> Result<ErasedNode, Error> {
        let table = match &self.table {
            Some(t) => Some((t.clone(), env.store(&t.name)?)),
            None => None,
        };
        let node: Box<dyn SourceNode> = Box::new(SourceNodeImpl {
            topic: (env.resolve_topic)(&self.topic),
            key: self.key.clone(),
            value: self.value.clone(),
            dedup: self.dedup,
            table,
            extractor: self.extractor.clone(),
            name: env.name.clone(),
            children: TableChildren::new(children)?,
            counter: env.counter.clone(),
            scratch: Vec::new(),
        });
        Ok(Box::new(node))
    }

    fn share(&self, node: ErasedNode, _n: usize) -> Vec<ErasedNode> {
        vec![node]
    }
}

impl StreamsBuilder {
    /// The records of `topic`, as a stream. The source node is called `<topic>-source`.
    pub fn stream<K: Data, V: Data>(&self, topic: &Topic<K, V>) -> Stream<K, V> {
        self.stream_with(topic, Consumed::new())
    }

    /// The records of `topic`, as a stream read as `consumed` says (where their timestamps
    /// come from, see [`Consumed`]). The source node is called `<topic>-source`.
    pub fn stream_with<K: Data, V: Data>(
        &self,
        topic: &Topic<K, V>,
        consumed: Consumed<K, V>,
    ) -> Stream<K, V> {
        let spec = SourceSpec {
            topic: TopicRef::External(topic.shared_name()),
            key: topic.key_serde().clone(),
            value: topic.value_serde().clone(),
            dedup: false,
            table: None,
            extractor: consumed.extractor,
        };
        let node = self.graph.borrow_mut().add(
            Some(format!("{}-source", topic.name())),
            "source",
            NodeKind::Source {
                topic: TopicRef::External(topic.shared_name()),
                key_serde: topic.key_serde().describe(),
                value_serde: topic.value_serde().describe(),
            },
            vec![],
            vec![],
            Arc::new(spec),
        );
        Stream {
            graph: self.graph.clone(),
            node,
            key_serde: Some(topic.key_serde().clone()),
            value_serde: Some(topic.value_serde().clone()),
            repartition_required: false,
        }
    }

    /// The records of `topic` read as a table: the latest value per key, kept in the store
    /// named by `materialized` (tombstones delete). Serdes not given in `materialized` are the
    /// topic's.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &Topic<K, V>,
        materialized: Materialized<K, V>,
    ) -> Table<K, V> {
        let key = materialized
            .key_serde
            .clone()
            .unwrap_or_else(|| topic.key_serde().clone());
        let value = materialized
            .value_serde
            .clone()
            .unwrap_or_else(|| topic.value_serde().clone());
        let store_name = materialized.name.clone();
        let def = StoreDef {
            name: store_name.clone(),
            kind: StoreKind::KeyValue,
            backend: materialized.backend,
            logging: materialized.logging,
            caching: false,
            serdes: Arc::new(StoreSerdes {
                key: key.clone(),
                value: value.clone(),
            }),
            key_describe: key.describe(),
            value_describe: value.describe(),
        };
        let spec = SourceSpec {
            topic: TopicRef::External(topic.shared_name()),
            key: topic.key_serde().clone(),
            value: topic.value_serde().clone(),
            dedup: false,
            table: Some(TableStore {
                name: store_name.clone(),
                key: key.clone(),
                value: value.clone(),
                emit_on_change: materialized.emit_on_change,
            }),
            extractor: None,
        };
        let mut graph = self.graph.borrow_mut();
        graph.stores.push(Arc::new(def));
        let node = graph.add(
            Some(format!("{}-table-source", topic.name())),
            "table-source",
            NodeKind::Source {
                topic: TopicRef::External(topic.shared_name()),
                key_serde: topic.key_serde().describe(),
                value_serde: topic.value_serde().describe(),
            },
            vec![],
            vec![store_name.clone()],
            Arc::new(spec),
        );
        drop(graph);
        Table {
            graph: self.graph.clone(),
            node,
            store: store_name,
            key_serde: key,
            value_serde: value,
            changes: true,
        }
    }
}

/// Records a missing-serde error for a node.
pub(crate) fn missing_serde(node: &str, what: &str) -> TopologyError {
    TopologyError::Invalid {
        node: node.to_string(),
        reason: format!(
            "needs a {what} serde and none is known here: give one (Materialized/Grouped \
             with_{what}_serde, or Stream::with_serdes after a map)"
        ),
    }
}
