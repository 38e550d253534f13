//! [`Log`]: the handle to a state directory.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{FsyncPolicy, LogOptions, TopicConfig};
use crate::error::{IoContext, LogError};
use crate::group::GroupStore;
use crate::info::{GroupInfo, GroupPartitionInfo, LogStats, MaintenanceReport, TopicInfo};
use crate::partition::{Fetched, Isolation, Partition, Shared, sync_dir};
use crate::partitioner::partition_for_key;
use crate::record::{AppendResult, NewRecord, StoredRecord};
use crate::segment::IndexPolicy;
use crate::topic::{self, Topic};
use crate::txn::Coordinator;

const LOCK_FILE: &str = "LOCK";
/// How long [`Log::open`] waits for a lock that this process itself seems to hold (see
/// `acquire_lock`).
const OWN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
const CLEAN_MARKER: &str = "CLEAN_SHUTDOWN";
const TOPICS_DIR: &str = "topics";
const STAGING_DIR: &str = "staging";

/// A durable, partitioned record log in one directory.
///
/// `Log` is a cheap handle (`Clone + Send + Sync`, an `Arc` inside): clone it
/// into every thread or task that produces or consumes. The directory is
/// locked while any clone is alive; dropping the last one stops the
/// background threads, fsyncs what is pending and releases the lock.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_log::{FsyncPolicy, Log, LogOptions, NewRecord, TopicConfig};
///
/// # fn main() -> Result<(), ow_stream_log::LogError> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let log = Log::open(dir.path(), LogOptions::default())?;
/// log.create_topic("player-events", TopicConfig::new(3))?;
///
/// let p = log.partition_for("player-events", Some(b"player-42"))?;
/// let ack = log.append("player-events", p, &[NewRecord::new(Some("player-42"), Some("{}"), 1)])?;
///
/// let records = log.read("player-events", p, ack.base_offset, 100, 1 << 20)?;
/// assert_eq!(records[0].offset, ack.base_offset);
///
/// log.commit("stats-app", &[("player-events", p, ack.last_offset + 1)])?;
/// assert_eq!(log.committed("stats-app", "player-events", p), Some(ack.last_offset + 1));
///
/// // Nothing new yet: times out and says so.
/// assert!(!log.wait_for("player-events", p, ack.last_offset + 1, Duration::from_millis(1))?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Log {
    handle: Arc<Handle>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.handle.inner.dir)
            .field("fsync", &self.handle.inner.shared.fsync)
            .finish_non_exhaustive()
    }
}

/// Owns the background threads; dropping it (the last `Log` clone) stops
/// and joins them before `Inner` shuts down.
struct Handle {
    inner: Arc<Inner>,
    stop: Arc<Stop>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.stop();
        for t in self.threads.get_mut().drain(..) {
            let _ = t.join();
        }
    }
}

pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) shared: Arc<Shared>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    create_lock: Mutex<()>,
    pub(crate) groups: GroupStore,
    pub(crate) transactions: Coordinator,
    /// Holds the directory lock (released when the file is closed).
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.shared.fsync == FsyncPolicy::Never {
            return;
        }
        let mut clean = true;
        for p in self.all_partitions() {
            if let Err(e) = p.sync_for_close() {
                tracing::warn!(error = %e, "final fsync failed; next open will run full recovery");
                clean = false;
            }
        }
        if clean {
            let marker = self.dir.join(CLEAN_MARKER);
            let res = File::create(&marker)
                .and_then(|f| f.sync_all())
                .at(&marker)
                .and_then(|()| sync_dir(&self.dir));
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not write the clean-shutdown marker");
            }
        }
    }
}

/// A stop signal background threads sleep on.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    /// Sleeps for `d` or until stopped; returns true when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.cv.wait_until(&mut stopped, deadline).timed_out() {
                break;
            }
        }
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.cv.notify_all();
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering every
    /// partition: torn tails are cut off, missing or stale indexes rebuilt,
    /// interrupted compactions finished.
    ///
    /// Fails with [`LogError::Locked`] if another `Log`, in this process or
    /// another, has the directory open. (When the lock's holder is this process,
    /// the open first waits up to half a second: a `Log` just dropped can look
    /// locked while a child process that another thread is spawning still holds
    /// a copy of the lock's file descriptor.)
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Log, LogError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).at(&dir)?;
        let lock = acquire_lock(&dir)?;

        let fsync = match options.fsync {
            FsyncPolicy::Interval(d) => FsyncPolicy::Interval(d.max(Duration::from_millis(1))),
            other => other,
        };
        let shared = Arc::new(Shared {
            fsync,
            index: IndexPolicy {
                interval: u64::from(options.index_interval_bytes),
            },
            clock: Arc::clone(&options.clock),
            any_append: Event::new(),
            records_appended: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
        });

        let marker = dir.join(CLEAN_MARKER);
        let clean = marker.exists();
        let staging = dir.join(STAGING_DIR);
        if staging.exists() {
            fs::remove_dir_all(&staging).at(&staging)?;
        }
        let topics_dir = dir.join(TOPICS_DIR);
        fs::create_dir_all(&topics_dir).at(&topics_dir)?;
        let mut topics = HashMap::new();
        for entry in fs::read_dir(&topics_dir).at(&topics_dir)? {
            let entry = entry.at(&topics_dir)?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if topic::validate_name(&name).is_err() || !path.is_dir() {
                tracing::warn!(path = %path.display(), "ignoring unexpected entry in topics directory");
                continue;
            }
            let conf_path = path.join(topic::CONFIG_FILE);
            let text = fs::read_to_string(&conf_path).at(&conf_path)?;
            let config = Arc::new(topic::parse_config(&conf_path, &text)?);
            let name: Arc<str> = Arc::from(name);
            let mut partitions = Vec::with_capacity(config.partitions as usize);
            for p in 0..config.partitions {
                partitions.push(Arc::new(Partition::open(
                    Arc::clone(&name),
                    p,
                    path.join(p.to_string()),
                    Arc::clone(&config),
                    Arc::clone(&shared),
                    clean,
                )?));
            }
            topics.insert(
                name.to_string(),
                Arc::new(Topic {
                    name,
                    config,
                    partitions,
                    next_keyless: AtomicU32::new(0),
                }),
            );
        }
        if clean {
            fs::remove_file(&marker).at(&marker)?;
            sync_dir(&dir)?;
        }
        let groups = GroupStore::open(&dir)?;
        let transactions = Coordinator::open(&dir, fsync)?;

        let inner = Arc::new(Inner {
            dir,
            shared,
            topics: RwLock::new(topics),
            create_lock: Mutex::new(()),
            groups,
            transactions,
            _lock: lock,
        });
        inner.transactions.recover(&inner)?;
        let stop = Arc::new(Stop::default());
        let mut threads = Vec::new();
        if let FsyncPolicy::Interval(every) = fsync {
            let (inner, stop) = (Arc::clone(&inner), Arc::clone(&stop));
            threads.push(spawn("ow-log-flusher", move || {
                while !stop.sleep(every) {
                    for p in inner.all_partitions() {
                        if let Err(e) = p.flush() {
                            tracing::error!(error = %e, "background fsync failed");
                        }
                    }
                }
            })?);
        }
        if let Some(every) = options.maintenance_interval {
            let (inner, stop) = (Arc::clone(&inner), Arc::clone(&stop));
            threads.push(spawn("ow-log-maintenance", move || {
                while !stop.sleep(every) {
                    if let Err(e) = inner.maintain() {
                        tracing::error!(error = %e, "background maintenance failed");
                    }
                }
            })?);
        }
        Ok(Log {
            handle: Arc::new(Handle {
                inner,
                stop,
                threads: Mutex::new(threads),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.inner().dir
    }

    /// Creates a topic with `config.partitions` partitions.
    ///
    /// Returns `true` if it was created, `false` if it already existed with
    /// the same partition count (its stored configuration is kept as is).
    /// Fails with [`LogError::TopicExists`] if it exists with another
    /// partition count, [`LogError::InvalidTopicName`] for names Kafka would
    /// reject, [`LogError::InvalidConfig`] for out-of-range settings.
    ///
    /// Creation is atomic: the topic is built in a staging directory and
    /// renamed into place, so a crash never leaves half a topic.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<bool, LogError> {
        topic::validate_name(name)?;
        config
            .validate()
            .map_err(|reason| LogError::InvalidConfig {
                topic: name.to_owned(),
                reason,
            })?;
        let inner = self.inner();
        let _guard = inner.create_lock.lock();
        if let Some(t) = inner.topics.read().get(name) {
            if t.config.partitions == config.partitions {
                return Ok(false);
            }
            return Err(LogError::TopicExists {
                topic: name.to_owned(),
                existing: t.config.partitions,
                requested: config.partitions,
            });
        }
        let staging = inner.dir.join(STAGING_DIR).join(name);
        if staging.exists() {
            fs::remove_dir_all(&staging).at(&staging)?;
        }
        fs::create_dir_all(&staging).at(&staging)?;
        for p in 0..config.partitions {
            let pdir = staging.join(p.to_string());
            fs::create_dir(&pdir).at(&pdir)?;
        }
        topic::write_config(&staging, &config)?;
        sync_dir(&staging)?;
        let topics_dir = inner.dir.join(TOPICS_DIR);
        let final_dir = topics_dir.join(name);
        fs::rename(&staging, &final_dir).at(&final_dir)?;
        sync_dir(&topics_dir)?;

        let config = Arc::new(config);
        let name_arc: Arc<str> = Arc::from(name);
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for p in 0..config.partitions {
            partitions.push(Arc::new(Partition::open(
                Arc::clone(&name_arc),
                p,
                final_dir.join(p.to_string()),
                Arc::clone(&config),
                Arc::clone(&inner.shared),
                false,
            )?));
        }
        inner.topics.write().insert(
            name.to_owned(),
            Arc::new(Topic {
                name: name_arc,
                config,
                partitions,
                next_keyless: AtomicU32::new(0),
            }),
        );
        Ok(true)
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner().topics.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// A topic's configuration and per-partition state, if it exists.
    pub fn topic(&self, name: &str) -> Option<TopicInfo> {
        let t = self.inner().topics.read().get(name).cloned()?;
        Some(topic_info(&t))
    }

    /// The partition Kafka's default partitioner would choose.
    ///
    /// Keyed records: `to_positive(murmur2(key)) % partitions`, bit-exact with
    /// the Java client and librdkafka's `murmur2_random`. Keyless records:
    /// round-robin over the partitions (per topic, per `Log`), which spreads
    /// load evenly; the caller can of course pick any partition itself.
    pub fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<i32, LogError> {
        let t = self.inner().topic(topic)?;
        let n = t.config.partitions;
        Ok(match key {
            Some(k) => partition_for_key(k, n),
            None => (t.next_keyless.fetch_add(1, Ordering::Relaxed) % n as u32) as i32,
        })
    }

    /// Appends a batch to one partition and returns the offsets it got.
    ///
    /// The batch is atomic: after a crash either all of it is in the log or
    /// none of it. When this returns, the batch is as durable as the
    /// [`FsyncPolicy`] promises. Offsets are contiguous: `base_offset ..=
    /// last_offset`, `last_offset - base_offset + 1 == records.len()`.
    ///
    /// Safe to call from many threads at once, also on one partition: the
    /// writes are serialised and, under [`FsyncPolicy::Always`], waiting
    /// callers share fsyncs (group commit).
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[NewRecord],
    ) -> Result<AppendResult, LogError> {
        self.inner().partition(topic, partition)?.append(records)
    }

    /// Reads committed records with offsets ≥ `from_offset`, at most
    /// `max_records` of them and (except for the first record, which is
    /// always returned so a reader cannot get stuck) at most about
    /// `max_bytes` of keys, values and headers.
    ///
    /// An empty result means `from_offset` is the end of the log. Offsets
    /// removed by compaction are skipped, so the first record returned may
    /// have an offset above `from_offset`. Fails with
    /// [`LogError::OffsetOutOfRange`] below the log start (retention deleted
    /// it) or above the end.
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.inner()
            .partition(topic, partition)?
            .read(from_offset, max_records, max_bytes)
    }

    /// Reads like [`Log::read`], as a reader with `isolation` sees the
    /// partition, and says where the next read starts.
    ///
    /// Transaction markers are never returned. With
    /// [`Isolation::ReadCommitted`] the read stops at the partition's last
    /// stable offset (nothing of an open transaction, nor anything after
    /// its first record, is returned) and skips the data of aborted
    /// transactions. [`Fetched::next_offset`] moves past what was skipped:
    /// continue from it, not from the last record's offset + 1. An empty
    /// result with `next_offset == from_offset` means nothing more is
    /// visible yet; wait with [`Log::wait_for_any_with`].
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<Fetched, LogError> {
        self.inner().partition(topic, partition)?.fetch(
            from_offset,
            max_records,
            max_bytes,
            isolation,
        )
    }

    /// The end of a partition as a reader with `isolation` sees it: the log
    /// end, or (read_committed) the last stable offset, where the oldest
    /// open transaction's data starts.
    pub fn visible_end(
        &self,
        topic: &str,
        partition: i32,
        isolation: Isolation,
    ) -> Result<i64, LogError> {
        Ok(self
            .inner()
            .partition(topic, partition)?
            .visible_end(isolation))
    }

    /// `(start, end)`: the first offset still in the log and the offset the
    /// next record will get.
    pub fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64), LogError> {
        let p = self.inner().partition(topic, partition)?;
        Ok((p.start(), p.end()))
    }

    /// Blocks the calling thread until the partition's end offset is above
    /// `offset` (a record at `offset` or later can be read), or `timeout`
    /// passes. Returns whether data is there. No polling: the thread sleeps
    /// until an append wakes it.
    pub fn wait_for(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let p = self.inner().partition(topic, partition)?;
        Ok(p.wait_past(offset, Instant::now().checked_add(timeout)))
    }

    /// Like [`Log::wait_for`] over several `(topic, partition, offset)`
    /// positions: returns `true` as soon as any partition has data at or past
    /// its offset, `false` on timeout.
    pub fn wait_for_any(
        &self,
        positions: &[(&str, i32, i64)],
        timeout: Duration,
    ) -> Result<bool, LogError> {
        self.wait_for_any_with(positions, Isolation::ReadUncommitted, timeout)
    }

    /// Like [`Log::wait_for_any`], for a reader with `isolation`: under
    /// [`Isolation::ReadCommitted`] a partition is ready once its last
    /// stable offset is past the position (data of an open transaction does
    /// not wake the reader; its commit or abort does).
    pub fn wait_for_any_with(
        &self,
        positions: &[(&str, i32, i64)],
        isolation: Isolation,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let parts = self.inner().resolve(positions)?;
        let ready = || parts.iter().any(|(p, o)| p.visible_end(isolation) > *o);
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if ready() {
                return Ok(true);
            }
            let listener = self.inner().shared.any_append.listen();
            if ready() {
                return Ok(true);
            }
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return Ok(ready());
                    }
                }
            }
        }
    }

    /// A future that resolves once the partition's end offset is above
    /// `offset`. Runtime-agnostic (no tokio dependency); add a timeout with
    /// your runtime (`tokio::time::timeout`). Errors (unknown partition) are
    /// reported up front.
    pub fn wait_for_async(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<impl Future<Output = ()> + Send + 'static, LogError> {
        let p = self.inner().partition(topic, partition)?;
        Ok(p.past(offset))
    }

    /// The async form of [`Log::wait_for_any`].
    pub fn wait_for_any_async(
        &self,
        positions: &[(&str, i32, i64)],
    ) -> Result<impl Future<Output = ()> + Send + 'static, LogError> {
        self.wait_for_any_async_with(positions, Isolation::ReadUncommitted)
    }

    /// The async form of [`Log::wait_for_any_with`].
    pub fn wait_for_any_async_with(
        &self,
        positions: &[(&str, i32, i64)],
        isolation: Isolation,
    ) -> Result<impl Future<Output = ()> + Send + 'static, LogError> {
        let parts = self.inner().resolve(positions)?;
        let shared = Arc::clone(&self.inner().shared);
        Ok(async move {
            let ready = || parts.iter().any(|(p, o)| p.visible_end(isolation) > *o);
            loop {
                if ready() {
                    return;
                }
                let listener = shared.any_append.listen();
                if ready() {
                    return;
                }
                listener.await;
            }
        })
    }

    /// Stores the group's next offsets for the given partitions, atomically
    /// (all or none) and durably (fsynced before returning, whatever the
    /// [`FsyncPolicy`]). Topics and partitions must exist; offsets must not be
    /// negative.
    pub fn commit(&self, group: &str, offsets: &[(&str, i32, i64)]) -> Result<(), LogError> {
        self.validate_commit(group, offsets)?;
        self.inner().groups.commit(group, offsets)
    }

    /// Checks a group commit: a group id, existing partitions, offsets ≥ 0.
    pub(crate) fn validate_commit(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), LogError> {
        let invalid = |reason: String| LogError::InvalidCommit {
            group: group.to_owned(),
            reason,
        };
        if group.is_empty() {
            return Err(invalid("the group id is empty".to_owned()));
        }
        if group.len() > usize::from(u16::MAX) {
            return Err(invalid(
                "the group id is longer than 65535 bytes".to_owned(),
            ));
        }
        for &(topic, partition, offset) in offsets {
            self.inner().partition(topic, partition)?;
            if offset < 0 {
                return Err(invalid(format!(
                    "negative offset {offset} for {topic}-{partition}"
                )));
            }
        }
        Ok(())
    }

    /// The group's committed offset for a partition (the next offset it will
    /// read), if it committed one.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.inner().groups.committed(group, topic, partition)
    }

    /// All groups with committed offsets, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.inner().groups.groups()
    }

    /// A group's committed offsets with the current lag of each partition.
    pub fn group(&self, group: &str) -> Option<GroupInfo> {
        self.inner().group_info(group)
    }

    /// Forgets a group's offsets (durably). Returns whether it existed.
    pub fn delete_group(&self, group: &str) -> Result<bool, LogError> {
        self.inner().groups.delete(group)
    }

    /// Deletes whole closed segments whose records all have offsets below
    /// `before` (Kafka's `deleteRecords`, at segment granularity: the start
    /// offset moves to the first remaining segment). Returns the new start
    /// offset. Meant for repartition topics once every consumer committed
    /// past `before`.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        before: i64,
    ) -> Result<i64, LogError> {
        let p = self.inner().partition(topic, partition)?;
        p.delete_records(before, &mut Vec::new())
    }

    /// Runs one maintenance pass over every partition now: rolls segments
    /// older than `segment_time`, applies retention, compacts compacted
    /// topics whose dirty ratio is reached or whose tombstones expired.
    ///
    /// The background thread ([`LogOptions::maintenance_interval`]) calls the
    /// same thing. If a partition fails, the others are still maintained and
    /// the first error is returned.
    pub fn maintain(&self) -> Result<MaintenanceReport, LogError> {
        self.inner().maintain()
    }

    /// fsyncs every partition now, whatever the [`FsyncPolicy`].
    pub fn flush(&self) -> Result<(), LogError> {
        for p in self.inner().all_partitions() {
            p.flush()?;
        }
        Ok(())
    }

    /// Counters, every topic and every group (for a dashboard).
    pub fn stats(&self) -> LogStats {
        let inner = self.inner();
        let mut topics: Vec<TopicInfo> = inner
            .topics
            .read()
            .values()
            .map(|t| topic_info(t))
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        LogStats {
            records_appended: inner.shared.records_appended.load(Ordering::Relaxed),
            bytes_appended: inner.shared.bytes_appended.load(Ordering::Relaxed),
            topics,
            groups: inner
                .groups
                .groups()
                .iter()
                .filter_map(|g| inner.group_info(g))
                .collect(),
        }
    }
}

impl Inner {
    fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic {
                topic: name.to_owned(),
            })
    }

    pub(crate) fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, LogError> {
        let topics = self.topics.read();
        let t = topics.get(topic).ok_or_else(|| LogError::UnknownTopic {
            topic: topic.to_owned(),
        })?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .cloned()
            .ok_or_else(|| LogError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })
    }

    fn resolve(
        &self,
        positions: &[(&str, i32, i64)],
    ) -> Result<Vec<(Arc<Partition>, i64)>, LogError> {
        positions
            .iter()
            .map(|&(t, p, o)| Ok((self.partition(t, p)?, o)))
            .collect()
    }

    /// Every partition, by topic name then partition.
    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        let topics = self.topics.read();
        let mut names: Vec<&String> = topics.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|n| topics[n].partitions.iter().cloned())
            .collect()
    }

    fn maintain(&self) -> Result<MaintenanceReport, LogError> {
        let now = self.shared.clock.now_ms();
        let mut report = MaintenanceReport::default();
        let mut first_error = None;
        for p in self.all_partitions() {
            if let Err(e) = p.maintain(now, &mut report.actions) {
                tracing::error!(topic = %p.topic, partition = p.id, error = %e, "maintenance failed");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn group_info(&self, group: &str) -> Option<GroupInfo> {
        let offsets = self.groups.offsets(group)?;
        Some(GroupInfo {
            group: group.to_owned(),
            partitions: offsets
                .into_iter()
                .map(|(topic, partition, committed)| {
                    let end = self.partition(&topic, partition).map_or(-1, |p| p.end());
                    GroupPartitionInfo {
                        lag: if end < 0 { 0 } else { (end - committed).max(0) },
                        topic,
                        partition,
                        committed,
                        end_offset: end,
                    }
                })
                .collect(),
        })
    }
}

fn topic_info(t: &Topic) -> TopicInfo {
    TopicInfo {
        name: t.name.to_string(),
        config: (*t.config).clone(),
        partitions: t.partitions.iter().map(|p| p.info()).collect(),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, LogError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| LogError::io(name, e))
}

/// Takes the exclusive OS lock on `<dir>/LOCK` (`flock`, released by the
/// kernel when the process dies) and writes our pid into it for the error
/// message other openers get.
fn acquire_lock(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    // A `flock` belongs to the open file description, and a child process spawned by another
    // thread of this process holds a copy of it between its fork and its exec. So a `Log` of
    // this process that was just dropped can still look locked for a moment: when the pid in the
    // file is ours, wait a little for such a child before reporting the lock.
    let deadline = std::time::Instant::now() + OWN_LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let pid: Option<u32> = fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if pid == Some(std::process::id()) && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                return Err(LogError::Locked { path, pid });
            }
            Err(TryLockError::Error(e)) => return Err(LogError::io(&path, e)),
        }
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
        .at(&path)?;
    Ok(file)
}
