//! `ow.stats.deltas`: what a player gained between two snapshots.
//!
//! # Rules of [`compute_deltas`]
//! * **When.** Only a snapshot that [supersedes] the previous one yields
//!   deltas: its `last_updated_at` moved forward, or, when either is unknown, it was fetched
//!   later (and then only stats that changed count). The same snapshot delivered twice, or an
//!   older one, yields nothing. The first snapshot of a player is the baseline and yields nothing.
//! * **What.** Additive stats only ([`ow_domain::units::is_additive`]: counts and seconds, not
//!   averages, percentages, ratios or records), every one of them, not a fixed list; a delta
//!   lists each one that went up in [`StatsDelta::stats`] and fills the named fields (games
//!   played/won/lost, time played, eliminations, deaths, damage, healing) from it. `damage` is
//!   the first of [`DAMAGE_KEYS`] (`all_damage_done`, `damage_done`, `hero_damage_done`) that the
//!   hero's new stats have (Blizzard's all-heroes totals have no `all_damage_done`).
//! * **One delta per (platform, game mode, hero)** that gained something, `all-heroes`
//!   included, so per-hero deltas and the all-heroes delta overlap: sum only one of them.
//! * **Absent before.** A hero absent from the previous snapshot of a known platform and mode
//!   was unplayed: it counts from zero, and so does a stat key new to a known hero (Blizzard
//!   leaves out zero stats). A platform and mode absent from the previous snapshot is a new
//!   baseline instead (no deltas): a whole mode appearing at once is more likely data that was
//!   hidden than a career played since the last fetch. A stat, hero or mode that disappears is
//!   ignored.
//! * **Decreasing counters.** When any stat of a (platform, mode, hero) went down, its counters
//!   were reset (a profile or season reset) or corrected: that entry yields no delta at all —
//!   neither negative values nor a mix of old and new counters — and, once stored, the lower
//!   values are the new baseline. Other entries of the same snapshot are unaffected.
//! * **Event time.** A delta carries both snapshots' times; it belongs to the day of its
//!   `snapshot_at` (the fetch), see [`crate::daily`].

use std::collections::{BTreeMap, HashMap, HashSet};

use ow_domain::stat::{self, DAMAGE_KEYS};
use ow_domain::{PlayerSnapshot, SnapshotEntry, StatsDelta};

use crate::snapshot::supersedes;

/// The deltas from `previous` to `current`, in the order of `current`'s entries (see the
/// [module docs](self) for the rules). Snapshots of two different players have no deltas.
///
/// ```
/// use std::collections::BTreeMap;
/// use ow_processor::compute_deltas;
/// use ow_domain::{PlayerSnapshot, SnapshotEntry};
///
/// let snapshot = |at: i64, games: f64| PlayerSnapshot {
///     player_id: "Someone-1234".into(),
///     snapshot_at: at,
///     last_updated_at: Some(at - 1000),
///     entries: vec![SnapshotEntry {
///         platform: "pc".into(),
///         gamemode: "quickplay".into(),
///         hero: "all-heroes".into(),
///         stats: BTreeMap::from([("games_played".to_string(), games)]),
///     }],
/// };
/// let (before, after) = (snapshot(10_000, 40.0), snapshot(20_000, 43.0));
/// let deltas = compute_deltas(Some(&before), &after);
/// assert_eq!(deltas.len(), 1);
/// assert_eq!(deltas[0].games_played, 3.0);
/// assert!(compute_deltas(Some(&after), &after).is_empty());
/// assert!(compute_deltas(None, &after).is_empty());
/// ```
pub fn compute_deltas(
    previous: Option<&PlayerSnapshot>,
    current: &PlayerSnapshot,
) -> Vec<StatsDelta> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    if previous.player_id != current.player_id || !supersedes(Some(previous), current) {
        return Vec::new();
    }
    let mut modes: HashSet<(&str, &str)> = HashSet::new();
    let mut before: HashMap<(&str, &str, &str), &SnapshotEntry> = HashMap::new();
    for entry in &previous.entries {
        modes.insert((&entry.platform, &entry.gamemode));
        before
            .entry((&entry.platform, &entry.gamemode, &entry.hero))
            .or_insert(entry);
    }
    current
        .entries
        .iter()
        .filter(|entry| modes.contains(&(entry.platform.as_str(), entry.gamemode.as_str())))
        .filter_map(|entry| {
            let old = before.get(&(
                entry.platform.as_str(),
                entry.gamemode.as_str(),
                entry.hero.as_str(),
            ));
            delta_of(previous, current, old.copied(), entry)
        })
        .collect()
}

/// The delta of one entry, `None` when nothing went up or something went down.
fn delta_of(
    previous: &PlayerSnapshot,
    current: &PlayerSnapshot,
    old: Option<&SnapshotEntry>,
    new: &SnapshotEntry,
) -> Option<StatsDelta> {
    let mut stats = BTreeMap::new();
    for (key, &now) in &new.stats {
        let before = old
            .and_then(|old| old.stats.get(key))
            .copied()
            .unwrap_or(0.0);
        let gained = now - before;
        if gained < 0.0 {
            return None;
        }
        if gained > 0.0 {
            stats.insert(key.clone(), gained);
        }
    }
    if stats.is_empty() {
        return None;
    }
    let get = |key: &str| stats.get(key).copied().unwrap_or(0.0);
    let damage = DAMAGE_KEYS
        .iter()
        .find(|key| new.stats.contains_key(**key))
        .map_or(0.0, |key| get(key));
    Some(StatsDelta {
        player_id: current.player_id.clone(),
        platform: new.platform.clone(),
        gamemode: new.gamemode.clone(),
        hero: new.hero.clone(),
        previous_snapshot_at: previous.snapshot_at,
        snapshot_at: current.snapshot_at,
        previous_last_updated_at: previous.last_updated_at,
        last_updated_at: current.last_updated_at,
        games_played: get(stat::GAMES_PLAYED),
        games_won: get(stat::GAMES_WON),
        games_lost: get(stat::GAMES_LOST),
        time_played: get(stat::TIME_PLAYED),
        eliminations: get(stat::ELIMINATIONS),
        deaths: get(stat::DEATHS),
        damage,
        healing: get(stat::HEALING_DONE),
        stats,
    })
}
