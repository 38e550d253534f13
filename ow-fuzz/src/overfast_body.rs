//! The OverFast body model and the processor's transform of a raw event into its outputs:
//! [`PlayerBody::parse`], [`classify_profile`], and [`ow_processor::stats_by_category`],
//! [`ow_processor::snapshot_of`], [`ow_processor::apply_fetch`].
//!
//! The input is the body (UTF-8, invalid sequences replaced, as a `String` body always is). The
//! parse must never panic and must agree with the producer's classification; a body it accepts
//! must give the processor records it can write: one record per (platform, mode, hero,
//! category), every value finite (the model refuses NaN and infinities), every record encodable
//! by the topic's Avro serde.

use std::collections::BTreeSet;

use ow_domain::overfast::{PlayerBody, ProfileKind, classify_profile};
use ow_domain::{FetchOutcome, RawPlayerProfile};

use crate::pipeline::pipeline;

/// Checks the body model and the transform on `data`; panics if a property is broken.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = PlayerBody::parse(&text);
    let kind = parsed.as_ref().map(PlayerBody::kind);
    match (&kind, classify_profile(&text)) {
        (Ok(a), Ok(b)) => assert_eq!(*a, b, "parse and classify_profile disagree"),
        (Err(_), Err(e)) => assert!(!e.to_string().is_empty()),
        (a, b) => panic!("parse says {a:?}, classify_profile says {b:?}"),
    }
    let outcome = match kind {
        Ok(ProfileKind::Public) => FetchOutcome::Ok,
        Ok(ProfileKind::Private) => FetchOutcome::Private,
        Err(_) => FetchOutcome::Ok,
    };
    let raw = raw_event(text.as_ref(), outcome);
    let records = ow_processor::stats_by_category(&raw);
    let snapshot = ow_processor::snapshot_of(&raw);
    let profile = ow_processor::apply_fetch(None, &raw);
    let Ok(body) = parsed else {
        assert!(records.is_err() && snapshot.is_err() && profile.is_err());
        return;
    };
    let records = records.expect("a body the model reads gives its records");
    let snapshot = snapshot.expect("a body the model reads gives its snapshot");
    let profile = profile.expect("a body the model reads gives a profile");
    // A snapshot exactly when some hero has stats (only `null`s give none, as documented).
    assert_eq!(body.heroes().next().is_some(), snapshot.is_some());

    let topics = &pipeline().topics;
    let mut keys = BTreeSet::new();
    for record in &records {
        let key = record.key();
        assert!(keys.insert(key.clone()), "two records for {key:?}");
        for (stat, value) in &record.stats {
            assert!(
                value.value.is_finite(),
                "{stat} = {} in {key:?}",
                value.value
            );
        }
        topics
            .stats_by_category
            .serialize_key(&key)
            .unwrap_or_else(|e| panic!("cannot write key {key:?}: {e}"));
        topics
            .stats_by_category
            .serialize_value(record)
            .unwrap_or_else(|e| panic!("cannot write {record:?}: {e}"));
    }
    if let Some(snapshot) = &snapshot {
        let mut heroes = BTreeSet::new();
        for entry in &snapshot.entries {
            let hero = (&entry.platform, &entry.gamemode, &entry.hero);
            assert!(heroes.insert(hero), "two snapshot entries for {hero:?}");
            for (stat, value) in &entry.stats {
                assert!(value.is_finite(), "{stat} = {value} in the snapshot");
            }
        }
        let earlier = ow_domain::PlayerSnapshot {
            snapshot_at: snapshot.snapshot_at - 1,
            last_updated_at: None,
            entries: Vec::new(),
            ..snapshot.clone()
        };
        for delta in ow_processor::compute_deltas(Some(&earlier), snapshot) {
            topics
                .deltas
                .serialize_value(&delta)
                .unwrap_or_else(|e| panic!("cannot write {delta:?}: {e}"));
        }
        assert!(ow_processor::compute_deltas(Some(snapshot), snapshot).is_empty());
    }
    topics
        .profiles
        .serialize_value(&profile)
        .unwrap_or_else(|e| panic!("cannot write {profile:?}: {e}"));
}

/// A raw event of `outcome` carrying `body`, as the producer writes it.
fn raw_event(body: &str, outcome: FetchOutcome) -> RawPlayerProfile {
    RawPlayerProfile {
        request_id: "fuzz".into(),
        player_id: "Fuzz-1234".into(),
        fetched_at: 1_700_000_000_000,
        request_url: "http://127.0.0.1/players/Fuzz-1234".into(),
        http_status: Some(200),
        outcome,
        body: Some(body.to_owned()),
        cache_max_age_secs: Some(600),
        cache_age_secs: None,
        error: None,
        attempts: 1,
        next_attempt_at: None,
    }
}
