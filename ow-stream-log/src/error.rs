//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in [`Log`](crate::Log).
///
/// Each variant carries the context needed to act on it (which file, which
/// topic and partition, which offset) so a caller can log it as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file-system operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A file holds data that cannot be what this crate wrote (bad CRC, bad
    /// length, impossible field), in a place where recovery cannot simply cut
    /// off a torn tail.
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The byte position of the damage inside `path`.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// Another `Log` (in this process or another one) holds the directory.
    #[error("log directory {path} is locked by process {}", pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id written in the lock file by its holder, if readable.
        pid: Option<u32>,
    },

    /// The topic does not exist.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("unknown partition {partition} of topic {topic:?}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },

    /// A topic name breaks Kafka's rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A topic configuration value is out of range.
    #[error("invalid configuration for topic {topic:?}: {reason}")]
    InvalidConfig {
        /// The topic being created.
        topic: String,
        /// What is wrong.
        reason: String,
    },

    /// `create_topic` was called for an existing topic with a different
    /// partition count.
    #[error("topic {topic:?} already exists with {existing} partitions, not {requested}")]
    TopicExists {
        /// The topic.
        topic: String,
        /// Its partition count on disk.
        existing: i32,
        /// The partition count asked for.
        requested: i32,
    },

    /// A read asked for an offset outside `[start, end]`.
    #[error(
        "offset {requested} is out of range for {topic}-{partition} (log start {start}, end {end})"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        requested: i64,
        /// The first offset still in the log.
        start: i64,
        /// The offset the next appended record will get.
        end: i64,
    },

    /// `append` was called with no records.
    #[error("empty batch appended to {topic}-{partition}")]
    EmptyBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A batch is larger than the format allows.
    #[error("batch of {bytes} bytes for {topic}-{partition} exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The encoded size of the batch.
        bytes: u64,
        /// The largest batch accepted.
        max: u64,
    },

    /// A record without a key was appended to a compacted topic (Kafka
    /// rejects these too: compaction has nothing to keep them by).
    #[error("record without a key appended to compacted topic {topic}-{partition}")]
    MissingKey {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A consumer-group name or commit is not acceptable.
    #[error("invalid commit for group {group:?}: {reason}")]
    InvalidCommit {
        /// The group.
        group: String,
        /// What is wrong.
        reason: String,
    },

    /// A newer producer with the same transactional id was initialised (or
    /// the log reopened): this one may no longer write (Kafka's
    /// `PRODUCER_FENCED`).
    #[error(
        "transactional producer {transactional_id:?} with epoch {epoch} is fenced by epoch {current}"
    )]
    ProducerFenced {
        /// The transactional id.
        transactional_id: String,
        /// The epoch of the fenced producer.
        epoch: u32,
        /// The current epoch of the id.
        current: u32,
    },

    /// A transactional call out of order (an append outside a transaction,
    /// say) or an unacceptable transactional id.
    #[error("invalid transaction operation for {transactional_id:?}: {reason}")]
    InvalidTransaction {
        /// The transactional id.
        transactional_id: String,
        /// What is wrong.
        reason: String,
    },

    /// An earlier write or fsync on this partition failed, so what is on disk
    /// is unknown; the partition refuses writes until the log is reopened
    /// (which re-runs recovery).
    #[error(
        "partition {topic}-{partition} refuses writes after an earlier i/o failure; reopen the log"
    )]
    Poisoned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        LogError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|source| LogError::io(path, source))
    }
}
