//! A loopback HTTP server that plays OverFast: recorded answers, OverFast's error shapes and
//! injected failures (feature `fixture-server`).
//!
//! It serves `GET /players/{player_id}` from a directory in the replay layout (by default the
//! repository's `samples/overfast/`) or from bodies added in the test, counts the requests per
//! player and records when each arrived on tokio's clock (so a test with paused time sees
//! virtual instants). A player with neither a profile nor a recorded 404 is unknown, and gets what
//! OverFast sends: the nested 404 with `retry_after` (600 s, then ×3 up to 6 h) on a check, and
//! nginx's flat 404 while the cooldown lasts.
//!
//! A player can also get a sequence of bodies ([`FixtureServer::add_profile_sequence`]): each
//! request takes the next one, so counters advance between fetches. Every request is logged
//! (`tracing`, target `ow_producer::fixture_server`) and kept in [`FixtureServer::arrivals`],
//! requests outside `/players/{player_id}` included.
//!
//! Failures are queued per player with [`FixtureServer::inject`]: each request for that player
//! takes the next [`Fault`] in its queue, then answers normally once the queue is empty. A test
//! that needs a fetch to stay in flight until it says so puts a [`Hold`] on the player with
//! [`FixtureServer::hold`]: requests about that player are counted when they arrive, then wait
//! for [`Hold::release`].
//!
//! ```no_run
//! use ow_producer::fixture_server::{Fault, FixtureServer};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let server = FixtureServer::with_samples().await?;
//! server.inject("TeKrop-2217", [Fault::TooManyRequests { retry_after_secs: 1 }]);
//! let base_url = server.url(); // give it to the client as its OverFast URL
//! # let _ = base_url;
//! assert_eq!(server.hits("TeKrop-2217"), 0);
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::time::Instant;

/// OverFast's body for a 500.
pub const INTERNAL_ERROR_BODY: &str = r#"{"error":"An internal server error occurred during the process. The developer received a notification, but don't hesitate to create a GitHub issue if you want any news concerning the bug resolution : https://github.com/TeKrop/overfast-api/issues"}"#;
/// OverFast's body for a 504 (Blizzard did not answer in time).
pub const GATEWAY_TIMEOUT_BODY: &str = r#"{"error":"Couldn't get Blizzard page (HTTP 0 error) : Blizzard took more than 10 seconds to respond, resulting in a timeout"}"#;
/// nginx's body for a 429 (OverFast's per-IP rate limit).
pub const TOO_MANY_REQUESTS_BODY: &str =
    r#"{"error": "API rate limit reached, please wait for 1 second before retrying"}"#;
/// The body of a 404 without the unknown-player cache.
pub const PLAIN_NOT_FOUND_BODY: &str = r#"{"error":"Player not found"}"#;

/// OverFast's first wait for an unknown player, in seconds.
const UNKNOWN_INITIAL_RETRY: u64 = 600;
/// Its growth per check.
const UNKNOWN_RETRY_MULTIPLIER: u64 = 3;
/// Its cap, in seconds.
const UNKNOWN_MAX_RETRY: u64 = 21_600;

/// One failure to inject (see [`FixtureServer::inject`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A 404 in one of OverFast's three shapes.
    NotFound(NotFoundShape),
    /// 429 from OverFast's nginx rate limit, with `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// 503 with `Retry-After`: Blizzard is rate limiting OverFast.
    BlizzardRateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// 503 without `Retry-After` (a proxy in trouble).
    ServiceUnavailable,
    /// 500 with OverFast's body.
    InternalError,
    /// 504 with OverFast's body (Blizzard did not answer).
    GatewayTimeout,
    /// Wait this long (tokio time) before answering normally.
    Delay(Duration),
    /// A 200 whose headers come at once but whose body stops halfway for this long (tokio time)
    /// before the rest.
    StallBody(Duration),
    /// A 200 whose body is the player's profile cut in half (with a matching `Content-Length`).
    TruncatedJson,
    /// A 200 whose body has this many bytes; `chunked` sends it without a `Content-Length`.
    OversizedBody {
        /// Body length, in bytes.
        bytes: usize,
        /// Stream it in chunks with no `Content-Length`.
        chunked: bool,
    },
    /// A 200 whose body is not UTF-8.
    NotUtf8,
    /// Any answer.
    Raw {
        /// The status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

/// The three bodies OverFast sends with a 404.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotFoundShape {
    /// The app's answer after a check: `{"error":{"error":"Player not found","retry_after":…,
    /// "next_check_at":…,"check_count":…}}`.
    Nested {
        /// Seconds until OverFast checks again.
        retry_after_secs: u64,
        /// Checks so far.
        check_count: u64,
    },
    /// nginx's answer during the cooldown: the same fields, not nested.
    Flat {
        /// Seconds until OverFast checks again.
        retry_after_secs: u64,
        /// Checks so far.
        check_count: u64,
    },
    /// Without the unknown-player cache: `{"error":"Player not found"}`.
    Plain,
}

impl NotFoundShape {
    /// The body, with `next_check_at` = now (wall clock) + `retry_after`.
    pub fn body(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self {
            NotFoundShape::Nested {
                retry_after_secs: r,
                check_count: c,
            } => format!(
                r#"{{"error":{{"error":"Player not found","retry_after":{r},"next_check_at":{},"check_count":{c}}}}}"#,
                now + r
            ),
            // `ngx.say` ends the line.
            NotFoundShape::Flat {
                retry_after_secs: r,
                check_count: c,
            } => format!(
                "{{\"error\":\"Player not found\",\"retry_after\":{r},\"next_check_at\":{},\"check_count\":{c}}}\n",
                now + r
            ),
            NotFoundShape::Plain => PLAIN_NOT_FOUND_BODY.to_owned(),
        }
    }
}

/// One request, as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The `{player_id}` of the path, percent-decoded (empty for a path that is not
    /// `/players/{player_id}`).
    pub player: String,
    /// The request's path and query, as received.
    pub path: String,
    /// When it arrived, on tokio's clock.
    pub at: Instant,
    /// Its `User-Agent` header, when it had one.
    pub user_agent: Option<String>,
}

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    addr: SocketAddr,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    profiles: HashMap<String, Bytes>,
    sequences: HashMap<String, VecDeque<Bytes>>,
    not_found: HashMap<String, Bytes>,
    faults: HashMap<String, VecDeque<Fault>>,
    hits: HashMap<String, usize>,
    arrivals: Vec<Arrival>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
    cooldowns: HashMap<String, Cooldown>,
    max_age_secs: Option<u64>,
    age_secs: Option<u64>,
    holds: HashMap<String, watch::Receiver<bool>>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            profiles: HashMap::new(),
            sequences: HashMap::new(),
            not_found: HashMap::new(),
            faults: HashMap::new(),
            hits: HashMap::new(),
            arrivals: Vec::new(),
            in_flight: 0,
            max_in_flight: 0,
            cooldowns: HashMap::new(),
            // OverFast's cache time for `/players/{id}`.
            max_age_secs: Some(600),
            age_secs: None,
            holds: HashMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cooldown {
    until: Instant,
    check_count: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FixtureServer {
    /// Starts a server with no recorded answers, on `127.0.0.1` and a free port.
    pub async fn start() -> io::Result<FixtureServer> {
        let state = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/players/{player_id}", get(player))
            .fallback(not_a_route)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fixture server stopped");
            }
        });
        Ok(FixtureServer { addr, state, task })
    }

    /// Starts a server answering from the repository's `samples/overfast/`.
    pub async fn with_samples() -> io::Result<FixtureServer> {
        FixtureServer::from_dir(FixtureServer::samples_dir()).await
    }

    /// Starts a server answering from a directory in the replay layout: `<id>.json` is served
    /// with 200, `<id>.404.json` with 404; other files are ignored.
    pub async fn from_dir(dir: impl AsRef<Path>) -> io::Result<FixtureServer> {
        let server = FixtureServer::start().await?;
        let mut entries = tokio::fs::read_dir(dir.as_ref()).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".404.json") {
                server.add_not_found(id, tokio::fs::read(entry.path()).await?);
            } else if let Some(id) = name.strip_suffix(".json") {
                server.add_profile(id, tokio::fs::read(entry.path()).await?);
            }
        }
        Ok(server)
    }

    /// The repository's `samples/overfast/` directory.
    pub fn samples_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/overfast")
    }

    /// The base URL to give a client, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `body` with 200 for `player` (`Name-1234`).
    pub fn add_profile(&self, player: &str, body: impl Into<Vec<u8>>) {
        self.state
            .lock()
            .profiles
            .insert(player.to_owned(), Bytes::from(body.into()));
    }

    /// Serves `bodies` with 200 for `player`, one per request in order; once they are used up,
    /// the last one again (a fault injected for a request does not use one).
    pub fn add_profile_sequence(&self, player: &str, bodies: impl IntoIterator<Item = Vec<u8>>) {
        let mut inner = self.state.lock();
        let bodies: VecDeque<Bytes> = bodies.into_iter().map(Bytes::from).collect();
        // The first one is also the profile now (for the faults that cut a profile).
        if let Some(first) = bodies.front() {
            inner.profiles.insert(player.to_owned(), first.clone());
        }
        inner.sequences.insert(player.to_owned(), bodies);
    }

    /// Requests received that were not for `/players/{player_id}`.
    pub fn stray_hits(&self) -> usize {
        self.state
            .lock()
            .arrivals
            .iter()
            .filter(|a| a.player.is_empty())
            .count()
    }

    /// Serves `body` with 404 for `player`.
    pub fn add_not_found(&self, player: &str, body: impl Into<Vec<u8>>) {
        self.state
            .lock()
            .not_found
            .insert(player.to_owned(), Bytes::from(body.into()));
    }

    /// Queues failures for the next requests about `player`, one per request.
    pub fn inject(&self, player: &str, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .lock()
            .faults
            .entry(player.to_owned())
            .or_default()
            .extend(faults);
    }

    /// Holds every request about `player` (counted as it arrives) until the returned [`Hold`] is
    /// released or dropped; a later hold on the same player replaces this one.
    pub fn hold(&self, player: &str) -> Hold {
        let (release, held) = watch::channel(false);
        self.state.lock().holds.insert(player.to_owned(), held);
        Hold { release }
    }

    /// The `Cache-Control: max-age` and `Age` sent with 200s (default: `max-age=600`, no `Age`).
    pub fn set_cache_headers(&self, max_age_secs: Option<u64>, age_secs: Option<u64>) {
        let mut inner = self.state.lock();
        inner.max_age_secs = max_age_secs;
        inner.age_secs = age_secs;
    }

    /// Requests received about `player`.
    pub fn hits(&self, player: &str) -> usize {
        self.state.lock().hits.get(player).copied().unwrap_or(0)
    }

    /// Requests received in all.
    pub fn total_hits(&self) -> usize {
        self.state.lock().arrivals.len()
    }

    /// Every request received, in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().arrivals.clone()
    }

    /// The most requests that were being answered at the same time (from arrival until the
    /// answer's headers leave; a held request counts while it is held).
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().max_in_flight
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.state.lock().in_flight
    }

    /// The most requests that arrived within any `window` (a half-open interval starting at an
    /// arrival).
    pub fn max_in_window(&self, window: Duration) -> usize {
        let times: Vec<Instant> = self.state.lock().arrivals.iter().map(|a| a.at).collect();
        let mut best = 0;
        let mut end = 0;
        for (start, t) in times.iter().enumerate() {
            while end < times.len() && times[end] < *t + window {
                end += 1;
            }
            best = best.max(end - start);
        }
        best
    }
}

/// Requests about one player wait while this exists (see [`FixtureServer::hold`]).
#[derive(Debug)]
pub struct Hold {
    release: watch::Sender<bool>,
}

impl Hold {
    /// Lets the held requests (and later ones) be answered.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.release.send(true);
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What to answer, decided under the lock, sent after it.
enum Plan {
    Answer(Response),
    Delay(Duration),
    Stall(Duration, Bytes),
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(state: &Arc<Shared>) -> InFlight {
        let mut inner = state.lock();
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.in_flight = inner.in_flight.saturating_sub(1);
    }
}

/// Logs and keeps one request.
fn arrive(inner: &mut Inner, player: &str, uri: &Uri, headers: &HeaderMap) {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    tracing::info!(%path, player, "fixture server request");
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    inner.arrivals.push(Arrival {
        player: player.to_owned(),
        path,
        at: Instant::now(),
        user_agent,
    });
}

async fn player(
    State(state): State<Arc<Shared>>,
    UrlPath(player): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let _in_flight = InFlight::new(&state);
    let held = {
        let mut inner = state.lock();
        *inner.hits.entry(player.clone()).or_default() += 1;
        arrive(&mut inner, &player, &uri, &headers);
        inner.holds.get(&player).cloned()
    };
    if let Some(mut held) = held {
        // Released, or the hold dropped: either way, answer.
        let _ = held.wait_for(|released| *released).await;
    }
    let plan = {
        let mut inner = state.lock();
        let fault = inner.faults.get_mut(&player).and_then(VecDeque::pop_front);
        match fault {
            Some(Fault::Delay(d)) => Plan::Delay(d),
            Some(Fault::StallBody(d)) => Plan::Stall(d, profile_or_sample(&inner, &player)),
            Some(fault) => Plan::Answer(fault_answer(&mut inner, &player, fault)),
            None => Plan::Answer(normal_answer(&mut inner, &player)),
        }
    };
    match plan {
        Plan::Answer(response) => response,
        Plan::Delay(d) => {
            tokio::time::sleep(d).await;
            normal_answer(&mut state.lock(), &player)
        }
        Plan::Stall(d, body) => {
            let half = body.len() / 2;
            let (first, rest) = (body.slice(..half), body.slice(half..));
            let stream = futures::stream::iter([Ok::<_, io::Error>(first)]).chain(
                futures::stream::once(async move {
                    tokio::time::sleep(d).await;
                    Ok(rest)
                }),
            );
            let mut response = json(StatusCode::OK, Body::from_stream(stream));
            let len = HeaderValue::from(body.len());
            response.headers_mut().insert(header::CONTENT_LENGTH, len);
            response
        }
    }
}

/// The recorded answer, or OverFast's unknown-player answer.
fn normal_answer(inner: &mut Inner, player: &str) -> Response {
    if let Some(next) = inner
        .sequences
        .get_mut(player)
        .and_then(VecDeque::pop_front)
    {
        inner.profiles.insert(player.to_owned(), next);
    }
    if let Some(body) = inner.profiles.get(player) {
        let mut response = json(StatusCode::OK, Body::from(body.clone()));
        let headers = response.headers_mut();
        if let Some(max_age) = inner.max_age_secs {
            headers.insert(
                header::CACHE_CONTROL,
                header_value(&format!("public, max-age={max_age}")),
            );
            headers.insert(
                HeaderName::from_static("x-cache-status"),
                HeaderValue::from_static("hit"),
            );
        }
        if let Some(age) = inner.age_secs {
            headers.insert(header::AGE, HeaderValue::from(age));
        }
        return response;
    }
    if let Some(body) = inner.not_found.get(player) {
        return json(StatusCode::NOT_FOUND, Body::from(body.clone()));
    }
    let now = Instant::now();
    let shape = match inner.cooldowns.get(player).copied() {
        Some(c) if c.until > now => {
            let left = c.until - now;
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            NotFoundShape::Flat {
                retry_after_secs: secs,
                check_count: c.check_count,
            }
        }
        previous => {
            let check_count = previous.map_or(1, |c| c.check_count + 1);
            let exponent = u32::try_from(check_count - 1).unwrap_or(u32::MAX);
            let retry = UNKNOWN_RETRY_MULTIPLIER
                .saturating_pow(exponent)
                .saturating_mul(UNKNOWN_INITIAL_RETRY)
                .min(UNKNOWN_MAX_RETRY);
            inner.cooldowns.insert(
                player.to_owned(),
                Cooldown {
                    until: now + Duration::from_secs(retry),
                    check_count,
                },
            );
            NotFoundShape::Nested {
                retry_after_secs: retry,
                check_count,
            }
        }
    };
    json(StatusCode::NOT_FOUND, Body::from(shape.body()))
}

fn fault_answer(inner: &mut Inner, player: &str, fault: Fault) -> Response {
    match fault {
        Fault::NotFound(shape) => json(StatusCode::NOT_FOUND, Body::from(shape.body())),
        Fault::TooManyRequests { retry_after_secs } => with_retry_after(
            json(
                StatusCode::TOO_MANY_REQUESTS,
                Body::from(TOO_MANY_REQUESTS_BODY),
            ),
            retry_after_secs,
        ),
        Fault::BlizzardRateLimited { retry_after_secs } => {
            let body = format!(
                r#"{{"error":"Blizzard is temporarily rate limiting this API. Please retry after {retry_after_secs} seconds."}}"#
            );
            with_retry_after(
                json(StatusCode::SERVICE_UNAVAILABLE, Body::from(body)),
                retry_after_secs,
            )
        }
        Fault::ServiceUnavailable => {
            let mut response = json(
                StatusCode::SERVICE_UNAVAILABLE,
                Body::from(
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                ),
            );
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
        Fault::InternalError => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Body::from(INTERNAL_ERROR_BODY),
        ),
        Fault::GatewayTimeout => json(
            StatusCode::GATEWAY_TIMEOUT,
            Body::from(GATEWAY_TIMEOUT_BODY),
        ),
        Fault::TruncatedJson => {
            let body = profile_or_sample(inner, player);
            json(StatusCode::OK, Body::from(body.slice(..body.len() / 2)))
        }
        Fault::OversizedBody { bytes, chunked } => {
            // A JSON string that never ends, so only the length can be wrong with it.
            let mut body = vec![b' '; bytes];
            if let Some(first) = body.first_mut() {
                *first = b'"';
            }
            let body = Bytes::from(body);
            if chunked {
                let chunks: Vec<Result<Bytes, io::Error>> = (0..body.len())
                    .step_by(16 * 1024)
                    .map(|i| Ok(body.slice(i..(i + 16 * 1024).min(body.len()))))
                    .collect();
                json(
                    StatusCode::OK,
                    Body::from_stream(futures::stream::iter(chunks)),
                )
            } else {
                json(StatusCode::OK, Body::from(body))
            }
        }
        Fault::NotUtf8 => json(
            StatusCode::OK,
            Body::from(b"{\"summary\":{\"username\":\"\xff\xfe\"},\"stats\":null}".to_vec()),
        ),
        Fault::Raw {
            status,
            headers,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = json(status, Body::from(body));
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Fault::Delay(_) | Fault::StallBody(_) => normal_answer(inner, player),
    }
}

/// The player's profile, or a small public profile when the player has none.
fn profile_or_sample(inner: &Inner, player: &str) -> Bytes {
    inner.profiles.get(player).cloned().unwrap_or_else(|| {
        Bytes::from_static(br#"{"summary":{"username":"Sample"},"stats":{"pc":{"quickplay":{"heroes_comparisons":{},"career_stats":{}}}}}"#)
    })
}

fn json(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn not_a_route(State(state): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    arrive(&mut state.lock(), "", &uri, &headers);
    json(
        StatusCode::NOT_FOUND,
        Body::from(r#"{"error":"Not Found"}"#),
    )
}
