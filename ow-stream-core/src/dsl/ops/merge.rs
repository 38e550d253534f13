//! `merge`: two streams of the same types as one.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::processor::node::{OpSpec, fn_node};
use crate::topology::NodeKind;

impl<K: Data, V: Data> Stream<K, V> {
    /// The records of both streams, in the order they are processed.
    pub fn merge(&self, other: &Stream<K, V>) -> Stream<K, V> {
        let spec = OpSpec::<K, V, K, V>::new(|children, _| {
            Ok(fn_node(children, |r, ch, cx| ch.forward(r, cx)))
        });
        let node = self.graph.borrow_mut().add(
            None,
            "merge",
            NodeKind::Processor,
            vec![self.node, other.node],
            vec![],
            Arc::new(spec),
        );
        let key = self.key_serde.clone().or_else(|| other.key_serde.clone());
        let value = self
            .value_serde
            .clone()
            .or_else(|| other.value_serde.clone());
        let mut merged = self.derive(node, key, value);
        merged.repartition_required |= other.repartition_required;
        merged
    }
}
