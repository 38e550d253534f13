//! `filter` and `filter_not`: keep the records a predicate accepts.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::processor::node::fn_node;

impl<K: Data, V: Data> Stream<K, V> {
    /// Keeps the records for which `predicate` is true.
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # let builder = StreamsBuilder::new();
    /// # let topic: Topic<String, i64> = Topic::json("scores");
    /// let high = builder.stream(&topic).filter(|_, score| *score >= 100);
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Stream<K, V> {
        let predicate = Arc::new(predicate);
        let node = self.add_processor("filter", vec![], move |children, _| {
            let p = predicate.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                if p(&r.key, &r.value) {
                    ch.forward(r, cx)
                } else {
                    Ok(())
                }
            }))
        });
        self.derive(node, self.key_serde.clone(), self.value_serde.clone())
    }

    /// Keeps the records for which `predicate` is false.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Stream<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }
}
