//! Topics and consumer groups: create topics, read their offsets and a group's lag — the same
//! API on Kafka and on the local backend. The dashboard's pipeline page is built on it.
//!
//! ```no_run
//! use ow_stream_core::admin::{Admin, TopicSpec};
//! use ow_stream_core::config::{Backend, StreamsConfig};
//!
//! # async fn demo() -> Result<(), ow_stream_core::Error> {
//! let config = StreamsConfig::new("ops", Backend::local("/var/lib/ow/log"));
//! let admin = Admin::new(&config)?;
//! admin.create_topics(&[TopicSpec::new("players", 4).compacted()]).await?;
//! for topic in admin.topic_offsets(&["players"]).await? {
//!     println!("{}: {} records", topic.name, topic.records());
//! }
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use crate::config::{Backend, StreamsConfig};
use crate::error::Error;
use crate::kafka::{REQUEST_TIMEOUT, Role, client_config, kafka_error};
use crate::record::RawRecord;

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Keep only the latest record per key (`cleanup.policy=compact`).
    pub compacted: bool,
    /// Delete records older than this (`retention.ms`); `None` keeps the backend's default
    /// (7 days on Kafka and on the local log). Compacted topics keep the latest record per key
    /// whatever their age.
    pub retention: Option<Duration>,
    /// Delete the oldest records of a partition beyond this many bytes (`retention.bytes`);
    /// `None` keeps the backend's default (no size limit).
    pub retention_bytes: Option<u64>,
}

impl TopicSpec {
    /// A topic with `partitions` partitions and delete cleanup.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            compacted: false,
            retention: None,
            retention_bytes: None,
        }
    }

    /// Makes the topic compacted.
    pub fn compacted(mut self) -> Self {
        self.compacted = true;
        self
    }

    /// Sets the time retention.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Sets the size retention per partition.
    pub fn with_retention_bytes(mut self, bytes: u64) -> Self {
        self.retention_bytes = Some(bytes);
        self
    }

    /// The topic-level settings Kafka gets for this topic.
    pub(crate) fn kafka_settings(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.compacted {
            out.push(("cleanup.policy", "compact".to_string()));
        }
        if let Some(r) = self.retention {
            out.push(("retention.ms", r.as_millis().to_string()));
        }
        if let Some(b) = self.retention_bytes {
            out.push(("retention.bytes", b.to_string()));
        }
        out
    }
}

/// The offsets of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    /// Partition number.
    pub partition: i32,
    /// First offset still stored.
    pub start: i64,
    /// Next offset to be written.
    pub end: i64,
    /// Bytes on disk, where the backend knows (the local log).
    pub size_bytes: Option<u64>,
}

/// The offsets of a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicOffsets {
    /// Topic name.
    pub name: String,
    /// One entry per partition.
    pub partitions: Vec<PartitionOffsets>,
}

impl TopicOffsets {
    /// The sum of end offsets: records ever written (what messages/s is derived from).
    pub fn end_total(&self) -> i64 {
        self.partitions.iter().map(|p| p.end).sum()
    }

    /// Records currently stored (end − start over partitions).
    pub fn records(&self) -> i64 {
        self.partitions.iter().map(|p| p.end - p.start).sum()
    }
}

/// A consumer group's position in one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupPartitionLag {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's end offset.
    pub end: i64,
    /// Records the group has not committed yet.
    pub lag: i64,
}

/// Topic and group administration on either backend.
pub struct Admin {
    inner: AdminInner,
}

enum AdminInner {
    Kafka(Box<StreamsConfig>),
    /// The log, and the segment size of the topics it creates.
    Local(Arc<ow_stream_log::Log>, Option<u64>),
}

impl Admin {
    /// An admin client for the configured backend.
    pub fn new(config: &StreamsConfig) -> Result<Admin, Error> {
        let inner = match &config.backend {
            Backend::Kafka { .. } => AdminInner::Kafka(Box::new(config.clone())),
            Backend::Local { dir } => {
                AdminInner::Local(crate::local::open(dir, config)?, config.local.segment_bytes)
            }
        };
        Ok(Admin { inner })
    }

    /// Creates the topics that do not exist yet (existing ones are left as they are).
    pub async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), Error> {
        match &self.inner {
            AdminInner::Kafka(config) => {
                let names: Vec<Arc<str>> =
                    specs.iter().map(|s| Arc::from(s.name.as_str())).collect();
                let c = (**config).clone();
                let existing = blocking(move || crate::kafka::partition_counts(&c, &names)).await?;
                let missing: Vec<TopicSpec> = specs
                    .iter()
                    .filter(|s| !existing.contains_key(s.name.as_str()))
                    .cloned()
                    .collect();
                crate::kafka::create_topics(config, &missing).await
            }
            AdminInner::Local(log, segment_bytes) => {
                for s in specs {
                    crate::local::ensure_topic(log, s, *segment_bytes)?;
                }
                Ok(())
            }
        }
    }

    /// Every topic's name, sorted (internal topics of the cluster, starting with `__`, left out).
    pub async fn list_topics(&self) -> Result<Vec<String>, Error> {
        let mut names = match &self.inner {
            AdminInner::Kafka(config) => {
                let config = (**config).clone();
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
                .await?
            }
            AdminInner::Local(log, _) => log.topics(),
        };
        names.retain(|n| !n.starts_with("__"));
        names.sort();
        Ok(names)
    }

    /// The last `per_partition` records of every partition of `topic`, oldest first within a
    /// partition (what a topic browser shows).
    pub async fn tail(&self, topic: &str, per_partition: usize) -> Result<Vec<RawRecord>, Error> {
        let offsets = self.topic_offsets(&[topic]).await?;
        let Some(t) = offsets.into_iter().next() else {
            return Ok(Vec::new());
        };
        let ranges: Vec<(i32, i64, i64)> = t
            .partitions
            .iter()
            .filter(|p| p.end > p.start)
            .map(|p| {
                (
                    p.partition,
                    (p.end - per_partition as i64).max(p.start),
                    p.end,
                )
            })
            .collect();
        let name: Arc<str> = topic.into();
        match &self.inner {
            AdminInner::Local(log, _) => {
                let mut out = Vec::new();
                for (partition, from, to) in ranges {
                    let records = log
                        .read(topic, partition, from, per_partition, 16 << 20)
                        .map_err(crate::local::log_error)?;
                    out.extend(
                        records
                            .into_iter()
                            .filter(|r| r.offset < to)
                            .map(|r| crate::local::to_raw(&name, partition, r)),
                    );
                }
                Ok(out)
            }
            AdminInner::Kafka(config) => {
                let config = (**config).clone();
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
                        let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
                        while std::time::Instant::now() < deadline {
                            match consumer.poll(Duration::from_millis(100)) {
                                Some(Ok(m)) => {
                                    let offset = rdkafka::message::Message::offset(&m);
                                    if offset < to {
                                        out.push(crate::kafka::to_raw(&m, &name));
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
        }
    }

    /// Offsets of the named topics (topics that do not exist are left out).
    pub async fn topic_offsets(&self, topics: &[&str]) -> Result<Vec<TopicOffsets>, Error> {
        match &self.inner {
            AdminInner::Kafka(config) => {
                let config = (**config).clone();
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
            AdminInner::Local(log, _) => Ok(topics
                .iter()
                .filter_map(|t| log.topic(t))
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
                .collect()),
        }
    }

    /// Where `group` stands in the named topics.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<GroupPartitionLag>, Error> {
        let offsets = self.topic_offsets(topics).await?;
        let committed: Vec<Option<i64>> = match &self.inner {
            AdminInner::Kafka(config) => {
                let config = (**config).clone();
                let group = group.to_string();
                let wanted: Vec<(String, i32)> = offsets
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
                    .collect();
                blocking(move || {
                    let consumer = metadata_consumer(&config, Some(&group))?;
                    let mut tpl = TopicPartitionList::new();
                    for (t, p) in &wanted {
                        tpl.add_partition(t, *p);
                    }
                    let got = consumer
                        .committed_offsets(tpl, REQUEST_TIMEOUT)
                        .map_err(|e| kafka_error("fetch committed offsets", e))?;
                    Ok(wanted
                        .iter()
                        .map(
                            |(t, p)| match got.find_partition(t, *p).map(|e| e.offset()) {
                                Some(Offset::Offset(o)) => Some(o),
                                _ => None,
                            },
                        )
                        .collect())
                })
                .await?
            }
            AdminInner::Local(log, _) => offsets
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| (t.name.clone(), p.partition))
                })
                .map(|(t, p)| log.committed(group, &t, p))
                .collect(),
        };
        let mut out = Vec::new();
        let mut i = 0;
        for t in &offsets {
            for p in &t.partitions {
                let c = committed.get(i).copied().flatten();
                i += 1;
                out.push(GroupPartitionLag {
                    topic: t.name.clone(),
                    partition: p.partition,
                    committed: c,
                    end: p.end,
                    lag: (p.end - c.unwrap_or(p.start).max(p.start)).max(0),
                });
            }
        }
        Ok(out)
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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Closed {
            reason: format!("admin task: {e}"),
        })?
}
