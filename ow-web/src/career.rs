//! The career view of a player: which platform, game mode and hero a page shows, its metric
//! cards with their changes, and the hero table. Pure functions over the materialized values,
//! so that views only draw.

use std::cmp::Ordering;

use ow_domain::battletag::PlayerId;
use ow_domain::hero::ALL_HEROES;
use ow_domain::stat::{self, DAMAGE_AVG_PER_10_MIN_KEYS, DAMAGE_KEYS};
use ow_domain::{StatUnit, StatsDelta};
use serde::Deserialize;

use crate::format::{self, Direction};
use crate::materialize::{CategoryStats, ModeStats, PlayerStats};

/// Query parameters of a player page (all optional; unknown values fall back to defaults).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct PlayerQuery {
    /// Platform key.
    pub(crate) platform: Option<String>,
    /// Game mode key.
    pub(crate) mode: Option<String>,
    /// Hero key.
    pub(crate) hero: Option<String>,
    /// Hero table column.
    pub(crate) sort: Option<String>,
    /// `asc` or `desc`.
    pub(crate) dir: Option<String>,
}

/// What a page shows: one platform, game mode and hero that have data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Platform key.
    pub(crate) platform: String,
    /// Game mode key.
    pub(crate) mode: String,
    /// Hero key.
    pub(crate) hero: String,
    /// Platforms with data, in display order.
    pub(crate) platforms: Vec<String>,
    /// Game modes of the platform with data, in display order.
    pub(crate) modes: Vec<String>,
    /// Heroes of the mode with data, all-heroes first, then by name.
    pub(crate) heroes: Vec<String>,
}

fn rank_platform(key: &str) -> (u8, &str) {
    (if key == "pc" { 0 } else { 1 }, key)
}

fn rank_mode(key: &str) -> (u8, &str) {
    match key {
        "competitive" => (0, key),
        "quickplay" => (1, key),
        _ => (2, key),
    }
}

fn has_data(mode: &ModeStats) -> bool {
    mode.heroes.values().any(|c| !c.is_empty())
}

/// The selection for `query` over `stats`; `None` when there are no stats at all. Values the
/// data lacks fall back to the first with data (PC before console, competitive before quick
/// play, all heroes first).
pub(crate) fn select(stats: &PlayerStats, query: &PlayerQuery) -> Option<Selection> {
    let mut platforms: Vec<&str> = stats
        .platforms
        .iter()
        .filter(|(_, modes)| modes.values().any(has_data))
        .map(|(k, _)| k.as_str())
        .collect();
    platforms.sort_by_key(|k| rank_platform(k));
    let platform = pick(&platforms, query.platform.as_deref())?;
    let modes_of = stats.platforms.get(platform)?;
    let mut modes: Vec<&str> = modes_of
        .iter()
        .filter(|(_, m)| has_data(m))
        .map(|(k, _)| k.as_str())
        .collect();
    modes.sort_by_key(|k| rank_mode(k));
    let mode = pick(&modes, query.mode.as_deref())?;
    let mode_stats = modes_of.get(mode)?;
    let mut heroes: Vec<&str> = mode_stats
        .heroes
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(k, _)| k.as_str())
        .collect();
    heroes.sort_by_key(|k| (*k != ALL_HEROES, format::hero_name(k)));
    let hero = pick(&heroes, query.hero.as_deref())?;
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
    Some(Selection {
        platform: platform.to_owned(),
        mode: mode.to_owned(),
        hero: hero.to_owned(),
        platforms: owned(platforms),
        modes: owned(modes),
        heroes: owned(heroes),
    })
}

fn pick<'a>(options: &[&'a str], wanted: Option<&str>) -> Option<&'a str> {
    wanted
        .and_then(|w| options.iter().find(|o| **o == w).copied())
        .or_else(|| options.first().copied())
}

/// One metric card.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Card {
    /// Stat key.
    pub(crate) key: String,
    /// Readable label.
    pub(crate) label: String,
    /// Unit caption under the label (`per 10 min`).
    pub(crate) caption: Option<&'static str>,
    /// Formatted value.
    pub(crate) value: String,
    /// The change since the previous snapshot.
    pub(crate) delta: Option<(Direction, String)>,
}

/// One category of cards.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Section {
    /// Category key.
    pub(crate) key: String,
    /// Category label.
    pub(crate) label: String,
    /// Its cards, in stat-key order.
    pub(crate) cards: Vec<Card>,
}

fn rank_category(key: &str) -> (u8, &str) {
    let rank = match key {
        "game" => 0,
        "combat" => 1,
        "assists" => 2,
        "average" => 3,
        "best" => 4,
        "hero_specific" => 5,
        "match_awards" => 6,
        _ => 7,
    };
    (rank, key)
}

/// The sections of cards of one hero, categories in a reading order (game, combat, assists,
/// average, best, hero specific, awards, others). A card shows the change of its stat in
/// `delta` when the delta belongs to the same snapshot as the category (an older delta is
/// not a change "since the previous snapshot").
pub(crate) fn sections(mode: &ModeStats, hero: &str, delta: Option<&StatsDelta>) -> Vec<Section> {
    let Some(categories) = mode.heroes.get(hero) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = categories.keys().collect();
    keys.sort_by_key(|k| rank_category(k));
    keys.into_iter()
        .filter_map(|key| {
            let category = categories.get(key)?;
            let current = delta.filter(|d| d.snapshot_at == category.snapshot_at);
            Some(section(key, category, current))
        })
        .filter(|s| !s.cards.is_empty())
        .collect()
}

/// Stats shown first in their category, in this order; the others follow by key.
const LEADING_STATS: [&str; 16] = [
    "time_played",
    "games_played",
    "games_won",
    "games_lost",
    "win_percentage",
    "eliminations",
    "deaths",
    "kda",
    "eliminations_per_life",
    "final_blows",
    "all_damage_done",
    "damage_done",
    "hero_damage_done",
    "healing_done",
    "assists",
    "eliminations_avg_per_10_min",
];

fn rank_stat(key: &str) -> (usize, &str) {
    let rank = LEADING_STATS
        .iter()
        .position(|k| *k == key)
        .unwrap_or(LEADING_STATS.len());
    (rank, key)
}

fn section(key: &str, category: &CategoryStats, delta: Option<&StatsDelta>) -> Section {
    let mut stats: Vec<_> = category.stats.iter().collect();
    stats.sort_by_key(|(k, _)| rank_stat(k));
    let cards = stats
        .into_iter()
        .map(|(stat_key, stat)| {
            let (label, caption) = format::stat_label(stat_key, &stat.label, stat.unit);
            Card {
                key: stat_key.clone(),
                label,
                caption,
                value: format::stat(stat.value, stat.unit),
                delta: delta
                    .and_then(|d| d.stats.get(stat_key))
                    .and_then(|v| format::delta(*v, stat.unit)),
            }
        })
        .collect();
    let label = if category.label.trim().is_empty() || category.label == key {
        format::humanize(key)
    } else {
        category.label.clone()
    };
    Section {
        key: key.to_owned(),
        label,
        cards,
    }
}

/// One row of the hero table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeroRow {
    /// Hero key.
    pub(crate) hero: String,
    /// Display name.
    pub(crate) name: String,
    /// Seconds played.
    pub(crate) time_played: f64,
    /// Games played.
    pub(crate) games: Option<f64>,
    /// Win percentage.
    pub(crate) win_percent: Option<f64>,
    /// (Eliminations + assists) / deaths.
    pub(crate) kda: Option<f64>,
    /// Eliminations per 10 minutes.
    pub(crate) eliminations_per_10: Option<f64>,
    /// Damage per 10 minutes.
    pub(crate) damage_per_10: Option<f64>,
}

/// The first value of stat `key` in any category of a hero.
fn find(categories: &std::collections::BTreeMap<String, CategoryStats>, key: &str) -> Option<f64> {
    categories
        .values()
        .find_map(|c| c.stats.get(key))
        .map(|s| s.value)
        .filter(|v| v.is_finite())
}

fn first_of(
    categories: &std::collections::BTreeMap<String, CategoryStats>,
    keys: &[&str],
) -> Option<f64> {
    keys.iter().find_map(|k| find(categories, k))
}

/// A total per 10 minutes of `seconds` played.
fn per_10(total: Option<f64>, seconds: f64) -> Option<f64> {
    total.filter(|_| seconds > 0.0).map(|t| t * 600.0 / seconds)
}

/// The hero table of a game mode: every hero but all-heroes, most played first.
pub(crate) fn hero_rows(mode: &ModeStats) -> Vec<HeroRow> {
    let mut rows: Vec<HeroRow> = mode
        .heroes
        .iter()
        .filter(|(hero, c)| hero.as_str() != ALL_HEROES && !c.is_empty())
        .map(|(hero, c)| {
            let time = find(c, stat::TIME_PLAYED).unwrap_or(0.0);
            let games = find(c, stat::GAMES_PLAYED);
            let won = find(c, stat::GAMES_WON);
            let win_percent = find(c, stat::WIN_PERCENTAGE).or_else(|| match (won, games) {
                (Some(w), Some(g)) if g > 0.0 => Some(w * 100.0 / g),
                _ => None,
            });
            let elims = find(c, stat::ELIMINATIONS);
            let assists = find(c, stat::ASSISTS);
            let deaths = find(c, stat::DEATHS);
            let kda = match (elims, assists, deaths) {
                (None, None, _) => None,
                (e, a, d) => {
                    let takedowns = e.unwrap_or(0.0) + a.unwrap_or(0.0);
                    Some(takedowns / d.filter(|d| *d > 0.0).unwrap_or(1.0))
                }
            };
            let eliminations_per_10 =
                find(c, stat::ELIMINATIONS_AVG_PER_10_MIN).or_else(|| per_10(elims, time));
            let damage_per_10 = first_of(c, &DAMAGE_AVG_PER_10_MIN_KEYS)
                .or_else(|| per_10(first_of(c, &DAMAGE_KEYS), time));
            HeroRow {
                hero: hero.clone(),
                name: format::hero_name(hero),
                time_played: time,
                games,
                win_percent,
                kda,
                eliminations_per_10,
                damage_per_10,
            }
        })
        .collect();
    sort_rows(&mut rows, SortKey::Time, SortDir::Desc);
    rows
}

/// The hero table of a game mode sorted by a column.
pub(crate) fn sorted_hero_rows(mode: &ModeStats, key: SortKey, dir: SortDir) -> Vec<HeroRow> {
    let mut rows = hero_rows(mode);
    sort_rows(&mut rows, key, dir);
    rows
}

/// A hero table column to sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortKey {
    /// Hero name.
    Hero,
    /// Time played.
    Time,
    /// Games played.
    Games,
    /// Win percentage.
    Win,
    /// KDA.
    Kda,
    /// Eliminations per 10 minutes.
    Eliminations,
    /// Damage per 10 minutes.
    Damage,
}

impl SortKey {
    /// Every column, in table order.
    pub(crate) const ALL: [SortKey; 7] = [
        SortKey::Hero,
        SortKey::Time,
        SortKey::Games,
        SortKey::Win,
        SortKey::Kda,
        SortKey::Eliminations,
        SortKey::Damage,
    ];

    /// The query value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SortKey::Hero => "hero",
            SortKey::Time => "time",
            SortKey::Games => "games",
            SortKey::Win => "win",
            SortKey::Kda => "kda",
            SortKey::Eliminations => "elims",
            SortKey::Damage => "damage",
        }
    }

    /// The column heading.
    pub(crate) fn heading(self) -> &'static str {
        match self {
            SortKey::Hero => "Hero",
            SortKey::Time => "Time played",
            SortKey::Games => "Games",
            SortKey::Win => "Win %",
            SortKey::Kda => "KDA",
            SortKey::Eliminations => "Elims / 10 min",
            SortKey::Damage => "Damage / 10 min",
        }
    }

    /// The column named by a query value (time played when unknown).
    pub(crate) fn parse(value: Option<&str>) -> SortKey {
        SortKey::ALL
            .into_iter()
            .find(|k| Some(k.as_str()) == value)
            .unwrap_or(SortKey::Time)
    }

    /// The direction a click on the heading first sorts in.
    pub(crate) fn natural_dir(self) -> SortDir {
        match self {
            SortKey::Hero => SortDir::Asc,
            _ => SortDir::Desc,
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortDir {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl SortDir {
    /// The query value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }

    /// `asc` or `desc`; the key's natural direction otherwise.
    pub(crate) fn parse(value: Option<&str>, key: SortKey) -> SortDir {
        match value {
            Some("asc") => SortDir::Asc,
            Some("desc") => SortDir::Desc,
            _ => key.natural_dir(),
        }
    }

    /// The other direction.
    pub(crate) fn flip(self) -> SortDir {
        match self {
            SortDir::Asc => SortDir::Desc,
            SortDir::Desc => SortDir::Asc,
        }
    }
}

/// A row's value in a numeric column.
pub(crate) fn column_value(row: &HeroRow, key: SortKey) -> Option<f64> {
    match key {
        SortKey::Hero => None,
        SortKey::Time => Some(row.time_played),
        SortKey::Games => row.games,
        SortKey::Win => row.win_percent,
        SortKey::Kda => row.kda,
        SortKey::Eliminations => row.eliminations_per_10,
        SortKey::Damage => row.damage_per_10,
    }
}

/// Sorts rows by a column; rows without a value go last whatever the direction, ties by name.
pub(crate) fn sort_rows(rows: &mut [HeroRow], key: SortKey, dir: SortDir) {
    let directed = |o: Ordering| match dir {
        SortDir::Asc => o,
        SortDir::Desc => o.reverse(),
    };
    rows.sort_by(|a, b| {
        let by_name = a.name.cmp(&b.name);
        if key == SortKey::Hero {
            return directed(by_name);
        }
        match (column_value(a, key), column_value(b, key)) {
            (Some(x), Some(y)) => {
                directed(x.partial_cmp(&y).unwrap_or(Ordering::Equal)).then(by_name)
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => by_name,
        }
    });
}

/// The link to a player page with the given query values.
pub(crate) fn player_url(id: &PlayerId, params: &[(&str, &str)]) -> String {
    let mut url = format!("/players/{}", id.url_path_segment());
    if !params.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        url.push('?');
        url.push_str(&query);
    }
    url
}

/// The formatted value of a numeric column.
pub(crate) fn column_text(row: &HeroRow, key: SortKey) -> String {
    let unit = match key {
        SortKey::Hero => return row.name.clone(),
        SortKey::Time => StatUnit::Seconds,
        SortKey::Games => StatUnit::Count,
        SortKey::Win => StatUnit::Percent,
        SortKey::Kda => StatUnit::Ratio,
        SortKey::Eliminations | SortKey::Damage => StatUnit::Per10Min,
    };
    column_value(row, key).map_or_else(|| format::MISSING.to_owned(), |v| format::stat(v, unit))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ow_domain::StatValue;

    use super::*;

    fn category(at: i64, stats: &[(&str, f64, StatUnit)]) -> CategoryStats {
        CategoryStats {
            label: String::new(),
            snapshot_at: at,
            stats: stats
                .iter()
                .map(|(k, v, u)| {
                    (
                        k.to_string(),
                        StatValue {
                            value: *v,
                            label: k.to_string(),
                            unit: *u,
                        },
                    )
                })
                .collect(),
        }
    }

    fn mode() -> ModeStats {
        let hero = |time: f64, games: f64, won: f64, elims: f64, deaths: f64| {
            BTreeMap::from([
                (
                    "game".to_string(),
                    category(
                        10,
                        &[
                            ("time_played", time, StatUnit::Seconds),
                            ("games_played", games, StatUnit::Count),
                            ("games_won", won, StatUnit::Count),
                        ],
                    ),
                ),
                (
                    "combat".to_string(),
                    category(
                        10,
                        &[
                            ("eliminations", elims, StatUnit::Count),
                            ("deaths", deaths, StatUnit::Count),
                            ("damage_done", 6000.0, StatUnit::Count),
                        ],
                    ),
                ),
            ])
        };
        ModeStats {
            snapshot_at: 10,
            heroes: BTreeMap::from([
                ("all-heroes".to_string(), hero(1200.0, 4.0, 2.0, 30.0, 10.0)),
                ("ana".to_string(), hero(600.0, 1.0, 1.0, 10.0, 0.0)),
                ("reaper".to_string(), hero(600.0, 3.0, 1.0, 20.0, 10.0)),
                ("mercy".to_string(), BTreeMap::new()),
            ]),
        }
    }

    #[test]
    fn selection_falls_back_to_data() {
        let stats = PlayerStats {
            player_id: "A-1".into(),
            snapshot_at: 10,
            last_updated_at: None,
            platforms: BTreeMap::from([
                (
                    "console".to_string(),
                    BTreeMap::from([("quickplay".to_string(), mode())]),
                ),
                (
                    "pc".to_string(),
                    BTreeMap::from([
                        ("quickplay".to_string(), mode()),
                        ("competitive".to_string(), ModeStats::default()),
                    ]),
                ),
            ]),
        };
        let s = select(&stats, &PlayerQuery::default()).unwrap();
        assert_eq!(
            (s.platform.as_str(), s.mode.as_str(), s.hero.as_str()),
            ("pc", "quickplay", "all-heroes")
        );
        assert_eq!(s.platforms, vec!["pc", "console"]);
        assert_eq!(s.modes, vec!["quickplay"], "competitive has no data");
        assert_eq!(s.heroes, vec!["all-heroes", "ana", "reaper"]);
        let q = PlayerQuery {
            platform: Some("console".into()),
            mode: Some("competitive".into()),
            hero: Some("reaper".into()),
            ..PlayerQuery::default()
        };
        let s = select(&stats, &q).unwrap();
        assert_eq!(
            (s.platform.as_str(), s.mode.as_str(), s.hero.as_str()),
            ("console", "quickplay", "reaper")
        );
        assert!(select(&PlayerStats::default(), &PlayerQuery::default()).is_none());
    }

    #[test]
    fn sections_in_reading_order_with_current_deltas() {
        let m = mode();
        let delta = StatsDelta {
            hero: "all-heroes".into(),
            snapshot_at: 10,
            stats: BTreeMap::from([("games_played".to_string(), 2.0)]),
            ..StatsDelta::default()
        };
        let s = sections(&m, "all-heroes", Some(&delta));
        assert_eq!(
            s.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
            ["game", "combat"]
        );
        assert_eq!(s[0].label, "Game");
        let keys: Vec<&str> = s[0].cards.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            ["time_played", "games_played", "games_won"],
            "leading stats first"
        );
        let games = s[0].cards.iter().find(|c| c.key == "games_played").unwrap();
        assert_eq!(games.delta, Some((Direction::Up, "▲ 2".into())));
        assert_eq!(games.value, "4");
        let stale = StatsDelta {
            snapshot_at: 5,
            ..delta
        };
        let s = sections(&m, "all-heroes", Some(&stale));
        assert!(s[0].cards.iter().all(|c| c.delta.is_none()));
        assert!(sections(&m, "nobody", None).is_empty());
    }

    #[test]
    fn hero_rows_and_sorting() {
        let mut rows = hero_rows(&mode());
        assert_eq!(
            rows.iter().map(|r| r.hero.as_str()).collect::<Vec<_>>(),
            ["ana", "reaper"],
            "most played first, ties by name; all-heroes and empty heroes left out"
        );
        let reaper = &rows[1];
        assert_eq!(reaper.win_percent.map(|w| w.round()), Some(33.0));
        assert_eq!(reaper.kda, Some(2.0));
        assert_eq!(reaper.eliminations_per_10, Some(20.0));
        assert_eq!(reaper.damage_per_10, Some(6000.0));
        assert_eq!(rows[0].kda, Some(10.0), "no deaths: takedowns");
        sort_rows(&mut rows, SortKey::Games, SortDir::Desc);
        assert_eq!(rows[0].hero, "reaper");
        sort_rows(&mut rows, SortKey::Games, SortDir::Asc);
        assert_eq!(rows[0].hero, "ana");
        sort_rows(&mut rows, SortKey::Hero, SortDir::Desc);
        assert_eq!(rows[0].hero, "reaper");
        assert_eq!(column_text(&rows[0], SortKey::Time), "10m 00s");
        assert_eq!(column_text(&rows[0], SortKey::Kda), "2.00");
        assert_eq!(SortKey::parse(Some("kda")), SortKey::Kda);
        assert_eq!(SortKey::parse(Some("<x>")), SortKey::Time);
        assert_eq!(SortDir::parse(None, SortKey::Hero), SortDir::Asc);
    }

    #[test]
    fn urls_are_encoded() {
        let id = PlayerId::parse("Jöhn#1234").unwrap();
        assert_eq!(
            player_url(&id, &[("hero", "soldier-76"), ("x", "a&b=<c>")]),
            "/players/J%C3%B6hn-1234?hero=soldier-76&x=a%26b%3D%3Cc%3E"
        );
        assert_eq!(player_url(&id, &[]), "/players/J%C3%B6hn-1234");
    }
}
