//! The global thread's reader on the local log: every partition of a topic, no group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ow_stream_log::{Isolation, Log};

use super::{log_error, to_raw};
use crate::backend::GlobalConsumer;
use crate::error::Error;
use crate::record::RawRecord;

/// Reads all partitions of one topic of the local log from positions it is given.
pub(crate) struct LocalGlobalConsumer {
    pub(crate) log: Arc<Log>,
    pub(crate) topic: Arc<str>,
    pub(crate) isolation: Isolation,
    /// Next offset to fetch, per partition.
    pub(crate) positions: BTreeMap<i32, i64>,
}

impl LocalGlobalConsumer {
    fn partitions(&self) -> Result<i32, Error> {
        self.log
            .topic(&self.topic)
            .map(|info| info.partitions.len() as i32)
            .ok_or_else(|| Error::Config {
                field: "topics",
                reason: format!("global table topic {} does not exist", self.topic),
            })
    }
}

impl GlobalConsumer for LocalGlobalConsumer {
    fn offsets(&mut self) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
        let mut out = BTreeMap::new();
        for p in 0..self.partitions()? {
            let (start, _) = self.log.offsets(&self.topic, p).map_err(log_error)?;
            let end = self
                .log
                .visible_end(&self.topic, p, self.isolation)
                .map_err(log_error)?;
            out.insert(p, (start, end));
        }
        Ok(out)
    }

    fn seek(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), Error> {
        self.positions.clear();
        for p in 0..self.partitions()? {
            let (start, _) = self.log.offsets(&self.topic, p).map_err(log_error)?;
            // A checkpoint older than what retention kept reads from the oldest record left.
            let at = positions.get(&p).copied().unwrap_or(start).max(start);
            self.positions.insert(p, at);
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Duration) -> Result<Vec<RawRecord>, Error> {
        let mut out = Vec::new();
        for (&p, at) in self.positions.iter_mut() {
            let fetched = self
                .log
                .fetch(&self.topic, p, *at, 500, 4 << 20, self.isolation)
                .map_err(log_error)?;
            out.extend(
                fetched
                    .records
                    .into_iter()
                    .map(|r| to_raw(&self.topic, p, r)),
            );
            *at = fetched.next_offset;
        }
        if out.is_empty() {
            std::thread::sleep(timeout.min(Duration::from_millis(20)));
        }
        Ok(out)
    }

    fn positions(&mut self) -> Result<BTreeMap<i32, i64>, Error> {
        Ok(self.positions.clone())
    }
}
