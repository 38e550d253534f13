//! `ow.stats.deltas` and `ow.stats.daily` from real snapshots with bumped counters.

mod common;

use std::collections::BTreeMap;

use apache_avro::Schema;
use common::*;
use ow_domain::hero::ALL_HEROES;
use ow_domain::{DailyStats, FetchOutcome, PlayerSnapshot, StatsDelta};
use ow_processor::{DAY_MS, add_delta, compute_deltas, snapshot_of, supersedes};
use serde_json::{Value, json};

const LAST_UPDATED: i64 = TEKROP_LAST_UPDATED;

fn at(path: [&str; 3]) -> [&str; 5] {
    competitive_pc(path)
}

fn after_three_games() -> Value {
    tekrop_after_three_games()
}

fn snapshot(body: &Value, fetched_at: i64) -> PlayerSnapshot {
    snapshot_of(&raw_ok(TEKROP, body.to_string(), fetched_at))
        .expect("a good body")
        .expect("a body with stats")
}

fn stats(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

const T1: i64 = JAN_1_2024 + 10 * HOUR;
const T2: i64 = JAN_1_2024 + 12 * HOUR;
const T3: i64 = JAN_1_2024 + 20 * HOUR;

#[test]
fn snapshot_keeps_additive_stats_only() {
    let first = snapshot(&full_body(TEKROP), T1);
    assert_eq!(first.player_id, TEKROP);
    assert_eq!(first.snapshot_at, T1);
    assert_eq!(first.last_updated_at, Some(LAST_UPDATED * 1000));
    assert_eq!(first.entries.len(), 44);
    let all = first
        .entries
        .iter()
        .find(|e| e.platform == "pc" && e.gamemode == "competitive" && e.hero == ALL_HEROES)
        .unwrap();
    assert_eq!(
        all.stats,
        stats(&[
            ("time_played", 2807.0),
            ("games_played", 5.0),
            ("games_won", 1.0),
            ("games_lost", 4.0),
            ("hero_wins", 1.0),
            ("deaths", 30.0),
            ("objective_kills", 22.0),
            ("final_blows", 18.0),
            ("objective_time", 418.0),
            ("eliminations", 51.0),
            ("objective_contest_time", 233.0),
            ("multikills", 1.0),
            ("hero_damage_done", 34098.0),
            ("environmental_kills", 1.0),
            ("damage_done", 34098.0),
            ("healing_done", 12703.0),
            ("defensive_assists", 29.0),
            ("assists", 35.0),
            ("offensive_assists", 21.0),
        ])
    );
}

#[test]
fn three_more_games_give_exact_deltas() {
    let first = snapshot(&full_body(TEKROP), T1);
    let second = snapshot(&after_three_games(), T2);
    assert!(supersedes(Some(&first), &second));

    let deltas = compute_deltas(Some(&first), &second);
    let base = StatsDelta {
        player_id: TEKROP.into(),
        platform: "pc".into(),
        gamemode: "competitive".into(),
        previous_snapshot_at: T1,
        snapshot_at: T2,
        previous_last_updated_at: Some(LAST_UPDATED * 1000),
        last_updated_at: Some((LAST_UPDATED + 7200) * 1000),
        ..StatsDelta::default()
    };
    assert_eq!(
        deltas,
        vec![
            StatsDelta {
                hero: ALL_HEROES.into(),
                games_played: 3.0,
                games_won: 2.0,
                games_lost: 1.0,
                time_played: 3600.0,
                eliminations: 40.0,
                deaths: 10.0,
                // all-heroes has no all_damage_done: damage_done is the next in line.
                damage: 5000.0,
                healing: 1200.0,
                stats: stats(&[
                    ("games_played", 3.0),
                    ("games_won", 2.0),
                    ("games_lost", 1.0),
                    ("hero_wins", 2.0),
                    ("time_played", 3600.0),
                    ("eliminations", 40.0),
                    ("deaths", 10.0),
                    ("final_blows", 15.0),
                    ("damage_done", 5000.0),
                    ("hero_damage_done", 5000.0),
                    ("healing_done", 1200.0),
                ]),
                ..base.clone()
            },
            StatsDelta {
                hero: "reaper".into(),
                games_played: 3.0,
                games_won: 2.0,
                games_lost: 1.0,
                time_played: 3600.0,
                eliminations: 40.0,
                deaths: 10.0,
                damage: 5000.0,
                healing: 0.0,
                stats: stats(&[
                    ("games_played", 3.0),
                    ("games_won", 2.0),
                    ("games_lost", 1.0),
                    ("time_played", 3600.0),
                    ("eliminations", 40.0),
                    ("deaths", 10.0),
                    ("all_damage_done", 5000.0),
                    ("hero_damage_done", 4000.0),
                ]),
                ..base
            },
        ]
    );
}

#[test]
fn the_same_snapshot_twice_gives_nothing() {
    let first = snapshot(&full_body(TEKROP), T1);
    let second = snapshot(&after_three_games(), T2);
    assert!(compute_deltas(Some(&second), &second).is_empty());
    assert!(!supersedes(Some(&second), &second));
    // Fetched again later, Blizzard not updated since: same last_updated_at, nothing.
    let refetched = snapshot(&after_three_games(), T3);
    assert!(compute_deltas(Some(&second), &refetched).is_empty());
    assert!(!supersedes(Some(&second), &refetched));
    // An older snapshot arriving late: nothing, and it does not replace the newer one.
    assert!(compute_deltas(Some(&second), &first).is_empty());
    assert!(!supersedes(Some(&second), &first));
    // The first snapshot of a player is the baseline.
    assert!(compute_deltas(None, &first).is_empty());
    assert!(supersedes(None, &first));
}

#[test]
fn without_last_updated_at_changed_stats_decide() {
    let mut before = full_body(TEKROP);
    before["summary"]
        .as_object_mut()
        .unwrap()
        .remove("last_updated_at");
    let mut after = after_three_games();
    after["summary"]
        .as_object_mut()
        .unwrap()
        .remove("last_updated_at");
    let first = snapshot(&before, T1);
    let second = snapshot(&after, T2);
    assert_eq!(first.last_updated_at, None);
    let deltas = compute_deltas(Some(&first), &second);
    assert_eq!(deltas.len(), 2);
    assert_eq!(deltas[0].games_played, 3.0);
    assert_eq!(deltas[0].last_updated_at, None);
    // Fetched again with the same values: nothing changed, nothing emitted.
    assert!(compute_deltas(Some(&second), &snapshot(&after, T3)).is_empty());
}

#[test]
fn decreasing_counters_are_a_reset_not_negative_deltas() {
    let first = snapshot(&full_body(TEKROP), T1);
    let mut body = after_three_games();
    // all-heroes was reset to 2 games; Reaper's counters still went up.
    *stat_mut(&mut body, at(["all-heroes", "game", "games_played"])) = json!(2);
    let second = snapshot(&body, T2);
    let deltas = compute_deltas(Some(&first), &second);
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].hero, "reaper");
    assert!(
        deltas
            .iter()
            .flat_map(|d| d.stats.values())
            .all(|v| *v > 0.0)
    );

    // Stored as the new baseline, the next gains count from the lower values.
    assert!(supersedes(Some(&first), &second));
    let mut later = body.clone();
    set_last_updated(&mut later, LAST_UPDATED + 9000);
    bump(&mut later, at(["all-heroes", "game", "games_played"]), 1.0);
    let deltas = compute_deltas(Some(&second), &snapshot(&later, T3));
    assert_eq!(deltas.len(), 1);
    assert_eq!(
        (deltas[0].hero.as_str(), deltas[0].games_played),
        (ALL_HEROES, 1.0)
    );
}

#[test]
fn new_heroes_count_from_zero_new_modes_are_a_baseline() {
    let mut before = full_body(TEKROP);
    before["stats"]["pc"]
        .as_object_mut()
        .unwrap()
        .remove("quickplay");
    let first = snapshot(&before, T1);

    let mut after = after_three_games();
    // A hero never played before, in a mode already known.
    after["stats"]["pc"]["competitive"]["career_stats"]["kiriko"] = json!([
        {"category": "game", "label": "Game", "stats": [
            {"key": "games_played", "label": "Games Played", "value": 1},
            {"key": "win_percentage", "label": "Win Percentage", "value": 100}
        ]}
    ]);
    // A hero that disappears: ignored.
    after["stats"]["pc"]["competitive"]["career_stats"]["ana"] = Value::Null;
    // Quickplay is new to this player's state, even with more games in it: a baseline.
    bump(
        &mut after,
        ["pc", "quickplay", "all-heroes", "game", "games_played"],
        10.0,
    );
    let second = snapshot(&after, T2);

    let deltas = compute_deltas(Some(&first), &second);
    let heroes: Vec<(&str, &str)> = deltas
        .iter()
        .map(|d| (d.gamemode.as_str(), d.hero.as_str()))
        .collect();
    // In body order (this body went through serde_json::Value, which sorts keys).
    assert_eq!(
        heroes,
        [
            ("competitive", ALL_HEROES),
            ("competitive", "kiriko"),
            ("competitive", "reaper")
        ]
    );
    assert_eq!(deltas[1].stats, stats(&[("games_played", 1.0)]));
}

#[test]
fn a_private_fetch_has_no_snapshot_to_store() {
    let body = fixture("Player-137712-private-player-full.json");
    let event = raw("Player-137712", FetchOutcome::Private, Some(body), T1);
    assert_eq!(snapshot_of(&event).unwrap(), None);
    let failed = raw(TEKROP, FetchOutcome::UpstreamError, None, T1);
    assert_eq!(snapshot_of(&failed).unwrap(), None);
    let empty = raw_ok(TEKROP, r#"{"summary": {}, "stats": {"pc": null}}"#, T1);
    assert_eq!(snapshot_of(&empty).unwrap(), None);
}

#[test]
fn a_day_of_deltas_sums_all_heroes_only() {
    let first = snapshot(&full_body(TEKROP), T1);
    let second = snapshot(&after_three_games(), T2);
    let mut body = after_three_games();
    set_last_updated(&mut body, LAST_UPDATED + 30_000);
    for (path, by) in [
        (["all-heroes", "game", "games_played"], 2.0),
        (["all-heroes", "game", "games_won"], 1.0),
        (["all-heroes", "game", "games_lost"], 1.0),
        (["all-heroes", "game", "time_played"], 1800.0),
        (["all-heroes", "combat", "eliminations"], 25.0),
        (["all-heroes", "combat", "deaths"], 8.0),
        (["all-heroes", "combat", "damage_done"], 3000.0),
        (["all-heroes", "combat", "hero_damage_done"], 3000.0),
        (["tracer", "game", "time_played"], 1800.0),
    ] {
        bump(&mut body, at(path), by);
    }
    let third = snapshot(&body, T3);
    let mut next_day_body = body.clone();
    set_last_updated(&mut next_day_body, LAST_UPDATED + 100_000);
    bump(
        &mut next_day_body,
        at(["all-heroes", "game", "games_played"]),
        1.0,
    );
    let fourth = snapshot(&next_day_body, JAN_1_2024 + DAY_MS + HOUR);

    let mut deltas = compute_deltas(Some(&first), &second);
    deltas.extend(compute_deltas(Some(&second), &third));
    assert_eq!(
        deltas.len(),
        4,
        "all-heroes + reaper, then all-heroes + tracer"
    );

    // Every delta is fed, per-hero ones included: only all-heroes count.
    let day = deltas.iter().fold(DailyStats::default(), add_delta);
    assert_eq!(
        day,
        DailyStats {
            player_id: TEKROP.into(),
            platform: "pc".into(),
            gamemode: "competitive".into(),
            window_start: JAN_1_2024,
            window_end: JAN_1_2024 + DAY_MS,
            games_played: 5.0,
            games_won: 3.0,
            games_lost: 2.0,
            time_played: 5400.0,
            eliminations: 65.0,
            deaths: 18.0,
            damage: 8000.0,
            healing: 1200.0,
            delta_count: 2,
            last_snapshot_at: T3,
        }
    );

    let next = compute_deltas(Some(&third), &fourth);
    let next_day = next.iter().fold(DailyStats::default(), add_delta);
    assert_eq!(next_day.window_start, JAN_1_2024 + DAY_MS);
    assert_eq!(
        (
            next_day.games_played,
            next_day.time_played,
            next_day.delta_count
        ),
        (1.0, 0.0, 1)
    );
}

#[test]
fn state_and_outputs_fit_their_schemas() {
    let first = snapshot(&full_body(TEKROP), T1);
    let second = snapshot(&after_three_games(), T2);

    let schema = Schema::parse_str(ow_domain::PLAYER_SNAPSHOT_VALUE).unwrap();
    let value = apache_avro::to_value(&second)
        .unwrap()
        .resolve(&schema)
        .unwrap();
    assert_eq!(
        apache_avro::from_value::<PlayerSnapshot>(&value).unwrap(),
        second
    );
    let json = serde_json::to_string(&second).unwrap();
    assert_eq!(
        serde_json::from_str::<PlayerSnapshot>(&json).unwrap(),
        second
    );

    let delta_schema = Schema::parse_str(ow_domain::STATS_DELTA_VALUE).unwrap();
    let daily_schema = Schema::parse_str(ow_domain::DAILY_STATS_VALUE).unwrap();
    let deltas = compute_deltas(Some(&first), &second);
    for delta in &deltas {
        let value = apache_avro::to_value(delta)
            .unwrap()
            .resolve(&delta_schema)
            .unwrap();
        assert_eq!(
            &apache_avro::from_value::<StatsDelta>(&value).unwrap(),
            delta
        );
    }
    let day = deltas.iter().fold(DailyStats::default(), add_delta);
    let value = apache_avro::to_value(&day)
        .unwrap()
        .resolve(&daily_schema)
        .unwrap();
    assert_eq!(apache_avro::from_value::<DailyStats>(&value).unwrap(), day);
}
