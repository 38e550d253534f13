//! Looking up a player the stack has never seen: the request written, the waiting page, the
//! pipeline's answer piped into the web's stores, and the page (and its status endpoint)
//! turning into stats, or into a clear message, or giving up after the time-out.

#![allow(clippy::unwrap_used)]

mod common;

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use ow_domain::{FetchOutcome, RequestOrigin};
use ow_web::WebSettings;

fn settings() -> WebSettings {
    WebSettings::default().with_lookup_timeout(Duration::from_secs(60))
}

#[tokio::test]
async fn unknown_player_is_requested_waited_for_and_shown() {
    let m = Materialized::new("search-flow-ok");
    let clock = TestClock::at(T2 - 30_000);
    let (app, captured, _) = app_with(m.repository(), settings(), &clock);

    // The search box sends the browser to the player page; nothing is asked yet.
    let search = get(&app, "/search?q=TeKrop%232217").await;
    assert_eq!(search.status, 303);
    assert_eq!(location(&search), "/players/TeKrop-2217");
    assert!(captured.all().is_empty());

    // The page of a player never seen asks the pipeline, once, and waits.
    let page = get(&app, "/players/TeKrop-2217").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Looking up TeKrop#2217"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>")
    );
    assert!(page.body.contains("data-poll=\"true\""));
    assert!(
        page.body
            .contains("data-status-url=\"/api/players/TeKrop-2217/status\"")
    );
    assert!(page.body.contains("stops waiting at"));
    let requests = captured.all();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].player_id, TEKROP);
    assert_eq!(requests[0].origin, RequestOrigin::Search);
    assert_eq!(requests[0].requested_at, T2 - 30_000);
    assert!(requests[0].request_id.starts_with("web-"));

    clock.advance(2_000);
    let again = get(&app, "/players/TeKrop-2217").await;
    assert!(again.body.contains("Looking up"));
    assert_eq!(
        captured.all().len(),
        1,
        "a look-up in flight is not asked twice"
    );

    let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
    assert_eq!(status["state"], "pending");
    assert_eq!(status["polling"], true);
    let pending_version = status["version"].as_str().unwrap().to_owned();
    assert!(
        page.body
            .contains(&format!("data-status-version=\"{pending_version}\""))
    );

    // The profile arrives first: the stats are still on their way.
    let outputs = tekrop_outputs();
    m.pipe(
        &Outputs {
            profiles: outputs.profiles.clone(),
            ..Outputs::default()
        },
        T2,
    );
    let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
    assert_eq!(status["state"], "pending");

    // Then the rest: the status says ready, with a new version the script reloads on.
    m.pipe(
        &Outputs {
            profiles: vec![],
            ..outputs
        },
        T2,
    );
    clock.set(T2 + 5_000);
    let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
    assert_eq!(status["state"], "ready");
    assert_eq!(status["polling"], false);
    assert_eq!(status["has_stats"], true);
    assert_ne!(status["version"].as_str().unwrap(), pending_version);

    let page = get(&app, "/players/TeKrop-2217").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-poll=\"false\""));
    assert!(!page.body.contains("http-equiv=\"refresh\""));
    assert!(page.body.contains("data-category=\"game\""));
    assert!(page.body.contains("<table class=\"heroes\""));
    assert!(page.body.contains("id=\"chart-games\""));

    let api = get(&app, "/api/players/TeKrop-2217").await.json();
    assert_eq!(api["status"]["state"], "ready");
    assert!(api["categories"]["platforms"]["pc"].is_object());
}

#[tokio::test]
async fn answers_without_stats_say_what_happened() {
    for (outcome, expect) in [
        (
            FetchOutcome::NotFound,
            vec![
                "No player Ghost#1234",
                "case-sensitive",
                "OverFast will check again at",
            ],
        ),
        (
            FetchOutcome::Private,
            vec![
                "career profile is private",
                "Options → Social → Career Profile Visibility",
                "Public",
            ],
        ),
        (
            FetchOutcome::RateLimited,
            vec!["OverFast is rate-limiting requests", "Next try at"],
        ),
        (
            FetchOutcome::UpstreamError,
            vec![
                "OverFast or Blizzard is having trouble",
                "(HTTP 503)",
                "Next try at",
            ],
        ),
    ] {
        let m = Materialized::new(&format!("search-flow-{outcome:?}"));
        let clock = TestClock::at(T1);
        let (app, captured, _) = app_with(m.repository(), settings(), &clock);
        let page = get(&app, "/players/Ghost-1234").await;
        assert!(page.body.contains("Looking up Ghost#1234"));
        assert_eq!(captured.all().len(), 1);

        let mut profile = bare_profile("Ghost-1234", outcome, T1 + 3_000);
        profile.status.message = Some("<b>upstream</b> said no".into());
        m.pipe(&ow_outputs(profile), T1 + 3_000);
        clock.advance(5_000);
        let status = get(&app, "/api/players/Ghost-1234/status").await.json();
        assert_eq!(status["polling"], false, "{outcome:?}");
        assert_eq!(status["retry_at"], T1 + 3_000 + 600_000);
        let page = get(&app, "/players/Ghost-1234").await;
        assert_eq!(page.status, 200);
        for text in expect {
            assert!(
                page.body.contains(text),
                "{outcome:?}: {text} missing in {}",
                page.body
            );
        }
        assert!(
            page.body.contains("in 9 minutes"),
            "{outcome:?}: retry time, relative"
        );
        assert!(
            !page.body.contains("<b>upstream</b>"),
            "upstream text is escaped"
        );
        assert!(!page.body.contains("http-equiv=\"refresh\""));
    }
}

fn ow_outputs(profile: ow_domain::PlayerProfile) -> Outputs {
    Outputs {
        profiles: vec![profile],
        ..Outputs::default()
    }
}

#[tokio::test]
async fn a_look_up_never_spins_forever() {
    let m = Materialized::new("search-flow-timeout");
    let clock = TestClock::at(T1);
    let (app, captured, _) = app_with(m.repository(), settings(), &clock);
    get(&app, "/players/Slowpoke-1234").await;
    clock.advance(61_000);
    let status = get(&app, "/api/players/Slowpoke-1234/status").await.json();
    assert_eq!(status["state"], "timed_out");
    assert_eq!(status["polling"], false);
    let page = get(&app, "/players/Slowpoke-1234").await;
    assert!(page.body.contains("No answer yet for Slowpoke#1234"));
    assert!(page.body.contains("within 1m 00s"));
    assert!(page.body.contains("ow.player-requests"));
    assert!(page.body.contains("Ask again"));
    assert!(!page.body.contains("http-equiv=\"refresh\""));
    assert_eq!(
        captured.all().len(),
        1,
        "a timed-out look-up is not asked again by itself"
    );

    // "Ask again" asks again, and the answer still shows up when it comes.
    let again = post(&app, "/players/Slowpoke-1234/refresh").await;
    assert_eq!(again.status, 303);
    assert_eq!(captured.all().len(), 2);
    assert_eq!(captured.all()[1].origin, RequestOrigin::Search);
    assert!(
        get(&app, "/players/Slowpoke-1234")
            .await
            .body
            .contains("Looking up")
    );
}

#[tokio::test]
async fn refresh_now_is_followed_and_rate_limited() {
    let m = Materialized::new("search-flow-refresh");
    let outputs = tekrop_outputs();
    m.pipe(&outputs, T2);
    let clock = TestClock::at(T2 + HOUR);
    let (app, captured, _) = app_with(m.repository(), settings(), &clock);

    let refresh = post(&app, "/players/TeKrop-2217/refresh").await;
    assert_eq!(refresh.status, 303);
    assert_eq!(location(&refresh), "/players/TeKrop-2217");
    let sent = captured.all();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].origin, RequestOrigin::Refresh);

    let page = get(&app, "/players/TeKrop-2217").await;
    assert!(page.body.contains("data-banner=\"refreshing\""));
    assert!(
        page.body.contains("data-category=\"game\""),
        "stats stay visible while refreshing"
    );
    assert!(page.body.contains("data-poll=\"true\""));
    // While it is in flight, pressing again asks nothing more and is not an error.
    assert_eq!(post(&app, "/players/TeKrop-2217/refresh").await.status, 303);
    assert_eq!(captured.all().len(), 1);

    // The new fetch answers it.
    let mut newer = outputs.profiles.last().unwrap().clone();
    newer.status.fetched_at = T2 + HOUR + 4_000;
    m.pipe(&ow_outputs(newer), T2 + HOUR + 4_000);
    let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
    assert_eq!(status["polling"], false);
    let page = get(&app, "/players/TeKrop-2217").await;
    assert!(!page.body.contains("data-banner=\"refreshing\""));

    // Refreshing the same player again at once is refused with a 429 and a retry time.
    let refused = post(&app, "/players/TeKrop-2217/refresh").await;
    assert_eq!(refused.status, 429);
    assert!(
        refused
            .body
            .contains("This player was refreshed moments ago")
    );
    assert!(!refused.header("retry-after").is_empty());
    assert_eq!(
        captured
            .all()
            .iter()
            .filter(|r| r.origin == RequestOrigin::Refresh)
            .count(),
        1
    );
}

#[tokio::test]
async fn new_player_requests_are_limited_per_client() {
    let m = Materialized::new("search-flow-client-limit");
    let settings = settings().with_client_requests_per_minute(NonZeroU32::new(2).unwrap());
    let (app, captured, _) = app_with(m.repository(), settings, &TestClock::at(T1));
    let alice = [10, 0, 0, 1];
    for player in ["One-1111", "Two-2222"] {
        let page = call(&app, request("GET", &format!("/players/{player}"), alice)).await;
        assert_eq!(page.status, 200);
    }
    let third = call(&app, request("GET", "/players/Three-3333", alice)).await;
    assert_eq!(third.status, 429);
    assert!(third.body.contains("Too many look-ups from your address"));
    assert!(third.body.contains("Not looked up yet"));
    assert_eq!(captured.all().len(), 2);
    // Another address has its own budget.
    let bob = call(&app, request("GET", "/players/Three-3333", [10, 0, 0, 2])).await;
    assert_eq!(bob.status, 200);
    assert_eq!(captured.all().len(), 3);
}

#[tokio::test]
async fn a_pipeline_that_cannot_be_reached_is_said_plainly() {
    let m = Materialized::new("search-flow-down");
    let (app, captured, _) = app_with(m.repository(), settings(), &TestClock::at(T1));
    captured.fail.store(true, Ordering::SeqCst);
    let page = get(&app, "/players/TeKrop-2217").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("could not be handed to the pipeline"));
    assert!(
        !page.body.contains("kafka-1.internal"),
        "internals stay in the logs"
    );
    assert!(page.body.contains("Not looked up yet"));
}
