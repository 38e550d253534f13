//! What the ow-stream Overwatch pipeline knows about Overwatch, in one place, so that the stages
//! cannot disagree about it: the player id, the OverFast body, stat units, the hero and stat keys
//! read by name, and the records written to the pipeline's topics.
//!
//! | module | what it holds | who uses it |
//! |---|---|---|
//! | [`battletag`] | [`PlayerId`](battletag::PlayerId), the validated `Name-1234` player id, and [`BattletagError`](battletag::BattletagError) | every stage |
//! | [`overfast`] | the model of OverFast's `GET /players/{id}` bodies: parsing, and which bodies are `ok`, `private` or not a player | the producer classifies with it, the processor reads with it |
//! | [`units`] | the [`StatUnit`] of a stat key, and whether a stat adds up | the processor |
//! | [`hero`], [`stat`] | the hero and stat keys the stages read by name ([`hero::ALL_HEROES`], [`stat::DAMAGE_KEYS`]…) | the processor, the dashboard |
//! | the crate root | one Rust type per Avro schema of the repository's `schemas/` folder, the schema text, and the topic names | every stage |
//!
//! The OverFast HTTP client is not here (it is the producer's), nor is any topology: only the
//! domain knowledge the stages share.
//!
//! # Records
//!
//! Topics are keyed by the player id (a battletag in `Name-1234` form, case preserved) written
//! as an Avro `string` ([`PLAYER_ID_KEY`]), except the two compacted tables that need one
//! record per sub-key: [`topics::STATS_BY_CATEGORY`] and [`topics::STATS_DAILY`] have Avro record
//! keys whose first field is the player id, and are partitioned by that field alone, so every
//! record of a player lands on the same partition number on every topic. Times are UTC
//! milliseconds since the Unix epoch (Avro `timestamp-millis`).
//!
//! | topic | key | value type | value schema |
//! |---|---|---|---|
//! | [`topics::PLAYER_REQUESTS`] | player id | [`PlayerRequest`] | [`PLAYER_REQUEST_VALUE`] |
//! | [`topics::RAW_PLAYER_PROFILES`] | player id | [`RawPlayerProfile`] | [`RAW_PLAYER_PROFILE_VALUE`] |
//! | [`topics::STATS_BY_CATEGORY`] | [`StatsCategoryKey`] ([`STATS_CATEGORY_KEY`]) | [`StatsByCategory`] | [`STATS_BY_CATEGORY_VALUE`] |
//! | [`topics::PLAYERS_PROFILE`] | player id | [`PlayerProfile`] | [`PLAYER_PROFILE_VALUE`] |
//! | [`topics::STATS_DELTAS`] | player id | [`StatsDelta`] | [`STATS_DELTA_VALUE`] |
//! | [`topics::STATS_DAILY`] | [`DailyStatsKey`] ([`DAILY_STATS_KEY`]) | [`DailyStats`] | [`DAILY_STATS_VALUE`] |
//!
//! The processor's `player-last-snapshot` store holds a [`PlayerSnapshot`] per player id
//! ([`PLAYER_SNAPSHOT_VALUE`]).
//!
//! ```
//! let schema = apache_avro::Schema::parse_str(ow_domain::RAW_PLAYER_PROFILE_VALUE).unwrap();
//! assert_eq!(schema.name().unwrap().fullname(None), "ow.raw.RawPlayerProfile");
//! ```

use serde::{Deserialize, Serialize};

pub mod battletag;
mod daily;
mod delta;
pub mod hero;
pub mod overfast;
mod profile;
mod snapshot;
pub mod stat;
mod stats;
pub mod units;

pub use daily::{DailyStats, DailyStatsKey};
pub use delta::StatsDelta;
pub use profile::{CompetitiveRank, Endorsement, FetchStatus, PlayerProfile};
pub use snapshot::{PlayerSnapshot, SnapshotEntry};
pub use stats::{StatUnit, StatValue, StatsByCategory, StatsCategoryKey};

/// The fixed topic names of the pipeline (a deployment may add a prefix).
pub mod topics {
    /// Someone asked for a player: written by the dashboard, read by the producer.
    pub const PLAYER_REQUESTS: &str = "ow.player-requests";
    /// One raw OverFast answer per fetch: written by the producer, read by the processor.
    pub const RAW_PLAYER_PROFILES: &str = "ow.raw.player-profiles";
    /// The stats of one category per snapshot (compacted): written by the processor.
    pub const STATS_BY_CATEGORY: &str = "ow.stats.by-category";
    /// What is known of each player (compacted): written by the processor.
    pub const PLAYERS_PROFILE: &str = "ow.players.profile";
    /// What each player gained between two snapshots: written by the processor.
    pub const STATS_DELTAS: &str = "ow.stats.deltas";
    /// A player's gains per UTC day (compacted): written by the processor.
    pub const STATS_DAILY: &str = "ow.stats.daily";
}

/// Schema of every pipeline key: the player id as an Avro string.
pub const PLAYER_ID_KEY: &str = include_str!("../../schemas/player-id-key.avsc");
/// Schema of [`PlayerRequest`].
pub const PLAYER_REQUEST_VALUE: &str = include_str!("../../schemas/ow.player-requests-value.avsc");
/// Schema of [`RawPlayerProfile`].
pub const RAW_PLAYER_PROFILE_VALUE: &str =
    include_str!("../../schemas/ow.raw.player-profiles-value.avsc");
/// Schema of [`StatsCategoryKey`], the key of [`topics::STATS_BY_CATEGORY`].
pub const STATS_CATEGORY_KEY: &str = include_str!("../../schemas/ow.stats.by-category-key.avsc");
/// Schema of [`StatsByCategory`].
pub const STATS_BY_CATEGORY_VALUE: &str =
    include_str!("../../schemas/ow.stats.by-category-value.avsc");
/// Schema of [`PlayerProfile`].
pub const PLAYER_PROFILE_VALUE: &str = include_str!("../../schemas/ow.players.profile-value.avsc");
/// Schema of [`StatsDelta`].
pub const STATS_DELTA_VALUE: &str = include_str!("../../schemas/ow.stats.deltas-value.avsc");
/// Schema of [`DailyStatsKey`], the key of [`topics::STATS_DAILY`].
pub const DAILY_STATS_KEY: &str = include_str!("../../schemas/ow.stats.daily-key.avsc");
/// Schema of [`DailyStats`].
pub const DAILY_STATS_VALUE: &str = include_str!("../../schemas/ow.stats.daily-value.avsc");
/// Schema of [`PlayerSnapshot`], the value of the processor's `player-last-snapshot` store.
pub const PLAYER_SNAPSHOT_VALUE: &str =
    include_str!("../../schemas/player-last-snapshot-value.avsc");

/// Why a player was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOrigin {
    /// A first look-up from the dashboard's search box.
    Search,
    /// The dashboard's "refresh now" button.
    Refresh,
    /// Added to the tracked players.
    Track,
    /// Anything else.
    Other,
    /// Someone looked at the player's page: keeps the player tracked, and fetches only when
    /// the producer's last answer is no longer fresh (a view of fresh data fetches nothing).
    /// Added after the first version of the schema: readers that predate it read `other`
    /// (the enum's default).
    View,
}

/// Someone asked for a player's profile (value of [`topics::PLAYER_REQUESTS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerRequest {
    /// Unique id of this request, echoed in the raw event it causes.
    pub request_id: String,
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// When it was asked, in milliseconds since the Unix epoch.
    pub requested_at: i64,
    /// Why it was asked.
    pub origin: RequestOrigin,
}

/// How a fetch from OverFast ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchOutcome {
    /// 200 with a public profile: a body [`overfast::PlayerBody::parse`] reads, whose `stats`
    /// is not `null`.
    Ok,
    /// 200 with a body [`overfast::PlayerBody::parse`] reads, with `"stats": null`: the profile
    /// is private.
    Private,
    /// 404: no such player (OverFast says when it will check again).
    NotFound,
    /// 429, or 503 with `Retry-After`, after the retries allowed.
    RateLimited,
    /// 5xx, timeout, connection error, an unreadable body, or a 200 whose body is not a player
    /// ([`overfast::BodyError`]), after the retries allowed.
    UpstreamError,
}

/// One fetch of `GET /players/{player_id}` (value of [`topics::RAW_PLAYER_PROFILES`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPlayerProfile {
    /// The request this fetch answered.
    pub request_id: String,
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// When the last attempt's answer arrived (or failed), in milliseconds since the epoch.
    pub fetched_at: i64,
    /// The URL asked.
    pub request_url: String,
    /// HTTP status of the last attempt; `None` when no answer came.
    pub http_status: Option<i32>,
    /// How the fetch ended.
    pub outcome: FetchOutcome,
    /// The response body, byte for byte; `None` when there was none.
    pub body: Option<String>,
    /// `Cache-Control: max-age` of the answer, in seconds.
    pub cache_max_age_secs: Option<i64>,
    /// `Age` of the answer, in seconds.
    pub cache_age_secs: Option<i64>,
    /// What went wrong, for outcomes other than ok and private.
    pub error: Option<String>,
    /// HTTP attempts made (retries included).
    pub attempts: i32,
    /// Earliest time the producer will ask about this player again, in milliseconds since the
    /// epoch.
    pub next_attempt_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses() {
        for s in [
            PLAYER_ID_KEY,
            PLAYER_REQUEST_VALUE,
            RAW_PLAYER_PROFILE_VALUE,
            STATS_CATEGORY_KEY,
            STATS_BY_CATEGORY_VALUE,
            PLAYER_PROFILE_VALUE,
            STATS_DELTA_VALUE,
            DAILY_STATS_KEY,
            DAILY_STATS_VALUE,
            PLAYER_SNAPSHOT_VALUE,
        ] {
            apache_avro::Schema::parse_str(s).unwrap();
        }
    }

    #[test]
    fn view_origin_is_an_additive_symbol() {
        use apache_avro::Schema;
        use apache_avro::reader::datum::GenericDatumReader;
        use apache_avro::types::Value;
        use apache_avro::writer::datum::GenericDatumWriter;

        let new = Schema::parse_str(PLAYER_REQUEST_VALUE).unwrap();
        // The schema before `view` was added.
        let old = Schema::parse_str(&PLAYER_REQUEST_VALUE.replace(r#", "view"]"#, "]")).unwrap();
        assert_ne!(old, new);
        let request = |origin| PlayerRequest {
            request_id: "r1".into(),
            player_id: "TeKrop-2217".into(),
            requested_at: 1_700_000_000_000,
            origin,
        };
        let encode = |schema: &Schema, request: &PlayerRequest| {
            GenericDatumWriter::builder(schema)
                .build()
                .unwrap()
                .write_ser_to_vec(request)
                .unwrap()
        };
        let read = |writer: &Schema, reader: &Schema, bytes: &[u8]| {
            GenericDatumReader::builder(writer)
                .reader_schema(reader)
                .build()
                .unwrap()
                .read_value(&mut &bytes[..])
                .unwrap()
        };
        // New readers read old data as it was…
        let old_bytes = encode(&old, &request(RequestOrigin::Search));
        let value = read(&old, &new, &old_bytes);
        assert_eq!(
            apache_avro::from_value::<PlayerRequest>(&value).unwrap(),
            request(RequestOrigin::Search)
        );
        // …and old readers read `view` as the enum's default, `other`.
        let view_bytes = encode(&new, &request(RequestOrigin::View));
        let Value::Record(fields) = read(&new, &old, &view_bytes) else {
            panic!("a record")
        };
        assert_eq!(fields[3].1, Value::Enum(3, "other".into()));
    }

    #[test]
    fn raw_profile_round_trips_through_its_schema() {
        let schema = apache_avro::Schema::parse_str(RAW_PLAYER_PROFILE_VALUE).unwrap();
        let event = RawPlayerProfile {
            request_id: "r1".into(),
            player_id: "TeKrop-2217".into(),
            fetched_at: 1_700_000_000_000,
            request_url: "https://overfast-api.tekrop.fr/players/TeKrop-2217".into(),
            http_status: Some(200),
            outcome: FetchOutcome::Private,
            body: Some("{}".into()),
            cache_max_age_secs: Some(600),
            cache_age_secs: None,
            error: None,
            attempts: 1,
            next_attempt_at: None,
        };
        let value = apache_avro::to_value(&event)
            .unwrap()
            .resolve(&schema)
            .unwrap();
        let back: RawPlayerProfile = apache_avro::from_value(&value).unwrap();
        assert_eq!(back, event);
    }
}
