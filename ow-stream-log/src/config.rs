//! Options of the log as a whole and of each topic.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When appended data is forced to stable storage (`fsync`/`fdatasync`).
///
/// Whatever the policy, an `append` that returned has handed its bytes to the
/// operating system with `write`, so killing the process (`kill -9`, a panic,
/// an abort) never loses an acknowledged record: the kernel still writes the
/// page cache out. The policy only matters when the *machine* stops (power
/// loss, kernel panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FsyncPolicy {
    /// `append` returns only after its batch is on stable storage: no
    /// acknowledged record is ever lost, even on power loss. Concurrent
    /// appenders to one partition share fsyncs (group commit), so the cost is
    /// one fsync per *group* of waiting callers, not per call. Readers see a
    /// batch only once it is durable.
    #[default]
    Always,
    /// A background flusher fsyncs every partition with unsynced data once per
    /// interval (group commit over time). On power loss, records acknowledged
    /// during the last interval (plus the time one fsync takes) can be lost;
    /// batches stay atomic (a torn batch is cut off on recovery). Readers see
    /// a batch as soon as `append` returns.
    Interval(Duration),
    /// Never fsync; the operating system writes back when it likes (Linux:
    /// typically within ~30 s). Closing does not fsync either, so every open
    /// re-validates each partition's active segment in full. For tests and
    /// throw-away data.
    Never,
}

/// What happens to old data of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CleanupPolicy {
    /// Whole old segments are deleted by `retention` / `retention_bytes`.
    #[default]
    Delete,
    /// Closed segments are compacted: only the latest record per key is kept.
    /// `retention` and `retention_bytes` are ignored.
    Compact,
    /// Both: compaction, and deletion of segments past retention.
    DeleteAndCompact,
}

impl CleanupPolicy {
    pub(crate) fn deletes(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Delete | CleanupPolicy::DeleteAndCompact
        )
    }

    pub(crate) fn compacts(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Compact | CleanupPolicy::DeleteAndCompact
        )
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::DeleteAndCompact => "delete,compact",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "delete" => Some(CleanupPolicy::Delete),
            "compact" => Some(CleanupPolicy::Compact),
            "delete,compact" | "compact,delete" => Some(CleanupPolicy::DeleteAndCompact),
            _ => None,
        }
    }
}

/// Per-topic settings, persisted with the topic, with Kafka's names noted.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_log::{CleanupPolicy, TopicConfig};
/// let changelog = TopicConfig::new(4).with_cleanup(CleanupPolicy::Compact);
/// let events = TopicConfig::new(4)
///     .with_retention(Some(Duration::from_secs(24 * 3600)))
///     .with_retention_bytes(Some(512 << 20));
/// assert_eq!(changelog.partitions, 4);
/// assert_eq!(events.retention_bytes, Some(512 << 20));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Number of partitions (≥ 1), fixed at creation.
    pub partitions: i32,
    /// Deletion, compaction or both (Kafka: `cleanup.policy`). Default: delete.
    pub cleanup: CleanupPolicy,
    /// Delete closed segments whose newest record timestamp is older than
    /// this (Kafka: `retention.ms`). `None` = keep forever. Default: 7 days.
    pub retention: Option<Duration>,
    /// Delete the oldest closed segments while the partition stays at least
    /// this big without them (Kafka: `retention.bytes`), so a partition stays under
    /// `retention_bytes + segment_bytes`. `None` = no size limit (default).
    pub retention_bytes: Option<u64>,
    /// Roll to a new segment when the active one would exceed this many bytes
    /// (Kafka: `segment.bytes`). Default: 64 MiB. Range: 4 KiB ..= 1 GiB.
    pub segment_bytes: u64,
    /// Roll the active segment once it has been open for this long, so
    /// retention and compaction can reach data of quiet partitions
    /// (Kafka: `segment.ms`). Default: 7 days.
    pub segment_time: Option<Duration>,
    /// How long a tombstone survives after compaction first sees it
    /// (Kafka: `delete.retention.ms`). Default: 1 day.
    pub delete_retention: Duration,
    /// Compact a partition when at least this fraction of its closed bytes is
    /// new since the last compaction (Kafka: `min.cleanable.dirty.ratio`). Default
    /// 0.5; 0.0 compacts on every maintenance pass.
    pub min_cleanable_ratio: f64,
}

impl TopicConfig {
    /// Kafka-like defaults with `partitions` partitions.
    pub fn new(partitions: i32) -> Self {
        TopicConfig {
            partitions,
            cleanup: CleanupPolicy::Delete,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            segment_bytes: 64 << 20,
            segment_time: Some(Duration::from_secs(7 * 24 * 3600)),
            delete_retention: Duration::from_secs(24 * 3600),
            min_cleanable_ratio: 0.5,
        }
    }

    /// Sets the cleanup policy.
    pub fn with_cleanup(mut self, cleanup: CleanupPolicy) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// Sets time retention (`None` = forever).
    pub fn with_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Sets size retention per partition (`None` = unbounded).
    pub fn with_retention_bytes(mut self, bytes: Option<u64>) -> Self {
        self.retention_bytes = bytes;
        self
    }

    /// Sets the segment size.
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Sets the segment age after which it is rolled (`None` = size only).
    pub fn with_segment_time(mut self, time: Option<Duration>) -> Self {
        self.segment_time = time;
        self
    }

    /// Sets how long tombstones survive compaction.
    pub fn with_delete_retention(mut self, time: Duration) -> Self {
        self.delete_retention = time;
        self
    }

    /// Sets the dirty ratio that triggers compaction.
    pub fn with_min_cleanable_ratio(mut self, ratio: f64) -> Self {
        self.min_cleanable_ratio = ratio;
        self
    }

    pub(crate) const MIN_SEGMENT_BYTES: u64 = 4 << 10;
    pub(crate) const MAX_SEGMENT_BYTES: u64 = 1 << 30;

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.partitions < 1 || self.partitions > 100_000 {
            return Err(format!(
                "partitions must be between 1 and 100000, not {}",
                self.partitions
            ));
        }
        if !(Self::MIN_SEGMENT_BYTES..=Self::MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(format!(
                "segment_bytes must be between {} and {}, not {}",
                Self::MIN_SEGMENT_BYTES,
                Self::MAX_SEGMENT_BYTES,
                self.segment_bytes
            ));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_ratio) {
            return Err(format!(
                "min_cleanable_ratio must be between 0 and 1, not {}",
                self.min_cleanable_ratio
            ));
        }
        for (name, d) in [
            ("retention", self.retention),
            ("segment_time", self.segment_time),
            ("delete_retention", Some(self.delete_retention)),
        ] {
            if d.is_some_and(|d| d.as_millis() > i64::MAX as u128 / 2) {
                return Err(format!("{name} is too long"));
            }
        }
        Ok(())
    }
}

/// Options of a [`Log`](crate::Log).
///
/// ```
/// use std::time::Duration;
/// use ow_stream_log::{FsyncPolicy, LogOptions};
/// let opts = LogOptions::default()
///     .with_fsync(FsyncPolicy::Interval(Duration::from_millis(50)))
///     .with_maintenance_interval(None);
/// assert_eq!(opts.fsync, FsyncPolicy::Interval(Duration::from_millis(50)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogOptions {
    /// When appends reach stable storage. Default: [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// Run [`Log::maintain`](crate::Log::maintain) (segment roll by time,
    /// retention, compaction) on a background thread this often. `None` = only
    /// when called. Default: every 60 s.
    pub maintenance_interval: Option<Duration>,
    /// Bytes of segment data between two entries of the sparse offset index.
    /// Default: 4096.
    pub index_interval_bytes: u32,
    /// The clock used for retention, segment age and tombstone expiry.
    /// Default: [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fsync: FsyncPolicy::Always,
            maintenance_interval: Some(Duration::from_secs(60)),
            index_interval_bytes: 4096,
            clock: Arc::new(SystemClock),
        }
    }
}

impl LogOptions {
    /// Sets the fsync policy.
    pub fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets (or disables) the background maintenance interval.
    pub fn with_maintenance_interval(mut self, interval: Option<Duration>) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Sets the index interval.
    pub fn with_index_interval_bytes(mut self, bytes: u32) -> Self {
        self.index_interval_bytes = bytes;
        self
    }

    /// Sets the clock (tests use a [`ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time in ms.
    fn now_ms(&self) -> i64;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_log::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(clock.now_ms(), 2_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: i64) -> Self {
        ManualClock(AtomicI64::new(ms))
    }

    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
