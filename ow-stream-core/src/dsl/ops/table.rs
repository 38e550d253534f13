//! `to_table` on streams, `filter` and `map_values` on tables: each result materialized in a
//! store of its own. Also how a table's changes reach what is derived from it.
//!
//! # Changes
//! A node that writes a table's rows (a table source, an aggregation, a derived table, a
//! table–table join) has two kinds of children. Those that take `Record<K, V>` (what
//! [`Table::to_stream`] and `suppress` read) get its updates only. Those that take
//! `Record<K, Option<V>>` — derived tables and table–table joins — get its *changes*: the new
//! row of a key, or `None` when the key left the table, as Kafka Streams forwards `Change<V>`
//! between table nodes (without the old value: nothing here needs it, there being no table
//! re-grouping).

use std::marker::PhantomData;
use std::sync::Arc;

use super::aggregate::{Forward, Unavailable, encode_for_store};
use super::source::missing_serde;
use crate::dsl::{Data, GroupedStream, Materialized, Stream, Table};
use crate::error::Error;
use crate::processor::node::{
    BuildEnv, Children, ErasedNode, Node, NodeBox, NodeSpec, counted, downcast_children, share_node,
};
use crate::record::{Headers, Record};
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext};
use crate::state::StoreKind;

/// How a node reads one table's rows: the table's store and the serdes of its keys and values
/// (a join reading the other side, a foreign-key join reading either side).
pub(crate) struct TableRows<K, V> {
    pub(crate) store: Arc<str>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for TableRows<K, V> {
    fn clone(&self) -> Self {
        TableRows {
            store: self.store.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K: Data, V: Data> Table<K, V> {
    /// How a node reads this table's rows.
    pub(crate) fn rows(&self) -> TableRows<K, V> {
        TableRows {
            store: self.store.clone(),
            key: self.key_serde.clone(),
            value: self.value_serde.clone(),
        }
    }

    /// The serdes of a join's result table keyed like this one: `materialized`'s, else this
    /// table's key serde; a result value serde is required (a topology error otherwise).
    pub(crate) fn join_result_serdes<VR: Data>(
        &self,
        materialized: &Materialized<K, VR>,
    ) -> (Arc<dyn Serde<K>>, Arc<dyn Serde<VR>>) {
        let key = materialized
            .key_serde
            .clone()
            .unwrap_or_else(|| self.key_serde.clone());
        let value = materialized.value_serde.clone().unwrap_or_else(|| {
            self.graph
                .borrow_mut()
                .error(missing_serde(&materialized.name, "value"));
            Arc::new(Unavailable)
        });
        (key, value)
    }
}

/// The children of a node that writes a table's rows: those that take its updates and those
/// that take its changes (see the module docs).
pub(crate) struct TableChildren<K, V> {
    updates: Children<K, V>,
    changes: Children<K, Option<V>>,
}

impl<K: Data, V: Data> TableChildren<K, V> {
    /// Sorts built children by the records they take.
    pub(crate) fn new(children: Vec<ErasedNode>) -> Result<Self, Error> {
        let (mut updates, mut changes) = (Vec::new(), Vec::new());
        for child in children {
            match child.downcast::<NodeBox<K, V>>() {
                Ok(node) => updates.push(*node),
                Err(other) => changes.push(other),
            }
        }
        Ok(TableChildren {
            updates: Children(updates),
            changes: downcast_children::<K, Option<V>>(changes)?,
        })
    }

    /// Forwards the new row of a key: to every child.
    pub(crate) fn forward(
        &mut self,
        record: Record<K, V>,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        if self.changes.0.is_empty() {
            return self.updates.forward(record, cx);
        }
        if self.updates.0.is_empty() {
            return self.changes.forward(as_change(record), cx);
        }
        self.changes.forward(as_change(record.clone()), cx)?;
        self.updates.forward(record, cx)
    }

    /// Forwards that `key` left the table: to the children that take changes.
    pub(crate) fn forward_delete(
        &mut self,
        key: K,
        timestamp: i64,
        headers: Headers,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        self.changes.forward(
            Record {
                key,
                value: None,
                timestamp,
                headers,
            },
            cx,
        )
    }

    /// Passes a punctuation on.
    pub(crate) fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.changes.punctuate(cx)?;
        self.updates.punctuate(cx)
    }
}

/// An update as a change.
fn as_change<K, V>(r: Record<K, V>) -> Record<K, Option<V>> {
    Record {
        key: r.key,
        value: Some(r.value),
        timestamp: r.timestamp,
        headers: r.headers,
    }
}

impl<K: Data, V: Data> Forward<K, V> for TableChildren<K, V> {
    fn forward(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        TableChildren::forward(self, record, cx)
    }
}

/// The function that builds a table node around its children.
type MakeTableNode<KIn, VIn, K, V> = Box<
    dyn Fn(TableChildren<K, V>, &BuildEnv<'_>) -> Result<NodeBox<KIn, VIn>, Error> + Send + Sync,
>;

/// The spec of a node that writes a table's rows: input `Record<KIn, VIn>`, children
/// [`TableChildren<K, V>`].
pub(crate) struct TableSpec<KIn, VIn, K, V> {
    make: MakeTableNode<KIn, VIn, K, V>,
    _types: PhantomData<fn(KIn, VIn)>,
}

impl<KIn: Send + 'static, VIn: Send + 'static, K: Data, V: Data> TableSpec<KIn, VIn, K, V> {
    /// A spec from a function that builds the node around its children.
    pub(crate) fn new(
        make: impl Fn(TableChildren<K, V>, &BuildEnv<'_>) -> Result<NodeBox<KIn, VIn>, Error>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        TableSpec {
            make: Box::new(make),
            _types: PhantomData,
        }
    }
}

impl<KIn: Send + 'static, VIn: Send + 'static, K: Data, V: Data> NodeSpec
    for TableSpec<KIn, VIn, K, V>
{
    fn instantiate(
        &self,
        children: Vec<ErasedNode>,
        env: &BuildEnv<'_>,
    ) -> Result<ErasedNode, Error> {
        let node = (self.make)(TableChildren::new(children)?, env)?;
        Ok(Box::new(counted(node, env.counter.clone())))
    }

    fn share(&self, node: ErasedNode, n: usize) -> Vec<ErasedNode> {
        share_node::<KIn, VIn>(node, n)
    }
}

/// A table node made of a closure over its children.
struct TableFnNode<K, V, F> {
    f: F,
    children: TableChildren<K, V>,
}

impl<KIn, VIn, K: Data, V: Data, F> Node<KIn, VIn> for TableFnNode<K, V, F>
where
    F: FnMut(Record<KIn, VIn>, &mut TableChildren<K, V>, &mut TaskCx<'_>) -> Result<(), Error>
        + Send,
{
    fn process(&mut self, record: Record<KIn, VIn>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        (self.f)(record, &mut self.children, cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

/// Boxes a closure table node.
pub(crate) fn table_node<KIn: 'static, VIn: 'static, K: Data, V: Data, F>(
    children: TableChildren<K, V>,
    f: F,
) -> NodeBox<KIn, VIn>
where
    F: FnMut(Record<KIn, VIn>, &mut TableChildren<K, V>, &mut TaskCx<'_>) -> Result<(), Error>
        + Send
        + 'static,
{
    Box::new(TableFnNode { f, children })
}

/// What a derived table does with an update of its input: `Some(value)` is its new row for
/// the key, `None` removes the key.
type Derive<K, V, V2> = Arc<dyn Fn(&K, V) -> Option<V2> + Send + Sync>;

/// Writes `row` (`None`: a delete) as the row of `key` in the store `index`, and forwards the
/// change: a delete only when the key was there; nothing when `emit_on_change` and the
/// row's bytes are the stored ones.
pub(crate) fn write_row<K: Data, V: Data>(
    cx: &mut TaskCx<'_>,
    (store, index, emit_on_change): (&Arc<str>, usize, bool),
    (key_serde, value_serde): (&dyn Serde<K>, &dyn Serde<V>),
    (key_buf, value_buf): (&mut Vec<u8>, &mut Vec<u8>),
    record: Record<K, Option<V>>,
    children: &mut TableChildren<K, V>,
) -> Result<(), Error> {
    encode_for_store(
        cx,
        store,
        key_serde,
        SerdeContext::key(store),
        &record.key,
        key_buf,
    )?;
    let Some(row) = record.value else {
        if cx.state.get(index, key_buf)?.is_none() {
            return Ok(());
        }
        cx.state
            .put(index, key_buf, None, record.timestamp, cx.out)?;
        return children.forward_delete(record.key, record.timestamp, record.headers, cx);
    };
    encode_for_store(
        cx,
        store,
        value_serde,
        SerdeContext::value(store),
        &row,
        value_buf,
    )?;
    if emit_on_change && cx.state.get(index, key_buf)?.as_deref() == Some(value_buf.as_slice()) {
        return Ok(());
    }
    cx.state
        .put(index, key_buf, Some(value_buf), record.timestamp, cx.out)?;
    children.forward(
        Record {
            key: record.key,
            value: row,
            timestamp: record.timestamp,
            headers: record.headers,
        },
        cx,
    )
}

/// Adds the node that keeps `derive`'s result for each change of `input` (read as a change
/// by `lift`: `None` removes the key) in the store `materialized` names, and forwards the
/// changes it writes.
fn materialize<K: Data, VIn: Data, V: Data, V2: Data>(
    input: &Stream<K, VIn>,
    lift: fn(VIn) -> Option<V>,
    materialized: Materialized<K, V2>,
    default_value: Option<Arc<dyn Serde<V2>>>,
    prefix: &str,
    derive: Derive<K, V, V2>,
) -> Table<K, V2> {
    // Rows are written through: a record cache would hold back what is forwarded here.
    let materialized = materialized.with_caching_disabled();
    let grouped = GroupedStream {
        stream: input.clone(),
    };
    let (key, value) = grouped.store_serdes(&materialized, default_value);
    let store = materialized.name.clone();
    let emit_on_change = materialized.emit_on_change;
    let (k, v, s) = (key.clone(), value.clone(), store.clone());
    let spec = TableSpec::<K, VIn, K, V2>::new(move |children, env| {
        let index = env.store(&s)?;
        let (store, key_serde, value_serde, derive) =
            (s.clone(), k.clone(), v.clone(), derive.clone());
        let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
        Ok(table_node(children, move |r: Record<K, VIn>, ch, cx| {
            let row = lift(r.value).and_then(|v| derive(&r.key, v));
            write_row(
                cx,
                (&store, index, emit_on_change),
                (&*key_serde, &*value_serde),
                (&mut key_buf, &mut value_buf),
                Record {
                    key: r.key,
                    value: row,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
                ch,
            )
        }))
    });
    let node = GroupedStream::add_store_node(
        input,
        &materialized,
        StoreKind::KeyValue,
        (key.clone(), value.clone()),
        prefix,
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

impl<K: Data, V: Data> Stream<K, V> {
    /// The stream read as a table (Kafka Streams' `KStream#toTable`): each record is the new
    /// row of its key, kept in the store `materialized` names (serdes not given there are the
    /// stream's), and forwarded as the table's update. The node is named after the store.
    ///
    /// When an operator upstream may have changed the key, the stream first goes through the
    /// repartition topic `<application_id>-<store>-repartition`, as for an aggregation, so
    /// each key's rows are in one task.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    ///
    /// let builder = StreamsBuilder::new();
    /// let ranks = builder
    ///     .stream(&Topic::<String, i64>::json("rank-updates"))
    ///     .to_table(Materialized::as_("ranks"));
    /// builder
    ///     .stream(&Topic::<String, String>::json("matches"))
    ///     .join(&ranks, |_player, game, rank| format!("{game} at rank {rank}"))
    ///     .to(&Topic::json("ranked-matches"));
    /// builder.build().unwrap();
    /// ```
    pub fn to_table(&self, materialized: Materialized<K, V>) -> Table<K, V> {
        // The repartition topic, if any, takes the store's serdes where the stream has none.
        let mut stream = self.clone();
        if stream.value_serde.is_none() {
            stream.value_serde = materialized.value_serde.clone();
        }
        let input =
            stream.repartitioned_if_needed(&materialized.name, materialized.key_serde.clone());
        let value = input.value_serde.clone();
        materialize(
            &input,
            Some,
            materialized,
            value,
            "to-table",
            Arc::new(|_, v| Some(v)),
        )
    }
}

impl<K: Data, V: Data> Table<K, V> {
    /// Adds a table derived from this one by `derive`, fed this table's changes (or, for a
    /// suppressed table, its updates).
    fn derive_table<V2: Data>(
        &self,
        materialized: Materialized<K, V2>,
        default_value: Option<Arc<dyn Serde<V2>>>,
        prefix: &str,
        derive: Derive<K, V, V2>,
    ) -> Table<K, V2> {
        if self.changes {
            materialize(
                &self.change_stream(),
                |change| change,
                materialized,
                default_value,
                prefix,
                derive,
            )
        } else {
            materialize(
                &self.to_stream(),
                Some,
                materialized,
                default_value,
                prefix,
                derive,
            )
        }
    }

    /// A handle on this table's node for the children that take its changes.
    pub(crate) fn change_stream(&self) -> Stream<K, Option<V>> {
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            key_serde: Some(self.key_serde.clone()),
            value_serde: None,
            repartition_required: false,
        }
    }

    /// The changes of this table as a stream: `Some(row)` for each update, `None` when a key
    /// leaves the table (Kafka Streams' `KTable#toStream`, whose deletes are `null` values).
    /// [`Table::to_stream`] carries the updates only.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::{JsonSerde, StringSerde};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let ranks: Topic<String, i64> = Topic::new("ranks", StringSerde, JsonSerde::new());
    /// let changes: Topic<String, Option<i64>> = Topic::new("rank-changes", StringSerde, JsonSerde::new());
    /// let builder = StreamsBuilder::new();
    /// builder.table(&ranks, Materialized::as_("ranks")).to_change_stream().to(&changes);
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// let input = driver.input_topic(&ranks);
    /// input.pipe_input("ana".into(), 3).unwrap();
    /// input.pipe_tombstone("ana".into()).unwrap();
    /// assert_eq!(
    ///     driver.output_topic(&changes).read_values().unwrap(),
    ///     vec![Some(3), None]
    /// );
    /// ```
    pub fn to_change_stream(&self) -> Stream<K, Option<V>> {
        if self.changes {
            return self.change_stream();
        }
        // A suppressed table forwards updates only.
        self.to_stream().map_values(Some)
    }

    /// The rows of this table for which `predicate` holds (Kafka Streams' `KTable#filter`),
    /// kept in the store `materialized` names (serdes not given there are this table's). An
    /// update that fails the predicate, or a delete in this table, removes its key from the
    /// filtered table's store and reaches the tables and joins derived from it as a delete;
    /// [`Table::to_stream`] carries no tombstone for it (Kafka Streams' `toStream` would
    /// forward a `null` value, which a [`Stream`] cannot hold).
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Table<K, V> {
        self.derive_table(
            materialized,
            Some(self.value_serde.clone()),
            "table-filter",
            Arc::new(move |k, v| predicate(k, &v).then_some(v)),
        )
    }

    /// This table with every value mapped by `f` (Kafka Streams' `KTable#mapValues`), kept in
    /// the store `materialized` names. The key serde defaults to this table's; the value
    /// serde must be given in `materialized`. A delete in this table deletes the key here too.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
        materialized: Materialized<K, V2>,
    ) -> Table<K, V2> {
        self.derive_table(
            materialized,
            None,
            "table-map-values",
            Arc::new(move |_, v| Some(f(v))),
        )
    }
}
