//! `to_table` on streams, `filter` and `map_values` on tables: each result materialized in a
//! store of its own.

use std::sync::Arc;

use super::aggregate::encode_for_store;
use crate::dsl::{Data, GroupedStream, Materialized, Stream, Table};
use crate::processor::node::{OpSpec, fn_node};
use crate::record::Record;
use crate::serde::{Serde, SerdeContext};
use crate::state::StoreKind;

/// What a derived table does with an update of its input: `Some(value)` is its new row for
/// the key, `None` removes the key.
type Derive<K, V, V2> = Arc<dyn Fn(&K, V) -> Option<V2> + Send + Sync>;

/// Adds the node that keeps `derive`'s result for each update of `input` in the store
/// `materialized` names, and forwards the rows it writes.
fn materialize<K: Data, V: Data, V2: Data>(
    input: &Stream<K, V>,
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
    let spec = OpSpec::<K, V, K, V2>::new(move |children, env| {
        let index = env.store(&s)?;
        let (store, key_serde, value_serde, derive) =
            (s.clone(), k.clone(), v.clone(), derive.clone());
        let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
        Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
            encode_for_store(
                cx,
                &store,
                &*key_serde,
                SerdeContext::key(&store),
                &r.key,
                &mut key_buf,
            )?;
            let Some(row) = derive(&r.key, r.value) else {
                // The key leaves the table (nothing is forwarded: updates carry no
                // tombstones).
                if cx.state.get(index, &key_buf)?.is_some() {
                    cx.state.put(index, &key_buf, None, r.timestamp, cx.out)?;
                }
                return Ok(());
            };
            encode_for_store(
                cx,
                &store,
                &*value_serde,
                SerdeContext::value(&store),
                &row,
                &mut value_buf,
            )?;
            if emit_on_change
                && cx.state.get(index, &key_buf)?.as_deref() == Some(value_buf.as_slice())
            {
                return Ok(());
            }
            cx.state
                .put(index, &key_buf, Some(&value_buf), r.timestamp, cx.out)?;
            ch.forward(
                Record {
                    key: r.key,
                    value: row,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
                cx,
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
            materialized,
            value,
            "to-table",
            Arc::new(|_, v| Some(v)),
        )
    }
}

impl<K: Data, V: Data> Table<K, V> {
    /// This table as a stream, for the derived tables' nodes.
    fn updates(&self) -> Stream<K, V> {
        self.to_stream()
    }

    /// The rows of this table for which `predicate` holds (Kafka Streams' `KTable#filter`),
    /// kept in the store `materialized` names (serdes not given there are this table's). An
    /// update that fails the predicate removes its key from the filtered table's store; like
    /// every table update stream here, [`Table::to_stream`] carries no tombstone for it.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Table<K, V> {
        materialize(
            &self.updates(),
            materialized,
            Some(self.value_serde.clone()),
            "table-filter",
            Arc::new(move |k, v| predicate(k, &v).then_some(v)),
        )
    }

    /// This table with every value mapped by `f` (Kafka Streams' `KTable#mapValues`), kept in
    /// the store `materialized` names. The key serde defaults to this table's; the value
    /// serde must be given in `materialized`.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
        materialized: Materialized<K, V2>,
    ) -> Table<K, V2> {
        materialize(
            &self.updates(),
            materialized,
            None,
            "table-map-values",
            Arc::new(move |_, v| Some(f(v))),
        )
    }
}
