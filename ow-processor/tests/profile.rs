//! `ow.players.profile`: the fold of fetches into a player's profile.

mod common;

use apache_avro::Schema;
use common::*;
use ow_domain::{CompetitiveRank, Endorsement, FetchOutcome, FetchStatus, PlayerProfile};
use ow_processor::{ProcessError, apply_fetch};
use serde_json::json;

const ICONS: &str = "https://static.playoverwatch.com/img/pages/career/icons";

/// `{"summary": <derived summary, byte for byte>, "stats": null}` (built as text so the
/// summary's key order is the recorded one).
fn summary_only(player: &str) -> String {
    let summary = fixture(&format!("derived/{player}-summary.json"));
    format!(r#"{{"summary": {summary}, "stats": null}}"#)
}

fn tekrop_ok(at: i64) -> PlayerProfile {
    let raw = raw_ok("TeKrop-2217", full_body("TeKrop-2217").to_string(), at);
    apply_fetch(None, &raw).expect("a good body")
}

#[test]
fn tekrop_profile_from_an_ok_fetch() {
    let profile = tekrop_ok(JAN_1_2024);
    assert_eq!(
        profile,
        PlayerProfile {
            player_id: "TeKrop-2217".into(),
            username: Some("TeKrop".into()),
            avatar: Some("https://d15f34w2p8l1cc.cloudfront.net/overwatch/6e991c9791811fe6174f3ea0ba127120b6e74b03e1d11ababb0dcd8418081c23.png".into()),
            namecard: Some("https://d15f34w2p8l1cc.cloudfront.net/overwatch/52ee742d4e2fc734e3cd7fdb74b0eac64bcdf26d58372a503c712839595802c5.png".into()),
            title: Some("Bytefixer".into()),
            endorsement: Some(Endorsement {
                level: 2,
                frame: Some(format!("{ICONS}/endorsement/2-8b9f0faa25.svg#icon")),
            }),
            // Season 3 on pc, but no ranked role.
            competitive: vec![],
            last_updated_at: Some(1_678_536_999_000),
            profile_fetched_at: Some(JAN_1_2024),
            status: FetchStatus {
                outcome: FetchOutcome::Ok,
                fetched_at: JAN_1_2024,
                http_status: Some(200),
                message: None,
                next_check_at: None,
            },
        }
    );
}

#[test]
fn competitive_ranks_per_platform_and_role() {
    let kiriko = apply_fetch(
        None,
        &raw_ok("KIRIKO-21253", summary_only("KIRIKO-21253"), JAN_1_2024),
    )
    .unwrap();
    assert_eq!(kiriko.title.as_deref(), Some("Diamond Damage"));
    assert_eq!(kiriko.namecard, None);
    assert_eq!(
        kiriko.competitive,
        vec![CompetitiveRank {
            platform: "pc".into(),
            role: "damage".into(),
            division: "diamond".into(),
            tier: 5,
            role_icon: Some(format!("{ICONS}/role/offense-ab1756f419.svg#icon")),
            rank_icon: Some(format!("{ICONS}/rank/Rank_DiamondTier-d775ca9c43.png")),
            tier_icon: Some(format!("{ICONS}/rank/TierDivision_5-1724ae32df.png")),
            season: Some(11),
        }]
    );

    let brief = |p: &PlayerProfile| -> Vec<(String, String, String, i32, Option<i32>)> {
        p.competitive
            .iter()
            .map(|r| {
                (
                    r.platform.clone(),
                    r.role.clone(),
                    r.division.clone(),
                    r.tier,
                    r.season,
                )
            })
            .collect()
    };
    let s = |x: &str| x.to_string();
    let quibble = apply_fetch(
        None,
        &raw_ok("quibble-11594", summary_only("quibble-11594"), JAN_1_2024),
    )
    .unwrap();
    assert_eq!(
        brief(&quibble),
        vec![
            (s("pc"), s("tank"), s("platinum"), 5, Some(11)),
            (s("pc"), s("damage"), s("gold"), 2, Some(11)),
            (s("pc"), s("support"), s("platinum"), 3, Some(11)),
        ]
    );
    let both = apply_fetch(
        None,
        &raw_ok("Player-1112937", summary_only("Player-1112937"), JAN_1_2024),
    )
    .unwrap();
    assert_eq!(
        brief(&both),
        vec![
            (s("pc"), s("tank"), s("platinum"), 5, Some(11)),
            (s("pc"), s("damage"), s("platinum"), 3, Some(11)),
        ]
    );
}

#[test]
fn failed_fetches_update_the_status_and_keep_the_profile() {
    let good = apply_fetch(
        None,
        &raw_ok("KIRIKO-21253", summary_only("KIRIKO-21253"), JAN_1_2024),
    )
    .unwrap();

    let mut not_found = raw(
        "KIRIKO-21253",
        FetchOutcome::NotFound,
        None,
        JAN_1_2024 + HOUR,
    );
    not_found.body = Some(r#"{"error": "Player not found"}"#.into());
    not_found.next_attempt_at = Some(JAN_1_2024 + 3 * HOUR);
    let after = apply_fetch(Some(good.clone()), &not_found).unwrap();
    assert_eq!(
        after.status,
        FetchStatus {
            outcome: FetchOutcome::NotFound,
            fetched_at: JAN_1_2024 + HOUR,
            http_status: Some(404),
            message: None,
            next_check_at: Some(JAN_1_2024 + 3 * HOUR),
        }
    );
    assert_eq!(
        PlayerProfile {
            status: good.status.clone(),
            ..after.clone()
        },
        good
    );

    let mut limited = raw(
        "KIRIKO-21253",
        FetchOutcome::RateLimited,
        None,
        JAN_1_2024 + 2 * HOUR,
    );
    limited.error = Some("429 too many requests after 3 attempts".into());
    limited.next_attempt_at = Some(JAN_1_2024 + 2 * HOUR + 60_000);
    let after = apply_fetch(Some(after), &limited).unwrap();
    assert_eq!(after.status.outcome, FetchOutcome::RateLimited);
    assert_eq!(
        after.status.message.as_deref(),
        Some("429 too many requests after 3 attempts")
    );
    assert_eq!(
        PlayerProfile {
            status: good.status.clone(),
            ..after.clone()
        },
        good
    );

    let mut broken = raw(
        "KIRIKO-21253",
        FetchOutcome::UpstreamError,
        None,
        JAN_1_2024 + 3 * HOUR,
    );
    broken.error = Some("timeout after 10 s".into());
    let after = apply_fetch(Some(after), &broken).unwrap();
    assert_eq!(after.status.outcome, FetchOutcome::UpstreamError);
    assert_eq!(after.status.http_status, None);
    assert_eq!(after.status.message.as_deref(), Some("timeout after 10 s"));
    assert_eq!(
        PlayerProfile {
            status: good.status.clone(),
            ..after
        },
        good
    );
}

#[test]
fn a_failed_first_fetch_gives_a_status_only_profile() {
    let event = raw("Ghost-1", FetchOutcome::NotFound, None, JAN_1_2024);
    let profile = apply_fetch(None, &event).unwrap();
    assert_eq!(profile.player_id, "Ghost-1");
    assert_eq!(profile.username, None);
    assert_eq!(profile.profile_fetched_at, None);
    assert_eq!(profile.status.outcome, FetchOutcome::NotFound);
}

#[test]
fn a_private_fetch_keeps_what_it_hides() {
    let good = tekrop_ok(JAN_1_2024);
    let private_body = json!({
        "summary": {
            "username": "TeKropRenamed",
            "avatar": null,
            "namecard": null,
            "title": null,
            "endorsement": {"level": 3, "frame": null},
            "competitive": null,
            "last_updated_at": 1_700_000_000
        },
        "stats": null
    });
    let event = raw(
        "TeKrop-2217",
        FetchOutcome::Private,
        Some(private_body.to_string()),
        JAN_1_2024 + HOUR,
    );
    let after = apply_fetch(Some(good.clone()), &event).unwrap();
    assert_eq!(after.username.as_deref(), Some("TeKropRenamed"));
    assert_eq!(after.avatar, good.avatar);
    assert_eq!(after.namecard, good.namecard);
    assert_eq!(after.title, good.title);
    assert_eq!(
        after.endorsement,
        Some(Endorsement {
            level: 3,
            frame: None
        })
    );
    assert_eq!(after.last_updated_at, Some(1_700_000_000_000));
    assert_eq!(after.profile_fetched_at, Some(JAN_1_2024 + HOUR));
    assert_eq!(after.status.outcome, FetchOutcome::Private);

    // The recorded private profile (2024 shape, with its extra "privacy" field).
    let recorded = fixture("Player-137712-private-player-full.json");
    let event = raw(
        "Player-137712",
        FetchOutcome::Private,
        Some(recorded),
        JAN_1_2024,
    );
    let profile = apply_fetch(None, &event).unwrap();
    assert_eq!(profile.username.as_deref(), Some("Player"));
    assert_eq!(profile.endorsement.map(|e| e.level), Some(3));
    assert!(profile.competitive.is_empty());
    assert_eq!(profile.last_updated_at, None);
    assert_eq!(profile.status.outcome, FetchOutcome::Private);
}

#[test]
fn an_ok_fetch_clears_what_is_gone_but_not_what_was_unreadable() {
    let kiriko = apply_fetch(
        None,
        &raw_ok("KIRIKO-21253", summary_only("KIRIKO-21253"), JAN_1_2024),
    )
    .unwrap();
    let body = json!({
        "summary": {"username": null, "avatar": null, "namecard": null, "title": null,
                    "endorsement": null, "competitive": null},
        "stats": null
    });
    let after = apply_fetch(
        Some(kiriko.clone()),
        &raw_ok("KIRIKO-21253", body.to_string(), JAN_1_2024 + 1),
    )
    .unwrap();
    // "could not read": kept.
    assert_eq!(after.username, kiriko.username);
    assert_eq!(after.avatar, kiriko.avatar);
    assert_eq!(after.endorsement, kiriko.endorsement);
    assert_eq!(after.last_updated_at, kiriko.last_updated_at);
    // "none": cleared.
    assert_eq!(after.title, None);
    assert!(after.competitive.is_empty());
}

#[test]
fn stale_and_repeated_events() {
    let good = tekrop_ok(JAN_1_2024 + HOUR);
    let older = raw("TeKrop-2217", FetchOutcome::NotFound, None, JAN_1_2024);
    assert_eq!(apply_fetch(Some(good.clone()), &older).unwrap(), good);

    let same = raw_ok(
        "TeKrop-2217",
        full_body("TeKrop-2217").to_string(),
        JAN_1_2024 + HOUR,
    );
    assert_eq!(apply_fetch(Some(good.clone()), &same).unwrap(), good);
}

#[test]
fn another_players_profile_is_refused() {
    let good = tekrop_ok(JAN_1_2024);
    let other = raw("KIRIKO-21253", FetchOutcome::NotFound, None, JAN_1_2024 + 1);
    let err = apply_fetch(Some(good), &other).unwrap_err();
    assert!(
        matches!(err, ProcessError::PlayerMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "fetch of player KIRIKO-21253 cannot update the profile of player TeKrop-2217"
    );
}

#[test]
fn profiles_fit_their_schema() {
    let schema = Schema::parse_str(ow_domain::PLAYER_PROFILE_VALUE).unwrap();
    let kiriko = apply_fetch(
        None,
        &raw_ok("KIRIKO-21253", summary_only("KIRIKO-21253"), JAN_1_2024),
    )
    .unwrap();
    let ghost = apply_fetch(None, &raw("Ghost-1", FetchOutcome::UpstreamError, None, 1)).unwrap();
    for profile in [tekrop_ok(JAN_1_2024), kiriko, ghost] {
        let value = apache_avro::to_value(&profile)
            .unwrap()
            .resolve(&schema)
            .unwrap();
        assert_eq!(
            apache_avro::from_value::<PlayerProfile>(&value).unwrap(),
            profile
        );
    }
}
