//! `count`, `reduce`, `aggregate`, `aggregate_option`: per-key state in a named store.

use std::sync::Arc;

use super::source::missing_serde;
use super::table::{TableChildren, TableSpec};
use crate::dsl::{Data, GraphRef, GroupedStream, Materialized, Stream, Table};
use crate::error::{Error, StoreError};
use crate::processor::node::{Children, Node, NodeSpec};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::serde::{JsonSerde, Serde, SerdeContext, SerdeError};
use crate::state::cache::CacheEntry;
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topology::NodeKind;

pub(crate) type Aggregator<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// `count`'s aggregator (every kind of window and none): one more per record.
pub(crate) fn counting<K, V>() -> Aggregator<K, V, i64> {
    Arc::new(|_, _, old: Option<i64>| old.unwrap_or(0) + 1)
}

/// `reduce`'s aggregator: a key's first value, then `reducer(aggregate, value)`.
pub(crate) fn reducing<K, V: 'static>(
    reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
) -> Aggregator<K, V, V> {
    Arc::new(move |_, v, old| match old {
        Some(acc) => reducer(acc, v),
        None => v,
    })
}

/// `aggregate`'s aggregator: `aggregator(key, value, current)`, where a key's current
/// aggregate starts as `initializer()`.
pub(crate) fn folding<K, V, A: 'static>(
    initializer: impl Fn() -> A + Send + Sync + 'static,
    aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
) -> Aggregator<K, V, A> {
    Arc::new(move |k, v, old| aggregator(k, v, old.unwrap_or_else(&initializer)))
}

/// A serde standing in where none is known; the topology fails to build before it is used.
pub(crate) struct Unavailable;

impl<T: 'static> Serde<T> for Unavailable {
    fn serialize_into(
        &self,
        _: SerdeContext<'_>,
        _: &T,
        _: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        Err(SerdeError::custom("no serde"))
    }
    fn deserialize(&self, _: SerdeContext<'_>, _: &[u8]) -> Result<T, SerdeError> {
        Err(SerdeError::custom("no serde"))
    }
}

/// Encodes `value` for `store` into `buf` (cleared first): a store's keys and values.
pub(crate) fn encode_for_store<T: 'static>(
    cx: &TaskCx<'_>,
    store: &Arc<str>,
    serde: &dyn Serde<T>,
    ctx: SerdeContext<'_>,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    buf.clear();
    cx.encode(serde, ctx, value, buf)
        .map_err(|e| Error::store(store.clone(), StoreError::Serde(e)))
}

struct KvAggregateNode<K, V, A> {
    store: Arc<str>,
    index: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<A>>,
    f: Aggregator<K, V, A>,
    /// Writes and forwards nothing when the new value's bytes equal the stored ones.
    emit_on_change: bool,
    children: TableChildren<K, A>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl<K: Data, V: Data, A: Data> Node<K, V> for KvAggregateNode<K, V, A> {
    fn process(&mut self, r: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let store_err =
            |store: &Arc<str>, e: SerdeError| Error::store(store.clone(), StoreError::Serde(e));
        self.key_buf.clear();
        cx.encode(
            &*self.key,
            SerdeContext::key(&self.store),
            &r.key,
            &mut self.key_buf,
        )
        .map_err(|e| store_err(&self.store, e))?;
        let old_bytes = cx.state.get(self.index, &self.key_buf)?;
        let old = match &old_bytes {
            Some(bytes) => Some(
                cx.decode(&*self.value, SerdeContext::value(&self.store), bytes)
                    .map_err(|e| store_err(&self.store, e))?,
            ),
            None => None,
        };
        let new = (self.f)(&r.key, r.value, old);
        self.value_buf.clear();
        cx.encode(
            &*self.value,
            SerdeContext::value(&self.store),
            &new,
            &mut self.value_buf,
        )
        .map_err(|e| store_err(&self.store, e))?;
        if self.emit_on_change && old_bytes.as_deref() == Some(self.value_buf.as_slice()) {
            return Ok(());
        }
        if cx.state.caching(self.index) {
            let full = cx.state.put_cached(
                self.index,
                &self.key_buf,
                Some(&self.value_buf),
                r.timestamp,
                &r.headers,
                cx.out,
            )?;
            return if full { self.flush(cx) } else { Ok(()) };
        }
        cx.state.put(
            self.index,
            &self.key_buf,
            Some(&self.value_buf),
            r.timestamp,
            cx.out,
        )?;
        self.children.forward(
            Record {
                key: r.key,
                value: new,
                timestamp: r.timestamp,
                headers: r.headers,
            },
            cx,
        )
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        if cx.flush_caches {
            self.flush(cx)?;
        }
        self.children.punctuate(cx)
    }
}

impl<K: Data, V: Data, A: Data> KvAggregateNode<K, V, A> {
    /// Writes the store's record cache to the store and its changelog, and forwards the
    /// newest value of each key it held.
    fn flush(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let flushed = cx
            .state
            .flush_cache(self.index, self.emit_on_change, cx.out)?;
        if flushed.is_empty() {
            return Ok(());
        }
        let store_err =
            |store: &Arc<str>, e: SerdeError| Error::store(store.clone(), StoreError::Serde(e));
        forward_flushed(
            cx,
            flushed,
            |cx, key, entry| {
                let Some(value) = &entry.value else {
                    return Ok(None);
                };
                let key = cx
                    .decode(&*self.key, SerdeContext::key(&self.store), &key)
                    .map_err(|e| store_err(&self.store, e))?;
                let value = cx
                    .decode(&*self.value, SerdeContext::value(&self.store), value)
                    .map_err(|e| store_err(&self.store, e))?;
                Ok(Some(Record {
                    key,
                    value,
                    timestamp: entry.timestamp,
                    headers: entry.headers,
                }))
            },
            &mut self.children,
        )
    }
}

/// Where a node forwards its records: its children, or a table's children (see
/// [`TableChildren`](super::table::TableChildren)).
pub(crate) trait Forward<K, V> {
    /// Sends `record` on.
    fn forward(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error>;
}

impl<K: Data, V: Data> Forward<K, V> for Children<K, V> {
    fn forward(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        Children::forward(self, record, cx)
    }
}

/// Forwards the updates a record cache flush wrote, each turned into a record by `record`
/// (`None`: nothing to forward), outside of any input record: what a flush forwards is caused
/// by many records, so it carries none's provenance (see the `cache` module).
pub(crate) fn forward_flushed<K: Data, V: Data>(
    cx: &mut TaskCx<'_>,
    flushed: Vec<(Vec<u8>, CacheEntry)>,
    mut record: impl FnMut(&mut TaskCx<'_>, Vec<u8>, CacheEntry) -> Result<Option<Record<K, V>>, Error>,
    children: &mut impl Forward<K, V>,
) -> Result<(), Error> {
    let input = cx.input.take();
    let mut result = Ok(());
    for (key, entry) in flushed {
        result = match record(cx, key, entry) {
            Ok(Some(r)) => children.forward(r, cx),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            break;
        }
    }
    cx.input = input;
    result
}

/// Declares the store `materialized` names, of `kind` with the given serdes, in `graph`.
/// Returns its name.
pub(crate) fn declare_store<SK: 'static, SV: 'static>(
    graph: &GraphRef,
    materialized: &Materialized<impl Sized, impl Sized>,
    kind: StoreKind,
    (key, value): (Arc<dyn Serde<SK>>, Arc<dyn Serde<SV>>),
) -> Arc<str> {
    let store = materialized.name.clone();
    let def = StoreDef {
        name: store.clone(),
        kind,
        backend: materialized.backend,
        logging: materialized.logging,
        caching: materialized.caching,
        key_describe: key.describe(),
        value_describe: value.describe(),
        serdes: Arc::new(StoreSerdes { key, value }),
    };
    graph.borrow_mut().stores.push(Arc::new(def));
    store
}

/// The node that folds each record into its key's aggregate in the key-value store `store`
/// (several such nodes may share one store: a `cogroup`).
pub(crate) fn kv_aggregate_spec<K: Data, V: Data, A: Data>(
    store: Arc<str>,
    (key, value): (Arc<dyn Serde<K>>, Arc<dyn Serde<A>>),
    f: Aggregator<K, V, A>,
    emit_on_change: bool,
) -> TableSpec<K, V, K, A> {
    TableSpec::<K, V, K, A>::new(move |children, env| {
        Ok(Box::new(KvAggregateNode {
            store: store.clone(),
            index: env.store(&store)?,
            key: key.clone(),
            value: value.clone(),
            f: f.clone(),
            emit_on_change,
            children,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
        }))
    })
}

impl<K: Data, V: Data> GroupedStream<K, V> {
    /// Resolves the serdes of a store, recording an error when one is unknown.
    pub(crate) fn store_serdes<A: Data>(
        &self,
        materialized: &Materialized<K, A>,
        default_value: Option<Arc<dyn Serde<A>>>,
    ) -> (Arc<dyn Serde<K>>, Arc<dyn Serde<A>>) {
        let key = materialized
            .key_serde
            .clone()
            .or_else(|| self.stream.key_serde.clone());
        let value = materialized.value_serde.clone().or(default_value);
        let key = key.unwrap_or_else(|| {
            self.stream
                .graph
                .borrow_mut()
                .error(missing_serde(&materialized.name, "key"));
            Arc::new(Unavailable)
        });
        let value = value.unwrap_or_else(|| {
            self.stream
                .graph
                .borrow_mut()
                .error(missing_serde(&materialized.name, "value"));
            Arc::new(Unavailable)
        });
        (key, value)
    }

    /// The stream an aggregation into the store `materialized` names reads: this one, or,
    /// when an operator upstream may have changed the key, the stream read back from the
    /// repartition topic `<application_id>-<store>-repartition`, as Kafka Streams does.
    pub(crate) fn input<A: Data>(&self, materialized: &Materialized<K, A>) -> Stream<K, V> {
        self.stream
            .repartitioned_if_needed(&materialized.name, materialized.key_serde.clone())
    }

    /// Declares the store `materialized` names, of `kind` with the given serdes, and adds
    /// the node that owns it after `input`: named after the store, built by `spec`. Returns
    /// the node's index.
    pub(crate) fn add_store_node<SK: 'static, SV: 'static>(
        input: &Stream<K, V>,
        materialized: &Materialized<K, impl Sized>,
        kind: StoreKind,
        serdes: (Arc<dyn Serde<SK>>, Arc<dyn Serde<SV>>),
        prefix: &str,
        spec: Arc<dyn NodeSpec>,
    ) -> usize {
        let store = declare_store(&input.graph, materialized, kind, serdes);
        input.graph.borrow_mut().add(
            Some(store.to_string()),
            prefix,
            NodeKind::Processor,
            vec![input.node],
            vec![store],
            spec,
        )
    }

    fn kv_aggregate<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value: Option<Arc<dyn Serde<A>>>,
        f: Aggregator<K, V, A>,
    ) -> Table<K, A> {
        let input = self.input(&materialized);
        let (key, value) = self.store_serdes(&materialized, default_value);
        let store = materialized.name.clone();
        let spec = kv_aggregate_spec(
            store.clone(),
            (key.clone(), value.clone()),
            f,
            materialized.emit_on_change,
        );
        let node = Self::add_store_node(
            &input,
            &materialized,
            StoreKind::KeyValue,
            (key.clone(), value.clone()),
            "aggregate",
            Arc::new(spec),
        );
        Table {
            graph: input.graph.clone(),
            node,
            store,
            key_serde: key,
            value_serde: value,
            changes: true,
        }
    }

    /// Counts records per key. The count is stored as JSON unless `materialized` says
    /// otherwise.
    pub fn count(&self, materialized: Materialized<K, i64>) -> Table<K, i64> {
        self.kv_aggregate(
            materialized,
            Some(Arc::new(JsonSerde::<i64>::new())),
            counting(),
        )
    }

    /// Combines the values of each key with `reducer(aggregate, value)`; the first value of a
    /// key is its first aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Table<K, V> {
        let default = self.stream.value_serde.clone();
        self.kv_aggregate(materialized, default, reducing(reducer))
    }

    /// Folds the values of each key into an aggregate that starts as `initializer()`.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::JsonSerde;
    ///
    /// let builder = StreamsBuilder::new();
    /// let scores: Topic<String, i64> = Topic::json("scores");
    /// let best = builder
    ///     .stream(&scores)
    ///     .group_by_key()
    ///     .aggregate(
    ///         || i64::MIN,
    ///         |_player, score, best: i64| best.max(score),
    ///         Materialized::as_("best-score").with_value_serde(JsonSerde::new()),
    ///     );
    /// assert_eq!(best.store_name(), "best-score");
    /// ```
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> Table<K, A> {
        self.kv_aggregate(materialized, None, folding(initializer, aggregator))
    }

    /// Folds the values of each key into an aggregate: `aggregator(key, value, current)`
    /// gets `None` for the first value of a key and returns the new aggregate. No placeholder
    /// initial value is needed (the form `count`, `reduce` and `aggregate` are written in).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::JsonSerde;
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Range { first: i64, min: i64, max: i64 }
    ///
    /// let builder = StreamsBuilder::new();
    /// let scores: Topic<String, i64> = Topic::json("scores");
    /// let ranges = builder.stream(&scores).group_by_key().aggregate_option(
    ///     |_player, score, range: Option<Range>| match range {
    ///         None => Range { first: score, min: score, max: score },
    ///         Some(r) => Range { min: r.min.min(score), max: r.max.max(score), ..r },
    ///     },
    ///     Materialized::as_("score-ranges").with_value_serde(JsonSerde::new()),
    /// );
    /// assert_eq!(ranges.store_name(), "score-ranges");
    /// ```
    pub fn aggregate_option<A: Data>(
        &self,
        aggregator: impl Fn(&K, V, Option<A>) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> Table<K, A> {
        self.kv_aggregate(materialized, None, Arc::new(aggregator))
    }
}
