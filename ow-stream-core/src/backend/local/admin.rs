//! Administration on the local log: it answers from its own metadata, at once.

use std::sync::Arc;

use async_trait::async_trait;
use ow_stream_log::Log;

use super::{ensure_topic, log_error, to_raw};
use crate::admin::{PartitionOffsets, TopicOffsets, TopicSpec};
use crate::backend::AdminOps;
use crate::error::Error;
use crate::record::RawRecord;

/// Administration of one log directory.
pub(crate) struct LocalAdmin {
    pub(crate) log: Arc<Log>,
    /// The segment size of the topics it creates (the log's default when unset).
    pub(crate) segment_bytes: Option<u64>,
}

#[async_trait]
impl AdminOps for LocalAdmin {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), Error> {
        for s in specs {
            ensure_topic(&self.log, s, self.segment_bytes)?;
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>, Error> {
        Ok(self.log.topics())
    }

    async fn read_ranges(
        &self,
        topic: &str,
        ranges: Vec<(i32, i64, i64)>,
        per_partition: usize,
    ) -> Result<Vec<RawRecord>, Error> {
        let name: Arc<str> = topic.into();
        let mut out = Vec::new();
        for (partition, from, to) in ranges {
            let records = self
                .log
                .read(topic, partition, from, per_partition, 16 << 20)
                .map_err(log_error)?;
            out.extend(
                records
                    .into_iter()
                    .filter(|r| r.offset < to)
                    .map(|r| to_raw(&name, partition, r)),
            );
        }
        Ok(out)
    }

    async fn topic_offsets(&self, topics: &[&str]) -> Result<Vec<TopicOffsets>, Error> {
        Ok(topics
            .iter()
            .filter_map(|t| self.log.topic(t))
            .map(|info| TopicOffsets {
                name: info.name,
                partitions: info
                    .partitions
                    .iter()
                    .map(|p| PartitionOffsets {
                        partition: p.partition,
                        start: p.start_offset,
                        end: p.end_offset,
                        size_bytes: Some(p.size_bytes),
                    })
                    .collect(),
            })
            .collect())
    }

    async fn committed(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Option<i64>>, Error> {
        Ok(partitions
            .iter()
            .map(|(t, p)| self.log.committed(group, t, *p))
            .collect())
    }
}
