//! The stat keys the pipeline reads by name.
//!
//! Every stat passes through the pipeline whatever its key (units come from the words of the key,
//! see [`crate::units`]); the keys here are the few that a stage reads on purpose: the named
//! fields of a [`StatsDelta`](crate::StatsDelta), and the columns of the dashboard's hero table.
//! Keys are OverFast's, as sent in `stats.<platform>.<gamemode>.career_stats.<hero>[].stats[].key`.
//!
//! ```
//! use ow_domain::stat::{self, DAMAGE_KEYS};
//!
//! // Blizzard's all-heroes totals have no `all_damage_done`: take the first key present.
//! let present = ["damage_done", "hero_damage_done"];
//! let damage = DAMAGE_KEYS.iter().find(|key| present.contains(key));
//! assert_eq!(damage, Some(&"damage_done"));
//! assert_eq!(stat::GAMES_PLAYED, "games_played");
//! ```

/// Games played.
pub const GAMES_PLAYED: &str = "games_played";
/// Games won.
pub const GAMES_WON: &str = "games_won";
/// Games lost.
pub const GAMES_LOST: &str = "games_lost";
/// Time played, in seconds.
pub const TIME_PLAYED: &str = "time_played";
/// Eliminations.
pub const ELIMINATIONS: &str = "eliminations";
/// Eliminations per 10 minutes played.
pub const ELIMINATIONS_AVG_PER_10_MIN: &str = "eliminations_avg_per_10_min";
/// Deaths.
pub const DEATHS: &str = "deaths";
/// Assists.
pub const ASSISTS: &str = "assists";
/// Healing done.
pub const HEALING_DONE: &str = "healing_done";
/// Win percentage (0–100).
pub const WIN_PERCENTAGE: &str = "win_percentage";

/// The keys of a hero's damage total, first present wins: `all_damage_done` where Blizzard
/// sends it, else `damage_done` (the all-heroes totals have no `all_damage_done`), else
/// `hero_damage_done`.
pub const DAMAGE_KEYS: [&str; 3] = ["all_damage_done", "damage_done", "hero_damage_done"];

/// The keys of a hero's damage per 10 minutes played, first present wins.
pub const DAMAGE_AVG_PER_10_MIN_KEYS: [&str; 2] = [
    "all_damage_done_avg_per_10_min",
    "hero_damage_done_avg_per_10_min",
];
