//! The durable local backend: topics as partitioned logs in a directory (see
//! [`ow_stream_log`]), with the same producer, consumer and streams runtime as Kafka.
//!
//! One process owns a log directory at a time (a lock file with the process id); inside the
//! process, every client of the directory — the stages of the embedded stack each have their
//! own consumer group — shares one open [`Log`].

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod connection;
pub(crate) mod global;
pub(crate) mod thread;

pub(crate) use connection::LocalConnection;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use ow_stream_log::{
    Header, Isolation, Log, LogError, LogOptions, NewRecord, StoredRecord, TransactionalProducer,
};
use parking_lot::Mutex;

use crate::client::Delivered;
use crate::config::{LocalFsync, StreamsConfig};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::record::{Headers, RawRecord};
use crate::runtime::collector::{Delivery, OutRecord, RecordCollector};
use crate::runtime::manager::{Collector, GroupOffsets};
use crate::state::ChangelogReader;

static OPEN: Mutex<Vec<(PathBuf, Weak<Log>)>> = Mutex::new(Vec::new());

static RUNNING: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// The right of one [`Streams`](crate::Streams) instance to run an application on a log
/// directory. The local backend has no group protocol to split partitions between instances,
/// so a second instance of the same application on the same directory would process every
/// record again into stores of its own; it gets [`Error::Config`] instead. Dropping the lease
/// frees the application for a new instance.
#[derive(Debug)]
pub(crate) struct AppLease {
    key: (PathBuf, String),
}

impl AppLease {
    /// Takes the lease for `application_id` on the log at `dir`.
    pub(crate) fn acquire(dir: &Path, application_id: &str) -> Result<AppLease, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let key = (path, application_id.to_string());
        let mut running = RUNNING.lock();
        if running.contains(&key) {
            return Err(Error::Config {
                field: "application_id",
                reason: format!(
                    "application {application_id} is already running in this process on the \
                     local log at {}: the local backend runs one instance of an application \
                     per state directory (use more stream threads, or Kafka, to scale out)",
                    key.0.display()
                ),
            });
        }
        running.push(key.clone());
        Ok(AppLease { key })
    }
}

impl Drop for AppLease {
    fn drop(&mut self) {
        RUNNING.lock().retain(|k| *k != self.key);
    }
}

/// Opens (or joins, when this process has it open already) the log in `dir`.
pub(crate) fn open(dir: &Path, config: &StreamsConfig) -> Result<Arc<Log>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let key = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let mut open = OPEN.lock();
    open.retain(|(_, w)| w.strong_count() > 0);
    if let Some(log) = open
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(log);
    }
    let fsync = match config.local.fsync {
        LocalFsync::Always => ow_stream_log::FsyncPolicy::Always,
        LocalFsync::Interval(d) => ow_stream_log::FsyncPolicy::Interval(d),
        LocalFsync::Never => ow_stream_log::FsyncPolicy::Never,
    };
    let options = LogOptions::default()
        .with_fsync(fsync)
        .with_maintenance_interval(Some(config.local.maintenance_interval));
    // A log of this process that is closing (its last client just went away, maybe on
    // another thread) still holds the lock for a moment: wait for it rather than fail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        match Log::open(&key, options.clone()) {
            Ok(log) => break Arc::new(log),
            Err(LogError::Locked { pid: Some(pid), .. })
                if pid == std::process::id() && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(log_error(e)),
        }
    };
    open.push((key, Arc::downgrade(&log)));
    Ok(log)
}

/// A local-log failure as a library error ([`Error::RecordTooLarge`] for a batch over the
/// log's limit).
pub(crate) fn log_error(e: LogError) -> Error {
    match e {
        LogError::BatchTooLarge {
            topic, bytes, max, ..
        } => Error::RecordTooLarge {
            topic: topic.into(),
            bytes,
            limit: Some(max),
        },
        e => Error::Local(e),
    }
}

pub(crate) fn to_raw(topic: &Arc<str>, partition: i32, r: StoredRecord) -> RawRecord {
    let mut headers = Headers::new();
    for h in r.headers {
        headers.insert(h.key, h.value);
    }
    RawRecord {
        topic: topic.clone(),
        partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers,
    }
}

pub(crate) fn to_new(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp: i64,
    headers: &Headers,
) -> NewRecord {
    NewRecord {
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        timestamp,
        headers: headers
            .iter()
            .map(|(k, v)| Header {
                key: k.to_string(),
                value: v.map(Bytes::copy_from_slice),
            })
            .collect(),
    }
}

/// One record handed to a [`LocalWriter`], with where to say how it went.
struct WriteJob {
    topic: Arc<str>,
    record: NewRecord,
    reply: tokio::sync::oneshot::Sender<Result<Delivered, Error>>,
}

/// Bytes appended at once by a [`LocalWriter`], at most (the log takes batches up to 64 MiB).
const WRITER_BATCH_BYTES: usize = 4 << 20;

/// The appends of a typed producer on the local log, on a thread of their own.
///
/// Records are queued when they are sent and appended in that order, so two sends of one
/// producer to one partition land in the order they were made even when both are in flight,
/// as on Kafka (an idempotent producer keeps the order of each partition). The thread appends
/// whatever has queued up meanwhile in one batch per partition: under
/// [`LocalFsync::Always`] concurrent sends share an fsync. A send completes once its record
/// is appended (and, under `Always`, on disk).
pub(crate) struct LocalWriter {
    queue: crossbeam_channel::Sender<WriteJob>,
    /// The producer's hold on the log: the thread has a weak one, so the log closes when the
    /// last client of it is dropped, not whenever the thread notices.
    _log: Arc<Log>,
}

impl LocalWriter {
    /// Starts the writer thread of a producer on `log`; it ends when the writer is dropped.
    pub(crate) fn start(log: Arc<Log>) -> Result<LocalWriter, Error> {
        let (queue, jobs) = crossbeam_channel::unbounded::<WriteJob>();
        let weak = Arc::downgrade(&log);
        std::thread::Builder::new()
            .name("ow-local-producer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    batch.extend(jobs.try_iter().take(MAX_PENDING));
                    match weak.upgrade() {
                        Some(log) => write_batch(&log, batch),
                        // Dropped with the producer: the queued sends fail as closed.
                        None => drop(batch),
                    }
                }
            })
            .map_err(|e| Error::io("local producer thread", e))?;
        Ok(LocalWriter { queue, _log: log })
    }

    /// Queues `record` for `topic` now; the answer (its partition and offset once it is
    /// appended) comes on the returned channel. A writer that has stopped drops the job, and
    /// with it the channel's sender.
    pub(crate) fn enqueue(
        &self,
        topic: &str,
        record: NewRecord,
    ) -> tokio::sync::oneshot::Receiver<Result<Delivered, Error>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // On failure the job comes back in the error and is dropped here: the receiver sees
        // the sender gone.
        let _ = self.queue.send(WriteJob {
            topic: topic.into(),
            record,
            reply,
        });
        answer
    }
}

/// Appends queued records, grouped by partition in queue order.
fn write_batch(log: &Log, batch: Vec<WriteJob>) {
    // (topic, partition) → records and replies, in order of first appearance.
    let mut groups: Vec<(Arc<str>, i32, Vec<WriteJob>)> = Vec::new();
    for job in batch {
        let partition = match log.partition_for(&job.topic, job.record.key.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                let _ = job.reply.send(Err(log_error(e)));
                continue;
            }
        };
        match groups
            .iter_mut()
            .find(|(t, p, _)| *p == partition && *t == job.topic)
        {
            Some((_, _, jobs)) => jobs.push(job),
            None => groups.push((job.topic.clone(), partition, vec![job])),
        }
    }
    for (topic, partition, jobs) in groups {
        let mut rest = jobs.into_iter().peekable();
        while rest.peek().is_some() {
            // A chunk under the batch budget (a record over it goes alone, and fails alone).
            let mut chunk = Vec::new();
            let mut bytes = 0;
            while let Some(job) = rest.peek() {
                let size = record_bytes(&job.record);
                if !chunk.is_empty() && bytes + size > WRITER_BATCH_BYTES {
                    break;
                }
                bytes += size;
                if let Some(job) = rest.next() {
                    chunk.push(job);
                }
            }
            let (records, replies): (Vec<NewRecord>, Vec<_>) =
                chunk.into_iter().map(|j| (j.record, j.reply)).unzip();
            match log.append(&topic, partition, &records) {
                Ok(result) => {
                    for (i, reply) in replies.into_iter().enumerate() {
                        let _ = reply.send(Ok(Delivered {
                            partition,
                            offset: result.base_offset + i as i64,
                        }));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    let mut error = Some(e);
                    for reply in replies {
                        // The first record gets the error itself, the others its message.
                        let e = error.take().unwrap_or_else(|| LogError::Io {
                            path: PathBuf::from(format!("{topic}/{partition}")),
                            source: std::io::Error::other(message.clone()),
                        });
                        let _ = reply.send(Err(log_error(e)));
                    }
                }
            }
        }
    }
}

fn record_bytes(r: &NewRecord) -> usize {
    r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
        + 32
}

/// Records of one partition to append, with the deliveries to resolve: `(index, delivery)`.
type PartitionBatch = (Arc<str>, i32, Vec<NewRecord>, Vec<(usize, Delivery)>);

/// Most records buffered before a collector appends on its own.
const MAX_PENDING: usize = 2000;

/// A stream thread's producer on the local log: buffers records and appends them per
/// partition in batches (one write, and one fsync under the `Always` policy, per batch).
/// Under exactly-once the appends go through the thread's transactional producer, and
/// [`Collector::commit_transaction`] commits them with the group's offsets.
pub(crate) struct LocalCollector {
    log: Arc<Log>,
    pending: Vec<(Arc<str>, i32, NewRecord, Option<Delivery>)>,
    names: HashMap<String, Arc<str>>,
    /// Partition counts of the topics sinks chose partitions for.
    partitions: HashMap<Arc<str>, i32>,
    metrics: Arc<Metrics>,
    /// Exactly-once: the thread's transactional producer and the group its offsets go to.
    transactions: Option<(TransactionalProducer, String)>,
}

impl LocalCollector {
    pub(crate) fn new(log: Arc<Log>, metrics: Arc<Metrics>) -> Self {
        LocalCollector {
            log,
            pending: Vec::new(),
            names: HashMap::new(),
            partitions: HashMap::new(),
            metrics,
            transactions: None,
        }
    }

    /// A collector whose appends are transactions of `transactional_id` (exactly-once),
    /// committing input offsets to `group`. Initialising the id fences a producer an earlier
    /// run of the thread left behind and finishes its transaction.
    pub(crate) fn transactional(
        log: Arc<Log>,
        metrics: Arc<Metrics>,
        transactional_id: &str,
        group: &str,
    ) -> Result<Self, Error> {
        let producer = log.init_transactions(transactional_id).map_err(log_error)?;
        let mut collector = LocalCollector::new(log, metrics);
        collector.transactions = Some((producer, group.to_string()));
        Ok(collector)
    }

    /// Appends one partition's records, in the open transaction when there is one (begun on
    /// the first append after a commit).
    fn append(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[NewRecord],
    ) -> Result<ow_stream_log::AppendResult, LogError> {
        match &mut self.transactions {
            None => self.log.append(topic, partition, records),
            Some((producer, _)) => {
                if !producer.in_transaction() {
                    producer.begin()?;
                }
                producer.append(topic, partition, records)
            }
        }
    }

    fn push(&mut self, record: OutRecord<'_>, delivery: Option<Delivery>) -> Result<(), Error> {
        let partition = match record.partition {
            Some(p) => p,
            None => self
                .log
                .partition_for(record.topic, record.key)
                .map_err(log_error)?,
        };
        let topic = match self.names.get(record.topic) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = record.topic.into();
                self.names.insert(record.topic.to_string(), t.clone());
                t
            }
        };
        let new = to_new(record.key, record.value, record.timestamp, record.headers);
        self.pending.push((topic, partition, new, delivery));
        if self.pending.len() >= MAX_PENDING {
            self.append_pending()?;
        }
        Ok(())
    }

    fn append_pending(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Group by partition, keeping the order of records within each partition.
        let mut groups: Vec<PartitionBatch> = Vec::new();
        for (topic, partition, record, delivery) in self.pending.drain(..) {
            let group = match groups
                .iter_mut()
                .position(|(t, p, _, _)| *t == topic && *p == partition)
            {
                Some(i) => &mut groups[i],
                None => {
                    groups.push((topic, partition, Vec::new(), Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            if let Some(d) = delivery {
                group.3.push((group.2.len(), d));
            }
            group.2.push(record);
        }
        for (topic, partition, records, deliveries) in groups {
            // One event per append (a commit makes several, one partition after the other):
            // crash tests kill the process at the n-th.
            tracing::trace!(
                target: "ow_stream_core::local::append",
                topic = %topic, partition, records = records.len(), "append"
            );
            match self.append(&topic, partition, &records) {
                Ok(result) => {
                    self.metrics.records_produced.add(records.len() as u64);
                    for (i, d) in deliveries {
                        d.resolve(Ok(result.base_offset + i as i64));
                    }
                }
                Err(e) => {
                    for (_, d) in deliveries {
                        d.resolve(Err(e.to_string()));
                    }
                    return Err(log_error(e));
                }
            }
        }
        Ok(())
    }
}

impl RecordCollector for LocalCollector {
    fn send(&mut self, record: OutRecord<'_>) -> Result<(), Error> {
        self.push(record, None)
    }

    fn send_tracked(&mut self, record: OutRecord<'_>) -> Result<Delivery, Error> {
        let d = Delivery::default();
        self.push(record, Some(d.clone()))?;
        Ok(d)
    }

    fn partition_count(&mut self, topic: &str) -> Result<i32, Error> {
        if let Some(count) = self.partitions.get(topic) {
            return Ok(*count);
        }
        let info = self.log.topic(topic).ok_or_else(|| {
            log_error(LogError::UnknownTopic {
                topic: topic.to_string(),
            })
        })?;
        let count = info.partitions.len() as i32;
        self.partitions.insert(topic.into(), count);
        Ok(count)
    }
}

impl Collector for LocalCollector {
    fn flush(&mut self) -> Result<(), Error> {
        self.append_pending()
    }

    fn commit_transaction(&mut self, offsets: &[(Arc<str>, i32, i64)]) -> Result<bool, Error> {
        let Some((producer, group)) = &mut self.transactions else {
            return Ok(false);
        };
        if !offsets.is_empty() {
            if !producer.in_transaction() {
                producer.begin().map_err(log_error)?;
            }
            let list: Vec<(&str, i32, i64)> =
                offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
            producer.send_offsets(group, &list).map_err(log_error)?;
        }
        if producer.in_transaction() {
            producer.commit().map_err(log_error)?;
        }
        Ok(true)
    }
}

/// Reads changelogs from the local log.
pub(crate) struct LocalChangelogReader {
    pub(crate) log: Arc<Log>,
    pub(crate) metrics: Arc<Metrics>,
}

impl ChangelogReader for LocalChangelogReader {
    fn watermarks(&mut self, topic: &str, partition: i32) -> Result<(i64, i64), Error> {
        let (start, _) = self.log.offsets(topic, partition).map_err(log_error)?;
        let end = self
            .log
            .visible_end(topic, partition, Isolation::ReadCommitted)
            .map_err(log_error)?;
        Ok((start, end))
    }

    fn read(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(&RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let name: Arc<str> = topic.into();
        let mut at = from;
        while at < to {
            // Read committed, whatever the guarantee: a changelog written by transactions may
            // hold aborted ones, which must never reach a store.
            let fetched = self
                .log
                .fetch(
                    topic,
                    partition,
                    at,
                    1000,
                    4 << 20,
                    Isolation::ReadCommitted,
                )
                .map_err(log_error)?;
            if fetched.next_offset == at {
                break;
            }
            for r in fetched.records {
                if r.offset >= to {
                    return Ok(());
                }
                self.metrics.records_restored.incr();
                f(&to_raw(&name, partition, r))?;
            }
            at = fetched.next_offset;
        }
        Ok(())
    }
}

/// Consumer-group offsets in the local log.
pub(crate) struct LocalGroup {
    pub(crate) log: Arc<Log>,
    pub(crate) group: String,
    /// Internal repartition topics whose consumed records may be deleted once committed.
    pub(crate) purge: Vec<Arc<str>>,
}

impl GroupOffsets for LocalGroup {
    fn committed(&self, partitions: &[(Arc<str>, i32)]) -> Result<Vec<Option<i64>>, Error> {
        Ok(partitions
            .iter()
            .map(|(t, p)| self.log.committed(&self.group, t, *p))
            .collect())
    }

    fn commit(&self, offsets: &[(Arc<str>, i32, i64)], _sync: bool) -> Result<bool, Error> {
        let list: Vec<(&str, i32, i64)> = offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
        self.log.commit(&self.group, &list).map_err(log_error)?;
        self.committed_in_transaction(offsets);
        Ok(true)
    }

    fn committed_in_transaction(&self, offsets: &[(Arc<str>, i32, i64)]) {
        // Repartition topics are read by this application only: what it committed can go.
        for (t, p, o) in offsets {
            if self.purge.contains(t)
                && let Err(e) = self.log.delete_records(t, *p, *o)
            {
                tracing::debug!(topic = %t, partition = p, error = %e, "could not purge repartition records");
            }
        }
    }
}

/// Creates a topic if missing (idempotent). Unset retentions keep the log's defaults.
pub(crate) fn ensure_topic(
    log: &Log,
    spec: &crate::admin::TopicSpec,
    segment_bytes: Option<u64>,
) -> Result<(), Error> {
    let mut config =
        ow_stream_log::TopicConfig::new(spec.partitions).with_cleanup(if spec.compacted {
            ow_stream_log::CleanupPolicy::Compact
        } else {
            ow_stream_log::CleanupPolicy::Delete
        });
    if let Some(retention) = spec.retention {
        config = config.with_retention(Some(retention));
    }
    if let Some(bytes) = spec.retention_bytes {
        config = config.with_retention_bytes(Some(bytes));
    }
    if let Some(bytes) = segment_bytes {
        config = config.with_segment_bytes(bytes);
    }
    log.create_topic(&spec.name, config).map_err(log_error)?;
    Ok(())
}

/// Partition counts of the topics that exist.
pub(crate) fn partition_counts(log: &Log, topics: &[Arc<str>]) -> HashMap<Arc<str>, i32> {
    topics
        .iter()
        .filter_map(|t| {
            log.topic(t)
                .map(|info| (t.clone(), info.partitions.len() as i32))
        })
        .collect()
}

/// A consumer of one topic on the local log: the only member of its group, it reads every
/// partition, starting from the group's committed offsets (or the start of each partition).
pub(crate) struct LocalConsumer {
    log: Arc<Log>,
    group: String,
    topic: Arc<str>,
    isolation: Isolation,
    state: tokio::sync::Mutex<LocalConsumerState>,
}

struct LocalConsumerState {
    positions: Vec<(i32, i64)>,
    buffer: std::collections::VecDeque<RawRecord>,
    next_partition: usize,
}

impl LocalConsumer {
    pub(crate) fn new(
        log: Arc<Log>,
        group: &str,
        topic: Arc<str>,
        isolation: Isolation,
    ) -> Result<Self, Error> {
        let info = log.topic(&topic).ok_or_else(|| {
            Error::Local(LogError::UnknownTopic {
                topic: topic.to_string(),
            })
        })?;
        let positions = info
            .partitions
            .iter()
            .map(|p| {
                let committed = log.committed(group, &topic, p.partition);
                (
                    p.partition,
                    committed.unwrap_or(p.start_offset).max(p.start_offset),
                )
            })
            .collect();
        Ok(LocalConsumer {
            log,
            group: group.to_string(),
            topic,
            isolation,
            state: tokio::sync::Mutex::new(LocalConsumerState {
                positions,
                buffer: std::collections::VecDeque::new(),
                next_partition: 0,
            }),
        })
    }

    /// The next record, waiting for one to be appended when none is left.
    pub(crate) async fn next(&self) -> Result<RawRecord, Error> {
        let mut state = self.state.lock().await;
        loop {
            if let Some(r) = state.buffer.pop_front() {
                return Ok(r);
            }
            let n = state.positions.len();
            for i in 0..n {
                let index = (state.next_partition + i) % n;
                let (partition, position) = state.positions[index];
                let fetched = match self.log.fetch(
                    &self.topic,
                    partition,
                    position,
                    500,
                    8 << 20,
                    self.isolation,
                ) {
                    Ok(f) => f,
                    Err(LogError::OffsetOutOfRange { start, end, .. }) => {
                        state.positions[index].1 = if position < start { start } else { end };
                        continue;
                    }
                    Err(e) => return Err(log_error(e)),
                };
                state.positions[index].1 = fetched.next_offset;
                if !fetched.records.is_empty() {
                    state.next_partition = (index + 1) % n;
                    state.buffer.extend(
                        fetched
                            .records
                            .into_iter()
                            .map(|r| to_raw(&self.topic, partition, r)),
                    );
                    break;
                }
            }
            if state.buffer.is_empty() {
                let waits: Vec<(&str, i32, i64)> = state
                    .positions
                    .iter()
                    .map(|(p, o)| (&*self.topic, *p, *o))
                    .collect();
                let wait = self
                    .log
                    .wait_for_any_async_with(&waits, self.isolation)
                    .map_err(log_error)?;
                wait.await;
            }
        }
    }

    /// Commits the next offset to read in a partition.
    pub(crate) fn commit(&self, partition: i32, next: i64) -> Result<(), Error> {
        self.log
            .commit(&self.group, &[(&self.topic, partition, next)])
            .map_err(log_error)
    }
}
