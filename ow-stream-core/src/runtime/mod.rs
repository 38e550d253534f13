//! Running a topology: [`Streams`], its stream threads, commits and rebalances.
//!
//! Each stream thread is an OS thread with its own consumer-group member and producer. What a
//! thread does is the same on every backend — the task manager (`manager`) creates, restores,
//! runs and commits tasks; each task hands its nodes a task context (`context`) and writes
//! through a record collector (`collector`) — while how it reads input, produces and joins
//! its group is the backend's (the crate-internal `backend` module: `backend/kafka`,
//! `backend/local`).
//!
//! Processing is synchronous inside a thread (tasks own their stores), so the tokio runtime is
//! never blocked by store I/O; only schema-registry lookups, which happen once per schema, hop
//! onto tokio.
//!
//! # Commit protocol
//! Every `commit_interval`, a thread commits all its tasks: it writes a commit marker to each
//! changelog, flushes the producer (outputs, changelog records and markers are then
//! acknowledged), commits the persistent stores together with the input offsets they reflect,
//! and finally commits the consumer group's offsets. See [`crate::state`] for why this makes
//! stores exact across crashes.

pub(crate) mod collector;
pub(crate) mod connectivity;
pub(crate) mod context;
pub(crate) mod global;
pub(crate) mod manager;
pub(crate) mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::backend::StreamThreads;
use crate::config::{StreamsConfig, ThreadFailurePolicy};
use crate::error::Error;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::serde::blocking::HandleBlocker;
use crate::state::{ReadOnlyKeyValueStore, ReadOnlyWindowStore, StoreRegistry};
use crate::topology::{Topology, TopologyDescription};
use context::AppEnv;

/// Whether a [`Streams`] application reaches its brokers, as its stream threads' clients last
/// saw it (librdkafka's statistics, every second, and its all-brokers-down error). Each
/// thread's consumer and producer report; the producer reports from its own thread, so an
/// outage shows within seconds even while a stream thread is busy (a long commit, a flush
/// waiting for the broker, a slow closure). Unreachable means: a client sees no broker
/// connection up, and no other client has seen one up in the last 2.5 s. On the local
/// backend it is always [`BrokerConnectivity::Connected`].
///
/// Nothing fails while the brokers are away: librdkafka reconnects by itself, and the
/// application carries on where it was. This is for health checks and dashboards.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerConnectivity {
    /// At least one broker connection is up (or none was ever seen down).
    Connected,
    /// No broker connection is up.
    Unreachable {
        /// Since when, in milliseconds since the epoch.
        since_ms: i64,
        /// librdkafka's last word on it (may name hosts: for logs, not for public pages).
        reason: String,
    },
}

/// Where a [`Streams`] application is in its life.
///
/// New states may be added: match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamsState {
    /// Built, not started.
    Created,
    /// Threads are running.
    Running,
    /// Stopping: draining, committing.
    PendingShutdown,
    /// Stopped cleanly (or aborted).
    NotRunning,
    /// A thread failed; see [`Streams::failure`].
    Error,
}

/// What the stream threads share.
pub(crate) struct Shared {
    pub(crate) topology: Topology,
    pub(crate) config: StreamsConfig,
    pub(crate) env: AppEnv,
    pub(crate) registry: Arc<StoreRegistry>,
    pub(crate) shutdown: AtomicBool,
    pub(crate) abort: AtomicBool,
    pub(crate) paused: AtomicBool,
    state: Mutex<StreamsState>,
    failure: Mutex<Option<String>>,
    failed: Notify,
    connectivity: Mutex<connectivity::Connectivity>,
}

impl Shared {
    /// `client` sees no broker connection up ([`connectivity`] says when that makes the
    /// application unreachable).
    pub(crate) fn brokers_down(&self, client: connectivity::Client, reason: &str) {
        let change = self
            .connectivity
            .lock()
            .down(client, reason, std::time::Instant::now());
        if change == connectivity::Change::Lost {
            tracing::warn!(application = %self.config.application_id, reason, ?client, "the brokers are unreachable");
        }
    }

    /// `client` sees a broker connection up.
    pub(crate) fn brokers_up(&self, client: connectivity::Client) {
        let change = self
            .connectivity
            .lock()
            .up(client, std::time::Instant::now());
        if let connectivity::Change::Regained(after_ms) = change {
            tracing::info!(
                application = %self.config.application_id,
                after_ms,
                "the brokers are reachable again"
            );
        }
    }

    pub(crate) fn fail(&self, error: &Error) {
        tracing::error!(application = %self.config.application_id, error = %error, "stream thread failed");
        let mut failure = self.failure.lock();
        if failure.is_none() {
            *failure = Some(error.to_string());
        }
        *self.state.lock() = StreamsState::Error;
        self.failed.notify_waiters();
        self.failed.notify_one();
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.failure.lock().is_some()
    }

    /// The source topics the application reads that it does not create itself.
    pub(crate) fn external_sources(&self) -> Vec<Arc<str>> {
        let app = &self.config.application_id;
        self.topology
            .subtopologies()
            .iter()
            .flat_map(|s| s.source_topics.iter())
            .filter(|t| !t.is_internal())
            .map(|t| t.resolve(app))
            .collect()
    }
}

/// A running streams application: a topology, its threads and its stores.
///
/// ```no_run
/// use ow_stream_core::config::{Backend, StreamsConfig};
/// use ow_stream_core::runtime::Streams;
/// # async fn run(topology: ow_stream_core::Topology) -> Result<(), ow_stream_core::Error> {
/// let config = StreamsConfig::new("word-count", Backend::kafka("localhost:9092"));
/// let mut streams = Streams::new(topology, config)?;
/// streams.start().await?;
/// tokio::select! {
///     _ = tokio::signal::ctrl_c() => streams.close().await?,
///     error = streams.failed() => return Err(error),
/// }
/// # Ok(())
/// # }
/// ```
///
/// Once started, an application can be shared (`Arc<Streams>`) between the parts of a
/// program that query its stores or watch its state; any of them may [`close`](Streams::close)
/// it through a shared reference.
pub struct Streams {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Held while [`Streams::close`] joins the threads.
    closing: tokio::sync::Mutex<()>,
    /// The backend's stream threads, once started; they hold what the backend needs to run the
    /// application (on the local log, the instance's lease on the directory) until closed.
    runner: Mutex<Option<Arc<dyn StreamThreads>>>,
}

impl Streams {
    /// Prepares an application; nothing connects until [`Streams::start`].
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Streams, Error> {
        config.validate()?;
        let registry = Arc::new(StoreRegistry::default());
        for def in topology.stores() {
            registry.declare(def);
        }
        let blocker =
            HandleBlocker(
                tokio::runtime::Handle::try_current().map_err(|_| Error::Config {
                    field: "runtime",
                    reason: "Streams must be created inside a tokio runtime".into(),
                })?,
            );
        let env = AppEnv {
            application_id: config.application_id.clone().into(),
            dead_letter_topic: config.dead_letter_topic().into(),
            deserialization_errors: config.deserialization_errors,
            processing_errors: config.processing_errors,
            registry_wait: config.schema_registry_wait,
            blocker: Box::new(blocker),
            metrics: Arc::new(Metrics::new(&config.application_id)),
            globals: Default::default(),
        };
        Ok(Streams {
            shared: Arc::new(Shared {
                topology,
                config,
                env,
                registry,
                shutdown: AtomicBool::new(false),
                abort: AtomicBool::new(false),
                paused: AtomicBool::new(false),
                state: Mutex::new(StreamsState::Created),
                failure: Mutex::new(None),
                failed: Notify::new(),
                connectivity: Mutex::new(connectivity::Connectivity::default()),
            }),
            threads: Mutex::new(Vec::new()),
            closing: tokio::sync::Mutex::new(()),
            runner: Mutex::new(None),
        })
    }

    /// Output topics the topology writes that it does not create itself.
    fn external_sinks(&self) -> Vec<Arc<str>> {
        let app = &self.shared.config.application_id;
        let mut out: Vec<Arc<str>> = self
            .shared
            .topology
            .subtopologies()
            .iter()
            .flat_map(|s| s.sink_topics.iter())
            .filter(|t| !t.is_internal())
            .map(|t| t.resolve(app))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Checks and creates the topics the application needs, then starts the stream threads.
    /// Source topics must exist; internal topics (repartition, changelog, dead-letter) are
    /// created when missing.
    pub async fn start(&mut self) -> Result<(), Error> {
        if *self.shared.state.lock() != StreamsState::Created {
            return Err(Error::Closed {
                reason: "start() may be called once".into(),
            });
        }
        let sinks = self.external_sinks();
        let runner = crate::backend::connect(&self.shared.config)?
            .prepare_streams(&self.shared, &sinks)
            .await?;
        *self.runner.get_mut() = Some(runner.clone());
        // Global stores are bootstrapped before any stream thread processes a record.
        if let Some(global) = global::start(&self.shared).await? {
            self.threads.get_mut().push(global);
        }
        *self.shared.state.lock() = StreamsState::Running;
        for index in 0..self.shared.config.num_stream_threads {
            let shared = self.shared.clone();
            let name = thread_name(&self.shared.config.application_id, index);
            let runner = runner.clone();
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || run_thread(&shared, &*runner, index))
                .map_err(|e| Error::io("stream thread", e))?;
            self.threads.get_mut().push(handle);
        }
        Ok(())
    }

    /// Stops cleanly: every thread finishes its batch, commits, and leaves the group. Returns
    /// the first failure of a stream thread, if one failed.
    ///
    /// Takes `&self`, so a shared application (`Arc<Streams>`) is closed by whoever holds it;
    /// calling it again, or from several places at once, waits until the threads are stopped
    /// and reports the same outcome. An application never started just becomes
    /// [`NotRunning`](StreamsState::NotRunning).
    pub async fn close(&self) -> Result<(), Error> {
        // Concurrent calls wait for the first to finish joining the threads.
        let _closing = self.closing.lock().await;
        *self.shared.state.lock() = StreamsState::PendingShutdown;
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let threads = std::mem::take(&mut *self.threads.lock());
        tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await
        .map_err(|e| Error::Closed {
            reason: format!("joining stream threads: {e}"),
        })?;
        let failure = self.shared.failure.lock().clone();
        *self.shared.state.lock() = StreamsState::NotRunning;
        self.runner.lock().take();
        match failure {
            Some(reason) => Err(Error::Closed { reason }),
            None => Ok(()),
        }
    }

    /// Stops at once, as a crash would: no commit, no flush. Records processed since the last
    /// commit are processed again by whoever takes the partitions over; stores stay exact.
    pub fn abort(self) {
        self.abort_threads();
    }

    fn abort_threads(&self) {
        self.shared.abort.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut *self.threads.lock()) {
            let _ = t.join();
        }
        *self.shared.state.lock() = StreamsState::NotRunning;
        self.runner.lock().take();
    }

    /// Resolves when a stream thread fails, with its error.
    pub async fn failed(&self) -> Error {
        loop {
            let notified = self.shared.failed.notified();
            if let Some(reason) = self.shared.failure.lock().clone() {
                return Error::Closed { reason };
            }
            notified.await;
        }
    }

    /// The first failure of a stream thread, if any.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().clone()
    }

    /// Whether the application reaches its brokers (see [`BrokerConnectivity`]).
    pub fn broker_connectivity(&self) -> BrokerConnectivity {
        self.shared.connectivity.lock().state().clone()
    }

    /// Where the application is in its life.
    pub fn state(&self) -> StreamsState {
        *self.shared.state.lock()
    }

    /// Stops taking records from the input topics (group membership and stores stay); lag
    /// grows until [`Streams::resume`].
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Takes records again after [`Streams::pause`].
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }

    /// Whether the application is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// A read-only view of a key-value store (the shards this process hosts).
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, Error> {
        ReadOnlyKeyValueStore::new(self.shared.registry.clone(), name)
    }

    /// A read-only view of a window store (the shards this process hosts).
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, Error> {
        ReadOnlyWindowStore::new(self.shared.registry.clone(), name)
    }

    /// The application's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.env.metrics.snapshot()
    }

    /// The application's Prometheus registry: every metric of [`crate::metrics`], for an app
    /// that serves it together with its own (encode both with
    /// [`encode_registry`](crate::metrics::prometheus_client::encoding::text::encode_registry),
    /// then [`encode_eof`](crate::metrics::prometheus_client::encoding::text::encode_eof)).
    pub fn metrics_registry(&self) -> &crate::metrics::prometheus_client::registry::Registry {
        self.shared.env.metrics.registry()
    }

    /// Writes the application's metrics in the OpenMetrics text format, a whole document
    /// for a `/metrics` endpoint served with [`CONTENT_TYPE`](crate::metrics::CONTENT_TYPE)
    /// (the names, labels and Kafka Streams equivalents are in [`crate::metrics`]).
    ///
    /// ```no_run
    /// # fn serve(streams: &ow_stream_core::runtime::Streams) -> Result<(), std::fmt::Error> {
    /// let mut body = String::new();
    /// streams.encode_metrics(&mut body)?;
    /// assert!(body.contains("ow_stream_process_total"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn encode_metrics(&self, out: &mut String) -> Result<(), std::fmt::Error> {
        self.shared.env.metrics.encode(out)
    }

    /// Records received per node, by node name.
    pub fn node_counts(&self) -> BTreeMap<String, u64> {
        self.shared.topology.node_counts()
    }

    /// The topology, with internal topic names resolved for this application.
    pub fn describe(&self) -> TopologyDescription {
        self.shared
            .topology
            .describe_for_application(&self.shared.config.application_id)
    }

    /// The configuration.
    pub fn config(&self) -> &StreamsConfig {
        &self.shared.config
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        if !self.threads.get_mut().is_empty() {
            // Dropped without close(): stop like a crash would, so nothing pretends to be
            // committed that was not.
            self.abort_threads();
        }
    }
}

/// The life of stream thread `index`: runs it, and when it dies applies the application's
/// [`ThreadFailurePolicy`].
fn run_thread(shared: &Arc<Shared>, runner: &dyn StreamThreads, index: usize) {
    let metrics = &shared.env.metrics;
    loop {
        metrics.stream_threads_alive.incr();
        let outcome = catch_panic(
            || "the stream thread".into(),
            || runner.run(shared.clone(), index),
        );
        metrics.stream_threads_alive.decr();
        let Err(error) = outcome else { return };
        if shared.abort.load(Ordering::SeqCst) {
            return;
        }
        metrics.stream_thread_failures.incr();
        let policy = match error {
            // Honoured as asked, whatever this instance's own policy: never replaced, never
            // asked of the others again.
            Error::ShutdownRequested { .. } => ThreadFailurePolicy::ShutdownClient,
            _ => shared.config.thread_failures,
        };
        match policy {
            ThreadFailurePolicy::ReplaceThread
                if !shared.shutdown.load(Ordering::SeqCst) && !shared.has_failed() =>
            {
                tracing::error!(
                    application = %shared.config.application_id, thread = index, error = %error,
                    "stream thread died; replacing it (policy ReplaceThread)"
                );
                std::thread::sleep(shared.config.commit_interval);
                if shared.shutdown.load(Ordering::SeqCst) || shared.abort.load(Ordering::SeqCst) {
                    return;
                }
                metrics.stream_threads_replaced.incr();
            }
            ThreadFailurePolicy::ShutdownApplication => {
                if let Err(e) = runner.request_shutdown(shared, &error) {
                    tracing::error!(error = %e, "could not ask the other instances to shut down");
                }
                shared.fail(&error);
                return;
            }
            _ => {
                shared.fail(&error);
                return;
            }
        }
    }
}

/// Runs `f`, turning a panic into [`Error::Panicked`] at `location` (so a panic in user code
/// ends a stream thread through its error path, which commits nothing).
pub(crate) fn catch_panic<T>(
    location: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic whose payload is not a string".to_string()
            };
            Err(Error::Panicked {
                thread: std::thread::current()
                    .name()
                    .unwrap_or("unnamed")
                    .to_string(),
                location: location(),
                message,
            })
        }
    }
}

/// An internal topic (changelog, repartition or dead-letter topic) with the backend's default
/// retention.
pub(crate) fn internal_spec(name: &str, partitions: i32, compact: bool) -> crate::admin::TopicSpec {
    let spec = crate::admin::TopicSpec::new(name, partitions);
    if compact { spec.compacted() } else { spec }
}

/// Partition counts the application's internal topics need, from the source topics' counts.
pub(crate) fn internal_partitions(
    topology: &Topology,
    config: &StreamsConfig,
    source_counts: &HashMap<Arc<str>, i32>,
) -> Result<Vec<(Arc<str>, i32, bool)>, Error> {
    let app = &config.application_id;
    let mut counts: HashMap<Arc<str>, i32> = source_counts.clone();
    let mut out = Vec::new();
    let fixed = topology.fixed_partitions();
    // Sub-topologies are numbered so that writers of a repartition topic come before its
    // readers: one pass resolves them in order.
    for sub in topology.subtopologies() {
        let mut own = 0;
        for t in &sub.source_topics {
            let name = t.resolve(app);
            match counts.get(&name) {
                Some(c) => own = own.max(*c),
                None if t.is_internal() => {}
                None => {
                    return Err(Error::Config {
                        field: "topics",
                        reason: format!("source topic {name} does not exist"),
                    });
                }
            }
        }
        for t in &sub.sink_topics {
            if t.is_internal() {
                let name = t.resolve(app);
                // Co-partitioned with the user topics its reader joins it with (a table's
                // topic, after a key change before a join), else as wide as its writer.
                let joined = topology
                    .subtopologies()
                    .iter()
                    .filter(|r| r.source_topics.contains(t))
                    .flat_map(|r| r.source_topics.iter())
                    .filter(|r| !r.is_internal())
                    .filter_map(|r| source_counts.get(&r.resolve(app)).copied())
                    .max();
                let c = match fixed.get(t) {
                    Some(c) => *c,
                    None => config
                        .internal_topic_partitions
                        .unwrap_or(joined.unwrap_or(own).max(1)),
                };
                counts.entry(name.clone()).or_insert(c);
                out.push((name, c, false));
            }
        }
    }
    // A fixed count is the user's choice, not derived from what the topic is joined with:
    // every other topic its reader reads must have that count too.
    for sub in topology.subtopologies() {
        for t in sub.source_topics.iter().filter(|t| fixed.contains_key(*t)) {
            let expected = fixed.get(t).copied().unwrap_or(1);
            for other in &sub.source_topics {
                let name = other.resolve(app);
                match counts.get(&name) {
                    Some(&actual) if actual != expected => {
                        return Err(Error::NotCopartitioned {
                            subtopology: sub.id,
                            repartition_topic: t.resolve(app).to_string(),
                            expected,
                            topic: name.to_string(),
                            actual,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    // The two inputs of a stream–stream join must have the same count, or the records of a
    // key would not meet in one task.
    for (sub, topics) in topology.copartition_groups() {
        let mut first: Option<(Arc<str>, i32)> = None;
        for t in &topics {
            let name = t.resolve(app);
            let Some(&actual) = counts.get(&name) else {
                continue;
            };
            match &first {
                None => first = Some((name, actual)),
                Some((f, expected)) if *expected != actual => {
                    return Err(Error::NotCopartitioned {
                        subtopology: sub,
                        repartition_topic: f.to_string(),
                        expected: *expected,
                        topic: name.to_string(),
                        actual,
                    });
                }
                Some(_) => {}
            }
        }
    }
    let mut sub_counts: HashMap<u32, i32> = HashMap::new();
    for sub in topology.subtopologies() {
        let own = sub
            .source_topics
            .iter()
            .filter_map(|t| counts.get(&t.resolve(app)).copied())
            .max()
            .unwrap_or(1);
        sub_counts.insert(sub.id, own);
    }
    for (name, sub, is_changelog) in topology.internal_topics(app) {
        if is_changelog {
            out.push((name, sub_counts.get(&sub).copied().unwrap_or(1), true));
        }
    }
    out.push((config.dead_letter_topic().into(), 1, false));
    if config.thread_failures == ThreadFailurePolicy::ShutdownApplication {
        out.push((config.shutdown_topic().into(), 1, false));
    }
    Ok(out)
}

/// The name of stream thread `index` (its OS thread's, its consumer's `client.id`, and its
/// metrics' `thread_id`).
pub(crate) fn thread_name(application_id: &str, index: usize) -> String {
    format!("{application_id}-stream-{index}")
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
