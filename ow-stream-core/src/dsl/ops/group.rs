//! `group_by_key` and `group_by`: prepare a stream for aggregation, repartitioning by a new
//! key when needed.

use super::source::missing_serde;
use crate::dsl::{Data, Grouped, GroupedStream, Stream};

impl<K: Data, V: Data> Stream<K, V> {
    /// Groups records by their current key. When an operator upstream may have changed the
    /// key (`map`, `select_key`, `flat_map`, `process`, ...), the aggregation that follows
    /// first sends the records through the repartition topic
    /// `<application_id>-<store>-repartition` (named after its store), so that all records of
    /// a key meet in one task, as Kafka Streams does; otherwise records with the same key are
    /// already in the same partition and no topic is needed.
    pub fn group_by_key(&self) -> GroupedStream<K, V> {
        GroupedStream {
            stream: self.clone(),
        }
    }

    /// Groups records by a new key. Records go through the repartition topic
    /// `<application_id>-<name>-repartition` (named by `grouped`), so that all records of a key
    /// meet in one task. Copies of records that a crashed upstream task writes again are
    /// recognised and dropped downstream, so aggregates stay exact.
    pub fn group_by<K2: Data>(
        &self,
        key: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> GroupedStream<K2, V> {
        let name = grouped.name.to_string();
        let selected = self.select_key(key).named(format!("{name}-key-select"));
        let value_serde = grouped
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone());
        if grouped.key_serde.is_none() {
            self.graph.borrow_mut().error(missing_serde(&name, "key"));
            return selected.group_by_key();
        }
        GroupedStream {
            stream: selected.repartition_through(&name, grouped.key_serde.clone(), value_serde),
        }
    }
}
