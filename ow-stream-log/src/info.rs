//! Plain-data views for introspection (the dashboard's "pipeline" page) and
//! the report of a maintenance pass.

use crate::config::TopicConfig;

/// A topic, its configuration and the state of each partition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// Its configuration.
    pub config: TopicConfig,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// Bytes on disk over all partitions.
    pub fn size_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.size_bytes).sum()
    }

    /// Records appended over all partitions since the log was opened.
    pub fn records_appended(&self) -> u64 {
        self.partitions.iter().map(|p| p.records_appended).sum()
    }

    /// Sum over partitions of `end - start` (an upper bound on the records
    /// held: compaction leaves gaps).
    pub fn offset_span(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| p.end_offset - p.start_offset)
            .sum()
    }
}

/// The state of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: i32,
    /// The first offset still in the log.
    pub start_offset: i64,
    /// The offset the next record will get (Kafka's log end offset / high
    /// watermark).
    pub end_offset: i64,
    /// Bytes of segment data on disk (indexes not counted).
    pub size_bytes: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Records appended since the log was opened (a counter: derive a rate
    /// by sampling it).
    pub records_appended: u64,
}

/// A consumer group's committed offsets and lag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group id.
    pub group: String,
    /// One entry per committed partition, sorted by topic then partition.
    pub partitions: Vec<GroupPartitionInfo>,
}

impl GroupInfo {
    /// Sum of the lag over all committed partitions.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// One committed offset of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupPartitionInfo {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset (the next record the group will read).
    pub committed: i64,
    /// The partition's end offset now (-1 if the topic no longer exists).
    pub end_offset: i64,
    /// `end_offset - committed`, at least 0.
    pub lag: i64,
}

/// Everything at once: counters, topics and groups.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogStats {
    /// Records appended to any partition since the log was opened.
    pub records_appended: u64,
    /// Encoded bytes appended since the log was opened.
    pub bytes_appended: u64,
    /// Every topic, sorted by name.
    pub topics: Vec<TopicInfo>,
    /// Every consumer group, sorted by id.
    pub groups: Vec<GroupInfo>,
}

/// Why a segment was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeleteReason {
    /// All its records are older than `retention`.
    RetentionTime,
    /// The partition was over `retention_bytes`.
    RetentionBytes,
    /// [`Log::delete_records`](crate::Log::delete_records) asked for it.
    DeleteRecords,
}

/// One thing a maintenance pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaintenanceAction {
    /// The active segment was closed and a new one started at
    /// `new_base_offset`.
    Rolled {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Base offset of the new active segment.
        new_base_offset: i64,
    },
    /// A whole segment was deleted.
    Deleted {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Base offset of the deleted segment.
        base_offset: i64,
        /// Its size.
        bytes: u64,
        /// Why.
        reason: DeleteReason,
    },
    /// Consecutive closed segments were compacted into one.
    Compacted {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Base offset of the resulting segment (that of the first input).
        base_offset: i64,
        /// Number of input segments.
        segments: usize,
        /// Total size of the inputs.
        bytes_before: u64,
        /// Size of the output.
        bytes_after: u64,
        /// Records dropped (superseded values and expired tombstones).
        records_removed: u64,
    },
}

/// What [`Log::maintain`](crate::Log::maintain) did, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Every action taken.
    pub actions: Vec<MaintenanceAction>,
}

impl MaintenanceReport {
    /// Number of segments deleted by retention or `delete_records`.
    pub fn segments_deleted(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, MaintenanceAction::Deleted { .. }))
            .count()
    }

    /// Number of compaction rewrites.
    pub fn compactions(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, MaintenanceAction::Compacted { .. }))
            .count()
    }

    /// Disk bytes freed by deletion and compaction.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.actions
            .iter()
            .map(|a| match a {
                MaintenanceAction::Deleted { bytes, .. } => *bytes,
                MaintenanceAction::Compacted {
                    bytes_before,
                    bytes_after,
                    ..
                } => bytes_before.saturating_sub(*bytes_after),
                MaintenanceAction::Rolled { .. } => 0,
            })
            .sum()
    }

    /// True when nothing was done.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}
