//! Records of `ow.stats.by-category`: the stats of one category, keyed for compaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Key of [`crate::topics::STATS_BY_CATEGORY`] (schema [`crate::STATS_CATEGORY_KEY`]).
///
/// # Why a record key
/// Compaction must keep the latest record per (player, platform, game mode, hero, category), so
/// the key has to hold all five. An Avro record (rather than a delimited string such as
/// `TeKrop-2217|pc|competitive|ana|combat`) needs no delimiter that no player id, hero or category
/// may ever contain, carries its own documentation in the registry, and lets readers (the
/// dashboard) use the fields without parsing.
///
/// # Partitioning
/// Hashing the whole key would scatter a player's records over every partition. Producers of
/// this topic must partition by [`StatsCategoryKey::player_id`] alone, hashed exactly as a
/// player-id key ([`crate::PLAYER_ID_KEY`]) would be: then every record of a player lands on the
/// same partition number as the player's raw events, profile and deltas, and a consumer that owns
/// a player owns all of that player's data. [`StatsCategoryKey::partition_key`] returns the part
/// to hash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatsCategoryKey {
    /// Battletag in `Name-1234` form; the only field used for partitioning.
    pub player_id: String,
    /// OverFast platform key (`pc`, `console`, …).
    pub platform: String,
    /// OverFast game mode key (`quickplay`, `competitive`, …).
    pub gamemode: String,
    /// OverFast hero key; `all-heroes` holds the totals over every hero.
    pub hero: String,
    /// OverFast category key (`best`, `combat`, …).
    pub category: String,
}

impl StatsCategoryKey {
    /// The part of the key to partition by: the player id.
    pub fn partition_key(&self) -> &str {
        &self.player_id
    }
}

/// The unit of a stat, inferred from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatUnit {
    /// A plain number of things (eliminations, games, cards…); the default.
    Count,
    /// A duration in seconds (`time_played`, `objective_time`…).
    Seconds,
    /// A percentage between 0 and 100 (`win_percentage`, `weapon_accuracy`…).
    Percent,
    /// An average per 10 minutes played (`*_avg_per_10_min`).
    #[serde(rename = "per_10_min")]
    Per10Min,
    /// A ratio of two counts (`eliminations_per_life`, `kda`).
    Ratio,
}

/// One stat of a category: its value, label and unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatValue {
    /// The value; durations in seconds, percentages in percent (0–100).
    pub value: f64,
    /// Display label as sent (the key when none was sent).
    pub label: String,
    /// Unit inferred from the key.
    pub unit: StatUnit,
}

/// The stats of one category of one hero in one platform and game mode, as of one snapshot
/// (value of [`crate::topics::STATS_BY_CATEGORY`], schema [`crate::STATS_BY_CATEGORY_VALUE`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsByCategory {
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// `fetched_at` of the raw event, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// When Blizzard last updated the profile, in milliseconds since the epoch, when sent.
    pub last_updated_at: Option<i64>,
    /// OverFast platform key.
    pub platform: String,
    /// OverFast game mode key.
    pub gamemode: String,
    /// OverFast hero key (`all-heroes` included).
    pub hero: String,
    /// OverFast category key.
    pub category: String,
    /// Display label of the category (the key when none was sent).
    pub category_label: String,
    /// Stat key to stat; a key repeated inside a category keeps its first value.
    pub stats: BTreeMap<String, StatValue>,
}

impl StatsByCategory {
    /// The compaction key of this record.
    pub fn key(&self) -> StatsCategoryKey {
        StatsCategoryKey {
            player_id: self.player_id.clone(),
            platform: self.platform.clone(),
            gamemode: self.gamemode.clone(),
            hero: self.hero.clone(),
            category: self.category.clone(),
        }
    }
}
