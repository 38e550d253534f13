//! What a custom processor sees while it handles a record.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use super::node::Children;
use super::punctuation::{Cancellable, PunctuationType, Schedule, ScheduleError};
use crate::error::BoxError;
use crate::record::{Record, RecordMetadata};
use crate::runtime::context::TaskCx;
use crate::state::KeyValueStore;

/// The stored form of a punctuator scheduled from a processor of type `P`.
pub(crate) type PunctuatorFn<P, KOut, VOut> = Box<
    dyn FnMut(&mut P, i64, &mut ProcessorContext<'_, '_, KOut, VOut>) -> Result<(), BoxError>
        + Send,
>;

/// What a custom [`Processor`](super::Processor) can do while it handles a record, is
/// initialised or punctuates: forward records, read and write its stores, read the clocks and
/// schedule punctuations.
pub struct ProcessorContext<'c, 'a, KOut, VOut> {
    pub(crate) cx: &'c mut TaskCx<'a>,
    pub(crate) children: &'c mut Children<KOut, VOut>,
    pub(crate) stores: &'c [(Arc<str>, usize)],
    /// The schedules of the processor node.
    pub(crate) schedules: &'c mut Vec<Schedule>,
    /// The type of the node's processor, to check what punctuators take.
    pub(crate) processor: TypeId,
}

impl<'a, KOut: Clone + Send + 'static, VOut: Clone + Send + 'static>
    ProcessorContext<'_, 'a, KOut, VOut>
{
    /// Sends a record to every child node.
    pub fn forward(&mut self, record: Record<KOut, VOut>) -> Result<(), BoxError> {
        self.children
            .forward(record, self.cx)
            .map_err(|e| Box::new(e) as BoxError)
    }

    /// The task's stream time: the highest record timestamp it has seen.
    pub fn stream_time(&self) -> i64 {
        self.cx.stream_time
    }

    /// Wall-clock time of this step, in milliseconds since the epoch.
    pub fn wall_clock_time(&self) -> i64 {
        self.cx.wall_clock
    }

    /// Where the record being processed was read from (none during punctuation).
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.cx.input_metadata()
    }

    /// The partition this task works on.
    pub fn partition(&self) -> i32 {
        self.cx.task.partition
    }

    /// Schedules `punctuator` to run every `interval` on the clock `kind` (Kafka Streams'
    /// `ProcessorContext#schedule`), for as long as the task lives or until the returned
    /// [`Cancellable`] is cancelled. Call it from [`Processor::init`](super::Processor::init)
    /// (or while processing a record).
    ///
    /// The punctuator receives the processor itself (`P` must be the type of the processor
    /// calling `schedule`, usually written `|me: &mut Self, timestamp, ctx| ...`), the
    /// punctuation's timestamp (the current stream time or wall-clock time, in milliseconds)
    /// and a context that forwards records (stamped as the punctuator chooses, typically with
    /// the punctuation timestamp) and reaches the processor's stores. An error it returns goes
    /// through the processing-error policy, as one from
    /// [`Processor::process`](super::Processor::process) does; see [`PunctuationType`] for
    /// when each kind fires.
    ///
    /// Fails with [`ScheduleError`] for an interval under one millisecond or a punctuator
    /// taking another type than the processor.
    pub fn schedule<P: 'static>(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        punctuator: impl FnMut(
            &mut P,
            i64,
            &mut ProcessorContext<'_, '_, KOut, VOut>,
        ) -> Result<(), BoxError>
        + Send
        + 'static,
    ) -> Result<Cancellable, ScheduleError> {
        let millis = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if millis < 1 {
            return Err(ScheduleError::IntervalTooShort { interval });
        }
        if TypeId::of::<P>() != self.processor {
            return Err(ScheduleError::WrongProcessorType {
                expected_by_callback: std::any::type_name::<P>(),
            });
        }
        let next = match kind {
            // Aligned to 0: due as soon as the task has stream time.
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.cx.wall_clock.saturating_add(millis),
        };
        let callback: PunctuatorFn<P, KOut, VOut> = Box::new(punctuator);
        let (schedule, handle) = Schedule::new(
            kind,
            millis,
            next,
            Box::new(callback) as Box<dyn Any + Send>,
        );
        self.schedules.push(schedule);
        self.cx.timers.note(kind, next);
        Ok(handle)
    }

    /// A typed view of a key-value store this processor was connected to.
    pub fn key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<KeyValueStore<'_, 'a, K, V>, BoxError> {
        let index = self
            .stores
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, i)| *i)
            .ok_or_else(|| format!("store {name:?} is not connected to this processor"))?;
        KeyValueStore::new(self.cx, index).map_err(|e| Box::new(e) as BoxError)
    }
}
