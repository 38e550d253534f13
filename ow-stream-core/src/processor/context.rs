//! What a custom processor sees while it handles a record.

use std::sync::Arc;

use super::node::Children;
use crate::error::BoxError;
use crate::record::{Record, RecordMetadata};
use crate::runtime::context::TaskCx;
use crate::state::KeyValueStore;

/// What a custom [`Processor`](super::Processor) can do while it handles a record: forward
/// records, read and write its stores, and read the clocks.
pub struct ProcessorContext<'c, 'a, KOut, VOut> {
    pub(crate) cx: &'c mut TaskCx<'a>,
    pub(crate) children: &'c mut Children<KOut, VOut>,
    pub(crate) stores: &'c [(Arc<str>, usize)],
}

impl<'a, KOut: Clone + Send + 'static, VOut: Clone + Send + 'static>
    ProcessorContext<'_, 'a, KOut, VOut>
{
    /// Sends a record to every child node.
    pub fn forward(&mut self, record: Record<KOut, VOut>) -> Result<(), BoxError> {
        self.children
            .forward(record, self.cx)
            .map_err(|e| Box::new(e) as BoxError)
    }

    /// The task's stream time: the highest record timestamp it has seen.
    pub fn stream_time(&self) -> i64 {
        self.cx.stream_time
    }

    /// Wall-clock time of this step, in milliseconds since the epoch.
    pub fn wall_clock_time(&self) -> i64 {
        self.cx.wall_clock
    }

    /// Where the record being processed was read from (none during punctuation).
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.cx.input_metadata()
    }

    /// The partition this task works on.
    pub fn partition(&self) -> i32 {
        self.cx.task.partition
    }

    /// A typed view of a key-value store this processor was connected to.
    pub fn key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<KeyValueStore<'_, 'a, K, V>, BoxError> {
        let index = self
            .stores
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, i)| *i)
            .ok_or_else(|| format!("store {name:?} is not connected to this processor"))?;
        KeyValueStore::new(self.cx, index).map_err(|e| Box::new(e) as BoxError)
    }
}
