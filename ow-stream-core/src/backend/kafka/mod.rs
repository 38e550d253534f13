//! Everything that touches rdkafka. No rdkafka type leaves this module: the rest of the
//! library sees records, collectors, changelog readers and offsets.

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod connection;
pub(crate) mod global;
pub(crate) mod thread;
pub(crate) mod transaction;

pub(crate) use connection::KafkaConnection;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use crate::config::{Backend, StreamsConfig};
use crate::error::{Error, KafkaFailure};
use crate::metrics::Metrics;
use crate::record::{Headers, RawRecord};
use crate::runtime::Shared;
use crate::runtime::collector::{Delivery, OutRecord, RecordCollector};
use crate::runtime::connectivity::Client;
use crate::runtime::manager::Collector;
use crate::state::{ChangelogRange, ChangelogReader};
use transaction::{
    GroupMetadata, TRANSACTION_TIMEOUT, fatal_error, may_retry, transaction_error,
    transaction_timeout_ms,
};

/// How long a producer flush may take before the commit fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long metadata and offset requests may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sink waits for an output topic's metadata while the broker is unreachable
/// (Kafka Streams' `task.timeout.ms` default).
const METADATA_RETRY_TIMEOUT: Duration = Duration::from_secs(300);
/// librdkafka's default `message.max.bytes`: the largest record a client accepts to send.
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_000_000;
/// How long the broker may hold a fetch of the restore consumer waiting for data. librdkafka
/// keeps one fetch in flight per broker, so with the default (500 ms) a partition assigned
/// after the previous one was read to its end waits for the previous, empty long poll: half a
/// second per changelog partition restored.
const RESTORE_FETCH_WAIT_MS: &str = "10";

/// The largest record `config`'s clients accept to send (`message.max.bytes`).
pub(crate) fn message_max_bytes(config: &StreamsConfig) -> u64 {
    config
        .kafka
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

/// The size librdkafka checks against `message.max.bytes`: key, value and headers.
pub(crate) fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &Headers) -> u64 {
    let headers: usize = headers
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
        .sum();
    (key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers) as u64
}

/// A failed produce as a library error: [`Error::RecordTooLarge`] for records the client or a
/// broker refuses for their size (`limit` is the client's, when the record exceeds it).
pub(crate) fn produce_error(topic: &str, bytes: u64, limit: u64, e: KafkaError) -> Error {
    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
        return Error::RecordTooLarge {
            topic: topic.into(),
            bytes,
            limit: (bytes > limit).then_some(limit),
        };
    }
    kafka_error("produce", e)
}

pub(crate) fn kafka_error(operation: &'static str, e: KafkaError) -> Error {
    let retriable = e.rdkafka_error_code().is_some_and(|c| {
        matches!(
            c,
            RDKafkaErrorCode::QueueFull
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
        )
    });
    Error::Kafka {
        operation,
        code: e.rdkafka_error_code(),
        retriable,
        source: Box::new(e),
    }
}

/// The roles a client plays; each gets its own settings.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    Producer,
    /// A member of the application's consumer group.
    GroupConsumer,
    /// A consumer with manual assignment (restore, introspection).
    AssignConsumer,
    Admin,
}

/// Turns the library configuration into librdkafka settings: the only place that does.
pub(crate) fn client_config(
    config: &StreamsConfig,
    role: Role,
    group: Option<&str>,
) -> Result<ClientConfig, Error> {
    let Backend::Kafka { bootstrap_servers } = &config.backend else {
        return Err(Error::Config {
            field: "brokers",
            reason: "not a Kafka backend".into(),
        });
    };
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap_servers);
    let suffix = match role {
        Role::Producer => "producer",
        Role::GroupConsumer => "consumer",
        Role::AssignConsumer => "restore-consumer",
        Role::Admin => "admin",
    };
    c.set("client.id", format!("{}-{suffix}", config.application_id));
    match role {
        Role::Producer => {
            c.set("enable.idempotence", "true")
                // Kafka's (Java) default partitioner, so both backends and every client agree on
                // where a key goes.
                .set("partitioner", "murmur2_random")
                // librdkafka's default; stream threads' producers linger longer
                // (`STREAM_LINGER_MS`).
                .set("linger.ms", "5")
                .set("message.timeout.ms", "120000");
        }
        Role::GroupConsumer | Role::AssignConsumer => {
            c.set(
                "group.id",
                group
                    .map(str::to_string)
                    .unwrap_or_else(|| config.application_id.clone()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            // Range assignment gives every member the same partition numbers of topics with
            // equal partition counts: the co-partitioning that joins rely on.
            .set("partition.assignment.strategy", "range");
        }
        Role::Admin => {}
    }
    let exactly_once = config.processing_guarantee.is_exactly_once();
    if exactly_once && matches!(role, Role::GroupConsumer | Role::AssignConsumer) {
        // Stream threads, restore and the typed consumer never see records of a transaction
        // that did not commit.
        c.set("isolation.level", "read_committed");
    }
    for (k, v) in &config.kafka {
        // Pass-through settings override ours, except the ones the library depends on (and the
        // restore consumer's fetch wait, below).
        let reserved = matches!(
            (role, k.as_str()),
            (
                Role::GroupConsumer | Role::AssignConsumer,
                "enable.auto.commit" | "group.id"
            ) | (Role::Producer, "enable.idempotence")
        ) || (exactly_once
            && matches!(
                (role, k.as_str()),
                (
                    Role::GroupConsumer | Role::AssignConsumer,
                    "isolation.level"
                ) | (Role::Producer, "transactional.id")
            ));
        if reserved {
            tracing::warn!(setting = %k, "ignoring a Kafka setting the library manages itself");
            continue;
        }
        // Producer-only and consumer-only settings would make the other client fail.
        if !setting_applies(role, k) {
            continue;
        }
        c.set(k, v);
    }
    if let Role::AssignConsumer = role {
        // Restore reads partitions to their end and moves on: never wait for more data.
        c.set("fetch.wait.max.ms", RESTORE_FETCH_WAIT_MS);
    }
    Ok(c)
}

fn setting_applies(role: Role, key: &str) -> bool {
    const PRODUCER_ONLY: &[&str] = &[
        "compression.type",
        "compression.codec",
        "linger.ms",
        "batch.size",
        "batch.num.messages",
        "acks",
        "request.required.acks",
        "message.timeout.ms",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "partitioner",
    ];
    const CONSUMER_ONLY: &[&str] = &[
        "auto.offset.reset",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "isolation.level",
        "partition.assignment.strategy",
    ];
    match role {
        Role::Producer => !CONSUMER_ONLY.contains(&key),
        Role::GroupConsumer | Role::AssignConsumer => !PRODUCER_ONLY.contains(&key),
        Role::Admin => !PRODUCER_ONLY.contains(&key) && !CONSUMER_ONLY.contains(&key),
    }
}

/// Converts a consumed message into a record (copying key and value).
pub(crate) fn to_raw(m: &BorrowedMessage<'_>, topic: &Arc<str>) -> RawRecord {
    let mut headers = Headers::new();
    if let Some(h) = m.headers() {
        for header in h.iter() {
            headers.insert(header.key, header.value.map(Bytes::copy_from_slice));
        }
    }
    RawRecord {
        topic: topic.clone(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        key: m.key().map(Bytes::copy_from_slice),
        value: m.payload().map(Bytes::copy_from_slice),
        headers,
    }
}

/// Interns topic names so records share one `Arc<str>` per topic.
#[derive(Default)]
pub(crate) struct TopicNames(HashMap<String, Arc<str>>);

impl TopicNames {
    pub(crate) fn get(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.0.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = topic.into();
        self.0.insert(topic.to_string(), t.clone());
        t
    }
}

/// How often a stream thread's clients report statistics (their broker connections among
/// them), unless `statistics.interval.ms` is passed through.
const STATISTICS_INTERVAL_MS: &str = "1000";

/// Where one client of a stream thread reports what it sees of its broker connections
/// (librdkafka's all-brokers-down error and its statistics), for
/// [`Streams::broker_connectivity`](crate::runtime::Streams::broker_connectivity).
#[derive(Clone)]
pub(crate) struct ConnectivityReporter {
    shared: Arc<Shared>,
    client: Client,
}

impl ConnectivityReporter {
    pub(crate) fn new(shared: Arc<Shared>, client: Client) -> Self {
        ConnectivityReporter { shared, client }
    }

    /// Statistics every second: the clients' client config gets the interval.
    pub(crate) fn configure(c: &mut ClientConfig, config: &StreamsConfig) {
        c.set(
            "statistics.interval.ms",
            config
                .kafka
                .get("statistics.interval.ms")
                .map_or(STATISTICS_INTERVAL_MS, String::as_str),
        );
    }

    fn error(&self, error: &KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.shared.brokers_down(self.client, reason);
        }
    }

    fn stats(&self, statistics: &Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.shared.brokers_up(self.client);
        } else if !statistics.brokers.is_empty() {
            self.shared.brokers_down(
                self.client,
                "no connection to any broker is up (librdkafka statistics)",
            );
        }
    }
}

/// Delivery reports of the producer, and, for a stream thread's producer, what it sees of its
/// broker connections (its callbacks run on the producer's own thread, so they go on while the
/// stream thread is busy, e.g. flushing to a broker that went away).
pub(crate) struct DeliveryContext {
    tracked: Mutex<HashMap<usize, Delivery>>,
    failed: Mutex<Option<(Option<RDKafkaErrorCode>, String)>>,
    metrics: Arc<Metrics>,
    connectivity: Option<ConnectivityReporter>,
}

impl DeliveryContext {
    fn new(metrics: Arc<Metrics>, connectivity: Option<ConnectivityReporter>) -> Self {
        DeliveryContext {
            tracked: Mutex::new(HashMap::new()),
            failed: Mutex::new(None),
            metrics,
            connectivity,
        }
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {}: {}", error, reason);
        if let Some(c) = &self.connectivity {
            c.error(&error, reason);
        }
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(c) = &self.connectivity {
            c.stats(&statistics);
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let outcome = match result {
            Ok(m) => {
                self.metrics.records_produced.incr();
                Ok(m.offset())
            }
            Err((e, m)) => {
                let message = format!("{} (topic {}, partition {})", e, m.topic(), m.partition());
                let purged = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                );
                if purged {
                    // An aborted transaction's record (or one still queued when the producer
                    // closed): not a failure of the next commit.
                    tracing::debug!(error = %message, "a record was purged");
                } else {
                    tracing::error!(error = %message, "a record was not delivered");
                    let mut failed = self.failed.lock();
                    if failed.is_none() {
                        *failed = Some((e.rdkafka_error_code(), message.clone()));
                    }
                }
                Err(message)
            }
        };
        if opaque != 0
            && let Some(d) = self.tracked.lock().remove(&opaque)
        {
            d.resolve(outcome);
        }
    }
}

/// The stream thread's producer: idempotent, batching, with delivery tracking for commit
/// markers. Under exactly-once it is transactional ([`KafkaCollector::transactional`]): every
/// record goes into the thread's open transaction, and [`Collector::commit_transaction`]
/// commits it with the input offsets.
pub(crate) struct KafkaCollector {
    producer: ThreadedProducer<DeliveryContext>,
    next_id: AtomicUsize,
    /// `message.max.bytes`, to tell which limit refused a record.
    max_bytes: u64,
    /// Partition counts of the topics sinks chose partitions for.
    partitions: HashMap<Arc<str>, i32>,
    /// Exactly-once: the transaction state.
    transactions: Option<Transactions>,
}

/// The transactional side of a [`KafkaCollector`].
struct Transactions {
    /// The thread consumer's group metadata, for `send_offsets_to_transaction`.
    group: GroupMetadata,
    /// Whether a transaction is open (begun, not committed or aborted yet).
    open: bool,
    /// The producer's `transactional.id`, for logs.
    id: String,
}

/// How long a stream thread's producer lingers, unless `linger.ms` is passed through: Kafka
/// Streams' default for its producers. Against a broker slower than the stream thread, a 5 ms
/// linger made many small batches, and librdkafka's broker thread spins while a ready batch
/// waits for one of the idempotent producer's five in-flight slots: 40 % less CPU per record on
/// tansu with 100 ms (BENCHMARKS.md). A commit flushes at once, so no commit waits for it; a
/// record between commits reaches the broker up to 100 ms later.
const STREAM_LINGER_MS: &str = "100";

/// A stream thread's producer settings: [`client_config`]'s, lingering [`STREAM_LINGER_MS`].
fn stream_producer_config(config: &StreamsConfig) -> Result<ClientConfig, Error> {
    let mut c = client_config(config, Role::Producer, None)?;
    if !config.kafka.contains_key("linger.ms")
        && !config.kafka.contains_key("queue.buffering.max.ms")
    {
        c.set("linger.ms", STREAM_LINGER_MS);
    }
    Ok(c)
}

impl KafkaCollector {
    /// A producer; `connectivity`: a stream thread's, which reports its broker connections.
    pub(crate) fn new(
        config: &StreamsConfig,
        metrics: Arc<Metrics>,
        connectivity: Option<ConnectivityReporter>,
    ) -> Result<Self, Error> {
        let mut c = stream_producer_config(config)?;
        if connectivity.is_some() {
            ConnectivityReporter::configure(&mut c, config);
        }
        let producer = c
            .create_with_context(DeliveryContext::new(metrics, connectivity))
            .map_err(|e| kafka_error("create producer", e))?;
        Ok(KafkaCollector {
            producer,
            next_id: AtomicUsize::new(1),
            max_bytes: message_max_bytes(config),
            partitions: HashMap::new(),
            transactions: None,
        })
    }

    /// A transactional producer with `transactional_id` (exactly-once), whose commits send
    /// the input offsets with the consumer group metadata in `group`. Initialising the id
    /// fences a producer an earlier run of the thread left behind and aborts what it left
    /// open.
    pub(crate) fn transactional(
        config: &StreamsConfig,
        metrics: Arc<Metrics>,
        transactional_id: &str,
        group: GroupMetadata,
        connectivity: ConnectivityReporter,
    ) -> Result<Self, Error> {
        let mut c = stream_producer_config(config)?;
        ConnectivityReporter::configure(&mut c, config);
        c.set("transactional.id", transactional_id);
        let timeout = match config.kafka.get("transaction.timeout.ms") {
            Some(t) => t.trim().parse().map_err(|_| Error::Config {
                field: "kafka",
                reason: format!("transaction.timeout.ms {t:?} is not a number"),
            })?,
            None => {
                let t = transaction_timeout_ms(config);
                c.set("transaction.timeout.ms", t.to_string());
                t
            }
        };
        // librdkafka refuses a transactional producer whose records may outlive its
        // transactions.
        let message_timeout: u128 = c
            .get("message.timeout.ms")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(timeout);
        if message_timeout > timeout {
            c.set("message.timeout.ms", timeout.to_string());
        }
        let producer: ThreadedProducer<DeliveryContext> = c
            .create_with_context(DeliveryContext::new(metrics, Some(connectivity)))
            .map_err(|e| kafka_error("create transactional producer", e))?;
        producer
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(|e| transaction_error("init transactions", e))?;
        tracing::info!(transactional_id, "transactional producer initialised");
        Ok(KafkaCollector {
            producer,
            next_id: AtomicUsize::new(1),
            max_bytes: message_max_bytes(config),
            partitions: HashMap::new(),
            transactions: Some(Transactions {
                group,
                open: false,
                id: transactional_id.to_string(),
            }),
        })
    }

    /// Begins a transaction if the collector is transactional and none is open.
    fn begin(&mut self) -> Result<(), Error> {
        if let Some(t) = &mut self.transactions
            && !t.open
        {
            self.producer
                .begin_transaction()
                .map_err(|e| transaction_error("begin transaction", e))?;
            t.open = true;
        }
        Ok(())
    }

    /// The producer's fatal error, if it has one.
    fn fatal(&self, operation: &'static str) -> Option<Error> {
        fatal_error(operation, self.producer.client().fatal_error())
    }

    /// Commits the open transaction, trying again while librdkafka says that may help.
    fn commit_open(&mut self) -> Result<(), Error> {
        let mut attempts = 0;
        loop {
            match self.producer.commit_transaction(TRANSACTION_TIMEOUT) {
                Ok(()) => return Ok(()),
                Err(e) if may_retry(&e) && attempts < 3 => {
                    attempts += 1;
                    tracing::warn!(error = %e, attempts, "committing the transaction again");
                }
                Err(e) => {
                    return Err(self
                        .fatal("commit transaction")
                        .unwrap_or_else(|| transaction_error("commit transaction", e)));
                }
            }
        }
    }

    fn produce(&mut self, record: OutRecord<'_>, opaque: usize) -> Result<(), Error> {
        self.begin()?;
        let headers = if record.headers.is_empty() {
            None
        } else {
            let mut h = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in record.headers.iter() {
                h = h.insert(Header { key, value });
            }
            Some(h)
        };
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(record.topic, opaque).timestamp(record.timestamp);
        if let Some(k) = record.key {
            base = base.key(k);
        }
        if let Some(v) = record.value {
            base = base.payload(v);
        }
        if let Some(p) = record.partition {
            base = base.partition(p);
        }
        if let Some(h) = headers {
            base = base.headers(h);
        }
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        loop {
            match self.producer.send(base) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if Instant::now() > deadline {
                        return Err(Error::Kafka {
                            operation: "produce",
                            code: Some(RDKafkaErrorCode::QueueFull),
                            retriable: true,
                            source: Box::new(KafkaFailure("the producer queue stayed full".into())),
                        });
                    }
                    // Backpressure: let the background thread deliver some records.
                    std::thread::sleep(Duration::from_millis(1));
                    base = back;
                }
                Err((e, _)) => {
                    let bytes = record_size(record.key, record.value, record.headers);
                    return Err(produce_error(record.topic, bytes, self.max_bytes, e));
                }
            }
        }
    }

    /// Waits until every record sent so far is acknowledged; fails if any was not.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| kafka_error("flush", e))?;
        if let Some((code, message)) = self.producer.context().failed.lock().take() {
            return Err(Error::Kafka {
                operation: "produce",
                code,
                retriable: false,
                source: Box::new(KafkaFailure(message)),
            });
        }
        Ok(())
    }
}

impl Collector for KafkaCollector {
    fn flush(&mut self) -> Result<(), Error> {
        KafkaCollector::flush(self)
    }

    fn commit_transaction(&mut self, offsets: &[(Arc<str>, i32, i64)]) -> Result<bool, Error> {
        if self.transactions.is_none() {
            return Ok(false);
        }
        if !offsets.is_empty() {
            self.begin()?;
            let tpl = offsets_list(offsets)?;
            let sent = match &self.transactions {
                Some(t) => t.group.with(|metadata| match metadata {
                    Some(metadata) => self
                        .producer
                        .send_offsets_to_transaction(&tpl, metadata, REQUEST_TIMEOUT)
                        .map_err(|e| transaction_error("send offsets to transaction", e)),
                    None => Err(Error::kafka_failure(
                        "send offsets to transaction",
                        "the stream thread's consumer has no group metadata",
                        true,
                    )),
                }),
                None => Ok(()),
            };
            if let Err(e) = sent {
                return Err(self.fatal("send offsets to transaction").unwrap_or(e));
            }
        }
        if self.transactions.as_ref().is_some_and(|t| t.open) {
            self.commit_open()?;
            if let Some(t) = &mut self.transactions {
                t.open = false;
                tracing::debug!(transactional_id = %t.id, offsets = offsets.len(), "transaction committed");
            }
        }
        Ok(true)
    }

    fn abort_transaction(&mut self) -> Result<bool, Error> {
        let Some(t) = &self.transactions else {
            return Ok(false);
        };
        let id = t.id.clone();
        if let Some(fatal) = self.fatal("abort transaction") {
            return Err(fatal);
        }
        if t.open {
            if let Err(e) = self.producer.abort_transaction(TRANSACTION_TIMEOUT) {
                return Err(self
                    .fatal("abort transaction")
                    .unwrap_or_else(|| transaction_error("abort transaction", e)));
            }
            tracing::warn!(transactional_id = %id, "transaction aborted");
        }
        if let Some(t) = &mut self.transactions {
            t.open = false;
        }
        // Records the abort purged report failed deliveries: they belong to the aborted
        // transaction, not to the next one.
        self.producer.context().failed.lock().take();
        self.producer.context().tracked.lock().clear();
        Ok(true)
    }
}

impl Drop for KafkaCollector {
    /// A transaction still open when the thread stops (it failed, or was aborted) is aborted,
    /// as far as the brokers allow, rather than left to `transaction.timeout.ms`.
    fn drop(&mut self) {
        if self.transactions.as_ref().is_some_and(|t| t.open)
            && self.fatal("abort transaction").is_none()
            && let Err(e) = self.producer.abort_transaction(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "could not abort the open transaction");
        }
    }
}

impl RecordCollector for KafkaCollector {
    fn send(&mut self, record: OutRecord<'_>) -> Result<(), Error> {
        self.produce(record, 0)
    }

    fn send_tracked(&mut self, record: OutRecord<'_>) -> Result<Delivery, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery::default();
        self.producer
            .context()
            .tracked
            .lock()
            .insert(id, delivery.clone());
        self.produce(record, id)?;
        Ok(delivery)
    }

    fn partition_count(&mut self, topic: &str) -> Result<i32, Error> {
        if let Some(count) = self.partitions.get(topic) {
            return Ok(*count);
        }
        // The first record a sink sends to a topic may come while the broker is away: wait for
        // it as Kafka Streams' `task.timeout.ms` does (its default, 5 minutes), rather than
        // fail the thread on the first timed-out metadata request.
        let deadline = Instant::now() + METADATA_RETRY_TIMEOUT;
        let metadata = loop {
            match self
                .producer
                .client()
                .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("fetch metadata", e))
            {
                Ok(metadata) => break metadata,
                Err(
                    e @ Error::Kafka {
                        retriable: true, ..
                    },
                ) if Instant::now() < deadline => {
                    tracing::warn!(topic, error = %e, "no metadata for an output topic yet; trying again");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        };
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|c| *c > 0)
            .ok_or_else(|| Error::Config {
                field: "topics",
                reason: format!("output topic {topic} does not exist"),
            })?;
        self.partitions.insert(topic.into(), count);
        Ok(count)
    }
}

/// Reads changelog partitions with a consumer of its own (manual assignment, no commits).
pub(crate) struct KafkaChangelogReader {
    consumer: BaseConsumer,
    names: TopicNames,
    metrics: Arc<Metrics>,
}

impl KafkaChangelogReader {
    pub(crate) fn new(config: &StreamsConfig, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let group = format!("{}-restore", config.application_id);
        let consumer = client_config(config, Role::AssignConsumer, Some(&group))?
            .create()
            .map_err(|e| kafka_error("create restore consumer", e))?;
        Ok(KafkaChangelogReader {
            consumer,
            names: TopicNames::default(),
            metrics,
        })
    }
}

impl ChangelogReader for KafkaChangelogReader {
    fn watermarks(&mut self, topic: &str, partition: i32) -> Result<(i64, i64), Error> {
        self.consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("fetch changelog offsets", e))
    }

    fn read(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(&RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let range = ChangelogRange {
            topic,
            partition,
            from,
            to,
        };
        self.read_many(&[range], &mut |_, record| f(record))
    }

    /// Assigns every range at once, so their fetches share requests instead of queueing
    /// behind each other's long polls.
    fn read_many(
        &mut self,
        ranges: &[ChangelogRange<'_>],
        f: &mut dyn FnMut(usize, &RawRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut done: Vec<bool> = ranges.iter().map(|r| r.from >= r.to).collect();
        let mut remaining = done.iter().filter(|d| !**d).count();
        if remaining == 0 {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for r in ranges.iter().filter(|r| r.from < r.to) {
            tpl.add_partition_offset(r.topic, r.partition, Offset::Offset(r.from))
                .map_err(|e| kafka_error("assign changelog", e))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| kafka_error("assign changelog", e))?;
        let names: Vec<Arc<str>> = ranges.iter().map(|r| self.names.get(r.topic)).collect();
        let mut idle_since = Instant::now();
        let result = loop {
            if remaining == 0 {
                break Ok(());
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    idle_since = Instant::now();
                    let Some(i) = ranges
                        .iter()
                        .position(|r| r.partition == m.partition() && r.topic == m.topic())
                    else {
                        continue;
                    };
                    if done[i] {
                        continue;
                    }
                    let to = ranges[i].to;
                    if m.offset() < to {
                        self.metrics.records_restored.incr();
                        if let Err(e) = f(i, &to_raw(&m, &names[i])) {
                            break Err(e);
                        }
                    }
                    if m.offset() + 1 >= to {
                        done[i] = true;
                        remaining -= 1;
                    }
                }
                Some(Err(e)) => break Err(kafka_error("read changelog", e)),
                None => {
                    // Compaction can leave a gap at the end: the positions tell.
                    if let Ok(positions) = self.consumer.position() {
                        for (i, r) in ranges.iter().enumerate() {
                            let reached = positions
                                .find_partition(r.topic, r.partition)
                                .and_then(|e| e.offset().to_raw())
                                .is_some_and(|p| p >= r.to);
                            if !done[i] && reached {
                                done[i] = true;
                                remaining -= 1;
                            }
                        }
                    }
                    if remaining > 0 && idle_since.elapsed() > REQUEST_TIMEOUT {
                        let behind: Vec<String> = ranges
                            .iter()
                            .zip(&done)
                            .filter(|(_, d)| !**d)
                            .map(|(r, _)| format!("{}/{} to offset {}", r.topic, r.partition, r.to))
                            .collect();
                        break Err(Error::kafka_failure(
                            "read changelog",
                            format!("no progress reading {}", behind.join(", ")),
                            true,
                        ));
                    }
                }
            }
        };
        let _ = self.consumer.unassign();
        result
    }
}

/// A metadata client for a series of look-ups (the topic checks at start-up): one client, so
/// one bootstrap connection, for all of them. Each new librdkafka client costs a connection and
/// its handshake, and dropping one waits for its threads.
pub(crate) struct MetadataClient {
    consumer: BaseConsumer,
}

impl MetadataClient {
    /// A client of the cluster `config` names (it connects on its first look-up).
    pub(crate) fn new(config: &StreamsConfig) -> Result<MetadataClient, Error> {
        let consumer = client_config(
            config,
            Role::AssignConsumer,
            Some(&format!("{}-metadata", config.application_id)),
        )?
        .create()
        .map_err(|e| kafka_error("create metadata client", e))?;
        Ok(MetadataClient { consumer })
    }

    /// Partition counts of the topics that exist, each from a fresh metadata request.
    pub(crate) fn partition_counts(
        &self,
        topics: &[Arc<str>],
    ) -> Result<HashMap<Arc<str>, i32>, Error> {
        let mut out = HashMap::new();
        for topic in topics {
            let metadata = self
                .consumer
                .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("fetch metadata", e))?;
            for t in metadata.topics() {
                if t.name() == &**topic && t.error().is_none() && !t.partitions().is_empty() {
                    out.insert(topic.clone(), t.partitions().len() as i32);
                }
            }
        }
        Ok(out)
    }
}

/// Drops a librdkafka client on a thread of its own: `rd_kafka_destroy` waits for the client's
/// threads to stop (about 100 ms), time a start-up need not spend waiting.
pub(crate) fn drop_in_background<T: Send + 'static>(client: T) {
    // When no thread starts, the closure, and the client with it, is dropped right here.
    let spawned = std::thread::Builder::new()
        .name("ow-stream-client-drop".into())
        .spawn(move || drop(client));
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no thread to drop a client on; dropped it in place");
    }
}

/// Partition counts of topics, from cluster metadata (a client of their own).
pub(crate) fn partition_counts(
    config: &StreamsConfig,
    topics: &[Arc<str>],
) -> Result<HashMap<Arc<str>, i32>, Error> {
    let client = MetadataClient::new(config)?;
    let counts = client.partition_counts(topics);
    drop_in_background(client);
    counts
}

/// Creates topics that do not exist yet. Brokers that cannot create topics (librdkafka's mock
/// cluster) leave the caller to check that they exist.
pub(crate) async fn create_topics(
    config: &StreamsConfig,
    topics: &[crate::admin::TopicSpec],
) -> Result<(), Error> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(config, Role::Admin, None)?
        .create()
        .map_err(|e| kafka_error("create admin client", e))?;
    let settings: Vec<Vec<(String, String)>> = topics.iter().map(|t| t.kafka_settings()).collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&settings)
        .map(|(t, settings)| {
            settings.iter().fold(
                NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1)),
                |new, (key, value)| new.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let created = admin.create_topics(new.iter(), &options).await;
    drop_in_background(admin);
    match created {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(name) => tracing::info!(topic = %name, "created internal topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        return Err(Error::Kafka {
                            operation: "create topics",
                            code: Some(code),
                            retriable: false,
                            source: Box::new(KafkaFailure(format!("{name}: {code}"))),
                        });
                    }
                }
            }
            Ok(())
        }
        Err(e) => {
            tracing::debug!(error = %e, "the cluster did not create topics");
            Ok(())
        }
    }
}

/// Builds a partition list of `(topic, partition, offset)`.
pub(crate) fn offsets_list(offsets: &[(Arc<str>, i32, i64)]) -> Result<TopicPartitionList, Error> {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| kafka_error("build offsets", e))?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProcessingGuarantee;

    #[test]
    fn stream_threads_producers_linger_unless_told_otherwise() {
        let config = StreamsConfig::new("app", Backend::kafka("h:1"));
        let linger = |c: ClientConfig| c.get("linger.ms").map(str::to_string);
        assert_eq!(
            linger(stream_producer_config(&config).unwrap()).as_deref(),
            Some(STREAM_LINGER_MS)
        );
        // The typed producer, whose callers await each send, keeps librdkafka's 5 ms.
        assert_eq!(
            linger(client_config(&config, Role::Producer, None).unwrap()).as_deref(),
            Some("5")
        );
        let told = config.with_kafka_setting("linger.ms", "0");
        assert_eq!(
            linger(stream_producer_config(&told).unwrap()).as_deref(),
            Some("0")
        );
    }

    #[test]
    fn exactly_once_consumers_read_committed_whatever_is_passed_through() {
        let alo = StreamsConfig::new("app", Backend::kafka("h:1"))
            .with_kafka_setting("isolation.level", "read_uncommitted")
            .with_kafka_setting("transactional.id", "mine");
        let eos = alo
            .clone()
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnce);
        for role in [Role::GroupConsumer, Role::AssignConsumer] {
            let c = client_config(&eos, role, None).unwrap();
            assert_eq!(c.get("isolation.level"), Some("read_committed"));
            // At least once leaves the pass-through setting alone, as before.
            let c = client_config(&alo, role, None).unwrap();
            assert_eq!(c.get("isolation.level"), Some("read_uncommitted"));
        }
        // Transactional ids are the library's under exactly-once (per stream thread); the
        // typed producer never gets one.
        assert_eq!(
            client_config(&eos, Role::Producer, None)
                .unwrap()
                .get("transactional.id"),
            None
        );
    }
}
