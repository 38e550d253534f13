//! A stream thread on the local log: it owns its share of the partitions (no group protocol:
//! one process owns a log directory), reads them in batches and waits for appends without
//! polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ow_stream_log::{Log, LogError};

use super::{LocalChangelogReader, LocalCollector, LocalGroup, log_error, to_raw};
use crate::error::Error;
use crate::runtime::manager::TaskManager;
use crate::runtime::task::FetchState;
use crate::runtime::{Shared, now_ms};

/// Records read per partition per step.
const PER_PARTITION: usize = 500;

/// The body of one stream thread on the local backend.
pub(crate) fn run(shared: Arc<Shared>, index: usize, log: Arc<Log>) -> Result<(), Error> {
    let app = shared.config.application_id.clone();
    let metrics = shared.env.metrics.clone();
    let isolation = super::connection::isolation(&shared.config);
    let collector = if shared.config.processing_guarantee.is_exactly_once() {
        // One transactional producer per stream thread (Kafka's exactly_once_v2).
        LocalCollector::transactional(
            log.clone(),
            metrics.clone(),
            &format!("{app}-thread-{index}"),
            &app,
        )?
    } else {
        LocalCollector::new(log.clone(), metrics.clone())
    };
    let mut tasks = TaskManager::new(
        shared.clone(),
        index,
        Box::new(collector),
        Box::new(LocalChangelogReader {
            log: log.clone(),
            metrics,
        }),
    );
    let repartition: Vec<Arc<str>> = shared
        .topology
        .internal_topics(&app)
        .into_iter()
        .filter(|(_, _, changelog)| !changelog)
        .map(|(t, _, _)| t)
        .collect();
    let group = LocalGroup {
        log: log.clone(),
        group: app.clone(),
        purge: repartition,
    };
    // Partition p of every source topic goes to thread p % threads: co-partitioned topics
    // stay together.
    let threads = shared.config.num_stream_threads.max(1);
    let mut assigned = Vec::new();
    for topic in shared.topology.source_topics(&app) {
        let Some(info) = log.topic(&topic) else {
            return Err(Error::Config {
                field: "topics",
                reason: format!("source topic {topic} does not exist"),
            });
        };
        for p in &info.partitions {
            if p.partition as usize % threads == index {
                assigned.push((topic.clone(), p.partition));
            }
        }
    }
    let starts = tasks.assign(&assigned, &group)?;
    let mut positions: HashMap<(Arc<str>, i32), i64> = HashMap::new();
    for (topic, partition, start) in starts {
        let position = match start {
            Some(o) => o,
            None => log.offsets(&topic, partition).map_err(log_error)?.0,
        };
        positions.insert((topic, partition), position);
    }
    let order: Vec<(Arc<str>, i32)> = assigned.clone();
    // Each step starts reading at the next partition, so that a full batch of one partition
    // never keeps another from being read.
    let mut first = 0;
    let max = shared.config.max_poll_records;
    let mut last_commit = Instant::now();
    let mut batch = Vec::with_capacity(max);
    let lag = tasks.metrics().lag_gauges();
    let result = loop {
        if shared.abort.load(Ordering::SeqCst) {
            tasks.aborting = true;
            return Ok(());
        }
        if shared.shutdown.load(Ordering::SeqCst) || shared.has_failed() {
            break Ok(());
        }
        batch.clear();
        if !shared.paused.load(Ordering::SeqCst) {
            first = (first + 1) % order.len().max(1);
            let (after, before) = order.split_at(first);
            for (topic, partition) in before.iter().chain(after) {
                if batch.len() >= max {
                    break;
                }
                if tasks.buffered(topic, *partition) >= crate::config::MAX_BUFFERED_PER_PARTITION {
                    // Its task waits for another partition: read that one first.
                    continue;
                }
                let Some(position) = positions.get_mut(&(topic.clone(), *partition)) else {
                    continue;
                };
                let fetched = match log.fetch(
                    topic,
                    *partition,
                    *position,
                    PER_PARTITION.min(max - batch.len()),
                    8 << 20,
                    isolation,
                ) {
                    Ok(f) => f,
                    Err(LogError::OffsetOutOfRange { start, end, .. }) => {
                        let reset = if *position < start { start } else { end };
                        tracing::warn!(topic = %topic, partition, from = *position, to = reset, "position out of range: resetting");
                        *position = reset;
                        continue;
                    }
                    Err(e) => break_err(e)?,
                };
                *position = fetched.next_offset;
                batch.extend(
                    fetched
                        .records
                        .into_iter()
                        .map(|r| to_raw(topic, *partition, r)),
                );
            }
        }
        if batch.is_empty() {
            let waits: Vec<(&str, i32, i64)> =
                positions.iter().map(|((t, p), o)| (&**t, *p, *o)).collect();
            let wait = if shared.paused.load(Ordering::SeqCst) || waits.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
                Ok(false)
            } else {
                // Wake for the next commit on time: a short commit interval is what makes
                // outputs visible to read_committed readers soon.
                let until_commit = shared
                    .config
                    .commit_interval
                    .saturating_sub(last_commit.elapsed());
                let wait = Duration::from_millis(100)
                    .min(until_commit)
                    .max(Duration::from_millis(1));
                log.wait_for_any_with(&waits, isolation, wait)
            };
            if let Err(e) = wait {
                break Err(log_error(e));
            }
        }
        let now = now_ms();
        let fetch = LocalFetch {
            log: &log,
            positions: &positions,
        };
        let step = tasks.process(&batch, now, &fetch).and_then(|()| {
            tasks.tick(now)?;
            if last_commit.elapsed() >= shared.config.commit_interval {
                tasks.punctuate(now)?;
                tasks.commit(&group, false)?;
                last_commit = Instant::now();
                for ((topic, partition), position) in &positions {
                    if let Ok((_, end)) = log.offsets(topic, *partition) {
                        lag.set(topic, *partition, end - position);
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = step {
            break Err(e);
        }
    };
    if result.is_err() || shared.has_failed() {
        tasks.aborting = true;
        return result;
    }
    tasks.close(&group)
}

/// What the local log holds beyond this thread's read positions.
struct LocalFetch<'a> {
    log: &'a Log,
    positions: &'a HashMap<(Arc<str>, i32), i64>,
}

impl FetchState for LocalFetch<'_> {
    fn has_more(&self, topic: &str, partition: i32) -> bool {
        let position = self
            .positions
            .iter()
            .find(|((t, p), _)| &**t == topic && *p == partition)
            .map(|(_, o)| *o);
        match (position, self.log.offsets(topic, partition)) {
            (Some(position), Ok((_, end))) => position < end,
            _ => false,
        }
    }
}

fn break_err(e: LogError) -> Result<ow_stream_log::Fetched, Error> {
    Err(log_error(e))
}
