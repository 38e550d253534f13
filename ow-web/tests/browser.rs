//! The dashboard in a real browser: headless Chromium (Debian's `chromium` package, driven over
//! the DevTools protocol) on the embedded stack, with OverFast played by a loopback server
//! serving the recorded bodies. A player is searched from the home page; the stats appear by
//! themselves (the page follows its look-up, nobody reloads); then "Refresh now" fetches a second
//! snapshot with three more games (held at OverFast for a while, during which the page waits on
//! one long-poll of its status rather than polling) and the change and the history chart
//! appear. Screenshots are saved under `target/browser-screenshots/` (CI keeps them as
//! artifacts).
//!
//! Needs Chromium: `apt-get install chromium` (`.ci/run` installs it), or set `OW_CHROMIUM` to
//! another Chromium or Chrome binary.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::{Page, ScreenshotParams};
use clap::Parser;
use futures::StreamExt;
use ow_producer::fixture_server::FixtureServer;
use ow_web::embedded::EmbeddedStack;
use ow_web::{WebConfig, serve};
use serde_json::Value;

const PLAYER: &str = "TeKrop-2217";

fn chromium() -> PathBuf {
    let path = std::env::var_os("OW_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "the browser test needs Chromium at {}: apt-get install chromium (or set OW_CHROMIUM)",
        path.display()
    );
    path
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/browser-screenshots"
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until the page's HTML satisfies `check`, polling the live DOM (no reload).
async fn wait_for(page: &Page, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(html) = page.content().await
            && check(&html)
        {
            return html;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Status-endpoint answers the web has counted so far (from `/metrics`).
async fn status_answers(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("ow_web_http_requests_total{")
                && l.contains("route=\"/api/players/{id}/status\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn bump(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    let updated = v["summary"]["last_updated_at"].as_i64().unwrap();
    v["summary"]["last_updated_at"] = Value::from(updated + 3600);
    for category in v["stats"]["pc"]["competitive"]["career_stats"]["all-heroes"]
        .as_array_mut()
        .unwrap()
    {
        if category["category"] != "game" {
            continue;
        }
        for stat in category["stats"].as_array_mut().unwrap() {
            let add = match stat["key"].as_str().unwrap() {
                "games_played" => 3,
                "games_won" => 2,
                "games_lost" => 1,
                "time_played" => 3600,
                _ => 0,
            };
            stat["value"] = Value::from(stat["value"].as_i64().unwrap() + add);
        }
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_a_player_and_watch_the_stats_arrive() {
    let executable = chromium();
    let overfast = FixtureServer::with_samples().await.unwrap();
    overfast.set_cache_headers(None, None);
    let state = tempfile::tempdir().unwrap();
    let config = WebConfig::parse_from([
        "ow-web",
        "--state-dir",
        state.path().to_str().unwrap(),
        "--overfast-url",
        &overfast.url(),
        "--commit-interval-ms",
        "100",
        "--refresh-cooldown",
        "1s",
    ]);
    let stack = EmbeddedStack::start(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        stack.app_state(config.settings()).unwrap(),
        async {
            let _ = stopped.await;
        },
    ));

    let profile = tempfile::tempdir().unwrap();
    let (mut browser, mut handler) = Browser::launch(
        BrowserConfig::builder()
            .chrome_executable(executable)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1280, 1800)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });

    // Search from the home page.
    let page = browser.new_page(format!("{base}/")).await.unwrap();
    page.find_element("input[name='q']")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("TeKrop#2217")
        .await
        .unwrap()
        .press_key("Enter")
        .await
        .unwrap();
    // The search redirects to the player's page.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = page.url().await.unwrap().unwrap_or_default();
        if url.ends_with(&format!("/players/{PLAYER}")) {
            break;
        }
        assert!(Instant::now() < deadline, "still on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The stats arrive by themselves: the page follows its look-up.
    let html = wait_for(&page, "the category cards", |h| {
        h.contains("class=\"card\"")
    })
    .await;
    assert!(html.contains("Games Played"));
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        screenshots().join("player-first-snapshot.png"),
    )
    .await
    .unwrap();

    // Three more games on OverFast; "Refresh now" brings them, with a change and a chart.
    let body = std::fs::read_to_string(FixtureServer::samples_dir().join(format!("{PLAYER}.json")))
        .unwrap();
    overfast.add_profile(PLAYER, bump(&body));
    page.goto(format!(
        "{base}/players/{PLAYER}?platform=pc&mode=competitive"
    ))
    .await
    .unwrap();
    // The fetch is held at OverFast while the page waits: the page must wait on one
    // long-poll of the status, not poll it.
    let hits = overfast.hits(PLAYER);
    let hold = overfast.hold(PLAYER);
    page.find_element("form.refresh button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while overfast.hits(PLAYER) == hits {
        assert!(
            Instant::now() < deadline,
            "the refresh never reached OverFast"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(&page, "the waiting page", |h| {
        h.contains("data-poll=\"true\"")
    })
    .await;
    let answered = status_answers(&base).await;
    // Longer than the 2 s the page script used to poll at.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        status_answers(&base).await,
        answered,
        "the page polled the status instead of waiting on its long-poll"
    );
    hold.release();
    // The fetch lands: the long-poll answers and the page reloads by itself.
    let html = wait_for(&page, "the change and the history chart", |h| {
        h.contains("card-delta") && h.contains("chart-svg")
    })
    .await;
    assert!(html.contains('▲'));
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        screenshots().join("player-after-refresh.png"),
    )
    .await
    .unwrap();

    // The pipeline page draws the three stages.
    page.goto(format!("{base}/pipeline")).await.unwrap();
    let html = wait_for(&page, "the pipeline diagram", |h| h.contains("<svg")).await;
    for stage in ["producer", "processor", "web"] {
        assert!(html.contains(stage));
    }
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        screenshots().join("pipeline.png"),
    )
    .await
    .unwrap();

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    driver.abort();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    stack.close().await.unwrap();
}
