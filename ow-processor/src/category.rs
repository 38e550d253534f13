//! `ow.stats.by-category`: one record per (platform, game mode, hero, category) of a snapshot.
//!
//! Every category and stat of the body passes through as sent: nothing is filtered by name.
//! Unplayed heroes (`null`) and absent platforms or modes produce nothing; a stat whose value is
//! `null` is left out. When a key repeats inside a category (Blizzard sends Moira's
//! `games_won` three times) the **first** value wins — the first is the real total — and when a
//! category repeats for a hero, its stats are merged into one record the same way, so one key
//! never has two records in one snapshot.
//!
//! Records are keyed by [`ow_domain::StatsCategoryKey`] ([`StatsByCategory::key`]) and must be
//! partitioned by its player id; see that type for why.

use std::collections::BTreeMap;

use ow_domain::units::unit_of;
use ow_domain::{RawPlayerProfile, StatValue, StatsByCategory};

use crate::error::ProcessError;
use crate::fetch::PlayerFetch;

/// The `ow.stats.by-category` records of a raw event (none for a private profile or a failed
/// fetch): [`PlayerFetch::parse`] then [`PlayerFetch::stats_by_category`].
///
/// # Errors
/// As [`PlayerFetch::parse`].
pub fn stats_by_category(raw: &RawPlayerProfile) -> Result<Vec<StatsByCategory>, ProcessError> {
    Ok(PlayerFetch::parse(raw)?.stats_by_category())
}

impl PlayerFetch<'_> {
    /// The `ow.stats.by-category` records of this fetch, in body order (platform, game mode,
    /// hero, category); empty without stats.
    pub fn stats_by_category(&self) -> Vec<StatsByCategory> {
        let raw = self.raw();
        let mut records = Vec::new();
        for (platform, gamemode, hero, categories) in self.heroes() {
            let first_of_hero = records.len();
            for category in categories {
                let key = category.category.as_str();
                let existing = records[first_of_hero..]
                    .iter()
                    .position(|r: &StatsByCategory| r.category == key)
                    .map(|i| first_of_hero + i);
                let index = match existing {
                    Some(index) => index,
                    None => {
                        records.push(StatsByCategory {
                            player_id: raw.player_id.clone(),
                            snapshot_at: raw.fetched_at,
                            last_updated_at: self.last_updated_at(),
                            platform: platform.to_owned(),
                            gamemode: gamemode.to_owned(),
                            hero: hero.to_owned(),
                            category: key.to_owned(),
                            category_label: category
                                .label
                                .as_ref()
                                .map_or(key, |label| label.as_str())
                                .to_owned(),
                            stats: BTreeMap::new(),
                        });
                        records.len() - 1
                    }
                };
                let stats = &mut records[index].stats;
                for stat in category.stats.iter().flatten() {
                    let Some(value) = stat.value.0 else { continue };
                    let key = stat.key.as_str();
                    if !stats.contains_key(key) {
                        let label = stat.label.as_ref().map_or(key, |l| l.as_str());
                        let unit = unit_of(key);
                        stats.insert(
                            key.to_owned(),
                            StatValue {
                                value,
                                label: label.into(),
                                unit,
                            },
                        );
                    }
                }
            }
        }
        records
    }
}
