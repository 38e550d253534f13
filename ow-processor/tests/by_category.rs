//! `ow.stats.by-category` from real OverFast bodies.

mod common;

use std::collections::{BTreeSet, HashSet};

use apache_avro::Schema;
use common::*;
use ow_domain::{FetchOutcome, StatUnit, StatsByCategory};
use ow_processor::{PlayerFetch, stats_by_category};
use serde_json::json;

fn find<'a>(
    records: &'a [StatsByCategory],
    [platform, mode, hero, category]: [&str; 4],
) -> &'a StatsByCategory {
    records
        .iter()
        .find(|r| {
            r.platform == platform && r.gamemode == mode && r.hero == hero && r.category == category
        })
        .unwrap_or_else(|| panic!("no record {platform}/{mode}/{hero}/{category}"))
}

#[test]
fn johnv1_has_171_category_records() {
    let raw = raw_ok(
        "JohnV1-1190",
        fixture("JohnV1-1190-player-full.json"),
        JAN_1_2024,
    );
    let records = stats_by_category(&raw).unwrap();

    assert_eq!(records.len(), 171);
    // 160 in quickplay over 26 heroes (all-heroes included), 11 in competitive over 2.
    assert_eq!(
        records.iter().filter(|r| r.gamemode == "quickplay").count(),
        160
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.gamemode == "competitive")
            .count(),
        11
    );
    let heroes: BTreeSet<_> = records.iter().map(|r| (&*r.gamemode, &*r.hero)).collect();
    assert_eq!(heroes.len(), 28);
    // 1460 stats sent, 8 of them repeated keys inside their category: 1452 kept.
    assert_eq!(records.iter().map(|r| r.stats.len()).sum::<usize>(), 1452);
    // One record per compaction key.
    let keys: HashSet<_> = records.iter().map(StatsByCategory::key).collect();
    assert_eq!(keys.len(), 171);

    for r in &records {
        assert_eq!(r.player_id, "JohnV1-1190");
        assert_eq!(r.platform, "pc");
        assert_eq!(r.snapshot_at, JAN_1_2024);
        assert_eq!(r.last_updated_at, Some(1_670_258_731_000));
    }

    let game = find(&records, ["pc", "competitive", "all-heroes", "game"]);
    assert_eq!(game.category_label, "Game");
    assert_eq!(game.stats["time_played"].value, 1377.0);
    assert_eq!(game.stats["time_played"].label, "Time Played");

    // Repeated keys: the first one sent wins (Moira's first games_won is the real total).
    let moira = find(&records, ["pc", "quickplay", "moira", "game"]);
    assert_eq!(moira.stats["games_won"].value, 23.0);
    let best = find(&records, ["pc", "quickplay", "all-heroes", "best"]);
    assert_eq!(best.stats["time_spent_on_fire_most_in_game"].value, 503.0);
}

#[test]
fn units_of_named_stats() {
    let raw = raw_ok(
        "JohnV1-1190",
        fixture("JohnV1-1190-player-full.json"),
        JAN_1_2024,
    );
    let records = stats_by_category(&raw).unwrap();
    let unit = |path: [&str; 4], key: &str| find(&records, path).stats[key].unit;
    let qp = |hero, category| ["pc", "quickplay", hero, category];

    assert_eq!(
        unit(qp("all-heroes", "game"), "time_played"),
        StatUnit::Seconds
    );
    assert_eq!(
        unit(qp("all-heroes", "game"), "games_played"),
        StatUnit::Count
    );
    assert_eq!(
        unit(qp("all-heroes", "combat"), "objective_time"),
        StatUnit::Seconds
    );
    assert_eq!(
        unit(qp("all-heroes", "combat"), "time_spent_on_fire"),
        StatUnit::Seconds
    );
    assert_eq!(
        unit(qp("all-heroes", "combat"), "eliminations"),
        StatUnit::Count
    );
    assert_eq!(
        unit(qp("all-heroes", "average"), "deaths_avg_per_10_min"),
        StatUnit::Per10Min
    );
    assert_eq!(
        unit(qp("all-heroes", "average"), "objective_time_avg_per_10_min"),
        StatUnit::Per10Min
    );
    assert_eq!(unit(qp("ana", "game"), "win_percentage"), StatUnit::Percent);
    assert_eq!(
        unit(qp("ana", "combat"), "weapon_accuracy"),
        StatUnit::Percent
    );
    assert_eq!(
        unit(qp("ana", "best"), "weapon_accuracy_best_in_game"),
        StatUnit::Percent
    );
    assert_eq!(
        unit(qp("ana", "average"), "eliminations_per_life"),
        StatUnit::Ratio
    );
    assert_eq!(
        unit(qp("moira", "hero_specific"), "ally_coalescence_efficiency"),
        StatUnit::Percent
    );
    assert_eq!(unit(qp("ana", "match_awards"), "cards"), StatUnit::Count);
    assert_eq!(
        unit(qp("all-heroes", "best"), "kill_streak_best"),
        StatUnit::Count
    );
}

#[test]
fn tekrop_competitive_pc_games_played_is_5() {
    let raw = raw_ok(
        "TeKrop-2217",
        full_body("TeKrop-2217").to_string(),
        JAN_1_2024,
    );
    let records = stats_by_category(&raw).unwrap();
    assert_eq!(records.len(), 278);
    let game = find(&records, ["pc", "competitive", "all-heroes", "game"]);
    assert_eq!(game.stats["games_played"].value, 5.0);
    assert_eq!(game.stats["games_won"].value, 1.0);
    assert_eq!(game.stats["time_played"].value, 2807.0);
    assert_eq!(game.last_updated_at, Some(1_678_536_999_000));
    // The unplayed heroes the helper added as null (hazard everywhere, lucio where TeKrop did
    // not play him) produce nothing: 278 is the count without them.
    assert!(records.iter().all(|r| r.hero != "hazard"));
}

#[test]
fn kiriko_has_console_and_pc() {
    let raw = raw_ok(
        "KIRIKO-21253",
        full_body("KIRIKO-21253").to_string(),
        JAN_1_2024,
    );
    let records = stats_by_category(&raw).unwrap();
    assert_eq!(records.len(), 455);
    let platforms: BTreeSet<_> = records.iter().map(|r| r.platform.as_str()).collect();
    assert_eq!(platforms, BTreeSet::from(["console", "pc"]));
    let console = find(&records, ["console", "competitive", "all-heroes", "game"]);
    assert_eq!(console.stats["games_played"].value, 6.0);
    let pc = find(&records, ["pc", "competitive", "all-heroes", "game"]);
    assert_eq!(pc.stats["games_played"].value, 18.0);
    // A stat no list names passes through.
    assert_eq!(pc.stats["game_tied"].value, 1.0);
    assert_eq!(pc.stats["game_tied"].unit, StatUnit::Count);
}

#[test]
fn private_profile_has_no_stats() {
    let body = fixture("Player-137712-private-player-full.json");
    let raw = raw(
        "Player-137712",
        FetchOutcome::Private,
        Some(body),
        JAN_1_2024,
    );
    let fetch = PlayerFetch::parse(&raw).unwrap();
    assert!(fetch.has_summary());
    assert!(!fetch.has_stats());
    assert!(fetch.stats_by_category().is_empty());
    assert!(fetch.snapshot().is_none());
}

#[test]
fn unknown_platforms_modes_categories_and_stats_pass_through() {
    let body = json!({
        "summary": {"username": "X", "last_updated_at": 1_700_000_000},
        "stats": {
            "pc": null,
            "switch": {
                "quickplay": null,
                "arcade": {
                    "career_stats": {
                        "all-heroes": null,
                        "brand-new-hero": [
                            {"category": "fresh_category", "label": "Fresh", "stats": [
                                {"key": "zorblax_kills", "label": "Zorblax Kills", "value": 7},
                                {"key": "zorblax_time", "label": "Zorblax Time", "value": "1:05"},
                                {"key": "zorblax_accuracy", "value": 41.5},
                                {"key": "unknown_value", "label": "?", "value": null}
                            ]},
                            {"category": "empty", "label": "Empty", "stats": null},
                            {"category": "fresh_category", "stats": [
                                {"key": "zorblax_kills", "label": "Again", "value": 99},
                                {"key": "second_part", "label": "Second", "value": 1}
                            ]}
                        ]
                    }
                },
                "competitive": {"career_stats": null}
            }
        }
    });
    let raw = raw_ok("X-1", body.to_string(), JAN_1_2024);
    let records = stats_by_category(&raw).unwrap();
    assert_eq!(records.len(), 2);
    let fresh = find(
        &records,
        ["switch", "arcade", "brand-new-hero", "fresh_category"],
    );
    assert_eq!(fresh.category_label, "Fresh");
    assert_eq!(fresh.stats.len(), 4);
    assert_eq!(fresh.stats["zorblax_kills"].value, 7.0);
    assert_eq!(fresh.stats["zorblax_kills"].label, "Zorblax Kills");
    assert_eq!(fresh.stats["zorblax_kills"].unit, StatUnit::Count);
    assert_eq!(fresh.stats["zorblax_time"].value, 65.0);
    assert_eq!(fresh.stats["zorblax_time"].unit, StatUnit::Seconds);
    assert_eq!(fresh.stats["zorblax_accuracy"].label, "zorblax_accuracy");
    assert_eq!(fresh.stats["zorblax_accuracy"].unit, StatUnit::Percent);
    assert_eq!(fresh.stats["second_part"].value, 1.0);
    let empty = find(&records, ["switch", "arcade", "brand-new-hero", "empty"]);
    assert!(empty.stats.is_empty());
    assert_eq!(fresh.last_updated_at, Some(1_700_000_000_000));
}

#[test]
fn every_record_and_key_fits_its_schema() {
    let value_schema = Schema::parse_str(ow_domain::STATS_BY_CATEGORY_VALUE).unwrap();
    let key_schema = Schema::parse_str(ow_domain::STATS_CATEGORY_KEY).unwrap();
    for raw in [
        raw_ok(
            "JohnV1-1190",
            fixture("JohnV1-1190-player-full.json"),
            JAN_1_2024,
        ),
        raw_ok(
            "KIRIKO-21253",
            full_body("KIRIKO-21253").to_string(),
            JAN_1_2024,
        ),
    ] {
        for record in stats_by_category(&raw).unwrap() {
            let value = apache_avro::to_value(&record)
                .unwrap()
                .resolve(&value_schema)
                .unwrap();
            let back: StatsByCategory = apache_avro::from_value(&value).unwrap();
            assert_eq!(back, record);
            apache_avro::to_value(record.key())
                .unwrap()
                .resolve(&key_schema)
                .unwrap();
        }
    }
}
