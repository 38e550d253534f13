//! A broker-free test driver for topologies.
//!
//! [`TopologyTestDriver`] runs a topology synchronously in the calling thread, with the same
//! nodes, serdes and stores as production, on one partition per topic. Records piped into an
//! input topic are processed at once, through every sub-topology they reach (repartition topics
//! included); outputs are read from output topics; stores are read like interactive queries;
//! time is controlled by record timestamps (stream time) and [`TopologyTestDriver::advance_wall_clock`].
//!
//! ```
//! use ow_stream_core::{StreamsBuilder, Topic};
//! use ow_stream_core::dsl::Materialized;
//! use ow_stream_core::testing::TopologyTestDriver;
//!
//! let clicks: Topic<String, String> = Topic::json("clicks");
//! let counts: Topic<String, i64> = Topic::json("click-counts");
//! let builder = StreamsBuilder::new();
//! builder.stream(&clicks).group_by_key().count(Materialized::as_("counts")).to_stream().to(&counts);
//!
//! let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
//! let input = driver.input_topic(&clicks);
//! input.pipe_input("ada".into(), "/home".into()).unwrap();
//! input.pipe_input("ada".into(), "/about".into()).unwrap();
//! let mut output = driver.output_topic(&counts);
//! assert_eq!(output.read_key_values().unwrap(), vec![("ada".to_string(), 1), ("ada".to_string(), 2)]);
//! assert_eq!(driver.key_value_store::<String, i64>("counts").unwrap().get(&"ada".into()).unwrap(), Some(2));
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{OnError, StoreBackend};
use crate::error::Error;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::record::{Headers, RawRecord, Record};
use crate::runtime::collector::{Delivery, OutRecord, RecordCollector};
use crate::runtime::context::{AppEnv, TaskId};
use crate::runtime::task::Task;
use crate::serde::blocking::OwnBlocker;
use crate::serde::{SerdeContext, decode_blocking, encode_blocking};
use crate::state::cache::CacheBudget;
use crate::state::global::{Applied, GlobalStore};
use crate::state::{ChangelogReader, ReadOnlyKeyValueStore, ReadOnlyWindowStore, StoreRegistry};
use crate::topic::Topic;
use crate::topology::Topology;

/// Settings of a [`TopologyTestDriver`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TestDriverConfig {
    /// The application id (prefixes internal topics). Default `"test-app"`.
    pub application_id: String,
    /// Where stores live. Default: in memory.
    pub store_backend: StoreBackend,
    /// Policy for undecodable records. Default: dead-letter topic.
    pub deserialization_errors: OnError,
    /// Policy for processing failures. Default: dead-letter topic.
    pub processing_errors: OnError,
    /// Initial wall-clock time in milliseconds (and the timestamp of records piped without
    /// one). Default 0.
    pub start_time: i64,
    /// Partition counts of output topics, by name (default: one partition). Records written
    /// to a topic with several partitions get the partition a real backend would give them
    /// (their sink's partitioner's, or Kafka's default partitioner's over the key bytes), as
    /// [`TopologyTestDriver::raw_records`] shows; the topology still runs as one task per
    /// sub-topology.
    pub topic_partitions: BTreeMap<String, i32>,
    /// Bytes of record cache for the stores of aggregations, as
    /// [`StreamsConfig::cache_max_bytes`](crate::config::StreamsConfig::cache_max_bytes).
    /// Default: the same 10 MiB. Updates only collapse between commits, so with the default
    /// [`TestDriverConfig::commit_every`] of one record every update is still seen.
    pub cache_max_bytes: usize,
    /// Commit after every this many input records piped in (`0`: only when
    /// [`TopologyTestDriver::commit`] is called). Default `1`: after every record and every
    /// record it causes on repartition topics, as Kafka Streams' test driver does, so every
    /// update is seen and, with persistent stores, every record is durable before the next.
    /// Larger values run tests and benchmarks of persistent stores at about in-memory speed
    /// (one redb transaction per commit) where per-record durability is not what is tested;
    /// outputs of cached aggregations then appear at each commit.
    pub commit_every: u64,
}

impl Default for TestDriverConfig {
    fn default() -> Self {
        TestDriverConfig {
            application_id: "test-app".into(),
            store_backend: StoreBackend::InMemory,
            deserialization_errors: OnError::DeadLetter,
            processing_errors: OnError::DeadLetter,
            start_time: 0,
            topic_partitions: BTreeMap::new(),
            cache_max_bytes: crate::config::DEFAULT_CACHE_MAX_BYTES,
            commit_every: 1,
        }
    }
}

impl TestDriverConfig {
    /// Sets the application id.
    pub fn with_application_id(mut self, id: impl Into<String>) -> Self {
        self.application_id = id.into();
        self
    }

    /// Keeps stores in redb files in a temporary directory instead of memory.
    pub fn with_persistent_stores(mut self) -> Self {
        self.store_backend = StoreBackend::Persistent;
        self
    }

    /// Sets the record cache budget ([`TestDriverConfig::cache_max_bytes`]; `0`: no caching).
    pub fn with_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// Commits after every `records` input records ([`TestDriverConfig::commit_every`]; `0`:
    /// only on [`TopologyTestDriver::commit`]).
    pub fn with_commit_every(mut self, records: u64) -> Self {
        self.commit_every = records;
        self
    }

    /// Sets both error policies.
    pub fn with_error_policy(mut self, policy: OnError) -> Self {
        self.deserialization_errors = policy;
        self.processing_errors = policy;
        self
    }

    /// Gives output topic `topic` `partitions` partitions (see
    /// [`TestDriverConfig::topic_partitions`]).
    pub fn with_topic_partitions(mut self, topic: impl Into<String>, partitions: i32) -> Self {
        self.topic_partitions
            .insert(topic.into(), partitions.max(1));
        self
    }
}

/// Every record written to a topic during a test, in order.
#[derive(Default)]
struct TopicLog {
    records: Vec<RawRecord>,
}

struct Collector<'a> {
    topics: &'a mut HashMap<Arc<str>, TopicLog>,
    reads: &'a [Arc<str>],
    pending: &'a mut VecDeque<RawRecord>,
    metrics: &'a Metrics,
    partitions: &'a BTreeMap<String, i32>,
}

impl Collector<'_> {
    fn append(&mut self, record: OutRecord<'_>) -> i64 {
        let name: Arc<str> = record.topic.into();
        let log = self.topics.entry(name.clone()).or_default();
        let offset = log.records.len() as i64;
        let count = self.partitions.get(record.topic).copied().unwrap_or(1);
        let partition = match (record.partition, record.key) {
            (Some(p), _) => p,
            (None, Some(key)) if count > 1 => ow_stream_log::partition_for_key(key, count),
            (None, _) => 0,
        };
        let raw = RawRecord {
            topic: name.clone(),
            partition,
            offset,
            timestamp: record.timestamp,
            key: record.key.map(Bytes::copy_from_slice),
            value: record.value.map(Bytes::copy_from_slice),
            headers: record.headers.clone(),
        };
        if self.reads.contains(&name) {
            self.pending.push_back(raw.clone());
        }
        log.records.push(raw);
        self.metrics.records_produced.incr();
        offset
    }
}

impl RecordCollector for Collector<'_> {
    fn send(&mut self, record: OutRecord<'_>) -> Result<(), Error> {
        self.append(record);
        Ok(())
    }

    fn send_tracked(&mut self, record: OutRecord<'_>) -> Result<Delivery, Error> {
        let offset = self.append(record);
        let d = Delivery::default();
        d.resolve(Ok(offset));
        Ok(d)
    }

    fn partition_count(&mut self, topic: &str) -> Result<i32, Error> {
        Ok(self.partitions.get(topic).copied().unwrap_or(1))
    }
}

struct NoChangelogs;

impl ChangelogReader for NoChangelogs {
    fn watermarks(&mut self, _topic: &str, _partition: i32) -> Result<(i64, i64), Error> {
        Ok((0, 0))
    }

    fn read(
        &mut self,
        _topic: &str,
        _partition: i32,
        _from: i64,
        _to: i64,
        _f: &mut dyn FnMut(&RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

struct Inner {
    topology: Topology,
    application_id: String,
    env: AppEnv,
    tasks: BTreeMap<u32, Task>,
    topics: HashMap<Arc<str>, TopicLog>,
    reads: Vec<Arc<str>>,
    partitions: BTreeMap<String, i32>,
    wall_clock: i64,
    cache_budget: Arc<CacheBudget>,
    commit_every: u64,
    /// Input records piped in since the last commit.
    since_commit: u64,
    /// The global stores (`global_table`), fed by records of their topics.
    globals: Vec<GlobalStore>,
    _dir: tempfile::TempDir,
}

impl Inner {
    fn run(&mut self, first: RawRecord) -> Result<(), Error> {
        self.drain(VecDeque::from([first]))
    }

    /// Processes `pending` and every record it causes on topics the topology reads; with a
    /// commit cadence of one record, commits each task after each of its records.
    fn drain(&mut self, mut pending: VecDeque<RawRecord>) -> Result<(), Error> {
        while let Some(raw) = pending.pop_front() {
            if let Some(global) = self.globals.iter_mut().find(|g| g.def().topic == raw.topic) {
                let env = &self.env;
                let applied = crate::runtime::catch_panic(
                    || "the global thread".into(),
                    || global.apply(&raw, env.deserialization_errors, &env.application_id),
                )?;
                if let Applied::DeadLetter(headers) = applied {
                    env.metrics.deserialization_errors.incr();
                    env.metrics.dead_letters.incr();
                    let mut out = Collector {
                        topics: &mut self.topics,
                        reads: &self.reads,
                        pending: &mut pending,
                        metrics: &env.metrics,
                        partitions: &self.partitions,
                    };
                    out.send(OutRecord {
                        topic: &env.dead_letter_topic,
                        partition: None,
                        key: raw.key.as_deref(),
                        value: raw.value.as_deref(),
                        timestamp: raw.timestamp,
                        headers: &headers,
                    })?;
                }
                global.commit()?;
                continue;
            }
            let Some(sub) = self
                .topology
                .subtopology_of(&raw.topic, &self.application_id)
            else {
                continue;
            };
            let Some(task) = self.tasks.get_mut(&sub) else {
                continue;
            };
            let mut out = Collector {
                topics: &mut self.topics,
                reads: &self.reads,
                pending: &mut pending,
                metrics: &self.env.metrics,
                partitions: &self.partitions,
            };
            // A panic in user code is reported as the stream thread would report it.
            task.process_caught(&raw, &self.env, &mut out, self.wall_clock)?;
            if self.commit_every == 1 {
                // Commit after every record, as Kafka Streams' test driver does.
                commit_task(task, &self.env, &mut out)?;
            } else if self.cache_budget.exceeded() {
                for task in self.tasks.values_mut() {
                    flush_task_caches(task, &self.env, &mut out)?;
                }
            }
        }
        Ok(())
    }

    /// Counts one piped input record, committing when the cadence says so.
    fn piped(&mut self) -> Result<(), Error> {
        self.since_commit += 1;
        if self.commit_every > 1 && self.since_commit >= self.commit_every {
            self.commit()?;
        }
        Ok(())
    }

    /// Flushes every record cache (processing what the flushes write to topics the topology
    /// reads, until nothing is left), then commits every task.
    fn commit(&mut self) -> Result<(), Error> {
        self.since_commit = 0;
        loop {
            let mut pending = VecDeque::new();
            let mut out = Collector {
                topics: &mut self.topics,
                reads: &self.reads,
                pending: &mut pending,
                metrics: &self.env.metrics,
                partitions: &self.partitions,
            };
            for task in self.tasks.values_mut() {
                flush_task_caches(task, &self.env, &mut out)?;
            }
            if out.pending.is_empty() {
                for task in self.tasks.values_mut() {
                    commit_task(task, &self.env, &mut out)?;
                }
                self.env.metrics.commits.incr();
                return Ok(());
            }
            self.drain(pending)?;
        }
    }

    fn input(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<(), Error> {
        let name: Arc<str> = topic.into();
        let log = self.topics.entry(name.clone()).or_default();
        let raw = RawRecord {
            topic: name,
            partition: 0,
            offset: log.records.len() as i64,
            timestamp,
            key,
            value,
            headers,
        };
        log.records.push(raw.clone());
        self.run(raw)?;
        self.piped()
    }
}

/// Flushes a task's caches and commits it.
fn commit_task(task: &mut Task, env: &AppEnv, out: &mut Collector<'_>) -> Result<(), Error> {
    flush_task_caches(task, env, out)?;
    task.state.prepare_commit(out)?;
    task.state.finish_commit()
}

/// Flushes a task's record caches; a panic in the code downstream is reported as the stream
/// thread would report it.
fn flush_task_caches(task: &mut Task, env: &AppEnv, out: &mut Collector<'_>) -> Result<(), Error> {
    let id = task.id;
    crate::runtime::catch_panic(
        || format!("the record cache flush of task {id}"),
        || task.flush_caches(env, out),
    )
}

/// Runs a topology without a broker. See the [module documentation](self).
pub struct TopologyTestDriver {
    inner: Rc<RefCell<Inner>>,
    registry: Arc<StoreRegistry>,
}

impl TopologyTestDriver {
    /// A driver with the default [`TestDriverConfig`].
    pub fn new(topology: Topology) -> Result<Self, Error> {
        Self::with_config(topology, TestDriverConfig::default())
    }

    /// A driver with the given settings.
    pub fn with_config(topology: Topology, config: TestDriverConfig) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let app = config.application_id.clone();
        let registry = Arc::new(StoreRegistry::default());
        for def in topology.stores() {
            registry.declare(def);
        }
        let env = AppEnv {
            application_id: app.clone().into(),
            dead_letter_topic: format!("{app}-dlq").into(),
            deserialization_errors: config.deserialization_errors,
            processing_errors: config.processing_errors,
            registry_wait: crate::config::DEFAULT_SCHEMA_REGISTRY_WAIT,
            blocker: Box::new(OwnBlocker),
            metrics: Arc::new(Metrics::new(&app)),
            globals: Default::default(),
        };
        let mut tasks = BTreeMap::new();
        let mut topics = HashMap::new();
        let cache_budget = CacheBudget::new(config.cache_max_bytes);
        let mut reads = topology.source_topics(&app);
        let mut globals = Vec::new();
        for def in topology.globals() {
            let store = GlobalStore::open(
                def.clone(),
                &dir.path().join("global"),
                config.store_backend,
            )?;
            registry.declare(&def.store);
            registry.add_shard(def.store.name.clone(), 0, store.query_handle());
            env.globals
                .write()
                .insert(def.store.name.clone(), store.query_handle());
            reads.push(def.topic.clone());
            globals.push(store);
        }
        let thread_metrics = env.metrics.thread("test-driver");
        // What the processors' `init` hooks write to topics the topology reads.
        let mut pending = VecDeque::new();
        for sub in topology.subtopologies() {
            let id = TaskId {
                subtopology: sub.id,
                partition: 0,
            };
            let mut task = Task::open(
                &topology,
                id,
                &app,
                dir.path(),
                config.store_backend,
                cache_budget.clone(),
                &thread_metrics,
            )?;
            let mut out = Collector {
                topics: &mut topics,
                reads: &reads,
                pending: &mut pending,
                metrics: &env.metrics,
                partitions: &config.topic_partitions,
            };
            task.restore(&mut NoChangelogs, &mut out)?;
            task.register(&registry);
            // Processors schedule their punctuations at the driver's start time.
            task.init(&env, &mut out, config.start_time)?;
            tasks.insert(sub.id, task);
        }
        let inner = Rc::new(RefCell::new(Inner {
            topology,
            application_id: app,
            env,
            tasks,
            topics,
            reads,
            partitions: config.topic_partitions,
            wall_clock: config.start_time,
            cache_budget,
            commit_every: config.commit_every,
            since_commit: 0,
            globals,
            _dir: dir,
        }));
        inner.borrow_mut().drain(pending)?;
        Ok(TopologyTestDriver { inner, registry })
    }

    /// A handle to pipe records into `topic`.
    pub fn input_topic<K: 'static, V: 'static>(&self, topic: &Topic<K, V>) -> TestInputTopic<K, V> {
        TestInputTopic {
            inner: self.inner.clone(),
            topic: topic.clone(),
        }
    }

    /// A handle to read what the topology wrote to `topic`, from the first record on.
    pub fn output_topic<K: 'static, V: 'static>(
        &self,
        topic: &Topic<K, V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            inner: self.inner.clone(),
            topic: topic.clone(),
            position: 0,
        }
    }

    /// Every record written to a topic (by name, internal topics resolved, e.g.
    /// `test-app-counts-changelog`), raw.
    pub fn raw_records(&self, topic: &str) -> Vec<RawRecord> {
        self.inner
            .borrow()
            .topics
            .get(topic)
            .map(|l| l.records.clone())
            .unwrap_or_default()
    }

    /// Records written to the dead-letter topic.
    pub fn dead_letters(&self) -> Vec<RawRecord> {
        let topic = self.inner.borrow().env.dead_letter_topic.clone();
        self.raw_records(&topic)
    }

    /// The key-value store `name`.
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, Error> {
        ReadOnlyKeyValueStore::new(self.registry.clone(), name)
    }

    /// The window store `name`.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, Error> {
        ReadOnlyWindowStore::new(self.registry.clone(), name)
    }

    /// Moves wall-clock time forward and punctuates every task: the processors' plain
    /// [`punctuate`](crate::processor::Processor::punctuate) hooks, then the wall-clock
    /// punctuation schedules that are due (see
    /// [`PunctuationType::WallClockTime`](crate::processor::PunctuationType::WallClockTime)).
    /// Like Kafka Streams' `TopologyTestDriver#advanceWallClockTime`, one call fires a due
    /// schedule once, however many intervals it covers (advancing by three intervals fires
    /// once, with the new time, and the schedule is next due at the following interval);
    /// advance step by step to see every interval.
    pub fn advance_wall_clock(&self, by: Duration) -> Result<(), Error> {
        let mut inner = self.inner.borrow_mut();
        inner.wall_clock += by.as_millis() as i64;
        let now = inner.wall_clock;
        let Inner {
            tasks,
            topics,
            reads,
            env,
            partitions,
            ..
        } = &mut *inner;
        let mut pending = VecDeque::new();
        for task in tasks.values_mut() {
            let mut out = Collector {
                topics,
                reads,
                pending: &mut pending,
                metrics: &env.metrics,
                partitions,
            };
            task.punctuate(env, &mut out, now)?;
        }
        drop(inner);
        while let Some(raw) = pending.pop_front() {
            self.inner.borrow_mut().run(raw)?;
        }
        Ok(())
    }

    /// Commits now: flushes every record cache (so the updates they hold reach the output
    /// topics and the stores), then commits every task's stores with its input offsets. Only
    /// needed with a [`TestDriverConfig::commit_every`] other than one record.
    pub fn commit(&self) -> Result<(), Error> {
        self.inner.borrow_mut().commit()
    }

    /// The current wall-clock time in milliseconds.
    pub fn wall_clock_time(&self) -> i64 {
        self.inner.borrow().wall_clock
    }

    /// The application's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.borrow().env.metrics.snapshot()
    }

    /// The application's metrics in the OpenMetrics text format, as
    /// [`Streams::encode_metrics`](crate::runtime::Streams::encode_metrics) writes them (the
    /// driver's one thread is `thread_id="test-driver"`).
    pub fn encode_metrics(&self, out: &mut String) -> Result<(), std::fmt::Error> {
        self.inner.borrow().env.metrics.encode(out)
    }
}

/// Pipes records into one topic of a [`TopologyTestDriver`].
pub struct TestInputTopic<K, V> {
    inner: Rc<RefCell<Inner>>,
    topic: Topic<K, V>,
}

impl<K: 'static, V: 'static> TestInputTopic<K, V> {
    /// Pipes a record stamped with the driver's wall-clock time.
    pub fn pipe_input(&self, key: K, value: V) -> Result<(), Error> {
        let ts = self.inner.borrow().wall_clock;
        self.pipe_input_at(key, value, ts)
    }

    /// Pipes a record with the given timestamp (milliseconds).
    pub fn pipe_input_at(&self, key: K, value: V, timestamp: i64) -> Result<(), Error> {
        self.pipe_record(Record::new(key, value, timestamp))
    }

    /// Pipes a record with headers.
    pub fn pipe_record(&self, record: Record<K, V>) -> Result<(), Error> {
        let name = self.topic.shared_name();
        let encode_err = |source| Error::Serialize {
            topic: name.clone(),
            source,
        };
        let key = encode_blocking(
            &**self.topic.key_serde(),
            SerdeContext::key(&name),
            &record.key,
        )
        .map_err(encode_err)?;
        let value = encode_blocking(
            &**self.topic.value_serde(),
            SerdeContext::value(&name),
            &record.value,
        )
        .map_err(encode_err)?;
        self.inner.borrow_mut().input(
            &name,
            Some(Bytes::from(key)),
            Some(Bytes::from(value)),
            record.timestamp,
            record.headers,
        )
    }

    /// Pipes a tombstone (a record with no value) for `key`, stamped with the driver's
    /// wall-clock time: a table reading the topic deletes the key.
    pub fn pipe_tombstone(&self, key: K) -> Result<(), Error> {
        let ts = self.inner.borrow().wall_clock;
        self.pipe_tombstone_at(key, ts)
    }

    /// Pipes a tombstone for `key` with the given timestamp (milliseconds).
    pub fn pipe_tombstone_at(&self, key: K, timestamp: i64) -> Result<(), Error> {
        let name = self.topic.shared_name();
        let key = encode_blocking(&**self.topic.key_serde(), SerdeContext::key(&name), &key)
            .map_err(|source| Error::Serialize {
                topic: name.clone(),
                source,
            })?;
        self.inner.borrow_mut().input(
            &name,
            Some(Bytes::from(key)),
            None,
            timestamp,
            Headers::new(),
        )
    }

    /// Pipes raw bytes, as any producer could (to test undecodable records and tombstones).
    pub fn pipe_raw(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), Error> {
        let name = self.topic.shared_name();
        self.inner.borrow_mut().input(
            &name,
            key.map(Bytes::copy_from_slice),
            value.map(Bytes::copy_from_slice),
            timestamp,
            Headers::new(),
        )
    }
}

/// Reads what a topology wrote to one topic of a [`TopologyTestDriver`].
pub struct TestOutputTopic<K, V> {
    inner: Rc<RefCell<Inner>>,
    topic: Topic<K, V>,
    position: usize,
}

impl<K: 'static, V: 'static> TestOutputTopic<K, V> {
    fn next_raw(&mut self) -> Option<RawRecord> {
        let inner = self.inner.borrow();
        let raw = inner
            .topics
            .get(self.topic.name())
            .and_then(|l| l.records.get(self.position))
            .cloned();
        if raw.is_some() {
            self.position += 1;
        }
        raw
    }

    /// The next record, decoded, or `None` when everything written was read.
    pub fn read_record(&mut self) -> Result<Option<Record<K, V>>, Error> {
        let Some(raw) = self.next_raw() else {
            return Ok(None);
        };
        let decode_err = |source| Error::Deserialize {
            topic: raw.topic.clone(),
            partition: raw.partition,
            offset: raw.offset,
            source,
            record: Some(Box::new(raw.clone())),
        };
        let key = decode_blocking(
            &**self.topic.key_serde(),
            SerdeContext::key(self.topic.name()),
            raw.key.as_deref().unwrap_or_default(),
        )
        .map_err(decode_err)?;
        let value = decode_blocking(
            &**self.topic.value_serde(),
            SerdeContext::value(self.topic.name()),
            raw.value.as_deref().unwrap_or_default(),
        )
        .map_err(decode_err)?;
        Ok(Some(Record {
            key,
            value,
            timestamp: raw.timestamp,
            headers: raw.headers,
        }))
    }

    /// Every unread record, decoded.
    pub fn read_records(&mut self) -> Result<Vec<Record<K, V>>, Error> {
        let mut out = Vec::new();
        while let Some(r) = self.read_record()? {
            out.push(r);
        }
        Ok(out)
    }

    /// Every unread record as `(key, value)`.
    pub fn read_key_values(&mut self) -> Result<Vec<(K, V)>, Error> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// Every unread value.
    pub fn read_values(&mut self) -> Result<Vec<V>, Error> {
        Ok(self.read_records()?.into_iter().map(|r| r.value).collect())
    }

    /// The latest value per key among the unread records (what a compacted topic would keep).
    pub fn read_key_values_to_map(&mut self) -> Result<BTreeMap<K, V>, Error>
    where
        K: Ord,
    {
        Ok(self.read_key_values()?.into_iter().collect())
    }

    /// How many records are written but unread.
    pub fn queue_size(&self) -> usize {
        self.inner
            .borrow()
            .topics
            .get(self.topic.name())
            .map(|l| l.records.len().saturating_sub(self.position))
            .unwrap_or(0)
    }

    /// Whether every written record was read.
    pub fn is_empty(&self) -> bool {
        self.queue_size() == 0
    }
}
