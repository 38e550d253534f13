//! `join`, `left_join` and `outer_join` of two tables (Kafka Streams' `KTable#join(KTable)`,
//! `KTableKTableJoin`): a table of the join's result per key, kept up to date as either side
//! changes.
//!
//! # How it works
//! Each side's table node forwards its changes (a new row, or a delete) to a node of the join:
//! `<store>-this-join` for this table, `<store>-other-join` for the other. That node looks the
//! key up in the other side's store and computes the key's new result — or that it has none
//! (an inner join missing a side, a left join missing this side, an outer join missing both).
//! Both send it to the node `<store>`, which keeps the result table in the store `<store>`
//! (changelogged unless disabled, queryable) and forwards its changes: a new result as an
//! update, a key whose result went away as a delete (only when it had a result).
//!
//! Both tables' topics must be co-partitioned (same partition count, keys partitioned alike):
//! the three nodes run in one task per partition, which owns both sides' stores.

use std::sync::Arc;

use super::table::{TableRows, TableSpec, table_node, write_row};
use crate::dsl::{Data, Materialized, Table};
use crate::error::{Error, StoreError};
use crate::processor::node::{OpSpec, fn_node};
use crate::record::Record;
use crate::serde::{Serde, SerdeContext};
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topology::NodeKind;

/// A key's result from both sides' rows (`None`: no row), or `None` when it has none.
type BothJoiner<K, V, VO, VR> = Arc<dyn Fn(&K, Option<V>, Option<VO>) -> Option<VR> + Send + Sync>;

/// The spec of one side's node: each change of its table (read as one by `lift`) joined with
/// the other side's row of the key.
fn side_spec<K: Data, VIn: Data, V: Data, VO: Data, VR: Data>(
    lift: fn(VIn) -> Option<V>,
    other: TableRows<K, VO>,
    joiner: BothJoiner<K, V, VO, VR>,
) -> OpSpec<K, VIn, K, Option<VR>> {
    OpSpec::new(move |children, env| {
        let index = env.store(&other.store)?;
        let (other, joiner) = (other.clone(), joiner.clone());
        let mut key_buf = Vec::new();
        Ok(fn_node(children, move |r: Record<K, VIn>, ch, cx| {
            key_buf.clear();
            let serde_err = |e| Error::store(other.store.clone(), StoreError::Serde(e));
            cx.encode(
                &*other.key,
                SerdeContext::key(&other.store),
                &r.key,
                &mut key_buf,
            )
            .map_err(serde_err)?;
            let found = match cx.state.get(index, &key_buf)? {
                Some(bytes) => Some(
                    cx.decode(&*other.value, SerdeContext::value(&other.store), &bytes)
                        .map_err(serde_err)?,
                ),
                None => None,
            };
            let value = joiner(&r.key, lift(r.value), found);
            ch.forward(
                Record {
                    key: r.key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
                cx,
            )
        }))
    })
}

/// Adds the node of one side of the join after `table`'s node: it takes the table's changes,
/// or its updates when the table forwards no changes (a suppressed table).
fn add_side<K: Data, V: Data, VO: Data, VR: Data>(
    table: &Table<K, V>,
    name: String,
    stores: Vec<Arc<str>>,
    other: TableRows<K, VO>,
    joiner: BothJoiner<K, V, VO, VR>,
) -> usize {
    let spec: Arc<dyn crate::processor::node::NodeSpec> = if table.changes {
        Arc::new(side_spec::<K, Option<V>, V, VO, VR>(
            |change| change,
            other,
            joiner,
        ))
    } else {
        Arc::new(side_spec::<K, V, V, VO, VR>(Some, other, joiner))
    };
    table.graph.borrow_mut().add(
        Some(name),
        "table-join",
        NodeKind::Processor,
        vec![table.node],
        stores,
        spec,
    )
}

impl<K: Data, V: Data> Table<K, V> {
    /// The inner join of this table with `other` (Kafka Streams' `KTable#join(KTable)`): a
    /// table with `joiner(key, value, other_value)` for every key both tables have, kept in
    /// the store `materialized` names and updated whenever either side changes.
    ///
    /// An update on either side looks the key up in the other side's store: when found, the
    /// key's new result is written and forwarded. A delete on either side deletes the key's
    /// result, if it had one, and forwards the delete to the tables and joins derived from
    /// the result ([`Table::to_stream`] carries updates only). The result's timestamp is that
    /// of the change that caused it (Kafka Streams takes the later of both rows' timestamps;
    /// the stores here keep no timestamps).
    ///
    /// The key serde of the result store defaults to this table's; its value serde must be
    /// given in `materialized`. The nodes are `<store>-this-join`, `<store>-other-join` and
    /// `<store>` (see `describe()`); the store is changelogged to
    /// `<application_id>-<store>-changelog`. Both tables' topics must be co-partitioned: the
    /// application refuses to start otherwise.
    ///
    /// Records are processed in the order the task takes them (by timestamp across its
    /// partitions, see
    /// [`StreamsConfig::max_task_idle`](crate::config::StreamsConfig::max_task_idle)): as
    /// with any table, a late (out-of-order) row replaces the current one — tables keep the
    /// latest *offset*, not the latest timestamp, as Kafka Streams' unversioned tables do.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::StringSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let names: Topic<String, String> = Topic::new("names", StringSerde, StringSerde);
    /// let teams: Topic<String, String> = Topic::new("teams", StringSerde, StringSerde);
    /// let builder = StreamsBuilder::new();
    /// let players = builder.table(&names, Materialized::as_("names"));
    /// let rosters = builder.table(&teams, Materialized::as_("teams"));
    /// let joined = players.join(
    ///     &rosters,
    ///     |_id, name, team| format!("{name} plays for {team}"),
    ///     Materialized::as_("rosters").with_value_serde(StringSerde),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&names).pipe_input("p1".into(), "Ana".into()).unwrap();
    /// driver.input_topic(&teams).pipe_input("p1".into(), "Owls".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>(joined.store_name()).unwrap();
    /// assert_eq!(store.get(&"p1".into()).unwrap(), Some("Ana plays for Owls".into()));
    /// // A delete on either side deletes the result.
    /// driver.input_topic(&teams).pipe_tombstone("p1".into()).unwrap();
    /// assert_eq!(store.get(&"p1".into()).unwrap(), None);
    /// ```
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &Table<K, VO>,
        joiner: impl Fn(&K, V, VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Table<K, VR> {
        self.table_join(
            other,
            "join",
            Arc::new(move |k, v, o| match (v, o) {
                (Some(v), Some(o)) => Some(joiner(k, v, o)),
                _ => None,
            }),
            materialized,
        )
    }

    /// The left join of this table with `other` (Kafka Streams' `KTable#leftJoin(KTable)`):
    /// like [`Table::join`], but every key of this table has a result, `joiner` getting
    /// `None` when `other` has no row for the key. A delete in `other` makes the result
    /// `joiner(key, value, None)`; a delete in this table deletes the result.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::StringSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let names: Topic<String, String> = Topic::new("names", StringSerde, StringSerde);
    /// let teams: Topic<String, String> = Topic::new("teams", StringSerde, StringSerde);
    /// let builder = StreamsBuilder::new();
    /// let players = builder.table(&names, Materialized::as_("names"));
    /// let rosters = builder.table(&teams, Materialized::as_("teams"));
    /// players.left_join(
    ///     &rosters,
    ///     |_id, name, team: Option<String>| format!("{name}: {}", team.unwrap_or("free agent".into())),
    ///     Materialized::as_("rosters").with_value_serde(StringSerde),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&names).pipe_input("p1".into(), "Ana".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>("rosters").unwrap();
    /// assert_eq!(store.get(&"p1".into()).unwrap(), Some("Ana: free agent".into()));
    /// ```
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &Table<K, VO>,
        joiner: impl Fn(&K, V, Option<VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Table<K, VR> {
        self.table_join(
            other,
            "left-join",
            Arc::new(move |k, v, o| v.map(|v| joiner(k, v, o))),
            materialized,
        )
    }

    /// The outer join of this table with `other` (Kafka Streams' `KTable#outerJoin(KTable)`):
    /// like [`Table::join`], but every key of either table has a result, `joiner` getting
    /// `None` for the side that has no row for the key. The result is deleted when both
    /// sides' rows are.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::StringSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let names: Topic<String, String> = Topic::new("names", StringSerde, StringSerde);
    /// let teams: Topic<String, String> = Topic::new("teams", StringSerde, StringSerde);
    /// let builder = StreamsBuilder::new();
    /// let players = builder.table(&names, Materialized::as_("names"));
    /// let rosters = builder.table(&teams, Materialized::as_("teams"));
    /// players.outer_join(
    ///     &rosters,
    ///     |_id, name: Option<String>, team: Option<String>| format!("{name:?}/{team:?}"),
    ///     Materialized::as_("rosters").with_value_serde(StringSerde),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&teams).pipe_input("p1".into(), "Owls".into()).unwrap();
    /// let store = driver.key_value_store::<String, String>("rosters").unwrap();
    /// assert_eq!(store.get(&"p1".into()).unwrap(), Some("None/Some(\"Owls\")".into()));
    /// ```
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &Table<K, VO>,
        joiner: impl Fn(&K, Option<V>, Option<VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Table<K, VR> {
        self.table_join(
            other,
            "outer-join",
            Arc::new(move |k, v, o| {
                if v.is_none() && o.is_none() {
                    return None;
                }
                Some(joiner(k, v, o))
            }),
            materialized,
        )
    }

    fn table_join<VO: Data, VR: Data>(
        &self,
        other: &Table<K, VO>,
        prefix: &str,
        joiner: BothJoiner<K, V, VO, VR>,
        materialized: Materialized<K, VR>,
    ) -> Table<K, VR> {
        // Results are written through: a record cache would hold back what is forwarded.
        let materialized = materialized.with_caching_disabled();
        let name = materialized.name.clone();
        let (key, value) = self.join_result_serdes(&materialized);
        let (this_side, other_side) = (self.rows(), other.rows());
        let both = vec![self.store.clone(), other.store.clone()];
        let swapped: BothJoiner<K, VO, V, VR> = {
            let joiner = joiner.clone();
            Arc::new(move |k, o, v| joiner(k, v, o))
        };
        let this_join = add_side(
            self,
            format!("{name}-this-join"),
            both.clone(),
            other_side,
            joiner,
        );
        let other_join = add_side(
            other,
            format!("{name}-other-join"),
            both,
            this_side,
            swapped,
        );

        let emit_on_change = materialized.emit_on_change;
        let (k, v, s) = (key.clone(), value.clone(), name.clone());
        let merge = TableSpec::<K, Option<VR>, K, VR>::new(move |children, env| {
            let index = env.store(&s)?;
            let (store, key_serde, value_serde) = (s.clone(), k.clone(), v.clone());
            let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
            Ok(table_node(
                children,
                move |r: Record<K, Option<VR>>, ch, cx| {
                    write_row(
                        cx,
                        (&store, index, emit_on_change),
                        (&*key_serde, &*value_serde),
                        (&mut key_buf, &mut value_buf),
                        r,
                        ch,
                    )
                },
            ))
        });
        let def = StoreDef {
            name: name.clone(),
            kind: StoreKind::KeyValue,
            backend: materialized.backend,
            logging: materialized.logging,
            caching: false,
            key_describe: key.describe(),
            value_describe: value.describe(),
            serdes: Arc::new(StoreSerdes {
                key: key.clone(),
                value: value.clone(),
            }),
        };
        let mut graph = self.graph.borrow_mut();
        graph.stores.push(Arc::new(def));
        let node = graph.add(
            Some(name.to_string()),
            prefix,
            NodeKind::Processor,
            vec![this_join, other_join],
            vec![name.clone()],
            Arc::new(merge),
        );
        graph.copartition.push((this_join, other_join));
        drop(graph);
        Table {
            graph: self.graph.clone(),
            node,
            store: name,
            key_serde: key,
            value_serde: value,
            changes: true,
        }
    }
}
