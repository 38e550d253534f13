//! Throughput of the Avro serde on a 15-field record (strings, longs, doubles, an enum, an
//! optional, a map): encode, decode with the writer's own schema (direct path) and decode
//! with an evolved reader schema (resolving path).
//!
//! Run: `cargo bench -p ow-stream-core --bench avro -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::{AvroSerde, Serde, SerdeContext};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    Tank,
    Damage,
    Support,
}

/// Named as the Avro record, so that the direct deserializer can fill it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "HeroStats")]
struct Stats {
    player_id: String,
    request_id: String,
    hero: String,
    role: Role,
    fetched_at: i64,
    games_played: i64,
    games_won: i64,
    time_played_secs: i64,
    eliminations: i64,
    deaths: i64,
    damage_per_10: f64,
    healing_per_10: f64,
    win_rate: f64,
    title: Option<String>,
    extras: HashMap<String, f64>,
}

const STATS_V1: &str = r#"{
  "type": "record", "name": "HeroStats", "namespace": "ow.bench",
  "fields": [
    {"name": "player_id", "type": "string"},
    {"name": "request_id", "type": "string"},
    {"name": "hero", "type": "string"},
    {"name": "role", "type": {"type": "enum", "name": "Role", "symbols": ["tank", "damage", "support"]}},
    {"name": "fetched_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "games_played", "type": "long"},
    {"name": "games_won", "type": "long"},
    {"name": "time_played_secs", "type": "long"},
    {"name": "eliminations", "type": "long"},
    {"name": "deaths", "type": "long"},
    {"name": "damage_per_10", "type": "double"},
    {"name": "healing_per_10", "type": "double"},
    {"name": "win_rate", "type": "double"},
    {"name": "title", "type": ["null", "string"], "default": null},
    {"name": "extras", "type": {"type": "map", "values": "double"}}
  ]
}"#;

/// v1 plus a field with a default: decoding v1 data with it goes through resolution.
const STATS_V2: &str = r#"{
  "type": "record", "name": "HeroStats", "namespace": "ow.bench",
  "fields": [
    {"name": "player_id", "type": "string"},
    {"name": "request_id", "type": "string"},
    {"name": "hero", "type": "string"},
    {"name": "role", "type": {"type": "enum", "name": "Role", "symbols": ["tank", "damage", "support"]}},
    {"name": "fetched_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "games_played", "type": "long"},
    {"name": "games_won", "type": "long"},
    {"name": "time_played_secs", "type": "long"},
    {"name": "eliminations", "type": "long"},
    {"name": "deaths", "type": "long"},
    {"name": "damage_per_10", "type": "double"},
    {"name": "healing_per_10", "type": "double"},
    {"name": "win_rate", "type": "double"},
    {"name": "title", "type": ["null", "string"], "default": null},
    {"name": "extras", "type": {"type": "map", "values": "double"}},
    {"name": "season", "type": "int", "default": 0}
  ]
}"#;

fn sample() -> Stats {
    Stats {
        player_id: "TeKrop-2217".into(),
        request_id: "2f1c7a52-3c55-4b8e-9a51-2a9a5d1c0e11".into(),
        hero: "ana".into(),
        role: Role::Support,
        fetched_at: 1_735_000_000_000,
        games_played: 512,
        games_won: 280,
        time_played_secs: 360_000,
        eliminations: 9_001,
        deaths: 2_345,
        damage_per_10: 4_321.5,
        healing_per_10: 11_002.25,
        win_rate: 0.546_875,
        title: Some("Shrine Keeper".into()),
        extras: [
            ("sleep_darts".to_string(), 1_234.0),
            ("nano_boosts".to_string(), 321.0),
        ]
        .into_iter()
        .collect(),
    }
}

fn avro(c: &mut Criterion) {
    let registry = SchemaRegistry::mock("bench-avro");
    let ctx = SerdeContext::value("ow.stats.by-hero");
    let v1 = AvroSerde::<Stats>::from_avsc(&registry, STATS_V1).expect("v1 schema parses");
    let v2 = AvroSerde::<Stats>::from_avsc(&registry, STATS_V2).expect("v2 schema parses");
    let value = sample();
    let bytes = v1.serialize(ctx, &value).expect("sample encodes");
    // Prepare both decoders outside the measurement.
    assert_eq!(v1.deserialize(ctx, &bytes).expect("direct decode"), value);
    assert_eq!(
        v2.deserialize(ctx, &bytes).expect("resolving decode"),
        value
    );

    let mut group = c.benchmark_group("avro");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            v1.serialize_into(ctx, black_box(&value), &mut out)
                .expect("encodes");
            black_box(out.len())
        })
    });
    group.bench_function("decode_same_schema", |b| {
        b.iter(|| v1.deserialize(ctx, black_box(&bytes)).expect("decodes"))
    });
    group.bench_function("decode_resolving", |b| {
        b.iter(|| v2.deserialize(ctx, black_box(&bytes)).expect("decodes"))
    });
    group.finish();
    println!("encoded size: {} bytes", bytes.len());
}

criterion_group!(benches, avro);
criterion_main!(benches);
