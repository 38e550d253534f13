//! Asking the pipeline for a player: [`PlayerRequest`]s written to `ow.player-requests`.

use async_trait::async_trait;
use ow_domain::battletag::PlayerId;
use ow_domain::{PlayerRequest, RequestOrigin};
use ow_stream_core::Topic;
use ow_stream_core::client::{Delivered, Producer};

use crate::Error;

/// Where the dashboard's player requests go.
///
/// The production implementation is [`ProducerRequests`]; tests capture requests with their
/// own.
#[async_trait]
pub trait PlayerRequests: Send + Sync + 'static {
    /// Writes `request`; returns where it was written when the backend says.
    async fn send(&self, request: PlayerRequest) -> Result<Option<Delivered>, Error>;
}

/// Writes requests to `ow.player-requests` with the library's typed [`Producer`], keyed by
/// player id.
pub struct ProducerRequests {
    producer: Producer,
    topic: Topic<String, PlayerRequest>,
}

impl ProducerRequests {
    /// Requests written by `producer` to `topic` (see [`Topics::requests`](crate::Topics)).
    pub fn new(producer: Producer, topic: Topic<String, PlayerRequest>) -> ProducerRequests {
        ProducerRequests { producer, topic }
    }
}

#[async_trait]
impl PlayerRequests for ProducerRequests {
    async fn send(&self, request: PlayerRequest) -> Result<Option<Delivered>, Error> {
        let key = request.player_id.clone();
        self.producer
            .send(&self.topic, &key, &request)
            .await
            .map(Some)
            .map_err(|source| Error::Request {
                player_id: key,
                source,
            })
    }
}

/// A new request for `id`, stamped `now` (milliseconds since the epoch), with a random id.
pub(crate) fn new_request(id: &PlayerId, origin: RequestOrigin, now: i64) -> PlayerRequest {
    PlayerRequest {
        request_id: format!("web-{:032x}", rand::random::<u128>()),
        player_id: id.as_str().to_owned(),
        requested_at: now,
        origin,
    }
}
