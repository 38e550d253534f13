//! The typed clients' local side: the writer thread of a producer, and a consumer that owns
//! every partition of its topic.

use async_trait::async_trait;

use super::{LocalConsumer, LocalWriter, to_new};
use crate::backend::{RawConsumer, RawProducer};
use crate::client::Delivered;
use crate::error::Error;
use crate::record::{Headers, RawRecord};

#[async_trait]
impl RawProducer for LocalWriter {
    async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<Delivered, Error> {
        // Queued here, before any await: sends keep their order, as on Kafka.
        let record = to_new(key, value, timestamp, headers);
        let (partition, offset) = LocalWriter::send(self, topic, record).await?;
        Ok(Delivered { partition, offset })
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
