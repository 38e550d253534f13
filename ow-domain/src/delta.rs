//! Records of `ow.stats.deltas`: what a player gained between two snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one hero (or `all-heroes`) gained in one platform and game mode between two snapshots
/// of a player (value of [`crate::topics::STATS_DELTAS`], schema [`crate::STATS_DELTA_VALUE`],
/// key = player id).
///
/// Only additive stats count: counts and durations, never averages, percentages, ratios or
/// bests. The named fields are 0 when their stat did not change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsDelta {
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// OverFast platform key.
    pub platform: String,
    /// OverFast game mode key.
    pub gamemode: String,
    /// OverFast hero key; `all-heroes` holds the totals over every hero.
    pub hero: String,
    /// `snapshot_at` of the snapshot compared against, in milliseconds since the epoch.
    pub previous_snapshot_at: i64,
    /// `snapshot_at` (raw `fetched_at`) of the new snapshot: the event time of the delta.
    pub snapshot_at: i64,
    /// `last_updated_at` of the snapshot compared against.
    pub previous_last_updated_at: Option<i64>,
    /// `last_updated_at` of the new snapshot.
    pub last_updated_at: Option<i64>,
    /// Change of `games_played`.
    pub games_played: f64,
    /// Change of `games_won`.
    pub games_won: f64,
    /// Change of `games_lost`.
    pub games_lost: f64,
    /// Change of `time_played`, in seconds.
    pub time_played: f64,
    /// Change of `eliminations`.
    pub eliminations: f64,
    /// Change of `deaths`.
    pub deaths: f64,
    /// Change of the first of `all_damage_done`, `damage_done`, `hero_damage_done` present in
    /// the new snapshot.
    pub damage: f64,
    /// Change of `healing_done`.
    pub healing: f64,
    /// Every additive stat that went up, by stat key (the named ones included).
    pub stats: BTreeMap<String, f64>,
}
