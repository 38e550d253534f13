//! A stream thread on Kafka: a consumer-group member whose rebalance callbacks create, restore
//! and commit tasks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::{
    KafkaChangelogReader, KafkaCollector, REQUEST_TIMEOUT, Role, TopicNames, client_config,
    kafka_error, offsets_list, partition_counts, to_raw,
};
use crate::error::Error;
use crate::runtime::Shared;
use crate::runtime::manager::{GroupOffsets, TaskManager};
use crate::runtime::now_ms;

/// The internal topics to create: `(name, partitions, compacted)`.
pub(crate) fn plan_topics(shared: &Shared) -> Result<Vec<(Arc<str>, i32, bool)>, Error> {
    let external = shared.external_sources();
    let counts = partition_counts(&shared.config, &external)?;
    crate::runtime::internal_partitions(&shared.topology, &shared.config, &counts)
}

/// Checks that the internal topics exist with the partitions they need.
pub(crate) fn check_topics(
    shared: &Shared,
    plan: &[(Arc<str>, i32, bool)],
    sinks: &[Arc<str>],
) -> Result<(), Error> {
    let mut names: Vec<Arc<str>> = plan.iter().map(|(n, _, _)| n.clone()).collect();
    names.extend(sinks.iter().cloned());
    let counts = partition_counts(&shared.config, &names)?;
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
}

/// How often the stream thread's consumer reports statistics (its broker connections among
/// them), unless `statistics.interval.ms` is passed through.
const STATISTICS_INTERVAL_MS: &str = "1000";

impl ClientContext for StreamsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {}: {}", error, reason);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.shared.brokers_down(reason);
        }
    }

    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.shared.brokers_up();
        } else if !statistics.brokers.is_empty() {
            self.shared
                .brokers_down("no connection to any broker is up (librdkafka statistics)");
        }
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
        let group = KafkaGroup(consumer);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let started = self.tasks.lock().assign(&partitions, &group);
                match started {
                    Ok(starts) => {
                        for (topic, partition, start) in starts {
                            if let Some(offset) = start {
                                let _ = tpl.set_partition_offset(
                                    &topic,
                                    partition,
                                    Offset::Offset(offset),
                                );
                            }
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

/// The body of one stream thread.
pub(crate) fn run(shared: Arc<Shared>, index: usize) -> Result<(), Error> {
    let metrics = shared.env.metrics.clone();
    let collector = KafkaCollector::new(&shared.config, metrics.clone())?;
    let restore = KafkaChangelogReader::new(&shared.config, metrics)?;
    let tasks = Arc::new(Mutex::new(TaskManager::new(
        shared.clone(),
        Box::new(collector),
        Box::new(restore),
    )));
    let consumer: BaseConsumer<StreamsContext> =
        client_config(&shared.config, Role::GroupConsumer, None)?
            .set(
                "client.id",
                format!("{}-stream-{index}", shared.config.application_id),
            )
            .set(
                "statistics.interval.ms",
                shared
                    .config
                    .kafka
                    .get("statistics.interval.ms")
                    .map_or(STATISTICS_INTERVAL_MS, String::as_str),
            )
            .create_with_context(StreamsContext {
                tasks: tasks.clone(),
                shared: shared.clone(),
                names: Mutex::new(TopicNames::default()),
            })
            .map_err(|e| kafka_error("create consumer", e))?;
    let topics: Vec<Arc<str>> = shared.topology.source_topics(&shared.config.application_id);
    let topic_refs: Vec<&str> = topics.iter().map(|t| &**t).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|e| kafka_error("subscribe", e))?;
    let mut names = TopicNames::default();
    let mut last_commit = Instant::now();
    let mut paused = false;
    let max = shared.config.max_poll_records;
    let mut batch = Vec::with_capacity(max);
    let result = loop {
        if shared.abort.load(Ordering::SeqCst) {
            tasks.lock().aborting = true;
            return Ok(());
        }
        if shared.shutdown.load(Ordering::SeqCst) || shared.has_failed() {
            break Ok(());
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
        let now = now_ms();
        let step = {
            let mut tm = tasks.lock();
            tm.process(&batch, now).and_then(|()| {
                if last_commit.elapsed() >= shared.config.commit_interval {
                    tm.punctuate(now)?;
                    tm.commit(&KafkaGroup(&consumer), false)?;
                    last_commit = Instant::now();
                }
                Ok(())
            })
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    if result.is_err() || shared.has_failed() {
        // Do not commit after a failure: the last commit is the truth.
        tasks.lock().aborting = true;
        return result;
    }
    let closed = tasks.lock().close(&KafkaGroup(&consumer));
    consumer.unsubscribe();
    closed
}
