//! The web stage's own view of the pipeline: a topology that reads the processor's four output
//! topics into the web's stores, so that a page is a handful of lookups.
//!
//! | store | input | key → value | how |
//! |---|---|---|---|
//! | [`PROFILES_STORE`] | `ow.players.profile` | player id → [`PlayerProfile`](ow_domain::PlayerProfile) | the topic read as a table |
//! | [`CATEGORIES_STORE`] | `ow.stats.by-category` | [`StatsCategoryKey`] → [`StatsByCategory`] | the newest record per player, platform, mode, hero and category (the topic as a table that ignores late copies) |
//! | [`STATS_INDEX_STORE`] | `ow.stats.by-category` | player id → [`PlayerStatsIndex`] | which platforms, modes, heroes and categories a player has, folded per player |
//! | [`DELTAS_STORE`] | `ow.stats.deltas` | player id → [`PlayerDeltas`] | the latest snapshot's delta per platform, mode and hero, folded per player |
//! | [`HISTORY_STORE`] | `ow.stats.daily` | player id → [`PlayerHistory`] | the daily series per platform and mode (latest value per day), folded per player |
//!
//! ```text
//! ow.players.profile ──table──────────────────────────────────────────▶ player-profiles
//! ow.stats.by-category ─group_by_key─reduce(newest)───────────────────────▶ player-categories
//!                          └─to_stream─group_by(player id)─▶ repartition ─aggregate─▶ player-stats-index
//! ow.stats.deltas ────────────────────────────group_by_key─aggregate─▶ player-deltas
//! ow.stats.daily ───────group_by(player id)─▶ repartition ─aggregate─▶ player-history
//! ```
//!
//! # Why the stats are not one value per player
//! A snapshot of a player is several hundred category records (278 for the recorded
//! `TeKrop-2217`). Folding them into one value per player rewrites that whole value, and its
//! changelog record, for every record: for the sample, 263 KB × 278 per snapshot, about 55 MB
//! of changelog and half a second of CPU per snapshot and player. The stats are therefore kept
//! as the table they are (one small write per record), next to a small per-player index of the
//! keys (about 1.5 KB) that tells a page which records to read; [`StoreRepository`] assembles
//! a [`PlayerStats`] from the two, and keeps it until the index changes. (A prefix scan of the
//! table — its JSON keys start with the player id — would find the same records; the index also
//! serves as the version of the assembled stats.)
//!
//! # Why two repartition topics
//! `ow.stats.by-category` and `ow.stats.daily` have record keys. Their schema asks writers to
//! partition them by the key's player id alone, and ow-processor does
//! (`Produced::with_partition_key_of`), but the web does not rely on how another application
//! partitioned a topic: folding them per player regroups them by player id through
//! `ow-web-stats-by-player-repartition` and `ow-web-daily-by-player-repartition`, so a writer
//! that partitions by the whole key cannot leave a part of a player in each partition (where a
//! lookup would find only one part). The player-id-keyed topics need no such step, and
//! neither does the category table (a lookup finds a key in whichever partition holds it).
//!
//! # Serdes
//! Stores hold strings or JSON, so reading them (interactive queries from the HTTP handlers)
//! never waits on the schema registry. Their changelogs are `ow-web-<store>-changelog`.
//!
//! # Replays and order
//! Input is at-least-once: a record may come twice, and a re-delivered older record must not
//! hide a newer one. Every fold keeps the record with the latest `snapshot_at` (or
//! `last_snapshot_at` for days), so replays change nothing.
//!
//! [`StoreRepository`]: crate::StoreRepository

use std::collections::{BTreeMap, BTreeSet};

use ow_domain::{DailyStats, StatValue, StatsByCategory, StatsCategoryKey, StatsDelta};
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{StreamsBuilder, Topology};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::topics::Topics;

/// The web stage's application id: its consumer group and the prefix of its changelogs.
pub const APPLICATION_ID: &str = "ow-web";
/// Store of [`PlayerProfile`](ow_domain::PlayerProfile) by player id.
pub const PROFILES_STORE: &str = "player-profiles";
/// Store of [`StatsByCategory`] by [`StatsCategoryKey`].
pub const CATEGORIES_STORE: &str = "player-categories";
/// Store of [`PlayerStatsIndex`] by player id.
pub const STATS_INDEX_STORE: &str = "player-stats-index";
/// Store of [`PlayerDeltas`] by player id.
pub const DELTAS_STORE: &str = "player-deltas";
/// Store of [`PlayerHistory`] by player id.
pub const HISTORY_STORE: &str = "player-history";
/// Days of history kept per platform and game mode.
pub const HISTORY_DAYS: usize = 120;

/// The game modes of a platform in a [`PlayerStatsIndex`]: mode key to what it holds.
pub type IndexModes = BTreeMap<String, ModeIndex>;

/// What one platform and game mode of a player holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeIndex {
    /// Latest `snapshot_at` of its records, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// Its heroes (`all-heroes` included).
    pub heroes: BTreeSet<String>,
    /// The categories any of its heroes has: a hero's records are looked up for each.
    pub categories: BTreeSet<String>,
}

/// Which platforms, game modes, heroes and categories of a player `ow.stats.by-category`
/// holds (value of [`STATS_INDEX_STORE`]): what a page needs to read the player's records from
/// [`CATEGORIES_STORE`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerStatsIndex {
    /// Battletag in `Name-1234` form (empty until the first record).
    pub player_id: String,
    /// Latest `snapshot_at` of any record, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// `last_updated_at` of that snapshot.
    pub last_updated_at: Option<i64>,
    /// Platform key to its game modes.
    pub platforms: BTreeMap<String, IndexModes>,
    /// Category records folded in so far, copies included: it changes whenever the player's
    /// records in [`CATEGORIES_STORE`] may have, so a page can keep an assembled
    /// [`PlayerStats`] for as long as it stays the same.
    #[serde(default)]
    pub records: u64,
}

impl PlayerStatsIndex {
    /// Notes one record's key and time.
    pub fn apply(mut self, record: &StatsByCategory) -> PlayerStatsIndex {
        if self.player_id.is_empty() {
            self.player_id = record.player_id.clone();
        }
        self.records = self.records.wrapping_add(1);
        let mode = self
            .platforms
            .entry(record.platform.clone())
            .or_default()
            .entry(record.gamemode.clone())
            .or_default();
        mode.snapshot_at = mode.snapshot_at.max(record.snapshot_at);
        mode.heroes.insert(record.hero.clone());
        mode.categories.insert(record.category.clone());
        if record.snapshot_at >= self.snapshot_at {
            self.snapshot_at = record.snapshot_at;
            self.last_updated_at = record.last_updated_at;
        }
        self
    }

    /// Every key the index says may hold a record, platform by platform.
    pub fn keys(&self) -> Vec<StatsCategoryKey> {
        let mut keys = Vec::new();
        for (platform, modes) in &self.platforms {
            for (gamemode, mode) in modes {
                for hero in &mode.heroes {
                    for category in &mode.categories {
                        keys.push(StatsCategoryKey {
                            player_id: self.player_id.clone(),
                            platform: platform.clone(),
                            gamemode: gamemode.clone(),
                            hero: hero.clone(),
                            category: category.clone(),
                        });
                    }
                }
            }
        }
        keys
    }
}

/// The stats of one category of one hero, as of one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// Display label of the category.
    pub label: String,
    /// When the snapshot these stats come from was fetched, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// Stat key to stat.
    pub stats: BTreeMap<String, StatValue>,
}

/// The stats of every hero in one platform and game mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeStats {
    /// Latest `snapshot_at` among the categories, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// Hero key (`all-heroes` included) to category key to stats.
    pub heroes: BTreeMap<String, BTreeMap<String, CategoryStats>>,
}

/// Everything `ow.stats.by-category` says of one player: the latest record per platform, game
/// mode, hero and category, assembled from [`CATEGORIES_STORE`] with the
/// [`PlayerStatsIndex`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerStats {
    /// Battletag in `Name-1234` form (empty until the first record).
    pub player_id: String,
    /// Latest `snapshot_at` of any record, in milliseconds since the epoch.
    pub snapshot_at: i64,
    /// `last_updated_at` of that snapshot.
    pub last_updated_at: Option<i64>,
    /// Platform key to game mode key to stats.
    pub platforms: BTreeMap<String, BTreeMap<String, ModeStats>>,
}

impl PlayerStats {
    /// Folds one record in; an older copy of a record already held changes nothing.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use ow_domain::StatsByCategory;
    /// use ow_web::materialize::PlayerStats;
    ///
    /// let record = |at| StatsByCategory {
    ///     player_id: "Someone-1234".into(),
    ///     snapshot_at: at,
    ///     last_updated_at: None,
    ///     platform: "pc".into(),
    ///     gamemode: "quickplay".into(),
    ///     hero: "all-heroes".into(),
    ///     category: "game".into(),
    ///     category_label: "Game".into(),
    ///     stats: BTreeMap::new(),
    /// };
    /// let stats = PlayerStats::default().apply(record(2_000)).apply(record(1_000));
    /// assert_eq!(stats.snapshot_at, 2_000);
    /// assert_eq!(stats.mode("pc", "quickplay").unwrap().heroes["all-heroes"]["game"].snapshot_at, 2_000);
    /// ```
    pub fn apply(mut self, record: StatsByCategory) -> PlayerStats {
        if self.player_id.is_empty() {
            self.player_id = record.player_id.clone();
        }
        let mode = self
            .platforms
            .entry(record.platform)
            .or_default()
            .entry(record.gamemode)
            .or_default();
        let categories = mode.heroes.entry(record.hero).or_default();
        if categories
            .get(&record.category)
            .is_some_and(|held| held.snapshot_at > record.snapshot_at)
        {
            return self;
        }
        mode.snapshot_at = mode.snapshot_at.max(record.snapshot_at);
        categories.insert(
            record.category,
            CategoryStats {
                label: record.category_label,
                snapshot_at: record.snapshot_at,
                stats: record.stats,
            },
        );
        if record.snapshot_at >= self.snapshot_at {
            self.snapshot_at = record.snapshot_at;
            self.last_updated_at = record.last_updated_at;
        }
        self
    }

    /// The stats of one platform and game mode.
    pub fn mode(&self, platform: &str, gamemode: &str) -> Option<&ModeStats> {
        self.platforms.get(platform)?.get(gamemode)
    }
}

/// The deltas of the latest snapshot of each platform and game mode of one player, by hero
/// (value of [`DELTAS_STORE`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerDeltas {
    /// Battletag in `Name-1234` form (empty until the first delta).
    pub player_id: String,
    /// Platform key to game mode key to hero key to its delta.
    pub platforms: BTreeMap<String, BTreeMap<String, BTreeMap<String, StatsDelta>>>,
}

impl PlayerDeltas {
    /// Folds one delta in. The deltas of a newer snapshot of a platform and game mode replace
    /// those held for it (a page only shows the changes of the latest snapshot), and a delta
    /// older than those held changes nothing.
    pub fn apply(mut self, delta: StatsDelta) -> PlayerDeltas {
        if self.player_id.is_empty() {
            self.player_id = delta.player_id.clone();
        }
        let heroes = self
            .platforms
            .entry(delta.platform.clone())
            .or_default()
            .entry(delta.gamemode.clone())
            .or_default();
        let held = heroes.values().map(|d| d.snapshot_at).max();
        match held {
            Some(at) if at > delta.snapshot_at => return self,
            Some(at) if at < delta.snapshot_at => heroes.clear(),
            _ => {}
        }
        heroes.insert(delta.hero.clone(), delta);
        self
    }

    /// The latest delta of a hero in one platform and game mode.
    pub fn get(&self, platform: &str, gamemode: &str, hero: &str) -> Option<&StatsDelta> {
        self.platforms.get(platform)?.get(gamemode)?.get(hero)
    }
}

/// The daily series of one player per platform and game mode (value of [`HISTORY_STORE`]):
/// at most [`HISTORY_DAYS`] days each, the latest value of each day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerHistory {
    /// Battletag in `Name-1234` form (empty until the first day).
    pub player_id: String,
    /// Platform key to game mode key to day start (milliseconds since the epoch) to its sums.
    pub platforms: BTreeMap<String, BTreeMap<String, BTreeMap<i64, DailyStats>>>,
}

impl PlayerHistory {
    /// Folds one day in: it replaces the day held unless that one has seen later snapshots.
    /// The oldest days go beyond [`HISTORY_DAYS`].
    pub fn apply(mut self, day: DailyStats) -> PlayerHistory {
        if self.player_id.is_empty() {
            self.player_id = day.player_id.clone();
        }
        let days = self
            .platforms
            .entry(day.platform.clone())
            .or_default()
            .entry(day.gamemode.clone())
            .or_default();
        let newer = days.get(&day.window_start).is_none_or(|held| {
            (held.last_snapshot_at, held.delta_count) <= (day.last_snapshot_at, day.delta_count)
        });
        if newer {
            days.insert(day.window_start, day);
        }
        while days.len() > HISTORY_DAYS {
            days.pop_first();
        }
        self
    }

    /// The days of one platform and game mode, oldest first.
    pub fn days(&self, platform: &str, gamemode: &str) -> Vec<&DailyStats> {
        self.platforms
            .get(platform)
            .and_then(|modes| modes.get(gamemode))
            .map(|days| days.values().collect())
            .unwrap_or_default()
    }
}

/// The newer of two records of one key (the held one on a tie, so replays write the same).
fn newest(held: StatsByCategory, new: StatsByCategory) -> StatsByCategory {
    if new.snapshot_at > held.snapshot_at {
        new
    } else {
        held
    }
}

/// The materialization topology over `topics` (see the [module docs](self)).
///
/// ```
/// use ow_stream_core::registry::SchemaRegistry;
/// use ow_web::Topics;
/// use ow_web::materialize::{self, CATEGORIES_STORE};
///
/// let topics = Topics::new(&SchemaRegistry::mock("materialize-doc"), "").unwrap();
/// let topology = materialize::topology(&topics).unwrap();
/// let description = topology.describe();
/// // The profile table, the deltas, and for each repartitioned input a writer and a reader.
/// assert_eq!(description.subtopologies.len(), 6);
/// assert_eq!(description.stores.len(), 5);
/// assert!(description.stores.iter().any(|s| s.name == CATEGORIES_STORE));
/// ```
pub fn topology(topics: &Topics) -> Result<Topology, Error> {
    let builder = StreamsBuilder::new();

    builder.table(
        &topics.profiles,
        Materialized::as_(PROFILES_STORE)
            .with_key_serde(StringSerde)
            .with_value_serde(JsonSerde::new()),
    );

    builder
        .stream(&topics.stats_by_category)
        .group_by_key()
        .reduce(
            newest,
            Materialized::as_(CATEGORIES_STORE)
                .with_key_serde(JsonSerde::<StatsCategoryKey>::new())
                .with_value_serde(JsonSerde::new()),
        )
        .to_stream()
        .group_by(
            |key, _| key.player_id.clone(),
            Grouped::as_("stats-by-player")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        )
        .aggregate(
            PlayerStatsIndex::default,
            |_, record, index: PlayerStatsIndex| index.apply(&record),
            Materialized::as_(STATS_INDEX_STORE)
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        );

    builder.stream(&topics.deltas).group_by_key().aggregate(
        PlayerDeltas::default,
        |_, delta, deltas: PlayerDeltas| deltas.apply(delta),
        Materialized::as_(DELTAS_STORE)
            .with_key_serde(StringSerde)
            .with_value_serde(JsonSerde::new()),
    );

    builder
        .stream(&topics.daily)
        .group_by(
            |key, _| key.player_id.clone(),
            Grouped::as_("daily-by-player")
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        )
        .aggregate(
            PlayerHistory::default,
            |_, day, history: PlayerHistory| history.apply(day),
            Materialized::as_(HISTORY_STORE)
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new()),
        );

    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(start: i64, games: f64, last: i64, count: i32) -> DailyStats {
        DailyStats {
            player_id: "Someone-1234".into(),
            platform: "pc".into(),
            gamemode: "competitive".into(),
            window_start: start,
            window_end: start + 86_400_000,
            games_played: games,
            delta_count: count,
            last_snapshot_at: last,
            ..DailyStats::default()
        }
    }

    #[test]
    fn history_keeps_latest_value_per_day_and_a_bounded_series() {
        let h = PlayerHistory::default()
            .apply(day(0, 3.0, 10, 1))
            .apply(day(0, 5.0, 20, 2))
            .apply(day(0, 3.0, 10, 1));
        assert_eq!(h.days("pc", "competitive").len(), 1);
        assert_eq!(h.days("pc", "competitive")[0].games_played, 5.0);
        assert_eq!(h.player_id, "Someone-1234");
        let mut h = PlayerHistory::default();
        for i in 0..(HISTORY_DAYS as i64 + 5) {
            h = h.apply(day(i * 86_400_000, 1.0, i, 1));
        }
        let days = h.days("pc", "competitive");
        assert_eq!(days.len(), HISTORY_DAYS);
        assert_eq!(days[0].window_start, 5 * 86_400_000);
        assert!(h.days("console", "competitive").is_empty());
    }

    #[test]
    fn the_index_lists_keys() {
        let record = |hero: &str, category: &str, at: i64| StatsByCategory {
            player_id: "Someone-1234".into(),
            snapshot_at: at,
            last_updated_at: Some(at - 1),
            platform: "pc".into(),
            gamemode: "quickplay".into(),
            hero: hero.into(),
            category: category.into(),
            category_label: category.into(),
            stats: BTreeMap::new(),
        };
        let index = PlayerStatsIndex::default()
            .apply(&record("ana", "game", 20))
            .apply(&record("all-heroes", "combat", 20))
            .apply(&record("ana", "game", 10));
        assert_eq!(index.snapshot_at, 20);
        assert_eq!(index.last_updated_at, Some(19));
        let keys: Vec<String> = index
            .keys()
            .into_iter()
            .map(|k| format!("{}/{}", k.hero, k.category))
            .collect();
        assert_eq!(
            keys,
            [
                "all-heroes/combat",
                "all-heroes/game",
                "ana/combat",
                "ana/game"
            ]
        );
    }

    #[test]
    fn deltas_keep_the_latest_per_hero() {
        let delta = |hero: &str, at: i64, games: f64| StatsDelta {
            player_id: "Someone-1234".into(),
            platform: "pc".into(),
            gamemode: "quickplay".into(),
            hero: hero.into(),
            snapshot_at: at,
            games_played: games,
            ..StatsDelta::default()
        };
        let d = PlayerDeltas::default()
            .apply(delta("reaper", 10, 1.0))
            .apply(delta("ana", 20, 2.0))
            .apply(delta("ana", 10, 1.0))
            .apply(delta("all-heroes", 20, 2.0));
        assert_eq!(
            d.get("pc", "quickplay", "ana").map(|d| d.games_played),
            Some(2.0)
        );
        assert!(d.get("pc", "quickplay", "all-heroes").is_some());
        assert!(
            d.get("pc", "quickplay", "reaper").is_none(),
            "a newer snapshot replaces the mode's deltas"
        );
        assert!(d.get("pc", "competitive", "ana").is_none());
    }
}
