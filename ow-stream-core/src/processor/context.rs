//! What a node sees while it processes a record.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::node::Children;
use crate::config::OnError;
use crate::error::{BoxError, Error};
use crate::metrics::Metrics;
use crate::record::{Headers, RawRecord, Record, RecordMetadata};
use crate::serde::{Serde, SerdeContext, SerdeError};
use crate::state::{KeyValueStore, StateManager};

/// Identifies a task: a sub-topology working on one partition (`"0_3"`, as in Kafka Streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TaskId {
    pub(crate) subtopology: u32,
    pub(crate) partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// A record on its way out, borrowed from the node that writes it.
pub(crate) struct OutRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: i64,
    pub(crate) headers: &'a Headers,
}

/// The offset a tracked record was written at, known once the collector has flushed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Delivery(Arc<std::sync::OnceLock<Result<i64, String>>>);

impl Delivery {
    pub(crate) fn resolve(&self, result: Result<i64, String>) {
        let _ = self.0.set(result);
    }

    pub(crate) fn offset(&self) -> Option<Result<i64, String>> {
        self.0.get().cloned()
    }
}

/// Where a task's output records go: a producer, or the test driver's topics.
pub(crate) trait RecordCollector: Send {
    /// Queues a record for writing. Errors that surface later are reported by `flush`.
    fn send(&mut self, record: OutRecord<'_>) -> Result<(), Error>;
    /// Queues a record and returns a handle that knows its offset after the next `flush`.
    fn send_tracked(&mut self, record: OutRecord<'_>) -> Result<Delivery, Error>;
    /// How many partitions `topic` has (for sinks that choose partitions themselves). Asked of
    /// the backend once per topic, then cached.
    fn partition_count(&mut self, topic: &str) -> Result<i32, Error>;
}

/// Runs the rare asynchronous step (loading a schema) from a processing thread.
pub(crate) trait Blocker: Send + Sync {
    fn block_on_schema(&self, fut: BoxFuture<'_, Result<(), SerdeError>>)
    -> Result<(), SerdeError>;
}

/// Blocks on a future from a thread that is not a tokio worker.
pub(crate) struct HandleBlocker(pub(crate) tokio::runtime::Handle);

impl Blocker for HandleBlocker {
    fn block_on_schema(
        &self,
        fut: BoxFuture<'_, Result<(), SerdeError>>,
    ) -> Result<(), SerdeError> {
        self.0.block_on(fut)
    }
}

/// Blocks on a future from synchronous code that may or may not run inside a tokio runtime
/// (interactive queries, the test driver).
///
/// * On a worker of a multi-thread runtime, the worker hands its other tasks over
///   ([`tokio::task::block_in_place`]) and waits on the runtime.
/// * On a current-thread runtime, waiting on the runtime from inside it cannot work (and
///   `block_in_place` panics there): the future runs to completion on a helper thread with a
///   private runtime of its own, while the caller's thread waits.
/// * Outside any runtime, the future runs on a private runtime in the calling thread.
pub(crate) struct OwnBlocker;

impl Blocker for OwnBlocker {
    fn block_on_schema(
        &self,
        fut: BoxFuture<'_, Result<(), SerdeError>>,
    ) -> Result<(), SerdeError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(fut))
            }
            Ok(_) => std::thread::scope(|scope| {
                let helper = std::thread::Builder::new()
                    .name("ow-schema-load".into())
                    .spawn_scoped(scope, move || private_runtime()?.block_on(fut))
                    .map_err(|e| SerdeError::custom(format!("cannot start a thread: {e}")))?;
                helper
                    .join()
                    .unwrap_or_else(|_| Err(SerdeError::custom("loading a schema panicked")))
            }),
            Err(_) => private_runtime()?.block_on(fut),
        }
    }
}

fn private_runtime() -> Result<tokio::runtime::Runtime, SerdeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SerdeError::custom(format!("cannot start a runtime: {e}")))
}

/// Application-wide settings a task needs.
pub(crate) struct AppEnv {
    pub(crate) application_id: Arc<str>,
    pub(crate) dead_letter_topic: Arc<str>,
    pub(crate) deserialization_errors: OnError,
    pub(crate) processing_errors: OnError,
    pub(crate) blocker: Box<dyn Blocker>,
    pub(crate) metrics: Arc<Metrics>,
}

/// Per-record, per-task state handed to every node.
pub(crate) struct TaskCx<'a> {
    pub(crate) task: TaskId,
    pub(crate) env: &'a AppEnv,
    pub(crate) state: &'a mut StateManager,
    pub(crate) out: &'a mut dyn RecordCollector,
    /// The input record being processed (none during punctuation).
    pub(crate) input: Option<&'a RawRecord>,
    /// Highest record timestamp the task has seen.
    pub(crate) stream_time: i64,
    /// Wall-clock time of this processing step, in milliseconds.
    pub(crate) wall_clock: i64,
    /// Records written to repartition topics for the current input record so far.
    pub(crate) emit_seq: u32,
    /// Punctuation round, so nodes reached by several parents punctuate once per round.
    pub(crate) round: u64,
}

impl TaskCx<'_> {
    /// Decodes with a serde, loading a missing writer schema first.
    pub(crate) fn decode<T: 'static>(
        &self,
        serde: &dyn Serde<T>,
        ctx: SerdeContext<'_>,
        bytes: &[u8],
    ) -> Result<T, SerdeError> {
        for _ in 0..3 {
            match serde.deserialize(ctx, bytes) {
                Err(SerdeError::SchemaNotLoaded { id }) => {
                    self.env.blocker.block_on_schema(serde.load_schema(id))?
                }
                other => return other,
            }
        }
        serde.deserialize(ctx, bytes)
    }

    /// Encodes with a serde, registering its schema first when it asks.
    pub(crate) fn encode<T: 'static>(
        &self,
        serde: &dyn Serde<T>,
        ctx: SerdeContext<'_>,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let start = out.len();
        match serde.serialize_into(ctx, value, out) {
            Err(SerdeError::NotPrepared { .. }) => {
                out.truncate(start);
                self.env.blocker.block_on_schema(serde.prepare(ctx))?;
                serde.serialize_into(ctx, value, out)
            }
            other => other,
        }
    }

    /// Applies the deserialization-error policy to the current input record.
    pub(crate) fn deserialization_error(&mut self, error: SerdeError) -> Result<(), Error> {
        let Some(input) = self.input else {
            return Err(Error::Closed {
                reason: format!("decode error outside of a record: {error}"),
            });
        };
        self.env.metrics.deserialization_errors.incr();
        match self.env.deserialization_errors {
            OnError::Fail => Err(Error::Deserialize {
                topic: input.topic.clone(),
                partition: input.partition,
                offset: input.offset,
                source: error,
                record: Some(Box::new(input.clone())),
            }),
            OnError::LogAndSkip => {
                tracing::warn!(
                    topic = %input.topic, partition = input.partition, offset = input.offset,
                    error = %error, "skipping a record that cannot be decoded"
                );
                Ok(())
            }
            OnError::DeadLetter => self.dead_letter("deserialize", None, &error.to_string()),
        }
    }

    /// Applies the processing-error policy to the current input record.
    pub(crate) fn processing_error(
        &mut self,
        node: &Arc<str>,
        error: BoxError,
    ) -> Result<(), Error> {
        let Some(input) = self.input else {
            return Err(Error::Processing {
                node: node.clone(),
                topic: "".into(),
                partition: -1,
                offset: -1,
                source: error,
            });
        };
        self.env.metrics.processing_errors.incr();
        match self.env.processing_errors {
            OnError::Fail => Err(Error::Processing {
                node: node.clone(),
                topic: input.topic.clone(),
                partition: input.partition,
                offset: input.offset,
                source: error,
            }),
            OnError::LogAndSkip => {
                tracing::warn!(
                    node = %node, topic = %input.topic, partition = input.partition,
                    offset = input.offset, error = %error, "skipping a record a processor failed on"
                );
                Ok(())
            }
            OnError::DeadLetter => self.dead_letter("process", Some(node), &error.to_string()),
        }
    }

    fn dead_letter(
        &mut self,
        stage: &str,
        node: Option<&Arc<str>>,
        error: &str,
    ) -> Result<(), Error> {
        let Some(input) = self.input else {
            return Ok(());
        };
        use super::dead_letter_headers as h;
        let mut headers = input.headers.clone();
        headers.insert(
            h::TOPIC,
            Some(Bytes::copy_from_slice(input.topic.as_bytes())),
        );
        headers.insert(h::PARTITION, Some(Bytes::from(input.partition.to_string())));
        headers.insert(h::OFFSET, Some(Bytes::from(input.offset.to_string())));
        headers.insert(h::TIMESTAMP, Some(Bytes::from(input.timestamp.to_string())));
        headers.insert(h::STAGE, Some(Bytes::copy_from_slice(stage.as_bytes())));
        if let Some(node) = node {
            headers.insert(h::NODE, Some(Bytes::copy_from_slice(node.as_bytes())));
        }
        headers.insert(h::ERROR, Some(Bytes::copy_from_slice(error.as_bytes())));
        headers.insert(
            h::APPLICATION,
            Some(Bytes::copy_from_slice(self.env.application_id.as_bytes())),
        );
        tracing::warn!(
            topic = %input.topic, partition = input.partition, offset = input.offset,
            stage, error, dlq = %self.env.dead_letter_topic, "record sent to the dead-letter topic"
        );
        self.env.metrics.dead_letters.incr();
        self.out.send(OutRecord {
            topic: &self.env.dead_letter_topic,
            partition: None,
            key: input.key.as_deref(),
            value: input.value.as_deref(),
            timestamp: input.timestamp,
            headers: &headers,
        })
    }

    /// Where the current input record came from.
    pub(crate) fn input_metadata(&self) -> Option<RecordMetadata> {
        self.input.map(RawRecord::metadata)
    }
}

/// What a custom [`Processor`](super::Processor) can do while it handles a record: forward
/// records, read and write its stores, and read the clocks.
pub struct ProcessorContext<'c, 'a, KOut, VOut> {
    pub(crate) cx: &'c mut TaskCx<'a>,
    pub(crate) children: &'c mut Children<KOut, VOut>,
    pub(crate) stores: &'c [(Arc<str>, usize)],
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
