//! OverFast bodies for the scenarios: TeKrop-2217's recorded profile cut down to two heroes of
//! PC competitive (ten category records a snapshot, so a hundred players stay far below what
//! tansu 0.6.0 holds before it hangs), renamed for each player, whose counters advance with
//! each snapshot.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::binaries::workspace_root;

/// The heroes kept.
const HEROES: &[&str] = &["all-heroes", "reaper"];
/// The categories whose stats add up (and advance).
const ADDITIVE: &[&str] = &["game", "combat", "assists"];

fn base() -> &'static Value {
    static BASE: OnceLock<Value> = OnceLock::new();
    BASE.get_or_init(|| {
        let path = workspace_root().join("samples/overfast/TeKrop-2217.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("sample {}: {e}", path.display()));
        let full: Value = serde_json::from_str(&text).expect("the sample is JSON");
        let career = &full["stats"]["pc"]["competitive"]["career_stats"];
        let mut kept = serde_json::Map::new();
        for hero in HEROES {
            kept.insert((*hero).to_owned(), career[*hero].clone());
        }
        json!({
            "summary": full["summary"].clone(),
            "stats": {
                "pc": {
                    "quickplay": null,
                    "competitive": { "heroes_comparisons": {}, "career_stats": kept },
                },
                "console": null,
            },
        })
    })
}

/// The `last_updated_at` of snapshot 0, in seconds (the recorded one).
pub fn base_last_updated_at() -> i64 {
    base()["summary"]["last_updated_at"]
        .as_i64()
        .expect("the sample has last_updated_at")
}

/// `player`'s body at snapshot `n` (0 is the recording): `last_updated_at` one hour later per
/// snapshot, and every stat of the `game`, `combat` and `assists` categories of both heroes
/// `n` × its own step higher (a step of 1 for counts such as `games_played`, 60 for times).
pub fn snapshot(player: &str, n: u32) -> Vec<u8> {
    let mut body = base().clone();
    let name = player.split('-').next().unwrap_or(player);
    body["summary"]["username"] = json!(name);
    body["summary"]["last_updated_at"] = json!(base_last_updated_at() + i64::from(n) * 3600);
    let career = &mut body["stats"]["pc"]["competitive"]["career_stats"];
    for hero in HEROES {
        let Some(categories) = career[*hero].as_array_mut() else {
            continue;
        };
        for category in categories {
            let additive = category["category"]
                .as_str()
                .is_some_and(|c| ADDITIVE.contains(&c));
            if !additive {
                continue;
            }
            let Some(stats) = category["stats"].as_array_mut() else {
                continue;
            };
            for stat in stats {
                let step = if stat["key"].as_str().is_some_and(|k| k.contains("time")) {
                    60.0
                } else {
                    1.0
                };
                if let Some(v) = stat["value"].as_f64() {
                    stat["value"] = json!(v + f64::from(n) * step);
                }
            }
        }
    }
    body.to_string().into_bytes()
}

/// `player`'s bodies for snapshots `0..count`.
pub fn snapshots(player: &str, count: u32) -> Vec<Vec<u8>> {
    (0..count).map(|n| snapshot(player, n)).collect()
}

/// The value of `stat` of `category` of `hero` in PC competitive, in the web's
/// `/api/players/{id}` JSON (`categories.platforms.pc.competitive.heroes...`).
pub fn web_stat(player_json: &Value, hero: &str, category: &str, stat: &str) -> Option<f64> {
    player_json["categories"]["platforms"]["pc"]["competitive"]["heroes"][hero][category]["stats"]
        [stat]["value"]
        .as_f64()
}

/// The value of `stat` in snapshot `n`'s body.
pub fn body_stat(n: u32, hero: &str, category: &str, stat: &str) -> Option<f64> {
    let body: Value = serde_json::from_slice(&snapshot("Any-1", n)).ok()?;
    body["stats"]["pc"]["competitive"]["career_stats"][hero]
        .as_array()?
        .iter()
        .find(|c| c["category"] == category)?["stats"]
        .as_array()?
        .iter()
        .find(|s| s["key"] == stat)?["value"]
        .as_f64()
}
