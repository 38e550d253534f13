//! Scenario 4: 10,000 poison records among good ones on the raw topic. Every poison record
//! lands in `ow-processor-dlq`, byte for byte, with headers naming where it came from and why;
//! every good record is processed (the web shows each player's second snapshot and its
//! deltas); no stage exits or restarts.
//!
//! Four kinds of poison, 2,500 each: random bytes; Confluent framing with a schema id the
//! registry never issued; valid Avro of another topic's schema (a `PlayerRequest`, framed with
//! its real schema id); and raw events whose OverFast body is JSON cut off half-way.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use ow_domain::{FetchOutcome, PlayerRequest, RawPlayerProfile, RequestOrigin};
use ow_e2e::bodies::{self, web_stat};
use ow_e2e::{Options, Pipeline, eventually};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::processor::dead_letter_headers as dlq;
use ow_stream_core::record::Headers;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::{BytesSerde, Serde as _, SerdeContext};
use ow_stream_core::topic::Topic;
use rand::{Rng as _, SeedableRng as _};

const POISON_PER_KIND: usize = 2_500;
const PLAYERS: usize = 100;
const KINDS: [&str; 4] = [
    "random bytes",
    "unknown schema id",
    "wrong schema",
    "truncated JSON",
];

/// One record to write: its key and value bytes, and what it is.
struct Planned {
    key: Vec<u8>,
    value: Vec<u8>,
    /// `None` for a good record, else the index of its kind in [`KINDS`].
    poison: Option<usize>,
}

fn raw_event(player: &str, snapshot: u32, body: String) -> RawPlayerProfile {
    let fetched_at = 1_780_000_000_000 + i64::from(snapshot) * 3_600_000;
    RawPlayerProfile {
        request_id: format!("poison-test-{player}-{snapshot}"),
        player_id: player.to_owned(),
        fetched_at,
        request_url: format!("https://overfast-api.tekrop.fr/players/{player}"),
        http_status: Some(200),
        outcome: FetchOutcome::Ok,
        body: Some(body),
        cache_max_age_secs: Some(600),
        cache_age_secs: None,
        error: None,
        attempts: 1,
        next_attempt_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_good_records_through() {
    let mut pipeline = Pipeline::start(Options::default()).await;
    let registry = SchemaRegistry::from_url(pipeline.registry_url()).unwrap();
    let topics = ow_producer::topics::Topics::new(&registry, "").unwrap();
    let config = StreamsConfig::new("e2e-poison", Backend::kafka(pipeline.broker.bootstrap()))
        .with_schema_registry(pipeline.registry_url());
    let producer = Producer::new(&config).unwrap();

    // The serdes, with their schemas registered (as a producing stage's are).
    let raw = &topics.raw;
    let requests = &topics.requests;
    raw.key_serde()
        .prepare(SerdeContext::key(raw.name()))
        .await
        .unwrap();
    raw.value_serde()
        .prepare(SerdeContext::value(raw.name()))
        .await
        .unwrap();
    requests
        .value_serde()
        .prepare(SerdeContext::value(requests.name()))
        .await
        .unwrap();

    // The plan: two snapshots of every player, in order per player, with the poison spread
    // at random between them.
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let players: Vec<String> = (0..PLAYERS).map(|i| format!("Good-{}", 1000 + i)).collect();
    let mut good: Vec<Planned> = Vec::new();
    for snapshot in 0..2 {
        for player in &players {
            let body = String::from_utf8(bodies::snapshot(player, snapshot)).unwrap();
            good.push(Planned {
                key: raw.serialize_key(player).unwrap(),
                value: raw
                    .serialize_value(&raw_event(player, snapshot, body))
                    .unwrap(),
                poison: None,
            });
        }
    }
    let mut poison: Vec<Planned> = Vec::new();
    let full_body = String::from_utf8(bodies::snapshot("Poison-1", 0)).unwrap();
    for i in 0..POISON_PER_KIND * KINDS.len() {
        let kind = i % KINDS.len();
        let player = format!("Poison-{i}");
        let key = raw.serialize_key(&player).unwrap();
        let value = match kind {
            0 => {
                let len = rng.random_range(0..200);
                (0..len).map(|_| rng.random::<u8>()).collect()
            }
            1 => {
                // Magic byte 0, a schema id far above any the registry issued, some bytes.
                let mut v = vec![0u8];
                v.extend_from_slice(&(900_000_000u32 + i as u32).to_be_bytes());
                v.extend((0..rng.random_range(0..64)).map(|_| rng.random::<u8>()));
                v
            }
            2 => requests
                .serialize_value(&PlayerRequest {
                    request_id: format!("req-{i}"),
                    player_id: player.clone(),
                    requested_at: 1_780_000_000_000,
                    origin: RequestOrigin::Search,
                })
                .unwrap(),
            _ => {
                let cut = rng.random_range(1..full_body.len() / 2);
                let body = full_body[..cut].to_owned();
                raw.serialize_value(&raw_event(&player, 0, body)).unwrap()
            }
        };
        poison.push(Planned {
            key,
            value,
            poison: Some(kind),
        });
    }
    // Merge: the good records keep their order; each poison record goes after a random one.
    let mut slots: Vec<Vec<Planned>> = (0..=good.len()).map(|_| Vec::new()).collect();
    for p in poison {
        let at = rng.random_range(0..slots.len());
        slots[at].push(p);
    }
    let mut plan: Vec<Planned> = Vec::new();
    let mut good = good.into_iter();
    for slot in slots {
        plan.extend(slot);
        if let Some(g) = good.next() {
            plan.push(g);
        }
    }
    assert_eq!(plan.len(), PLAYERS * 2 + POISON_PER_KIND * KINDS.len());

    // Written in order per key (one record of a key in flight at a time is not needed: a
    // player's two snapshots are 10,000 records apart at most, and sends go out in windows).
    let raw_name = raw.name().to_owned();
    let mut written: BTreeMap<(i32, i64), (usize, Vec<u8>)> = BTreeMap::new();
    for window in plan.chunks(500) {
        let results: Vec<_> = stream::iter(window.iter().map(|p| {
            let producer = producer.clone();
            let raw_name = raw_name.clone();
            async move {
                let delivered = producer
                    .send_raw(
                        &raw_name,
                        Some(&p.key),
                        Some(&p.value),
                        1_780_000_000_000,
                        &Headers::new(),
                    )
                    .await
                    .unwrap();
                (delivered, p)
            }
        }))
        .buffered(64)
        .collect()
        .await;
        for (delivered, p) in results {
            if let Some(kind) = p.poison {
                written.insert(
                    (delivered.partition, delivered.offset),
                    (kind, p.value.clone()),
                );
            }
        }
    }
    assert_eq!(written.len(), POISON_PER_KIND * KINDS.len());

    // Every good record: each player shows the second snapshot, with its deltas.
    let games_0 = bodies::body_stat(0, "all-heroes", "game", "games_played").unwrap();
    let games_1 = bodies::body_stat(1, "all-heroes", "game", "games_played").unwrap();
    for player in &players {
        eventually(
            &format!("{player} shows its second snapshot and its deltas"),
            Duration::from_secs(180),
            || async {
                let (_, body) = pipeline.get(&format!("/api/players/{player}")).await;
                let games = web_stat(&body, "all-heroes", "game", "games_played")?;
                let delta =
                    body["deltas"]["platforms"]["pc"]["competitive"]["all-heroes"]["games_played"]
                        .as_f64()?;
                (games == games_1 && delta == games_1 - games_0).then_some(())
            },
        )
        .await;
    }

    // Every poison record, and nothing else, in the dead-letter topic, with its provenance.
    let dlq_topic: Topic<Vec<u8>, Vec<u8>> = Topic::new("ow-processor-dlq", BytesSerde, BytesSerde);
    let reader = Consumer::subscribe(&config, "e2e-dlq-reader", &dlq_topic).unwrap();
    let mut routed: BTreeMap<(i32, i64), (String, Vec<u8>)> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while routed.len() < written.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} poison records reached the dead-letter topic",
            routed.len(),
            written.len()
        );
        let Ok(Some(next)) = tokio::time::timeout(Duration::from_secs(1), reader.next_raw()).await
        else {
            continue;
        };
        let record = next.unwrap();
        let h = &record.headers;
        assert_eq!(h.last_str(dlq::TOPIC), Some(raw_name.as_str()));
        assert_eq!(h.last_str(dlq::APPLICATION), Some("ow-processor"));
        assert!(h.last_str(dlq::ERROR).is_some_and(|e| !e.is_empty()));
        let partition: i32 = h.last_str(dlq::PARTITION).unwrap().parse().unwrap();
        let offset: i64 = h.last_str(dlq::OFFSET).unwrap().parse().unwrap();
        let stage = h.last_str(dlq::STAGE).unwrap().to_owned();
        let value = record.value.map(|v| v.to_vec()).unwrap_or_default();
        let again = routed.insert((partition, offset), (stage, value));
        assert!(again.is_none(), "{partition}/{offset} dead-lettered twice");
    }
    // Nothing more arrives (a good record would be a wrong route, a copy a duplicate).
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(5), reader.next_raw()).await {
        panic!(
            "an extra dead-letter record: {:?}",
            extra.map(|r| r.headers)
        );
    }
    let mut per_kind = [0usize; KINDS.len()];
    for (at, (kind, value)) in &written {
        let (stage, routed_value) = routed
            .get(at)
            .unwrap_or_else(|| panic!("poison at {at:?} ({}) not dead-lettered", KINDS[*kind]));
        assert_eq!(routed_value, value, "{at:?} changed on its way");
        let expected_stage = if *kind == 3 { "process" } else { "deserialize" };
        assert_eq!(stage, expected_stage, "{at:?} ({})", KINDS[*kind]);
        per_kind[*kind] += 1;
    }
    assert_eq!(per_kind, [POISON_PER_KIND; KINDS.len()]);
    reader.close().await.unwrap();

    let exited = pipeline.exited();
    assert!(exited.is_empty(), "{exited:?}");
    for p in pipeline.processes() {
        assert_eq!(p.starts(), 1, "{} was restarted", p.name());
    }
    let routed_set: BTreeSet<_> = routed.keys().collect();
    println!(
        "e2e summary: scenario 4 (poison): {} poison records ({} each of {}) all in ow-processor-dlq byte for byte with provenance headers, {} good records of {PLAYERS} players processed, no stage restarted",
        routed_set.len(),
        POISON_PER_KIND,
        KINDS.join(", "),
        PLAYERS * 2
    );
}
