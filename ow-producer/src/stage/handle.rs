//! [`ProducerHandle`]: the running stage, seen from outside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ow_stream_core::registry::SchemaRegistry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Control, lock};
use crate::clock::Clock;
use crate::error::ProducerError;
use crate::metrics::{Metrics, ProducerMetrics};
use crate::topics::Topics;
use crate::tracking::{Book, TrackedPlayer};

/// A running producer stage.
///
/// Dropping it without [`ProducerHandle::close`] stops it as a crash would: nothing is lost
/// (requests not committed yet are answered again after a restart).
pub struct ProducerHandle {
    pub(super) control: watch::Sender<Control>,
    pub(super) task: Option<JoinHandle<Result<(), ProducerError>>>,
    pub(super) halted: Arc<AtomicBool>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) book: Arc<Mutex<Book>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) topics: Topics,
    pub(super) registry: SchemaRegistry,
    pub(super) tracker_group: Option<String>,
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle")
            .field("requests", &self.topics.requests.name())
            .field("tracker_group", &self.tracker_group)
            .field("paused", &self.is_paused())
            .finish_non_exhaustive()
    }
}

impl ProducerHandle {
    /// The counters and gauges now.
    pub fn metrics(&self) -> ProducerMetrics {
        self.metrics.snapshot()
    }

    /// Stops reading requests and refreshing tracked players. Fetches in flight finish and
    /// are committed. On Kafka, a pause longer than the consumer's `max.poll.interval.ms`
    /// (5 minutes by default) makes the consumer leave its group; it rejoins on
    /// [`resume`](Self::resume) and goes on from the committed offsets.
    pub fn pause(&self) {
        self.control.send_modify(|c| c.paused = true);
        self.metrics
            .paused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads requests and refreshes tracked players again.
    pub fn resume(&self) {
        self.control.send_modify(|c| c.paused = false);
        self.metrics
            .paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the stage is paused.
    pub fn is_paused(&self) -> bool {
        self.control.borrow().paused
    }

    /// The players on this instance's schedule (none when it does not schedule), by id.
    pub fn tracked_players(&self) -> Vec<TrackedPlayer> {
        if self.tracker_group.is_none() {
            return Vec::new();
        }
        lock(&self.book).tracked(self.clock.now_ms())
    }

    /// The consumer group of the tracked players' views (`<application id>-tracker-<epoch>`),
    /// when this instance schedules.
    pub fn tracker_group(&self) -> Option<&str> {
        self.tracker_group.as_deref()
    }

    /// The topics the producer reads and writes, typed.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The schema registry the producer's serdes use.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// Whether the stage's task has ended (by itself, after a failure, or after
    /// [`close`](Self::close)): a cheap check for supervisors that poll.
    pub fn has_stopped(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Resolves when the stage stops by itself, with why (a write that failed, the schema
    /// registry out of reach, a state file that cannot be written). Never resolves while the
    /// stage runs.
    pub async fn failed(&mut self) -> ProducerError {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let joined = task.await;
        self.task = None;
        match joined {
            Ok(Err(error)) => error,
            Ok(Ok(())) => ProducerError::Stopped {
                reason: "the stage ended".into(),
            },
            Err(e) => ProducerError::Stopped {
                reason: e.to_string(),
            },
        }
    }

    /// Stops cleanly: no more requests are read, fetches in flight get the
    /// [shutdown grace](crate::ProducerConfig::shutdown_grace) to finish, what is answered is committed
    /// (after the tracked-player state is written), and the consumers leave their groups.
    ///
    /// # Errors
    /// The error the stage had stopped with, or the one of its last commit.
    pub async fn close(mut self) -> Result<(), ProducerError> {
        self.control.send_modify(|c| c.closing = true);
        let Some(task) = self.task.take() else {
            return Err(ProducerError::Stopped {
                reason: "the stage had stopped already".into(),
            });
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(ProducerError::Stopped {
                reason: e.to_string(),
            }),
        }
    }

    /// Stops at once, as a crash would: nothing more is written or committed. Requests read
    /// since the last commit are answered again after the next start.
    pub fn abort(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(task) = self.task.take() {
            // Fetches that end from now on write nothing, even before the task is torn down.
            self.halted.store(true, Ordering::SeqCst);
            task.abort();
        }
    }
}

impl Drop for ProducerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}
