//! A stream thread on Kafka: a consumer-group member whose rebalance callbacks create, restore
//! and commit tasks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::transaction::{GroupMetadata, transactional_id};
use super::{
    ConnectivityReporter, KafkaChangelogReader, KafkaCollector, MetadataClient, REQUEST_TIMEOUT,
    Role, TopicNames, client_config, kafka_error, offsets_list, to_raw,
};
use crate::config::ThreadFailurePolicy;
use crate::error::Error;
use crate::metrics::LagGauges;
use crate::record::Headers;
use crate::runtime::Shared;
use crate::runtime::collector::{OutRecord, RecordCollector};
use crate::runtime::connectivity::Client;
use crate::runtime::manager::{GroupOffsets, TaskManager};
use crate::runtime::now_ms;
use crate::runtime::task::FetchState;
use crate::state::ChangelogReader;

/// The internal topics to create: `(name, partitions, compacted)`.
pub(crate) fn plan_topics(
    shared: &Shared,
    metadata: &MetadataClient,
) -> Result<Vec<(Arc<str>, i32, bool)>, Error> {
    let external = shared.external_sources();
    let counts = metadata.partition_counts(&external)?;
    crate::runtime::internal_partitions(&shared.topology, &shared.config, &counts)
}

/// Checks that the internal topics exist with the partitions they need.
pub(crate) fn check_topics(
    metadata: &MetadataClient,
    plan: &[(Arc<str>, i32, bool)],
    sinks: &[Arc<str>],
) -> Result<(), Error> {
    let mut names: Vec<Arc<str>> = plan.iter().map(|(n, _, _)| n.clone()).collect();
    names.extend(sinks.iter().cloned());
    let counts = metadata.partition_counts(&names)?;
    if let Some(missing) = sinks.iter().find(|t| !counts.contains_key(*t)) {
        return Err(Error::Config {
            field: "topics",
            reason: format!("output topic {missing} does not exist: create it first"),
        });
    }
    for (name, partitions, _) in plan {
        match counts.get(name) {
            Some(c) if c == partitions => {}
            Some(c) if name.ends_with("-dlq") => {
                tracing::debug!(topic = %name, partitions = c, "dead-letter topic exists");
            }
            Some(c) => {
                return Err(Error::Config {
                    field: "topics",
                    reason: format!(
                        "internal topic {name} has {c} partitions; it needs {partitions}"
                    ),
                });
            }
            None => {
                return Err(Error::Config {
                    field: "topics",
                    reason: format!(
                        "internal topic {name} does not exist and the cluster did not create it: \
                         create it with {partitions} partitions"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Group offsets through the thread's consumer.
struct KafkaGroup<'a, C: ConsumerContext>(&'a BaseConsumer<C>);

impl<'a, C: ConsumerContext> KafkaGroup<'a, C> {
    /// The group of `consumer`, for a commit: under exactly-once, first records the consumer's
    /// current group metadata (generation, member id) for the transaction's offsets.
    fn for_commit(consumer: &'a BaseConsumer<C>, metadata: Option<&GroupMetadata>) -> Self {
        if let Some(metadata) = metadata {
            metadata.set(consumer.group_metadata());
        }
        KafkaGroup(consumer)
    }
}

impl<C: ConsumerContext> GroupOffsets for KafkaGroup<'_, C> {
    fn committed(&self, partitions: &[(Arc<str>, i32)]) -> Result<Vec<Option<i64>>, Error> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let committed = self
            .0
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("fetch committed offsets", e))?;
        Ok(partitions
            .iter()
            .map(|(t, p)| {
                committed
                    .find_partition(t, *p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
            })
            .collect())
    }

    fn commit(&self, offsets: &[(Arc<str>, i32, i64)], sync: bool) -> Result<bool, Error> {
        let tpl = offsets_list(offsets)?;
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        match self.0.commit(&tpl, mode) {
            Ok(()) => Ok(true),
            Err(KafkaError::ConsumerCommit(code)) if refused_by_rebalance(code) => {
                tracing::debug!(error = %code, "offset commit refused during a rebalance");
                Ok(false)
            }
            Err(e) => Err(kafka_error("commit offsets", e)),
        }
    }
}

/// Whether a commit error means the group is rebalancing (or has moved on without this member),
/// rather than that something is broken.
fn refused_by_rebalance(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::AssignmentLost
            | RDKafkaErrorCode::State
    )
}

struct StreamsContext {
    tasks: Arc<Mutex<TaskManager>>,
    shared: Arc<Shared>,
    names: Mutex<TopicNames>,
    /// The next offset to fetch of each assigned partition, where known: where it starts, then
    /// one past the last record polled.
    positions: Arc<Positions>,
    /// Exactly-once: where the consumer's group metadata goes for the transactions.
    metadata: Option<GroupMetadata>,
    /// Where the consumer reports its broker connections.
    connectivity: ConnectivityReporter,
    /// The `records_lag` of the thread's partitions, from the consumer's statistics.
    lag: LagGauges,
    /// Where a partition with no committed offset starts (`auto.offset.reset`), given to
    /// librdkafka with the assignment: left to find out itself, it queries the committed
    /// offsets again and waits 100 ms before resetting.
    reset: Option<Offset>,
}

/// The logical offset `auto.offset.reset` names, or `None` for `error` (librdkafka reports it).
fn reset_offset(setting: Option<&str>) -> Option<Offset> {
    match setting.unwrap_or("latest") {
        "earliest" | "smallest" | "beginning" => Some(Offset::Beginning),
        "latest" | "largest" | "end" => Some(Offset::End),
        _ => None,
    }
}

impl ClientContext for StreamsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {}: {}", error, reason);
        self.connectivity.error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.connectivity.stats(&statistics);
        // librdkafka knows the lag of the partitions it fetches (-1 for the others).
        let mut lagging = Vec::new();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.lag.set(topic, *partition, p.consumer_lag);
                    lagging.push((topic.as_str(), *partition));
                }
            }
        }
        self.lag
            .retain(|topic, partition| lagging.contains(&(topic, partition)));
    }
}

impl ConsumerContext for StreamsContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<(Arc<str>, i32)> = {
            let mut names = self.names.lock();
            tpl.elements()
                .iter()
                .map(|e| (names.get(e.topic()), e.partition()))
                .collect()
        };
        let group = KafkaGroup::for_commit(consumer, self.metadata.as_ref());
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let started = self.tasks.lock().assign(&partitions, &group);
                match started {
                    Ok(starts) => {
                        let mut positions = self.positions.lock();
                        for (topic, partition, start) in starts {
                            let offset = match start {
                                Some(offset) => {
                                    positions.insert((topic.clone(), partition), offset);
                                    Offset::Offset(offset)
                                }
                                None => match self.reset {
                                    Some(reset) => reset,
                                    None => continue,
                                },
                            };
                            let _ = tpl.set_partition_offset(&topic, partition, offset);
                        }
                    }
                    Err(e) => self.shared.fail(&e),
                }
                if let Err(e) = consumer.assign(tpl) {
                    self.shared.fail(&kafka_error("assign", e));
                }
                if self.shared.paused.load(Ordering::SeqCst) {
                    let _ = consumer.pause(tpl);
                }
                tracing::info!(partitions = partitions.len(), "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(e) = self.tasks.lock().revoke(&partitions, &group) {
                    self.shared.fail(&e);
                }
                let mut positions = self.positions.lock();
                for p in &partitions {
                    positions.remove(p);
                }
                let _ = consumer.unassign();
                tracing::info!(partitions = partitions.len(), "partitions revoked");
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }
}

/// How many transactions in a row a stream thread aborts (each time re-creating its tasks)
/// before it gives up and fails with the last error.
const MAX_ABORTS_IN_A_ROW: u32 = 5;

/// The body of one stream thread; `instance` is the instance id of the transactional ids
/// under exactly-once ([`transaction`](super::transaction)).
pub(crate) fn run(shared: Arc<Shared>, index: usize, instance: Option<&str>) -> Result<(), Error> {
    let metrics = shared.env.metrics.clone();
    // The producer reports on its own thread, so an outage shows while this thread is busy.
    let producer_connectivity = ConnectivityReporter::new(shared.clone(), Client::Producer(index));
    let (collector, metadata) = match instance {
        Some(instance) if shared.config.processing_guarantee.is_exactly_once() => {
            // One transactional producer per stream thread (Kafka's exactly_once_v2).
            let metadata = GroupMetadata::default();
            let id = transactional_id(&shared.config, instance, index);
            let collector = KafkaCollector::transactional(
                &shared.config,
                metrics.clone(),
                &id,
                metadata.clone(),
                producer_connectivity,
            )?;
            (collector, Some(metadata))
        }
        _ => (
            KafkaCollector::new(&shared.config, metrics.clone(), Some(producer_connectivity))?,
            None,
        ),
    };
    let restore = KafkaChangelogReader::new(&shared.config, metrics)?;
    let tasks = Arc::new(Mutex::new(TaskManager::new(
        shared.clone(),
        index,
        Box::new(collector),
        Box::new(restore),
    )));
    let positions: Arc<Positions> = Arc::default();
    let mut consumer_config = client_config(&shared.config, Role::GroupConsumer, None)?;
    consumer_config.set(
        "client.id",
        crate::runtime::thread_name(&shared.config.application_id, index),
    );
    ConnectivityReporter::configure(&mut consumer_config, &shared.config);
    let reset = reset_offset(consumer_config.get("auto.offset.reset"));
    let consumer: BaseConsumer<StreamsContext> = consumer_config
        .create_with_context(StreamsContext {
            tasks: tasks.clone(),
            shared: shared.clone(),
            names: Mutex::new(TopicNames::default()),
            positions: positions.clone(),
            metadata: metadata.clone(),
            connectivity: ConnectivityReporter::new(shared.clone(), Client::Consumer(index)),
            lag: tasks.lock().metrics().lag_gauges(),
            reset,
        })
        .map_err(|e| kafka_error("create consumer", e))?;
    let topics: Vec<Arc<str>> = shared.topology.source_topics(&shared.config.application_id);
    let topic_refs: Vec<&str> = topics.iter().map(|t| &**t).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|e| kafka_error("subscribe", e))?;
    let mut watch = ShutdownWatch::start(&shared, &consumer)?;
    let watermarks = Mutex::new(HashMap::new());
    let mut names = TopicNames::default();
    let mut last_commit = Instant::now();
    let mut paused = false;
    let max = shared.config.max_poll_records;
    let mut batch = Vec::with_capacity(max);
    let mut aborts_in_a_row = 0;
    let result = loop {
        if shared.abort.load(Ordering::SeqCst) {
            tasks.lock().aborting = true;
            return Ok(());
        }
        if shared.shutdown.load(Ordering::SeqCst) || shared.has_failed() {
            break Ok(());
        }
        let reinitialise = tasks.lock().take_reinitialise();
        if reinitialise
            && let Err(e) =
                reinitialise_tasks(&shared, &tasks, &consumer, &positions, metadata.as_ref())
        {
            break Err(e);
        }
        let want_pause = shared.paused.load(Ordering::SeqCst);
        if want_pause != paused {
            if let Ok(assignment) = consumer.assignment() {
                let r = if want_pause {
                    consumer.pause(&assignment)
                } else {
                    consumer.resume(&assignment)
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "pause/resume failed");
                }
            }
            paused = want_pause;
        }
        batch.clear();
        let mut next = consumer.poll(Duration::from_millis(100));
        while let Some(polled) = next {
            match polled {
                Ok(m) => {
                    let topic = names.get(m.topic());
                    batch.push(to_raw(&m, &topic));
                }
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            }
            if batch.len() >= max {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }
        if !batch.is_empty() {
            let mut positions = positions.lock();
            for r in &batch {
                positions.insert((r.topic.clone(), r.partition), r.offset + 1);
            }
        }
        let now = now_ms();
        let fetch = KafkaFetch {
            consumer: &consumer,
            positions: &positions,
            watermarks: &watermarks,
        };
        let step = {
            let mut tm = tasks.lock();
            tm.process(&batch, now, &fetch).and_then(|()| {
                tm.tick(now)?;
                if last_commit.elapsed() >= shared.config.commit_interval {
                    if let Some(watch) = &mut watch {
                        watch.check(&shared, &consumer)?;
                    }
                    tm.punctuate(now)?;
                    tm.commit(&KafkaGroup::for_commit(&consumer, metadata.as_ref()), false)?;
                    last_commit = Instant::now();
                    aborts_in_a_row = 0;
                }
                Ok(())
            })
        };
        match step {
            Ok(()) => {}
            // Exactly-once: a Kafka failure aborts the transaction, and the tasks start again
            // from the last commit; a fatal one (fenced) ends the thread.
            Err(e @ Error::Kafka { .. }) if metadata.is_some() => {
                aborts_in_a_row += 1;
                if aborts_in_a_row > MAX_ABORTS_IN_A_ROW {
                    tracing::error!(error = %e, aborts = aborts_in_a_row - 1, "giving up after aborting transactions in a row");
                    break Err(e);
                }
                match tasks.lock().abort_transaction() {
                    Ok(_) => {
                        tracing::warn!(error = %e, "stream thread step failed: transaction aborted, tasks start again from the last commit");
                        shared.env.metrics.transactions_aborted.incr();
                        last_commit = Instant::now();
                    }
                    Err(fatal) => {
                        tracing::error!(error = %fatal, cause = %e, "the transactional producer cannot go on");
                        // The step's own error when it was the fatal one: it says what failed.
                        let fatal_step = matches!(
                            e,
                            Error::Kafka {
                                retriable: false,
                                ..
                            }
                        );
                        break Err(if fatal_step { e } else { fatal });
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    if result.is_err() || shared.has_failed() {
        // Do not commit after a failure: the last commit is the truth.
        tasks.lock().aborting = true;
        return result;
    }
    let closed = tasks
        .lock()
        .close(&KafkaGroup::for_commit(&consumer, metadata.as_ref()));
    consumer.unsubscribe();
    closed
}

/// After an aborted transaction: re-creates the tasks of the consumer's assignment from their
/// stores and changelogs, and moves the consumer back to where they start (the offsets of the
/// last commit, or the beginning where nothing was ever committed).
fn reinitialise_tasks(
    shared: &Shared,
    tasks: &Mutex<TaskManager>,
    consumer: &BaseConsumer<StreamsContext>,
    positions: &Positions,
    metadata: Option<&GroupMetadata>,
) -> Result<(), Error> {
    let assignment = consumer
        .assignment()
        .map_err(|e| kafka_error("read the assignment", e))?;
    let partitions: Vec<(Arc<str>, i32)> = {
        let mut names = consumer.context().names.lock();
        assignment
            .elements()
            .iter()
            .map(|e| (names.get(e.topic()), e.partition()))
            .collect()
    };
    let starts = tasks
        .lock()
        .assign(&partitions, &KafkaGroup::for_commit(consumer, metadata))?;
    let mut seek = TopicPartitionList::new();
    let mut positions = positions.lock();
    for (topic, partition, start) in starts {
        let offset = match start {
            Some(o) => {
                positions.insert((topic.clone(), partition), o);
                Offset::Offset(o)
            }
            None => {
                positions.remove(&(topic.clone(), partition));
                Offset::Beginning
            }
        };
        seek.add_partition_offset(&topic, partition, offset)
            .map_err(|e| kafka_error("seek", e))?;
    }
    if seek.count() > 0 {
        let sought = consumer
            .seek_partitions(seek, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("seek", e))?;
        if let Some(e) = sought.elements().iter().find_map(|e| e.error().err()) {
            return Err(kafka_error("seek", e));
        }
    }
    tracing::info!(
        application = %shared.config.application_id,
        partitions = partitions.len(),
        "tasks re-created after an aborted transaction"
    );
    Ok(())
}

/// What the brokers hold beyond this thread's positions: a partition's high watermark, asked
/// of the broker at most once a second (only for empty partitions of tasks that align
/// several inputs). A watermark a second old only misses records written in that second,
/// which the alignment does not wait for anyway (`max_task_idle` does, by time).
struct KafkaFetch<'a, C: ConsumerContext> {
    consumer: &'a BaseConsumer<C>,
    positions: &'a Positions,
    watermarks: &'a Watermarks,
}

impl<C: ConsumerContext> FetchState for KafkaFetch<'_, C> {
    fn has_more(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        let cached = self
            .watermarks
            .lock()
            .get(&key)
            .filter(|(_, at)| at.elapsed() < WATERMARK_TTL)
            .map(|(high, _)| *high);
        let high = match cached {
            Some(high) => high,
            None => match self
                .consumer
                .fetch_watermarks(topic, partition, WATERMARK_TTL)
            {
                Ok((_, high)) => {
                    self.watermarks.lock().insert(key, (high, Instant::now()));
                    high
                }
                Err(e) => {
                    tracing::debug!(topic, partition, error = %e, "no high watermark");
                    return true;
                }
            },
        };
        let position = self
            .positions
            .lock()
            .iter()
            .find(|((t, p), _)| &**t == topic && *p == partition)
            .map(|(_, o)| *o);
        match position {
            Some(position) => position < high,
            // Nothing fetched and no start offset known: the first fetch tells.
            None => high > 0,
        }
    }
}

/// The next offset to fetch of each assigned partition, where known.
type Positions = Mutex<HashMap<(Arc<str>, i32), i64>>;

/// High watermarks asked of the broker, with when they were asked.
type Watermarks = Mutex<HashMap<(String, i32), (i64, Instant)>>;

/// How long a high watermark asked of the broker is used.
const WATERMARK_TTL: Duration = Duration::from_secs(1);

/// Watches `<application_id>-shutdown` for requests of
/// [`ThreadFailurePolicy::ShutdownApplication`]: a record written after this thread started.
struct ShutdownWatch {
    topic: String,
    /// The topic's end offset when the thread started.
    start: i64,
}

impl ShutdownWatch {
    fn start<C: ConsumerContext>(
        shared: &Shared,
        consumer: &BaseConsumer<C>,
    ) -> Result<Option<Self>, Error> {
        if shared.config.thread_failures != ThreadFailurePolicy::ShutdownApplication {
            return Ok(None);
        }
        let topic = shared.config.shutdown_topic();
        let (_, start) = consumer
            .fetch_watermarks(&topic, 0, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("read the shutdown topic's offsets", e))?;
        Ok(Some(ShutdownWatch { topic, start }))
    }

    /// Fails with [`Error::ShutdownRequested`] when a request was written since the start.
    fn check<C: ConsumerContext>(
        &mut self,
        shared: &Shared,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), Error> {
        let (_, end) = consumer
            .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("read the shutdown topic's offsets", e))?;
        if end <= self.start {
            return Ok(());
        }
        let mut reason = format!("a request at {}@{}", self.topic, self.start);
        let mut reader = KafkaChangelogReader::new(&shared.config, shared.env.metrics.clone())?;
        let read = reader.read(&self.topic, 0, self.start, self.start + 1, &mut |raw| {
            if let Some(value) = &raw.value {
                reason = String::from_utf8_lossy(value).into_owned();
            }
            Ok(())
        });
        if let Err(e) = read {
            tracing::warn!(error = %e, "could not read the shutdown request");
        }
        Err(Error::ShutdownRequested { reason })
    }
}

/// Writes a shutdown request for every instance of the application
/// ([`ThreadFailurePolicy::ShutdownApplication`]), saying why.
pub(crate) fn request_shutdown(shared: &Shared, error: &Error) -> Result<(), Error> {
    let mut collector = KafkaCollector::new(&shared.config, shared.env.metrics.clone(), None)?;
    let topic = shared.config.shutdown_topic();
    let reason = error.to_string();
    collector.send(OutRecord {
        topic: &topic,
        partition: Some(0),
        key: None,
        value: Some(reason.as_bytes()),
        timestamp: now_ms(),
        headers: &Headers::new(),
    })?;
    collector.flush()?;
    tracing::error!(topic = %topic, "asked every instance of the application to shut down");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_offset_reset_names_its_logical_offset() {
        for name in ["earliest", "smallest", "beginning"] {
            assert_eq!(reset_offset(Some(name)), Some(Offset::Beginning), "{name}");
        }
        for name in ["latest", "largest", "end"] {
            assert_eq!(reset_offset(Some(name)), Some(Offset::End), "{name}");
        }
        // librdkafka's default, when nothing sets it.
        assert_eq!(reset_offset(None), Some(Offset::End));
        // `error` stays with librdkafka, which reports the partition instead of reading it.
        assert_eq!(reset_offset(Some("error")), None);
    }
}
