//! A task: one sub-topology working on one partition, with its stores.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use super::collector::RecordCollector;
use super::context::{AppEnv, TaskCx, TaskId};
use crate::config::StoreBackend;
use crate::error::Error;
use crate::metrics::{TaskMetrics, ThreadMetrics};
use crate::processor::punctuation::{PunctuationType, TimerRound, Timers};
use crate::record::RawRecord;
use crate::state::cache::CacheBudget;
use crate::state::{ChangelogReader, StateManager, StoreRegistry};
use crate::topology::{TaskNodes, Topology};

/// One sub-topology instantiated for one partition.
pub(crate) struct Task {
    pub(crate) id: TaskId,
    nodes: TaskNodes,
    pub(crate) state: StateManager,
    round: u64,
    /// Latest wall-clock time the task was given, for the punctuation of a cache flush.
    last_wall_clock: i64,
    /// The task's input topics, each with the records fetched but not processed yet, when
    /// records are processed in timestamp order across them (see [`Task::enable_alignment`]).
    queues: Vec<(Arc<str>, VecDeque<RawRecord>)>,
    /// Since when (wall clock) the task has been waiting for an empty input partition.
    waiting_since: Option<i64>,
    /// When the processors' punctuation schedules are due next.
    timers: Timers,
    /// Whether the processors' `init` hooks ran.
    initialized: bool,
    /// The task's instruments (and its thread's).
    metrics: TaskMetrics,
}

/// Whether a partition has records its stream thread has not fetched yet.
pub(crate) trait FetchState {
    /// `true` when `partition` of `topic` has records beyond what was fetched (or when the
    /// backend cannot tell yet).
    fn has_more(&self, topic: &str, partition: i32) -> bool;
}

impl Task {
    /// Builds the nodes and opens the stores of a task (stores are restored separately).
    pub(crate) fn open(
        topology: &Topology,
        id: TaskId,
        application_id: &str,
        state_dir: &Path,
        default_store: StoreBackend,
        cache_budget: Arc<CacheBudget>,
        thread: &ThreadMetrics,
    ) -> Result<Task, Error> {
        let stores = topology.task_stores(id.subtopology, application_id);
        let dir = state_dir.join(application_id).join(id.to_string());
        let state = StateManager::open(id, &stores, &dir, default_store, cache_budget)?;
        let metrics = thread.task(&id.to_string());
        let index: HashMap<Arc<str>, usize> = stores
            .iter()
            .enumerate()
            .map(|(i, (def, _))| (def.name.clone(), i))
            .collect();
        let nodes = topology.instantiate(id.subtopology, application_id, &index)?;
        Ok(Task {
            id,
            nodes,
            state,
            round: 0,
            last_wall_clock: i64::MIN,
            queues: Vec::new(),
            waiting_since: None,
            timers: Timers::default(),
            initialized: false,
            metrics,
        })
    }

    /// Buffers the records of each input topic and processes them in timestamp order across
    /// topics (Kafka Streams' `max.task.idle.ms` behaviour), when the task reads several.
    pub(crate) fn enable_alignment(&mut self) {
        if self.nodes.sources.len() > 1 {
            let mut topics: Vec<Arc<str>> = self.nodes.sources.keys().cloned().collect();
            topics.sort();
            self.queues = topics.into_iter().map(|t| (t, VecDeque::new())).collect();
        }
    }

    /// Whether records are buffered and processed in timestamp order.
    pub(crate) fn aligns(&self) -> bool {
        !self.queues.is_empty()
    }

    /// Records of `topic` buffered and not processed yet.
    pub(crate) fn buffered(&self, topic: &str) -> usize {
        self.queues
            .iter()
            .find(|(t, _)| &**t == topic)
            .map_or(0, |(_, q)| q.len())
    }

    /// Buffers a fetched record (see [`Task::enable_alignment`]).
    pub(crate) fn buffer(&mut self, raw: &RawRecord) {
        if let Some((_, q)) = self.queues.iter_mut().find(|(t, _)| *t == raw.topic)
            && q.back().is_none_or(|last| last.offset < raw.offset)
        {
            q.push_back(raw.clone());
        }
    }

    /// The next buffered record to process: the one with the smallest timestamp, once every
    /// input partition has a record or may be passed over (see
    /// [`StreamsConfig::max_task_idle`](crate::config::StreamsConfig::max_task_idle)).
    pub(crate) fn next_aligned(
        &mut self,
        wall_clock: i64,
        max_idle: std::time::Duration,
        fetch: &dyn FetchState,
        env: &AppEnv,
    ) -> Option<RawRecord> {
        let partition = self.id.partition;
        let mut best: Option<(usize, i64)> = None;
        let (mut lagging, mut empty, mut full) = (false, false, false);
        for (i, (topic, q)) in self.queues.iter().enumerate() {
            match q.front() {
                Some(r) => {
                    full |= q.len() >= crate::config::MAX_BUFFERED_PER_PARTITION;
                    if best.is_none_or(|(_, ts)| r.timestamp < ts) {
                        best = Some((i, r.timestamp));
                    }
                }
                None if fetch.has_more(topic, partition) => lagging = true,
                None => empty = true,
            }
        }
        let Some((index, _)) = best else {
            self.waiting_since = None;
            return None;
        };
        if lagging || empty {
            let idle = max_idle.as_millis() as i64;
            let limit = if lagging {
                idle.max(crate::config::LAGGING_PARTITION_WAIT.as_millis() as i64)
            } else {
                idle
            };
            let since = *self.waiting_since.get_or_insert(wall_clock);
            let waited = wall_clock.saturating_sub(since);
            if waited < limit && !full {
                return None;
            }
            if lagging || full || idle > 0 {
                env.metrics.enforced_processing.incr();
                tracing::debug!(
                    task = %self.id, waited_ms = waited, lagging, buffer_full = full,
                    "processing before every input partition has data"
                );
            }
        } else {
            self.waiting_since = None;
        }
        self.queues[index].1.pop_front()
    }

    /// Restores the stores from their changelogs. Returns whether the restore must be sealed
    /// (flush, then commit) before processing: see `StateManager::restore`. From then on
    /// the stores count what processors ask of them (a restore's own reads and writes are
    /// not counted).
    pub(crate) fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
        out: &mut dyn RecordCollector,
    ) -> Result<bool, Error> {
        let seal = self.state.restore(reader, out)?;
        self.state.instrument(&self.metrics);
        Ok(seal)
    }

    /// Makes the task's shards queryable.
    pub(crate) fn register(&self, registry: &StoreRegistry) {
        for (name, handle) in self.state.query_handles() {
            registry.add_shard(name, self.id.partition, handle);
        }
    }

    /// Withdraws the task's shards from queries.
    pub(crate) fn unregister(&self, registry: &StoreRegistry) {
        for (name, _) in self.state.query_handles() {
            registry.remove_shard(&name, self.id.partition);
        }
    }

    /// Processes one input record, and counts it with the time it took.
    pub(crate) fn process(
        &mut self,
        raw: &RawRecord,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let result = self.process_uncounted(raw, env, out, wall_clock);
        let m = &self.metrics;
        m.thread.process_latency.observe(started.elapsed());
        m.thread.process.incr();
        m.process.incr();
        result
    }

    fn process_uncounted(
        &mut self,
        raw: &RawRecord,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        self.last_wall_clock = self.last_wall_clock.max(wall_clock);
        self.init(env, out, wall_clock)?;
        let Some(source) = self.nodes.sources.get_mut(&raw.topic) else {
            return Err(Error::Closed {
                reason: format!("task {} does not read topic {}", self.id, raw.topic),
            });
        };
        let stream_time = if source.extracts_timestamps() {
            // The source moves it by the timestamps it extracts.
            self.state.stream_time()
        } else {
            let t = self.state.stream_time().max(raw.timestamp);
            self.state.set_stream_time(t);
            t
        };
        env.metrics.records_consumed.incr();
        let mut cx = TaskCx {
            task: self.id,
            env,
            state: &mut self.state,
            out,
            input: Some(raw),
            stream_time,
            wall_clock,
            emit_seq: 0,
            round: self.round,
            flush_caches: false,
            timers: &mut self.timers,
            timer: None,
        };
        source.process_raw(raw, &mut cx)?;
        self.state
            .record_input(&raw.topic, raw.partition, raw.offset);
        if self.state.stream_time() >= self.timers.stream {
            self.fire(env, out, wall_clock, PunctuationType::StreamTime)?;
        }
        Ok(())
    }

    /// [`Task::process`], with a panic in user code turned into
    /// [`Error::Panicked`] naming the task and the record.
    pub(crate) fn process_caught(
        &mut self,
        raw: &RawRecord,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        let id = self.id;
        crate::runtime::catch_panic(
            || {
                format!(
                    "task {id}, record {}/{}@{}",
                    raw.topic, raw.partition, raw.offset
                )
            },
            || self.process(raw, env, out, wall_clock),
        )
    }

    /// Lets time-driven processors act on the current times.
    pub(crate) fn punctuate(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        self.last_wall_clock = self.last_wall_clock.max(wall_clock);
        self.init(env, out, wall_clock)?;
        self.punctuate_round(env, out, wall_clock, false, None)?;
        self.tick(env, out, wall_clock)
    }

    /// Runs the processors' `init` hooks, once, before anything else the task does (they
    /// may schedule punctuations).
    pub(crate) fn init(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        if self.initialized {
            return Ok(());
        }
        self.initialized = true;
        self.punctuate_round(env, out, wall_clock, false, Some(TimerRound::Init))
    }

    /// Fires the wall-clock punctuation schedules that are due at `wall_clock` (cheap when
    /// none is: called on every turn of the stream thread's loop).
    pub(crate) fn tick(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        self.last_wall_clock = self.last_wall_clock.max(wall_clock);
        self.init(env, out, wall_clock)?;
        if wall_clock >= self.timers.wall {
            self.fire(env, out, wall_clock, PunctuationType::WallClockTime)?;
        }
        Ok(())
    }

    /// A round that fires the due schedules of `kind` (and recomputes when that kind is due
    /// next).
    fn fire(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
        kind: PunctuationType,
    ) -> Result<(), Error> {
        self.timers.reset(kind);
        self.punctuate_round(env, out, wall_clock, false, Some(TimerRound::Fire(kind)))
    }

    /// Flushes every record cache of the task (before a commit, or when the thread's cache
    /// budget is exceeded): their updates reach the stores, the changelogs and the nodes
    /// downstream, whose own caches are flushed after them.
    pub(crate) fn flush_caches(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
    ) -> Result<(), Error> {
        // A flush may fill the caches of aggregations further down (reached through a merge
        // after they flushed in this round): go on until every cache is empty. Each round
        // empties at least the caches nearest to the sources, so this ends.
        let mut rounds = 0;
        while self.state.has_cached() {
            rounds += 1;
            if rounds > 64 {
                return Err(Error::Closed {
                    reason: format!(
                        "task {}: record caches still full after 64 flushes",
                        self.id
                    ),
                });
            }
            self.punctuate_round(env, out, self.last_wall_clock, true, None)?;
        }
        Ok(())
    }

    fn punctuate_round(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
        flush_caches: bool,
        timer: Option<TimerRound>,
    ) -> Result<(), Error> {
        self.round += 1;
        let stream_time = self.state.stream_time();
        for source in self.nodes.sources.values_mut() {
            let mut cx = TaskCx {
                task: self.id,
                env,
                state: &mut self.state,
                out: &mut *out,
                input: None,
                stream_time,
                wall_clock,
                emit_seq: 0,
                round: self.round,
                flush_caches,
                timers: &mut self.timers,
                timer,
            };
            source.punctuate(&mut cx)?;
        }
        Ok(())
    }
}
