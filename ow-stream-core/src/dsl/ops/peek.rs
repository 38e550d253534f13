//! `peek`: look at records without changing them.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::processor::node::fn_node;

impl<K: Data, V: Data> Stream<K, V> {
    /// Calls `f` on every record and passes it on unchanged (for logging or metrics).
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Stream<K, V> {
        let f = Arc::new(f);
        let node = self.add_processor("peek", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                f(&r.key, &r.value);
                ch.forward(r, cx)
            }))
        });
        self.derive(node, self.key_serde.clone(), self.value_serde.clone())
    }
}
