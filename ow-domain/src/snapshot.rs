//! The processor's remembered snapshot of a player, from which deltas are computed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The additive stats of one hero (or `all-heroes`) in one platform and game mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// OverFast platform key.
    pub platform: String,
    /// OverFast game mode key.
    pub gamemode: String,
    /// OverFast hero key.
    pub hero: String,
    /// Stat key to value, additive stats only, all categories merged (first one sent wins).
    pub stats: BTreeMap<String, f64>,
}

/// The additive stats of the latest snapshot of a player (value of the processor's
/// `player-last-snapshot` store, key = player id, schema [`crate::PLAYER_SNAPSHOT_VALUE`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlayerSnapshot {
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// `fetched_at` of the raw event, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// `summary.last_updated_at` in milliseconds since the epoch, when sent.
    pub last_updated_at: Option<i64>,
    /// In the order of the body: platform, game mode, hero.
    pub entries: Vec<SnapshotEntry>,
}
