//! `group_by_key` and `group_by`: prepare a stream for aggregation, repartitioning by a new
//! key when needed.

use std::sync::Arc;

use super::sink::add_sink;
use super::source::{SourceSpec, missing_serde};
use crate::dsl::{Data, Grouped, GroupedStream, Stream};
use crate::topology::{NodeKind, TopicRef};

impl<K: Data, V: Data> Stream<K, V> {
    /// Groups records by their current key. No repartition topic is needed: records with the
    /// same key are already in the same partition (the input must be keyed that way).
    pub fn group_by_key(&self) -> GroupedStream<K, V> {
        GroupedStream {
            graph: self.graph.clone(),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
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
        let key_serde = grouped.key_serde.clone();
        let value_serde = grouped
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone());
        let (Some(key_serde), Some(value_serde)) = (key_serde, value_serde) else {
            let what = if grouped.key_serde.is_none() {
                "key"
            } else {
                "value"
            };
            self.graph.borrow_mut().error(missing_serde(&name, what));
            return selected.group_by_key();
        };
        let topic = TopicRef::repartition(&name);
        add_sink(
            &selected,
            format!("{name}-repartition-sink"),
            topic.clone(),
            key_serde.clone(),
            value_serde.clone(),
            true,
            None,
        );
        let spec = SourceSpec {
            topic: topic.clone(),
            key: key_serde.clone(),
            value: value_serde.clone(),
            dedup: true,
            table: None,
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
        GroupedStream {
            graph: self.graph.clone(),
            node,
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
        }
    }
}
