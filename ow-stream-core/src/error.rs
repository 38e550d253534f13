//! The library's errors.

use std::path::PathBuf;
use std::sync::Arc;

use crate::record::RawRecord;
use crate::registry::RegistryError;
use crate::serde::SerdeError;

/// A boxed error from user code (a fallible operator or processor).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in ow-stream-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The setting at fault.
        field: &'static str,
        /// Why it is unusable.
        reason: String,
    },
    /// The topology is malformed (see [`TopologyError`]).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A broker or client operation failed.
    #[error("kafka {operation} failed: {message}")]
    Kafka {
        /// What was being done (`"produce"`, `"commit"`, `"create topics"`, ...).
        operation: &'static str,
        /// librdkafka's description of the failure.
        message: String,
        /// Whether retrying may help.
        retriable: bool,
    },
    /// The local backend failed.
    #[error("local log: {0}")]
    Local(#[from] ow_stream_log::LogError),
    /// A record could not be decoded.
    #[error("cannot decode record {topic}/{partition}@{offset}: {source}")]
    Deserialize {
        /// Source topic.
        topic: Arc<str>,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// Why.
        #[source]
        source: SerdeError,
        /// The record as it was read, byte for byte, where the reader has it (a
        /// [`Consumer`](crate::client::Consumer), a stream thread failing on it): enough to
        /// write it to a dead-letter topic unchanged. See [`Error::raw_record`].
        record: Option<Box<RawRecord>>,
    },
    /// A record is larger than the backend accepts (librdkafka's `MessageSizeTooLarge`, or the
    /// local log's batch limit).
    #[error("record of {bytes} bytes for {topic} is too large{}", limit_text(.limit))]
    RecordTooLarge {
        /// Destination topic.
        topic: Arc<str>,
        /// The size of the record: key, value and headers (for the local log, of the batch
        /// that held it).
        bytes: u64,
        /// The largest size accepted, when known: the client's `message.max.bytes` when the
        /// client refused the record, the local log's batch limit; `None` when a broker refused
        /// it under a limit of its own.
        limit: Option<u64>,
    },
    /// A record could not be encoded for a topic.
    #[error("cannot encode record for {topic}: {source}")]
    Serialize {
        /// Destination topic.
        topic: Arc<str>,
        /// Why.
        #[source]
        source: SerdeError,
    },
    /// A processor failed on a record.
    #[error("processor {node} failed on record {topic}/{partition}@{offset}: {source}")]
    Processing {
        /// The node that failed.
        node: Arc<str>,
        /// Source topic of the input record.
        topic: Arc<str>,
        /// Source partition of the input record.
        partition: i32,
        /// Source offset of the input record.
        offset: i64,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A state store failed.
    #[error("state store {store}: {source}")]
    Store {
        /// The store.
        store: Arc<str>,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A schema registry request failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The application or client was closed or failed earlier.
    #[error("closed: {reason}")]
    Closed {
        /// Why it is closed.
        reason: String,
    },
    /// An interactive query named a store that does not exist or has another type.
    #[error("no queryable store {store}: {reason}")]
    UnknownStore {
        /// The store asked for.
        store: String,
        /// Why it cannot be served.
        reason: String,
    },
}

/// Why a state store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The persistent (redb) store failed.
    #[error("redb: {0}")]
    Redb(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A key or value could not be encoded or decoded.
    #[error("serde: {0}")]
    Serde(#[from] SerdeError),
    /// The changelog holds something the store cannot apply.
    #[error("corrupt changelog {topic}/{partition}@{offset}: {reason}")]
    CorruptChangelog {
        /// Changelog topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset of the bad record.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn redb(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Redb(Box::new(e))
    }
}

/// Why a topology could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// Two nodes, stores or internal topics share a name.
    #[error("duplicate {kind} name {name:?}")]
    DuplicateName {
        /// `"node"`, `"store"` or `"internal topic"`.
        kind: &'static str,
        /// The name used twice.
        name: String,
    },
    /// A name is empty or has characters that cannot appear in a topic name.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `"node"`, `"store"`, `"topic"`.
        kind: &'static str,
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The topology reads nothing.
    #[error("the topology has no source topic")]
    NoSource,
    /// A topic is read by two source nodes.
    #[error("topic {topic:?} is read by more than one source")]
    TopicReadTwice {
        /// The topic.
        topic: String,
    },
    /// A join's inputs are not in one sub-topology.
    #[error("{node}: {reason}")]
    Invalid {
        /// The node at fault.
        node: String,
        /// What is wrong.
        reason: String,
    },
}

fn limit_text(limit: &Option<u64>) -> String {
    limit
        .map(|l| format!(" (the limit is {l} bytes)"))
        .unwrap_or_default()
}

impl Error {
    /// The undecodable record an [`Error::Deserialize`] carries, byte for byte (to write it to
    /// a dead-letter topic as it was read).
    pub fn raw_record(&self) -> Option<&RawRecord> {
        match self {
            Error::Deserialize {
                record: Some(record),
                ..
            } => Some(record),
            _ => None,
        }
    }

    /// Whether this is an [`Error::RecordTooLarge`].
    pub fn is_record_too_large(&self) -> bool {
        matches!(self, Error::RecordTooLarge { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn store(store: impl Into<Arc<str>>, source: impl Into<StoreError>) -> Self {
        Error::Store {
            store: store.into(),
            source: source.into(),
        }
    }
}
