//! The player page's cache and the status endpoint's long-poll, over the web's materialization
//! in a test driver whose topology reports every store write ([`StoreChanges`]): a page of
//! unchanged data is served again (with its `ETag`, and a 304 for a client that holds it),
//! and the very next request after any of the player's stores changed shows the change; a
//! long-poll of the status waits until the stats land, and answers then.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use common::*;
use ow_domain::FetchOutcome;
use ow_web::{AppState, StoreChanges, WebSettings};

fn app(m: &Materialized, changes: &StoreChanges, clock: &TestClock) -> axum::Router {
    let state = AppState::new(m.repository(), Arc::new(Captured::default()))
        .with_settings(WebSettings::default())
        .with_clock(clock.clock())
        .with_store_changes(changes.clone());
    ow_web::app(state)
}

async fn get_with_etag(app: &axum::Router, uri: &str, etag: &str) -> Answer {
    let mut r = request("GET", uri, [127, 0, 0, 1]);
    r.headers_mut()
        .insert(header::IF_NONE_MATCH, etag.parse().unwrap());
    call(app, r).await
}

const PAGE: &str = "/players/TeKrop-2217?platform=pc&mode=competitive";

#[tokio::test]
async fn a_kept_page_is_replaced_as_soon_as_any_of_its_stores_changes() {
    let changes = StoreChanges::new();
    let m = Materialized::with_changes("page-cache-replaced", &changes);
    let (first, second) = tekrop_bodies();
    let one = raw(TEKROP, FetchOutcome::Ok, Some(first), T1);
    let two = raw(TEKROP, FetchOutcome::Ok, Some(second), T2);
    m.pipe(&process(std::slice::from_ref(&one)), T1);
    // The clock stands still: only a change of the data can replace a kept page.
    let clock = TestClock::at(T2 + HOUR);
    let app = app(&m, &changes, &clock);

    let a = get(&app, PAGE).await;
    assert_eq!(a.status, 200);
    let etag = a.header("etag").to_owned();
    assert!(etag.starts_with('"'), "an ETag: {etag:?}");
    assert!(
        !a.body.contains("card-delta"),
        "one snapshot: no change to show"
    );
    let again = get(&app, PAGE).await;
    assert_eq!(
        (again.body.as_str(), again.header("etag")),
        (a.body.as_str(), etag.as_str())
    );
    let cached = get_with_etag(&app, PAGE, &etag).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), etag);

    // The second snapshot: the next request shows its change.
    let both = process(&[one.clone(), two.clone()]);
    m.pipe(&both, T2);
    let b = get(&app, PAGE).await;
    assert_eq!(b.status, 200);
    assert!(b.body.contains("card-delta"), "the new snapshot's change");
    assert_ne!(b.header("etag"), etag);
    assert_eq!(get_with_etag(&app, PAGE, &etag).await.status, 200);

    // A change of the profile store alone (a failed fetch) replaces the page too.
    let limited = raw(TEKROP, FetchOutcome::RateLimited, None, T2 + 60_000);
    let profiles = process(&[one, two, limited]);
    let only_profile = Outputs {
        profiles: profiles.profiles,
        ..Outputs::default()
    };
    m.pipe(&only_profile, T2 + 60_000);
    let c = get(&app, PAGE).await;
    assert_eq!(c.status, 200);
    assert_ne!(c.body, b.body, "the profile's change shows");
    assert!(c.body.contains("card-delta"), "with the same stats");

    // Another query of the same player is a page of its own.
    let quickplay = get(&app, "/players/TeKrop-2217?platform=pc&mode=quickplay").await;
    assert_eq!(quickplay.status, 200);
    assert_ne!(quickplay.body, c.body);
}

#[tokio::test]
async fn without_store_changes_every_page_is_rendered_from_the_stores() {
    let m = Materialized::new("page-cache-none");
    let (first, second) = tekrop_bodies();
    let one = raw(TEKROP, FetchOutcome::Ok, Some(first), T1);
    m.pipe(&process(std::slice::from_ref(&one)), T1);
    let clock = TestClock::at(T2 + HOUR);
    let state =
        AppState::new(m.repository(), Arc::new(Captured::default())).with_clock(clock.clock());
    let app = ow_web::app(state);
    let a = get(&app, PAGE).await;
    m.pipe(
        &process(&[one, raw(TEKROP, FetchOutcome::Ok, Some(second), T2)]),
        T2,
    );
    let b = get(&app, PAGE).await;
    assert!(!a.body.contains("card-delta"));
    assert!(b.body.contains("card-delta"));
}

/// The `data-status-version` of a player page.
fn page_version(html: &str) -> String {
    let start = html.find("data-status-version=\"").unwrap() + "data-status-version=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_status_long_poll_answers_when_the_stats_land() {
    let changes = StoreChanges::new();
    let m = Materialized::with_changes("page-cache-long-poll", &changes);
    let clock = TestClock::at(T1 - 1_000);
    let app = app(&m, &changes, &clock);

    // A look-up of a player never seen: the page waits.
    let page = get(&app, "/players/TeKrop-2217").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-poll=\"true\""));
    let version = page_version(&page.body);
    let status = get(&app, "/api/players/TeKrop-2217/status").await.json();
    assert_eq!(status["state"], "pending");
    assert_eq!(status["version"], version.as_str());

    // A short wait with nothing new ends with the same version, still polling.
    let uri = |wait_ms: u64| {
        format!("/api/players/TeKrop-2217/status?version={version}&wait_ms={wait_ms}")
    };
    let same = get(&app, &uri(20)).await.json();
    assert_eq!(
        (same["version"].as_str(), same["polling"].as_bool()),
        (Some(version.as_str()), Some(true))
    );

    // A long one is still waiting while nothing lands...
    let long = uri(20_000);
    let waiting = app.clone();
    let mut poll = tokio::spawn(async move { get(&waiting, &long).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut poll)
            .await
            .is_err(),
        "answered with nothing new"
    );
    // ...and answers once the fetch's outputs are in the stores.
    let (first, _) = tekrop_bodies();
    m.pipe(
        &process(&[raw(TEKROP, FetchOutcome::Ok, Some(first), T1)]),
        T1,
    );
    let answer = poll.await.unwrap().json();
    assert_eq!(answer["state"], "ready");
    assert_eq!(answer["polling"], false);
    assert_ne!(answer["version"], version.as_str());

    // The reloaded page has the stats, and asks for nothing more.
    let page = get(&app, "/players/TeKrop-2217").await;
    assert!(page.body.contains("data-poll=\"false\""));
    assert!(page.body.contains("data-sortable"));
    let v = page_version(&page.body);
    let idle = get(
        &app,
        &format!("/api/players/TeKrop-2217/status?version={v}"),
    )
    .await
    .json();
    assert_eq!(
        idle["version"],
        v.as_str(),
        "nothing in flight: answered at once"
    );
}
