//! A durable, partitioned, append-only record log on local disk: the storage
//! engine behind ow-stream's broker-free backend.
//!
//! ow-stream runs any topology on one machine without a broker, the way an
//! application uses SQLite where it does not need PostgreSQL; Kafka is where
//! it goes when one machine is not enough. This crate provides what the
//! broker would: topics of partitions holding Kafka's record model, offsets,
//! Kafka's default partitioner, retention, compaction and consumer-group
//! offsets, all durable under a state directory. The adapter in
//! `ow-stream-core` puts producers, consumers and the streams runtime on top.
//!
//! # Design
//!
//! **One directory, one owner.** [`Log::open`] takes an OS lock (`flock`) on
//! `<dir>/LOCK`, which the kernel drops when the process dies, and writes its
//! pid there. A second opener gets [`LogError::Locked`] with that pid instead
//! of two writers corrupting each other.
//!
//! **Segment files, not an embedded database.** Each partition is a directory
//! of segment files, each a sequence of CRC-protected batch frames, plus a
//! sparse offset index per segment; the same shape as Kafka's own log. We
//! considered redb (already a workspace dependency) and chose plain files:
//!
//! - *Throughput*: an append is one `pwrite` of a pre-encoded frame at the end
//!   of a file. A B-tree store does copy-on-write page updates and its own
//!   free-space bookkeeping for data that is never updated in place.
//! - *fsync cost*: one `fdatasync` of one file makes a batch durable, and
//!   concurrent appenders share it (group commit). redb's commit writes and
//!   syncs its pages plus a header, serialised across the whole database, so
//!   partitions would contend on one commit lock.
//! - *Retention and compaction*: dropping old data is deleting a file;
//!   compaction rewrites closed segments sequentially and swaps them in with
//!   a rename. In a B-tree, deletes leave free pages inside one growing file
//!   that only an offline compaction returns to the file system.
//! - *Recovery*: only the tail of the active segment can be torn. Open
//!   re-validates it batch by batch (CRC) and cuts it at the first bad frame:
//!   work proportional to one segment, not to the log.
//! - *Readers* `pread` only bytes the writer has published as committed
//!   (whole batches), so they never take the writer's lock and never see a
//!   half-written batch: a short read lock on the segment list, then plain
//!   file reads. A segment replaced by compaction or deleted by retention
//!   stays readable through the file handle a reader already holds.
//!
//! **Durability is a policy** ([`FsyncPolicy`]): `Always` acknowledges a batch
//! only after `fdatasync` (a power cut loses nothing acknowledged);
//! `Interval(d)` acknowledges after `write` and lets a background flusher
//! fsync every `d` (a power cut loses at most the last interval; killing the
//! *process* loses nothing, since the kernel already has the data); `Never`
//! leaves it to the OS. Batches are atomic under every policy: recovery keeps
//! a frame only if its CRC matches, so a batch is there whole or not at all.
//! Under `Always`, readers see a batch only once it is durable, so no
//! consumer ever processes a record that a crash could take back.
//!
//! **Waiting without polling.** Each partition has an
//! [`event_listener::Event`] notified when its end offset moves.
//! [`Log::wait_for`] blocks a thread on it; [`Log::wait_for_async`] returns a
//! future (no runtime dependency). [`Log::wait_for_any`] and
//! [`Log::wait_for_any_async`] wait on several partitions.
//!
//! **Retention and compaction** run in [`Log::maintain`], called explicitly or
//! by a background thread ([`LogOptions::maintenance_interval`]). They only
//! ever touch *closed* segments (retention that finds even the active
//! segment expired rolls it first, as Kafka does). Retention deletes whole old segments, by
//! time (newest record older than `retention`) and by size
//! (`retention_bytes`, Kafka's rule). Compaction keeps, per key, only the
//! record with the highest offset; offsets never change, so compacted
//! partitions have gaps (readers skip them, as in Kafka). Tombstones (records
//! without a value) survive `delete_retention` after the first compaction
//! that saw them (the horizon is stored in the batch, as in Kafka's KIP-534),
//! then disappear. Consecutive small segments are merged while compacting,
//! so a compacted partition holds roughly its live keys plus the active
//! segment. Compaction keeps the latest offset of every distinct key of the
//! closed segments in memory while it runs (no bounded map as in Kafka's
//! cleaner). Records without a key are rejected on compacted topics
//! ([`LogError::MissingKey`]), as Kafka rejects them: compaction would have no
//! key to keep them by.
//!
//! **Partitioning** ([`Log::partition_for`]) is Kafka's default partitioner,
//! bit for bit ([`murmur2`]), so keys land in the same partitions as with the
//! Java client or librdkafka; keyless records go round-robin.
//!
//! **Consumer groups** are a small append-only file of commit frames, each
//! fsynced before `commit` returns; a commit of many partitions is one frame,
//! so it is atomic.
//!
//! **Transactions** ([`Log::init_transactions`], [`TransactionalProducer`])
//! are Kafka's (KIP-98), on one machine. A producer with a *transactional
//! id* begins a transaction, appends to any partitions of any topics, adds
//! consumer-group commits ([`TransactionalProducer::send_offsets`]), and
//! commits or aborts; readers with [`Isolation::ReadCommitted`] see all of
//! it or nothing.
//!
//! - *Data in place, markers after it.* Transactional batches go to the
//!   partitions like any other, flagged with the producer's id (a `u16` the
//!   log assigns to the transactional id). The commit or abort writes a
//!   *marker* (a control batch of one record) to every partition the
//!   transaction wrote; readers never get markers.
//! - *Last stable offset.* Each partition knows where the oldest open
//!   transaction's data starts; `read_committed` reads stop there (so
//!   nothing of an open transaction, and nothing appended after its first
//!   record, is seen before it ends) and waits
//!   ([`Log::wait_for_any_with`]) wake up when it moves.
//! - *Aborted ranges.* An abort records, per partition, the producer and
//!   the offsets from its first record to its marker; `read_committed`
//!   reads skip that producer's batches there (Kafka's aborted-transaction
//!   index). Plain appends (`Log::append`) and `read_uncommitted` readers
//!   pay nothing for any of this: one attribute test per batch read.
//! - *The coordinator's log* (`transactions.log`) holds each id's producer
//!   id and epoch and the transaction's progress: the partitions it writes
//!   (recorded, and fsynced, before its first append to each), the
//!   decision (`prepare`, carrying the group commits), then `complete` with
//!   the marker offsets (for aborts: the aborted ranges, which are rebuilt
//!   from this file on open). **The commit point is the durable `prepare`
//!   record**, written only after the transaction's data is durable (under
//!   `Interval` the partitions are fsynced first).
//! - *Recovery* on open resolves every transaction the last run left
//!   unfinished: one without a durable decision (killed while writing,
//!   a torn `prepare`, a torn data batch) is aborted — its markers written,
//!   its ranges hidden, its group commits dropped; one with a decision is
//!   completed — missing markers written (looking first for those that made
//!   it), group commits applied. So after `kill -9` anywhere, or a torn last
//!   write, `read_committed` readers see whole committed transactions only.
//! - *Fencing.* Initialising a transactional id again bumps its epoch: the
//!   older producer (a zombie) fails with [`LogError::ProducerFenced`], and
//!   its unfinished transaction is resolved as recovery would. A producer
//!   dropped inside a transaction aborts it.
//! - *Compaction* only rewrites segments wholly below the last stable
//!   offset, drops aborted data and markers there (so the latest record of
//!   a key is always a committed one), and keeps the flags of what it keeps.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/LOCK                              pid of the owner; flock'ed
//! <dir>/CLEAN_SHUTDOWN                    present only between a clean close and the next open
//! <dir>/consumer-offsets.log              group commits (see below)
//! <dir>/transactions.log                  the transaction coordinator's records
//! <dir>/topics/<topic>/topic.conf         text, key=value (Kafka's config names)
//! <dir>/topics/<topic>/<p>/<base>.log     segment: batch frames, base = first offset, 20 digits
//! <dir>/topics/<topic>/<p>/<base>.index   sparse index of that segment
//! ```
//!
//! A **segment** is a sequence of batch frames, one per `append` call, all
//! integers little-endian:
//!
//! ```text
//!  0  u32 length (bytes after the first 8)   4  u32 CRC-32C of bytes 16..end, then 8..16
//!  8  i64 base_offset                       16  u8 magic = 1, u8 attributes, u16 producer_id
//! 20  u32 last_offset_delta                 24  u32 record_count
//! 28  i64 first_timestamp                   36  i64 max_timestamp
//! 44  i64 delete_horizon (-1 = none)        52  records
//! attributes: bit 0 transactional (producer_id says whose), bit 1 control
//!             (a transaction marker: one record, key [0, 1] commit or [0, 0]
//!             abort, no value); 0 and producer_id 0 for plain batches
//! record: u32 offset_delta, i64 timestamp, i32 key_len (-1 = null), key,
//!         i32 value_len (-1 = null), value, u32 header_count,
//!         header_count × (u32 name_len, name, i32 value_len (-1 = null), value)
//! ```
//!
//! A segment is rolled when the next batch would push it past
//! `segment_bytes`, or once it is older than `segment_time`. The **index**
//! holds a 24-byte entry (`i64 offset, u64 position, i64
//! max_timestamp_before`) every `index_interval_bytes` of data; a read
//! binary-searches it and scans at most one interval. The index is a cache:
//! open rebuilds it when it is missing or does not point at a matching batch.
//!
//! **Recovery on open**: every batch of each partition's active segment is
//! re-validated, after a clean close (`CLEAN_SHUTDOWN`) as after a crash, so
//! recovery is idempotent: a batch damaged while the log was closed is cut
//! off before anything is appended after it (found by the `log_recovery`
//! fuzz target, see `fuzz/`). Closed segments (fsynced when they were
//! rolled) are checked from their last index entry. The log is cut at the
//! first frame that is torn or fails its CRC; a cut after a clean close is
//! logged as an error (the disk damaged data at rest), after a crash as a
//! warning (a torn tail).
//! Compaction writes its output to `<base>.cleaned`, fsyncs it and renames it
//! to `<base>-<end>.swap` (the commit point); then the inputs are deleted and
//! the swap is renamed to `<base>.log`. Open deletes `.cleaned` leftovers and
//! completes `.swap`s, so a crash leaves either the old segments or the new
//! one, never a mix. Topic creation builds the topic under `<dir>/staging/`
//! and renames it into `topics/`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use ow_stream_log::{CleanupPolicy, Log, LogOptions, NewRecord, TopicConfig};
//!
//! # fn main() -> Result<(), ow_stream_log::LogError> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let log = Log::open(dir.path(), LogOptions::default().with_maintenance_interval(None))?;
//! log.create_topic("player-table", TopicConfig::new(1).with_cleanup(CleanupPolicy::Compact))?;
//!
//! // A consumer thread blocks until data arrives.
//! let reader = {
//!     let log = log.clone();
//!     std::thread::spawn(move || -> Result<_, ow_stream_log::LogError> {
//!         log.wait_for("player-table", 0, 0, Duration::from_secs(30))?;
//!         log.read("player-table", 0, 0, 10, 1 << 20)
//!     })
//! };
//! log.append("player-table", 0, &[NewRecord::new(Some("p1"), Some("gold"), 1)])?;
//! let records = reader.join().expect("reader thread")?;
//! assert_eq!(records[0].value.as_deref(), Some(&b"gold"[..]));
//! # Ok(()) }
//! ```

mod batch;
mod config;
mod error;
mod frames;
mod group;
mod index;
mod info;
mod log;
mod maintenance;
mod partition;
mod partitioner;
mod record;
mod segment;
mod topic;
mod txn;

pub use crate::config::{
    CleanupPolicy, Clock, FsyncPolicy, LogOptions, ManualClock, SystemClock, TopicConfig,
};
pub use crate::error::LogError;
pub use crate::info::{
    DeleteReason, GroupInfo, GroupPartitionInfo, LogStats, MaintenanceAction, MaintenanceReport,
    PartitionInfo, TopicInfo,
};
pub use crate::log::Log;
pub use crate::partition::{Fetched, Isolation};
pub use crate::partitioner::{murmur2, partition_for_key, to_positive};
pub use crate::record::{AppendResult, Header, NewRecord, StoredRecord};
pub use crate::txn::TransactionalProducer;
pub use bytes::Bytes;
