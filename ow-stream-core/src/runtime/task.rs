//! A task: one sub-topology working on one partition, with its stores.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::collector::RecordCollector;
use super::context::{AppEnv, TaskCx, TaskId};
use crate::config::StoreBackend;
use crate::error::Error;
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
    ) -> Result<Task, Error> {
        let stores = topology.task_stores(id.subtopology, application_id);
        let dir = state_dir.join(application_id).join(id.to_string());
        let state = StateManager::open(id, &stores, &dir, default_store, cache_budget)?;
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
        })
    }

    /// Restores the stores from their changelogs. Returns whether compensation records were
    /// written (the caller must commit before processing).
    pub(crate) fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
        out: &mut dyn RecordCollector,
    ) -> Result<bool, Error> {
        self.state.restore(reader, out)
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

    /// Processes one input record.
    pub(crate) fn process(
        &mut self,
        raw: &RawRecord,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        self.last_wall_clock = self.last_wall_clock.max(wall_clock);
        let stream_time = self.state.stream_time().max(raw.timestamp);
        self.state.set_stream_time(stream_time);
        let Some(source) = self.nodes.sources.get_mut(&raw.topic) else {
            return Err(Error::Closed {
                reason: format!("task {} does not read topic {}", self.id, raw.topic),
            });
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
        };
        source.process_raw(raw, &mut cx)?;
        self.state
            .record_input(&raw.topic, raw.partition, raw.offset);
        Ok(())
    }

    /// Lets time-driven processors act on the current times.
    pub(crate) fn punctuate(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), Error> {
        self.last_wall_clock = self.last_wall_clock.max(wall_clock);
        self.punctuate_round(env, out, wall_clock, false)
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
            self.punctuate_round(env, out, self.last_wall_clock, true)?;
        }
        Ok(())
    }

    fn punctuate_round(
        &mut self,
        env: &AppEnv,
        out: &mut dyn RecordCollector,
        wall_clock: i64,
        flush_caches: bool,
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
            };
            source.punctuate(&mut cx)?;
        }
        Ok(())
    }
}
