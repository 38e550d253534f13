//! Requests in, raw events out: every outcome, coalescing of duplicate requests, `view`
//! requests of fresh data, pause and resume, and bad requests in the dead-letter topic. Each
//! test runs on librdkafka's mock cluster and on the library's local log, against the loopback
//! fixture server.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, PATIENCE, samples_server, small_profile, wait_for};
use ow_domain::{FetchOutcome, PlayerRequest, RequestOrigin};
use ow_producer::fixture_server::Fault;
use ow_producer::topics::{dead_letter_headers as dlq, raw_event_headers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_become_raw_events_on_the_mock_cluster() {
    requests_become_raw_events(Env::mock(3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_become_raw_events_on_the_local_log() {
    requests_become_raw_events(Env::local(3).await).await;
}

async fn requests_become_raw_events(env: Env) {
    let server = samples_server().await;
    server.add_profile("Small-1111", small_profile("Small"));
    server.inject("Broken-2222", [Fault::InternalError, Fault::InternalError]);
    server.inject(
        "Busy-3333",
        [
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
        ],
    );
    let state = tempfile::tempdir().unwrap();
    let mut config = env.producer_config(&server, state.path());
    if env.is_mock() {
        // TeKrop-2217's recorded body (877 kB) is then too large for the raw topic.
        config.streams = config
            .streams
            .with_kafka_setting("message.max.bytes", "300000");
    }
    let producer = ow_producer::start(config).await.unwrap();

    let players = [
        "Small-1111",
        "Player-137712",
        "Unknown-1234",
        "Broken-2222",
        "Busy-3333",
        "TeKrop-2217",
    ];
    for player in players {
        env.search(player).await;
    }
    wait_for("six raw events", PATIENCE, || {
        producer.metrics().raw_events_written == 6
    })
    .await;

    let events = env.raw_events().await;
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Broken-2222",
            "Busy-3333",
            "Player-137712",
            "Small-1111",
            "TeKrop-2217",
            "Unknown-1234"
        ]
    );
    for e in &events {
        assert_eq!(e.event.player_id, e.key);
        assert_eq!(e.event.request_id, format!("search-{}", e.key));
        assert_eq!(
            e.header_values(raw_event_headers::REQUEST_ID),
            [e.event.request_id.as_str()]
        );
        assert_eq!(
            e.header_values(raw_event_headers::TRIGGER),
            [raw_event_headers::TRIGGER_REQUEST]
        );
        assert_eq!(
            e.event.request_url,
            format!("{}/players/{}", server.url(), e.key)
        );
    }
    let outcome = |key: &str| &events.iter().find(|e| e.key == key).unwrap().event;
    assert_eq!(outcome("Small-1111").outcome, FetchOutcome::Ok);
    assert_eq!(
        outcome("Small-1111").body.as_deref(),
        Some(small_profile("Small").as_str())
    );
    assert_eq!(outcome("Small-1111").cache_max_age_secs, Some(600));
    assert_eq!(outcome("Player-137712").outcome, FetchOutcome::Private);
    assert_eq!(outcome("Unknown-1234").outcome, FetchOutcome::NotFound);
    assert_eq!(outcome("Unknown-1234").http_status, Some(404));
    assert!(outcome("Unknown-1234").next_attempt_at.is_some());
    assert_eq!(outcome("Broken-2222").outcome, FetchOutcome::UpstreamError);
    assert_eq!(outcome("Broken-2222").attempts, 2);
    assert_eq!(outcome("Busy-3333").outcome, FetchOutcome::RateLimited);
    assert_eq!(outcome("Busy-3333").http_status, Some(429));
    let tekrop = outcome("TeKrop-2217");
    if env.is_mock() {
        // Kept without its body, saying why, rather than stopping the stage.
        assert_eq!(tekrop.outcome, FetchOutcome::UpstreamError);
        assert_eq!(tekrop.body, None);
        assert_eq!(tekrop.http_status, Some(200));
        let error = tekrop.error.as_deref().unwrap();
        assert!(
            error.contains("is larger than topic ow.raw.player-profiles accepts"),
            "{error}"
        );
    } else {
        assert_eq!(tekrop.outcome, FetchOutcome::Ok);
        assert_eq!(
            tekrop.body.as_deref(),
            Some(common::sample("TeKrop-2217.json").as_str())
        );
    }

    // A view of data still in OverFast's cache fetches nothing.
    env.request("Small-1111", "view-1", RequestOrigin::View, 0)
        .await;
    wait_for("the view answered", PATIENCE, || {
        producer.metrics().requests_answered == 7
    })
    .await;
    assert_eq!(producer.metrics().requests_fresh, 1);

    // Paused, nothing is read; resumed, the request is answered.
    producer.pause();
    assert!(producer.is_paused());
    env.request("Small-1111", "again", RequestOrigin::Refresh, 0)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(producer.metrics().requests_consumed, 7);
    assert!(producer.metrics().paused);
    producer.resume();
    wait_for("the refresh answered", PATIENCE, || {
        producer.metrics().raw_events_written == 7
    })
    .await;

    env.wait_all_committed().await;
    let m = producer.metrics();
    assert_eq!(m.requests_consumed, 8);
    assert_eq!(m.requests_answered, 8);
    assert_eq!(m.requests_coalesced, 0);
    assert_eq!(m.dead_letters, 0);
    let tekrop_ok = u64::from(!env.is_mock());
    assert_eq!(m.fetches.ok, 2 + tekrop_ok);
    assert_eq!(m.fetches.private, 1);
    assert_eq!(m.fetches.not_found, 1);
    assert_eq!(m.fetches.rate_limited, 1);
    assert_eq!(m.fetches.upstream_error, 2 - tekrop_ok);
    assert_eq!(m.in_flight, 0);
    assert_eq!(m.pending_requests, 0);
    for (player, hits) in [
        ("Small-1111", 2),
        ("Player-137712", 1),
        ("Unknown-1234", 1),
        ("Broken-2222", 2),
        ("Busy-3333", 2),
        ("TeKrop-2217", 1),
    ] {
        assert_eq!(server.hits(player), hits, "{player}");
    }
    // Every requested player is tracked; the refresh request counts as a view too.
    wait_for("six players tracked", PATIENCE, || {
        producer.tracked_players().len() == 6
    })
    .await;
    producer.close().await.unwrap();
    assert_eq!(env.raw_events().await.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_requests_coalesce_on_the_mock_cluster() {
    duplicate_requests_coalesce(Env::mock(2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_requests_coalesce_on_the_local_log() {
    duplicate_requests_coalesce(Env::local(2).await).await;
}

async fn duplicate_requests_coalesce(env: Env) {
    let server = samples_server().await;
    server.add_profile("Small-1111", small_profile("Small"));
    server.add_profile("Other-4444", small_profile("Other"));
    let state = tempfile::tempdir().unwrap();
    let producer = ow_producer::start(env.producer_config(&server, state.path()))
        .await
        .unwrap();
    let hold = server.hold("Small-1111");

    env.request("Small-1111", "r0", RequestOrigin::Search, 0)
        .await;
    wait_for("the fetch in flight", PATIENCE, || {
        server.hits("Small-1111") == 1
    })
    .await;
    for (i, origin) in [
        RequestOrigin::Search,
        RequestOrigin::Refresh,
        RequestOrigin::View,
        RequestOrigin::Other,
    ]
    .into_iter()
    .enumerate()
    {
        env.request("Small-1111", &format!("r{}", i + 1), origin, 0)
            .await;
    }
    // Another player is not held up by the held one.
    env.search("Other-4444").await;
    wait_for(
        "every request read and the other player answered",
        PATIENCE,
        || {
            let m = producer.metrics();
            m.requests_consumed == 6 && m.raw_events_written == 1
        },
    )
    .await;
    assert_eq!(producer.metrics().requests_coalesced, 4);
    assert_eq!(producer.metrics().pending_requests, 5);
    hold.release();
    wait_for("every request answered", PATIENCE, || {
        producer.metrics().requests_answered == 6
    })
    .await;
    env.wait_all_committed().await;

    assert_eq!(server.hits("Small-1111"), 1);
    assert_eq!(server.hits("Other-4444"), 1);
    let events = env.raw_events().await;
    assert_eq!(events.len(), 2);
    let small = events.iter().find(|e| e.key == "Small-1111").unwrap();
    assert_eq!(small.event.request_id, "r0");
    assert_eq!(small.event.outcome, FetchOutcome::Ok);
    assert_eq!(
        small.header_values(ow_producer::topics::raw_event_headers::REQUEST_ID),
        ["r0", "r1", "r2", "r3", "r4"]
    );
    let m = producer.metrics();
    assert_eq!(m.fetches.total(), 2);
    assert_eq!(m.in_flight, 0);
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_go_to_the_dead_letter_topic_on_the_mock_cluster() {
    bad_requests_go_to_the_dead_letter_topic(Env::mock(1).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_go_to_the_dead_letter_topic_on_the_local_log() {
    bad_requests_go_to_the_dead_letter_topic(Env::local(1).await).await;
}

/// A record the producer cannot answer, and what its dead letter should say.
struct Bad {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    stage: &'static str,
    node: Option<&'static str>,
    error: &'static str,
}

async fn bad_requests_go_to_the_dead_letter_topic(env: Env) {
    let server = samples_server().await;
    server.add_profile("Small-1111", small_profile("Small"));
    server.add_profile("Other-4444", small_profile("Other"));
    let state = tempfile::tempdir().unwrap();
    let producer = ow_producer::start(env.producer_config(&server, state.path()))
        .await
        .unwrap();

    let key = |player: &str| env.topics.requests.serialize_key(&player.into()).unwrap();
    let value = |player: &str| {
        env.topics
            .requests
            .serialize_value(&PlayerRequest {
                request_id: "bad".into(),
                player_id: player.into(),
                requested_at: 0,
                origin: RequestOrigin::Search,
            })
            .unwrap()
    };
    let bad = [
        Bad {
            key: Some(key("Garbage-1111")),
            value: Some(b"not avro".to_vec()),
            stage: "deserialize",
            node: None,
            error: "cannot decode the value",
        },
        Bad {
            key: Some(key("Tomb-1111")),
            value: None,
            stage: "deserialize",
            node: None,
            error: "a tombstone",
        },
        Bad {
            key: Some(b"\x00\x01".to_vec()),
            value: Some(value("Small-1111")),
            stage: "deserialize",
            node: None,
            error: "cannot decode the key",
        },
        Bad {
            key: Some(key("../../etc#1")),
            value: Some(value("../../etc#1")),
            stage: "process",
            node: Some(dlq::VALIDATE_NODE),
            error: "contains a slash",
        },
        Bad {
            key: Some(key("Small-1111")),
            value: Some(value("Other-4444")),
            stage: "process",
            node: Some(dlq::VALIDATE_NODE),
            error: "does not name the request's player Other-4444",
        },
    ];
    let mut offsets = Vec::new();
    for b in &bad {
        offsets.push(
            env.request_bytes(b.key.as_deref(), b.value.as_deref())
                .await,
        );
    }
    env.search("Small-1111").await;
    wait_for("every record handled", PATIENCE, || {
        producer.metrics().requests_answered == 6
    })
    .await;
    env.wait_all_committed().await;

    // Dead letters are written concurrently: put them back in the order of their sources.
    let mut letters = env.dead_letters().await;
    letters.sort_by_key(|l| {
        l.headers
            .last_str(dlq::OFFSET)
            .and_then(|o| o.parse::<i64>().ok())
    });
    assert_eq!(letters.len(), bad.len());
    for (b, (letter, source)) in bad.iter().zip(letters.iter().zip(&offsets)) {
        assert_eq!(letter.key.as_deref(), b.key.as_deref());
        assert_eq!(letter.value.as_deref(), b.value.as_deref());
        assert_eq!(letter.timestamp, 1_700_000_000_000);
        let h = &letter.headers;
        assert_eq!(
            h.last_str("trace"),
            Some("t-1"),
            "the record's own headers are kept"
        );
        assert_eq!(h.last_str(dlq::TOPIC), Some("ow.player-requests"));
        assert_eq!(
            h.last_str(dlq::PARTITION),
            Some(source.partition.to_string().as_str())
        );
        assert_eq!(
            h.last_str(dlq::OFFSET),
            Some(source.offset.to_string().as_str())
        );
        assert_eq!(h.last_str(dlq::TIMESTAMP), Some("1700000000000"));
        assert_eq!(h.last_str(dlq::STAGE), Some(b.stage));
        assert_eq!(h.last_str(dlq::NODE), b.node);
        assert_eq!(h.last_str(dlq::APPLICATION), Some("ow-producer"));
        let text = h.last_str(dlq::ERROR).unwrap();
        assert!(text.contains(b.error), "{text:?} should say {:?}", b.error);
    }
    // Nothing upstream for the bad ones: one raw event, for the good request.
    let events = env.raw_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, "Small-1111");
    assert_eq!(server.hits("Small-1111"), 1);
    assert_eq!(server.hits("Other-4444"), 0);
    assert_eq!(server.total_hits(), 1);
    let m = producer.metrics();
    assert_eq!(m.dead_letters, 5);
    assert_eq!(m.requests_consumed, 6);
    producer.close().await.unwrap();
}

/// `run`, as the binary calls it: answers until the shutdown future resolves, then closes
/// cleanly with everything committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_until_shutdown_on_the_local_log() {
    let env = Env::local(1).await;
    let server = samples_server().await;
    server.add_profile("Small-1111", small_profile("Small"));
    let state = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ow_producer::run(
        env.producer_config(&server, state.path()),
        async {
            let _ = stopped.await;
        },
    ));
    env.search("Small-1111").await;
    common::wait_until("the raw event", PATIENCE, || async {
        env.raw_counts().await.get("Small-1111") == Some(&1)
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(env.all_committed(ow_producer::APPLICATION_ID).await);
    assert_eq!(server.hits("Small-1111"), 1);
}
