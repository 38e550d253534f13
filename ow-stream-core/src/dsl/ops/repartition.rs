//! `repartition`: send a stream through an internal topic so that records are partitioned by
//! their current key, and the automatic repartition that joins and aggregations add after an
//! operator that may have changed the key.

use std::sync::Arc;

use super::sink::add_sink;
use super::source::SourceSpec;
use crate::dsl::{Data, Repartitioned, Stream};
use crate::error::TopologyError;
use crate::serde::Serde;
use crate::topology::{NodeKind, TopicRef};

impl<K: Data, V: Data> Stream<K, V> {
    /// Writes the stream to the internal topic `<application_id>-<name>-repartition` (named by
    /// `repartitioned`) and reads it back: downstream, records sit in the partition their
    /// current key hashes to, as Kafka Streams' `repartition` does. Serdes not given in
    /// `repartitioned` are the stream's.
    ///
    /// Joins and aggregations repartition by themselves when an operator upstream may have
    /// changed the key (`map`, `select_key`, `flat_map`, `process`, ...); call this to choose
    /// where it happens, what the topic is called and, with
    /// [`Repartitioned::with_number_of_partitions`], how many partitions (so how many tasks)
    /// it has.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Repartitioned;
    /// use ow_stream_core::serde::{JsonSerde, StringSerde};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Order { customer: String, cents: u64 }
    ///
    /// let builder = StreamsBuilder::new();
    /// let orders: Topic<String, Order> = Topic::json("orders");
    /// builder
    ///     .stream(&orders)
    ///     .select_key(|_, order| order.customer.clone())
    ///     .repartition(
    ///         Repartitioned::as_("orders-by-customer")
    ///             .with_key_serde(StringSerde)
    ///             .with_number_of_partitions(8),
    ///     )
    ///     .to(&Topic::json("orders-by-customer"));
    /// let topology = builder.build().unwrap();
    /// let text = topology.describe().to_string();
    /// assert!(text.contains("orders-by-customer-repartition, partitions: 8"), "{text}");
    /// ```
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> Stream<K, V> {
        let key = repartitioned.key_serde.or_else(|| self.key_serde.clone());
        let value = repartitioned
            .value_serde
            .or_else(|| self.value_serde.clone());
        let partitions = match repartitioned.partitions.map(i32::try_from) {
            None => None,
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => {
                self.graph.borrow_mut().error(TopologyError::Invalid {
                    node: format!("{}-repartition", repartitioned.name),
                    reason: format!(
                        "Repartitioned::with_number_of_partitions needs a count from 1 to {}",
                        i32::MAX
                    ),
                });
                None
            }
        };
        self.repartition_into(&repartitioned.name, key, value, partitions)
    }

    /// Declares that records are already in the partition their current key belongs in,
    /// although an operator upstream may have changed the key (a `map` that keeps it, or a new
    /// key derived from the old one that partitions the same way): joins and aggregations
    /// downstream then add no repartition topic (Kafka Streams' `markAsPartitioned`, KIP-759).
    /// Wrongly declared, records of a key are processed in several tasks: use it only when
    /// every record's new key hashes (with the serde downstream) to the partition it is in.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    ///
    /// let builder = StreamsBuilder::new();
    /// let scores: Topic<String, String> = Topic::json("scores");
    /// builder
    ///     .stream(&scores)
    ///     // Parses the value; the key stays what it was.
    ///     .try_map(|k, v: String| Ok::<_, std::num::ParseIntError>((k, v.parse::<i64>()?)))
    ///     .mark_as_partitioned()
    ///     .with_serdes(ow_stream_core::serde::StringSerde, ow_stream_core::serde::JsonSerde::new())
    ///     .group_by_key()
    ///     .count(Materialized::as_("scores-per-player"));
    /// let text = builder.build().unwrap().describe().to_string();
    /// assert!(!text.contains("repartition"));
    /// ```
    pub fn mark_as_partitioned(mut self) -> Stream<K, V> {
        self.repartition_required = false;
        self
    }

    /// This stream, or, when an operator upstream may have changed the key, the stream read
    /// back from the repartition topic `<application_id>-<name>-repartition` (`key` is the
    /// serde the records' partition is computed with).
    pub(crate) fn repartitioned_if_needed(
        &self,
        name: &str,
        key: Option<Arc<dyn Serde<K>>>,
    ) -> Stream<K, V> {
        if !self.repartition_required {
            return self.clone();
        }
        let key = key.or_else(|| self.key_serde.clone());
        self.repartition_through(name, key, self.value_serde.clone())
    }

    /// Adds the sink `<name>-repartition-sink` and the source `<name>-repartition-source` of
    /// the topic `<application_id>-<name>-repartition`. A copy of a record that a crashed
    /// upstream task writes again is recognised and dropped by the source, so state downstream
    /// stays exact.
    pub(crate) fn repartition_through(
        &self,
        name: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
    ) -> Stream<K, V> {
        self.repartition_into(name, key, value, None)
    }

    /// [`repartition_through`](Stream::repartition_through) a topic of `partitions`
    /// partitions, or of the count the application derives when `None`.
    fn repartition_into(
        &self,
        name: &str,
        key: Option<Arc<dyn Serde<K>>>,
        value: Option<Arc<dyn Serde<V>>>,
        partitions: Option<i32>,
    ) -> Stream<K, V> {
        let (Some(key_serde), Some(value_serde)) = (key.clone(), value) else {
            let what = if key.is_none() { "key" } else { "value" };
            self.graph.borrow_mut().error(TopologyError::Invalid {
                node: format!("{name}-repartition"),
                reason: format!(
                    "the repartition topic needs a {what} serde and none is known here (an \
                     operator upstream may have changed the key): give one with \
                     Stream::with_serdes, Grouped::with_{what}_serde, or \
                     Repartitioned::with_{what}_serde"
                ),
            });
            return self.clone();
        };
        let topic = TopicRef::repartition(name);
        add_sink(
            self,
            format!("{name}-repartition-sink"),
            topic.clone(),
            key_serde.clone(),
            value_serde.clone(),
            true,
            None,
        );
        if let Some(NodeKind::Sink { partitions: p, .. }) = self
            .graph
            .borrow_mut()
            .nodes
            .last_mut()
            .map(|n| &mut n.kind)
        {
            // The sink just added: it carries the topic's fixed partition count.
            *p = partitions;
        }
        let spec = SourceSpec {
            topic: topic.clone(),
            key: key_serde.clone(),
            value: value_serde.clone(),
            dedup: true,
            table: None,
            extractor: None,
        };
        let node = self.graph.borrow_mut().add(
            Some(format!("{name}-repartition-source")),
            "source",
            NodeKind::Source {
                topic,
                key_serde: key_serde.describe(),
                value_serde: value_serde.describe(),
            },
            vec![],
            vec![],
            Arc::new(spec),
        );
        Stream {
            graph: self.graph.clone(),
            node,
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            repartition_required: false,
        }
    }
}
