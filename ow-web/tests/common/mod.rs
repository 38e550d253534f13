//! Helpers shared by the integration tests: recorded OverFast bodies turned into the
//! processor's outputs with its own domain functions, a test driver running the web's
//! materialization, an app over captured requests and a settable clock, and `oneshot` calls.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod openmetrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use ow_domain::battletag::PlayerId;
use ow_domain::hero::ALL_HEROES;
use ow_domain::{
    DailyStats, FetchOutcome, FetchStatus, PlayerProfile, PlayerRequest, RawPlayerProfile,
    StatsByCategory, StatsDelta,
};
use ow_processor::{add_delta, apply_fetch, compute_deltas, snapshot_of, stats_by_category};
use ow_stream_core::client::Delivered;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::testing::TopologyTestDriver;
use ow_web::materialize::{self, PlayerDeltas, PlayerHistory, PlayerStats};
use ow_web::{
    AppState, Clock, Error, MemoryRepository, PlayerRepository, PlayerRequests, StoreChanges,
    StoreRepository, Topics, WebSettings,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The recorded `GET /players/{id}` bodies of this repository.
pub const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/overfast/");
/// The shared OverFast fixtures (summaries with competitive ranks).
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/overfast/"
);

/// 2024-01-01T00:00:00Z.
pub const JAN_1_2024: i64 = 1_704_067_200_000;
pub const HOUR: i64 = 3_600_000;
/// When the first snapshot is fetched.
pub const T1: i64 = JAN_1_2024 + 10 * HOUR;
/// When the second snapshot is fetched.
pub const T2: i64 = JAN_1_2024 + 12 * HOUR;

pub const TEKROP: &str = "TeKrop-2217";

/// A recorded body of this repository's samples.
pub fn sample(name: &str) -> String {
    let path = format!("{SAMPLES}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("sample {path}: {e}"))
}

/// A shared fixture as JSON.
pub fn fixture_json(name: &str) -> Value {
    let path = format!("{FIXTURES}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn id(s: &str) -> PlayerId {
    PlayerId::parse(s).unwrap()
}

/// A raw event of a fetch of `player_id`.
pub fn raw(
    player_id: &str,
    outcome: FetchOutcome,
    body: Option<String>,
    fetched_at: i64,
) -> RawPlayerProfile {
    let http_status = match outcome {
        FetchOutcome::Ok | FetchOutcome::Private => Some(200),
        FetchOutcome::NotFound => Some(404),
        FetchOutcome::RateLimited => Some(429),
        FetchOutcome::UpstreamError => Some(503),
    };
    RawPlayerProfile {
        request_id: format!("req-{fetched_at}"),
        player_id: player_id.into(),
        fetched_at,
        request_url: format!("https://overfast-api.tekrop.fr/players/{player_id}"),
        http_status,
        outcome,
        body,
        cache_max_age_secs: Some(600),
        cache_age_secs: None,
        error: None,
        attempts: 1,
        next_attempt_at: None,
    }
}

/// Adds `by` to stat `key` of `hero`/`category` in `platform`/`mode` of a labelled body.
pub fn bump(body: &mut Value, [platform, mode, hero, category, key]: [&str; 5], by: f64) {
    let categories = body["stats"][platform][mode]["career_stats"][hero]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no hero {hero}"));
    let stats = categories
        .iter_mut()
        .find(|c| c["category"] == category)
        .unwrap_or_else(|| panic!("no category {category}"))["stats"]
        .as_array_mut()
        .unwrap();
    let stat = stats
        .iter_mut()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no stat {key}"));
    stat["value"] = json!(stat["value"].as_f64().unwrap() + by);
}

/// TeKrop's recorded body, and the same after three more competitive games two hours later.
pub fn tekrop_bodies() -> (String, String) {
    let first = sample("TeKrop-2217.json");
    let mut second: Value = serde_json::from_str(&first).unwrap();
    second["summary"]["last_updated_at"] = json!(1_678_536_999 + 7200);
    for (hero, category, key, by) in [
        (ALL_HEROES, "game", "games_played", 3.0),
        (ALL_HEROES, "game", "games_won", 2.0),
        (ALL_HEROES, "game", "games_lost", 1.0),
        (ALL_HEROES, "game", "time_played", 3600.0),
        (ALL_HEROES, "combat", "eliminations", 40.0),
        (ALL_HEROES, "combat", "deaths", 10.0),
        (ALL_HEROES, "combat", "damage_done", 5000.0),
        (ALL_HEROES, "assists", "healing_done", 1200.0),
        ("reaper", "game", "games_played", 3.0),
        ("reaper", "game", "time_played", 3600.0),
        ("reaper", "combat", "eliminations", 40.0),
    ] {
        bump(&mut second, ["pc", "competitive", hero, category, key], by);
    }
    (first, second.to_string())
}

/// What the processor writes for a player, per output topic.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    pub profiles: Vec<PlayerProfile>,
    pub categories: Vec<StatsByCategory>,
    pub deltas: Vec<StatsDelta>,
    pub daily: Vec<DailyStats>,
}

/// The processor's outputs for successive raw events of one player, computed with its domain
/// functions (profile fold, category records, snapshot deltas, daily sums).
pub fn process(raws: &[RawPlayerProfile]) -> Outputs {
    let mut out = Outputs::default();
    let mut profile = None;
    let mut snapshot = None;
    let mut days: BTreeMap<(String, String, i64), DailyStats> = BTreeMap::new();
    for raw in raws {
        let p = apply_fetch(profile.clone(), raw).unwrap();
        out.profiles.push(p.clone());
        profile = Some(p);
        out.categories.extend(stats_by_category(raw).unwrap());
        if let Some(current) = snapshot_of(raw).unwrap() {
            let deltas = compute_deltas(snapshot.as_ref(), &current);
            for d in &deltas {
                if d.hero == ALL_HEROES {
                    let (start, _) = ow_processor::day_window(d.snapshot_at);
                    let key = (d.platform.clone(), d.gamemode.clone(), start);
                    let day = add_delta(days.remove(&key).unwrap_or_default(), d);
                    out.daily.push(day.clone());
                    days.insert(key, day);
                }
            }
            out.deltas.extend(deltas);
            snapshot = Some(current);
        }
    }
    out
}

/// TeKrop fetched twice (the second time after three more competitive games).
pub fn tekrop_outputs() -> Outputs {
    let (first, second) = tekrop_bodies();
    process(&[
        raw(TEKROP, FetchOutcome::Ok, Some(first), T1),
        raw(TEKROP, FetchOutcome::Ok, Some(second), T2),
    ])
}

/// Outputs folded the way the web's materialization folds them, into a [`MemoryRepository`].
pub fn memory_repository(outputs: &Outputs) -> MemoryRepository {
    let repository = MemoryRepository::new();
    fill(&repository, outputs);
    repository
}

/// Adds folded outputs to a [`MemoryRepository`].
pub fn fill(repository: &MemoryRepository, outputs: &Outputs) {
    let mut ids = Vec::new();
    for p in &outputs.profiles {
        repository.set_profile(p.clone());
        ids.push(p.player_id.clone());
    }
    let mut stats: BTreeMap<String, PlayerStats> = BTreeMap::new();
    for c in &outputs.categories {
        let s = stats
            .remove(&c.player_id)
            .unwrap_or_default()
            .apply(c.clone());
        stats.insert(c.player_id.clone(), s);
    }
    for (player, s) in stats {
        repository.set_categories(&id(&player), s);
    }
    let mut deltas: BTreeMap<String, PlayerDeltas> = BTreeMap::new();
    for d in &outputs.deltas {
        let s = deltas
            .remove(&d.player_id)
            .unwrap_or_default()
            .apply(d.clone());
        deltas.insert(d.player_id.clone(), s);
    }
    for (player, d) in deltas {
        repository.set_deltas(&id(&player), d);
    }
    let mut history: BTreeMap<String, PlayerHistory> = BTreeMap::new();
    for d in &outputs.daily {
        let h = history
            .remove(&d.player_id)
            .unwrap_or_default()
            .apply(d.clone());
        history.insert(d.player_id.clone(), h);
    }
    for (player, h) in history {
        repository.set_history(&id(&player), h);
    }
}

/// A profile with the given outcome and no stats, as the processor writes it for a failed,
/// private or not-found fetch of a player never fetched before.
pub fn bare_profile(player_id: &str, outcome: FetchOutcome, fetched_at: i64) -> PlayerProfile {
    PlayerProfile {
        player_id: player_id.into(),
        username: None,
        avatar: None,
        namecard: None,
        title: None,
        endorsement: None,
        competitive: vec![],
        last_updated_at: None,
        profile_fetched_at: None,
        status: FetchStatus {
            outcome,
            fetched_at,
            http_status: Some(match outcome {
                FetchOutcome::NotFound => 404,
                FetchOutcome::RateLimited => 429,
                FetchOutcome::UpstreamError => 503,
                _ => 200,
            }),
            message: None,
            next_check_at: Some(fetched_at + 600_000),
        },
    }
}

/// The web's materialization running in a test driver.
pub struct Materialized {
    pub driver: TopologyTestDriver,
    pub topics: Topics,
}

impl Materialized {
    /// A driver over a mock registry of its own scope.
    pub fn new(scope: &str) -> Materialized {
        let topics = Topics::new(&SchemaRegistry::mock(scope), "").unwrap();
        let driver = TopologyTestDriver::new(materialize::topology(&topics).unwrap()).unwrap();
        Materialized { driver, topics }
    }

    /// A driver whose topology tells `changes` of every store write.
    pub fn with_changes(scope: &str, changes: &StoreChanges) -> Materialized {
        let topics = Topics::new(&SchemaRegistry::mock(scope), "").unwrap();
        let topology = materialize::topology_with_changes(&topics, changes).unwrap();
        let driver = TopologyTestDriver::new(topology).unwrap();
        Materialized { driver, topics }
    }

    /// Pipes outputs as the processor would write them, each stamped `at`.
    pub fn pipe(&self, outputs: &Outputs, at: i64) {
        let profiles = self.driver.input_topic(&self.topics.profiles);
        for p in &outputs.profiles {
            profiles
                .pipe_input_at(p.player_id.clone(), p.clone(), at)
                .unwrap();
        }
        let categories = self.driver.input_topic(&self.topics.stats_by_category);
        for c in &outputs.categories {
            categories.pipe_input_at(c.key(), c.clone(), at).unwrap();
        }
        let deltas = self.driver.input_topic(&self.topics.deltas);
        for d in &outputs.deltas {
            deltas
                .pipe_input_at(d.player_id.clone(), d.clone(), at)
                .unwrap();
        }
        let daily = self.driver.input_topic(&self.topics.daily);
        for d in &outputs.daily {
            daily.pipe_input_at(d.key(), d.clone(), at).unwrap();
        }
    }

    /// A repository over the driver's stores.
    pub fn repository(&self) -> Arc<StoreRepository> {
        Arc::new(StoreRepository::from_driver(&self.driver).unwrap())
    }
}

/// Requests captured instead of written; can be told to fail.
#[derive(Default)]
pub struct Captured {
    pub requests: Mutex<Vec<PlayerRequest>>,
    pub fail: AtomicBool,
}

impl Captured {
    pub fn all(&self) -> Vec<PlayerRequest> {
        self.requests.lock().clone()
    }

    /// Waits (yielding to the runtime, a bounded number of times) until at least `n` requests
    /// are captured, for requests written in the background.
    pub async fn wait_for(&self, n: usize) -> Vec<PlayerRequest> {
        for _ in 0..1000 {
            if self.requests.lock().len() >= n {
                break;
            }
            tokio::task::yield_now().await;
        }
        self.all()
    }
}

#[async_trait]
impl PlayerRequests for Captured {
    async fn send(&self, request: PlayerRequest) -> Result<Option<Delivered>, Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Request {
                player_id: request.player_id,
                source: ow_stream_core::Error::Closed {
                    reason: "broker down at kafka-1.internal:9092".into(),
                },
            });
        }
        self.requests.lock().push(request);
        Ok(None)
    }
}

/// A clock tests move by hand.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

impl TestClock {
    pub fn at(ms: i64) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    }
}

/// An app over `repository`, capturing requests, at `clock`.
pub fn app_with(
    repository: Arc<dyn PlayerRepository>,
    settings: WebSettings,
    clock: &TestClock,
) -> (Router, Arc<Captured>, AppState) {
    let captured = Arc::new(Captured::default());
    let state = AppState::new(repository, captured.clone())
        .with_settings(settings)
        .with_clock(clock.clock());
    (ow_web::app(state.clone()), captured, state)
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request through the router.
pub async fn call(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A request from client address `client`.
pub fn request(method: &str, uri: &str, client: [u8; 4]) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((client, 40_000))));
    r
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    call(app, request("GET", uri, [127, 0, 0, 1])).await
}

pub async fn post(app: &Router, uri: &str) -> Answer {
    call(app, request("POST", uri, [127, 0, 0, 1])).await
}

/// The `Location` of a redirect.
pub fn location(answer: &Answer) -> &str {
    answer
        .headers
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}
