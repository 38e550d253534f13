//! Writes the seed corpus of the `avro_frame` fuzz target: one framed record per serde of the
//! processor's topics, and one per older writer schema (what a producer from before the
//! defaulted fields were added writes), each prefixed with the byte that picks its serde.
//!
//! ```text
//! cargo run -p ow-fuzz --example avro_seeds -- fuzz/corpus/avro_frame
//! ```

use std::fs;
use std::path::PathBuf;

use ow_domain::{DailyStats, FetchOutcome, RawPlayerProfile, StatsDelta};
use ow_fuzz::pipeline::pipeline;
use ow_stream_core::avro::writer::datum::GenericDatumWriter;
use ow_stream_core::avro::{self, types::Value};
use ow_stream_core::registry::wire::MAGIC_BYTE;
use serde::Serialize;

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus/avro_frame".into()),
    );
    fs::create_dir_all(&dir).expect("the corpus directory");
    let p = pipeline();
    let t = &p.topics;
    let raw = RawPlayerProfile {
        request_id: "r1".into(),
        player_id: "TeKrop-2217".into(),
        fetched_at: 1_700_000_000_000,
        request_url: "http://127.0.0.1/players/TeKrop-2217".into(),
        http_status: Some(200),
        outcome: FetchOutcome::Ok,
        body: Some(include_str!("../../fuzz/corpus/overfast_body/lenient-numbers.json").to_owned()),
        cache_max_age_secs: Some(600),
        cache_age_secs: Some(12),
        error: None,
        attempts: 1,
        next_attempt_at: None,
    };
    let category = ow_processor::stats_by_category(&raw).expect("the seed body parses")[0].clone();
    let profile = ow_processor::apply_fetch(None, &raw).expect("the seed body parses");
    let delta = StatsDelta {
        player_id: raw.player_id.clone(),
        platform: "pc".into(),
        gamemode: "quickplay".into(),
        hero: "all-heroes".into(),
        previous_snapshot_at: raw.fetched_at - 86_400_000,
        snapshot_at: raw.fetched_at,
        games_played: 3.0,
        games_won: 2.0,
        time_played: 3723.0,
        stats: [("eliminations".to_owned(), 51.0)].into(),
        ..StatsDelta::default()
    };
    let daily = ow_processor::add_delta(DailyStats::default(), &delta);
    let mut seeds: Vec<(String, u8, Vec<u8>)> = vec![
        (
            "raw-key".into(),
            0,
            t.raw.serialize_key(&raw.player_id).expect("key"),
        ),
        (
            "raw-value".into(),
            1,
            t.raw.serialize_value(&raw).expect("raw"),
        ),
        (
            "category-key".into(),
            2,
            t.stats_by_category
                .serialize_key(&category.key())
                .expect("key"),
        ),
        (
            "category-value".into(),
            3,
            t.stats_by_category
                .serialize_value(&category)
                .expect("category"),
        ),
        (
            "profile-key".into(),
            4,
            t.profiles.serialize_key(&profile.player_id).expect("key"),
        ),
        (
            "profile-value".into(),
            5,
            t.profiles.serialize_value(&profile).expect("profile"),
        ),
        (
            "delta-key".into(),
            6,
            t.deltas.serialize_key(&delta.player_id).expect("key"),
        ),
        (
            "delta-value".into(),
            7,
            t.deltas.serialize_value(&delta).expect("delta"),
        ),
        (
            "daily-key".into(),
            8,
            t.daily.serialize_key(&daily.key()).expect("key"),
        ),
        (
            "daily-value".into(),
            9,
            t.daily.serialize_value(&daily).expect("daily"),
        ),
    ];
    for older in &p.older_writers {
        let (which, datum) = match older.what {
            "raw player profile" => (1, older_datum(&older.schema, &raw)),
            "stats by category" => (3, older_datum(&older.schema, &category)),
            "player profile" => (5, older_datum(&older.schema, &profile)),
            "stats delta" => (7, older_datum(&older.schema, &delta)),
            _ => (9, older_datum(&older.schema, &daily)),
        };
        let mut frame = vec![MAGIC_BYTE];
        frame.extend_from_slice(&older.id.to_be_bytes());
        frame.extend_from_slice(&datum);
        seeds.push((
            format!("older-{}", older.what.replace(' ', "-")),
            which,
            frame,
        ));
    }
    for (name, which, frame) in seeds {
        let mut input = vec![which];
        input.extend_from_slice(&frame);
        ow_fuzz::avro_frame::check(&input);
        fs::write(dir.join(name), input).expect("a corpus file");
    }
}

/// `record` written with the older `schema`: its fields that the schema has, in its order.
fn older_datum<T: Serialize>(schema: &avro::Schema, record: &T) -> Vec<u8> {
    let Value::Record(fields) = avro::to_value(record).expect("a record converts") else {
        panic!("not a record");
    };
    let avro::Schema::Record(record_schema) = schema else {
        panic!("not a record schema");
    };
    let kept = record_schema
        .fields
        .iter()
        .map(|f| {
            let value = fields
                .iter()
                .find(|(name, _)| *name == f.name)
                .map(|(_, v)| v.clone())
                .expect("the older schema's fields are the record's");
            (f.name.clone(), value)
        })
        .collect();
    let value = Value::Record(kept)
        .resolve(schema)
        .expect("the record fits the older schema");
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .expect("the older schema writes it")
}
