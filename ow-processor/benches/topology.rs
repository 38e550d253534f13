//! Throughput of the processor's topology through the test driver: raw events per second and
//! `ow.stats.by-category` records per second, for a large profile (JohnV1-1190's full body,
//! 483 KB pretty-printed as recorded) and a small one (the same player's pc competitive stats
//! only, 11 categories).
//!
//! Every event is a new snapshot of its player (a later `last_updated_at`, more games), so each
//! goes all the way: parse, profile, snapshot store, deltas, daily window, category records.
//! A player gets eight snapshots, then the next player starts (the first of each is a baseline
//! with no deltas). The Avro encoding of the input record is part of what is measured.
//!
//! Run with `cargo bench -p ow-processor --bench topology`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ow_domain::{FetchOutcome, RawPlayerProfile};
use ow_processor::{APPLICATION_ID, Topics, TopologyOptions, build};
use ow_stream_core::Record;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::testing::{TestDriverConfig, TopologyTestDriver};
use serde_json::{Value, json};

/// Snapshots per player.
const VERSIONS: usize = 8;
/// 2024-01-01T00:00:00Z.
const START: i64 = 1_704_067_200_000;

/// A profile to benchmark: its bodies (one per snapshot) and the category records each yields.
struct Profile {
    name: &'static str,
    bodies: Vec<String>,
    categories: u64,
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../samples/overfast/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
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

/// The snapshots of a body, minified: each one updated later, with more games.
fn versions(body: &Value) -> Vec<String> {
    let updated = body["summary"]["last_updated_at"].as_i64().unwrap_or(0);
    (0..VERSIONS)
        .map(|v| {
            let mut body = body.clone();
            body["summary"]["last_updated_at"] = json!(updated + 600 * v as i64);
            play(&mut body, v as f64);
            body.to_string()
        })
        .collect()
}

fn profiles() -> Vec<Profile> {
    let full = sample("JohnV1-1190.json");
    let mut small = full.clone();
    let competitive = small["stats"]["pc"]["competitive"].take();
    small["stats"] = json!({"pc": {"competitive": competitive}});
    vec![
        Profile {
            name: "JohnV1-1190-full",
            bodies: versions(&full),
            categories: 171,
        },
        Profile {
            name: "JohnV1-1190-competitive",
            bodies: versions(&small),
            categories: 11,
        },
    ]
}

/// Pipes `iters` events of `profile` through a fresh driver; returns the time it took.
fn run(profile: &Profile, iters: u64) -> Duration {
    let registry = SchemaRegistry::mock("topology-bench");
    let topology = build(&registry, &TopologyOptions::default()).expect("topology");
    let topics = Topics::new(&registry, "").expect("topics");
    let driver = TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default().with_application_id(APPLICATION_ID),
    )
    .expect("driver");
    let input = driver.input_topic(&topics.raw);
    let by_category = driver.output_topic(&topics.stats_by_category);
    let start = Instant::now();
    for i in 0..iters as usize {
        let (player, version) = (i / VERSIONS, i % VERSIONS);
        let player_id = format!("Player{player}-{}", 1000 + player);
        let fetched_at = START + i as i64 * 60_000;
        let raw = RawPlayerProfile {
            request_id: format!("bench-{i}"),
            player_id: player_id.clone(),
            fetched_at,
            request_url: format!("https://overfast-api.tekrop.fr/players/{player_id}"),
            http_status: Some(200),
            outcome: FetchOutcome::Ok,
            body: Some(profile.bodies[version].clone()),
            cache_max_age_secs: Some(600),
            cache_age_secs: None,
            error: None,
            attempts: 1,
            next_attempt_at: None,
        };
        input
            .pipe_record(Record::new(player_id, raw, fetched_at))
            .expect("pipe");
    }
    let elapsed = start.elapsed();
    assert_eq!(
        by_category.queue_size() as u64,
        iters * profile.categories,
        "every event is a new snapshot"
    );
    assert!(driver.dead_letters().is_empty());
    elapsed
}

fn topology(c: &mut Criterion) {
    let mut group = c.benchmark_group("topology");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));
    for profile in profiles() {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("raw-events/{}", profile.name), |b| {
            b.iter_custom(|iters| run(&profile, iters))
        });
        group.throughput(Throughput::Elements(profile.categories));
        group.bench_function(format!("category-records/{}", profile.name), |b| {
            b.iter_custom(|iters| run(&profile, iters))
        });
    }
    group.finish();
}

criterion_group!(benches, topology);
criterion_main!(benches);
