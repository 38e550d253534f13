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

use std::time::Duration;

use serde::Serialize;

use crate::backend::AdminOps;
use crate::config::StreamsConfig;
use crate::error::Error;
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
    /// Other topic-level settings, passed to Kafka as they are (`max.message.bytes`, say);
    /// the local backend keeps only the ones above and ignores these.
    pub configs: Vec<(String, String)>,
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
            configs: Vec::new(),
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

    /// Adds a topic-level setting passed to Kafka as it is (see [`TopicSpec::configs`]); it
    /// wins over what the typed fields would set for the same key.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }

    /// The topic-level settings Kafka gets for this topic.
    pub(crate) fn kafka_settings(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut typed = |key: &str, value: String| {
            if !self.configs.iter().any(|(k, _)| k == key) {
                out.push((key.to_string(), value));
            }
        };
        if self.compacted {
            typed("cleanup.policy", "compact".to_string());
        }
        if let Some(r) = self.retention {
            typed("retention.ms", r.as_millis().to_string());
        }
        if let Some(b) = self.retention_bytes {
            typed("retention.bytes", b.to_string());
        }
        out.extend(self.configs.iter().cloned());
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
    inner: Box<dyn AdminOps>,
}

impl Admin {
    /// An admin client for the configured backend.
    pub fn new(config: &StreamsConfig) -> Result<Admin, Error> {
        Ok(Admin {
            inner: crate::backend::connect(config)?.admin()?,
        })
    }

    /// Creates the topics that do not exist yet (existing ones are left as they are).
    pub async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), Error> {
        self.inner.create_topics(specs).await
    }

    /// Every topic's name, sorted (internal topics of the cluster, starting with `__`, left out).
    pub async fn list_topics(&self) -> Result<Vec<String>, Error> {
        let mut names = self.inner.list_topics().await?;
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
        self.inner.read_ranges(topic, ranges, per_partition).await
    }

    /// Offsets of the named topics (topics that do not exist are left out).
    pub async fn topic_offsets(&self, topics: &[&str]) -> Result<Vec<TopicOffsets>, Error> {
        self.inner.topic_offsets(topics).await
    }

    /// Where `group` stands in the named topics.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<GroupPartitionLag>, Error> {
        let offsets = self.topic_offsets(topics).await?;
        let wanted: Vec<(String, i32)> = offsets
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
            .collect();
        let committed = self.inner.committed(group, wanted).await?;
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
