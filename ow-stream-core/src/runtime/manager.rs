//! The tasks of one stream thread: creation on assignment, restore, processing, commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Shared;
use super::task::{FetchState, Task};
use crate::error::Error;
use crate::metrics::ThreadMetrics;
use crate::record::RawRecord;
use crate::runtime::collector::RecordCollector;
use crate::runtime::context::{AppEnv, TaskId};
use crate::state::ChangelogReader;
use crate::state::cache::CacheBudget;

/// A producer as the task manager needs it: send, and wait for acknowledgements.
pub(crate) trait Collector: RecordCollector {
    /// Waits until every record sent so far is acknowledged; fails if one was not.
    fn flush(&mut self) -> Result<(), Error>;

    /// Under exactly-once: commits the transaction holding every record sent since the last
    /// commit, together with the group's next offsets `offsets` (Kafka's
    /// `sendOffsetsToTransaction` + `commitTransaction`), after a [`Collector::flush`]. Returns
    /// `Ok(false)` for a collector without transactions (the default): nothing happened, and
    /// the caller commits the offsets to the group itself.
    fn commit_transaction(&mut self, offsets: &[(Arc<str>, i32, i64)]) -> Result<bool, Error> {
        let _ = offsets;
        Ok(false)
    }

    /// Under exactly-once, after a step failed: aborts the open transaction, so nothing sent
    /// since the last commit ever becomes visible to read_committed readers. `Ok(true)`: the
    /// producer can go on with a new transaction. `Ok(false)`: a collector without
    /// transactions (the default), nothing happened. An error: the producer cannot go on
    /// (fenced, or failed fatally).
    fn abort_transaction(&mut self) -> Result<bool, Error> {
        Ok(false)
    }
}

/// Consumer-group offsets as the task manager needs them.
pub(crate) trait GroupOffsets {
    /// The group's committed offsets of `partitions` (`None` where nothing is committed).
    fn committed(&self, partitions: &[(Arc<str>, i32)]) -> Result<Vec<Option<i64>>, Error>;
    /// Commits `(topic, partition, next offset)` for the group. `Ok(false)`: the group refused
    /// the commit because it is rebalancing (Kafka's `REBALANCE_IN_PROGRESS` and kin). That is
    /// not a failure: the stores' own commits (checkpoints and changelog markers) hold the
    /// offsets their contents reflect, and whoever owns a partition next resumes from them
    /// when they are ahead of the group's.
    fn commit(&self, offsets: &[(Arc<str>, i32, i64)], sync: bool) -> Result<bool, Error>;

    /// `offsets` were committed to the group by a transaction (exactly-once): whatever the
    /// backend does after a commit (purging consumed repartition records, say) happens now.
    fn committed_in_transaction(&self, offsets: &[(Arc<str>, i32, i64)]) {
        let _ = offsets;
    }
}

/// Where to start reading a partition: `(topic, partition, offset)`.
pub(crate) type StartOffset = (Arc<str>, i32, Option<i64>);

/// The tasks of one stream thread.
pub(crate) struct TaskManager {
    shared: Arc<Shared>,
    tasks: BTreeMap<TaskId, Task>,
    collector: Box<dyn Collector + Send>,
    restore: Box<dyn ChangelogReader + Send>,
    /// Offsets last committed to the group, to commit only what moved.
    group_committed: HashMap<(Arc<str>, i32), i64>,
    /// Set when the thread stops abruptly: nothing is committed any more.
    pub(crate) aborting: bool,
    /// Set when [`TaskManager::abort_transaction`] dropped the tasks: the thread re-creates
    /// them for its assignment ([`TaskManager::assign`]) and reads again from where they start.
    reinitialise: bool,
    /// The record cache budget of this thread's tasks: its share of the application's.
    cache_budget: Arc<CacheBudget>,
    /// The thread's instruments.
    metrics: ThreadMetrics,
}

impl TaskManager {
    /// The task manager of stream thread `index`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: usize,
        collector: Box<dyn Collector + Send>,
        restore: Box<dyn ChangelogReader + Send>,
    ) -> Self {
        let config = &shared.config;
        let cache_budget =
            CacheBudget::new(config.cache_max_bytes / config.num_stream_threads.max(1));
        let metrics = shared
            .env
            .metrics
            .thread(&super::thread_name(&config.application_id, index));
        TaskManager {
            metrics,
            cache_budget,
            shared,
            tasks: BTreeMap::new(),
            collector,
            restore,
            group_committed: HashMap::new(),
            aborting: false,
            reinitialise: false,
        }
    }

    fn task_id(&self, topic: &str, partition: i32) -> Option<TaskId> {
        self.shared
            .topology
            .subtopology_of(topic, &self.shared.config.application_id)
            .map(|subtopology| TaskId {
                subtopology,
                partition,
            })
    }

    /// Partitions were assigned: creates and restores their tasks. Returns where to start
    /// reading each partition (`None`: the group's committed offset or the reset policy).
    pub(crate) fn assign(
        &mut self,
        partitions: &[(Arc<str>, i32)],
        group: &dyn GroupOffsets,
    ) -> Result<Vec<StartOffset>, Error> {
        let app = self.shared.config.application_id.clone();
        for (topic, partition) in partitions {
            let Some(id) = self.task_id(topic, *partition) else {
                continue;
            };
            if self.tasks.contains_key(&id) {
                continue;
            }
            let mut task = Task::open(
                &self.shared.topology,
                id,
                &app,
                &self.shared.config.state_dir,
                self.shared.config.default_store,
                self.cache_budget.clone(),
                &self.metrics,
            )?;
            let seal = task.restore(&mut *self.restore, &mut *self.collector)?;
            if seal {
                // Seal the restore before anything else: the compensation records in every
                // changelog first, then a marker in each (see `StateManager::restore`: a
                // marker anywhere must mean its commit's changes are everywhere).
                self.collector.flush()?;
                task.state.prepare_commit(&mut *self.collector)?;
                self.collector.flush()?;
                self.collector.commit_transaction(&[])?;
                task.state.finish_commit()?;
            }
            if self.shared.config.max_task_idle.is_some() {
                task.enable_alignment();
            }
            task.register(&self.shared.registry);
            tracing::info!(task = %id, "task assigned and restored");
            self.tasks.insert(id, task);
        }
        let committed = group.committed(partitions)?;
        let mut starts = Vec::with_capacity(partitions.len());
        for ((topic, partition), group_offset) in partitions.iter().zip(committed) {
            let state_offset = self
                .task_id(topic, *partition)
                .and_then(|id| self.tasks.get(&id))
                .and_then(|t| t.state.offsets().get(&(topic.clone(), *partition)).copied());
            let start = match (state_offset, group_offset) {
                (Some(s), Some(g)) => Some(s.max(g)),
                (s, g) => s.or(g),
            };
            if let (Some(start), Some(id)) = (start, self.task_id(topic, *partition))
                && let Some(task) = self.tasks.get_mut(&id)
            {
                task.state.set_position(topic, *partition, start);
            }
            starts.push((topic.clone(), *partition, start));
        }
        Ok(starts)
    }

    /// Partitions are being taken away: commits, then closes their tasks.
    pub(crate) fn revoke(
        &mut self,
        partitions: &[(Arc<str>, i32)],
        group: &dyn GroupOffsets,
    ) -> Result<(), Error> {
        let mut result = if self.aborting {
            Ok(())
        } else {
            self.commit(group, true)
        };
        if let Err(e @ Error::Kafka { .. }) = &result {
            // Under exactly-once a refused commit (the group moved on without this member, say)
            // is aborted: the tasks go, their new owner resumes from the last commit.
            match self.abort_transaction() {
                Ok(true) => {
                    tracing::warn!(error = %e, "the commit before a rebalance failed; its transaction is aborted");
                    result = Ok(());
                }
                Ok(false) => {}
                Err(fatal) => result = Err(fatal),
            }
        }
        let ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|(t, p)| self.task_id(t, *p))
            .collect();
        for id in ids {
            if let Some(task) = self.tasks.remove(&id) {
                task.unregister(&self.shared.registry);
                tracing::info!(task = %id, "task revoked");
            }
        }
        self.group_committed
            .retain(|(t, p), _| !partitions.iter().any(|(rt, rp)| rt == t && rp == p));
        result
    }

    /// Records of `topic`/`partition` fetched and buffered, not processed yet.
    pub(crate) fn buffered(&self, topic: &str, partition: i32) -> usize {
        self.task_id(topic, partition)
            .and_then(|id| self.tasks.get(&id))
            .map_or(0, |t| t.buffered(topic))
    }

    /// Processes a batch of records: in order for tasks with one input partition; buffered
    /// and processed in timestamp order across partitions for the others, as far as `fetch`
    /// and [`StreamsConfig::max_task_idle`](crate::config::StreamsConfig::max_task_idle)
    /// allow (called with an empty batch, it goes on with what is buffered).
    pub(crate) fn process(
        &mut self,
        batch: &[RawRecord],
        wall_clock: i64,
        fetch: &dyn FetchState,
    ) -> Result<(), Error> {
        let env = &self.shared.env;
        for raw in batch {
            let Some(id) = self.task_id(&raw.topic, raw.partition) else {
                continue;
            };
            let Some(task) = self.tasks.get_mut(&id) else {
                // Fetched before its partition was revoked: its new owner reads it again.
                continue;
            };
            if task.state.is_behind(&raw.topic, raw.partition, raw.offset) {
                // Already processed (fetched again after a rebalance).
                continue;
            }
            if task.aligns() {
                task.buffer(raw);
                continue;
            }
            task.process_caught(raw, env, &mut *self.collector, wall_clock)?;
            if self.cache_budget.exceeded() {
                // The task's own aggregation flushed its cache; other tasks' caches hold the
                // rest of the budget.
                Self::flush_all_caches(&mut self.tasks, env, &mut *self.collector)?;
            }
        }
        let Some(max_idle) = self.shared.config.max_task_idle else {
            return Ok(());
        };
        let aligned: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.aligns())
            .map(|(id, _)| *id)
            .collect();
        for id in aligned {
            while let Some(task) = self.tasks.get_mut(&id) {
                let Some(raw) = task.next_aligned(wall_clock, max_idle, fetch, env) else {
                    break;
                };
                task.process_caught(&raw, env, &mut *self.collector, wall_clock)?;
                if self.cache_budget.exceeded() {
                    Self::flush_all_caches(&mut self.tasks, env, &mut *self.collector)?;
                }
            }
        }
        Ok(())
    }

    /// Flushes the record caches of every task (a panic in the code downstream of a cache is
    /// reported as [`Error::Panicked`]).
    fn flush_all_caches(
        tasks: &mut BTreeMap<TaskId, Task>,
        env: &AppEnv,
        collector: &mut dyn RecordCollector,
    ) -> Result<(), Error> {
        for task in tasks.values_mut() {
            let id = task.id;
            crate::runtime::catch_panic(
                || format!("the record cache flush of task {id}"),
                || task.flush_caches(env, collector),
            )?;
        }
        Ok(())
    }

    /// Lets every task act on the current wall-clock time.
    pub(crate) fn punctuate(&mut self, wall_clock: i64) -> Result<(), Error> {
        for task in self.tasks.values_mut() {
            let id = task.id;
            crate::runtime::catch_panic(
                || format!("the punctuation of task {id}"),
                || task.punctuate(&self.shared.env, &mut *self.collector, wall_clock),
            )?;
        }
        Ok(())
    }

    /// Fires the wall-clock punctuation schedules due at `wall_clock` in every task (and runs
    /// the processors' `init` hooks of new tasks). Cheap when nothing is due: called on every
    /// turn of the stream thread's loop.
    pub(crate) fn tick(&mut self, wall_clock: i64) -> Result<(), Error> {
        for task in self.tasks.values_mut() {
            let id = task.id;
            crate::runtime::catch_panic(
                || format!("the punctuation of task {id}"),
                || task.tick(&self.shared.env, &mut *self.collector, wall_clock),
            )?;
        }
        Ok(())
    }

    /// Commits every task, in this order:
    ///
    /// 1. a producer flush: every output, changelog and repartition record sent since the last
    ///    commit is acknowledged; then the changelog commit markers (`prepare_commit`) and
    ///    another flush. (Markers only after the outputs: a marker says "everything before me
    ///    is written"; were it acknowledged before an output of its commit, a crash between the
    ///    two would restore the store past an output that never got written.)
    /// 2. under exactly-once, the transaction with the input offsets that moved
    ///    ([`Collector::commit_transaction`]): outputs and offsets become visible together;
    /// 3. the stores' local files with their checkpoints (`finish_commit`): after a crash
    ///    between 2 and 3, restore brings them up to the committed changelogs;
    /// 4. at-least-once only: the group offsets.
    ///
    /// (A record cache that flushes on commit goes before 1.)
    ///
    /// Under at-least-once the markers of step 1 are plain appends, one changelog after the
    /// other, so a `kill -9` among them leaves a commit marked in some of a task's changelogs
    /// only. Because the markers come after the flush, a marker anywhere means that every
    /// change of its commit is in every changelog: restore rolls such a commit forward (applies
    /// it everywhere and writes the missing markers) rather than back (see
    /// `StateManager::restore`). Changes with no marker after them in any changelog are a
    /// commit that never finished: restore discards them. Exactly-once never sees either: its
    /// markers are in the transaction, visible in every changelog or in none.
    pub(crate) fn commit(&mut self, group: &dyn GroupOffsets, sync: bool) -> Result<(), Error> {
        if self.aborting {
            return Ok(());
        }
        let started = std::time::Instant::now();
        Self::flush_all_caches(&mut self.tasks, &self.shared.env, &mut *self.collector)?;
        self.collector.flush()?;
        for task in self.tasks.values_mut() {
            task.state.prepare_commit(&mut *self.collector)?;
        }
        self.collector.flush()?;
        let mut moved = Vec::new();
        for task in self.tasks.values() {
            for ((topic, partition), offset) in task.state.offsets() {
                let key = (topic.clone(), *partition);
                if self.group_committed.get(&key) != Some(offset) {
                    moved.push((topic.clone(), *partition, *offset));
                }
            }
        }
        let transactional = self.collector.commit_transaction(&moved)?;
        for task in self.tasks.values_mut() {
            task.state.finish_commit()?;
        }
        if transactional {
            group.committed_in_transaction(&moved);
            for (t, p, o) in moved {
                self.group_committed.insert((t, p), o);
            }
        } else if !moved.is_empty() {
            if group.commit(&moved, sync)? {
                for (t, p, o) in moved {
                    self.group_committed.insert((t, p), o);
                }
            } else {
                tracing::info!(
                    partitions = moved.len(),
                    "group offsets not committed: the group is rebalancing (the stores' offsets \
                     are committed; the next owner resumes from them)"
                );
            }
        }
        self.shared.env.metrics.commits.incr();
        self.metrics.commit_latency.observe(started.elapsed());
        Ok(())
    }

    /// Under exactly-once, after a step failed: aborts the open transaction and drops every
    /// task without committing (their stores keep the last commit on disk, and their
    /// changelogs hold nothing visible past it). `Ok(true)`: the thread must call
    /// [`TaskManager::take_reinitialise`] and re-create its tasks with
    /// [`TaskManager::assign`], reading again from the offsets that returns. `Ok(false)`: no
    /// transactions, nothing was done. An error: the producer cannot go on.
    pub(crate) fn abort_transaction(&mut self) -> Result<bool, Error> {
        if !self.collector.abort_transaction()? {
            return Ok(false);
        }
        for (id, task) in std::mem::take(&mut self.tasks) {
            task.unregister(&self.shared.registry);
            tracing::info!(task = %id, "task dropped after an aborted transaction");
        }
        self.reinitialise = true;
        Ok(true)
    }

    /// The thread's instruments.
    pub(crate) fn metrics(&self) -> &ThreadMetrics {
        &self.metrics
    }

    /// Whether the tasks were dropped by an aborted transaction since the last call.
    pub(crate) fn take_reinitialise(&mut self) -> bool {
        std::mem::take(&mut self.reinitialise)
    }

    /// Drops every task (after a final commit, unless aborting).
    pub(crate) fn close(&mut self, group: &dyn GroupOffsets) -> Result<(), Error> {
        let result = self.commit(group, true);
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.unregister(&self.shared.registry);
        }
        result
    }
}

impl Drop for TaskManager {
    /// A thread that dies (or aborts) withdraws its tasks' shards from queries, so nothing
    /// keeps their stores open for the thread that takes them over.
    fn drop(&mut self) {
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.unregister(&self.shared.registry);
        }
    }
}
