//! The topics the web stage reads and writes, bound to their Avro schemas: taken from the
//! stages that own them (the producer reads the requests, the processor writes the four
//! outputs), so that names, prefixes and serdes agree by construction.

use ow_domain::{
    DailyStats, DailyStatsKey, PlayerProfile, PlayerRequest, StatsByCategory, StatsCategoryKey,
    StatsDelta,
};
use ow_stream_core::Topic;
use ow_stream_core::registry::SchemaRegistry;

use crate::Error;

/// The pipeline topics the web stage uses.
///
/// ```
/// use ow_stream_core::registry::SchemaRegistry;
/// use ow_web::Topics;
///
/// let topics = Topics::new(&SchemaRegistry::mock("topics-doc"), "").unwrap();
/// assert_eq!(topics.profiles.name(), "ow.players.profile");
/// assert_eq!(topics.requests.name(), "ow.player-requests");
/// let staging = Topics::new(&SchemaRegistry::mock("topics-doc"), "staging.").unwrap();
/// assert_eq!(staging.daily.name(), "staging.ow.stats.daily");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Topics {
    /// `ow.player-requests`: written by the web (searches, refreshes, views).
    pub requests: Topic<String, PlayerRequest>,
    /// `ow.players.profile`: read as a table.
    pub profiles: Topic<String, PlayerProfile>,
    /// `ow.stats.by-category`: read and folded per player.
    pub stats_by_category: Topic<StatsCategoryKey, StatsByCategory>,
    /// `ow.stats.deltas`: read and folded per player.
    pub deltas: Topic<String, StatsDelta>,
    /// `ow.stats.daily`: read and folded per player.
    pub daily: Topic<DailyStatsKey, DailyStats>,
}

impl Topics {
    /// The topics named with `prefix` (empty for the standard names), with serdes over
    /// `registry`.
    pub fn new(registry: &SchemaRegistry, prefix: &str) -> Result<Topics, Error> {
        let producer = ow_producer::topics::Topics::new(registry, prefix)
            .map_err(|e| Error::Topics(Box::new(e)))?;
        let processor =
            ow_processor::Topics::new(registry, prefix).map_err(|e| Error::Topics(Box::new(e)))?;
        Ok(Topics {
            requests: producer.requests,
            profiles: processor.profiles,
            stats_by_category: processor.stats_by_category,
            deltas: processor.deltas,
            daily: processor.daily,
        })
    }
}
