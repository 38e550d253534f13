//! The inputs every contender reads, and what their outputs must be.
//!
//! **Keyed records** (workloads `a` and `b`): record `i` has the key `k<i mod keys>` (five
//! digits) and a value of `value_bytes` ASCII bytes: `i` in ten digits, `|`, then `x` padding.
//! (a) keeps the records of even `i` and upper-cases their values; (b) counts records per key.
//!
//! **OverFast events** (workload `c`): the recorded competitive PC profile of JohnV1-1190 as raw
//! player events, eight snapshots per player (each later, with more games played), then the
//! next player, as the processor's own benchmark builds them.

use std::collections::BTreeMap;
use std::path::Path;

use ow_domain::{FetchOutcome, RawPlayerProfile};
use serde_json::{Value, json};

use crate::BenchError;

/// Snapshots per player in the OverFast workload.
pub const VERSIONS: usize = 8;
/// `fetched_at` of the first OverFast event: 2024-01-01T00:00:00Z.
const START: i64 = 1_704_067_200_000;

/// The key of keyed record `i`.
pub fn key(i: u64, keys: u64) -> String {
    format!("k{:05}", i % keys.max(1))
}

/// The value of keyed record `i`.
pub fn value(i: u64, value_bytes: usize) -> Vec<u8> {
    let mut v = format!("{i:010}|").into_bytes();
    v.resize(value_bytes.max(v.len()), b'x');
    v
}

/// The index a keyed value starts with; `None` if it does not.
pub fn index_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.get(..10)?).ok()?.parse().ok()
}

/// Workload (a) on one value: `Some(upper-cased)` for an even index, `None` (filtered out)
/// otherwise, or for a value that does not parse.
pub fn map_filter(value: &[u8]) -> Option<Vec<u8>> {
    let i = index_of(value)?;
    i.is_multiple_of(2).then(|| value.to_ascii_uppercase())
}

/// What workload (a) must write for records `indices`: records per key.
pub fn expected_map_filter(indices: impl Iterator<Item = u64>, keys: u64) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for i in indices.filter(|i| i.is_multiple_of(2)) {
        *out.entry(key(i, keys)).or_insert(0) += 1;
    }
    out
}

/// What workload (b) must end with for records `indices`: the count per key.
pub fn expected_counts(indices: impl Iterator<Item = u64>, keys: u64) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for i in indices {
        *out.entry(key(i, keys)).or_insert(0) += 1;
    }
    out
}

/// Adds `by` to every `games_played` and `time_played` of the all-heroes entries.
fn play(body: &mut Value, by: f64) {
    let Some(platforms) = body["stats"].as_object_mut() else {
        return;
    };
    for modes in platforms.values_mut().filter_map(Value::as_object_mut) {
        for mode in modes.values_mut() {
            let Some(categories) = mode["career_stats"]["all-heroes"].as_array_mut() else {
                continue;
            };
            for stat in categories
                .iter_mut()
                .filter_map(|c| c["stats"].as_array_mut())
                .flatten()
            {
                if stat["key"] == "games_played" || stat["key"] == "time_played" {
                    let value = stat["value"].as_f64().unwrap_or(0.0) + by;
                    stat["value"] = json!(value);
                }
            }
        }
    }
}

/// The OverFast workload: minified bodies of the [`VERSIONS`] snapshots of one player, from the
/// recorded full body at `sample` reduced to its PC competitive stats.
pub fn overfast_bodies(sample: &Path) -> Result<Vec<String>, BenchError> {
    let text = std::fs::read_to_string(sample).map_err(|source| BenchError::Io {
        path: sample.to_path_buf(),
        source,
    })?;
    let mut body: Value = serde_json::from_str(&text).map_err(|e| BenchError::Input {
        what: sample.display().to_string(),
        reason: e.to_string(),
    })?;
    let competitive = body["stats"]["pc"]["competitive"].take();
    body["stats"] = json!({"pc": {"competitive": competitive}});
    let updated = body["summary"]["last_updated_at"].as_i64().unwrap_or(0);
    Ok((0..VERSIONS)
        .map(|v| {
            let mut b = body.clone();
            b["summary"]["last_updated_at"] = json!(updated + 600 * v as i64);
            play(&mut b, v as f64);
            b.to_string()
        })
        .collect())
}

/// OverFast event `i`: player `i / VERSIONS`, snapshot `i % VERSIONS`.
pub fn overfast_event(i: u64, bodies: &[String]) -> (String, RawPlayerProfile) {
    let n = bodies.len().max(1) as u64;
    let (player, version) = (i / n, (i % n) as usize);
    let player_id = format!("Player{player}-{}", 1000 + player);
    let fetched_at = START + i as i64 * 60_000;
    let raw = RawPlayerProfile {
        request_id: format!("bench-{i}"),
        player_id: player_id.clone(),
        fetched_at,
        request_url: format!("https://overfast-api.tekrop.fr/players/{player_id}"),
        http_status: Some(200),
        outcome: FetchOutcome::Ok,
        body: bodies.get(version).cloned(),
        cache_max_age_secs: Some(600),
        cache_age_secs: None,
        error: None,
        attempts: 1,
        next_attempt_at: None,
    };
    (player_id, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_index_and_map_filter_keeps_evens() {
        let v = value(42, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(index_of(&v), Some(42));
        assert_eq!(map_filter(&v).map(|m| m[11]), Some(b'X'));
        assert_eq!(map_filter(&value(43, 100)), None);
        assert_eq!(map_filter(b"nope"), None);
        assert_eq!(key(10_007, 10_000), "k00007");
        let counts = expected_counts(0..10, 3);
        assert_eq!(counts["k00000"], 4);
        assert_eq!(expected_map_filter(0..10, 3)["k00000"], 2);
    }
}
