//! What an application counts about itself, as Prometheus metrics with Kafka Streams' names.
//!
//! Every [`Streams`](crate::runtime::Streams) instance owns one
//! [`prometheus_client`] [`Registry`]: no global recorder, so several applications in one
//! process (and tests running in parallel) never share a counter. An app serves it on its
//! `/metrics` with [`Streams::encode_metrics`](crate::runtime::Streams::encode_metrics) (a whole
//! OpenMetrics document), or adds it to its own registry's output with
//! [`Streams::metrics_registry`](crate::runtime::Streams::metrics_registry) and
//! [`encode_registry`](prometheus_client::encoding::text::encode_registry).
//!
//! [`Metrics`] keeps the application-wide counters as plain fields, readable at any time with
//! [`Metrics::snapshot`] (and [`Streams::metrics`](crate::runtime::Streams::metrics)); each of
//! them is also an instrument of the registry. Counting stays an atomic add on the hot path:
//! the labelled children (a thread's, a task's, a store's) are looked up once, when the
//! thread, task or store is created, and kept.
//!
//! # The metrics
//! Names carry the prefix `ow_stream_` and the label `application_id` (the
//! [`StreamsConfig::application_id`](crate::config::StreamsConfig::application_id)); counters
//! end in `_total`. Kafka Streams reports rates, averages and maxima over a window; Prometheus
//! takes counters and histograms and leaves the arithmetic to PromQL, so a Kafka Streams
//! `x-rate` is `rate(ow_stream_x_total[1m])` here, `x-avg` is
//! `rate(..._sum[1m]) / rate(..._count[1m])` of a histogram, and `x-max` is approximated by
//! `histogram_quantile(1, ...)` (no exact maximum is kept).
//!
//! | Metric | Type | Labels | Kafka Streams |
//! |---|---|---|---|
//! | `ow_stream_process_total` | counter | `thread_id` | thread `process-total` / `process-rate` |
//! | `ow_stream_process_latency_seconds` | histogram | `thread_id` | thread `process-latency-avg` / `-max` |
//! | `ow_stream_task_process_total` | counter | `thread_id`, `task_id` | task `process-total` / `process-rate` |
//! | `ow_stream_commit_total` | counter | | thread `commit-total` / `commit-rate` |
//! | `ow_stream_commit_latency_seconds` | histogram | `thread_id` | thread `commit-latency-avg` / `-max` |
//! | `ow_stream_records_consumed_total` | counter | | consumer `records-consumed-total` ([`Metrics::records_consumed`]) |
//! | `ow_stream_records_produced_total` | counter | | producer `record-send-total` ([`Metrics::records_produced`]) |
//! | `ow_stream_records_lag` | gauge | `thread_id`, `topic`, `partition` | consumer `records-lag` |
//! | `ow_stream_dropped_records_total` | counter | `reason` | task `dropped-records-total` |
//! | `ow_stream_store_put_total` | counter | `thread_id`, `task_id`, `store_name` | state `put-total` / `put-rate` |
//! | `ow_stream_store_get_total` | counter | `thread_id`, `task_id`, `store_name` | state `get-total` / `get-rate` |
//! | `ow_stream_store_delete_total` | counter | `thread_id`, `task_id`, `store_name` | state `delete-total` / `delete-rate` |
//! | `ow_stream_store_range_total` | counter | `thread_id`, `task_id`, `store_name` | state `range-total` / `range-rate` |
//! | `ow_stream_deserialization_errors_total` | counter | | — ([`Metrics::deserialization_errors`]) |
//! | `ow_stream_processing_errors_total` | counter | | — ([`Metrics::processing_errors`]) |
//! | `ow_stream_dead_letters_total` | counter | | — ([`Metrics::dead_letters`]) |
//! | `ow_stream_transactions_aborted_total` | counter | | — ([`Metrics::transactions_aborted`]) |
//! | `ow_stream_records_restored_total` | counter | | state `restore-total` ([`Metrics::records_restored`]) |
//! | `ow_stream_stream_thread_failures_total` | counter | | — ([`Metrics::stream_thread_failures`]) |
//! | `ow_stream_stream_threads_replaced_total` | counter | | — ([`Metrics::stream_threads_replaced`]) |
//! | `ow_stream_stream_threads_alive` | gauge | | client `alive-stream-threads` |
//! | `ow_stream_enforced_processing_total` | counter | | task `enforced-processing-total` |
//! | `ow_stream_suppress_emitted_total` | counter | | — ([`Metrics::suppress_emitted`]) |
//! | `ow_stream_suppress_emitted_early_total` | counter | | — ([`Metrics::suppress_emitted_early`]) |
//! | `ow_stream_suppress_buffered` | gauge | | suppression `suppression-buffer-count` (summed) |
//!
//! `reason` of `ow_stream_dropped_records_total` is one of `late` (after a window's grace
//! period, [`Metrics::late_records_dropped`]), `join_miss` (an inner stream–table join with
//! no table row, [`Metrics::join_misses`]), `duplicate` (a repartitioned copy already
//! processed, [`Metrics::duplicates_dropped`]), `deserialization_error` and
//! `processing_error` (records skipped by [`OnError::LogAndSkip`](crate::config::OnError)).
//! Kafka Streams counts dropped records per task; here they are counted per application.
//!
//! `ow_stream_records_lag` is the records of a partition beyond the thread's fetch position:
//! from librdkafka's consumer statistics on Kafka (every `statistics.interval.ms`, a second
//! by default), from the log's end offset on the local backend (at every commit).
//!
//! The `store_*` counters count what processors ask of a store (through its record cache,
//! as Kafka Streams' metered store layer does); restores and cache flushes are not puts.
//!
//! # Adding a counter
//! Add a [`Counter`] field to [`Metrics`], a line to the `counters!` list in this module
//! (field, exported name, help) and, if it should be in the snapshot, a field to
//! [`MetricsSnapshot`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
pub use prometheus_client;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;

/// The `Content-Type` of what [`Streams::encode_metrics`](crate::runtime::Streams::encode_metrics)
/// writes (the OpenMetrics text format, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A monotonically increasing counter (an instrument of the application's registry, or a
/// detached one).
#[derive(Clone, Debug, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.0.inc();
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down, never below zero.
#[derive(Clone, Debug, Default)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<u64, AtomicU64>);

impl Gauge {
    /// Adds one.
    pub fn incr(&self) {
        self.0.inc();
    }

    /// Takes one away (never below zero).
    pub fn decr(&self) {
        self.sub(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// Takes `n` away (never below zero).
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .inner()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Upper bounds of the latency histograms' buckets, in seconds (10 µs to 10 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
    10.0,
];

/// A latency histogram that records with atomic adds only (the crate's own histogram takes a
/// lock per observation, too much for every record).
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram(Arc<HistogramCells>);

#[derive(Debug, Default)]
struct HistogramCells {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    /// The sum of the observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        let cells = &self.0;
        cells.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        cells.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        cells.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let cells = &self.0;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(cells.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' sum, so that the `+Inf` bucket always equals it.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = cells.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabels {
    thread_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    thread_id: String,
    task_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    thread_id: String,
    task_id: String,
    store_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    thread_id: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

type CounterFamily<L> = Family<L, prometheus_client::metrics::counter::Counter>;

/// The labelled instruments: one child per thread, task, store or partition.
#[derive(Debug, Default)]
struct Families {
    process: CounterFamily<ThreadLabels>,
    process_latency: Family<ThreadLabels, Histogram>,
    commit_latency: Family<ThreadLabels, Histogram>,
    task_process: CounterFamily<TaskLabels>,
    store_put: CounterFamily<StoreLabels>,
    store_get: CounterFamily<StoreLabels>,
    store_delete: CounterFamily<StoreLabels>,
    store_range: CounterFamily<StoreLabels>,
    records_lag: Family<PartitionLabels, prometheus_client::metrics::gauge::Gauge>,
    dropped: CounterFamily<ReasonLabels>,
}

/// Application-wide counters, each also an instrument of the application's Prometheus
/// registry (see the [module docs](self) for the exported names); per-node counts live in the
/// topology description.
#[derive(Debug)]
#[non_exhaustive]
pub struct Metrics {
    /// Input records taken from topics.
    pub records_consumed: Counter,
    /// Records written to topics (outputs, repartition and changelog records, dead letters).
    pub records_produced: Counter,
    /// Records that could not be decoded.
    pub deserialization_errors: Counter,
    /// Records a processor failed on.
    pub processing_errors: Counter,
    /// Records written to the dead-letter topic.
    pub dead_letters: Counter,
    /// Records that arrived after their window's grace period and were not aggregated
    /// (`ow_stream_dropped_records_total{reason="late"}`).
    pub late_records_dropped: Counter,
    /// Repartitioned records dropped because they were copies of records already processed
    /// (`ow_stream_dropped_records_total{reason="duplicate"}`).
    pub duplicates_dropped: Counter,
    /// Commits completed.
    pub commits: Counter,
    /// Transactions a stream thread aborted after a failed step (exactly-once on Kafka); each
    /// time its tasks started again from the last commit.
    pub transactions_aborted: Counter,
    /// Changelog records replayed into stores.
    pub records_restored: Counter,
    /// Stream threads that died (a panic in user code, or an error they could not go on
    /// from); what followed is the [`ThreadFailurePolicy`](crate::config::ThreadFailurePolicy).
    pub stream_thread_failures: Counter,
    /// Stream threads started in place of dead ones
    /// ([`ThreadFailurePolicy::ReplaceThread`](crate::config::ThreadFailurePolicy::ReplaceThread)).
    pub stream_threads_replaced: Counter,
    /// Stream threads running now.
    pub stream_threads_alive: Gauge,
    /// Stream records an inner stream–table join dropped because the table had no row for
    /// their key (logged at `debug` with the record's key bytes and provenance;
    /// `ow_stream_dropped_records_total{reason="join_miss"}`).
    pub join_misses: Counter,
    /// Records a task with several input partitions processed before all of them had data,
    /// because it had waited as long as it may (see
    /// [`StreamsConfig::max_task_idle`](crate::config::StreamsConfig::max_task_idle)).
    pub enforced_processing: Counter,
    /// Results a suppression emitted when they were due: final results of closed windows
    /// ([`Suppressed::until_window_closes`](crate::dsl::Suppressed::until_window_closes)), or
    /// updates held for their time limit.
    pub suppress_emitted: Counter,
    /// Updates a full suppression buffer emitted before they were due
    /// ([`BufferConfig::emit_early_when_full`](crate::dsl::BufferConfig::emit_early_when_full)).
    pub suppress_emitted_early: Counter,
    /// Entries the suppression buffers of this instance's tasks hold now.
    pub suppress_buffered: Gauge,
    /// Undecodable records skipped (`dropped_records_total{reason="deserialization_error"}`).
    pub(crate) skipped_undecodable: Counter,
    /// Records skipped after a processor failed on them
    /// (`dropped_records_total{reason="processing_error"}`).
    pub(crate) skipped_failed: Counter,
    families: Arc<Families>,
    registry: Registry,
}

/// The plain counters: field, exported name (the registry adds `_total`), help.
macro_rules! counters {
    ($m:ident, $registry:ident) => {
        for (name, help, counter) in [
            ("records_consumed", "Input records taken from topics", &$m.records_consumed),
            ("records_produced", "Records written to topics (outputs, repartition and changelog records, dead letters)", &$m.records_produced),
            ("deserialization_errors", "Records that could not be decoded", &$m.deserialization_errors),
            ("processing_errors", "Records a processor failed on", &$m.processing_errors),
            ("dead_letters", "Records written to the dead-letter topic", &$m.dead_letters),
            ("commit", "Commits completed (Kafka Streams commit-total)", &$m.commits),
            ("transactions_aborted", "Transactions aborted after a failed step", &$m.transactions_aborted),
            ("records_restored", "Changelog records replayed into stores", &$m.records_restored),
            ("stream_thread_failures", "Stream threads that died", &$m.stream_thread_failures),
            ("stream_threads_replaced", "Stream threads started in place of dead ones", &$m.stream_threads_replaced),
            ("enforced_processing", "Records processed before every input partition of their task had data", &$m.enforced_processing),
            ("suppress_emitted", "Results suppressions emitted when due", &$m.suppress_emitted),
            ("suppress_emitted_early", "Updates full suppression buffers emitted before they were due", &$m.suppress_emitted_early),
        ] {
            $registry.register(name, help, counter.0.clone());
        }
        for (name, help, gauge) in [
            ("stream_threads_alive", "Stream threads running now", &$m.stream_threads_alive),
            ("suppress_buffered", "Entries held in suppression buffers now", &$m.suppress_buffered),
        ] {
            $registry.register(name, help, gauge.0.clone());
        }
    };
}

impl Default for Metrics {
    /// Counters in a registry with no `application_id` label (the test driver's).
    fn default() -> Self {
        Metrics::build(Registry::with_prefix("ow_stream"))
    }
}

impl Metrics {
    /// Counters for application `application_id`, in a registry of their own whose metrics
    /// all carry the label `application_id`.
    pub fn new(application_id: &str) -> Metrics {
        let labels = [(
            Cow::Borrowed("application_id"),
            Cow::Owned(application_id.to_owned()),
        )];
        Metrics::build(Registry::with_prefix_and_labels(
            "ow_stream",
            labels.into_iter(),
        ))
    }

    fn build(mut registry: Registry) -> Metrics {
        let families = Arc::new(Families::default());
        let dropped = |reason| {
            Counter(
                families
                    .dropped
                    .get_or_create_owned(&ReasonLabels { reason }),
            )
        };
        let m = Metrics {
            records_consumed: Counter::default(),
            records_produced: Counter::default(),
            deserialization_errors: Counter::default(),
            processing_errors: Counter::default(),
            dead_letters: Counter::default(),
            late_records_dropped: dropped("late"),
            duplicates_dropped: dropped("duplicate"),
            commits: Counter::default(),
            transactions_aborted: Counter::default(),
            records_restored: Counter::default(),
            stream_thread_failures: Counter::default(),
            stream_threads_replaced: Counter::default(),
            stream_threads_alive: Gauge::default(),
            join_misses: dropped("join_miss"),
            enforced_processing: Counter::default(),
            suppress_emitted: Counter::default(),
            suppress_emitted_early: Counter::default(),
            suppress_buffered: Gauge::default(),
            skipped_undecodable: dropped("deserialization_error"),
            skipped_failed: dropped("processing_error"),
            families: families.clone(),
            registry: Registry::default(),
        };
        counters!(m, registry);
        let f = &families;
        registry.register(
            "process",
            "Records processed, by stream thread (Kafka Streams thread process-total)",
            f.process.clone(),
        );
        registry.register_with_unit(
            "process_latency",
            "Time to process one record, by stream thread (Kafka Streams thread process-latency-avg/-max)",
            Unit::Seconds,
            f.process_latency.clone(),
        );
        registry.register_with_unit(
            "commit_latency",
            "Time to commit all the tasks of a stream thread (Kafka Streams thread commit-latency-avg/-max)",
            Unit::Seconds,
            f.commit_latency.clone(),
        );
        registry.register(
            "task_process",
            "Records processed, by task (Kafka Streams task process-total)",
            f.task_process.clone(),
        );
        registry.register(
            "store_put",
            "Puts to a state store, by task and store (Kafka Streams state put-total)",
            f.store_put.clone(),
        );
        registry.register(
            "store_get",
            "Gets from a state store, by task and store (Kafka Streams state get-total)",
            f.store_get.clone(),
        );
        registry.register(
            "store_delete",
            "Deletes from a state store, by task and store (Kafka Streams state delete-total)",
            f.store_delete.clone(),
        );
        registry.register(
            "store_range",
            "Range scans of a state store, by task and store (Kafka Streams state range-total)",
            f.store_range.clone(),
        );
        registry.register(
            "records_lag",
            "Records of a partition beyond the thread's fetch position (Kafka consumer records-lag)",
            f.records_lag.clone(),
        );
        registry.register(
            "dropped_records",
            "Records dropped, by reason (Kafka Streams dropped-records-total)",
            f.dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus registry holding every instrument of the application.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Writes every metric in the OpenMetrics text format (ending in `# EOF`), for a
    /// `/metrics` endpoint served with [`CONTENT_TYPE`].
    pub fn encode(&self, out: &mut String) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::text::encode(out, &self.registry)
    }

    /// The instruments of stream thread `thread_id`.
    pub(crate) fn thread(self: &Arc<Self>, thread_id: &str) -> ThreadMetrics {
        let labels = ThreadLabels {
            thread_id: thread_id.to_owned(),
        };
        let f = &self.families;
        ThreadMetrics {
            thread_id: thread_id.into(),
            process: Counter(f.process.get_or_create_owned(&labels)),
            process_latency: f.process_latency.get_or_create_owned(&labels),
            commit_latency: f.commit_latency.get_or_create_owned(&labels),
            families: f.clone(),
        }
    }
}

/// The instruments of one stream thread, and where it finds those of its tasks.
#[derive(Clone, Debug)]
pub(crate) struct ThreadMetrics {
    thread_id: Arc<str>,
    pub(crate) process: Counter,
    pub(crate) process_latency: Histogram,
    pub(crate) commit_latency: Histogram,
    families: Arc<Families>,
}

impl ThreadMetrics {
    /// The instruments of task `task_id` on this thread.
    pub(crate) fn task(&self, task_id: &str) -> TaskMetrics {
        let labels = TaskLabels {
            thread_id: self.thread_id.to_string(),
            task_id: task_id.to_owned(),
        };
        TaskMetrics {
            thread: self.clone(),
            task_id: task_id.into(),
            process: Counter(self.families.task_process.get_or_create_owned(&labels)),
        }
    }

    /// A lag gauge per partition this thread reads, created on first use.
    pub(crate) fn lag_gauges(&self) -> LagGauges {
        LagGauges {
            thread_id: self.thread_id.clone(),
            families: self.families.clone(),
            gauges: Mutex::new(HashMap::new()),
        }
    }
}

/// The instruments of one task.
#[derive(Clone, Debug)]
pub(crate) struct TaskMetrics {
    pub(crate) thread: ThreadMetrics,
    task_id: Arc<str>,
    pub(crate) process: Counter,
}

impl TaskMetrics {
    /// The instruments of store `store_name` of this task.
    pub(crate) fn store(&self, store_name: &str) -> StoreMetrics {
        let labels = StoreLabels {
            thread_id: self.thread.thread_id.to_string(),
            task_id: self.task_id.to_string(),
            store_name: store_name.to_owned(),
        };
        let f = &self.thread.families;
        StoreMetrics {
            put: Counter(f.store_put.get_or_create_owned(&labels)),
            get: Counter(f.store_get.get_or_create_owned(&labels)),
            delete: Counter(f.store_delete.get_or_create_owned(&labels)),
            range: Counter(f.store_range.get_or_create_owned(&labels)),
        }
    }
}

/// The instruments of one store of one task.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreMetrics {
    pub(crate) put: Counter,
    pub(crate) get: Counter,
    pub(crate) delete: Counter,
    pub(crate) range: Counter,
}

/// The `records_lag` gauges of one stream thread's partitions.
#[derive(Debug)]
pub(crate) struct LagGauges {
    thread_id: Arc<str>,
    families: Arc<Families>,
    gauges: Mutex<HashMap<(String, i32), prometheus_client::metrics::gauge::Gauge>>,
}

impl LagGauges {
    /// Sets the lag of `topic`/`partition` (creating its gauge the first time).
    pub(crate) fn set(&self, topic: &str, partition: i32, lag: i64) {
        let mut gauges = self.gauges.lock();
        let gauge = gauges
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| {
                self.families
                    .records_lag
                    .get_or_create_owned(&PartitionLabels {
                        thread_id: self.thread_id.to_string(),
                        topic: topic.to_string(),
                        partition,
                    })
            });
        gauge.set(lag.max(0));
    }

    /// Withdraws the gauges of the partitions `keep` does not accept (they moved elsewhere).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&str, i32) -> bool) {
        self.gauges.lock().retain(|(topic, partition), _| {
            let kept = keep(topic, *partition);
            if !kept {
                self.families.records_lag.remove(&PartitionLabels {
                    thread_id: self.thread_id.to_string(),
                    topic: topic.to_string(),
                    partition: *partition,
                });
            }
            kept
        });
    }
}

/// A copy of [`Metrics`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// See [`Metrics::records_consumed`].
    pub records_consumed: u64,
    /// See [`Metrics::records_produced`].
    pub records_produced: u64,
    /// See [`Metrics::deserialization_errors`].
    pub deserialization_errors: u64,
    /// See [`Metrics::processing_errors`].
    pub processing_errors: u64,
    /// See [`Metrics::dead_letters`].
    pub dead_letters: u64,
    /// See [`Metrics::late_records_dropped`].
    pub late_records_dropped: u64,
    /// See [`Metrics::duplicates_dropped`].
    pub duplicates_dropped: u64,
    /// See [`Metrics::commits`].
    pub commits: u64,
    /// See [`Metrics::transactions_aborted`].
    pub transactions_aborted: u64,
    /// See [`Metrics::records_restored`].
    pub records_restored: u64,
    /// See [`Metrics::stream_thread_failures`].
    pub stream_thread_failures: u64,
    /// See [`Metrics::stream_threads_replaced`].
    pub stream_threads_replaced: u64,
    /// See [`Metrics::stream_threads_alive`].
    pub stream_threads_alive: u64,
    /// See [`Metrics::join_misses`].
    pub join_misses: u64,
    /// See [`Metrics::enforced_processing`].
    pub enforced_processing: u64,
    /// See [`Metrics::suppress_emitted`].
    pub suppress_emitted: u64,
    /// See [`Metrics::suppress_emitted_early`].
    pub suppress_emitted_early: u64,
    /// See [`Metrics::suppress_buffered`].
    pub suppress_buffered: u64,
}

impl Metrics {
    /// Copies every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            records_consumed: self.records_consumed.get(),
            records_produced: self.records_produced.get(),
            deserialization_errors: self.deserialization_errors.get(),
            processing_errors: self.processing_errors.get(),
            dead_letters: self.dead_letters.get(),
            late_records_dropped: self.late_records_dropped.get(),
            duplicates_dropped: self.duplicates_dropped.get(),
            commits: self.commits.get(),
            transactions_aborted: self.transactions_aborted.get(),
            records_restored: self.records_restored.get(),
            stream_thread_failures: self.stream_thread_failures.get(),
            stream_threads_replaced: self.stream_threads_replaced.get(),
            stream_threads_alive: self.stream_threads_alive.get(),
            join_misses: self.join_misses.get(),
            enforced_processing: self.enforced_processing.get(),
            suppress_emitted: self.suppress_emitted.get(),
            suppress_emitted_early: self.suppress_emitted_early.get(),
            suppress_buffered: self.suppress_buffered.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of an encoded registry, by name and labels.
    fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).unwrap().samples
    }

    fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        let s = samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn counters_are_registered_under_kafka_streams_names() {
        let m = Arc::new(Metrics::new("app\"x"));
        m.records_consumed.add(3);
        m.dead_letters.incr();
        m.late_records_dropped.add(2);
        m.stream_threads_alive.incr();
        m.stream_threads_alive.sub(5);
        let thread = m.thread("app-stream-0");
        let task = thread.task("0_1");
        let store = task.store("counts");
        task.process.incr();
        store.put.add(4);
        thread.process_latency.observe(Duration::from_micros(30));
        thread.lag_gauges().set("in", 1, 7);
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        let s = samples(&text);
        let app = ("application_id", "app\\\"x");
        assert_eq!(value(&s, "ow_stream_records_consumed_total", &[]), 3.0);
        assert_eq!(value(&s, "ow_stream_dead_letters_total", &[]), 1.0);
        assert_eq!(
            value(&s, "ow_stream_dropped_records_total", &[("reason", "late")]),
            2.0
        );
        assert_eq!(
            value(
                &s,
                "ow_stream_dropped_records_total",
                &[("reason", "join_miss")]
            ),
            0.0
        );
        assert_eq!(value(&s, "ow_stream_stream_threads_alive", &[]), 0.0);
        assert_eq!(
            value(&s, "ow_stream_task_process_total", &[("task_id", "0_1")]),
            1.0
        );
        assert_eq!(
            value(
                &s,
                "ow_stream_store_put_total",
                &[("task_id", "0_1"), ("store_name", "counts")]
            ),
            4.0
        );
        assert_eq!(
            value(
                &s,
                "ow_stream_records_lag",
                &[("topic", "in"), ("partition", "1")]
            ),
            7.0
        );
        assert!(
            s.iter().all(|x| x.labels.get(app.0).is_some()),
            "every sample carries the application id"
        );
        assert!(text.contains("ow_stream_process_latency_seconds_bucket{"));
        assert_eq!(thread.process_latency.count(), 1);
        assert_eq!(m.snapshot().late_records_dropped, 2);
    }

    #[test]
    fn applications_do_not_share_counters() {
        let a = Metrics::new("a");
        let b = Metrics::new("b");
        a.commits.incr();
        assert_eq!(b.commits.get(), 0);
        let mut text = String::new();
        b.encode(&mut text).unwrap();
        assert_eq!(value(&samples(&text), "ow_stream_commit_total", &[]), 0.0);
    }
}
