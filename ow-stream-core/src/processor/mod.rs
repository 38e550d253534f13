//! The processing engine under the DSL: nodes, the per-task context, and the custom
//! [`Processor`] API.
//!
//! A topology is instantiated once per *task* (a sub-topology on one partition). Inside a task,
//! records flow synchronously from a source node through processor nodes to sink nodes, each
//! node owning its children. Stores are reached through the task's [`ProcessorContext`].

pub(crate) mod context;
pub(crate) mod node;
pub mod punctuation;

pub use context::ProcessorContext;
pub use punctuation::{Cancellable, PunctuationType, ScheduleError};

/// Header names written on dead-letter records, so tools that read the dead-letter topic
/// (`<application_id>-dlq`) can tell where each record came from and why it is there.
pub mod dead_letter_headers {
    /// Topic the record was read from.
    pub const TOPIC: &str = "ow.dlq.topic";
    /// Partition it was read from (decimal text).
    pub const PARTITION: &str = "ow.dlq.partition";
    /// Offset it was read at (decimal text).
    pub const OFFSET: &str = "ow.dlq.offset";
    /// Its timestamp (decimal milliseconds).
    pub const TIMESTAMP: &str = "ow.dlq.timestamp";
    /// `deserialize`, `process`, or `punctuate` (an error in a punctuator or in
    /// [`Processor::init`](super::Processor::init): no key, no value, and no topic,
    /// partition or offset headers).
    pub const STAGE: &str = "ow.dlq.stage";
    /// The node that failed (for `process` and `punctuate`).
    pub const NODE: &str = "ow.dlq.node";
    /// The error message.
    pub const ERROR: &str = "ow.dlq.error";
    /// The application that failed on it.
    pub const APPLICATION: &str = "ow.dlq.application";
}

use crate::error::BoxError;
use crate::record::Record;

/// A custom processor: the escape hatch for logic the DSL's operators do not cover.
///
/// It receives each record with a [`ProcessorContext`] that forwards records downstream and
/// reaches the state stores the processor was connected to (see
/// [`Stream::process`](crate::dsl::Stream::process)). Returning an error applies the
/// application's processing-error policy to the input record (fail, skip, or dead-letter).
///
/// Time-driven work goes in punctuators: [`ProcessorContext::schedule`], usually from
/// [`Processor::init`], runs a callback on stream time or wall-clock time (see
/// [`PunctuationType`] and `examples/punctuation.rs`).
///
/// ```
/// use ow_stream_core::processor::{Processor, ProcessorContext};
/// use ow_stream_core::record::Record;
/// use ow_stream_core::error::BoxError;
///
/// /// Emits each value with the running total of its key.
/// struct RunningTotal;
///
/// impl Processor<String, i64, String, i64> for RunningTotal {
///     fn process(
///         &mut self,
///         record: Record<String, i64>,
///         ctx: &mut ProcessorContext<'_, '_, String, i64>,
///     ) -> Result<(), BoxError> {
///         let mut totals = ctx.key_value_store::<String, i64>("totals")?;
///         let total = totals.get(&record.key)?.unwrap_or(0) + record.value;
///         totals.put(&record.key, &total)?;
///         ctx.forward(record.with_value(total))?;
///         Ok(())
///     }
/// }
/// ```
pub trait Processor<K, V, KOut, VOut>: Send + 'static {
    /// Handles one record.
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<'_, '_, KOut, VOut>,
    ) -> Result<(), BoxError>;

    /// Called once per task before its first record (or punctuation), with the task's stores
    /// restored: the place to [`schedule`](ProcessorContext::schedule) punctuations. An error
    /// goes through the processing-error policy. The default does nothing.
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, KOut, VOut>) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Called at every commit interval (from the stream thread, and on each
    /// [`advance_wall_clock`](crate::testing::TopologyTestDriver::advance_wall_clock) of the
    /// test driver) and on the record-cache flushes; `ctx.stream_time()` and
    /// `ctx.wall_clock_time()` tell the times. The default does nothing.
    ///
    /// Superseded by [`ProcessorContext::schedule`], whose punctuations come at the interval
    /// and on the clock the processor chooses; kept for existing processors.
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, KOut, VOut>,
    ) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }
}
