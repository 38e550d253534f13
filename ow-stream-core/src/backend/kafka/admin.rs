//! Administration on Kafka: metadata, watermarks and committed offsets through a consumer
//! that joins no group, topics through librdkafka's admin client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{REQUEST_TIMEOUT, Role, client_config, create_topics, kafka_error, partition_counts};
use crate::admin::{PartitionOffsets, TopicOffsets, TopicSpec};
use crate::backend::AdminOps;
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::record::RawRecord;

/// Administration of the cluster `config` names.
pub(crate) struct KafkaAdmin {
    config: StreamsConfig,
}

impl KafkaAdmin {
    pub(crate) fn new(config: &StreamsConfig) -> KafkaAdmin {
        KafkaAdmin {
            config: config.clone(),
        }
    }
}

#[async_trait]
impl AdminOps for KafkaAdmin {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), Error> {
        let names: Vec<Arc<str>> = specs.iter().map(|s| Arc::from(s.name.as_str())).collect();
        let config = self.config.clone();
        let existing = blocking(move || partition_counts(&config, &names)).await?;
        let missing: Vec<TopicSpec> = specs
            .iter()
            .filter(|s| !existing.contains_key(s.name.as_str()))
            .cloned()
            .collect();
        create_topics(&self.config, &missing).await
    }

    async fn list_topics(&self) -> Result<Vec<String>, Error> {
        let config = self.config.clone();
        blocking(move || {
            let consumer = metadata_consumer(&config, None)?;
            let metadata = consumer
                .fetch_metadata(None, REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("fetch metadata", e))?;
            Ok(metadata
                .topics()
                .iter()
                .map(|t| t.name().to_string())
                .collect::<Vec<_>>())
        })
        .await
    }

    async fn read_ranges(
        &self,
        topic: &str,
        ranges: Vec<(i32, i64, i64)>,
        _per_partition: usize,
    ) -> Result<Vec<RawRecord>, Error> {
        let config = self.config.clone();
        let name: Arc<str> = topic.into();
        blocking(move || {
            let consumer = metadata_consumer(&config, None)?;
            let mut out = Vec::new();
            for (partition, from, to) in ranges {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&name, partition, Offset::Offset(from))
                    .map_err(|e| kafka_error("assign", e))?;
                consumer
                    .assign(&tpl)
                    .map_err(|e| kafka_error("assign", e))?;
                let deadline = Instant::now() + REQUEST_TIMEOUT;
                while Instant::now() < deadline {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => {
                            let offset = rdkafka::message::Message::offset(&m);
                            if offset < to {
                                out.push(super::to_raw(&m, &name));
                            }
                            if offset + 1 >= to {
                                break;
                            }
                        }
                        Some(Err(e)) => return Err(kafka_error("read", e)),
                        None => {}
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn topic_offsets(&self, topics: &[&str]) -> Result<Vec<TopicOffsets>, Error> {
        let config = self.config.clone();
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        blocking(move || {
            let consumer = metadata_consumer(&config, None)?;
            let mut out = Vec::new();
            for topic in topics {
                let metadata = consumer
                    .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
                    .map_err(|e| kafka_error("fetch metadata", e))?;
                let Some(t) = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                else {
                    continue;
                };
                let mut partitions = Vec::new();
                for p in t.partitions() {
                    let (start, end) = consumer
                        .fetch_watermarks(&topic, p.id(), REQUEST_TIMEOUT)
                        .map_err(|e| kafka_error("fetch offsets", e))?;
                    partitions.push(PartitionOffsets {
                        partition: p.id(),
                        start,
                        end,
                        size_bytes: None,
                    });
                }
                partitions.sort_by_key(|p| p.partition);
                out.push(TopicOffsets {
                    name: topic,
                    partitions,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn committed(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Option<i64>>, Error> {
        let config = self.config.clone();
        let group = group.to_string();
        blocking(move || {
            let consumer = metadata_consumer(&config, Some(&group))?;
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &partitions {
                tpl.add_partition(t, *p);
            }
            let got = consumer
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("fetch committed offsets", e))?;
            Ok(partitions
                .iter()
                .map(
                    |(t, p)| match got.find_partition(t, *p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => Some(o),
                        _ => None,
                    },
                )
                .collect())
        })
        .await
    }
}

fn metadata_consumer(config: &StreamsConfig, group: Option<&str>) -> Result<BaseConsumer, Error> {
    let group = group
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-admin", config.application_id));
    client_config(config, Role::AssignConsumer, Some(&group))?
        .create()
        .map_err(|e| kafka_error("create admin consumer", e))
}

/// Runs a call that waits on the cluster off the async runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Closed {
            reason: format!("admin task: {e}"),
        })?
}
