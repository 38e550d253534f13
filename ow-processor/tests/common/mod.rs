//! Test helpers shared by the integration tests: fixture files, raw events, bodies in the shape
//! of the live `GET /players/{id}` answer (here); the topology in the test driver and its
//! outputs ([`pipeline`]); a stream of snapshots for many players ([`stream`]); the processor's
//! topics on librdkafka's mock cluster or the durable local log ([`cluster`]).

#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod cluster;
pub(crate) mod pipeline;
pub(crate) mod stream;

use ow_domain::{FetchOutcome, RawPlayerProfile};
use serde_json::{Map, Value, json};

/// The recorded OverFast bodies (see `SOURCE.md` there).
pub(crate) const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/overfast/"
);

/// 2024-01-01T00:00:00Z.
pub(crate) const JAN_1_2024: i64 = 1_704_067_200_000;
pub(crate) const HOUR: i64 = 3_600_000;

/// A fixture file's text.
pub(crate) fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fixture file as JSON.
pub(crate) fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A raw event of an `ok` fetch of `player_id` with `body`, fetched at `fetched_at`.
pub(crate) fn raw_ok(
    player_id: &str,
    body: impl Into<String>,
    fetched_at: i64,
) -> RawPlayerProfile {
    raw(player_id, FetchOutcome::Ok, Some(body.into()), fetched_at)
}

/// A raw event with any outcome.
pub(crate) fn raw(
    player_id: &str,
    outcome: FetchOutcome,
    body: Option<String>,
    fetched_at: i64,
) -> RawPlayerProfile {
    let http_status = match outcome {
        FetchOutcome::Ok | FetchOutcome::Private => Some(200),
        FetchOutcome::NotFound => Some(404),
        FetchOutcome::RateLimited => Some(429),
        FetchOutcome::UpstreamError => None,
    };
    RawPlayerProfile {
        request_id: format!("req-{fetched_at}"),
        player_id: player_id.into(),
        fetched_at,
        request_url: format!("https://overfast-api.tekrop.fr/players/{player_id}"),
        http_status,
        outcome,
        body,
        cache_max_age_secs: Some(600),
        cache_age_secs: None,
        error: None,
        attempts: 1,
        next_attempt_at: None,
    }
}

/// `games_played` → `Games Played`.
fn label_of(key: &str) -> String {
    key.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The career parser's `.stats` (`{platform: {mode: {career_stats: {hero: {category: {key:
/// value}}}}}}`) in the labelled shape the live `/players/{id}` sends (`{hero: [{category,
/// label, stats: [{key, label, value}]}]}`), with empty `heroes_comparisons`, and — as the live
/// API does for heroes not played — `null` heroes added.
pub(crate) fn labelled_stats(parser_stats: &Value) -> Value {
    let mut platforms = Map::new();
    let platforms_in = parser_stats
        .as_object()
        .expect("parser .stats is an object");
    for (platform, modes) in platforms_in {
        let Some(modes) = modes.as_object() else {
            platforms.insert(platform.clone(), Value::Null);
            continue;
        };
        let mut out_modes = Map::new();
        for (mode, stats) in modes {
            let mut heroes = Map::new();
            let career = stats["career_stats"]
                .as_object()
                .expect("career_stats is an object");
            for (hero, categories) in career {
                let categories: Vec<Value> = categories
                    .as_object()
                    .expect("a hero is an object of categories")
                    .iter()
                    .map(|(category, stats)| {
                        let stats: Vec<Value> = stats
                            .as_object()
                            .expect("a category is an object of stats")
                            .iter()
                            .map(|(k, v)| json!({"key": k, "label": label_of(k), "value": v}))
                            .collect();
                        json!({"category": category, "label": label_of(category), "stats": stats})
                    })
                    .collect();
                heroes.insert(hero.clone(), Value::Array(categories));
            }
            for unplayed in ["lucio", "hazard"] {
                heroes.entry(unplayed).or_insert(Value::Null);
            }
            out_modes.insert(
                mode.clone(),
                json!({"heroes_comparisons": {}, "career_stats": Value::Object(heroes)}),
            );
        }
        platforms.insert(platform.clone(), Value::Object(out_modes));
    }
    Value::Object(platforms)
}

/// A full `/players/{id}` body for a player with `derived/<player>-summary.json` and
/// `<player>-stats-career.parser-output.json` (TeKrop-2217, KIRIKO-21253).
pub(crate) fn full_body(player: &str) -> Value {
    let summary = fixture_json(&format!("derived/{player}-summary.json"));
    let career = fixture_json(&format!("{player}-stats-career.parser-output.json"));
    json!({"summary": summary, "stats": labelled_stats(&career["stats"])})
}

/// The stats of `hero`/`category` in `platform`/`mode` of a labelled body, to edit.
fn category_stats_mut<'a>(
    body: &'a mut Value,
    [platform, mode, hero, category]: [&str; 4],
) -> &'a mut Vec<Value> {
    body["stats"][platform][mode]["career_stats"][hero]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no hero {platform}/{mode}/{hero}"))
        .iter_mut()
        .find(|c| c["category"] == category)
        .unwrap_or_else(|| panic!("no category {platform}/{mode}/{hero}/{category}"))["stats"]
        .as_array_mut()
        .expect("stats of a category are an array")
}

/// The value of stat `key` of `hero`/`category` in `platform`/`mode` of a labelled body, to
/// edit.
pub(crate) fn stat_mut<'a>(
    body: &'a mut Value,
    [platform, mode, hero, category, key]: [&str; 5],
) -> &'a mut Value {
    let stats = category_stats_mut(body, [platform, mode, hero, category]);
    let stat = stats.iter_mut().find(|s| s["key"] == key);
    &mut stat.unwrap_or_else(|| panic!("no stat {key} in {hero}/{category}"))["value"]
}

/// Adds `by` to a stat of a labelled body.
pub(crate) fn bump(body: &mut Value, path: [&str; 5], by: f64) {
    let value = stat_mut(body, path);
    *value = json!(value.as_f64().expect("a numeric stat") + by);
}

/// Adds a stat to a category of a labelled body.
pub(crate) fn add_stat(
    body: &mut Value,
    [platform, mode, hero, category, key]: [&str; 5],
    value: f64,
) {
    let stats = category_stats_mut(body, [platform, mode, hero, category]);
    stats.push(json!({"key": key, "label": label_of(key), "value": value}));
}

pub(crate) const TEKROP: &str = "TeKrop-2217";
/// TeKrop's `summary.last_updated_at`, in seconds.
pub(crate) const TEKROP_LAST_UPDATED: i64 = 1_678_536_999;

/// `[hero, category, key]` in pc competitive.
pub(crate) fn competitive_pc([hero, category, key]: [&str; 3]) -> [&str; 5] {
    ["pc", "competitive", hero, category, key]
}

/// Sets `summary.last_updated_at` (seconds) of a body.
pub(crate) fn set_last_updated(body: &mut Value, seconds: i64) {
    body["summary"]["last_updated_at"] = json!(seconds);
}

/// The second snapshot's body: TeKrop after three more competitive games, all on Reaper.
pub(crate) fn tekrop_after_three_games() -> Value {
    let mut body = full_body(TEKROP);
    set_last_updated(&mut body, TEKROP_LAST_UPDATED + 7200);
    for (path, by) in [
        (["all-heroes", "game", "games_played"], 3.0),
        (["all-heroes", "game", "games_won"], 2.0),
        (["all-heroes", "game", "games_lost"], 1.0),
        (["all-heroes", "game", "hero_wins"], 2.0),
        (["all-heroes", "game", "time_played"], 3600.0),
        (["all-heroes", "combat", "eliminations"], 40.0),
        (["all-heroes", "combat", "deaths"], 10.0),
        (["all-heroes", "combat", "final_blows"], 15.0),
        (["all-heroes", "combat", "damage_done"], 5000.0),
        (["all-heroes", "combat", "hero_damage_done"], 5000.0),
        (["all-heroes", "assists", "healing_done"], 1200.0),
        // Not additive: must not show up.
        (
            ["all-heroes", "average", "eliminations_avg_per_10_min"],
            1.5,
        ),
        (["all-heroes", "best", "eliminations_most_in_game"], 5.0),
        (["reaper", "game", "games_played"], 3.0),
        (["reaper", "game", "games_lost"], 1.0),
        (["reaper", "game", "time_played"], 3600.0),
        (["reaper", "combat", "eliminations"], 40.0),
        (["reaper", "combat", "deaths"], 10.0),
        (["reaper", "combat", "all_damage_done"], 5000.0),
        (["reaper", "combat", "hero_damage_done"], 4000.0),
        (["reaper", "combat", "weapon_accuracy"], 3.0),
        (["reaper", "average", "deaths_avg_per_10_min"], -0.5),
    ] {
        bump(&mut body, competitive_pc(path), by);
    }
    // Reaper's first wins: a key the first snapshot did not have counts from zero.
    add_stat(
        &mut body,
        competitive_pc(["reaper", "game", "games_won"]),
        2.0,
    );
    body
}
