//! The processor's topology through the test driver, with real OverFast bodies: exact records
//! on every output topic, the stores, dead letters, and duplicate deliveries.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::pipeline::{Driven, drive, registry};
use common::stream::{snapshot_stream, with_duplicates};
use common::*;
use ow_domain::hero::ALL_HEROES;
use ow_domain::{
    CompetitiveRank, DailyStats, DailyStatsKey, FetchOutcome, PlayerProfile, PlayerSnapshot,
    RawPlayerProfile, StatsByCategory, StatsDelta,
};
use ow_processor::{
    DAILY_STORE, DAY_MS, PROFILE_STORE, SNAPSHOT_STORE, TopologyOptions, apply_fetch, build,
    snapshot_of,
};
use ow_stream_core::Record;
use serde_json::Value;

const DESCRIPTION: &str = "\
Topologies:
   Sub-topology: 0
    Source: ow.raw.player-profiles-source (topic: ow.raw.player-profiles)
      --> parse-fetch
    Processor: parse-fetch (stores: [])
      --> player-profile, newer-snapshots
      <-- ow.raw.player-profiles-source
    Processor: player-profile (stores: [player-profile])
      --> ow.players.profile-sink
      <-- parse-fetch
    Sink: ow.players.profile-sink (topic: ow.players.profile)
      <-- player-profile
    Processor: newer-snapshots (stores: [player-last-snapshot])
      --> stats-deltas, stats-by-category
      <-- parse-fetch
    Processor: stats-deltas (stores: [])
      --> ow.stats.deltas-sink, all-heroes-deltas
      <-- newer-snapshots
    Sink: ow.stats.deltas-sink (topic: ow.stats.deltas)
      <-- stats-deltas
    Processor: all-heroes-deltas (stores: [])
      --> daily-key
      <-- stats-deltas
    Processor: daily-key (stores: [])
      --> player-daily-stats
      <-- all-heroes-deltas
    Processor: player-daily-stats (stores: [player-daily-stats])
      --> daily-stats-record
      <-- daily-key
    Processor: daily-stats-record (stores: [])
      --> ow.stats.daily-sink
      <-- player-daily-stats
    Sink: ow.stats.daily-sink (topic: ow.stats.daily)
      <-- daily-stats-record
    Processor: stats-by-category (stores: [])
      --> ow.stats.by-category-sink
      <-- newer-snapshots
    Sink: ow.stats.by-category-sink (topic: ow.stats.by-category)
      <-- stats-by-category
Stores:
   player-last-snapshot (key-value, sub-topology 0, changelog: ${application_id}-player-last-snapshot-changelog)
   player-profile (key-value, sub-topology 0, changelog: ${application_id}-player-profile-changelog)
   player-daily-stats (window(86400000ms, retention 604800000ms), sub-topology 0, changelog: ${application_id}-player-daily-stats-changelog)
";

#[test]
fn describe_is_stable() {
    let topology = build(&registry("describe"), &TopologyOptions::default()).unwrap();
    let description = topology.describe();
    assert_eq!(description.to_string(), DESCRIPTION);
    let json = serde_json::to_value(&description).unwrap();
    assert_eq!(json["subtopologies"][0]["nodes"][1]["name"], "parse-fetch");
    assert_eq!(
        json["stores"][1]["value_serde"],
        "avro(ow.players.PlayerProfile)"
    );
    // Resolved for the application, as the dashboard draws it.
    let text = topology
        .describe_for_application("ow-processor")
        .to_string();
    assert!(text.contains("changelog: ow-processor-player-last-snapshot-changelog"));

    let prefixed = build(
        &registry("describe"),
        &TopologyOptions::default().with_topic_prefix("staging."),
    )
    .unwrap()
    .describe()
    .to_string();
    assert!(prefixed.contains(
        "Source: staging.ow.raw.player-profiles-source (topic: staging.ow.raw.player-profiles)"
    ));
    assert!(prefixed.contains("Sink: staging.ow.stats.daily-sink (topic: staging.ow.stats.daily)"));
    assert!(
        build(
            &registry("describe"),
            &TopologyOptions::default().with_topic_prefix("bad prefix/")
        )
        .is_err()
    );
}

fn find<'a>(
    records: &'a [Record<ow_domain::StatsCategoryKey, StatsByCategory>],
    [platform, mode, hero, category]: [&str; 4],
) -> &'a StatsByCategory {
    &records
        .iter()
        .find(|r| {
            let v = &r.value;
            v.platform == platform && v.gamemode == mode && v.hero == hero && v.category == category
        })
        .unwrap_or_else(|| panic!("no record {platform}/{mode}/{hero}/{category}"))
        .value
}

fn category_records(d: &Driven) -> Vec<Record<ow_domain::StatsCategoryKey, StatsByCategory>> {
    d.driver
        .output_topic(&d.topics.stats_by_category)
        .read_records()
        .unwrap()
}

fn profile_records(d: &Driven) -> Vec<Record<String, PlayerProfile>> {
    d.driver
        .output_topic(&d.topics.profiles)
        .read_records()
        .unwrap()
}

fn snapshot_in_store(d: &Driven, player: &str) -> Option<PlayerSnapshot> {
    d.driver
        .key_value_store::<String, PlayerSnapshot>(SNAPSHOT_STORE)
        .unwrap()
        .get(&player.to_string())
        .unwrap()
}

#[test]
fn johnv1_full_body() {
    let d = drive("johnv1");
    let raw = raw_ok(
        "JohnV1-1190",
        fixture("JohnV1-1190-player-full.json"),
        JAN_1_2024,
    );
    d.pipe(&raw);

    let records = category_records(&d);
    assert_eq!(records.len(), 171);
    for r in &records {
        assert_eq!(r.key, r.value.key());
        assert_eq!(r.timestamp, JAN_1_2024);
        assert_eq!(r.value.player_id, "JohnV1-1190");
        assert_eq!(r.value.last_updated_at, Some(1_670_258_731_000));
    }
    let keys: BTreeSet<_> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 171, "one record per compaction key");
    assert_eq!(
        records.iter().map(|r| r.value.stats.len()).sum::<usize>(),
        1452
    );
    let game = find(&records, ["pc", "competitive", "all-heroes", "game"]);
    assert_eq!(game.category_label, "Game");
    assert_eq!(game.stats["time_played"].value, 1377.0);
    assert_eq!(game.stats["time_played"].label, "Time Played");
    let moira = find(&records, ["pc", "quickplay", "moira", "game"]);
    assert_eq!(moira.stats["games_won"].value, 23.0);

    let profiles = profile_records(&d);
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].key, "JohnV1-1190");
    let profile = &profiles[0].value;
    assert_eq!(*profile, apply_fetch(None, &raw).unwrap());
    assert_eq!(profile.username.as_deref(), Some("JohnV1"));
    assert_eq!(
        (profile.title.as_deref(), profile.namecard.as_deref()),
        (None, None)
    );
    assert_eq!(profile.last_updated_at, Some(1_670_258_731_000));
    assert_eq!(profile.status.outcome, FetchOutcome::Ok);

    // The first snapshot is the baseline: stored, no delta, no daily sum.
    let stored = snapshot_in_store(&d, "JohnV1-1190").unwrap();
    assert_eq!(stored, snapshot_of(&raw).unwrap().unwrap());
    assert_eq!(stored.snapshot_at, JAN_1_2024);
    assert!(d.driver.output_topic(&d.topics.deltas).is_empty());
    assert!(d.driver.output_topic(&d.topics.daily).is_empty());
    assert!(d.driver.dead_letters().is_empty());
    assert_eq!(
        d.driver
            .key_value_store::<String, PlayerProfile>(PROFILE_STORE)
            .unwrap()
            .get(&"JohnV1-1190".to_string())
            .unwrap()
            .as_ref(),
        Some(profile)
    );
}

#[test]
fn kiriko_has_console_and_pc() {
    let d = drive("kiriko");
    let raw = raw_ok(
        "KIRIKO-21253",
        full_body("KIRIKO-21253").to_string(),
        JAN_1_2024,
    );
    d.pipe(&raw);
    let records = category_records(&d);
    assert_eq!(records.len(), 455);
    let platforms: BTreeSet<_> = records.iter().map(|r| r.value.platform.as_str()).collect();
    assert_eq!(platforms, BTreeSet::from(["console", "pc"]));
    let per_platform = |p: &str| records.iter().filter(|r| r.value.platform == p).count();
    assert_eq!(per_platform("console") + per_platform("pc"), 455);
    assert!(per_platform("console") > 0 && per_platform("pc") > 0);
    let console = find(&records, ["console", "competitive", "all-heroes", "game"]);
    assert_eq!(console.stats["games_played"].value, 6.0);
    let pc = find(&records, ["pc", "competitive", "all-heroes", "game"]);
    assert_eq!(pc.stats["games_played"].value, 18.0);
    assert_eq!(pc.stats["game_tied"].value, 1.0);

    let profile = &profile_records(&d)[0].value;
    assert_eq!(profile.title.as_deref(), Some("Diamond Damage"));
    let ranks: Vec<_> = profile
        .competitive
        .iter()
        .map(|r: &CompetitiveRank| {
            (
                r.platform.as_str(),
                r.role.as_str(),
                r.division.as_str(),
                r.tier,
            )
        })
        .collect();
    assert_eq!(ranks, [("pc", "damage", "diamond", 5)]);

    let stored = snapshot_in_store(&d, "KIRIKO-21253").unwrap();
    let modes: BTreeSet<_> = stored
        .entries
        .iter()
        .map(|e| (e.platform.as_str(), e.gamemode.as_str()))
        .collect();
    assert!(modes.contains(&("console", "competitive")) && modes.contains(&("pc", "competitive")));
}

#[test]
fn a_private_profile_gives_a_status_and_no_stats() {
    let d = drive("private");
    let raw = raw(
        "Player-137712",
        FetchOutcome::Private,
        Some(fixture("Player-137712-private-player-full.json")),
        JAN_1_2024,
    );
    d.pipe(&raw);
    let profiles = profile_records(&d);
    assert_eq!(profiles.len(), 1);
    let profile = &profiles[0].value;
    assert_eq!(profile.status.outcome, FetchOutcome::Private);
    assert_eq!(profile.status.fetched_at, JAN_1_2024);
    assert_eq!(profile.username.as_deref(), Some("Player"));
    assert_eq!(profile.endorsement.as_ref().map(|e| e.level), Some(3));
    assert!(category_records(&d).is_empty());
    assert!(d.driver.output_topic(&d.topics.deltas).is_empty());
    assert_eq!(snapshot_in_store(&d, "Player-137712"), None);
    assert!(d.driver.dead_letters().is_empty());
}

const T1: i64 = JAN_1_2024 + 10 * HOUR;
const T2: i64 = JAN_1_2024 + 12 * HOUR;
const T3: i64 = JAN_1_2024 + 20 * HOUR;

fn tekrop(body: &Value, at: i64) -> RawPlayerProfile {
    raw_ok(TEKROP, body.to_string(), at)
}

#[test]
fn bumped_counters_give_exact_deltas_and_daily_sums() {
    let d = drive("deltas");
    let mut deltas = d.driver.output_topic(&d.topics.deltas);
    let mut daily = d.driver.output_topic(&d.topics.daily);

    d.pipe(&tekrop(&full_body(TEKROP), T1));
    assert_eq!(category_records(&d).len(), 278);
    let second = tekrop_after_three_games();
    d.pipe(&tekrop(&second, T2));
    assert_eq!(category_records(&d).len(), 278 * 2);

    let base = StatsDelta {
        player_id: TEKROP.into(),
        platform: "pc".into(),
        gamemode: "competitive".into(),
        previous_snapshot_at: T1,
        snapshot_at: T2,
        previous_last_updated_at: Some(TEKROP_LAST_UPDATED * 1000),
        last_updated_at: Some((TEKROP_LAST_UPDATED + 7200) * 1000),
        ..StatsDelta::default()
    };
    let stats = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    let got = deltas.read_records().unwrap();
    assert!(got.iter().all(|r| r.key == TEKROP && r.timestamp == T2));
    assert_eq!(
        got.into_iter().map(|r| r.value).collect::<Vec<_>>(),
        vec![
            StatsDelta {
                hero: ALL_HEROES.into(),
                games_played: 3.0,
                games_won: 2.0,
                games_lost: 1.0,
                time_played: 3600.0,
                eliminations: 40.0,
                deaths: 10.0,
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
    let day_key = DailyStatsKey {
        player_id: TEKROP.into(),
        platform: "pc".into(),
        gamemode: "competitive".into(),
        window_start: JAN_1_2024,
    };
    let first_day = DailyStats {
        player_id: TEKROP.into(),
        platform: "pc".into(),
        gamemode: "competitive".into(),
        window_start: JAN_1_2024,
        window_end: JAN_1_2024 + DAY_MS,
        games_played: 3.0,
        games_won: 2.0,
        games_lost: 1.0,
        time_played: 3600.0,
        eliminations: 40.0,
        deaths: 10.0,
        damage: 5000.0,
        healing: 1200.0,
        delta_count: 1,
        last_snapshot_at: T2,
    };
    let got = daily.read_records().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (&got[0].key, &got[0].value, got[0].timestamp),
        (&day_key, &first_day, T2)
    );

    // Fetched again, Blizzard not updated since: status only, nothing else written.
    d.pipe(&tekrop(&second, T2 + HOUR));
    assert_eq!(category_records(&d).len(), 278 * 2);
    assert!(deltas.is_empty() && daily.is_empty());
    assert_eq!(
        profile_records(&d).last().unwrap().value.status.fetched_at,
        T2 + HOUR
    );

    // Two more games later that day, then one the next day.
    let mut third = second.clone();
    set_last_updated(&mut third, TEKROP_LAST_UPDATED + 30_000);
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
        bump(&mut third, competitive_pc(path), by);
    }
    d.pipe(&tekrop(&third, T3));
    let got: Vec<(String, String)> = deltas
        .read_records()
        .unwrap()
        .into_iter()
        .map(|r| (r.value.hero, r.value.gamemode))
        .collect();
    assert_eq!(
        got,
        [
            (ALL_HEROES.to_string(), "competitive".to_string()),
            ("tracer".to_string(), "competitive".to_string())
        ]
    );
    let second_day_total = DailyStats {
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
        ..first_day.clone()
    };
    assert_eq!(
        daily.read_key_values().unwrap(),
        vec![(day_key.clone(), second_day_total.clone())]
    );

    let mut fourth = third.clone();
    set_last_updated(&mut fourth, TEKROP_LAST_UPDATED + 100_000);
    bump(
        &mut fourth,
        competitive_pc(["all-heroes", "game", "games_played"]),
        1.0,
    );
    let next_day = JAN_1_2024 + DAY_MS + HOUR;
    d.pipe(&tekrop(&fourth, next_day));
    let got = daily.read_key_values().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        DailyStatsKey {
            window_start: JAN_1_2024 + DAY_MS,
            ..day_key.clone()
        }
    );
    assert_eq!(
        (
            got[0].1.games_played,
            got[0].1.time_played,
            got[0].1.delta_count
        ),
        (1.0, 0.0, 1)
    );

    // Both days are in the window store, for interactive queries.
    let store = d
        .driver
        .window_store::<DailyStatsKey, DailyStats>(DAILY_STORE)
        .unwrap();
    let days = store
        .fetch(&day_key, JAN_1_2024, JAN_1_2024 + 2 * DAY_MS)
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].1, second_day_total);
    assert_eq!(snapshot_in_store(&d, TEKROP).unwrap().snapshot_at, next_day);
    assert!(d.driver.dead_letters().is_empty());
    assert_eq!(d.driver.metrics().late_records_dropped, 0);
}

#[test]
fn failed_fetches_update_the_status_and_keep_the_stats() {
    let d = drive("failed");
    let good = raw_ok(
        "KIRIKO-21253",
        full_body("KIRIKO-21253").to_string(),
        JAN_1_2024,
    );
    d.pipe(&good);
    let stored = snapshot_in_store(&d, "KIRIKO-21253").unwrap();
    let first = profile_records(&d)[0].value.clone();

    let mut not_found = raw(
        "KIRIKO-21253",
        FetchOutcome::NotFound,
        None,
        JAN_1_2024 + HOUR,
    );
    not_found.body = Some(r#"{"error": "Player not found"}"#.into());
    not_found.next_attempt_at = Some(JAN_1_2024 + 3 * HOUR);
    let mut limited = raw(
        "KIRIKO-21253",
        FetchOutcome::RateLimited,
        None,
        JAN_1_2024 + 2 * HOUR,
    );
    limited.error = Some("429 too many requests after 3 attempts".into());
    let mut broken = raw(
        "KIRIKO-21253",
        FetchOutcome::UpstreamError,
        None,
        JAN_1_2024 + 3 * HOUR,
    );
    broken.error = Some("timeout after 10 s".into());
    for event in [&not_found, &limited, &broken] {
        d.pipe(event);
    }

    let profiles: Vec<PlayerProfile> = profile_records(&d).into_iter().map(|r| r.value).collect();
    let outcomes: Vec<_> = profiles.iter().map(|p| p.status.outcome).collect();
    assert_eq!(
        outcomes,
        [
            FetchOutcome::Ok,
            FetchOutcome::NotFound,
            FetchOutcome::RateLimited,
            FetchOutcome::UpstreamError
        ]
    );
    assert_eq!(
        profiles[1].status.next_check_at,
        Some(JAN_1_2024 + 3 * HOUR)
    );
    let last = profiles.last().unwrap();
    assert_eq!(last.status.message.as_deref(), Some("timeout after 10 s"));
    // Everything but the status is the last good fetch's.
    assert_eq!(
        PlayerProfile {
            status: first.status.clone(),
            ..last.clone()
        },
        first
    );
    assert_eq!(
        category_records(&d).len(),
        455,
        "failed fetches write no stats"
    );
    assert_eq!(snapshot_in_store(&d, "KIRIKO-21253"), Some(stored));
    assert!(d.driver.dead_letters().is_empty());
}

#[test]
fn bad_events_go_to_the_dead_letter_topic_and_the_rest_flows() {
    let d = drive("bad");
    let input = d.driver.input_topic(&d.topics.raw);
    let pipe_keyed = |key: &str, raw: &RawPlayerProfile| {
        input
            .pipe_record(Record::new(key.to_string(), raw.clone(), raw.fetched_at))
            .unwrap();
    };
    // offset 0: a body that is not JSON.
    pipe_keyed("Bad-1", &raw_ok("Bad-1", "{not json", JAN_1_2024));
    // 1: JSON without a summary.
    pipe_keyed("Bad-1", &raw_ok("Bad-1", r#"{"stats": null}"#, JAN_1_2024));
    // 2: an ok fetch without a body.
    pipe_keyed("Bad-1", &raw("Bad-1", FetchOutcome::Ok, None, JAN_1_2024));
    // 3: keyed by another player than the one it carries.
    let good = raw_ok(TEKROP, full_body(TEKROP).to_string(), JAN_1_2024);
    pipe_keyed("Someone-1", &good);
    // 4: an empty player id.
    pipe_keyed("", &raw_ok("", full_body(TEKROP).to_string(), JAN_1_2024));
    // 5: bytes that are not a RawPlayerProfile; 6: a tombstone.
    let key = d.topics.raw.serialize_key(&"Bad-1".to_string()).unwrap();
    input
        .pipe_raw(Some(&key), Some(b"\0garbage"), JAN_1_2024)
        .unwrap();
    input.pipe_raw(Some(&key), None, JAN_1_2024).unwrap();
    // 7: a good event still goes through.
    d.pipe(&good);

    let dlq = d.driver.dead_letters();
    let inputs = d.driver.raw_records("ow.raw.player-profiles");
    let seen: Vec<(i64, &str, Option<&str>)> = dlq
        .iter()
        .map(|r| {
            let h = &r.headers;
            assert_eq!(h.last_str("ow.dlq.topic"), Some("ow.raw.player-profiles"));
            assert_eq!(h.last_str("ow.dlq.partition"), Some("0"));
            assert_eq!(h.last_str("ow.dlq.application"), Some("ow-processor"));
            let offset: i64 = h.last_str("ow.dlq.offset").unwrap().parse().unwrap();
            // The record itself, byte for byte.
            let input = &inputs[offset as usize];
            assert_eq!(
                (&r.key, &r.value, r.timestamp),
                (&input.key, &input.value, input.timestamp)
            );
            (
                offset,
                h.last_str("ow.dlq.stage").unwrap(),
                h.last_str("ow.dlq.node"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (0, "process", Some("parse-fetch")),
            (1, "process", Some("parse-fetch")),
            (2, "process", Some("parse-fetch")),
            (3, "process", Some("parse-fetch")),
            (4, "process", Some("parse-fetch")),
            (5, "deserialize", None),
            (6, "deserialize", None),
        ]
    );
    let error = |i: usize| dlq[i].headers.last_str("ow.dlq.error").unwrap().to_string();
    assert_eq!(
        error(0),
        "body of player Bad-1 fetched at 1704067200000 is not json (line 1, column 2)"
    );
    assert_eq!(
        error(1),
        "body of player Bad-1 fetched at 1704067200000 has no summary"
    );
    assert_eq!(
        error(2),
        "fetch of player Bad-1 at 1704067200000 ended ok but carries no body"
    );
    assert_eq!(
        error(3),
        "raw event keyed \"Someone-1\" carries the fetch of player \"TeKrop-2217\" at 1704067200000"
    );
    assert_eq!(
        error(4),
        "raw event fetched at 1704067200000 has an empty player id"
    );
    // Nothing of the bad events reached a store or an output; the good one did.
    let profiles: Vec<String> = profile_records(&d).into_iter().map(|r| r.key).collect();
    assert_eq!(profiles, [TEKROP]);
    assert_eq!(category_records(&d).len(), 278);
    assert_eq!(
        d.driver
            .key_value_store::<String, PlayerSnapshot>(SNAPSHOT_STORE)
            .unwrap()
            .len()
            .unwrap(),
        1
    );
    let m = d.driver.metrics();
    assert_eq!(
        (
            m.processing_errors,
            m.deserialization_errors,
            m.dead_letters
        ),
        (5, 2, 7)
    );
}

#[test]
fn duplicate_deliveries_change_nothing() {
    let events = snapshot_stream(12, 5);
    let twice = with_duplicates(&events);
    assert_eq!(twice.len(), events.len() + 6);

    let straight = drive("straight");
    straight.pipe_all(&events);
    let disturbed = drive("duplicates");
    disturbed.pipe_all(&twice);
    // Every event once more, right away, too: the latest snapshot delivered twice.
    for event in &events {
        disturbed.pipe(&event.raw);
        disturbed.pipe(&event.raw);
    }

    let (a, b) = (straight.outputs(), disturbed.outputs());
    assert!(!a.deltas.is_empty() && !a.daily.is_empty());
    assert_eq!(b.deltas, a.deltas, "the same deltas, none twice");
    assert_eq!(b.daily, a.daily);
    assert_eq!(b.profiles, a.profiles);
    assert_eq!(b.categories, a.categories);
    assert_eq!(
        b.category_records, a.category_records,
        "no category record twice"
    );
    assert_eq!(
        disturbed
            .driver
            .key_value_store::<String, PlayerProfile>(PROFILE_STORE)
            .unwrap()
            .all()
            .unwrap(),
        straight
            .driver
            .key_value_store::<String, PlayerProfile>(PROFILE_STORE)
            .unwrap()
            .all()
            .unwrap()
    );
    // The sums are those of the stream: 12 players, 4 advances of 1 to 3 competitive games.
    let games: f64 = a
        .daily
        .iter()
        .filter(|(k, _)| k.gamemode == "competitive")
        .map(|(_, v)| v.games_played)
        .sum();
    let want: usize = (0..12)
        .flat_map(|p| (1..5).map(move |k| 1 + (p + k) % 3))
        .sum();
    assert_eq!(games, want as f64);
}
