//! The typed clients' Kafka side: a `FutureProducer` and a `StreamConsumer`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::{
    Role, TopicNames, client_config, kafka_error, message_max_bytes, offsets_list, produce_error,
    record_size, to_raw,
};
use crate::backend::{Ack, RawConsumer, RawProducer};
use crate::client::Delivered;
use crate::config::StreamsConfig;
use crate::error::Error;
use crate::record::{Headers, RawRecord};

/// An idempotent producer, and the largest record it may send (`message.max.bytes`).
pub(crate) struct KafkaProducer {
    producer: FutureProducer,
    max_bytes: u64,
}

impl KafkaProducer {
    pub(crate) fn new(config: &StreamsConfig) -> Result<KafkaProducer, Error> {
        let producer = client_config(config, Role::Producer, None)?
            .create()
            .map_err(|e| kafka_error("create producer", e))?;
        Ok(KafkaProducer {
            producer,
            max_bytes: message_max_bytes(config),
        })
    }
}

#[async_trait]
impl RawProducer for KafkaProducer {
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        timestamp: i64,
        headers: &'a Headers,
    ) -> Ack<'a> {
        Ack::Pending(Box::pin(
            self.send_now(topic, key, value, timestamp, headers),
        ))
    }

    async fn flush(&self) -> Result<(), Error> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60)))
            .await
            .map_err(|e| Error::Closed {
                reason: format!("flush task: {e}"),
            })?
            .map_err(|e| kafka_error("flush", e))
    }
}

impl KafkaProducer {
    /// Sends a record, waiting (up to 30 s) while librdkafka's queue is full, then for the
    /// broker's acknowledgement.
    async fn send_now(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<Delivered, Error> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).timestamp(timestamp);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(headers.len());
            for (key, value) in headers.iter() {
                h = h.insert(Header { key, value });
            }
            record = record.headers(h);
        }
        match self.producer.send(record, Duration::from_secs(30)).await {
            Ok(d) => Ok(Delivered {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(produce_error(
                topic,
                record_size(key, value, headers),
                self.max_bytes,
                e,
            )),
        }
    }
}

/// A group member subscribed to one topic. Commits are asynchronous; the latest ones are
/// remembered so that closing can make them durable.
pub(crate) struct KafkaConsumer {
    consumer: StreamConsumer,
    topic: Arc<str>,
    names: Mutex<TopicNames>,
    /// The latest offsets committed asynchronously, by partition, for `close`.
    committed: Mutex<HashMap<i32, i64>>,
}

impl KafkaConsumer {
    pub(crate) fn subscribe(
        config: &StreamsConfig,
        group: &str,
        topic: Arc<str>,
    ) -> Result<KafkaConsumer, Error> {
        let consumer: StreamConsumer = client_config(config, Role::GroupConsumer, Some(group))?
            .create()
            .map_err(|e| kafka_error("create consumer", e))?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| kafka_error("subscribe", e))?;
        Ok(KafkaConsumer {
            consumer,
            topic,
            names: Mutex::new(TopicNames::default()),
            committed: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl RawConsumer for KafkaConsumer {
    async fn next(&self) -> Result<RawRecord, Error> {
        match self.consumer.recv().await {
            Ok(m) => {
                let topic = self.names.lock().get(m.topic());
                Ok(to_raw(&m, &topic))
            }
            Err(e) => Err(kafka_error("consume", e)),
        }
    }

    fn commit(&self, partition: i32, next_offset: i64) -> Result<(), Error> {
        let tpl = offsets_list(&[(self.topic.clone(), partition, next_offset)])?;
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| kafka_error("commit offsets", e))?;
        let mut committed = self.committed.lock();
        let next = committed.entry(partition).or_insert(0);
        *next = (*next).max(next_offset);
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), Error> {
        let KafkaConsumer {
            consumer,
            topic,
            committed,
            ..
        } = *self;
        let committed = committed.into_inner();
        // Both the commit and leaving the group wait on the broker: not on a runtime thread.
        tokio::task::spawn_blocking(move || {
            // Only partitions still assigned: another member may have committed further in
            // the others since they moved.
            let assigned = consumer.assignment().unwrap_or_default();
            let offsets: Vec<(Arc<str>, i32, i64)> = committed
                .into_iter()
                .filter(|(partition, _)| assigned.find_partition(&topic, *partition).is_some())
                .map(|(partition, next)| (topic.clone(), partition, next))
                .collect();
            // The list holds references to the consumer's partitions: closing the consumer
            // waits for them to be released.
            drop(assigned);
            let committed = if offsets.is_empty() {
                Ok(())
            } else {
                offsets_list(&offsets).and_then(|tpl| {
                    consumer
                        .commit(&tpl, CommitMode::Sync)
                        .map_err(|e| kafka_error("commit offsets", e))
                })
            };
            // Dropping the consumer closes it: it leaves the group.
            drop(consumer);
            committed
        })
        .await
        .map_err(|e| Error::Closed {
            reason: format!("closing the consumer: {e}"),
        })?
    }
}
