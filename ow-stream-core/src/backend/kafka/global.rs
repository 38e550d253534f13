//! The global thread's consumer on Kafka: every partition of a topic by manual `assign`, in no
//! consumer group (nothing is committed: the global store checkpoints its own positions).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{REQUEST_TIMEOUT, Role, client_config, kafka_error, to_raw};
use crate::backend::GlobalConsumer;
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::record::RawRecord;

/// Most records one poll hands the global thread.
const MAX_BATCH: usize = 500;

/// Reads all partitions of one topic.
pub(crate) struct KafkaGlobalConsumer {
    consumer: BaseConsumer,
    topic: Arc<str>,
}

impl KafkaGlobalConsumer {
    pub(crate) fn new(config: &StreamsConfig, topic: Arc<str>) -> Result<Self, Error> {
        // `group.id` is only librdkafka's requirement for a consumer: the global consumer
        // never joins the group (it assigns) and never commits to it.
        let group = format!("{}-global", config.application_id);
        let consumer: BaseConsumer = client_config(config, Role::AssignConsumer, Some(&group))?
            .set(
                "client.id",
                format!("{}-global-consumer", config.application_id),
            )
            .create()
            .map_err(|e| kafka_error("create global consumer", e))?;
        Ok(KafkaGlobalConsumer { consumer, topic })
    }

    fn partitions(&self) -> Result<Vec<i32>, Error> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("fetch metadata", e))?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == &*self.topic && t.error().is_none() && !t.partitions().is_empty())
            .ok_or_else(|| Error::Config {
                field: "topics",
                reason: format!("global table topic {} does not exist", self.topic),
            })?;
        let mut out: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        out.sort_unstable();
        Ok(out)
    }
}

impl GlobalConsumer for KafkaGlobalConsumer {
    fn offsets(&mut self) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
        let mut out = BTreeMap::new();
        for p in self.partitions()? {
            let (start, end) = self
                .consumer
                .fetch_watermarks(&self.topic, p, REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("fetch offsets", e))?;
            out.insert(p, (start, end));
        }
        Ok(out)
    }

    fn seek(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), Error> {
        let mut tpl = TopicPartitionList::new();
        for p in self.partitions()? {
            let offset = match positions.get(&p) {
                Some(&o) => Offset::Offset(o),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(&self.topic, p, offset)
                .map_err(|e| kafka_error("assign", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| kafka_error("assign", e))
    }

    fn poll(&mut self, timeout: Duration) -> Result<Vec<RawRecord>, Error> {
        let mut out = Vec::new();
        let mut wait = timeout;
        while out.len() < MAX_BATCH {
            match self.consumer.poll(wait) {
                Some(Ok(m)) => out.push(to_raw(&m, &self.topic)),
                Some(Err(e)) => return Err(kafka_error("read global topic", e)),
                None => break,
            }
            wait = Duration::ZERO;
        }
        Ok(out)
    }

    fn positions(&mut self) -> Result<BTreeMap<i32, i64>, Error> {
        let tpl = self
            .consumer
            .position()
            .map_err(|e| kafka_error("consumer position", e))?;
        Ok(tpl
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }
}
