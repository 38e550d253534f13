//! The body contract between the producer and the processor: for every body a 200 of
//! `GET /players/{id}` can carry — every recorded fixture, and a set of malformed ones — the
//! producer's classification (through its real client, replaying the body) and the processor's
//! parsing agree:
//!
//! * the producer says `ok` ⇔ the processor reads the body, with stats;
//! * the producer says `private` ⇔ the processor reads the body, without stats;
//! * the producer refuses the body (`upstream_error`) ⇔ the processor refuses it too, for the
//!   same reason class (not JSON / JSON that is not a player), whatever outcome it is labelled
//!   with.
//!
//! So no raw event the producer writes can be a dead letter at the processor.

mod common;

use std::path::Path;

use common::{FIXTURES, full_body, raw};
use ow_domain::FetchOutcome;
use ow_domain::battletag::PlayerId;
use ow_processor::{PlayerFetch, ProcessError};
use ow_producer::overfast::{ClientConfig, FetchError, OverfastClient, ProfileFetch, Source};
use serde_json::json;

/// What one side makes of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// A public profile: `ok`, read with stats.
    Public,
    /// A private profile: `private`, read without stats.
    Private,
    /// Not JSON.
    NotJson,
    /// JSON, but not a player.
    NotAPlayer,
}

/// The producer's verdict on a fetch of a 200.
fn producer_verdict(fetch: &ProfileFetch) -> Verdict {
    match (fetch.outcome, &fetch.error) {
        (FetchOutcome::Ok, None) => Verdict::Public,
        (FetchOutcome::Private, None) => Verdict::Private,
        (FetchOutcome::UpstreamError, Some(FetchError::InvalidJson { .. })) => Verdict::NotJson,
        (FetchOutcome::UpstreamError, Some(FetchError::NotAProfile { .. })) => Verdict::NotAPlayer,
        (outcome, error) => panic!("a replayed 200 ended {outcome:?} with {error:?}"),
    }
}

/// The processor's verdict on `body` in a raw event labelled `outcome`.
fn processor_verdict(body: &str, outcome: FetchOutcome) -> Verdict {
    let event = raw(
        "Contract-1",
        outcome,
        Some(body.to_owned()),
        1_704_067_200_000,
    );
    match PlayerFetch::parse(&event) {
        Ok(fetch) if fetch.has_stats() => Verdict::Public,
        Ok(_) => Verdict::Private,
        Err(ProcessError::MalformedJson { .. }) => Verdict::NotJson,
        Err(
            ProcessError::UnexpectedShape { .. }
            | ProcessError::MissingSummary { .. }
            | ProcessError::MissingStats { .. }
            | ProcessError::OutOfRange { .. },
        ) => Verdict::NotAPlayer,
        Err(other) => panic!("a body gave a non-body error: {other:?}"),
    }
}

/// Every `.json` under `dir`, recursively, by path.
fn json_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).expect("a text fixture");
            out.push((path.display().to_string(), text));
        }
    }
}

/// Bodies that are wrong in one way each, with what both sides must make of them.
fn malformed() -> Vec<(String, String, Verdict)> {
    use Verdict::*;
    let player = full_body("TeKrop-2217");
    let john = std::fs::read_to_string(format!("{FIXTURES}JohnV1-1190-player-full.json"))
        .expect("the JohnV1 fixture");
    let career: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{FIXTURES}TeKrop-2217-stats-career.parser-output.json"
        ))
        .expect("the career fixture"),
    )
    .expect("json");
    let with_summary = |summary: serde_json::Value| {
        let mut body = player.clone();
        body["summary"] = summary;
        body.to_string()
    };
    let with_stats = |stats: serde_json::Value| {
        let mut body = player.clone();
        body["stats"] = stats;
        body.to_string()
    };
    let stat_value = |value: &str| {
        format!(
            r#"{{"summary": {{}}, "stats": {{"pc": {{"quickplay": {{"career_stats": {{"ana": [
                {{"category": "game", "stats": [{{"key": "games_played", "value": {value}}}]}}]}}}}}}}}}}"#
        )
    };
    let mut cases: Vec<(&str, String, Verdict)> = vec![
        // Not JSON.
        ("empty", String::new(), NotJson),
        ("blank", "  \n".into(), NotJson),
        ("html", "<html>502 Bad Gateway</html>".into(), NotJson),
        (
            "trailing",
            r#"{"summary": {}, "stats": null} x"#.into(),
            NotJson,
        ),
        (
            "unclosed",
            r#"{"summary": {}, "stats": {"pc""#.into(),
            NotJson,
        ),
        // Not an object.
        ("null", "null".into(), NotAPlayer),
        ("array", "[]".into(), NotAPlayer),
        ("number", "42".into(), NotAPlayer),
        ("string", r#""summary""#.into(), NotAPlayer),
        // Missing parts.
        ("empty object", "{}".into(), NotAPlayer),
        (
            "stats null, no summary",
            r#"{"stats": null}"#.into(),
            NotAPlayer,
        ),
        (
            "stats, no summary",
            r#"{"stats": {"pc": null}}"#.into(),
            NotAPlayer,
        ),
        (
            "real stats, no summary",
            json!({"stats": player["stats"]}).to_string(),
            NotAPlayer,
        ),
        (
            "null summary",
            r#"{"summary": null, "stats": null}"#.into(),
            NotAPlayer,
        ),
        ("summary, no stats", r#"{"summary": {}}"#.into(), NotAPlayer),
        (
            "real summary, no stats",
            json!({"summary": player["summary"]}).to_string(),
            NotAPlayer,
        ),
        // Wrong types.
        ("summary array", with_summary(json!([])), NotAPlayer),
        (
            "username number",
            with_summary(json!({"username": 5})),
            NotAPlayer,
        ),
        (
            "rank not an object",
            with_summary(json!({"competitive": {"pc": {"tank": 3}}})),
            NotAPlayer,
        ),
        ("stats array", with_stats(json!([])), NotAPlayer),
        ("stats number", with_stats(json!(5)), NotAPlayer),
        ("stats string", with_stats(json!("private")), NotAPlayer),
        (
            "hero not a list",
            with_stats(json!({"pc": {"quickplay": {"career_stats": {"ana": {}}}}})),
            NotAPlayer,
        ),
        (
            "career parser shape",
            with_stats(career["stats"].clone()),
            NotAPlayer,
        ),
        ("stat value bool", stat_value("true"), NotAPlayer),
        ("stat value text", stat_value(r#""lots""#), NotAPlayer),
        (
            "stat without key",
            r#"{"summary": {}, "stats": {"pc": {"quickplay": {"career_stats": {"ana": [
                {"category": "game", "stats": [{"label": "no key", "value": 1}]}]}}}}}"#
                .into(),
            NotAPlayer,
        ),
        (
            "duplicate stats",
            r#"{"summary": {}, "stats": null, "stats": {}}"#.into(),
            NotAPlayer,
        ),
        // Huge numbers.
        (
            "last_updated_at beyond milliseconds",
            with_summary(json!({"last_updated_at": i64::MAX})),
            NotAPlayer,
        ),
        (
            "last_updated_at beyond i64",
            with_summary(json!({"last_updated_at": u64::MAX})),
            NotAPlayer,
        ),
        (
            "last_updated_at 1e300",
            with_summary(json!({"last_updated_at": 1e300})),
            NotAPlayer,
        ),
        ("stat value 1e308", stat_value("1e308"), Public),
        ("stat value 1e400", stat_value("1e400"), NotJson),
        (
            "endorsement level beyond i32",
            with_summary(json!({"endorsement": {"level": 1e15}})),
            Public,
        ),
        // Fine after all: what a player body may omit or add.
        (
            "minimal public",
            r#"{"summary": {}, "stats": {}}"#.into(),
            Public,
        ),
        (
            "minimal private",
            r#"{"summary": {}, "stats": null}"#.into(),
            Private,
        ),
        (
            "unknown fields",
            with_summary(json!({"username": "X", "privacy": "public", "new": [1, {}]})),
            Public,
        ),
        ("live shape", player.to_string(), Public),
        (
            "live shape, kiriko",
            full_body("KIRIKO-21253").to_string(),
            Public,
        ),
    ];
    // Truncated real bodies.
    let end = john.trim_end().len();
    for cut in (1..end).step_by(end / 12).chain([end - 1]) {
        let cut = (cut..end)
            .find(|&c| john.is_char_boundary(c))
            .unwrap_or(end);
        cases.push(("truncated JohnV1", john[..cut].to_owned(), NotJson));
    }
    cases
        .into_iter()
        .map(|(name, body, want)| (name.to_owned(), body, want))
        .collect()
}

#[tokio::test]
async fn the_producer_and_the_processor_agree_on_every_body() {
    let mut bodies: Vec<(String, String, Option<Verdict>)> = Vec::new();
    let mut recorded = Vec::new();
    json_files(Path::new(FIXTURES), &mut recorded);
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/overfast");
    json_files(Path::new(samples), &mut recorded);
    let recorded_count = recorded.len();
    assert!(recorded_count >= 25, "{recorded_count} recorded bodies");
    bodies.extend(recorded.into_iter().map(|(name, body)| (name, body, None)));
    bodies.extend(
        malformed()
            .into_iter()
            .map(|(name, body, want)| (name, body, Some(want))),
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = OverfastClient::new(ClientConfig::new(Source::replay(dir.path())))
        .expect("a replay client");
    let mut recorded_verdicts = Vec::new();
    for (i, (name, body, want)) in bodies.iter().enumerate() {
        let player = PlayerId::parse(&format!("Body-{i}")).expect("a battletag");
        std::fs::write(dir.path().join(format!("{player}.json")), body).expect("a written body");
        let fetch = client.fetch(&player).await;
        assert_eq!(fetch.http_status, Some(200), "{name}");
        let producer = producer_verdict(&fetch);
        if let Some(want) = want {
            assert_eq!(producer, *want, "{name}: the producer");
        }
        // Whatever outcome a raw event carries this body with, the processor sees the same.
        for outcome in [FetchOutcome::Ok, FetchOutcome::Private] {
            assert_eq!(
                processor_verdict(body, outcome),
                producer,
                "{name}: the processor (labelled {outcome:?}) disagrees with the producer"
            );
        }
        // The event the producer writes is never a dead letter at the processor, and keeps the
        // body byte for byte.
        let event = fetch.into_raw("contract");
        assert_eq!(
            event.body.as_deref(),
            (!body.is_empty()).then_some(&**body),
            "{name}"
        );
        let parsed = PlayerFetch::parse(&event)
            .unwrap_or_else(|e| panic!("{name}: the producer's event is a dead letter: {e}"));
        assert_eq!(parsed.has_stats(), producer == Verdict::Public, "{name}");
        if i < recorded_count {
            recorded_verdicts.push(producer);
        }
    }
    // The recorded bodies alone reach the three ends.
    for verdict in [Verdict::Public, Verdict::Private, Verdict::NotAPlayer] {
        assert!(
            recorded_verdicts.contains(&verdict),
            "no recorded body gave {verdict:?}"
        );
    }
}

#[test]
fn the_recorded_players_are_players() {
    use Verdict::*;
    for (file, want) in [
        ("JohnV1-1190-player-full.json", Public),
        ("Player-137712-private-player-full.json", Private),
        // Not `GET /players/{id}` bodies: other endpoints, or sub-trees of a player.
        ("TeKrop-2217-stats-career.parser-output.json", NotAPlayer),
        ("TeKrop-2217-stats-summary.json", NotAPlayer),
        (
            "TeKrop-2217-stats-summary-quickplay-console-empty.json",
            NotAPlayer,
        ),
        ("derived/TeKrop-2217-summary.json", NotAPlayer),
        ("heroes-list.json", NotAPlayer),
    ] {
        let body = std::fs::read_to_string(format!("{FIXTURES}{file}")).expect("a fixture");
        assert_eq!(processor_verdict(&body, FetchOutcome::Ok), want, "{file}");
    }
}
