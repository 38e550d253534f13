//! The web's materialization topology in the test driver, fed with what the processor's domain
//! functions make of the recorded OverFast bodies.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ow_domain::FetchOutcome;
use ow_web::PlayerRepository;
use ow_web::materialize::{
    self, CATEGORIES_STORE, CATEGORY_CHANGES_STORE, CategoryChanges, HISTORY_STORE, PlayerStats,
};

#[test]
fn four_stores_one_lookup_each() {
    let m = Materialized::new("materialize-four-stores");
    let outputs = tekrop_outputs();
    m.pipe(&outputs, T2);
    let repository = m.repository();
    let tekrop = id(TEKROP);

    let profile = repository.profile(&tekrop).unwrap().unwrap();
    assert_eq!(profile.username.as_deref(), Some("TeKrop"));
    assert_eq!(profile.status.fetched_at, T2);

    let stats = repository.categories(&tekrop).unwrap().unwrap();
    assert_eq!(stats.player_id, TEKROP);
    assert_eq!(stats.snapshot_at, T2);
    assert_eq!(
        stats.platforms.keys().collect::<Vec<_>>(),
        ["pc"],
        "console is null in the sample"
    );
    let competitive = stats.mode("pc", "competitive").unwrap();
    let quickplay = stats.mode("pc", "quickplay").unwrap();
    assert_eq!(competitive.heroes.len(), 7);
    assert_eq!(quickplay.heroes.len(), 37);
    // Every record of the second snapshot is held, once, with its latest values.
    let distinct: std::collections::BTreeSet<_> =
        outputs.categories.iter().map(|c| c.key()).collect();
    let held: usize = stats
        .platforms
        .values()
        .flat_map(|modes| modes.values())
        .flat_map(|m| m.heroes.values())
        .map(|categories| categories.len())
        .sum();
    assert_eq!(held, distinct.len());
    let game = &competitive.heroes["all-heroes"]["game"];
    assert_eq!(game.snapshot_at, T2);
    assert_eq!(game.stats["games_played"].value, 8.0);
    assert_eq!(game.label, "Game");

    let deltas = repository.deltas(&tekrop).unwrap().unwrap();
    let all = deltas.get("pc", "competitive", "all-heroes").unwrap();
    assert_eq!(all.games_played, 3.0);
    assert_eq!(all.time_played, 3600.0);
    assert_eq!(
        deltas
            .get("pc", "competitive", "reaper")
            .unwrap()
            .eliminations,
        40.0
    );
    assert!(
        deltas.get("pc", "quickplay", "all-heroes").is_none(),
        "nothing changed there"
    );

    let history = repository.history(&tekrop).unwrap().unwrap();
    let days = history.days("pc", "competitive");
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].games_played, 3.0);
    assert_eq!(days[0].window_start, JAN_1_2024);

    assert!(repository.has_categories(&tekrop).unwrap());
    assert!(repository.profile(&id("Nobody-1234")).unwrap().is_none());
    assert!(!repository.has_categories(&id("Nobody-1234")).unwrap());
}

#[test]
fn replays_and_older_records_change_nothing() {
    let m = Materialized::new("materialize-replays");
    let outputs = tekrop_outputs();
    m.pipe(&outputs, T2);
    let repository = m.repository();
    let before = repository.categories(&id(TEKROP)).unwrap();
    let deltas_before = repository.deltas(&id(TEKROP)).unwrap();
    let history_before = repository.history(&id(TEKROP)).unwrap();
    // Everything again (at-least-once), then the first snapshot's records alone (late copies).
    m.pipe(&outputs, T2);
    let first = process(&[raw(TEKROP, FetchOutcome::Ok, Some(tekrop_bodies().0), T1)]);
    m.pipe(
        &Outputs {
            categories: first.categories,
            ..Outputs::default()
        },
        T2,
    );
    assert_eq!(repository.categories(&id(TEKROP)).unwrap(), before);
    assert_eq!(repository.deltas(&id(TEKROP)).unwrap(), deltas_before);
    assert_eq!(repository.history(&id(TEKROP)).unwrap(), history_before);
}

/// The repository keeps a player's assembled stats between pages; a new snapshot replaces them.
#[test]
fn assembled_stats_follow_new_snapshots() {
    let m = Materialized::new("materialize-cached");
    let (first, second) = tekrop_bodies();
    m.pipe(
        &process(&[raw(TEKROP, FetchOutcome::Ok, Some(first), T1)]),
        T1,
    );
    let repository = m.repository();
    let games = |stats: &ow_web::materialize::PlayerStats| {
        stats.mode("pc", "competitive").unwrap().heroes["all-heroes"]["game"].stats["games_played"]
            .value
    };
    let before = repository.categories(&id(TEKROP)).unwrap().unwrap();
    assert_eq!((games(&before), before.snapshot_at), (5.0, T1));
    // Asked again with nothing new: the very same value, not a copy.
    let again = repository.categories(&id(TEKROP)).unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&before, &again));
    let outputs = process(&[
        raw(TEKROP, FetchOutcome::Ok, Some(tekrop_bodies().0), T1),
        raw(TEKROP, FetchOutcome::Ok, Some(second), T2),
    ]);
    // The profile of the second snapshot first, as when its topic is read ahead of the
    // categories: the table still holds the first snapshot, and the page shows it (the stats
    // follow the table, not the profile).
    m.pipe(
        &Outputs {
            profiles: outputs.profiles.clone(),
            ..Outputs::default()
        },
        T2,
    );
    let lagging = repository.categories(&id(TEKROP)).unwrap().unwrap();
    assert_eq!(games(&lagging), 5.0);
    assert!(
        std::sync::Arc::ptr_eq(&before, &lagging),
        "the table is unchanged"
    );
    // The records of the second snapshot: the page shows them at once, never the stats kept.
    m.pipe(
        &Outputs {
            profiles: Vec::new(),
            ..outputs
        },
        T2,
    );
    let after = repository.categories(&id(TEKROP)).unwrap().unwrap();
    assert_eq!((games(&after), after.snapshot_at), (8.0, T2));
    let again = repository.categories(&id(TEKROP)).unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&after, &again), "kept once current");
}

/// Categories of every record's (hero, category) whose stats come from the snapshot of `at`.
fn held_at(stats: &PlayerStats, at: i64) -> usize {
    stats
        .platforms
        .values()
        .flat_map(|modes| modes.values())
        .flat_map(|mode| mode.heroes.values())
        .flat_map(|categories| categories.values())
        .filter(|category| category.snapshot_at == at)
        .count()
}

/// A snapshot whose records reach the table over several commits: the stats a page assembles
/// in between are replaced as soon as the rest arrives, and copies of records change nothing.
#[test]
fn a_snapshot_read_half_way_is_completed_on_the_next_page() {
    let m = Materialized::new("materialize-half-way");
    let (first, second) = tekrop_bodies();
    let outputs = process(&[
        raw(TEKROP, FetchOutcome::Ok, Some(first), T1),
        raw(TEKROP, FetchOutcome::Ok, Some(second), T2),
    ]);
    let (old, new): (Vec<_>, Vec<_>) = outputs
        .categories
        .iter()
        .cloned()
        .partition(|c| c.snapshot_at == T1);
    assert_eq!(old.len(), new.len());
    let only = |categories: &[ow_domain::StatsByCategory]| Outputs {
        categories: categories.to_vec(),
        ..Outputs::default()
    };
    m.pipe(&only(&old), T1);
    let repository = m.repository();
    let tekrop = id(TEKROP);
    let before = repository.categories(&tekrop).unwrap().unwrap();
    assert_eq!(held_at(&before, T1), old.len());

    let half = new.len() / 2;
    m.pipe(&only(&new[..half]), T2);
    let halfway = repository.categories(&tekrop).unwrap().unwrap();
    assert_eq!(
        (held_at(&halfway, T2), held_at(&halfway, T1)),
        (half, old.len() - half)
    );
    let again = repository.categories(&tekrop).unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&halfway, &again));

    m.pipe(&only(&new[half..]), T2);
    let complete = repository.categories(&tekrop).unwrap().unwrap();
    assert_eq!(held_at(&complete, T2), new.len());
    assert_eq!(held_at(&complete, T1), 0);

    // Copies of both snapshots, as after a replay: nothing changes, not even the counts.
    let counts = m
        .driver
        .key_value_store::<String, CategoryChanges>(CATEGORY_CHANGES_STORE)
        .unwrap();
    let changes = counts.get(&TEKROP.to_string()).unwrap().unwrap();
    assert_eq!(changes.changes, (old.len() + new.len()) as u64);
    m.pipe(&only(&outputs.categories), T2);
    assert_eq!(counts.get(&TEKROP.to_string()).unwrap(), Some(changes));
    let replayed = repository.categories(&tekrop).unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&complete, &replayed));
}

/// `Foo-1234`'s key JSON is a prefix of none of `Foo-12345`'s: the prefix scan of one player
/// finds none of the other's records.
#[test]
fn players_whose_ids_share_a_prefix_are_kept_apart() {
    let m = Materialized::new("materialize-prefix");
    let long = process(&[raw(
        "Tekrop-22170",
        FetchOutcome::Ok,
        Some(tekrop_bodies().0),
        T1,
    )]);
    m.pipe(&long, T1);
    let repository = m.repository();
    let short = id("Tekrop-2217");
    assert!(repository.categories(&short).unwrap().is_none());
    assert!(!repository.has_categories(&short).unwrap());

    let john = process(&[raw(
        "Tekrop-2217",
        FetchOutcome::Ok,
        Some(sample("JohnV1-1190.json")),
        T2,
    )]);
    m.pipe(&john, T2);
    let held = |stats: &PlayerStats| -> usize {
        stats
            .platforms
            .values()
            .flat_map(|modes| modes.values())
            .flat_map(|mode| mode.heroes.values())
            .map(|categories| categories.len())
            .sum()
    };
    let short_stats = repository.categories(&short).unwrap().unwrap();
    let long_stats = repository.categories(&id("Tekrop-22170")).unwrap().unwrap();
    assert_eq!(short_stats.player_id, "Tekrop-2217");
    assert_eq!(held(&short_stats), john.categories.len());
    assert_eq!(held(&long_stats), long.categories.len());
    assert_ne!(john.categories.len(), long.categories.len());
    assert_eq!(held_at(&short_stats, T2), john.categories.len());
    assert_eq!(held_at(&long_stats, T1), long.categories.len());
}

#[test]
fn players_are_kept_apart_and_listed_most_recent_first() {
    let m = Materialized::new("materialize-players");
    m.pipe(&tekrop_outputs(), T2);
    let john = process(&[raw(
        "JohnV1-1190",
        FetchOutcome::Ok,
        Some(sample("JohnV1-1190.json")),
        T2 + HOUR,
    )]);
    m.pipe(&john, T2 + HOUR);
    let private = process(&[raw(
        "Player-137712",
        FetchOutcome::Private,
        Some(sample("Player-137712.json")),
        T1,
    )]);
    m.pipe(&private, T1);
    let repository = m.repository();

    let john_stats = repository.categories(&id("JohnV1-1190")).unwrap().unwrap();
    assert_eq!(john_stats.player_id, "JohnV1-1190");
    assert!(
        repository.deltas(&id("JohnV1-1190")).unwrap().is_none(),
        "one snapshot: no delta"
    );
    assert!(
        repository
            .categories(&id("Player-137712"))
            .unwrap()
            .is_none(),
        "private: no stats"
    );
    assert_eq!(
        repository
            .profile(&id("Player-137712"))
            .unwrap()
            .unwrap()
            .status
            .outcome,
        FetchOutcome::Private
    );
    let recent: Vec<String> = repository
        .recent_players(10)
        .unwrap()
        .into_iter()
        .map(|p| p.player_id)
        .collect();
    assert_eq!(recent, ["JohnV1-1190", TEKROP, "Player-137712"]);
    assert_eq!(repository.recent_players(1).unwrap().len(), 1);
}

#[test]
fn the_topology_describes_its_stores_and_repartition_topics() {
    let m = Materialized::new("materialize-describe");
    let description = materialize::topology(&m.topics)
        .unwrap()
        .describe_for_application(materialize::APPLICATION_ID);
    let text = description.to_string();
    assert!(
        !text.contains("stats-by-player"),
        "the categories are read by prefix, not regrouped: {text}"
    );
    assert!(
        text.contains("ow-web-daily-by-player-repartition"),
        "{text}"
    );
    assert!(text.contains("Source: ow.players.profile-table-source (topic: ow.players.profile)"));
    let stores: Vec<&str> = description.stores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stores.len(), 5, "{stores:?}");
    for store in [
        "player-profiles",
        CATEGORIES_STORE,
        CATEGORY_CHANGES_STORE,
        "player-deltas",
        HISTORY_STORE,
    ] {
        assert!(stores.contains(&store), "{stores:?}");
    }
    // The days went through their repartition topic and were folded once.
    let outputs = tekrop_outputs();
    m.pipe(&outputs, T2);
    assert_eq!(
        m.driver
            .raw_records("test-app-daily-by-player-repartition")
            .len(),
        outputs.daily.len()
    );
    assert!(m.driver.dead_letters().is_empty());
}

#[test]
fn a_snapshot_costs_about_its_own_size_in_changelogs() {
    let m = Materialized::new("materialize-changelog-size");
    let outputs = tekrop_outputs();
    let input: usize = outputs
        .categories
        .iter()
        .map(|c| serde_json::to_vec(c).unwrap().len())
        .sum();
    m.pipe(&outputs, T2);
    let written: usize = [
        "player-categories",
        "player-category-changes",
        "player-deltas",
        "player-history",
        "player-profiles",
    ]
    .iter()
    .flat_map(|s| m.driver.raw_records(&format!("test-app-{s}-changelog")))
    .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
    .sum();
    // Two snapshots of 278 category records each: the table itself, plus a small change count
    // per record, and small deltas, days and profiles. (Folding everything into one value per
    // player wrote 100 times more.)
    assert!(
        written < 2 * input,
        "{written} bytes of changelog for {input} bytes of input"
    );
}
