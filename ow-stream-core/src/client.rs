//! Typed producers and consumers, for applications that read or write topics directly.
//!
//! ```no_run
//! use ow_stream_core::client::{Consumer, Producer};
//! use ow_stream_core::config::{Backend, StreamsConfig};
//! use ow_stream_core::Topic;
//!
//! # async fn demo() -> Result<(), ow_stream_core::Error> {
//! let config = StreamsConfig::new("greeter", Backend::kafka("localhost:9092"));
//! let greetings: Topic<String, String> = Topic::json("greetings");
//! let producer = Producer::new(&config)?;
//! let delivered = producer.send(&greetings, &"ada".into(), &"hello".into()).await?;
//! println!("written to partition {} at offset {}", delivered.partition, delivered.offset);
//!
//! let consumer = Consumer::subscribe(&config, "greeting-readers", &greetings)?;
//! if let Some(record) = consumer.next().await {
//!     let record = record?;
//!     println!("{} says {}", record.record.key, record.record.value);
//!     consumer.commit(&record.metadata)?;
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::backend::{RawConsumer, RawProducer};
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::record::{Headers, RawRecord, Record, RecordMetadata};
use crate::serde::{SerdeContext, SerdeError, deserialize_loading};
use crate::topic::Topic;

/// Where a record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// A typed producer: encodes keys and values with a topic's serdes and waits for the broker's
/// acknowledgement. Idempotent (no duplicates from its own retries), with Kafka's default
/// (murmur2) partitioner. Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<dyn RawProducer>,
}

impl Producer {
    /// A producer for the configured backend.
    pub fn new(config: &StreamsConfig) -> Result<Producer, Error> {
        Ok(Producer {
            inner: crate::backend::connect(config)?.producer()?,
        })
    }

    /// Writes `key` and `value` to `topic`, stamped with the current time.
    pub async fn send<K: 'static, V: 'static>(
        &self,
        topic: &Topic<K, V>,
        key: &K,
        value: &V,
    ) -> Result<Delivered, Error> {
        let now = crate::runtime::now_ms();
        self.send_record_ref(topic, key, value, now, &Headers::new())
            .await
    }

    /// Writes a record (its timestamp and headers included).
    pub async fn send_record<K: 'static, V: 'static>(
        &self,
        topic: &Topic<K, V>,
        record: &Record<K, V>,
    ) -> Result<Delivered, Error> {
        self.send_record_ref(
            topic,
            &record.key,
            &record.value,
            record.timestamp,
            &record.headers,
        )
        .await
    }

    async fn send_record_ref<K: 'static, V: 'static>(
        &self,
        topic: &Topic<K, V>,
        key: &K,
        value: &V,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<Delivered, Error> {
        let encode_err = |source| Error::Serialize {
            topic: topic.shared_name(),
            source,
        };
        let key_ctx = SerdeContext::key(topic.name());
        let value_ctx = SerdeContext::value(topic.name());
        topic
            .key_serde()
            .prepare(key_ctx)
            .await
            .map_err(encode_err)?;
        topic
            .value_serde()
            .prepare(value_ctx)
            .await
            .map_err(encode_err)?;
        let k = topic
            .key_serde()
            .serialize(key_ctx, key)
            .map_err(encode_err)?;
        let v = topic
            .value_serde()
            .serialize(value_ctx, value)
            .map_err(encode_err)?;
        self.send_raw(topic.name(), Some(&k), Some(&v), timestamp, headers)
            .await
    }

    /// Writes bytes as they are (a tombstone when `value` is `None`).
    ///
    /// A record larger than the backend accepts fails with [`Error::RecordTooLarge`].
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<Delivered, Error> {
        self.inner
            .send(topic, key, value, timestamp, headers)
            .wait()
            .await
    }

    /// Waits until every record sent is acknowledged.
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.flush().await
    }
}

/// A record read by a [`Consumer`], with where it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumedRecord<K, V> {
    /// The decoded record.
    pub record: Record<K, V>,
    /// Topic, partition and offset.
    pub metadata: RecordMetadata,
}

/// A typed consumer of one topic, in a consumer group. Offsets are committed explicitly with
/// [`Consumer::commit`] (at-least-once); [`Consumer::close`] makes the last commits durable
/// and leaves the group.
pub struct Consumer<K, V> {
    inner: Box<dyn RawConsumer>,
    topic: Topic<K, V>,
}

impl<K: 'static, V: 'static> Consumer<K, V> {
    /// Joins `group` and subscribes to `topic`. A group with no committed offsets starts from
    /// the earliest record.
    pub fn subscribe(
        config: &StreamsConfig,
        group: &str,
        topic: &Topic<K, V>,
    ) -> Result<Self, Error> {
        Ok(Consumer {
            inner: crate::backend::connect(config)?.consumer(group, topic.shared_name())?,
            topic: topic.clone(),
        })
    }

    /// The next record. A record that cannot be decoded comes back as
    /// [`Error::Deserialize`], with its topic, partition and offset and the record itself byte
    /// for byte ([`Error::raw_record`]), to dead-letter it unchanged; the next call goes on
    /// with the record after it.
    ///
    /// ```no_run
    /// # use ow_stream_core::client::{Consumer, Producer};
    /// # async fn demo(consumer: Consumer<String, i64>, producer: Producer) -> Result<(), ow_stream_core::Error> {
    /// while let Some(next) = consumer.next().await {
    ///     let metadata = match next {
    ///         Ok(record) => record.metadata,
    ///         Err(e) => {
    ///             let Some(raw) = e.raw_record() else { return Err(e) };
    ///             producer
    ///                 .send_raw("scores-dlq", raw.key.as_deref(), raw.value.as_deref(), raw.timestamp, &raw.headers)
    ///                 .await?;
    ///             raw.metadata()
    ///         }
    ///     };
    ///     consumer.commit(&metadata)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next(&self) -> Option<Result<ConsumedRecord<K, V>, Error>> {
        let raw = match self.next_raw().await? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        Some(self.decode(raw).await)
    }

    /// The next record, undecoded.
    pub async fn next_raw(&self) -> Option<Result<RawRecord, Error>> {
        Some(self.inner.next().await)
    }

    async fn decode(&self, raw: RawRecord) -> Result<ConsumedRecord<K, V>, Error> {
        let metadata = raw.metadata();
        let decoded = async {
            let key = deserialize_loading(
                &**self.topic.key_serde(),
                SerdeContext::key(self.topic.name()),
                raw.key.as_deref().unwrap_or_default(),
            )
            .await?;
            let Some(value_bytes) = raw.value.as_deref() else {
                return Err(SerdeError::Malformed {
                    format: "record",
                    reason: "a tombstone (null value)".into(),
                });
            };
            let value = deserialize_loading(
                &**self.topic.value_serde(),
                SerdeContext::value(self.topic.name()),
                value_bytes,
            )
            .await?;
            Ok((key, value))
        }
        .await;
        let (key, value) = match decoded {
            Ok(kv) => kv,
            Err(source) => {
                return Err(Error::Deserialize {
                    topic: metadata.topic.clone(),
                    partition: metadata.partition,
                    offset: metadata.offset,
                    source,
                    record: Some(Box::new(raw)),
                });
            }
        };
        Ok(ConsumedRecord {
            record: Record {
                key,
                value,
                timestamp: raw.timestamp,
                headers: raw.headers,
            },
            metadata,
        })
    }

    /// Commits that `record` (and everything before it in its partition) was handled. On
    /// Kafka the commit is asynchronous: [`Consumer::close`] makes the latest ones durable.
    pub fn commit(&self, record: &RecordMetadata) -> Result<(), Error> {
        self.inner.commit(record.partition, record.offset + 1)
    }

    /// Closes the consumer: commits the latest offsets given to [`Consumer::commit`] once more,
    /// synchronously (so none of the asynchronous commits can be lost), then leaves the group,
    /// whose other members take its partitions over at once. Commits on the local log are
    /// durable when made; closing it only releases it.
    pub async fn close(self) -> Result<(), Error> {
        self.inner.close().await
    }

    /// The topic this consumer reads.
    pub fn topic(&self) -> &Topic<K, V> {
        &self.topic
    }
}
