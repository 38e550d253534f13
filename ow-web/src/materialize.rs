//! The web stage's own view of the pipeline: a topology that reads the processor's four output
//! topics into the web's stores, so that a page is a handful of lookups and one prefix scan.
//!
//! | store | input | key → value | how |
//! |---|---|---|---|
//! | [`PROFILES_STORE`] | `ow.players.profile` | player id → [`PlayerProfile`](ow_domain::PlayerProfile) | the topic read as a table |
//! | [`CATEGORIES_STORE`] | `ow.stats.by-category` | [`StatsCategoryKey`] → [`StatsByCategory`] | the newest record per player, platform, mode, hero and category (the topic as a table that ignores late copies and writes only changes); a player's records are read with one prefix scan ([`category_prefix`]) |
//! | [`CATEGORY_CHANGES_STORE`] | the changes of [`CATEGORIES_STORE`] | player id → [`CategoryChanges`] | how often the player's records in the table changed, counted per partition in the task that writes them: the version of the stats a page assembles |
//! | [`DELTAS_STORE`] | `ow.stats.deltas` | player id → [`PlayerDeltas`] | the latest snapshot's delta per platform, mode and hero, folded per player |
//! | [`HISTORY_STORE`] | `ow.stats.daily` | player id → [`PlayerHistory`] | the daily series per platform and mode (latest value per day), folded per player |
//!
//! ```text
//! ow.players.profile ──table──────────────────────────────────────────▶ player-profiles
//! ow.stats.by-category ─group_by_key─reduce(newest, on change)────────────▶ player-categories
//!                          └─to_stream─count per player (same task)──────▶ player-category-changes
//! ow.stats.deltas ────────────────────────────group_by_key─aggregate─▶ player-deltas
//! ow.stats.daily ───────group_by(player id)─▶ repartition ─aggregate─▶ player-history
//! ```
//!
//! # Why the stats are not one value per player
//! A snapshot of a player is several hundred category records (278 for the recorded
//! `TeKrop-2217`). Folding them into one value per player rewrites that whole value, and its
//! changelog record, for every record: for the sample, 263 KB × 278 per snapshot, about 55 MB
//! of changelog and half a second of CPU per snapshot and player. The stats are therefore kept
//! as the table they are (one small write per record). The table's keys are JSON whose first
//! field is the player id, so the keys of one player are exactly those that start with
//! `{"player_id":"<id>",` ([`category_prefix`]; the closing quote and the comma keep `Foo-1`
//! from matching `Foo-12`), and [`StoreRepository`] finds a player's records with one prefix
//! scan, which reads every shard of the store this process hosts (like every interactive query
//! of the web: all of them while one web instance runs), however the writer partitioned the
//! topic.
//!
//! # The version of the assembled stats
//! Assembling a player decodes every one of their records (about 260 KB of JSON for the
//! sample): milliseconds, for a page whose own rendering takes a fraction of one.
//! [`StoreRepository`] therefore keeps assembled stats, under the player's entries of
//! [`CATEGORY_CHANGES_STORE`]. The task that writes a player's records into the table counts
//! each change there in the same step, so both commit together: an entry changes exactly when
//! the player's records in its partition do, whatever order the input topics arrive in. (The
//! table writes only changes, so replays count nothing.) A player whose records a writer spread
//! over several partitions has one entry per partition, each read with the others by a range
//! over the player id. The counter takes no repartition topic on purpose: one hop behind the
//! table, it would lag the records it counts.
//!
//! # Why one repartition topic
//! `ow.stats.daily` has record keys. Its schema asks writers to partition it by the key's
//! player id alone, and ow-processor does (`Produced::with_partition_key_of`), but the web does
//! not rely on how another application partitioned a topic: [`HISTORY_STORE`] is one value
//! per player (read with one lookup), so its fold regroups the days by player id through
//! `ow-web-daily-by-player-repartition`, and a writer that partitions by the whole key cannot
//! leave a part of a player's history in each partition. It is cheap (one small record per
//! snapshot and game mode, against hundreds of category records), and a table of days read by
//! prefix instead would keep every day rather than the latest [`HISTORY_DAYS`]. The
//! player-id-keyed topics need no such step, and neither does the category table (its prefix
//! scan reads every shard).
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

use std::collections::BTreeMap;

use ow_domain::{DailyStats, StatValue, StatsByCategory, StatsCategoryKey, StatsDelta};
use ow_stream_core::dsl::{Grouped, Materialized};
use ow_stream_core::error::BoxError;
use ow_stream_core::processor::{Processor, ProcessorContext};
use ow_stream_core::serde::{JsonSerde, StringSerde};
use ow_stream_core::{Record, StreamsBuilder, Topology};
use serde::{Deserialize, Serialize};

use crate::topics::Topics;
use crate::{Error, StoreChanges};

/// The web stage's application id: its consumer group and the prefix of its changelogs.
pub const APPLICATION_ID: &str = "ow-web";
/// Store of [`PlayerProfile`](ow_domain::PlayerProfile) by player id.
pub const PROFILES_STORE: &str = "player-profiles";
/// Store of [`StatsByCategory`] by [`StatsCategoryKey`].
pub const CATEGORIES_STORE: &str = "player-categories";
/// Store of [`CategoryChanges`] by player id: one entry per partition of [`CATEGORIES_STORE`]
/// that holds records of the player (read them with a range over the player id, not a
/// lookup, which finds only one).
pub const CATEGORY_CHANGES_STORE: &str = "player-category-changes";
/// Store of [`PlayerDeltas`] by player id.
pub const DELTAS_STORE: &str = "player-deltas";
/// Store of [`PlayerHistory`] by player id.
pub const HISTORY_STORE: &str = "player-history";
/// Days of history kept per platform and game mode.
pub const HISTORY_DAYS: usize = 120;

/// How often the records of one player in one partition of [`CATEGORIES_STORE`] have changed
/// (value of [`CATEGORY_CHANGES_STORE`]), counted by the task that writes them, in the same
/// commit: it changes exactly when those records do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CategoryChanges {
    /// The partition of the table whose records are counted (so that the entries of two
    /// partitions never look alike when the shards this process hosts change).
    pub partition: i32,
    /// Changes of the player's records there so far (a new key or a newer record).
    pub changes: u64,
}

/// The bytes that every [`CATEGORIES_STORE`] key of `player_id` starts with, and no other key
/// does: the table's keys are [`StatsCategoryKey`]s in JSON, whose first field is the player
/// id, and the prefix ends after the id's closing quote and the comma, so that `Foo-1` does
/// not match `Foo-12`.
///
/// ```
/// use ow_domain::StatsCategoryKey;
/// use ow_web::materialize::category_prefix;
///
/// let key = |player_id: &str| StatsCategoryKey {
///     player_id: player_id.into(),
///     platform: "pc".into(),
///     gamemode: "competitive".into(),
///     hero: "ana".into(),
///     category: "game".into(),
/// };
/// let prefix = category_prefix("Foo-1234");
/// assert_eq!(prefix, br#"{"player_id":"Foo-1234","#);
/// assert!(serde_json::to_vec(&key("Foo-1234")).unwrap().starts_with(&prefix));
/// assert!(!serde_json::to_vec(&key("Foo-12345")).unwrap().starts_with(&prefix));
/// ```
pub fn category_prefix(player_id: &str) -> Vec<u8> {
    // `Value`'s `Display` writes a string as `serde_json` serializes one (same escapes).
    format!("{{\"player_id\":{},", serde_json::Value::from(player_id)).into_bytes()
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
/// mode, hero and category, assembled from the player's records in [`CATEGORIES_STORE`].
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

/// Counts the changes of [`CATEGORIES_STORE`] per player into [`CATEGORY_CHANGES_STORE`], in
/// the task that made them (it forwards nothing), then tells `changes`.
struct CountChanges {
    changes: StoreChanges,
}

impl Processor<StatsCategoryKey, StatsByCategory, String, CategoryChanges> for CountChanges {
    fn process(
        &mut self,
        record: Record<StatsCategoryKey, StatsByCategory>,
        ctx: &mut ProcessorContext<'_, '_, String, CategoryChanges>,
    ) -> Result<(), BoxError> {
        let partition = ctx.partition();
        let mut store = ctx.key_value_store::<String, CategoryChanges>(CATEGORY_CHANGES_STORE)?;
        let held = store.get(&record.key.player_id)?.unwrap_or_default();
        store.put(
            &record.key.player_id,
            &CategoryChanges {
                partition,
                changes: held.changes.wrapping_add(1),
            },
        )?;
        self.changes.changed(&record.key.player_id);
        Ok(())
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
/// // The profile table, the categories, the deltas, and the daily stats' writer and reader.
/// assert_eq!(description.subtopologies.len(), 5);
/// assert_eq!(description.stores.len(), 5);
/// assert!(description.stores.iter().any(|s| s.name == CATEGORIES_STORE));
/// ```
pub fn topology(topics: &Topics) -> Result<Topology, Error> {
    topology_with_changes(topics, &StoreChanges::new())
}

/// A node body telling `changes` that the record's player changed.
fn changed<V>(changes: &StoreChanges) -> impl Fn(&String, &V) + Send + Sync + 'static {
    let changes = changes.clone();
    move |player_id, _| changes.changed(player_id)
}

/// The materialization topology over `topics`, telling `changes` of every write to a player's
/// stores, right after it (see [`StoreChanges`]). The stores that feed those nodes have their
/// record cache disabled: with one, the nodes would run at the next commit, after queries
/// already saw the writes (queries read through the cache). The cost is one changelog record
/// per update of the deltas and history (folded per player) instead of one per commit.
///
/// ```
/// use ow_stream_core::registry::SchemaRegistry;
/// use ow_stream_core::testing::TopologyTestDriver;
/// use ow_web::{StoreChanges, Topics};
/// use ow_web::materialize;
///
/// let topics = Topics::new(&SchemaRegistry::mock("materialize-changes-doc"), "").unwrap();
/// let changes = StoreChanges::new();
/// let topology = materialize::topology_with_changes(&topics, &changes).unwrap();
/// let driver = TopologyTestDriver::new(topology).unwrap();
/// # let _ = driver;
/// assert_eq!(changes.version("TeKrop-2217"), 0);
/// ```
pub fn topology_with_changes(topics: &Topics, changes: &StoreChanges) -> Result<Topology, Error> {
    let builder = StreamsBuilder::new();

    builder
        .table(
            &topics.profiles,
            Materialized::as_(PROFILES_STORE)
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new())
                .with_caching_disabled(),
        )
        .to_stream()
        .peek(changed(changes));

    builder.add_state_store(
        Materialized::<String, CategoryChanges>::as_(CATEGORY_CHANGES_STORE)
            .with_key_serde(StringSerde)
            .with_value_serde(JsonSerde::new()),
    );
    // Each change of the table, and only those (a late copy writes and forwards nothing), is
    // counted in the task and the commit that write it.
    builder
        .stream(&topics.stats_by_category)
        .group_by_key()
        .reduce(
            newest,
            Materialized::as_(CATEGORIES_STORE)
                .with_key_serde(JsonSerde::<StatsCategoryKey>::new())
                .with_value_serde(JsonSerde::new())
                .with_caching_disabled()
                .emit_on_change(),
        )
        .to_stream()
        .process("count-category-changes", &[CATEGORY_CHANGES_STORE], {
            let changes = changes.clone();
            move || CountChanges {
                changes: changes.clone(),
            }
        });

    builder
        .stream(&topics.deltas)
        .group_by_key()
        .aggregate(
            PlayerDeltas::default,
            |_, delta, deltas: PlayerDeltas| deltas.apply(delta),
            Materialized::as_(DELTAS_STORE)
                .with_key_serde(StringSerde)
                .with_value_serde(JsonSerde::new())
                .with_caching_disabled(),
        )
        .to_stream()
        .peek(changed(changes));

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
                .with_value_serde(JsonSerde::new())
                .with_caching_disabled(),
        )
        .to_stream()
        .peek(changed(changes));

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
