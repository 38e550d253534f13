//! One configuration for the whole library.
//!
//! [`StreamsConfig`] names the application, says which backend carries the topics (Kafka
//! brokers, or the durable local log for one machine), where the schema registry and the state
//! directory are, and how errors and commits are handled. The library reads no flags and no
//! environment variables: applications build this configuration from their own settings
//! (the ow-stream binaries from their shared command-line flags).
//!
//! ```
//! use std::time::Duration;
//! use ow_stream_core::config::{Backend, OnError, StreamsConfig};
//!
//! let config = StreamsConfig::new("word-count", Backend::kafka("localhost:9092"))
//!     .with_commit_interval(Duration::from_millis(500))
//!     .with_deserialization_errors(OnError::DeadLetter)
//!     .with_kafka_setting("compression.type", "zstd");
//! assert_eq!(config.dead_letter_topic(), "word-count-dlq");
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::topic::is_valid_topic_name;

/// Which system carries the topics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Apache Kafka (or anything speaking its protocol), through librdkafka.
    Kafka {
        /// `host:port[,host:port…]`.
        bootstrap_servers: String,
    },
    /// The durable local log under a directory: one machine, no broker.
    Local {
        /// The directory that holds the topics and group offsets.
        dir: PathBuf,
    },
}

impl Backend {
    /// Kafka at the given bootstrap servers.
    pub fn kafka(bootstrap_servers: impl Into<String>) -> Self {
        Backend::Kafka {
            bootstrap_servers: bootstrap_servers.into(),
        }
    }

    /// The local log in `dir`.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Backend::Local { dir: dir.into() }
    }

    /// Parses a broker setting: `local:///path` (or `local:path`) selects the local log at that
    /// path; anything else is a Kafka bootstrap list (`host:port[,host:port…]`).
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("local://") {
            if path.is_empty() {
                return Err(Error::Config {
                    field: "brokers",
                    reason: "local:// needs a path, as in local:///var/lib/ow".into(),
                });
            }
            return Ok(Backend::local(path));
        }
        if let Some(path) = spec.strip_prefix("local:") {
            return Ok(Backend::local(path));
        }
        if spec.is_empty() {
            return Err(Error::Config {
                field: "brokers",
                reason: "empty bootstrap server list".into(),
            });
        }
        for server in spec.split(',') {
            let server = server.trim();
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(Error::Config {
                    field: "brokers",
                    reason: format!("{server:?} is not host:port"),
                });
            }
        }
        Ok(Backend::kafka(spec))
    }
}

/// The delivery guarantee of a streams application (Kafka Streams' `processing.guarantee`).
///
/// The guarantee covers what a **stream thread** of [`Streams`](crate::Streams) reads and
/// writes: its input offsets, its sink, changelog and repartition records, and its stores. It
/// does not make the typed [`Producer`](crate::client::Producer) transactional (records it
/// sends are written once per acknowledged send, as before), nor what a processor does outside
/// the topology (an HTTP call, say), which a crash may repeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// Every input record is processed at least once; output records may be written more than
    /// once after a crash. State stores are exact: store writes commit atomically with the input
    /// offsets they reflect (and with de-duplication marks for repartitioned records), so a
    /// crash never counts a record twice into a store. Stream threads and the typed consumer
    /// read uncommitted (every record appended).
    #[default]
    AtLeastOnce,
    /// Exactly once (Kafka's `exactly_once_v2`): everything a stream thread writes between two
    /// commits — sink, changelog and repartition records — and the input offsets it consumed
    /// commit as one transaction, so after a crash (`kill -9` included) readers with
    /// read_committed isolation see each output record once or, for an unfinished commit, not
    /// at all. Stores follow the transaction: their local files commit after it and are brought
    /// up to it from their changelogs (read committed) when a crash came in between. Stream
    /// threads, changelog restore and the typed [`Consumer`](crate::client::Consumer) read
    /// committed. On the local backend each stream thread has a transactional producer
    /// (`<application_id>-thread-<n>`) on the log.
    ///
    /// On Kafka each stream thread has a transactional producer too, with `transactional.id`
    /// `<application_id>-<instance>-thread-<n>`, where `<instance>` is a random id the instance
    /// keeps in `<state_dir>/<application_id>/kafka-instance-id`. A commit sends the input
    /// offsets into the transaction with the consumer's group metadata
    /// (`send_offsets_to_transaction`, which fences a thread that lost its partitions in a
    /// rebalance), then commits it; the consumer commits no offsets of its own; stream threads,
    /// restore and the typed consumer read with `isolation.level=read_committed`. A failed
    /// transaction is aborted and the thread's tasks start again from the last commit; a fatal
    /// error (the producer fenced) ends the thread, and
    /// [`ThreadFailurePolicy`] applies. The brokers must support transactions (Kafka 2.5 or
    /// later for the group-metadata fencing). What the library's tests prove on Kafka is the
    /// transactional flow and its error handling, on librdkafka's mock cluster, which writes
    /// no transaction markers and does not store transactional offsets: that read_committed
    /// readers never see an aborted transaction's records is Kafka's guarantee, not checked
    /// here against a real broker.
    ///
    /// The cost: a commit waits for its transaction's markers (one more append per partition
    /// written, and a few fsyncs of the coordinator's file), and read_committed readers see a
    /// thread's output only once it commits, so end-to-end latency grows by up to the commit
    /// interval. `BENCHMARKS.md` has the figures.
    ExactlyOnce,
}

impl ProcessingGuarantee {
    /// Parses Kafka Streams' names: `at_least_once`, `exactly_once` (also `exactly_once_v2`),
    /// case-insensitive, `-` or `_`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once" | "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnce),
            other => Err(Error::Config {
                field: "processing_guarantee",
                reason: format!("{other:?} is neither at_least_once nor exactly_once"),
            }),
        }
    }

    /// Whether stream threads write through transactions.
    pub fn is_exactly_once(self) -> bool {
        self == ProcessingGuarantee::ExactlyOnce
    }
}

/// What to do with a record that cannot be decoded or processed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// Stop the application with the error.
    Fail,
    /// Log the error (with its provenance), count it in the metrics, and go on.
    LogAndSkip,
    /// Write the record, byte for byte, to the dead-letter topic `<application_id>-dlq` with
    /// headers naming its source topic, partition, offset and the error; then go on.
    #[default]
    DeadLetter,
}

/// What happens when a stream thread dies: a panic in user code (an operator's closure, a
/// processor), or an error the thread cannot go on from (a record that fails under
/// [`OnError::Fail`], a broker or store failure). Kafka Streams' uncaught-exception handler
/// responses, under the same names.
///
/// Whatever the policy, the dead thread commits nothing after the failure: its tasks are
/// dropped as a crash would drop them, and whoever runs them next resumes from the last commit
/// (stores stay exact). The failure is logged at `error` and counted in
/// [`Metrics::stream_thread_failures`](crate::metrics::Metrics::stream_thread_failures).
///
/// | policy | the thread | the application instance | other instances (Kafka) |
/// |---|---|---|---|
/// | [`ReplaceThread`](Self::ReplaceThread) | replaced by a new one, which restores its tasks | stays [`Running`](crate::runtime::StreamsState::Running) | untouched |
/// | [`ShutdownClient`](Self::ShutdownClient) (default) | stops | every thread stops; [`Error`](crate::runtime::StreamsState::Error) with the failure in [`Streams::failure`](crate::Streams::failure) | untouched (the group gives them the partitions) |
/// | [`ShutdownApplication`](Self::ShutdownApplication) | stops | as `ShutdownClient` | asked to stop too, and fail with [`Error::ShutdownRequested`] |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadFailurePolicy {
    /// Start a new stream thread in place of the dead one (after one commit interval, so a
    /// failure that repeats does not spin). A record that fails deterministically fails again
    /// in the new thread: use this policy for failures that can pass (a broker outage), and
    /// watch [`Metrics::stream_threads_replaced`](crate::metrics::Metrics::stream_threads_replaced).
    ReplaceThread,
    /// Stop every stream thread of this instance and move it to the error state.
    #[default]
    ShutdownClient,
    /// Like [`ShutdownClient`](Self::ShutdownClient), and ask every other instance of the
    /// application to shut down too. On Kafka the request is a record in the internal topic
    /// `<application_id>-shutdown` (created when the policy is chosen), which every instance
    /// that runs with this policy watches at each commit. On the local backend one process
    /// runs the whole application, so this is the same as `ShutdownClient`.
    ShutdownApplication,
}

/// Where state stores keep their data when a [`Materialized`](crate::dsl::Materialized) does
/// not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreBackend {
    /// redb files under the state directory: state survives restarts and only the changelog
    /// tail written since the last commit is replayed.
    #[default]
    Persistent,
    /// In memory, rebuilt from the changelog at every start.
    InMemory,
}

/// When the local backend's appends reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalFsync {
    /// Every append is fsynced before it is acknowledged (concurrent appends share fsyncs).
    /// No acknowledged record is lost even on power loss.
    Always,
    /// A background flusher fsyncs at this interval. A killed process loses nothing; a power
    /// loss can lose what was acknowledged in the last interval.
    Interval(Duration),
    /// Never fsync (tests and throw-away data).
    Never,
}

/// Settings of the durable local backend ([`Backend::Local`]). The first client of a
/// directory in a process opens it with its settings; later clients share it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalOptions {
    /// The fsync policy. Default: [`LocalFsync::Always`].
    pub fsync: LocalFsync,
    /// How often retention and compaction run. Default: every 60 seconds.
    pub maintenance_interval: Duration,
    /// Segment size of the internal topics the library creates (changelogs compact closed
    /// segments only). Default: the log's default (64 MiB).
    pub segment_bytes: Option<u64>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            fsync: LocalFsync::Always,
            maintenance_interval: Duration::from_secs(60),
            segment_bytes: None,
        }
    }
}

impl LocalOptions {
    /// Sets the fsync policy.
    pub fn with_fsync(mut self, fsync: LocalFsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets how often retention and compaction run.
    pub fn with_maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Sets the segment size of internal topics.
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = Some(bytes);
        self
    }
}

/// The configuration of a streams application, producer or consumer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StreamsConfig {
    /// Names the application: its consumer group, the prefix of its internal topics
    /// (`<application_id>-<name>-changelog`, `-repartition`, `-dlq`) and its state directory.
    pub application_id: String,
    /// Kafka or the local log.
    pub backend: Backend,
    /// Schema registry URL (`http(s)://…`, `mock://<scope>`), when the application uses one.
    pub schema_registry_url: Option<String>,
    /// Root of the state stores (`<state_dir>/<application_id>/<task>/`).
    pub state_dir: PathBuf,
    /// How often stores, changelogs and offsets are committed together.
    pub commit_interval: Duration,
    /// The delivery guarantee.
    pub processing_guarantee: ProcessingGuarantee,
    /// Processing threads in this process (each is one consumer-group member).
    pub num_stream_threads: usize,
    /// Policy for records that cannot be decoded.
    pub deserialization_errors: OnError,
    /// Policy for records a processor fails on.
    pub processing_errors: OnError,
    /// How long a stream thread waits for an unreachable schema registry (connection refused,
    /// timeouts, 408/429/5xx answers) when it needs a schema it has not loaded yet, retrying
    /// with backoff. Such a record is not bad, so neither error policy applies to it: the
    /// thread waits, and when the registry is still away after this long it fails with
    /// [`Error::Registry`] (and [`ThreadFailurePolicy`] decides what
    /// follows). Schemas already loaded need no registry. Default 60 s, well under the
    /// consumer's `max.poll.interval.ms` (300 s).
    pub schema_registry_wait: Duration,
    /// Default store backend.
    pub default_store: StoreBackend,
    /// Most records taken from the consumer in one batch.
    pub max_poll_records: usize,
    /// Partitions of the internal topics the application creates (repartition, changelog)
    /// when they cannot be derived from the source topics.
    pub internal_topic_partitions: Option<i32>,
    /// librdkafka settings passed through as they are (for example `compression.type`,
    /// `security.protocol`). They override the library's own choices.
    pub kafka: BTreeMap<String, String>,
    /// Settings of the local backend.
    pub local: LocalOptions,
    /// Bytes of record cache for the stores of aggregations, shared evenly by the stream
    /// threads (Kafka Streams' `statestore.cache.max.bytes`). Updates of a key collapse in the
    /// cache until the next commit, or until the cache of a thread is full: only the latest
    /// value of each key then reaches the store, its changelog and the records downstream.
    /// `0` turns caching off: every update is written and forwarded at once. Default
    /// [`DEFAULT_CACHE_MAX_BYTES`].
    pub cache_max_bytes: usize,
    /// What happens when a stream thread dies (Kafka Streams' uncaught-exception handler).
    pub thread_failures: ThreadFailurePolicy,
    /// How a task that reads several partitions (a stream and a table, say) orders their
    /// records — Kafka Streams' `max.task.idle.ms`. `Some(idle)`: the task processes the
    /// buffered record with the smallest timestamp, and only once every one of its input
    /// partitions has a record buffered, or has none left to fetch and stayed empty for
    /// `idle`; a partition whose records are still being fetched is waited for (at most
    /// [`LAGGING_PARTITION_WAIT`], or `idle` if longer),
    /// and a task with [`MAX_BUFFERED_PER_PARTITION`]
    /// records of one partition buffered processes without waiting. Either cut-short wait is
    /// counted in [`Metrics::enforced_processing`](crate::metrics::Metrics::enforced_processing).
    /// `None`: records are processed in the order they are fetched (Kafka Streams' `-1`).
    /// Default `Some(0)`: wait for records known to exist, never for records not yet written.
    pub max_task_idle: Option<Duration>,
}

/// The default [`StreamsConfig::cache_max_bytes`]: 10 MiB, as in Kafka Streams.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 10 * 1024 * 1024;

/// How long a task waits at most for a partition whose records are still being fetched, when
/// [`StreamsConfig::max_task_idle`] is shorter.
pub const LAGGING_PARTITION_WAIT: Duration = Duration::from_secs(2);

/// Records of one input partition a task buffers at most while it waits for its other
/// partitions (see [`StreamsConfig::max_task_idle`]).
pub const MAX_BUFFERED_PER_PARTITION: usize = 10_000;

/// The default of [`StreamsConfig::schema_registry_wait`].
pub const DEFAULT_SCHEMA_REGISTRY_WAIT: Duration = Duration::from_secs(60);

impl StreamsConfig {
    /// A configuration with the library's defaults: state in `./.ow-state`, commits every
    /// second, one stream thread, dead-letter topic for bad records, persistent stores, a
    /// 10 MiB record cache.
    pub fn new(application_id: impl Into<String>, backend: Backend) -> Self {
        StreamsConfig {
            application_id: application_id.into(),
            backend,
            schema_registry_url: None,
            state_dir: PathBuf::from("./.ow-state"),
            commit_interval: Duration::from_secs(1),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            num_stream_threads: 1,
            deserialization_errors: OnError::DeadLetter,
            processing_errors: OnError::DeadLetter,
            schema_registry_wait: DEFAULT_SCHEMA_REGISTRY_WAIT,
            default_store: StoreBackend::Persistent,
            max_poll_records: 1000,
            internal_topic_partitions: None,
            kafka: BTreeMap::new(),
            local: LocalOptions::default(),
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            thread_failures: ThreadFailurePolicy::ShutdownClient,
            max_task_idle: Some(Duration::ZERO),
        }
    }

    /// Sets the schema registry URL.
    pub fn with_schema_registry(mut self, url: impl Into<String>) -> Self {
        self.schema_registry_url = Some(url.into());
        self
    }

    /// Sets the state directory.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Sets the commit interval.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Sets the number of stream threads.
    pub fn with_stream_threads(mut self, threads: usize) -> Self {
        self.num_stream_threads = threads.max(1);
        self
    }

    /// Sets the policy for records that cannot be decoded.
    pub fn with_deserialization_errors(mut self, policy: OnError) -> Self {
        self.deserialization_errors = policy;
        self
    }

    /// Sets the policy for records a processor fails on.
    pub fn with_processing_errors(mut self, policy: OnError) -> Self {
        self.processing_errors = policy;
        self
    }

    /// Sets the default store backend.
    pub fn with_default_store(mut self, store: StoreBackend) -> Self {
        self.default_store = store;
        self
    }

    /// Sets how long a stream thread waits for an unreachable schema registry
    /// ([`StreamsConfig::schema_registry_wait`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::config::{Backend, StreamsConfig};
    ///
    /// let config = StreamsConfig::new("app", Backend::kafka("localhost:9092"))
    ///     .with_schema_registry_wait(Duration::from_secs(120));
    /// assert_eq!(config.schema_registry_wait, Duration::from_secs(120));
    /// ```
    pub fn with_schema_registry_wait(mut self, wait: Duration) -> Self {
        self.schema_registry_wait = wait;
        self
    }

    /// Sets the partition count of internal topics.
    pub fn with_internal_topic_partitions(mut self, partitions: i32) -> Self {
        self.internal_topic_partitions = Some(partitions);
        self
    }

    /// Sets the record cache budget of the stores ([`StreamsConfig::cache_max_bytes`]; `0`:
    /// no caching).
    pub fn with_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// Sets what happens when a stream thread dies (see [`ThreadFailurePolicy`]).
    pub fn with_thread_failure_policy(mut self, policy: ThreadFailurePolicy) -> Self {
        self.thread_failures = policy;
        self
    }

    /// Sets how a task with several input partitions orders their records (see
    /// [`StreamsConfig::max_task_idle`]; `None` turns the alignment off).
    pub fn with_max_task_idle(mut self, idle: Option<Duration>) -> Self {
        self.max_task_idle = idle;
        self
    }

    /// The internal topic that carries [`ThreadFailurePolicy::ShutdownApplication`]'s requests:
    /// `<application_id>-shutdown`.
    pub fn shutdown_topic(&self) -> String {
        format!("{}-shutdown", self.application_id)
    }

    /// Sets the processing guarantee.
    pub fn with_processing_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.processing_guarantee = guarantee;
        self
    }

    /// Sets the local backend's options.
    pub fn with_local_options(mut self, local: LocalOptions) -> Self {
        self.local = local;
        self
    }

    /// Passes a librdkafka setting through.
    pub fn with_kafka_setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kafka.insert(key.into(), value.into());
        self
    }

    /// The dead-letter topic: `<application_id>-dlq`.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}-dlq", self.application_id)
    }

    /// The name of an internal topic: `<application_id>-<name>-<suffix>`.
    pub fn internal_topic(&self, name: &str, suffix: &str) -> String {
        format!("{}-{}-{}", self.application_id, name, suffix)
    }

    /// The schema registry this configuration names: its URL when one is set; otherwise, on
    /// the local backend, the registry persisted in `<state_dir>/schema-registry` (schema ids
    /// stay valid across restarts). Kafka without a registry URL is an error.
    pub fn schema_registry(&self) -> Result<crate::registry::SchemaRegistry, Error> {
        match (&self.schema_registry_url, &self.backend) {
            (Some(url), _) => Ok(crate::registry::SchemaRegistry::from_url(url)?),
            (None, Backend::Local { .. }) => Ok(crate::registry::SchemaRegistry::open_dir(
                self.state_dir.join("schema-registry"),
            )?),
            (None, Backend::Kafka { .. }) => Err(Error::Config {
                field: "schema_registry_url",
                reason: "Kafka needs a schema registry URL".into(),
            }),
        }
    }

    /// Checks what can be checked without connecting anywhere.
    pub fn validate(&self) -> Result<(), Error> {
        if self.application_id.is_empty()
            || !is_valid_topic_name(&format!("{}-x-changelog", self.application_id))
        {
            return Err(Error::Config {
                field: "application_id",
                reason: format!(
                    "{:?} must be non-empty and use only [a-zA-Z0-9._-]",
                    self.application_id
                ),
            });
        }
        if self.commit_interval.is_zero() {
            return Err(Error::Config {
                field: "commit_interval",
                reason: "must be positive".into(),
            });
        }
        if self.max_poll_records == 0 {
            return Err(Error::Config {
                field: "max_poll_records",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs() {
        assert_eq!(
            Backend::parse("localhost:9092,b:9093").unwrap(),
            Backend::kafka("localhost:9092,b:9093")
        );
        assert_eq!(
            Backend::parse("local:///var/lib/ow").unwrap(),
            Backend::local("/var/lib/ow")
        );
        assert_eq!(
            Backend::parse("local:rel/dir").unwrap(),
            Backend::local("rel/dir")
        );
        assert!(Backend::parse("").is_err());
        assert!(Backend::parse("local://").is_err());
        assert!(Backend::parse("nohostport").is_err());
        assert!(Backend::parse("host:notaport").is_err());
    }

    #[test]
    fn validation() {
        let ok = StreamsConfig::new("app-1", Backend::kafka("h:1"));
        assert!(ok.validate().is_ok());
        assert!(
            StreamsConfig::new("bad id", Backend::kafka("h:1"))
                .validate()
                .is_err()
        );
        assert_eq!(
            ok.internal_topic("counts", "changelog"),
            "app-1-counts-changelog"
        );
    }

    #[test]
    fn exactly_once_validates_on_both_backends() {
        for backend in [Backend::kafka("h:1"), Backend::local("/tmp/ow")] {
            let config = StreamsConfig::new("app-1", backend)
                .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce);
            assert!(config.validate().is_ok(), "{:?}", config.backend);
        }
    }
}
