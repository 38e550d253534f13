//! Punctuation schedules: what a [`Processor`](super::Processor) registers with
//! [`ProcessorContext::schedule`](super::ProcessorContext::schedule).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which clock drives a punctuation schedule (Kafka Streams' `PunctuationType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Stream time: the highest record timestamp the task has seen. A schedule fires after
    /// the record that moves stream time to or past its next time, once however many
    /// intervals stream time jumped, and is then due at the first multiple of the interval
    /// after the new stream time. Schedules are aligned to 0 (multiples of the interval), so
    /// a schedule fires after the task's first record. It never fires while no records
    /// arrive.
    StreamTime,
    /// Wall-clock time: fires `interval` after it was scheduled, then every `interval`, from
    /// the stream thread's loop (in the [`TopologyTestDriver`](crate::testing::TopologyTestDriver)
    /// only on [`advance_wall_clock`](crate::testing::TopologyTestDriver::advance_wall_clock)).
    /// A late or long step fires once and skips the intervals it missed.
    WallClockTime,
}

/// The handle of a punctuation schedule, returned by
/// [`ProcessorContext::schedule`](super::ProcessorContext::schedule). Clones share the
/// schedule.
#[derive(Clone, Debug)]
pub struct Cancellable {
    cancelled: Arc<AtomicBool>,
}

impl Cancellable {
    /// Stops the schedule: its punctuator is not called again (a punctuator may cancel its own
    /// schedule while it runs).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancellable::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Why [`ProcessorContext::schedule`](super::ProcessorContext::schedule) refused a schedule.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The interval is shorter than one millisecond.
    #[error("a punctuation interval must be at least 1 ms (got {interval:?})")]
    IntervalTooShort {
        /// The interval asked for.
        interval: std::time::Duration,
    },
    /// The punctuator takes another type than the processor it was scheduled from.
    #[error(
        "the punctuator takes &mut {expected_by_callback}, but it was scheduled from another processor type"
    )]
    WrongProcessorType {
        /// The processor type the punctuator's first argument names.
        expected_by_callback: &'static str,
    },
}

/// One registered schedule of a processor node.
pub(crate) struct Schedule {
    pub(crate) kind: PunctuationType,
    /// Milliseconds, at least 1.
    pub(crate) interval: i64,
    /// When it is due next (stream or wall-clock milliseconds).
    pub(crate) next: i64,
    pub(crate) handle: Cancellable,
    /// The punctuator (`PunctuatorFn` of the node's processor type), taken out while it runs.
    pub(crate) callback: Option<Box<dyn Any + Send>>,
}

impl Schedule {
    pub(crate) fn new(
        kind: PunctuationType,
        interval: i64,
        next: i64,
        callback: Box<dyn Any + Send>,
    ) -> (Schedule, Cancellable) {
        let handle = Cancellable {
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        let schedule = Schedule {
            kind,
            interval,
            next,
            handle: handle.clone(),
            callback: Some(callback),
        };
        (schedule, handle)
    }

    /// Moves the schedule past `now` after it fired at `now`: one interval on, or, if that is
    /// not after `now` (missed intervals), to the first time on its grid after `now`.
    pub(crate) fn advance(&mut self, now: i64) {
        let next = self.next.saturating_add(self.interval);
        self.next = if now >= next {
            let missed = now.saturating_sub(self.next) / self.interval;
            self.next
                .saturating_add(missed.saturating_add(1).saturating_mul(self.interval))
        } else {
            next
        };
    }
}

/// What a punctuation round does (see `TaskCx::timer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerRound {
    /// Calls every processor's `init` (once per task).
    Init,
    /// Fires the due schedules of one kind.
    Fire(PunctuationType),
}

/// The earliest due time of a task's schedules, per kind, so the task knows cheaply when to
/// run a punctuation round. May be early (after a cancel): the round then fires nothing and
/// recomputes it.
#[derive(Debug)]
pub(crate) struct Timers {
    pub(crate) stream: i64,
    pub(crate) wall: i64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            stream: i64::MAX,
            wall: i64::MAX,
        }
    }
}

impl Timers {
    /// A schedule of `kind` is due at `at`.
    pub(crate) fn note(&mut self, kind: PunctuationType, at: i64) {
        let slot = match kind {
            PunctuationType::StreamTime => &mut self.stream,
            PunctuationType::WallClockTime => &mut self.wall,
        };
        *slot = (*slot).min(at);
    }

    /// Forgets the due time of `kind` before a round recomputes it.
    pub(crate) fn reset(&mut self, kind: PunctuationType) {
        match kind {
            PunctuationType::StreamTime => self.stream = i64::MAX,
            PunctuationType::WallClockTime => self.wall = i64::MAX,
        }
    }
}
