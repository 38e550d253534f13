//! The seam between the library and where topics live.
//!
//! Everything that reads or writes records — the typed [`Producer`](crate::client::Producer)
//! and [`Consumer`](crate::client::Consumer), [`Admin`](crate::admin::Admin), and the stream
//! threads of [`Streams`](crate::Streams) — goes through the traits of this module, and
//! [`connect`] is the one place that looks at [`config::Backend`](crate::config::Backend) to
//! pick an implementation:
//!
//! | folder | backend |
//! |---|---|
//! | [`kafka`] | a Kafka cluster, through librdkafka (`rdkafka`) |
//! | [`local`] | the durable local log of `ow-stream-log`, in one directory |
//!
//! A backend implements five things: a [`Connection`] (the factory, made once per client),
//! a [`RawProducer`], a [`RawConsumer`] and an [`AdminOps`], plus [`StreamThreads`], the body
//! of a stream thread, which drives the shared [`TaskManager`](crate::runtime::manager) with
//! the backend's own [`RecordCollector`](crate::runtime::collector::RecordCollector) and
//! [`ChangelogReader`](crate::state::ChangelogReader). Serdes, the DSL, stores and the task
//! plumbing know nothing of backends. Adding a third one (another Kafka client, say) means one
//! new folder here and one arm in [`connect`].

pub(crate) mod kafka;
pub(crate) mod local;

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::admin::{TopicOffsets, TopicSpec};
use crate::client::Delivered;
use crate::config::{Backend, StreamsConfig};
use crate::error::Error;
use crate::record::{Headers, RawRecord};
use crate::runtime::Shared;

/// Connects to the backend `config` names: the one dispatch point on
/// [`Backend`](crate::config::Backend).
pub(crate) fn connect(config: &StreamsConfig) -> Result<Box<dyn Connection>, Error> {
    match &config.backend {
        Backend::Kafka { .. } => Ok(Box::new(kafka::KafkaConnection::new(config))),
        Backend::Local { dir } => Ok(Box::new(local::LocalConnection::open(dir, config)?)),
    }
}

/// A backend's factory of clients, for one configuration.
#[async_trait]
pub(crate) trait Connection: Send + Sync {
    /// A producer of raw records.
    fn producer(&self) -> Result<Arc<dyn RawProducer>, Error>;

    /// A member of consumer group `group`, subscribed to `topic`; a group with no committed
    /// offsets starts from the earliest record.
    fn consumer(&self, group: &str, topic: Arc<str>) -> Result<Box<dyn RawConsumer>, Error>;

    /// Topic and group administration.
    fn admin(&self) -> Result<Box<dyn AdminOps>, Error>;

    /// A reader of every partition of `topic` in no consumer group, for the global thread
    /// (see `runtime::global`).
    fn global_consumer(&self, topic: Arc<str>) -> Result<Box<dyn GlobalConsumer>, Error>;

    /// Prepares to run the application `shared` describes: takes whatever the backend needs
    /// to run it (a lease, on the local log), creates its missing internal topics and checks
    /// that its source and sink topics (`sinks`) exist. The returned value runs its stream
    /// threads, and releases what it holds when dropped.
    async fn prepare_streams(
        &self,
        shared: &Arc<Shared>,
        sinks: &[Arc<str>],
    ) -> Result<Arc<dyn StreamThreads>, Error>;
}

/// How a [`RawProducer`] tells that a record was acknowledged, and where it was written.
pub(crate) enum Ack<'a> {
    /// The record is queued already; the answer comes on this channel. (No allocation of its
    /// own: for a backend whose sends cost a microsecond or two, a boxed future per record is
    /// a measurable share, see BENCHMARKS.md.)
    Reply(tokio::sync::oneshot::Receiver<Result<Delivered, Error>>),
    /// A future that sends the record and waits for the acknowledgement.
    Pending(BoxFuture<'a, Result<Delivered, Error>>),
}

impl Ack<'_> {
    /// Waits for the acknowledgement.
    pub(crate) async fn wait(self) -> Result<Delivered, Error> {
        match self {
            Ack::Reply(reply) => reply.await.map_err(|_| Error::Closed {
                reason: "the producer stopped before the record was acknowledged".into(),
            })?,
            Ack::Pending(pending) => pending.await,
        }
    }
}

/// Writes raw records.
#[async_trait]
pub(crate) trait RawProducer: Send + Sync {
    /// Sends one record; [`Ack::wait`] waits for it to be acknowledged. Records sent one after
    /// the other (each one's `Ack` polled once before the next is sent) keep their order.
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        timestamp: i64,
        headers: &'a Headers,
    ) -> Ack<'a>;

    /// Waits until every record sent is acknowledged.
    async fn flush(&self) -> Result<(), Error>;
}

/// Reads raw records of one topic as a member of a consumer group.
#[async_trait]
pub(crate) trait RawConsumer: Send + Sync {
    /// The next record.
    async fn next(&self) -> Result<RawRecord, Error>;

    /// Commits `next_offset` as the next record to read in `partition`.
    fn commit(&self, partition: i32, next_offset: i64) -> Result<(), Error>;

    /// Makes the commits durable and leaves the group.
    async fn close(self: Box<Self>) -> Result<(), Error>;
}

/// Reads every partition of one topic, assigned by hand and in no consumer group: the global
/// thread's consumer. Positions are the reader's own (the global store checkpoints them).
pub(crate) trait GlobalConsumer: Send {
    /// The `(start, end)` offsets of every partition of the topic, the end as this reader's
    /// isolation sees it.
    fn offsets(&mut self) -> Result<std::collections::BTreeMap<i32, (i64, i64)>, Error>;

    /// Reads every partition from `positions` on (the next offset to read; a partition not
    /// listed from its beginning).
    fn seek(&mut self, positions: &std::collections::BTreeMap<i32, i64>) -> Result<(), Error>;

    /// The next records (in offset order within a partition), waiting at most `timeout` when
    /// there are none.
    fn poll(&mut self, timeout: std::time::Duration) -> Result<Vec<RawRecord>, Error>;

    /// The next offset this reader will return, per partition (past transaction markers).
    fn positions(&mut self) -> Result<std::collections::BTreeMap<i32, i64>, Error>;
}

/// Topic and group administration.
#[async_trait]
pub(crate) trait AdminOps: Send + Sync {
    /// Creates the topics of `specs` that do not exist yet.
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), Error>;

    /// Every topic's name, in any order, internal ones included.
    async fn list_topics(&self) -> Result<Vec<String>, Error>;

    /// The records of `topic` in each `(partition, from, to)` range, oldest first within a
    /// partition; at most `per_partition` of each.
    async fn read_ranges(
        &self,
        topic: &str,
        ranges: Vec<(i32, i64, i64)>,
        per_partition: usize,
    ) -> Result<Vec<RawRecord>, Error>;

    /// Offsets of the named topics (topics that do not exist are left out).
    async fn topic_offsets(&self, topics: &[&str]) -> Result<Vec<TopicOffsets>, Error>;

    /// The offsets `group` committed in each `(topic, partition)`, in the same order.
    async fn committed(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Option<i64>>, Error>;
}

/// The body of an application's stream threads on one backend.
pub(crate) trait StreamThreads: Send + Sync {
    /// Runs stream thread `index` until the application shuts down or the thread fails.
    fn run(&self, shared: Arc<Shared>, index: usize) -> Result<(), Error>;

    /// Asks every other instance of the application to shut down, because of `error`
    /// ([`ThreadFailurePolicy::ShutdownApplication`](crate::config::ThreadFailurePolicy)).
    /// Backends where one process runs the whole application have no one to ask.
    fn request_shutdown(&self, _shared: &Shared, _error: &Error) -> Result<(), Error> {
        Ok(())
    }
}
