//! Records of `ow.players.profile`: what is known of a player, and how the latest fetch went.

use serde::{Deserialize, Serialize};

use crate::FetchOutcome;

/// Endorsement level and frame of a player.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// Endorsement level (0 when unknown).
    pub level: i32,
    /// URL of the frame of that level.
    pub frame: Option<String>,
}

/// The rank of one role on one platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompetitiveRank {
    /// OverFast platform key (`pc`, `console`, …).
    pub platform: String,
    /// OverFast role key (`tank`, `damage`, `support`, `open`, …).
    pub role: String,
    /// Division (`bronze` … `champion`).
    pub division: String,
    /// Tier inside the division, 1 (best) to 5.
    pub tier: i32,
    /// URL of the role icon.
    pub role_icon: Option<String>,
    /// URL of the division icon.
    pub rank_icon: Option<String>,
    /// URL of the tier icon.
    pub tier_icon: Option<String>,
    /// Competitive season of the platform, when sent.
    pub season: Option<i32>,
}

/// How the latest fetch of a player ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStatus {
    /// The outcome of the fetch.
    pub outcome: FetchOutcome,
    /// When it ended, in milliseconds since the epoch.
    pub fetched_at: i64,
    /// HTTP status of its last attempt; `None` when no answer came.
    pub http_status: Option<i32>,
    /// What went wrong, for outcomes other than ok and private.
    pub message: Option<String>,
    /// Earliest time the producer will ask again (a not-found's next check, `Retry-After`), in
    /// milliseconds since the epoch.
    pub next_check_at: Option<i64>,
}

/// What is known of a player (value of [`crate::topics::PLAYERS_PROFILE`], schema
/// [`crate::PLAYER_PROFILE_VALUE`], key = player id).
///
/// Profile fields come from the last fetch with a readable body; a failed, private or
/// not-found fetch updates [`PlayerProfile::status`] and never erases them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerProfile {
    /// Battletag in `Name-1234` form.
    pub player_id: String,
    /// Display name; `None` until a fetch returned one.
    pub username: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Namecard (banner) URL.
    pub namecard: Option<String>,
    /// Player title.
    pub title: Option<String>,
    /// Endorsement level and frame.
    pub endorsement: Option<Endorsement>,
    /// Ranked roles, in the order sent (platform, then role).
    pub competitive: Vec<CompetitiveRank>,
    /// When Blizzard last updated the profile, in milliseconds since the epoch, when known.
    pub last_updated_at: Option<i64>,
    /// `fetched_at` of the fetch the profile fields come from; `None` when no fetch had a
    /// readable body yet.
    pub profile_fetched_at: Option<i64>,
    /// The latest fetch.
    pub status: FetchStatus,
}
