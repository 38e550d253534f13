//! Every record type goes through its schema and back unchanged: to an Avro value, resolved
//! against the schema text, encoded to bytes, decoded and deserialized again. A field that the
//! schema lacks, or that has another type or name, makes one of these steps fail.

use std::collections::BTreeMap;
use std::fmt::Debug;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use ow_domain::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(schema: &str, record: &T) {
    let schema = Schema::parse_str(schema).expect("the schema parses");
    let value = apache_avro::to_value(record).expect("serializes to a value");
    same_fields(&value, &schema, "");
    let value = value.resolve(&schema).expect("the value fits the schema");
    let writer = GenericDatumWriter::builder(&schema)
        .build()
        .expect("a writer");
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("a reader");

    // Through a generic value…
    let bytes = writer.write_value_to_vec(value).expect("encodes");
    let decoded = reader.read_value(&mut bytes.as_slice()).expect("decodes");
    let back: T = apache_avro::from_value(&decoded).expect("deserializes from the value");
    assert_eq!(&back, record);

    // …and straight through serde, as a schema-aware serde does.
    // (Bytes may differ: a generic map is a HashMap, so its entries come in another order.)
    let direct = writer
        .write_ser_to_vec(record)
        .expect("serializes against the schema");
    let back: T = reader
        .read_deser(&mut direct.as_slice())
        .expect("deserializes");
    assert_eq!(&back, record);
}

/// `resolve` fills a missing field from its default, so check the names first: every record
/// serialized from Rust has exactly the schema's fields, in the schema's order.
fn same_fields(value: &Value, schema: &Schema, path: &str) {
    match (value, schema) {
        (Value::Union(_, inner), _) => same_fields(inner, schema, path),
        (Value::Null, _) => {}
        (_, Schema::Union(union)) => {
            let non_null = union.variants().iter().find(|s| !matches!(s, Schema::Null));
            same_fields(
                value,
                non_null.expect("every union here is [null, T]"),
                path,
            );
        }
        (Value::Record(fields), Schema::Record(record)) => {
            let got: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            let want: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(got, want, "fields of {path}/{}", record.name.fullname(None));
            for ((name, field), spec) in fields.iter().zip(&record.fields) {
                same_fields(field, &spec.schema, &format!("{path}/{name}"));
            }
        }
        (Value::Array(items), Schema::Array(array)) => {
            items
                .iter()
                .for_each(|item| same_fields(item, &array.items, path));
        }
        (Value::Map(entries), Schema::Map(map)) => {
            entries
                .values()
                .for_each(|entry| same_fields(entry, &map.types, path));
        }
        _ => {}
    }
}

fn stats_by_category(last_updated_at: Option<i64>) -> StatsByCategory {
    let stat = |value, label: &str, unit| StatValue {
        value,
        label: label.into(),
        unit,
    };
    StatsByCategory {
        player_id: "TeKrop-2217".into(),
        snapshot_at: 1_700_000_000_123,
        last_updated_at,
        platform: "pc".into(),
        gamemode: "competitive".into(),
        hero: "all-heroes".into(),
        category: "game".into(),
        category_label: "Game".into(),
        stats: BTreeMap::from([
            (
                "games_played".into(),
                stat(5.0, "Games Played", StatUnit::Count),
            ),
            (
                "time_played".into(),
                stat(2807.0, "Time Played", StatUnit::Seconds),
            ),
            (
                "win_percentage".into(),
                stat(20.0, "Win Percentage", StatUnit::Percent),
            ),
            (
                "deaths_avg_per_10_min".into(),
                stat(6.41, "Deaths", StatUnit::Per10Min),
            ),
            (
                "eliminations_per_life".into(),
                stat(1.7, "Elims", StatUnit::Ratio),
            ),
        ]),
    }
}

#[test]
fn stats_by_category_and_its_key() {
    round_trip(
        STATS_BY_CATEGORY_VALUE,
        &stats_by_category(Some(1_678_536_999_000)),
    );
    let empty = StatsByCategory {
        stats: BTreeMap::new(),
        ..stats_by_category(None)
    };
    round_trip(STATS_BY_CATEGORY_VALUE, &empty);
    let key = stats_by_category(None).key();
    assert_eq!(key.partition_key(), "TeKrop-2217");
    round_trip(STATS_CATEGORY_KEY, &key);
}

#[test]
fn player_profile_full_and_empty() {
    let full = PlayerProfile {
        player_id: "KIRIKO-21253".into(),
        username: Some("KIRIKO".into()),
        avatar: Some("https://example.test/a.png".into()),
        namecard: Some("https://example.test/n.png".into()),
        title: Some("Diamond Damage".into()),
        endorsement: Some(Endorsement {
            level: 2,
            frame: Some("https://example.test/f".into()),
        }),
        competitive: vec![CompetitiveRank {
            platform: "pc".into(),
            role: "damage".into(),
            division: "diamond".into(),
            tier: 5,
            role_icon: Some("r".into()),
            rank_icon: Some("k".into()),
            tier_icon: None,
            season: Some(11),
        }],
        last_updated_at: Some(1_676_730_323_000),
        profile_fetched_at: Some(1_700_000_000_000),
        status: FetchStatus {
            outcome: FetchOutcome::RateLimited,
            fetched_at: 1_700_000_100_000,
            http_status: Some(429),
            message: Some("too many requests".into()),
            next_check_at: Some(1_700_000_160_000),
        },
    };
    round_trip(PLAYER_PROFILE_VALUE, &full);
    let empty = PlayerProfile {
        player_id: "Nobody-1".into(),
        username: None,
        avatar: None,
        namecard: None,
        title: None,
        endorsement: None,
        competitive: vec![],
        last_updated_at: None,
        profile_fetched_at: None,
        status: FetchStatus {
            outcome: FetchOutcome::NotFound,
            fetched_at: 1,
            http_status: None,
            message: None,
            next_check_at: None,
        },
    };
    round_trip(PLAYER_PROFILE_VALUE, &empty);
    for outcome in [
        FetchOutcome::Ok,
        FetchOutcome::Private,
        FetchOutcome::NotFound,
        FetchOutcome::RateLimited,
        FetchOutcome::UpstreamError,
    ] {
        let mut p = empty.clone();
        p.status.outcome = outcome;
        round_trip(PLAYER_PROFILE_VALUE, &p);
    }
}

#[test]
fn stats_delta() {
    let delta = StatsDelta {
        player_id: "TeKrop-2217".into(),
        platform: "pc".into(),
        gamemode: "competitive".into(),
        hero: "all-heroes".into(),
        previous_snapshot_at: 1,
        snapshot_at: 2,
        previous_last_updated_at: Some(3),
        last_updated_at: Some(4),
        games_played: 3.0,
        games_won: 2.0,
        games_lost: 1.0,
        time_played: 3600.0,
        eliminations: 40.0,
        deaths: 10.0,
        damage: 5000.5,
        healing: 0.0,
        stats: BTreeMap::from([("games_played".into(), 3.0), ("cards".into(), 1.0)]),
    };
    round_trip(STATS_DELTA_VALUE, &delta);
    round_trip(STATS_DELTA_VALUE, &StatsDelta::default());
}

#[test]
fn daily_stats_and_its_key() {
    let daily = DailyStats {
        player_id: "TeKrop-2217".into(),
        platform: "pc".into(),
        gamemode: "quickplay".into(),
        window_start: 1_699_920_000_000,
        window_end: 1_700_006_400_000,
        games_played: 3.0,
        games_won: 2.0,
        games_lost: 1.0,
        time_played: 3600.0,
        eliminations: 40.0,
        deaths: 10.0,
        damage: 5000.0,
        healing: 1200.0,
        delta_count: 1,
        last_snapshot_at: 1_700_000_000_000,
    };
    round_trip(DAILY_STATS_VALUE, &daily);
    round_trip(DAILY_STATS_VALUE, &DailyStats::default());
    let key = daily.key();
    assert_eq!(key.partition_key(), "TeKrop-2217");
    round_trip(DAILY_STATS_KEY, &key);
}

#[test]
fn player_snapshot() {
    let snapshot = PlayerSnapshot {
        player_id: "TeKrop-2217".into(),
        snapshot_at: 10,
        last_updated_at: Some(9),
        entries: vec![
            SnapshotEntry {
                platform: "pc".into(),
                gamemode: "competitive".into(),
                hero: "all-heroes".into(),
                stats: BTreeMap::from([("games_played".into(), 5.0), ("deaths".into(), 30.0)]),
            },
            SnapshotEntry {
                platform: "pc".into(),
                gamemode: "competitive".into(),
                hero: "ana".into(),
                stats: BTreeMap::new(),
            },
        ],
    };
    round_trip(PLAYER_SNAPSHOT_VALUE, &snapshot);
    round_trip(
        PLAYER_SNAPSHOT_VALUE,
        &PlayerSnapshot {
            last_updated_at: None,
            entries: vec![],
            ..snapshot
        },
    );
}
