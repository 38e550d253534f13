//! `join` and `left_join`: enrich a stream with the current value of a table.

use std::sync::Arc;

use crate::dsl::{Data, Stream, Table};
use crate::error::{Error, StoreError};
use crate::processor::node::fn_node;
use crate::record::Record;
use crate::serde::SerdeContext;

type Joiner<K, V, VT, VR> = Arc<dyn Fn(&K, V, Option<VT>) -> Option<VR> + Send + Sync>;

impl<K: Data, V: Data> Stream<K, V> {
    /// For each record, looks its key up in `table` and, when found, emits
    /// `joiner(key, value, table_value)`. Records whose key the table lacks are not emitted:
    /// they are counted in [`Metrics::join_misses`](crate::metrics::Metrics::join_misses) and
    /// logged at `debug`. The table's rows are those of records up to the stream record's
    /// time, as far as the task's alignment of its inputs goes (see
    /// [`StreamsConfig::max_task_idle`](crate::config::StreamsConfig::max_task_idle)): a row
    /// written with a later timestamp, or after the task stopped waiting, is missed.
    ///
    /// The join runs in the task that owns both the stream's and the table's partition of a
    /// key. When an operator upstream may have changed the key (`map`, `select_key`,
    /// `flat_map`, `process`, ...), the stream is first sent through the repartition topic
    /// `<application_id>-<node>-repartition` (`<node>` is the name of the node that produced
    /// the stream: name it with [`Stream::named`] to keep the topic's name stable as the
    /// topology changes), keyed with the table's key serde and with as many partitions as the
    /// table's topic, as Kafka Streams does. Otherwise the stream's topic must be
    /// co-partitioned with the table's (same partition count, same key bytes for a key).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    ///
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table(&Topic::<String, String>::json("user-names"), Materialized::as_("names"));
    /// let clicks: Topic<String, String> = Topic::json("clicks");
    /// builder
    ///     .stream(&clicks)
    ///     .join(&names, |_user, page, name| format!("{name} opened {page}"))
    ///     .to(&Topic::json("named-clicks"));
    /// builder.build().unwrap();
    /// ```
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &Table<K, VT>,
        joiner: impl Fn(&K, V, VT) -> VR + Send + Sync + 'static,
    ) -> Stream<K, VR> {
        self.join_with(
            table,
            "join",
            true,
            Arc::new(move |k, v, t| t.map(|t| joiner(k, v, t))),
        )
    }

    /// Like [`Stream::join`], but every record is emitted: `joiner` gets `None` when the table
    /// has no value for the key.
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &Table<K, VT>,
        joiner: impl Fn(&K, V, Option<VT>) -> VR + Send + Sync + 'static,
    ) -> Stream<K, VR> {
        self.join_with(
            table,
            "left-join",
            false,
            Arc::new(move |k, v, t| Some(joiner(k, v, t))),
        )
    }

    fn join_with<VT: Data, VR: Data>(
        &self,
        table: &Table<K, VT>,
        prefix: &str,
        inner: bool,
        joiner: Joiner<K, V, VT, VR>,
    ) -> Stream<K, VR> {
        // Records re-keyed upstream are sent where the table's rows for their key are: through
        // `<application_id>-<node>-repartition`, keys written with the table's key serde.
        let name = self.node_name();
        let input = self.repartitioned_if_needed(&name, Some(table.key_serde.clone()));
        let store = table.store.clone();
        let key_serde = table.key_serde.clone();
        let value_serde = table.value_serde.clone();
        let node = input.add_processor(prefix, vec![store.clone()], move |children, env| {
            let index = env.store(&store)?;
            let (store, key_serde, value_serde) =
                (store.clone(), key_serde.clone(), value_serde.clone());
            let joiner = joiner.clone();
            let mut key_buf = Vec::new();
            Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
                key_buf.clear();
                let serde_err = |e| Error::store(store.clone(), StoreError::Serde(e));
                cx.encode(&*key_serde, SerdeContext::key(&store), &r.key, &mut key_buf)
                    .map_err(serde_err)?;
                let found = match cx.state.get(index, &key_buf)? {
                    Some(bytes) => Some(
                        cx.decode(&*value_serde, SerdeContext::value(&store), &bytes)
                            .map_err(serde_err)?,
                    ),
                    None if inner => {
                        cx.env.metrics.join_misses.incr();
                        if let Some(input) = cx.input {
                            tracing::debug!(
                                store = %store, key = ?key_buf, topic = %input.topic,
                                partition = input.partition, offset = input.offset,
                                "join miss: the table has no row for the key; record dropped"
                            );
                        }
                        return Ok(());
                    }
                    None => None,
                };
                match joiner(&r.key, r.value, found) {
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
        input.derive(node, input.key_serde.clone(), None)
    }
}
