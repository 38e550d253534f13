//! A stream of snapshots for many players, each advancing several times, for the tests that
//! compare a disturbed run (duplicates, crashes, rebalances) with a straight one.

use ow_domain::{FetchOutcome, RawPlayerProfile};
use serde_json::{Map, Value, json};

use super::{
    HOUR, JAN_1_2024, TEKROP, TEKROP_LAST_UPDATED, bump, full_body, raw, set_last_updated,
};

/// One event of the stream, with where it comes from.
#[derive(Clone, Debug)]
pub(crate) struct StreamEvent {
    /// Player number.
    pub(crate) player: usize,
    /// Snapshot number (0 is the baseline); failed and private fetches carry the number of the
    /// snapshot before them.
    pub(crate) advance: usize,
    /// The raw event (key: its player id; record timestamp: its `fetched_at`).
    pub(crate) raw: RawPlayerProfile,
}

/// The id of player `p`.
pub(crate) fn player_id(p: usize) -> String {
    format!("Player{p:03}-{}", 1000 + p)
}

/// TeKrop's body cut down to pc quickplay and competitive, all-heroes and Reaper: about 11 KB
/// minified, every category and stat of those heroes kept.
pub(crate) fn trimmed_body() -> Value {
    let mut body = full_body(TEKROP);
    let mut platforms = Map::new();
    let mut modes = Map::new();
    for mode in ["competitive", "quickplay"] {
        let career = &body["stats"]["pc"][mode]["career_stats"];
        let mut heroes = Map::new();
        for hero in ["all-heroes", "reaper"] {
            heroes.insert(hero.to_string(), career[hero].clone());
        }
        heroes.insert("hazard".to_string(), Value::Null);
        modes.insert(
            mode.to_string(),
            json!({"heroes_comparisons": {}, "career_stats": Value::Object(heroes)}),
        );
    }
    platforms.insert("pc".to_string(), Value::Object(modes));
    platforms.insert("console".to_string(), Value::Null);
    body["stats"] = Value::Object(platforms);
    body
}

/// When player `p` is fetched for snapshot `k`: 06:00 UTC on 2024-01-01, then every 5 hours
/// (the fifth snapshot is on the next day), players 20 s apart.
pub(crate) fn fetched_at(p: usize, k: usize) -> i64 {
    JAN_1_2024 + 6 * HOUR + k as i64 * 5 * HOUR + p as i64 * 20_000
}

/// What player `p` plays between snapshot `k - 1` and `k`, applied to a body.
fn play(body: &mut Value, p: usize, k: usize) {
    let games = 1 + (p + k) % 3;
    let won = (games + p % 2) / 2;
    let g = games as f64;
    let p_ = p as f64;
    let changes = [
        ("game", "games_played", g),
        ("game", "games_won", won as f64),
        ("game", "games_lost", (games - won) as f64),
        ("game", "time_played", 600.0 * g + 7.0 * p_),
        ("combat", "eliminations", 9.0 * g + (p % 5) as f64),
        ("combat", "deaths", 4.0 * g),
        ("combat", "damage_done", 4000.0 * g + 13.0 * p_),
        ("assists", "healing_done", 800.0 * g),
    ];
    let mut modes = vec!["competitive"];
    if k.is_multiple_of(2) {
        modes.push("quickplay");
    }
    for mode in modes {
        for (category, key, by) in changes {
            bump(body, ["pc", mode, "all-heroes", category, key], by);
        }
    }
    for (category, key, by) in [
        ("game", "games_played", g),
        ("game", "time_played", 600.0 * g + 7.0 * p_),
        ("combat", "eliminations", 9.0 * g + (p % 5) as f64),
        ("combat", "deaths", 4.0 * g),
    ] {
        bump(body, ["pc", "competitive", "reaper", category, key], by);
    }
}

/// The straight stream: `players` players, each fetched `snapshots` times with counters going
/// up between fetches, in time order. Players 3, 13, … also have a failed fetch after their
/// third snapshot, and players 7, 17, … a private one after their second (both change the
/// profile only).
pub(crate) fn snapshot_stream(players: usize, snapshots: usize) -> Vec<StreamEvent> {
    let base = trimmed_body();
    let mut bodies: Vec<Value> = (0..players)
        .map(|p| {
            let mut body = base.clone();
            body["summary"]["username"] = json!(format!("Player{p:03}"));
            body
        })
        .collect();
    let mut events = Vec::new();
    for k in 0..snapshots {
        for (p, body) in bodies.iter_mut().enumerate() {
            if k > 0 {
                play(body, p, k);
            }
            set_last_updated(body, TEKROP_LAST_UPDATED + k as i64 * 3600 + p as i64);
            let id = player_id(p);
            let at = fetched_at(p, k);
            let mut event = raw(&id, FetchOutcome::Ok, Some(body.to_string()), at);
            event.request_id = format!("req-{p}-{k}");
            events.push(StreamEvent {
                player: p,
                advance: k,
                raw: event,
            });
            let after = at + 60_000;
            if p % 10 == 3 && k == 2 {
                let mut failed = raw(&id, FetchOutcome::UpstreamError, None, after);
                failed.error = Some("504 from Blizzard".into());
                failed.attempts = 3;
                events.push(StreamEvent {
                    player: p,
                    advance: k,
                    raw: failed,
                });
            }
            if p % 10 == 7 && k == 1 {
                let summary = body["summary"].to_string();
                let private = format!(r#"{{"summary": {summary}, "stats": null}}"#);
                events.push(StreamEvent {
                    player: p,
                    advance: k,
                    raw: raw(&id, FetchOutcome::Private, Some(private), after),
                });
            }
        }
    }
    events
}

/// The same stream with events delivered twice: for players 0, 5, 10, …, snapshot 1 again
/// right after itself, and the baseline again after snapshot 2 (an old event re-delivered
/// after newer ones). Every player's last event stays its newest snapshot.
pub(crate) fn with_duplicates(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut out = Vec::with_capacity(events.len() + events.len() / 10);
    for event in events {
        out.push(event.clone());
        let ok = event.raw.outcome == FetchOutcome::Ok;
        if event.player % 5 == 0 && ok && event.advance == 1 {
            out.push(event.clone());
        }
        if event.player % 5 == 0 && ok && event.advance == 2 {
            let baseline = events
                .iter()
                .find(|e| e.player == event.player && e.advance == 0)
                .expect("every player has a baseline");
            out.push(baseline.clone());
        }
    }
    out
}
