//! The library's errors.

use std::path::PathBuf;
use std::sync::Arc;

use crate::record::RawRecord;
use crate::registry::RegistryError;
use crate::serde::SerdeError;

/// A boxed error from user code (a fallible operator or processor).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// librdkafka's error codes, as [`Error::Kafka`] carries them (re-exported from `rdkafka`, so
/// matching on them needs no dependency of your own).
pub use rdkafka::error::RDKafkaErrorCode as KafkaErrorCode;

/// A Kafka failure the library detected itself, without a librdkafka error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct KafkaFailure(pub(crate) String);

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
    /// A sub-topology joins topics of different partition counts, so the records of a key
    /// would not meet in the same task and the join could not find them (Kafka Streams'
    /// co-partitioning check): a repartition topic of fixed count
    /// ([`Repartitioned::with_number_of_partitions`](crate::dsl::Repartitioned::with_number_of_partitions))
    /// read with topics of another count, or the two input topics of a stream–stream join.
    #[error(
        "topics of sub-topology {subtopology} are not co-partitioned: {repartition_topic} has \
         {expected} partitions but {topic} has {actual}: give both the same count (or \
         repartition one side, Repartitioned::with_number_of_partitions)"
    )]
    NotCopartitioned {
        /// The sub-topology reading both topics.
        subtopology: u32,
        /// The topic whose count the other must have: the repartition topic with the fixed
        /// count, or a stream–stream join's first input topic.
        repartition_topic: String,
        /// Its partition count.
        expected: i32,
        /// The other topic.
        topic: String,
        /// Its partition count.
        actual: i32,
    },
    /// A broker or client operation failed.
    ///
    /// Match on [`code`](Error::Kafka::code) (or [`Error::kafka_code`]) to tell failures
    /// apart; the [`source`](std::error::Error::source) is librdkafka's own error
    /// ([`rdkafka::error::KafkaError`], reachable with `downcast_ref`) where there is one.
    #[error("kafka {operation} failed: {source}")]
    Kafka {
        /// What was being done (`"produce"`, `"commit offsets"`, `"create topics"`, ...).
        operation: &'static str,
        /// librdkafka's error code, when the failure has one (a failure the library detects
        /// itself, such as a changelog read that stopped making progress, has none).
        code: Option<KafkaErrorCode>,
        /// Whether retrying may help.
        retriable: bool,
        /// The failure.
        #[source]
        source: BoxError,
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
    /// User code (an operator's closure, a processor) panicked on a stream thread; the thread
    /// died. What happens next is the application's
    /// [`ThreadFailurePolicy`](crate::config::ThreadFailurePolicy).
    #[error("stream thread {thread} panicked in {location}: {message}")]
    Panicked {
        /// The thread's name (`<application_id>-stream-<n>`).
        thread: String,
        /// Where: the task and the input record (`task 0_2, record orders/2@17`), or the
        /// punctuation of a task.
        location: String,
        /// The panic's message (its payload, when it is a string).
        message: String,
    },
    /// Another instance of the application asked every instance to shut down
    /// ([`ThreadFailurePolicy::ShutdownApplication`](crate::config::ThreadFailurePolicy::ShutdownApplication)).
    #[error("another instance asked the application to shut down: {reason}")]
    ShutdownRequested {
        /// The failure of the instance that asked.
        reason: String,
    },
    /// A suppression's buffer went over its limit, and its
    /// [`BufferConfig`](crate::dsl::BufferConfig) says to shut down when full.
    #[error(
        "suppress {node}: buffer store {store} is full ({records} records, {bytes} bytes; \
         {limit}) and is set to shut down when full"
    )]
    SuppressBufferFull {
        /// The suppress operator.
        node: Arc<str>,
        /// Its buffer store.
        store: Arc<str>,
        /// Entries the buffer would hold.
        records: u64,
        /// Bytes the buffer would hold.
        bytes: u64,
        /// Its limits, as text.
        limit: String,
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

    /// librdkafka's error code, for an [`Error::Kafka`] that has one.
    ///
    /// ```
    /// use ow_stream_core::Error;
    /// use ow_stream_core::error::KafkaErrorCode;
    ///
    /// fn is_auth_failure(e: &Error) -> bool {
    ///     matches!(e.kafka_code(), Some(KafkaErrorCode::SaslAuthenticationFailed))
    /// }
    /// ```
    pub fn kafka_code(&self) -> Option<KafkaErrorCode> {
        match self {
            Error::Kafka { code, .. } => *code,
            _ => None,
        }
    }

    /// An [`Error::Kafka`] the library detected itself (no librdkafka error behind it).
    pub(crate) fn kafka_failure(
        operation: &'static str,
        message: impl Into<String>,
        retriable: bool,
    ) -> Self {
        Error::Kafka {
            operation,
            code: None,
            retriable,
            source: Box::new(KafkaFailure(message.into())),
        }
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
