//! Records of `ow.stats.daily`: a player's gains per UTC day.

use serde::{Deserialize, Serialize};

/// Key of [`crate::topics::STATS_DAILY`] (schema [`crate::DAILY_STATS_KEY`]): one compacted
/// record per (player, platform, game mode, UTC day).
///
/// As for [`crate::StatsCategoryKey`], producers must partition by
/// [`DailyStatsKey::player_id`] alone ([`DailyStatsKey::partition_key`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DailyStatsKey {
    /// Battletag in `Name-1234` form; the only field used for partitioning.
    pub player_id: String,
    /// OverFast platform key.
    pub platform: String,
    /// OverFast game mode key.
    pub gamemode: String,
    /// Start of the UTC day (inclusive), in milliseconds since the epoch.
    pub window_start: i64,
}

impl DailyStatsKey {
    /// The part of the key to partition by: the player id.
    pub fn partition_key(&self) -> &str {
        &self.player_id
    }
}

/// Sums of a player's `all-heroes` deltas over one UTC day, per platform and game mode (value
/// of [`crate::topics::STATS_DAILY`], schema [`crate::DAILY_STATS_VALUE`]).
///
/// The [`Default`] value is an empty accumulator that has not seen a delta yet (empty player id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// OverFast platform key.
    pub platform: String,
    /// OverFast game mode key.
    pub gamemode: String,
    /// Start of the UTC day (inclusive), in milliseconds since the epoch.
    pub window_start: i64,
    /// End of the UTC day (exclusive): `window_start + 86_400_000`.
    pub window_end: i64,
    /// Games played.
    pub games_played: f64,
    /// Games won.
    pub games_won: f64,
    /// Games lost.
    pub games_lost: f64,
    /// Time played, in seconds.
    pub time_played: f64,
    /// Eliminations.
    pub eliminations: f64,
    /// Deaths.
    pub deaths: f64,
    /// Damage done.
    pub damage: f64,
    /// Healing done.
    pub healing: f64,
    /// How many `all-heroes` deltas were summed.
    pub delta_count: i32,
    /// Latest `snapshot_at` among the summed deltas, in milliseconds since the epoch.
    pub last_snapshot_at: i64,
}

impl DailyStats {
    /// The compaction key of this record.
    pub fn key(&self) -> DailyStatsKey {
        DailyStatsKey {
            player_id: self.player_id.clone(),
            platform: self.platform.clone(),
            gamemode: self.gamemode.clone(),
            window_start: self.window_start,
        }
    }
}
