//! The typed clients' local side: the writer thread of a producer, and a consumer that owns
//! every partition of its topic.

use async_trait::async_trait;

use super::{LocalConsumer, LocalWriter, to_new};
use crate::backend::{Ack, RawConsumer, RawProducer};
use crate::error::Error;
use crate::record::{Headers, RawRecord};

#[async_trait]
impl RawProducer for LocalWriter {
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        timestamp: i64,
        headers: &'a Headers,
    ) -> Ack<'a> {
        // Queued now: sends keep their order, as on Kafka.
        Ack::Reply(self.enqueue(topic, to_new(key, value, timestamp, headers)))
    }

    async fn flush(&self) -> Result<(), Error> {
        // Local appends are durable when `send` returns.
        Ok(())
    }
}

#[async_trait]
impl RawConsumer for LocalConsumer {
    async fn next(&self) -> Result<RawRecord, Error> {
        LocalConsumer::next(self).await
    }

    fn commit(&self, partition: i32, next_offset: i64) -> Result<(), Error> {
        LocalConsumer::commit(self, partition, next_offset)
    }

    async fn close(self: Box<Self>) -> Result<(), Error> {
        // Commits on the local log are durable when made; closing only releases the log.
        Ok(())
    }
}
