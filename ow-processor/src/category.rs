//! `ow.stats.by-category`: one record per (platform, game mode, hero, category) of a snapshot.
//!
//! Every category and stat of the body passes through as sent: nothing is filtered by name.
//! Unplayed heroes (`null`) and absent platforms or modes produce nothing; a stat whose value is
//! `null` is left out. When a key repeats inside a category (Blizzard sends Moira's
//! `games_won` three times) the **first** value wins — the first is the real total — and when a
//! category repeats for a hero (or the hero itself repeats in a mode), its stats are merged into
//! one record the same way, so one key never has two records in one snapshot.
//!
//! Records are keyed by [`ow_domain::StatsCategoryKey`] ([`StatsByCategory::key`]) and must be
//! partitioned by its player id; see that type for why.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

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
        // Where each (platform, mode, hero, category) went: a hero sent twice under one mode
        // (a JSON object with a repeated key) merges into its first records too.
        let mut index_of: HashMap<(&str, &str, &str, &str), usize> = HashMap::new();
        for (platform, gamemode, hero, categories) in self.heroes() {
            for category in categories {
                let key = category.category.as_str();
                let index = match index_of.entry((platform, gamemode, hero, key)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        e.insert(records.len());
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

#[cfg(test)]
mod tests {
    use ow_domain::{FetchOutcome, RawPlayerProfile};

    use crate::PlayerFetch;

    /// Found by the `overfast_body` fuzz target (`fuzz/regressions/overfast_body/
    /// hero-twice-in-one-mode.json`): a hero key repeated in one mode's object gave two
    /// records, and two snapshot entries, for the same key.
    #[test]
    fn a_hero_sent_twice_in_one_mode_is_one_record_per_category() {
        let body = r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {
            "ana": [{"category": "game", "stats": [{"key": "games_played", "value": 3}]}],
            "all-heroes": [{"category": "game", "stats": [{"key": "games_played", "value": 9}]}],
            "ana": [{"category": "game", "stats": [{"key": "games_played", "value": 5},
                                                   {"key": "games_won", "value": 2}]},
                    {"category": "combat", "stats": [{"key": "deaths", "value": 1}]}]}}}}}"#;
        let raw = RawPlayerProfile {
            request_id: "r".into(),
            player_id: "Ana-1234".into(),
            fetched_at: 1,
            request_url: "http://127.0.0.1/players/Ana-1234".into(),
            http_status: Some(200),
            outcome: FetchOutcome::Ok,
            body: Some(body.into()),
            cache_max_age_secs: None,
            cache_age_secs: None,
            error: None,
            attempts: 1,
            next_attempt_at: None,
        };
        let fetch = PlayerFetch::parse(&raw).unwrap();
        let records = fetch.stats_by_category();
        let keys: Vec<_> = records.iter().map(|r| (&*r.hero, &*r.category)).collect();
        assert_eq!(
            keys,
            [("ana", "game"), ("all-heroes", "game"), ("ana", "combat")]
        );
        let ana = &records[0].stats;
        assert_eq!(ana["games_played"].value, 3.0, "the first value wins");
        assert_eq!(
            ana["games_won"].value, 2.0,
            "the repeat's new stats merge in"
        );
        let snapshot = fetch.snapshot().unwrap();
        let heroes: Vec<_> = snapshot.entries.iter().map(|e| &*e.hero).collect();
        assert_eq!(heroes, ["ana", "all-heroes"]);
        assert_eq!(snapshot.entries[0].stats["games_played"], 3.0);
    }
}
