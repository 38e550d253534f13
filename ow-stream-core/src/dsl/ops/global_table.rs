//! `global_table`, and `join_global` / `left_join_global`: a table copied whole onto every
//! instance, joined from a stream by a key taken from each record (Kafka Streams'
//! `GlobalKTable` and `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::{Data, GraphRef, Materialized, Stream, StreamsBuilder};
use crate::error::{Error, StoreError};
use crate::processor::node::fn_node;
use crate::record::Record;
use crate::serde::{Serde, SerdeContext, SerdeError, decode_blocking};
use crate::state::global::GlobalStoreDef;
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topic::Topic;

/// A table whose store holds **every** partition of its topic, on every instance of the
/// application (Kafka Streams' `GlobalKTable`), made by [`StreamsBuilder::global_table`].
///
/// Streams join it with [`Stream::join_global`] and [`Stream::left_join_global`] through a
/// key they compute from each record: no co-partitioning with the table's topic, and no
/// repartition topic. Its store is queryable on every instance
/// ([`Streams::key_value_store`](crate::runtime::Streams::key_value_store)) and sees all keys.
pub struct GlobalTable<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) store: Arc<str>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for GlobalTable<K, V> {
    fn clone(&self) -> Self {
        GlobalTable {
            graph: self.graph.clone(),
            store: self.store.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: Data, V: Data> GlobalTable<K, V> {
    /// The name of the global store (for interactive queries).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// The records of `topic` read as a **global** table: every instance keeps the latest
    /// value of every key of every partition in the store `materialized` names (tombstones
    /// delete, records without a key are skipped). The store's bytes are the topic's: the
    /// store uses the topic's serdes, and serdes given in `materialized` are ignored. The
    /// topic is the store's changelog (no `-changelog` topic is made, whatever
    /// `materialized` says about logging).
    ///
    /// At start, an application reads the topic up to the end offsets of all its partitions
    /// before any stream thread processes a record (bootstrap); a dedicated global thread then
    /// keeps the store up to date. A persistent store resumes from the positions it
    /// checkpointed; one in memory, or one whose state directory was lost, is rebuilt from
    /// the beginning of the topic. An undecodable record follows the application's
    /// deserialization-error policy (a dead-lettered one carries the usual provenance headers,
    /// stage `deserialize`); a global thread that fails puts the application in
    /// [`StreamsState::Error`](crate::runtime::StreamsState::Error).
    ///
    /// Updates apply in the order the global thread reads them, not by timestamp: a stream
    /// record joins with whatever the store holds when it is processed (as in Kafka Streams,
    /// global tables are not time-synchronized with the streams that join them).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let countries: Topic<String, String> = Topic::json("countries");
    /// let builder = StreamsBuilder::new();
    /// let names = builder.global_table(&countries, Materialized::as_("country-names"));
    /// assert_eq!(names.store_name(), "country-names");
    /// builder.stream(&Topic::<String, String>::json("visits")).to(&Topic::json("out"));
    ///
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&countries).pipe_input("fr".into(), "France".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>("country-names").unwrap();
    /// assert_eq!(store.get(&"fr".into()).unwrap(), Some("France".into()));
    /// ```
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &Topic<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalTable<K, V> {
        let key = topic.key_serde().clone();
        let value = topic.value_serde().clone();
        let name = materialized.name.clone();
        let store = Arc::new(StoreDef {
            name: name.clone(),
            kind: StoreKind::KeyValue,
            backend: materialized.backend,
            logging: false,
            caching: false,
            serdes: Arc::new(StoreSerdes {
                key: key.clone(),
                value: value.clone(),
            }),
            key_describe: key.describe(),
            value_describe: value.describe(),
        });
        let (k, v, topic_name) = (key.clone(), value.clone(), topic.shared_name());
        let check = Arc::new(
            move |raw: &crate::record::RawRecord| -> Result<(), SerdeError> {
                if let Some(bytes) = raw.key.as_deref() {
                    decode_blocking(&*k, SerdeContext::key(&topic_name), bytes)?;
                }
                if let Some(bytes) = raw.value.as_deref() {
                    decode_blocking(&*v, SerdeContext::value(&topic_name), bytes)?;
                }
                Ok(())
            },
        );
        self.graph
            .borrow_mut()
            .globals
            .push(Arc::new(GlobalStoreDef {
                store,
                topic: topic.shared_name(),
                source_name: format!("{name}-global-source").into(),
                processor_name: format!("{name}-global-table").into(),
                check,
                key_describe: key.describe(),
                value_describe: value.describe(),
            }));
        GlobalTable {
            graph: self.graph.clone(),
            store: name,
            key_serde: key,
            value_serde: value,
            _types: PhantomData,
        }
    }
}

type GlobalJoiner<V, GV, VR> = Arc<dyn Fn(V, Option<GV>) -> Option<VR> + Send + Sync>;

impl<K: Data, V: Data> Stream<K, V> {
    /// For each record, computes a key of `global` with `key_extractor(key, value)`, looks it
    /// up there and, when found, emits `joiner(value, global_value)` under the record's key
    /// (Kafka Streams' `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`). Records
    /// whose extracted key the table lacks are not emitted; they are counted in
    /// [`Metrics::join_misses`](crate::metrics::Metrics::join_misses).
    ///
    /// The table holds every partition on every instance, so the stream needs no
    /// co-partitioning with it and is never repartitioned, whatever changed its key
    /// upstream. The lookup sees the table as the global thread last updated it: there is no
    /// time alignment between the stream and the table (as in Kafka Streams), beyond the
    /// bootstrap that loads the whole topic before the first stream record.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let customers: Topic<String, String> = Topic::json("customers");
    /// let orders: Topic<String, (String, u32)> = Topic::json("orders");
    /// let shipped: Topic<String, String> = Topic::json("shipped");
    /// let builder = StreamsBuilder::new();
    /// let names = builder.global_table(&customers, Materialized::as_("customer-names"));
    /// builder
    ///     .stream(&orders)
    ///     .join_global(&names, |_order, (customer, _)| customer.clone(), |(_, qty), name| {
    ///         format!("{qty} for {name}")
    ///     })
    ///     .to(&shipped);
    ///
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&customers).pipe_input("c1".into(), "Ada".into()).unwrap();
    /// driver.input_topic(&orders).pipe_input("o1".into(), ("c1".into(), 3)).unwrap();
    /// driver.input_topic(&orders).pipe_input("o2".into(), ("c9".into(), 1)).unwrap();
    /// let out = driver.output_topic(&shipped).read_key_values().unwrap();
    /// assert_eq!(out, vec![("o1".to_string(), "3 for Ada".to_string())]);
    /// ```
    pub fn join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalTable<GK, GV>,
        key_extractor: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(V, GV) -> VR + Send + Sync + 'static,
    ) -> Stream<K, VR> {
        self.join_global_with(
            global,
            "global-join",
            true,
            Arc::new(key_extractor),
            Arc::new(move |v, g| g.map(|g| joiner(v, g))),
        )
    }

    /// Like [`Stream::join_global`], but every record is emitted: `joiner` gets `None` when
    /// the global table has no value for the extracted key (Kafka Streams'
    /// `KStream#leftJoin(GlobalKTable, ...)`).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let customers: Topic<String, String> = Topic::json("customers");
    /// let orders: Topic<String, String> = Topic::json("orders");
    /// let out: Topic<String, String> = Topic::json("out");
    /// let builder = StreamsBuilder::new();
    /// let names = builder.global_table(&customers, Materialized::as_("customer-names"));
    /// builder
    ///     .stream(&orders)
    ///     .left_join_global(&names, |_, customer| customer.clone(), |customer, name| {
    ///         name.unwrap_or(customer)
    ///     })
    ///     .to(&out);
    ///
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&orders).pipe_input("o1".into(), "c1".into()).unwrap();
    /// let got = driver.output_topic(&out).read_key_values().unwrap();
    /// assert_eq!(got, vec![("o1".to_string(), "c1".to_string())]);
    /// ```
    pub fn left_join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalTable<GK, GV>,
        key_extractor: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(V, Option<GV>) -> VR + Send + Sync + 'static,
    ) -> Stream<K, VR> {
        self.join_global_with(
            global,
            "global-left-join",
            false,
            Arc::new(key_extractor),
            Arc::new(move |v, g| Some(joiner(v, g))),
        )
    }

    #[allow(clippy::type_complexity)]
    fn join_global_with<GK: Data, GV: Data, VR: Data>(
        &self,
        global: &GlobalTable<GK, GV>,
        prefix: &str,
        inner: bool,
        key_extractor: Arc<dyn Fn(&K, &V) -> GK + Send + Sync>,
        joiner: GlobalJoiner<V, GV, VR>,
    ) -> Stream<K, VR> {
        let store = global.store.clone();
        let key_serde = global.key_serde.clone();
        let value_serde = global.value_serde.clone();
        // The global store is no task's: the node does not list it, so the stream's
        // sub-topology stays as it is, and `describe()` shows the store under its global
        // sub-topology.
        let node = self.add_processor(prefix, vec![], move |children, _env| {
            let (store, key_serde, value_serde) =
                (store.clone(), key_serde.clone(), value_serde.clone());
            let (key_extractor, joiner) = (key_extractor.clone(), joiner.clone());
            let mut handle = None;
            let mut key_buf = Vec::new();
            Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
                let serde_err = |e| Error::store(store.clone(), StoreError::Serde(e));
                if handle.is_none() {
                    handle = cx.env.globals.read().get(&store).cloned();
                }
                let Some(view) = &handle else {
                    return Err(Error::UnknownStore {
                        store: store.to_string(),
                        reason: "the global store is not open".into(),
                    });
                };
                let global_key = key_extractor(&r.key, &r.value);
                key_buf.clear();
                cx.encode(
                    &*key_serde,
                    SerdeContext::key(&store),
                    &global_key,
                    &mut key_buf,
                )
                .map_err(serde_err)?;
                let found = match view.get(&key_buf).map_err(|e| Error::store(store.clone(), e))? {
                    Some(bytes) => Some(
                        cx.decode(&*value_serde, SerdeContext::value(&store), &bytes)
                            .map_err(serde_err)?,
                    ),
                    None if inner => {
                        cx.env.metrics.join_misses.incr();
                        tracing::debug!(
                            store = %store, key = ?key_buf,
                            "global join miss: the global table has no row for the key; record dropped"
                        );
                        return Ok(());
                    }
                    None => None,
                };
                match joiner(r.value, found) {
                    Some(value) => ch.forward(
                        Record {
                            key: r.key,
                            value,
                            timestamp: r.timestamp,
                            headers: r.headers,
                        },
                        cx,
                    ),
                    None => Ok(()),
                }
            }))
        });
        self.derive(node, self.key_serde.clone(), None)
    }
}
