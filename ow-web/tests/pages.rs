//! Pages through `oneshot`: status codes, key content, escaping, security headers, limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use ow_domain::{Endorsement, FetchOutcome, PlayerProfile};
use ow_web::WebSettings;

fn tekrop_app() -> (axum::Router, Arc<Captured>) {
    let repository = Arc::new(memory_repository(&tekrop_outputs()));
    let (app, captured, _) = app_with(
        repository,
        WebSettings::default(),
        &TestClock::at(T2 + HOUR),
    );
    (app, captured)
}

#[tokio::test]
async fn home_page_lists_tracked_and_viewed_players() {
    let (app, _) = tekrop_app();
    let home = get(&app, "/").await;
    assert_eq!(home.status, 200);
    assert!(home.header("content-type").starts_with("text/html"));
    assert!(
        home.body
            .contains("<form class=\"search\" action=\"/search\" method=\"get\"")
    );
    assert!(home.body.contains("Tracked players"));
    assert!(
        home.body.contains("href=\"/players/TeKrop-2217\""),
        "tracked player linked"
    );
    assert!(home.body.contains("fetched "));
    assert!(home.body.contains("Nobody yet"), "nothing viewed yet");

    assert_eq!(get(&app, "/players/TeKrop-2217").await.status, 200);
    let home = get(&app, "/").await;
    assert!(home.body.contains("Recently viewed"));
    assert!(!home.body.contains("Nobody yet"));
    assert!(home.body.contains(">TeKrop#2217</a>"));
}

#[tokio::test]
async fn player_page_shows_header_cards_deltas_heroes_and_history() {
    let (app, _) = tekrop_app();
    let page = get(&app, "/players/TeKrop-2217?platform=pc&mode=competitive").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    // Header.
    assert!(body.contains("<span class=\"name\">TeKrop</span>"));
    assert!(body.contains("#2217"));
    assert!(body.contains("Bytefixer"), "title");
    assert!(body.contains("Endorsement level 2"));
    assert!(body.contains("src=\"https://d15f34w2p8l1cc.cloudfront.net/overwatch/6e991c97"));
    assert!(body.contains("Updated <time"));
    assert!(body.contains("1 hour ago"));
    assert!(body.contains("action=\"/players/TeKrop-2217/refresh\""));
    // Switches: both modes of PC have data; no console.
    assert!(body.contains(">Quick Play</a>"));
    assert!(body.contains("class=\"pill active\" aria-current=\"page\""));
    assert!(!body.contains(">Console</a>"));
    assert!(body.contains("<select id=\"hero-select\" name=\"hero\""));
    // One section per category, in reading order.
    let game = body.find("data-category=\"game\"").unwrap();
    let combat = body.find("data-category=\"combat\"").unwrap();
    let best = body.find("data-category=\"best\"").unwrap();
    assert!(game < combat && combat < best);
    // Cards with units and the change since the previous snapshot.
    assert!(body.contains("<article class=\"card\" data-stat=\"games_played\"><div class=\"card-label\">Games Played</div><div class=\"card-value\">8</div><div class=\"card-delta up\""));
    assert!(body.contains(">▲ 3</div>"));
    assert!(body.contains("data-stat=\"time_played\""));
    assert!(body.contains(">1h 46m</div>"), "2807 s + 3600 s played");
    assert!(body.contains(">▲ 1h 00m</div>"));
    assert!(body.contains(
        "<div class=\"card-caption\">per 10 min</div><div class=\"card-value\">10.9</div>"
    ));
    assert!(body.contains(">39.1k</div>"), "34,098 + 5,000 damage");
    // Hero table, most played first, sortable by links.
    assert!(body.contains("<table class=\"heroes\" data-sortable"));
    assert!(body.contains("sort=kda&amp;dir=desc"));
    assert!(body.contains("data-hero=\"reaper\""));
    // History charts from the daily series.
    assert!(body.contains("<figure class=\"chart\" id=\"chart-games\" data-days=\"1\""));
    assert!(body.contains("<figure class=\"chart\" id=\"chart-time\""));
    assert!(body.contains("<figure class=\"chart\" id=\"chart-kda\""));
    assert!(body.contains("Jan 1: 3 games"));
}

#[tokio::test]
async fn hero_picker_and_server_side_sort() {
    let (app, _) = tekrop_app();
    let page = get(
        &app,
        "/players/TeKrop-2217?platform=pc&mode=quickplay&hero=ana",
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<option value=\"ana\" selected>Ana</option>")
    );
    assert!(page.body.contains("<h2>Ana</h2>"));
    assert!(page.body.contains("data-category=\"hero_specific\""));

    let by_name = get(
        &app,
        "/players/TeKrop-2217?platform=pc&mode=quickplay&sort=hero&dir=asc",
    )
    .await;
    let ana = by_name.body.find("data-hero=\"ana\"").unwrap();
    let zenyatta = by_name.body.find("data-hero=\"zenyatta\"").unwrap();
    assert!(ana < zenyatta);
    assert!(by_name.body.contains("aria-sort=\"ascending\""));
    let reversed = get(
        &app,
        "/players/TeKrop-2217?platform=pc&mode=quickplay&sort=hero&dir=desc",
    )
    .await;
    assert!(
        reversed.body.find("data-hero=\"zenyatta\"").unwrap()
            < reversed.body.find("data-hero=\"ana\"").unwrap()
    );
    // By time played (the default), Reinhardt leads TeKrop's quick play.
    let by_time = get(&app, "/players/TeKrop-2217?platform=pc&mode=quickplay").await;
    let first_row = by_time.body.find("<tr data-hero=").unwrap();
    assert!(by_time.body[first_row..].starts_with("<tr data-hero=\"reinhardt\""));
    // Unknown values fall back to what has data.
    let odd = get(
        &app,
        "/players/TeKrop-2217?platform=switch&mode=arcade&hero=%3Cx%3E&sort=%22",
    )
    .await;
    assert_eq!(odd.status, 200);
    assert!(odd.body.contains("<h2>All heroes</h2>"));
}

#[tokio::test]
async fn canonical_addresses_and_search() {
    let (app, captured) = tekrop_app();
    let hash = get(&app, "/players/TeKrop%232217?mode=quickplay").await;
    assert_eq!(hash.status, 308);
    assert_eq!(location(&hash), "/players/TeKrop-2217?mode=quickplay");
    let search = get(&app, "/search?q=TeKrop%232217").await;
    assert_eq!(search.status, 303);
    assert_eq!(location(&search), "/players/TeKrop-2217");
    let unicode = get(&app, "/search?q=J%C3%B6hn-1234").await;
    assert_eq!(location(&unicode), "/players/J%C3%B6hn-1234");
    assert!(
        captured.all().is_empty(),
        "a search alone asks nothing upstream"
    );
}

#[tokio::test]
async fn bad_battletags_get_a_400_with_the_reason_and_nothing_upstream() {
    let (app, captured) = tekrop_app();
    for (uri, reason) in [
        ("/players/..%2F..%2Fetc%231", "contains a slash"),
        ("/search?q=..%2F..%2Fetc%231", "contains a slash"),
        ("/search?q=", "player id is empty"),
        ("/search?q=Name%2312a4", "is not all digits"),
        (
            "/players/%3Cscript%3Ealert(1)%3C%2Fscript%3E-1",
            "contains a slash",
        ),
        ("/players/%3Cscript%3E-1", "is not a letter or a digit"),
        ("/api/players/..%2F..%2Fetc%231", "contains a slash"),
    ] {
        let answer = if uri.starts_with("/api/") {
            post_or_get_api(&app, uri).await
        } else {
            get(&app, uri).await
        };
        assert_eq!(answer.status, 400, "{uri}: {}", answer.body);
        assert!(answer.body.contains(reason), "{uri}: {}", answer.body);
        assert!(!answer.body.contains("<script>alert"), "{uri}");
    }
    let page = get(&app, "/players/%3Cscript%3E-1").await;
    assert!(page.body.contains("&lt;script&gt;"));
    assert!(
        page.body.contains("name=\"q\" value=\"&lt;script&gt;-1\""),
        "typed input offered again"
    );
    assert!(captured.all().is_empty());
}

async fn post_or_get_api(app: &axum::Router, uri: &str) -> Answer {
    let answer = get(app, uri).await;
    assert!(
        answer
            .header("content-type")
            .starts_with("application/json")
    );
    answer
}

#[tokio::test]
async fn hostile_profile_values_are_escaped() {
    let outputs = tekrop_outputs();
    let repository = memory_repository(&outputs);
    let mut profile = outputs.profiles.last().unwrap().clone();
    profile.username = Some("<script>alert(1)</script>".into());
    profile.title = Some("\"><img src=x onerror=alert(2)>".into());
    profile.avatar = Some("javascript:alert(3)".into());
    profile.endorsement = Some(Endorsement {
        level: 3,
        frame: Some("https://evil.test/f.svg\" onload=\"alert(4)".into()),
    });
    repository.set_profile(profile);
    let (app, _, _) = app_with(
        Arc::new(repository),
        WebSettings::default(),
        &TestClock::at(T2),
    );
    for uri in ["/players/TeKrop-2217", "/"] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, 200);
        let body = &page.body;
        assert!(!body.contains("<script>alert"), "{uri}");
        assert!(!body.contains("<img src=x"), "{uri}");
        assert!(!body.contains("javascript:"), "{uri}");
        assert!(!body.contains("onload=\"alert"), "{uri}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{uri}"
        );
    }
    let page = get(&app, "/players/TeKrop-2217").await;
    assert!(
        page.body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
    );
    assert!(
        page.body
            .contains("src=\"https://evil.test/f.svg%22%20onload=%22alert(4)\"")
    );
    // The JSON API is JSON, not HTML.
    let api = get(&app, "/api/players/TeKrop-2217").await;
    assert!(api.header("content-type").starts_with("application/json"));
    assert_eq!(
        api.json()["profile"]["username"],
        "<script>alert(1)</script>"
    );
}

#[tokio::test]
async fn competitive_ranks_with_icons() {
    let summary = fixture_json("derived/Player-1112937-summary.json");
    let (body, _) = tekrop_bodies();
    let mut body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["summary"] = summary;
    let outputs = process(&[raw(
        "Player-1112937",
        FetchOutcome::Ok,
        Some(body.to_string()),
        T1,
    )]);
    let repository = memory_repository(&outputs);
    let (app, _, _) = app_with(
        Arc::new(repository),
        WebSettings::default(),
        &TestClock::at(T1),
    );
    let page = get(&app, "/players/Player-1112937").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<ul class=\"ranks\""));
    assert!(page.body.contains("Platinum 5"));
    assert!(page.body.contains("Platinum 3"));
    assert!(page.body.contains("Rank_PlatinumTier-ccf57375a7.png"));
    assert!(page.body.contains("alt=\"Tank\""));
    assert!(page.body.contains("PC, season 11"));
    assert!(page.body.contains("Nomad"));
}

#[tokio::test]
async fn security_headers_on_every_answer() {
    let (app, _) = tekrop_app();
    for uri in [
        "/",
        "/players/TeKrop-2217",
        "/nowhere",
        "/static/app.css",
        "/players/..%2Fx%231",
        "/api/players/TeKrop-2217",
    ] {
        let answer = get(&app, uri).await;
        assert_eq!(
            answer.header("content-security-policy"),
            "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            "{uri}"
        );
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(answer.header("referrer-policy"), "no-referrer", "{uri}");
        assert_eq!(answer.header("x-frame-options"), "DENY", "{uri}");
    }
    let page = get(&app, "/players/TeKrop-2217").await;
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(!page.body.contains("style="), "no inline style");
    assert!(
        page.body
            .contains("<script src=\"/static/app.js\" defer></script>")
    );
}

#[tokio::test]
async fn static_files_not_found_and_limits() {
    let (app, _) = tekrop_app();
    let css = get(&app, "/static/app.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert!(css.body.contains(".card-delta.up"));
    let js = get(&app, "/static/app.js").await;
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
    assert!(js.body.contains("data-status-url"));
    assert!(
        !js.body.contains("innerHTML"),
        "the script never parses data as HTML"
    );

    let missing = get(&app, "/nowhere").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Not found"));

    let long = format!("/players/TeKrop-2217?hero={}", "a".repeat(3000));
    assert_eq!(get(&app, &long).await.status, 414);
    // The JSON API refuses in JSON (found by the end-to-end hostile-battletag scenario).
    let long_api = get(&app, &format!("/api/players/{}-1234", "A".repeat(3000))).await;
    assert_eq!(long_api.status, 414);
    assert!(
        long_api.json()["error"].as_str().is_some(),
        "{}",
        long_api.body
    );

    let mut big = request("POST", "/players/TeKrop-2217/refresh", [127, 0, 0, 1]);
    *big.body_mut() = axum::body::Body::from(vec![b'x'; 64 * 1024]);
    big.headers_mut()
        .insert("content-length", (64 * 1024).into());
    let answer = call(&app, big).await;
    assert!(
        answer.status == 413 || answer.status == 303,
        "{}",
        answer.status
    );
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let (app, captured) = tekrop_app();
    let mut r = request("POST", "/players/TeKrop-2217/refresh", [127, 0, 0, 1]);
    r.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(call(&app, r).await.status, 403);
    let mut r = request("POST", "/players/TeKrop-2217/refresh", [127, 0, 0, 1]);
    r.headers_mut()
        .insert("origin", "https://evil.test".parse().unwrap());
    r.headers_mut()
        .insert("host", "localhost:8080".parse().unwrap());
    assert_eq!(call(&app, r).await.status, 403);
    assert!(captured.all().is_empty());
    let mut r = request("POST", "/players/TeKrop-2217/refresh", [127, 0, 0, 1]);
    r.headers_mut()
        .insert("origin", "http://localhost:8080".parse().unwrap());
    r.headers_mut()
        .insert("host", "localhost:8080".parse().unwrap());
    assert_eq!(call(&app, r).await.status, 303);
}

#[tokio::test]
async fn health_and_metrics() {
    let (app, _) = tekrop_app();
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    get(&app, "/players/TeKrop-2217").await;
    get(&app, "/players/..%2Fx%231").await;
    let metrics = get(&app, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let samples = openmetrics::parse(&metrics.body);
    let route = ("route", "/players/{id}");
    assert_eq!(
        openmetrics::total(
            &samples,
            "ow_web_http_requests_total",
            &[route, ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        openmetrics::total(
            &samples,
            "ow_web_http_requests_total",
            &[route, ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        openmetrics::total(
            &samples,
            "ow_web_http_request_duration_seconds_count",
            &[route]
        ),
        2.0,
        "{}",
        metrics.body
    );
    assert_eq!(
        openmetrics::total(&samples, "ow_web_lookups_pending", &[]),
        0.0
    );
}

#[tokio::test]
async fn json_api_has_the_page_data() {
    let (app, _) = tekrop_app();
    let api = get(&app, "/api/players/TeKrop-2217").await;
    assert_eq!(api.status, 200);
    let json = api.json();
    assert_eq!(json["player_id"], "TeKrop-2217");
    assert_eq!(json["status"]["state"], "ready");
    assert_eq!(json["profile"]["username"], "TeKrop");
    assert_eq!(
        json["categories"]["platforms"]["pc"]["competitive"]["heroes"]["all-heroes"]["game"]["stats"]
            ["games_played"]["value"],
        8.0
    );
    assert_eq!(
        json["deltas"]["platforms"]["pc"]["competitive"]["all-heroes"]["games_played"],
        3.0
    );
    assert!(json["history"]["platforms"]["pc"]["competitive"].is_object());
    let unknown = get(&app, "/api/players/Nobody-1234").await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json()["status"]["state"], "unknown");
    assert!(unknown.json()["profile"].is_null());
}

#[tokio::test]
async fn a_player_without_stats_but_with_a_profile() {
    let repository = memory_repository(&Outputs::default());
    let mut private: PlayerProfile = bare_profile("Player-137712", FetchOutcome::Private, T1);
    private.username = Some("Player".into());
    repository.set_profile(private);
    let (app, captured, _) = app_with(
        Arc::new(repository),
        WebSettings::default(),
        &TestClock::at(T1 + 60_000),
    );
    let page = get(&app, "/players/Player-137712").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("career profile is private"));
    assert!(
        page.body
            .contains("Options → Social → Career Profile Visibility")
    );
    assert!(
        page.body
            .contains("OverFast sees the change at its next check")
    );
    assert!(
        !page.body.contains("http-equiv=\"refresh\""),
        "nothing to wait for"
    );
    let sent = captured.wait_for(1).await;
    assert_eq!(sent.len(), 1, "a view of a known player keeps it tracked");
    assert_eq!(sent[0].origin, ow_domain::RequestOrigin::View);
    get(&app, "/players/Player-137712").await;
    assert_eq!(
        captured.wait_for(2).await.len(),
        1,
        "one view request per interval"
    );
}

/// A streams app whose stream thread died (a panic in an operator's closure) makes `/healthz`
/// fail and shows in `/metrics`: the dashboard never reports a dead thread as healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_stream_thread_fails_the_health_check() {
    use ow_stream_core::config::{Backend, StreamsConfig};
    use ow_stream_core::runtime::{Streams, StreamsState};
    use ow_stream_core::{StreamsBuilder, Topic};

    let dir = tempfile::tempdir().unwrap();
    let config = StreamsConfig::new("panicky", Backend::local(dir.path().join("log")))
        .with_state_dir(dir.path().join("state"))
        .with_commit_interval(std::time::Duration::from_millis(50));
    let topic: Topic<String, i64> = Topic::json("numbers");
    ow_stream_core::admin::Admin::new(&config)
        .unwrap()
        .create_topics(&[ow_stream_core::admin::TopicSpec::new("numbers", 1)])
        .await
        .unwrap();
    let builder = StreamsBuilder::new();
    builder
        .stream(&topic)
        .peek(|_, v: &i64| assert!(*v < 3, "a number too large: {v}"));
    let mut streams = Streams::new(builder.build().unwrap(), config.clone()).unwrap();
    streams.start().await.unwrap();
    let streams = Arc::new(streams);
    let repository = Arc::new(memory_repository(&tekrop_outputs()));
    let (_, _, state) = app_with(repository, WebSettings::default(), &TestClock::at(T2));
    let app = ow_web::app(state.with_streams(streams.clone()));
    assert_eq!(get(&app, "/healthz").await.status, 200);

    let producer = ow_stream_core::client::Producer::new(&config).unwrap();
    for v in 0..5 {
        producer.send(&topic, &"n".to_string(), &v).await.unwrap();
    }
    for _ in 0..600 {
        if streams.state() == StreamsState::Error {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["streams"]["state"], "error");
    assert_eq!(health.json()["streams"]["failed"], true);
    let metrics = get(&app, "/metrics").await.body;
    let samples = openmetrics::parse(&metrics);
    let app = [("application_id", "panicky")];
    assert_eq!(
        openmetrics::total(&samples, "ow_stream_stream_thread_failures_total", &app),
        1.0
    );
    assert_eq!(
        openmetrics::total(&samples, "ow_stream_stream_threads_alive", &app),
        0.0
    );
    assert!(streams.failure().unwrap().contains("a number too large: 3"));
}
