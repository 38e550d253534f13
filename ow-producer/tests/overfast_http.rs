//! The OverFast client against the loopback fixture server: every outcome, retries, the
//! not-found memory and the rate limit. Time is tokio's paused clock, so waits are virtual.

mod common;

use std::time::Duration;

use common::{client, id, sample};
use ow_domain::FetchOutcome;
use ow_producer::fixture_server::{
    Fault, FixtureServer, INTERNAL_ERROR_BODY, NotFoundShape, TOO_MANY_REQUESTS_BODY,
};
use ow_producer::overfast::{CacheInfo, FetchError};
use tokio::time::Instant;

async fn samples_server() -> FixtureServer {
    FixtureServer::with_samples()
        .await
        .expect("the fixture server starts")
}

#[tokio::test(start_paused = true)]
async fn public_profile_is_ok_and_kept_byte_for_byte() {
    let server = samples_server().await;
    let client = client(&server, |_| {});
    let fetch = client.fetch(&id("TeKrop#2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.attempts, 1);
    assert_eq!(fetch.error, None);
    assert_eq!(fetch.next_attempt_at, None);
    assert_eq!(
        fetch.body.as_deref(),
        Some(sample("TeKrop-2217.json").as_str())
    );
    assert_eq!(
        fetch.cache,
        CacheInfo {
            max_age_secs: Some(600),
            age_secs: None
        }
    );
    assert_eq!(fetch.fresh_until(), Some(fetch.fetched_at + 600_000));
    assert_eq!(
        fetch.request_url,
        format!("{}/players/TeKrop-2217", server.url())
    );

    let fetched_at = fetch.fetched_at;
    let raw = fetch.into_raw("request-7");
    assert_eq!(raw.request_id, "request-7");
    assert_eq!(raw.player_id, "TeKrop-2217");
    assert_eq!(raw.fetched_at, fetched_at);
    assert_eq!(raw.http_status, Some(200));
    assert_eq!(raw.outcome, FetchOutcome::Ok);
    assert_eq!(raw.cache_max_age_secs, Some(600));
    assert_eq!(raw.cache_age_secs, None);
    assert_eq!(raw.error, None);
    assert_eq!(raw.attempts, 1);
    assert_eq!(
        ow_producer::overfast::fresh_until(&raw),
        Some(fetched_at + 600_000)
    );
    assert_eq!(server.hits("TeKrop-2217"), 1);
}

#[tokio::test(start_paused = true)]
async fn cache_headers_are_recorded() {
    let server = samples_server().await;
    server.set_cache_headers(Some(600), Some(120));
    let fetch = client(&server, |_| {}).fetch(&id("JohnV1-1190")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(
        fetch.cache,
        CacheInfo {
            max_age_secs: Some(600),
            age_secs: Some(120)
        }
    );
    assert_eq!(fetch.fresh_until(), Some(fetch.fetched_at + 480_000));
    let raw = fetch.into_raw("r");
    assert_eq!(raw.cache_age_secs, Some(120));
    assert_eq!(
        ow_producer::overfast::earliest_refetch(&raw),
        Some(raw.fetched_at + 480_000)
    );
}

#[tokio::test(start_paused = true)]
async fn private_profile() {
    let server = samples_server().await;
    let fetch = client(&server, |_| {}).fetch(&id("Player-137712")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Private);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.attempts, 1);
    assert_eq!(fetch.error, None);
    assert_eq!(
        fetch.body.as_deref(),
        Some(sample("Player-137712.json").as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn unicode_player_goes_percent_encoded_and_back() {
    let server = FixtureServer::start().await.expect("server");
    server.add_profile("Jöhn-1234", r#"{"summary":{},"stats":{}}"#);
    let client = client(&server, |_| {});
    let fetch = client.fetch(&id("Jöhn#1234")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(
        fetch.request_url,
        format!("{}/players/J%C3%B6hn-1234", server.url())
    );
    assert_eq!(server.hits("Jöhn-1234"), 1);
}

#[tokio::test(start_paused = true)]
async fn all_three_not_found_shapes() {
    let server = FixtureServer::start().await.expect("server");
    let client = client(&server, |_| {});
    let cases = [
        (
            "Nested-1",
            NotFoundShape::Nested {
                retry_after_secs: 1800,
                check_count: 2,
            },
            1_800_000,
        ),
        (
            "Flat-1",
            NotFoundShape::Flat {
                retry_after_secs: 540,
                check_count: 1,
            },
            540_000,
        ),
        // No `retry_after` / `next_check_at`: the configured 600 s.
        ("Plain-1", NotFoundShape::Plain, 600_000),
    ];
    for (player, shape, wait_ms) in cases {
        server.inject(player, [Fault::NotFound(shape.clone())]);
        let fetch = client.fetch(&id(player)).await;
        assert_eq!(fetch.outcome, FetchOutcome::NotFound, "{player}");
        assert_eq!(fetch.http_status, Some(404), "{player}");
        assert_eq!(fetch.attempts, 1, "{player}");
        assert_eq!(
            fetch.error,
            Some(FetchError::NotFound {
                message: Some("Player not found".into())
            }),
            "{player}"
        );
        assert_eq!(
            fetch.next_attempt_at,
            Some(fetch.fetched_at + wait_ms),
            "{player}"
        );
        let body = fetch.body.expect("a 404 body");
        assert!(body.contains("Player not found"), "{player}: {body}");
        if shape == NotFoundShape::Plain {
            assert_eq!(body, r#"{"error":"Player not found"}"#);
        }
        assert_eq!(server.hits(player), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn not_found_player_is_not_asked_again_before_next_check() {
    let server = samples_server().await;
    let client = client(&server, |_| {});
    let ghost = id("Ghost#1234");

    // The server plays OverFast: first check → nested 404, retry_after 600, check_count 1.
    let first = client.fetch(&ghost).await;
    assert_eq!(first.outcome, FetchOutcome::NotFound);
    assert_eq!(first.attempts, 1);
    assert!(
        first
            .body
            .as_deref()
            .is_some_and(|b| b.contains(r#""check_count":1"#))
    );
    let until = first.fetched_at + 600_000;
    assert_eq!(first.next_attempt_at, Some(until));
    assert_eq!(client.not_before(&ghost), Some(until));
    assert_eq!(server.hits("Ghost-1234"), 1);

    // Asked again at once, and just before the time: answered from memory.
    for wait in [Duration::ZERO, Duration::from_secs(599)] {
        tokio::time::advance(wait).await;
        let again = client.fetch(&ghost).await;
        assert_eq!(again.outcome, FetchOutcome::NotFound);
        assert_eq!(again.attempts, 0);
        assert_eq!(again.http_status, None);
        assert_eq!(again.body, None);
        assert_eq!(again.error, Some(FetchError::NotBefore { until_ms: until }));
        assert_eq!(again.next_attempt_at, Some(until));
        assert!(
            again
                .into_raw("r")
                .error
                .is_some_and(|e| e.contains("not asking overfast again before"))
        );
        assert_eq!(server.hits("Ghost-1234"), 1);
    }

    // Past the time: asked again; OverFast's second check says 1800 s.
    tokio::time::advance(Duration::from_secs(2)).await;
    let later = client.fetch(&ghost).await;
    assert_eq!(later.outcome, FetchOutcome::NotFound);
    assert_eq!(later.attempts, 1);
    assert_eq!(server.hits("Ghost-1234"), 2);
    assert!(
        later
            .body
            .as_deref()
            .is_some_and(|b| b.contains(r#""check_count":2"#))
    );
    assert_eq!(later.next_attempt_at, Some(later.fetched_at + 1_800_000));

    // Other players are not held back.
    assert_eq!(
        client.fetch(&id("TeKrop-2217")).await.outcome,
        FetchOutcome::Ok
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_429_is_honoured() {
    let server = samples_server().await;
    server.inject(
        "TeKrop-2217",
        [Fault::TooManyRequests {
            retry_after_secs: 3,
        }],
    );
    let client = client(&server, |_| {});
    let start = Instant::now();
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    let elapsed = start.elapsed();
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.attempts, 2);
    assert_eq!(server.hits("TeKrop-2217"), 2);
    assert!(elapsed >= Duration::from_secs(3), "waited {elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "waited {elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_503_is_honoured() {
    let server = samples_server().await;
    server.inject(
        "JohnV1-1190",
        [Fault::BlizzardRateLimited {
            retry_after_secs: 5,
        }],
    );
    let client = client(&server, |_| {});
    let start = Instant::now();
    let fetch = client.fetch(&id("JohnV1-1190")).await;
    let elapsed = start.elapsed();
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.attempts, 2);
    assert!(elapsed >= Duration::from_secs(5), "waited {elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "waited {elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn rate_limited_when_the_attempts_run_out() {
    let server = samples_server().await;
    server.inject(
        "TeKrop-2217",
        vec![
            Fault::TooManyRequests {
                retry_after_secs: 2
            };
            3
        ],
    );
    let client = client(&server, |c| c.max_attempts = 3);
    let start = Instant::now();
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::RateLimited);
    assert_eq!(fetch.attempts, 3);
    assert_eq!(fetch.http_status, Some(429));
    assert_eq!(fetch.body.as_deref(), Some(TOO_MANY_REQUESTS_BODY));
    assert_eq!(fetch.next_attempt_at, Some(fetch.fetched_at + 2_000));
    assert_eq!(
        fetch.error,
        Some(FetchError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
            message: Some(
                "API rate limit reached, please wait for 1 second before retrying".into()
            ),
        })
    );
    // Two waits of 2 s between three attempts.
    assert!(start.elapsed() >= Duration::from_secs(4));
    assert_eq!(server.hits("TeKrop-2217"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_long_retry_after_ends_the_fetch_and_holds_every_fetch_back() {
    let server = samples_server().await;
    server.inject(
        "TeKrop-2217",
        [Fault::BlizzardRateLimited {
            retry_after_secs: 3600,
        }],
    );
    let client = client(&server, |_| {});
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::RateLimited);
    assert_eq!(fetch.attempts, 1);
    assert_eq!(fetch.http_status, Some(503));
    assert_eq!(fetch.next_attempt_at, Some(fetch.fetched_at + 3_600_000));

    // Another player: not asked at all while OverFast's pause lasts.
    let other = client.fetch(&id("JohnV1-1190")).await;
    assert_eq!(other.outcome, FetchOutcome::RateLimited);
    assert_eq!(other.attempts, 0);
    assert!(matches!(other.error, Some(FetchError::Paused { .. })));
    assert_eq!(server.hits("JohnV1-1190"), 0);

    // After it, asked normally.
    tokio::time::advance(Duration::from_secs(3601)).await;
    let after = client.fetch(&id("JohnV1-1190")).await;
    assert_eq!(after.outcome, FetchOutcome::Ok);
    assert_eq!(server.hits("JohnV1-1190"), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_then_succeed() {
    let server = samples_server().await;
    server.inject("TeKrop-2217", [Fault::InternalError, Fault::GatewayTimeout]);
    let client = client(&server, |_| {});
    let start = Instant::now();
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.attempts, 3);
    assert_eq!(fetch.error, None);
    assert_eq!(server.hits("TeKrop-2217"), 3);
    // Backoff of at least 250 ms (half of 500 ms) then 500 ms (half of 1 s).
    assert!(start.elapsed() >= Duration::from_millis(750));
}

#[tokio::test(start_paused = true)]
async fn server_errors_give_up_after_the_attempt_budget() {
    let server = samples_server().await;
    server.inject("TeKrop-2217", vec![Fault::InternalError; 4]);
    let client = client(&server, |c| c.max_attempts = 4);
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 4);
    assert_eq!(fetch.http_status, Some(500));
    assert_eq!(fetch.body.as_deref(), Some(INTERNAL_ERROR_BODY));
    assert_eq!(fetch.next_attempt_at, None);
    assert!(matches!(
        fetch.error,
        Some(FetchError::Status { status: 500, message: Some(ref m) }) if m.starts_with("An internal server error")
    ));
    assert_eq!(server.hits("TeKrop-2217"), 4);
}

#[tokio::test(start_paused = true)]
async fn a_503_without_retry_after_is_an_upstream_error() {
    let server = samples_server().await;
    server.inject("TeKrop-2217", vec![Fault::ServiceUnavailable; 2]);
    let fetch = client(&server, |c| c.max_attempts = 2)
        .fetch(&id("TeKrop-2217"))
        .await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 2);
    assert_eq!(fetch.http_status, Some(503));
    assert_eq!(
        fetch.error,
        Some(FetchError::Status {
            status: 503,
            message: None
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_times_out() {
    let server = samples_server().await;
    server.inject(
        "TeKrop-2217",
        vec![Fault::Delay(Duration::from_secs(30)); 2],
    );
    let client = client(&server, |c| {
        c.timeout = Duration::from_secs(10);
        c.max_attempts = 2;
    });
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 2);
    assert_eq!(fetch.http_status, None);
    assert_eq!(fetch.body, None);
    assert_eq!(
        fetch.error,
        Some(FetchError::Timeout {
            after: Duration::from_secs(10)
        })
    );

    // One slow answer, then a normal one.
    server.inject("JohnV1-1190", [Fault::Delay(Duration::from_secs(30))]);
    let fetch = client.fetch(&id("JohnV1-1190")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_times_out_and_keeps_the_status() {
    let server = samples_server().await;
    server.inject("TeKrop-2217", [Fault::StallBody(Duration::from_secs(60))]);
    let fetch = client(&server, |c| c.max_attempts = 1)
        .fetch(&id("TeKrop-2217"))
        .await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 1);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.body, None);
    assert!(matches!(fetch.error, Some(FetchError::Timeout { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_truncated_body_is_an_upstream_error_then_retried() {
    let server = samples_server().await;
    let full = sample("TeKrop-2217.json");
    server.inject("TeKrop-2217", [Fault::TruncatedJson]);
    let fetch = client(&server, |c| c.max_attempts = 1)
        .fetch(&id("TeKrop-2217"))
        .await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.attempts, 1);
    assert!(matches!(fetch.error, Some(FetchError::InvalidJson { .. })));
    assert_eq!(fetch.body.as_deref(), Some(&full[..full.len() / 2]));

    server.inject("TeKrop-2217", [Fault::TruncatedJson]);
    let fetch = client(&server, |c| c.max_attempts = 2)
        .fetch(&id("TeKrop-2217"))
        .await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_is_cut_off() {
    let server = samples_server().await;
    let limit = 64 * 1024;
    for chunked in [false, true] {
        server.inject(
            "TeKrop-2217",
            [Fault::OversizedBody {
                bytes: 200 * 1024,
                chunked,
            }],
        );
        let fetch = client(&server, |c| {
            c.max_body_bytes = limit;
            c.max_attempts = 1;
        })
        .fetch(&id("TeKrop-2217"))
        .await;
        assert_eq!(
            fetch.outcome,
            FetchOutcome::UpstreamError,
            "chunked: {chunked}"
        );
        assert_eq!(fetch.http_status, Some(200));
        assert_eq!(fetch.body, None);
        assert_eq!(fetch.error, Some(FetchError::BodyTooLarge { limit }));
    }
    // The real profile (856 KiB) is over a 64 KiB limit too, and fits the default 8 MiB.
    let fetch = client(&server, |c| {
        c.max_body_bytes = limit;
        c.max_attempts = 1;
    })
    .fetch(&id("TeKrop-2217"))
    .await;
    assert_eq!(fetch.error, Some(FetchError::BodyTooLarge { limit }));
    let fetch = client(&server, |_| {}).fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_is_not_utf8_is_an_upstream_error() {
    let server = samples_server().await;
    server.inject("TeKrop-2217", [Fault::NotUtf8]);
    let fetch = client(&server, |c| c.max_attempts = 1)
        .fetch(&id("TeKrop-2217"))
        .await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.body, None);
    assert!(matches!(fetch.error, Some(FetchError::BodyNotUtf8 { .. })));
}

#[tokio::test(start_paused = true)]
async fn an_unexpected_client_error_is_not_retried() {
    let server = samples_server().await;
    server.inject(
        "TeKrop-2217",
        [Fault::Raw {
            status: 422,
            headers: vec![],
            body: br#"{"error":"bad"}"#.to_vec(),
        }],
    );
    let fetch = client(&server, |_| {}).fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 1);
    assert_eq!(
        fetch.error,
        Some(FetchError::Status {
            status: 422,
            message: Some("bad".into())
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_an_upstream_error() {
    // Bind a port, then free it: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut config = ow_producer::overfast::ClientConfig::new(
        ow_producer::overfast::Source::parse(&format!("http://{addr}")).expect("url"),
    );
    config.max_attempts = 2;
    let client = ow_producer::overfast::OverfastClient::new(config).expect("client");
    let fetch = client.fetch(&id("TeKrop-2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::UpstreamError);
    assert_eq!(fetch.attempts, 2);
    assert_eq!(fetch.http_status, None);
    assert!(matches!(fetch.error, Some(FetchError::Connection { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_crowd_of_requests_never_exceeds_the_rate() {
    let server = FixtureServer::start().await.expect("server");
    let players: Vec<String> = (0..50).map(|i| format!("Crowd{i}-{}", 1000 + i)).collect();
    for player in &players {
        server.add_profile(player, r#"{"summary":{"username":"Crowd"},"stats":{}}"#);
    }
    // The defaults: 2 requests/s, burst 5, 4 at once.
    let client = client(&server, |_| {});
    let (rate, burst) = (client.config().rate_per_second, client.config().burst);
    assert_eq!((rate, burst), (2.0, 5));

    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..4 {
        for player in &players {
            let client = client.clone();
            let player = id(player);
            tasks.spawn(async move { (round, client.fetch(&player).await) });
        }
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (_, fetch) = done.expect("no fetch panics");
        outcomes.push((fetch.outcome, fetch.attempts));
    }
    assert_eq!(outcomes.len(), 200);
    assert!(
        outcomes.iter().all(|o| *o == (FetchOutcome::Ok, 1)),
        "{outcomes:?}"
    );
    assert_eq!(server.total_hits(), 200);
    for player in &players {
        assert_eq!(server.hits(player), 4);
    }
    let most = server.max_in_window(Duration::from_secs(1));
    assert!(
        most <= rate as usize + burst as usize,
        "{most} requests arrived within one second"
    );
    // 5 at once, then one every 500 ms: the last of 200 leaves no sooner than 97.5 s.
    assert!(start.elapsed() >= Duration::from_millis(97_500));
}

/// In real time: a held answer would otherwise meet the client's timeout on the paused clock.
#[tokio::test]
async fn a_held_player_stays_in_flight_until_released() {
    let server = samples_server().await;
    let hold = server.hold("TeKrop-2217");
    let client = client(&server, |_| {});
    let fetch = tokio::spawn(async move { client.fetch(&id("TeKrop-2217")).await });
    while server.hits("TeKrop-2217") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!fetch.is_finished());
    hold.release();
    let fetch = fetch.await.expect("the fetch does not panic");
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(server.hits("TeKrop-2217"), 1);
}

/// In real time (held answers): however many fetches wait, at most `concurrency` requests are
/// at OverFast at once; and each names the client with the project's `User-Agent`.
#[tokio::test]
async fn concurrency_is_capped_and_the_client_names_itself() {
    let server = FixtureServer::start().await.expect("server");
    let players: Vec<String> = (0..12).map(|i| format!("Queue{i}-{}", 2000 + i)).collect();
    let holds: Vec<_> = players
        .iter()
        .map(|p| {
            server.add_profile(p, r#"{"summary":{"username":"Queue"},"stats":{}}"#);
            server.hold(p)
        })
        .collect();
    // No rate limit to speak of: only the concurrency cap holds fetches back.
    let client = client(&server, |c| {
        c.rate_per_second = 1000.0;
        c.burst = 100;
        c.concurrency = 3;
    });
    let mut tasks = tokio::task::JoinSet::new();
    for player in &players {
        let client = client.clone();
        let player = id(player);
        tasks.spawn(async move { client.fetch(&player).await });
    }
    // Three arrive and wait; the others queue in the client.
    while server.in_flight() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.in_flight(), 3);
    assert_eq!(server.total_hits(), 3);
    drop(holds);
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.expect("no fetch panics").outcome, FetchOutcome::Ok);
    }
    assert_eq!(server.total_hits(), 12);
    assert_eq!(server.max_in_flight(), 3);
    let agents: Vec<Option<String>> = server
        .arrivals()
        .into_iter()
        .map(|a| a.user_agent)
        .collect();
    assert!(
        agents
            .iter()
            .all(|a| a.as_deref() == Some(ow_producer::overfast::USER_AGENT)),
        "{agents:?}"
    );
    assert!(ow_producer::overfast::USER_AGENT.starts_with("ow-stream/"));
}
