//! What a task hands its nodes: the task's identity, the application's settings, its stores,
//! its output collector and its clocks. Internal plumbing; the user-facing view of it is
//! [`ProcessorContext`](crate::processor::ProcessorContext).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::collector::{OutRecord, RecordCollector};
use crate::config::OnError;
use crate::error::{BoxError, Error};
use crate::metrics::Metrics;
use crate::processor::punctuation::{TimerRound, Timers};
use crate::record::{RawRecord, RecordMetadata};
use crate::serde::blocking::Blocker;
use crate::serde::{Serde, SerdeContext, SerdeError};
use crate::state::StateManager;

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

/// Application-wide settings a task needs.
pub(crate) struct AppEnv {
    pub(crate) application_id: Arc<str>,
    pub(crate) dead_letter_topic: Arc<str>,
    pub(crate) deserialization_errors: OnError,
    pub(crate) processing_errors: OnError,
    /// [`StreamsConfig::schema_registry_wait`](crate::config::StreamsConfig::schema_registry_wait).
    pub(crate) registry_wait: Duration,
    pub(crate) blocker: Box<dyn Blocker>,
    pub(crate) metrics: Arc<Metrics>,
    /// The global stores, open once bootstrapped (what `join_global` reads).
    pub(crate) globals: crate::state::global::GlobalStores,
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
    /// Set on the punctuation that precedes a commit: aggregations flush their record caches.
    pub(crate) flush_caches: bool,
    /// The earliest due times of the task's punctuation schedules (processors lower them).
    pub(crate) timers: &'a mut Timers,
    /// Set on the rounds that initialise processors or fire their schedules (processors then
    /// do not call their plain `punctuate` hook).
    pub(crate) timer: Option<TimerRound>,
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
                    self.wait_for_registry(|| serde.load_schema(id))?
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
                self.wait_for_registry(|| serde.prepare(ctx))?;
                serde.serialize_into(ctx, value, out)
            }
            other => other,
        }
    }

    /// Runs a registry call (a schema load, a registration) to completion, trying again with
    /// backoff while the registry is unreachable, for at most the configured
    /// [`AppEnv::registry_wait`]; the stream thread waits meanwhile.
    fn wait_for_registry<'s>(
        &self,
        call: impl Fn() -> futures::future::BoxFuture<'s, Result<(), SerdeError>>,
    ) -> Result<(), SerdeError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        let mut attempts = 0u32;
        loop {
            match self.env.blocker.block_on_schema(call()) {
                Err(SerdeError::Registry(e))
                    if e.is_transient() && started.elapsed() + pause < self.env.registry_wait =>
                {
                    attempts += 1;
                    if attempts == 1 || attempts.is_multiple_of(10) {
                        tracing::warn!(
                            task = %self.task, error = %e, waited = ?started.elapsed(),
                            "the schema registry is away; waiting for it before going on"
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Applies the deserialization-error policy to the current input record.
    ///
    /// A schema registry that stayed unreachable for the whole
    /// [`AppEnv::registry_wait`] says nothing about the record: that fails the thread
    /// with [`Error::Registry`] instead of dead-lettering or skipping a good record.
    pub(crate) fn deserialization_error(&mut self, error: SerdeError) -> Result<(), Error> {
        let error = match error {
            SerdeError::Registry(e) if e.is_transient() => return Err(Error::Registry(e)),
            other => other,
        };
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
                self.env.metrics.skipped_undecodable.incr();
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
        self.env.metrics.processing_errors.incr();
        let Some(input) = self.input else {
            // Outside of a record (a punctuator, `init`): the same policy, with no input
            // record to skip or dead-letter.
            return match self.env.processing_errors {
                OnError::Fail => Err(Error::Processing {
                    node: node.clone(),
                    topic: "".into(),
                    partition: -1,
                    offset: -1,
                    source: error,
                }),
                OnError::LogAndSkip => {
                    tracing::warn!(
                        node = %node, task = %self.task, error = %error,
                        "skipping a punctuation a processor failed in"
                    );
                    Ok(())
                }
                OnError::DeadLetter => self.dead_letter_punctuation(node, &error.to_string()),
            };
        };
        match self.env.processing_errors {
            OnError::Fail => Err(Error::Processing {
                node: node.clone(),
                topic: input.topic.clone(),
                partition: input.partition,
                offset: input.offset,
                source: error,
            }),
            OnError::LogAndSkip => {
                self.env.metrics.skipped_failed.incr();
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
        use crate::processor::dead_letter_headers as h;
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

    /// Writes a dead-letter record for an error outside of a record: no key or value, the
    /// wall-clock time as timestamp, stage `punctuate`, the node and the error.
    fn dead_letter_punctuation(&mut self, node: &Arc<str>, error: &str) -> Result<(), Error> {
        use crate::processor::dead_letter_headers as h;
        let mut headers = crate::record::Headers::default();
        headers.insert(h::TIMESTAMP, Some(Bytes::from(self.wall_clock.to_string())));
        headers.insert(h::STAGE, Some(Bytes::from_static(b"punctuate")));
        headers.insert(h::NODE, Some(Bytes::copy_from_slice(node.as_bytes())));
        headers.insert(h::ERROR, Some(Bytes::copy_from_slice(error.as_bytes())));
        headers.insert(
            h::APPLICATION,
            Some(Bytes::copy_from_slice(self.env.application_id.as_bytes())),
        );
        tracing::warn!(
            node = %node, task = %self.task, error, dlq = %self.env.dead_letter_topic,
            "a punctuation failed; reported on the dead-letter topic"
        );
        self.env.metrics.dead_letters.incr();
        self.out.send(OutRecord {
            topic: &self.env.dead_letter_topic,
            partition: None,
            key: None,
            value: None,
            timestamp: self.wall_clock,
            headers: &headers,
        })
    }

    /// Where the current input record came from.
    pub(crate) fn input_metadata(&self) -> Option<RecordMetadata> {
        self.input.map(RawRecord::metadata)
    }
}
