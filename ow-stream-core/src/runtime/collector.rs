//! Where a task's output goes: the collector a backend (or the test driver) gives each task.

use std::sync::Arc;

use crate::error::Error;
use crate::record::Headers;

/// A record on its way out, borrowed from the node that writes it.
pub(crate) struct OutRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: i64,
    pub(crate) headers: &'a Headers,
}

/// The offset a tracked record was written at, known once the collector has flushed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Delivery(Arc<std::sync::OnceLock<Result<i64, String>>>);

impl Delivery {
    pub(crate) fn resolve(&self, result: Result<i64, String>) {
        let _ = self.0.set(result);
    }

    pub(crate) fn offset(&self) -> Option<Result<i64, String>> {
        self.0.get().cloned()
    }
}

/// Where a task's output records go: a producer, or the test driver's topics.
pub(crate) trait RecordCollector: Send {
    /// Queues a record for writing. Errors that surface later are reported by `flush`.
    fn send(&mut self, record: OutRecord<'_>) -> Result<(), Error>;
    /// Queues a record and returns a handle that knows its offset after the next `flush`.
    fn send_tracked(&mut self, record: OutRecord<'_>) -> Result<Delivery, Error>;
    /// How many partitions `topic` has (for sinks that choose partitions themselves). Asked of
    /// the backend once per topic, then cached.
    fn partition_count(&mut self, topic: &str) -> Result<i32, Error>;
}
