//! The state kept between snapshots: a [`PlayerSnapshot`] per player in the
//! `player-last-snapshot` store.
//!
//! # What is kept
//! Only what deltas need: per (platform, game mode, hero) a map of **additive** stat key → value
//! ([`ow_domain::units::is_additive`]), all categories merged (a key repeated across or inside
//! categories keeps its first value, as in `ow.stats.by-category`). Records, averages,
//! percentages and ratios are left out, which makes the state about half the size of the stats.
//! It is an Avro record ([`ow_domain::PLAYER_SNAPSHOT_VALUE`]) and plain serde, so any store
//! serde will do.
//!
//! # When to replace it
//! Store the new snapshot when [`supersedes`] says so, after computing deltas against the old
//! one. A fetch without stats (private profile, failed fetch, empty `stats`) has no snapshot and
//! leaves the stored one alone: when the profile becomes public again, its counters are compared
//! with the last ones seen, instead of being taken for a whole career played in one day.

use std::collections::{BTreeMap, HashMap};

use ow_domain::units::is_additive;
use ow_domain::{PlayerSnapshot, RawPlayerProfile, SnapshotEntry};

use crate::error::ProcessError;
use crate::fetch::PlayerFetch;

/// The snapshot of a raw event, `None` when it carries no stats: [`PlayerFetch::parse`] then
/// [`PlayerFetch::snapshot`].
///
/// # Errors
/// As [`PlayerFetch::parse`].
pub fn snapshot_of(raw: &RawPlayerProfile) -> Result<Option<PlayerSnapshot>, ProcessError> {
    Ok(PlayerFetch::parse(raw)?.snapshot())
}

/// Whether `current` should replace `previous` in the store: always when there is none;
/// otherwise when its `last_updated_at` is later (both known), or — when either is unknown —
/// when it was fetched later. The same snapshot delivered twice, or an older one, does not.
///
/// [`crate::compute_deltas`] yields deltas only for a snapshot that supersedes the previous one.
pub fn supersedes(previous: Option<&PlayerSnapshot>, current: &PlayerSnapshot) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    match (previous.last_updated_at, current.last_updated_at) {
        (Some(before), Some(now)) => now > before,
        _ => current.snapshot_at > previous.snapshot_at,
    }
}

impl PlayerFetch<'_> {
    /// The snapshot of this fetch: its additive stats per (platform, game mode, hero), in body
    /// order. `None` when the fetch carries no stats, or only `null`s.
    pub fn snapshot(&self) -> Option<PlayerSnapshot> {
        let mut entries: Vec<SnapshotEntry> = Vec::new();
        // A hero sent twice under one mode (a repeated JSON key) is one entry, first value wins.
        let mut index_of: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for (platform, gamemode, hero, categories) in self.heroes() {
            let index = *index_of
                .entry((platform, gamemode, hero))
                .or_insert_with(|| {
                    entries.push(SnapshotEntry {
                        platform: platform.to_owned(),
                        gamemode: gamemode.to_owned(),
                        hero: hero.to_owned(),
                        stats: BTreeMap::new(),
                    });
                    entries.len() - 1
                });
            let stats = &mut entries[index].stats;
            let all = categories.iter().flat_map(|c| c.stats.iter().flatten());
            for stat in all {
                let (key, Some(value)) = (stat.key.as_str(), stat.value.0) else {
                    continue;
                };
                if is_additive(key) && !stats.contains_key(key) {
                    stats.insert(key.to_owned(), value);
                }
            }
        }
        if entries.is_empty() {
            return None;
        }
        let raw = self.raw();
        Some(PlayerSnapshot {
            player_id: raw.player_id.clone(),
            snapshot_at: raw.fetched_at,
            last_updated_at: self.last_updated_at(),
            entries,
        })
    }
}
