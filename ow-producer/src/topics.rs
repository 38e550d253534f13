//! The topics the producer reads and writes, typed, and the headers it writes.
//!
//! | topic | key | value | |
//! |---|---|---|---|
//! | `ow.player-requests` | player id (Avro string) | [`PlayerRequest`] | read, by the consumer group `<application id>` (answers) and, on the instance that schedules, by `<application id>-tracker-<epoch>` (views) |
//! | `ow.raw.player-profiles` | player id (Avro string) | [`RawPlayerProfile`] | written, one record per fetch, stamped with the fetch's `fetched_at` |
//! | `<application id>-dlq` (`ow-producer-dlq`) | as read | as read, byte for byte | written: requests that cannot be answered, with [`dead_letter_headers`] |
//!
//! The dashboard writes requests with [`Topics::requests`] too, so both sides agree on the
//! schemas.

use ow_domain::{
    PLAYER_ID_KEY, PLAYER_REQUEST_VALUE, PlayerRequest, RAW_PLAYER_PROFILE_VALUE, RawPlayerProfile,
    topics,
};
use ow_stream_core::Topic;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::AvroSerde;

use crate::error::ProducerError;

/// Headers of the dead-letter records: the names the streams library writes on its own dead
/// letters ([`ow_stream_core::processor::dead_letter_headers`]), so one tool reads both, and the
/// producer's own node name.
pub mod dead_letter_headers {
    pub use ow_stream_core::processor::dead_letter_headers::*;

    /// The value of [`NODE`] for requests whose player id is not a battletag.
    pub const VALIDATE_NODE: &str = "validate-request";
}

/// Headers of the raw events, besides the record itself.
pub mod raw_event_headers {
    /// The id of a request this fetch answered, once per request: the request that started
    /// the fetch and those coalesced into it before the event was written (a request that
    /// joins later is answered by the same event without being listed). The event's
    /// `request_id` field is the first of them.
    pub const REQUEST_ID: &str = "ow.request.id";
    /// Why the fetch was made: [`TRIGGER_REQUEST`] or [`TRIGGER_SCHEDULE`].
    pub const TRIGGER: &str = "ow.fetch.trigger";
    /// A request asked for the player.
    pub const TRIGGER_REQUEST: &str = "request";
    /// The refresh schedule of a tracked player (the event's `request_id` is then
    /// `schedule-<player id>-<milliseconds>`).
    pub const TRIGGER_SCHEDULE: &str = "schedule";
}

/// The producer's input and output topics, with Avro serdes over one schema registry.
///
/// ```
/// use ow_producer::topics::Topics;
/// use ow_stream_core::registry::SchemaRegistry;
///
/// let topics = Topics::new(&SchemaRegistry::mock("topics-doc"), "").unwrap();
/// assert_eq!(topics.requests.name(), "ow.player-requests");
/// assert_eq!(topics.raw.name(), "ow.raw.player-profiles");
/// let staging = Topics::new(&SchemaRegistry::mock("topics-doc"), "staging.").unwrap();
/// assert_eq!(staging.raw.name(), "staging.ow.raw.player-profiles");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Topics {
    /// `ow.player-requests`: key = player id, value = [`PlayerRequest`].
    pub requests: Topic<String, PlayerRequest>,
    /// `ow.raw.player-profiles`: key = player id, value = [`RawPlayerProfile`].
    pub raw: Topic<String, RawPlayerProfile>,
}

impl Topics {
    /// The topics named with `prefix` (empty for the standard names), reading and writing
    /// through `registry`.
    ///
    /// # Errors
    /// [`ProducerError::Schema`] if a schema cannot be loaded (a bug), and
    /// [`ProducerError::Config`] if the prefix makes a name that is not a topic name.
    pub fn new(registry: &SchemaRegistry, prefix: &str) -> Result<Topics, ProducerError> {
        let requests = format!("{prefix}{}", topics::PLAYER_REQUESTS);
        let raw = format!("{prefix}{}", topics::RAW_PLAYER_PROFILES);
        if !ow_stream_core::topic::is_valid_topic_name(&raw) {
            return Err(ProducerError::Config {
                setting: "topic_prefix",
                reason: format!("{prefix:?} makes {raw:?}, which is not a topic name"),
            });
        }
        let key = |schema| {
            AvroSerde::<String>::from_avsc(registry, PLAYER_ID_KEY)
                .map_err(|source| ProducerError::Schema { schema, source })
        };
        Ok(Topics {
            requests: Topic::new(
                requests,
                key("player-id-key")?,
                AvroSerde::<PlayerRequest>::from_avsc(registry, PLAYER_REQUEST_VALUE).map_err(
                    |source| ProducerError::Schema {
                        schema: "ow.player-requests-value",
                        source,
                    },
                )?,
            ),
            raw: Topic::new(
                raw,
                key("player-id-key")?,
                AvroSerde::<RawPlayerProfile>::from_avsc(registry, RAW_PLAYER_PROFILE_VALUE)
                    .map_err(|source| ProducerError::Schema {
                        schema: "ow.raw.player-profiles-value",
                        source,
                    })?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use ow_domain::RequestOrigin;
    use ow_stream_core::serde::Serde as _;

    use super::*;

    #[tokio::test]
    async fn the_view_symbol_is_a_compatible_change_of_the_request_schema() {
        let registry = SchemaRegistry::mock("producer-topics-compat");
        let old =
            apache_avro::Schema::parse_str(&PLAYER_REQUEST_VALUE.replace(r#", "view"]"#, "]"))
                .unwrap();
        registry
            .register("ow.player-requests-value", &old)
            .await
            .unwrap();
        let topics = Topics::new(&registry, "").unwrap();
        topics.requests.prepare().await.unwrap();
        let request = PlayerRequest {
            request_id: "r1".into(),
            player_id: "TeKrop-2217".into(),
            requested_at: 1,
            origin: RequestOrigin::View,
        };
        let bytes = topics.requests.serialize_value(&request).unwrap();
        assert_eq!(topics.requests.deserialize_value(&bytes).unwrap(), request);
        assert_eq!(
            topics.requests.value_serde().describe(),
            "avro(ow.requests.PlayerRequest)"
        );
    }

    #[test]
    fn a_prefix_that_breaks_topic_names_is_refused() {
        let registry = SchemaRegistry::mock("producer-topics-prefix");
        assert!(matches!(
            Topics::new(&registry, "bad prefix/"),
            Err(ProducerError::Config {
                setting: "topic_prefix",
                ..
            })
        ));
    }
}
