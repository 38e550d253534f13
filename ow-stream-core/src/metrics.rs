//! Counters an application keeps about itself, for dashboards and Prometheus.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Application-wide counters (per-node counts live in the topology description).
#[derive(Debug, Default)]
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
    /// Records that arrived after their window's grace period and were not aggregated.
    pub late_records_dropped: Counter,
    /// Repartitioned records dropped because they were copies of records already processed.
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
    /// their key (logged at `debug` with the record's key bytes and provenance).
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
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Adds one.
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one away (never below zero).
    pub fn decr(&self) {
        self.sub(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes `n` away (never below zero).
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
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

impl MetricsSnapshot {
    /// The counters in the Prometheus text exposition format, as
    /// `ow_stream_<name>_total{application="<id>"}`.
    pub fn to_prometheus(&self, application_id: &str) -> String {
        let mut out = String::new();
        let app = application_id.replace('\\', "\\\\").replace('"', "\\\"");
        for (name, help, value) in [
            (
                "records_consumed",
                "Input records taken from topics.",
                self.records_consumed,
            ),
            (
                "records_produced",
                "Records written to topics.",
                self.records_produced,
            ),
            (
                "deserialization_errors",
                "Records that could not be decoded.",
                self.deserialization_errors,
            ),
            (
                "processing_errors",
                "Records a processor failed on.",
                self.processing_errors,
            ),
            (
                "dead_letters",
                "Records written to the dead-letter topic.",
                self.dead_letters,
            ),
            (
                "late_records_dropped",
                "Records after their window's grace period.",
                self.late_records_dropped,
            ),
            (
                "duplicates_dropped",
                "Repartitioned copies already processed.",
                self.duplicates_dropped,
            ),
            ("commits", "Commits completed.", self.commits),
            (
                "transactions_aborted",
                "Transactions aborted after a failed step.",
                self.transactions_aborted,
            ),
            (
                "records_restored",
                "Changelog records replayed into stores.",
                self.records_restored,
            ),
            (
                "stream_thread_failures",
                "Stream threads that died.",
                self.stream_thread_failures,
            ),
            (
                "stream_threads_replaced",
                "Stream threads started in place of dead ones.",
                self.stream_threads_replaced,
            ),
            (
                "join_misses",
                "Stream records an inner stream-table join dropped for want of a table row.",
                self.join_misses,
            ),
            (
                "enforced_processing",
                "Records processed before every input partition of their task had data.",
                self.enforced_processing,
            ),
            (
                "suppress_emitted",
                "Results suppressions emitted when due.",
                self.suppress_emitted,
            ),
            (
                "suppress_emitted_early",
                "Updates full suppression buffers emitted before they were due.",
                self.suppress_emitted_early,
            ),
        ] {
            let _ = writeln!(out, "# HELP ow_stream_{name}_total {help}");
            let _ = writeln!(out, "# TYPE ow_stream_{name}_total counter");
            let _ = writeln!(
                out,
                "ow_stream_{name}_total{{application=\"{app}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ow_stream_stream_threads_alive Stream threads running now."
        );
        let _ = writeln!(out, "# TYPE ow_stream_stream_threads_alive gauge");
        let _ = writeln!(
            out,
            "ow_stream_stream_threads_alive{{application=\"{app}\"}} {}",
            self.stream_threads_alive
        );
        let _ = writeln!(
            out,
            "# HELP ow_stream_suppress_buffered Entries held in suppression buffers now."
        );
        let _ = writeln!(out, "# TYPE ow_stream_suppress_buffered gauge");
        let _ = writeln!(
            out,
            "ow_stream_suppress_buffered{{application=\"{app}\"}} {}",
            self.suppress_buffered
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let m = Metrics::default();
        m.records_consumed.add(3);
        m.dead_letters.incr();
        let text = m.snapshot().to_prometheus("app\"x");
        assert!(text.contains("ow_stream_records_consumed_total{application=\"app\\\"x\"} 3\n"));
        assert!(text.contains("ow_stream_dead_letters_total{application=\"app\\\"x\"} 1\n"));
        assert!(text.contains("# TYPE ow_stream_commits_total counter\n"));
    }
}
