//! One fetch and the write of its raw event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ow_domain::FetchOutcome;
use ow_domain::battletag::PlayerId;
use ow_stream_core::client::Producer;
use ow_stream_core::{Headers, Record, Topic};

use super::{Done, lock};
use crate::error::ProducerError;
use crate::overfast::OverfastClient;
use crate::topics::raw_event_headers as raw_headers;
use crate::tracking::refetch_wait_ms;

/// One fetch and the write of its raw event.
pub(super) struct FetchJob {
    pub(super) client: OverfastClient,
    pub(super) producer: Producer,
    pub(super) topic: Topic<String, ow_domain::RawPlayerProfile>,
    pub(super) player: PlayerId,
    pub(super) request_id: String,
    pub(super) request_ids: Arc<Mutex<Vec<String>>>,
    pub(super) scheduled: bool,
    pub(super) halted: Arc<AtomicBool>,
}

impl FetchJob {
    pub(super) async fn run(self) -> Done {
        let fetch = self.client.fetch(&self.player).await;
        // Aborted as a crash would: a fetch that ends afterwards writes nothing.
        if self.halted.load(Ordering::SeqCst) {
            return Done::Halted;
        }
        let event = fetch.into_raw(self.request_id);
        let wait_ms = refetch_wait_ms(&event);
        let mut headers = Headers::new();
        for id in lock(&self.request_ids).iter() {
            headers = headers.with(raw_headers::REQUEST_ID, id.clone());
        }
        headers = headers.with(
            raw_headers::TRIGGER,
            if self.scheduled {
                raw_headers::TRIGGER_SCHEDULE
            } else {
                raw_headers::TRIGGER_REQUEST
            },
        );
        let timestamp = event.fetched_at;
        let mut record =
            Record::new(self.player.to_string(), event, timestamp).with_headers(headers);
        let delivery = |source| ProducerError::Delivery {
            topic: self.topic.name().to_owned(),
            key: self.player.to_string(),
            source: Box::new(source),
        };
        let result = match self.producer.send_record(&self.topic, &record).await {
            Ok(_) => Ok(()),
            // Larger than the backend takes (librdkafka's `MessageSizeTooLarge`, the local
            // log's batch limit).
            Err(e @ ow_stream_core::Error::RecordTooLarge { .. }) => {
                // The answer cannot be kept: say so in an event the topic takes, rather than
                // stopping on a player whose profile will never fit.
                let len = record.value.body.as_ref().map_or(0, String::len);
                tracing::warn!(player = %self.player, bytes = len, error = %e,
                    "the answer is too large for the raw topic; writing the event without its body");
                record.value.body = None;
                record.value.outcome = FetchOutcome::UpstreamError;
                record.value.error = Some(format!(
                    "the answer ({len} bytes) is larger than topic {} accepts: {e}",
                    self.topic.name()
                ));
                self.producer
                    .send_record(&self.topic, &record)
                    .await
                    .map(|_| ())
                    .map_err(delivery)
            }
            Err(e) => Err(delivery(e)),
        };
        Done::Fetched {
            player: self.player,
            outcome: record.value.outcome,
            wait_ms,
            result,
        }
    }
}
