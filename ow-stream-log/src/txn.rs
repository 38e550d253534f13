//! Transactions: the coordinator's log (`transactions.log`), the state of
//! every transactional producer, recovery of undecided transactions, and
//! [`TransactionalProducer`].
//!
//! The design is Kafka's (KIP-98), on one machine; the crate docs explain
//! it. The coordinator's file is a sequence of CRC-framed records, like the
//! consumer-offsets file (see `frames`):
//!
//! ```text
//! payload: u8 kind, u16 producer_id, u32 epoch, then by kind:
//!   1 init      u16 len + transactional id
//!   2 add       u32 n, n × (u16 len + topic, i32 partition, i64 first offset)
//!   3 prepare   u8 commit, u32 n, n × (topic, partition, first),
//!               u32 m, m × (u16 len + group, topic, partition, i64 offset)
//!   4 complete  u8 commit, u32 n, n × (topic, partition, first, i64 marker)
//! ```
//!
//! `add` is written (and fsynced) before a transaction's first append to a
//! partition, so recovery knows every partition an undecided transaction
//! may have data in; `prepare` with `commit = 1` is the commit point;
//! `complete` records where the markers went (for aborts, the ranges
//! `read_committed` readers skip).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::FsyncPolicy;
use crate::error::LogError;
use crate::frames::{FrameFile, Reader, encode_frame, put_str};
use crate::log::{Inner, Log};
use crate::partition::AbortedRange;
use crate::record::{AppendResult, NewRecord};

const FILE: &str = "transactions.log";
const KIND_INIT: u8 = 1;
const KIND_ADD: u8 = 2;
const KIND_PREPARE: u8 = 3;
const KIND_COMPLETE: u8 = 4;
/// Rewrite the file as a snapshot once it is this big.
const COMPACT_MIN_BYTES: u64 = 4 << 20;

/// `(topic, partition)`.
type Tp = (String, i32);
/// Pending consumer-group commits: `(group, topic, partition) → offset`.
type PendingOffsets = BTreeMap<(String, String, i32), i64>;

/// What a producer's current transaction has done so far.
#[derive(Debug, Default, Clone, PartialEq)]
struct Txn {
    /// Partitions written, with the partition's end before the first write.
    partitions: BTreeMap<Tp, i64>,
    offsets: PendingOffsets,
}

impl Txn {
    fn is_empty(&self) -> bool {
        self.partitions.is_empty() && self.offsets.is_empty()
    }
}

/// Where a producer's transaction is.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    /// No transaction, or one that wrote nothing yet.
    Empty,
    /// Writing; undecided.
    Ongoing(Txn),
    /// Decided (`commit` or abort), markers not all written yet.
    Prepared { commit: bool, txn: Txn },
}

impl Status {
    /// The ongoing transaction, begun now if there is none (never called on
    /// a prepared one).
    fn ongoing(&mut self) -> &mut Txn {
        if !matches!(self, Status::Ongoing(_)) {
            *self = Status::Ongoing(Txn::default());
        }
        let Status::Ongoing(txn) = self else {
            unreachable!("set to ongoing just above")
        };
        txn
    }
}

/// One transactional id's state, locked by its producer for every
/// operation (and by fencing and recovery).
#[derive(Debug)]
struct Slot {
    transactional_id: String,
    producer_id: u16,
    epoch: u32,
    status: Status,
}

/// The transaction coordinator of one log.
#[derive(Debug)]
pub(crate) struct Coordinator {
    sync: bool,
    file: Mutex<FrameFile>,
    slots: Mutex<BTreeMap<String, Arc<Mutex<Slot>>>>,
    /// Every aborted range still recorded, by topic and partition (for
    /// snapshots of the file; the partitions hold their own copy for reads).
    aborted: Mutex<BTreeMap<Tp, Vec<AbortedRange>>>,
}

/// A replayed record.
enum Entry {
    Init(String),
    Add(Vec<(Tp, i64)>),
    Prepare {
        commit: bool,
        partitions: Vec<(Tp, i64)>,
        offsets: Vec<((String, String, i32), i64)>,
    },
    Complete {
        commit: bool,
        markers: Vec<(Tp, i64, i64)>,
    },
}

impl Coordinator {
    /// Opens the coordinator's file and replays it: the slots with their
    /// undecided transactions (resolved by [`Coordinator::recover`]) and the
    /// aborted ranges.
    pub(crate) fn open(dir: &Path, fsync: FsyncPolicy) -> Result<Coordinator, LogError> {
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        let mut ids: HashMap<u16, String> = HashMap::new();
        let mut aborted: BTreeMap<Tp, Vec<AbortedRange>> = BTreeMap::new();
        let file = FrameFile::open(dir, FILE, "transaction-log", |payload| {
            let (producer_id, epoch, entry) = decode(payload)?;
            if let Entry::Init(tid) = &entry {
                ids.insert(producer_id, tid.clone());
                let slot = slots.entry(tid.clone()).or_insert_with(|| Slot {
                    transactional_id: tid.clone(),
                    producer_id,
                    epoch,
                    status: Status::Empty,
                });
                slot.epoch = epoch;
                return Ok(());
            }
            let slot = ids
                .get(&producer_id)
                .and_then(|tid| slots.get_mut(tid))
                .ok_or("record of a producer that was never initialised")?;
            match entry {
                Entry::Init(_) => {}
                Entry::Add(partitions) => {
                    let mut txn = match std::mem::replace(&mut slot.status, Status::Empty) {
                        Status::Ongoing(txn) => txn,
                        _ => Txn::default(),
                    };
                    for (tp, first) in partitions {
                        txn.partitions.entry(tp).or_insert(first);
                    }
                    slot.status = Status::Ongoing(txn);
                }
                Entry::Prepare {
                    commit,
                    partitions,
                    offsets,
                } => {
                    slot.status = Status::Prepared {
                        commit,
                        txn: Txn {
                            partitions: partitions.into_iter().collect(),
                            offsets: offsets.into_iter().collect(),
                        },
                    };
                }
                Entry::Complete { commit, markers } => {
                    slot.status = Status::Empty;
                    if !commit {
                        for (tp, first, marker) in markers {
                            aborted.entry(tp).or_default().push(AbortedRange {
                                producer: producer_id,
                                first,
                                marker,
                            });
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(Coordinator {
            sync: fsync != FsyncPolicy::Never,
            file: Mutex::new(file),
            slots: Mutex::new(
                slots
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(Mutex::new(v))))
                    .collect(),
            ),
            aborted: Mutex::new(aborted),
        })
    }

    /// Finishes every transaction the last run left undecided (aborting the
    /// ongoing ones, completing the prepared ones) and hands the aborted
    /// ranges to their partitions. Runs in [`Log::open`], before anyone
    /// can read.
    pub(crate) fn recover(&self, inner: &Inner) -> Result<(), LogError> {
        let slots: Vec<Arc<Mutex<Slot>>> = self.slots.lock().values().cloned().collect();
        for slot in slots {
            let mut slot = slot.lock();
            if slot.status != Status::Empty {
                tracing::info!(
                    transactional_id = %slot.transactional_id,
                    decided = matches!(slot.status, Status::Prepared { .. }),
                    "recovery resolves an unfinished transaction"
                );
                self.resolve(inner, &mut slot, true)?;
            }
        }
        for ((topic, partition), ranges) in self.aborted.lock().iter() {
            // A topic that is gone has nothing left to hide.
            if let Ok(p) = inner.partition(topic, *partition) {
                let mut list = p.aborted.write();
                for r in ranges {
                    if !list.contains(r) {
                        list.push(*r);
                    }
                }
            }
        }
        Ok(())
    }

    /// Finishes the slot's transaction: an ongoing one is aborted, a prepared
    /// one completed. `recovering`: markers that a previous run may have
    /// written already are looked for first.
    fn resolve(&self, inner: &Inner, slot: &mut Slot, recovering: bool) -> Result<(), LogError> {
        let (commit, txn) = match std::mem::replace(&mut slot.status, Status::Empty) {
            Status::Empty => return Ok(()),
            Status::Ongoing(txn) => {
                if txn.partitions.is_empty() {
                    // Nothing written: nothing to undo (pending offsets just go).
                    return Ok(());
                }
                slot.status = Status::Ongoing(txn.clone());
                self.write(&encode_prepare(slot, false, &txn))?;
                slot.status = Status::Prepared {
                    commit: false,
                    txn: txn.clone(),
                };
                (false, txn)
            }
            Status::Prepared { commit, txn } => {
                slot.status = Status::Prepared {
                    commit,
                    txn: txn.clone(),
                };
                (commit, txn)
            }
        };
        trace_step(
            slot,
            if commit {
                "commit-prepared"
            } else {
                "abort-prepared"
            },
        );
        let mut markers = Vec::with_capacity(txn.partitions.len());
        for ((topic, partition), first) in &txn.partitions {
            let p = match inner.partition(topic, *partition) {
                Ok(p) => p,
                Err(LogError::UnknownTopic { .. } | LogError::UnknownPartition { .. }) => {
                    tracing::warn!(topic = %topic, partition, "a transaction's partition is gone");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let existing = if recovering {
                p.find_marker(slot.producer_id, *first)?
            } else {
                None
            };
            let marker = match existing {
                Some((offset, was_commit)) => {
                    if was_commit != commit {
                        return Err(LogError::corrupt(
                            &self.file.lock().path,
                            0,
                            format!(
                                "{topic}-{partition} holds a {} marker of a transaction the \
                                 coordinator decided to {}",
                                if was_commit { "commit" } else { "abort" },
                                if commit { "commit" } else { "abort" }
                            ),
                        ));
                    }
                    if !commit {
                        let range = AbortedRange {
                            producer: slot.producer_id,
                            first: *first,
                            marker: offset,
                        };
                        let mut list = p.aborted.write();
                        if !list.contains(&range) {
                            list.push(range);
                        }
                    }
                    offset
                }
                None => p.append_marker(slot.producer_id, *first, commit)?,
            };
            trace_step(slot, "marker-written");
            markers.push(((topic.clone(), *partition), *first, marker));
        }
        if commit {
            let mut by_group: BTreeMap<&str, Vec<(&str, i32, i64)>> = BTreeMap::new();
            for ((group, topic, partition), offset) in &txn.offsets {
                by_group
                    .entry(group)
                    .or_default()
                    .push((topic, *partition, *offset));
            }
            for (group, offsets) in by_group {
                inner.groups.commit(group, &offsets)?;
            }
            trace_step(slot, "offsets-committed");
        }
        if self.sync && inner.shared.fsync != FsyncPolicy::Always {
            // The markers are durable before the record that says they are.
            for ((topic, partition), _, _) in &markers {
                inner.partition(topic, *partition)?.flush()?;
            }
        }
        self.write(&encode_complete(slot, commit, &markers))?;
        if !commit {
            let mut aborted = self.aborted.lock();
            for ((topic, partition), first, marker) in markers {
                aborted
                    .entry((topic, partition))
                    .or_default()
                    .push(AbortedRange {
                        producer: slot.producer_id,
                        first,
                        marker,
                    });
            }
        }
        slot.status = Status::Empty;
        trace_step(slot, if commit { "committed" } else { "aborted" });
        self.maybe_rewrite(inner, slot)
    }

    /// Appends one record to the file (fsynced unless the policy is
    /// `Never`).
    fn write(&self, payload: &[u8]) -> Result<(), LogError> {
        self.file.lock().append(payload, self.sync)
    }

    /// Replaces the file by a snapshot (one `init` per producer, the
    /// undecided transactions, the aborted ranges whose data is still in
    /// the log) once it is big. `current` is the slot the caller holds
    /// locked; a snapshot is skipped (for a later completion) while another
    /// producer is busy.
    fn maybe_rewrite(&self, inner: &Inner, current: &Slot) -> Result<(), LogError> {
        if self.file.lock().len < COMPACT_MIN_BYTES {
            return Ok(());
        }
        let slots: Vec<(String, Arc<Mutex<Slot>>)> = self
            .slots
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let mut snapshot = Vec::new();
        for (tid, slot) in &slots {
            let guard;
            let slot: &Slot = if *tid == current.transactional_id {
                current
            } else {
                match slot.try_lock() {
                    Some(g) => {
                        guard = g;
                        &guard
                    }
                    None => return Ok(()),
                }
            };
            snapshot.extend(encode_frame(&encode_init(slot)));
            match &slot.status {
                Status::Empty => {}
                Status::Ongoing(txn) => {
                    snapshot.extend(encode_frame(&encode_add(slot, txn.partitions.iter())));
                }
                Status::Prepared { commit, txn } => {
                    snapshot.extend(encode_frame(&encode_prepare(slot, *commit, txn)));
                }
            }
        }
        {
            let mut aborted = self.aborted.lock();
            for ((topic, partition), ranges) in aborted.iter_mut() {
                let start = inner.partition(topic, *partition).map(|p| p.start());
                ranges.retain(|r| start.as_ref().is_ok_and(|s| r.marker >= *s));
                for r in ranges.iter() {
                    let mut payload = vec![KIND_COMPLETE];
                    payload.extend_from_slice(&r.producer.to_le_bytes());
                    payload.extend_from_slice(&0u32.to_le_bytes());
                    payload.push(0);
                    payload.extend_from_slice(&1u32.to_le_bytes());
                    put_str(&mut payload, topic);
                    payload.extend_from_slice(&partition.to_le_bytes());
                    payload.extend_from_slice(&r.first.to_le_bytes());
                    payload.extend_from_slice(&r.marker.to_le_bytes());
                    snapshot.extend(encode_frame(&payload));
                }
            }
        }
        self.file.lock().replace(&snapshot)
    }

    fn slot_for(&self, transactional_id: &str) -> Result<Arc<Mutex<Slot>>, LogError> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(transactional_id) {
            return Ok(Arc::clone(slot));
        }
        let used = slots
            .values()
            .map(|s| s.lock().producer_id)
            .max()
            .unwrap_or(0);
        let producer_id = used
            .checked_add(1)
            .ok_or_else(|| LogError::InvalidTransaction {
                transactional_id: transactional_id.to_owned(),
                reason: "the log has 65535 transactional ids already".to_owned(),
            })?;
        let slot = Arc::new(Mutex::new(Slot {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            epoch: 0,
            status: Status::Empty,
        }));
        slots.insert(transactional_id.to_owned(), Arc::clone(&slot));
        Ok(slot)
    }
}

/// Tells a tracing subscriber where a transaction's commit or abort is (the
/// crash tests kill processes at these points).
fn trace_step(slot: &Slot, step: &'static str) {
    tracing::trace!(
        target: "ow_stream_log::txn",
        transactional_id = %slot.transactional_id,
        step,
        "transaction step"
    );
}

/// A producer whose appends to any partitions of the log, and whose
/// consumer-group commits, become visible together or not at all: Kafka's
/// transactional producer, on the local log.
///
/// Made by [`Log::init_transactions`]. Each transactional id has one
/// producer at a time: initialising it again *fences* the previous one
/// (its next call fails with [`LogError::ProducerFenced`]) and finishes
/// whatever transaction it left open (aborts it, or completes its commit
/// if it got past the commit point).
///
/// ```
/// use ow_stream_log::{Isolation, Log, LogOptions, NewRecord, TopicConfig};
///
/// # fn main() -> Result<(), ow_stream_log::LogError> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let log = Log::open(dir.path(), LogOptions::default().with_maintenance_interval(None))?;
/// log.create_topic("in", TopicConfig::new(1))?;
/// log.create_topic("out", TopicConfig::new(1))?;
///
/// let mut producer = log.init_transactions("app-thread-0")?;
/// producer.begin()?;
/// producer.append("out", 0, &[NewRecord::new(Some("k"), Some("v"), 1)])?;
/// producer.send_offsets("app", &[("in", 0, 1)])?;
/// // Not visible to read_committed readers yet, nor is the offset.
/// let seen = log.fetch("out", 0, 0, 10, 1 << 20, Isolation::ReadCommitted)?;
/// assert!(seen.records.is_empty());
/// assert_eq!(log.committed("app", "in", 0), None);
///
/// producer.commit()?;
/// let seen = log.fetch("out", 0, 0, 10, 1 << 20, Isolation::ReadCommitted)?;
/// assert_eq!(seen.records.len(), 1);
/// assert_eq!(log.committed("app", "in", 0), Some(1));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TransactionalProducer {
    log: Log,
    slot: Arc<Mutex<Slot>>,
    producer_id: u16,
    epoch: u32,
    in_transaction: bool,
}

impl Log {
    /// The transactional producer of `transactional_id`, with a new epoch:
    /// a producer made earlier for the same id is fenced, and the
    /// transaction it left unfinished is aborted (or, past its commit point,
    /// completed).
    pub fn init_transactions(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionalProducer, LogError> {
        let invalid = |reason: &str| LogError::InvalidTransaction {
            transactional_id: transactional_id.to_owned(),
            reason: reason.to_owned(),
        };
        if transactional_id.is_empty() {
            return Err(invalid("the transactional id is empty"));
        }
        if transactional_id.len() > usize::from(u16::MAX) {
            return Err(invalid("the transactional id is longer than 65535 bytes"));
        }
        let inner = self.inner();
        let coordinator = &inner.transactions;
        let slot_arc = coordinator.slot_for(transactional_id)?;
        let mut slot = slot_arc.lock();
        coordinator.resolve(inner, &mut slot, false)?;
        slot.epoch = slot.epoch.wrapping_add(1);
        coordinator.write(&encode_init(&slot))?;
        let (producer_id, epoch) = (slot.producer_id, slot.epoch);
        drop(slot);
        Ok(TransactionalProducer {
            log: self.clone(),
            slot: slot_arc,
            producer_id,
            epoch,
            in_transaction: false,
        })
    }
}

impl TransactionalProducer {
    /// The transactional id.
    pub fn transactional_id(&self) -> String {
        self.slot.lock().transactional_id.clone()
    }

    /// The producer id the log gave the transactional id (stored in every
    /// batch it writes).
    pub fn producer_id(&self) -> u16 {
        self.producer_id
    }

    /// The producer's epoch (bumped by every [`Log::init_transactions`] of
    /// its id).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Whether a transaction is begun and not yet committed or aborted.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Locks the slot, failing if this producer was fenced.
    fn current(&self) -> Result<parking_lot::MutexGuard<'_, Slot>, LogError> {
        let slot = self.slot.lock();
        if slot.epoch != self.epoch {
            return Err(LogError::ProducerFenced {
                transactional_id: slot.transactional_id.clone(),
                epoch: self.epoch,
                current: slot.epoch,
            });
        }
        Ok(slot)
    }

    /// Like [`Self::current`], and fails if a commit that passed its commit
    /// point is waiting to be completed by `init_transactions`.
    fn writable(&self) -> Result<parking_lot::MutexGuard<'_, Slot>, LogError> {
        let slot = self.current()?;
        if matches!(slot.status, Status::Prepared { .. }) {
            return Err(LogError::InvalidTransaction {
                transactional_id: slot.transactional_id.clone(),
                reason: "a decided transaction is waiting to be completed; call init_transactions"
                    .to_owned(),
            });
        }
        Ok(slot)
    }

    fn not_in_transaction(&self, slot: &Slot, what: &str) -> LogError {
        LogError::InvalidTransaction {
            transactional_id: slot.transactional_id.clone(),
            reason: format!("{what} outside a transaction (call begin first)"),
        }
    }

    /// Begins a transaction.
    pub fn begin(&mut self) -> Result<(), LogError> {
        let slot = self.writable()?;
        if self.in_transaction {
            return Err(LogError::InvalidTransaction {
                transactional_id: slot.transactional_id.clone(),
                reason: "a transaction is already begun".to_owned(),
            });
        }
        drop(slot);
        self.in_transaction = true;
        Ok(())
    }

    /// Appends a batch to one partition inside the transaction. The first
    /// append to a partition records it with the coordinator first (one
    /// fsync), so recovery can always find what an unfinished transaction
    /// wrote. Records appended are invisible to `read_committed` readers
    /// until the transaction commits, and hold them back (the partition's
    /// last stable offset stays at the transaction's first offset there).
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[NewRecord],
    ) -> Result<AppendResult, LogError> {
        let mut slot = self.writable()?;
        if !self.in_transaction {
            return Err(self.not_in_transaction(&slot, "append"));
        }
        let inner = self.log.inner();
        let p = inner.partition(topic, partition)?;
        let tp = (topic.to_owned(), partition);
        let known = match &slot.status {
            Status::Ongoing(txn) => txn.partitions.contains_key(&tp),
            _ => false,
        };
        if !known {
            let first = p.end();
            let entry = [(tp.clone(), first)];
            inner
                .transactions
                .write(&encode_add(&slot, entry.iter().map(|(a, b)| (a, b))))?;
            slot.status.ongoing().partitions.insert(tp, first);
        }
        p.append_as(records, slot.producer_id)
    }

    /// Adds consumer-group commits to the transaction (Kafka's
    /// `sendOffsetsToTransaction`): they take effect when it commits, and
    /// never if it aborts.
    pub fn send_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), LogError> {
        let mut slot = self.writable()?;
        if !self.in_transaction {
            return Err(self.not_in_transaction(&slot, "send_offsets"));
        }
        self.log.validate_commit(group, offsets)?;
        let txn = slot.status.ongoing();
        for (topic, partition, offset) in offsets {
            txn.offsets
                .insert((group.to_owned(), (*topic).to_owned(), *partition), *offset);
        }
        Ok(())
    }

    /// Commits the transaction: its data is made durable (unless the policy
    /// is `Never`), the decision is written to the coordinator's log (the
    /// commit point: from here on, recovery completes the commit), then a
    /// commit marker goes to every partition written and the group offsets
    /// are committed.
    ///
    /// On an error past the commit point the transaction stays decided and
    /// is completed by the next [`Log::init_transactions`] of this id or the
    /// next open of the log; call `init_transactions` before going on.
    pub fn commit(&mut self) -> Result<(), LogError> {
        self.finish(true)
    }

    /// Aborts the transaction: its data stays in the log but is never seen
    /// by `read_committed` readers, and its group offsets are dropped.
    pub fn abort(&mut self) -> Result<(), LogError> {
        self.finish(false)
    }

    fn finish(&mut self, commit: bool) -> Result<(), LogError> {
        let in_transaction = std::mem::replace(&mut self.in_transaction, false);
        let mut slot = self.current()?;
        if !in_transaction {
            return Err(self.not_in_transaction(&slot, if commit { "commit" } else { "abort" }));
        }
        let inner = self.log.inner();
        let txn = match std::mem::replace(&mut slot.status, Status::Empty) {
            Status::Ongoing(txn) if !txn.is_empty() => txn,
            Status::Empty | Status::Ongoing(_) => return Ok(()),
            prepared @ Status::Prepared { .. } => {
                slot.status = prepared;
                return Err(LogError::InvalidTransaction {
                    transactional_id: slot.transactional_id.clone(),
                    reason: "the transaction is being completed; call init_transactions".into(),
                });
            }
        };
        if !commit && txn.partitions.is_empty() {
            return Ok(());
        }
        if commit && matches!(inner.shared.fsync, FsyncPolicy::Interval(_)) {
            // Decided only once the data is durable.
            for (topic, partition) in txn.partitions.keys() {
                if let Err(e) = inner.partition(topic, *partition).and_then(|p| p.flush()) {
                    slot.status = Status::Ongoing(txn);
                    return Err(e);
                }
            }
        }
        slot.status = Status::Ongoing(txn.clone());
        trace_step(&slot, "preparing");
        inner
            .transactions
            .write(&encode_prepare(&slot, commit, &txn))?;
        slot.status = Status::Prepared { commit, txn };
        inner.transactions.resolve(inner, &mut slot, false)
    }
}

impl Drop for TransactionalProducer {
    /// A producer dropped inside a transaction aborts it (Kafka's
    /// transaction timeout, at once): its partitions would otherwise hold
    /// `read_committed` readers back until the id is initialised again.
    fn drop(&mut self) {
        if !self.in_transaction {
            return;
        }
        let Ok(mut slot) = self.current() else {
            return;
        };
        if let Err(e) = self
            .log
            .inner()
            .transactions
            .resolve(self.log.inner(), &mut slot, false)
        {
            tracing::error!(
                transactional_id = %slot.transactional_id, error = %e,
                "could not finish the transaction of a dropped producer; the next open will"
            );
        }
    }
}

fn header(kind: u8, slot: &Slot) -> Vec<u8> {
    let mut p = vec![kind];
    p.extend_from_slice(&slot.producer_id.to_le_bytes());
    p.extend_from_slice(&slot.epoch.to_le_bytes());
    p
}

fn encode_init(slot: &Slot) -> Vec<u8> {
    let mut p = header(KIND_INIT, slot);
    put_str(&mut p, &slot.transactional_id);
    p
}

fn encode_add<'a>(
    slot: &Slot,
    partitions: impl ExactSizeIterator<Item = (&'a Tp, &'a i64)>,
) -> Vec<u8> {
    let mut p = header(KIND_ADD, slot);
    p.extend_from_slice(&(partitions.len() as u32).to_le_bytes());
    for ((topic, partition), first) in partitions {
        put_str(&mut p, topic);
        p.extend_from_slice(&partition.to_le_bytes());
        p.extend_from_slice(&first.to_le_bytes());
    }
    p
}

fn encode_prepare(slot: &Slot, commit: bool, txn: &Txn) -> Vec<u8> {
    let mut p = header(KIND_PREPARE, slot);
    p.push(u8::from(commit));
    p.extend_from_slice(&(txn.partitions.len() as u32).to_le_bytes());
    for ((topic, partition), first) in &txn.partitions {
        put_str(&mut p, topic);
        p.extend_from_slice(&partition.to_le_bytes());
        p.extend_from_slice(&first.to_le_bytes());
    }
    p.extend_from_slice(&(txn.offsets.len() as u32).to_le_bytes());
    for ((group, topic, partition), offset) in &txn.offsets {
        put_str(&mut p, group);
        put_str(&mut p, topic);
        p.extend_from_slice(&partition.to_le_bytes());
        p.extend_from_slice(&offset.to_le_bytes());
    }
    p
}

fn encode_complete(slot: &Slot, commit: bool, markers: &[(Tp, i64, i64)]) -> Vec<u8> {
    let mut p = header(KIND_COMPLETE, slot);
    p.push(u8::from(commit));
    p.extend_from_slice(&(markers.len() as u32).to_le_bytes());
    for ((topic, partition), first, marker) in markers {
        put_str(&mut p, topic);
        p.extend_from_slice(&partition.to_le_bytes());
        p.extend_from_slice(&first.to_le_bytes());
        p.extend_from_slice(&marker.to_le_bytes());
    }
    p
}

/// The `(topic, partition, first offset)` lists of the records.
fn partitions(r: &mut Reader<'_>) -> Result<Vec<(Tp, i64)>, &'static str> {
    let n = r.u32()?;
    let mut out = Vec::with_capacity((n as usize).min(4096));
    for _ in 0..n {
        let topic = r.str()?;
        let partition = r.i32()?;
        out.push(((topic, partition), r.i64()?));
    }
    Ok(out)
}
fn decode(payload: &[u8]) -> Result<(u16, u32, Entry), &'static str> {
    let mut r = Reader(payload);
    let kind = r.take(1)?[0];
    let producer_id = u16::from_le_bytes(r.array()?);
    let epoch = r.u32()?;
    let entry = match kind {
        KIND_INIT => Entry::Init(r.str()?),
        KIND_ADD => Entry::Add(partitions(&mut r)?),
        KIND_PREPARE => {
            let commit = r.take(1)?[0] != 0;
            let partitions = partitions(&mut r)?;
            let m = r.u32()?;
            let mut offsets = Vec::with_capacity((m as usize).min(4096));
            for _ in 0..m {
                let group = r.str()?;
                let topic = r.str()?;
                let partition = r.i32()?;
                offsets.push(((group, topic, partition), r.i64()?));
            }
            Entry::Prepare {
                commit,
                partitions,
                offsets,
            }
        }
        KIND_COMPLETE => {
            let commit = r.take(1)?[0] != 0;
            let n = r.u32()?;
            let mut markers = Vec::with_capacity((n as usize).min(4096));
            for _ in 0..n {
                let topic = r.str()?;
                let partition = r.i32()?;
                let first = r.i64()?;
                markers.push(((topic, partition), first, r.i64()?));
            }
            Entry::Complete { commit, markers }
        }
        _ => return Err("unknown transaction-log record kind"),
    };
    r.finish()?;
    Ok((producer_id, epoch, entry))
}
