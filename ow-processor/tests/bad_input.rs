//! Bad bodies give a [`ProcessError`], never a panic: garbage, truncated real bodies, random
//! JSON, and real bodies with one random node replaced.

mod common;

use common::*;
use ow_domain::{DailyStats, FetchOutcome, RawPlayerProfile};
use ow_processor::{PlayerFetch, ProcessError, add_delta, compute_deltas, supersedes};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Runs every output on `raw`; returns the parse error, if any.
fn run_everything(raw: &RawPlayerProfile) -> Result<(), ProcessError> {
    let fetch = PlayerFetch::parse(raw)?;
    let _ = fetch.stats_by_category();
    let profile = fetch.apply_to(None)?;
    assert_eq!(profile.player_id, raw.player_id);
    if let Some(snapshot) = fetch.snapshot() {
        assert!(compute_deltas(Some(&snapshot), &snapshot).is_empty());
        assert!(supersedes(None, &snapshot));
    }
    Ok(())
}

#[track_caller]
fn assert_good_message(err: &ProcessError, player_id: &str) {
    let message = err.to_string();
    assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
    assert!(message.contains(player_id), "{message}");
}

#[test]
fn garbage_bodies_give_typed_errors() {
    use ProcessError as E;
    type IsExpected = fn(&ProcessError) -> bool;
    let cases: &[(&str, IsExpected)] = &[
        ("", |e| matches!(e, E::MalformedJson { .. })),
        ("{", |e| matches!(e, E::MalformedJson { .. })),
        ("not json", |e| matches!(e, E::MalformedJson { .. })),
        ("<html>502 Bad Gateway</html>", |e| {
            matches!(e, E::MalformedJson { .. })
        }),
        (r#"{"summary": {}} trailing"#, |e| {
            matches!(e, E::MalformedJson { .. })
        }),
        ("null", |e| matches!(e, E::UnexpectedShape { .. })),
        ("[]", |e| matches!(e, E::UnexpectedShape { .. })),
        ("42", |e| matches!(e, E::UnexpectedShape { .. })),
        (r#""summary""#, |e| matches!(e, E::UnexpectedShape { .. })),
        ("{}", |e| matches!(e, E::MissingSummary { .. })),
        (r#"{"stats": {}}"#, |e| {
            matches!(e, E::MissingSummary { .. })
        }),
        (r#"{"summary": null, "stats": null}"#, |e| {
            matches!(e, E::MissingSummary { .. })
        }),
        (r#"{"summary": {"username": "X"}}"#, |e| {
            matches!(e, E::MissingStats { .. })
        }),
        (r#"{"summary": []}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (r#"{"summary": {"username": 5}}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (r#"{"summary": {"last_updated_at": "yesterday"}}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (r#"{"summary": {"last_updated_at": 1.5}}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (r#"{"summary": {"last_updated_at": 1e300}}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (
            r#"{"summary": {"last_updated_at": 9223372036854775807}}"#,
            |e| {
                matches!(
                    e,
                    E::OutOfRange {
                        field: "summary.last_updated_at",
                        ..
                    }
                )
            },
        ),
        (
            r#"{"summary": {"competitive": {"pc": {"tank": 3}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
        (r#"{"summary": {}, "stats": []}"#, |e| {
            matches!(e, E::UnexpectedShape { .. })
        }),
        (
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": {}}}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
        (
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": [
                {"category": "game", "stats": [{"key": "games_played", "value": true}]}]}}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
        (
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": [
                {"category": "game", "stats": [{"key": "games_played", "value": "lots"}]}]}}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
        (
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": [
                {"category": "game", "stats": [{"label": "no key", "value": 1}]}]}}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
        (
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": [
                {"label": "no category", "stats": []}]}}}}}"#,
            |e| matches!(e, E::UnexpectedShape { .. }),
        ),
    ];
    for (body, expected) in cases {
        for outcome in [FetchOutcome::Ok, FetchOutcome::Private] {
            let event = raw("Bad-1", outcome, Some((*body).into()), JAN_1_2024);
            let err = run_everything(&event).expect_err(body);
            assert!(expected(&err), "{body}: {err:?}");
            assert_good_message(&err, "Bad-1");
        }
    }
}

#[test]
fn error_messages_say_where() {
    let event = raw_ok("Bad-1", "{\"summary\": {\"username\": 5}}", 7);
    let err = PlayerFetch::parse(&event).unwrap_err();
    assert_eq!(
        err.to_string(),
        "body of player Bad-1 fetched at 7 is not a player career (line 1, column 26)"
    );
    assert!(std::error::Error::source(&err).is_some());

    let event = raw_ok("Bad-1", "{\"summary\": {}}", 7);
    let err = PlayerFetch::parse(&event).unwrap_err();
    assert_eq!(
        err.to_string(),
        "body of player Bad-1 fetched at 7 has no stats field"
    );

    let event = raw("Bad-1", FetchOutcome::Ok, None, 7);
    let err = PlayerFetch::parse(&event).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fetch of player Bad-1 at 7 ended ok but carries no body"
    );
}

#[test]
fn bodies_of_failed_fetches_are_not_read() {
    for outcome in [
        FetchOutcome::NotFound,
        FetchOutcome::RateLimited,
        FetchOutcome::UpstreamError,
    ] {
        let event = raw(
            "Gone-1",
            outcome,
            Some("{\"error\": \"Player not found\"".into()),
            1,
        );
        run_everything(&event).unwrap();
        let none = raw("Gone-1", outcome, None, 1);
        run_everything(&none).unwrap();
    }
}

#[test]
fn truncated_real_bodies_are_malformed_json() {
    let body = fixture("JohnV1-1190-player-full.json");
    let end = body.trim_end().len();
    let cuts = (0..end).step_by(997).chain(end.saturating_sub(8)..end);
    let mut tried = 0;
    for cut in cuts.filter(|&cut| body.is_char_boundary(cut)) {
        let event = raw_ok("JohnV1-1190", &body[..cut], JAN_1_2024);
        let err = run_everything(&event).expect_err("a cut body");
        assert!(
            matches!(err, ProcessError::MalformedJson { .. }),
            "cut at {cut}: {err:?}"
        );
        tried += 1;
    }
    assert!(tried > 400);
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "summary",
            "stats",
            "pc",
            "console",
            "quickplay",
            "competitive",
            "career_stats",
            "heroes_comparisons",
            "all-heroes",
            "ana",
            "category",
            "label",
            "key",
            "value",
            "username",
            "avatar",
            "title",
            "namecard",
            "endorsement",
            "level",
            "frame",
            "last_updated_at",
            "season",
            "tank",
            "division",
            "tier",
            "role_icon",
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("json numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[0-9a-z_:%.,-]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(7, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Replaces the node found by walking `path` (each step picks a child by index modulo the
/// number of children) with `new`.
fn replace_node(root: &mut Value, path: &[usize], new: Value) {
    let mut node = root;
    for &step in path {
        let children = match &*node {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if children == 0 {
            break;
        }
        node = match node {
            Value::Object(map) => map.values_mut().nth(step % children).expect("has children"),
            Value::Array(items) => &mut items[step % children],
            _ => unreachable!("only objects and arrays have children"),
        };
    }
    *node = new;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_json_never_panics(body in arb_json(), private in any::<bool>()) {
        let outcome = if private { FetchOutcome::Private } else { FetchOutcome::Ok };
        let event = raw("Random-1", outcome, Some(body.to_string()), JAN_1_2024);
        if let Err(err) = run_everything(&event) {
            assert_good_message(&err, "Random-1");
        }
    }

    #[test]
    fn random_text_never_panics(body in any::<String>()) {
        let event = raw_ok("Random-1", body, JAN_1_2024);
        if let Err(err) = run_everything(&event) {
            assert_good_message(&err, "Random-1");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_real_body_with_one_node_replaced_never_panics(
        path in prop::collection::vec(any::<usize>(), 0..9),
        new in arb_json(),
    ) {
        let original = full_body("TeKrop-2217");
        let mut body = original.clone();
        replace_node(&mut body, &path, new);
        let event = raw_ok("TeKrop-2217", body.to_string(), JAN_1_2024 + HOUR);
        match run_everything(&event) {
            Ok(()) => {
                // Compare with the untouched body, as the topology would.
                let before = raw_ok("TeKrop-2217", original.to_string(), JAN_1_2024);
                let before = PlayerFetch::parse(&before).unwrap().snapshot();
                let after = PlayerFetch::parse(&event).unwrap().snapshot();
                if let Some(after) = after {
                    let deltas = compute_deltas(before.as_ref(), &after);
                    prop_assert!(deltas.iter().flat_map(|d| d.stats.values()).all(|v| *v > 0.0));
                    let day = deltas.iter().fold(DailyStats::default(), add_delta);
                    prop_assert!(day.delta_count <= 2);
                }
            }
            Err(err) => assert_good_message(&err, "TeKrop-2217"),
        }
    }
}
