//! Player routes: home, search, player page, refresh, and their JSON forms.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use ow_domain::battletag::PlayerId;
use ow_domain::{PlayerProfile, RequestOrigin};
use serde::{Deserialize, Serialize};

use super::client::ClientAddr;
use super::error::{ApiError, AppError};
use crate::career::{PlayerQuery, player_url};
use crate::lookup::{self, LookupStatus, Pending};
use crate::materialize::{PlayerDeltas, PlayerHistory, PlayerStats};
use crate::page_cache::RenderedPage;
use crate::requests::new_request;
use crate::views::lookup::Notice;
use crate::views::player::PlayerPage;
use crate::{AppState, Error, views};

/// Tracked players listed on the home page.
const TRACKED_ON_HOME: usize = 24;

/// Runs a repository read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            reason: e.to_string(),
        })?
}

/// Parses a battletag from user input, as a 400 when it is not one.
fn parse_player(input: &str) -> Result<PlayerId, AppError> {
    PlayerId::parse(input).map_err(|reason| AppError::BadPlayerId {
        input: input.chars().take(PlayerId::MAX_LEN).collect(),
        reason,
    })
}

/// Everything materialized about a player.
#[derive(Default, Serialize)]
pub(crate) struct PlayerData {
    pub(crate) profile: Option<PlayerProfile>,
    pub(crate) categories: Option<Arc<PlayerStats>>,
    pub(crate) deltas: Option<PlayerDeltas>,
    pub(crate) history: Option<PlayerHistory>,
}

async fn load(state: &AppState, id: &PlayerId) -> Result<PlayerData, Error> {
    let repository = state.inner.repository.clone();
    let id = id.clone();
    blocking(move || {
        Ok(PlayerData {
            profile: repository.profile(&id)?,
            categories: repository.categories(&id)?,
            deltas: repository.deltas(&id)?,
            history: repository.history(&id)?,
        })
    })
    .await
}

impl AppState {
    /// What to say about `id`; forgets the request in flight once it is answered.
    pub(crate) fn lookup_status(
        &self,
        id: &PlayerId,
        profile: Option<&PlayerProfile>,
        has_stats: bool,
    ) -> LookupStatus {
        let pending = self.inner.lookups.get(id.as_str());
        let status = lookup::status(
            profile,
            has_stats,
            pending.as_ref(),
            self.now(),
            self.inner.settings.lookup_timeout,
        );
        if let Some(p) = &pending
            && status.waiting.is_none()
        {
            self.inner.lookups.resolve(id.as_str(), &p.request_id);
        }
        status
    }

    /// Writes a request for `id` and remembers it as in flight.
    pub(crate) async fn request_player(
        &self,
        id: &PlayerId,
        origin: RequestOrigin,
        baseline: Option<i64>,
    ) -> Result<(), Error> {
        let now = self.now();
        let request = new_request(id, origin, now);
        let request_id = request.request_id.clone();
        self.inner.requests.send(request).await?;
        self.inner.metrics.player_request(origin_name(origin));
        self.inner.lookups.insert(
            id.as_str(),
            Pending {
                request_id,
                origin,
                requested_at: now,
                baseline,
            },
        );
        self.inner.lookups_changed.changed(id.as_str());
        Ok(())
    }

    /// Tells the pipeline that a known player's page was viewed (keeps the player tracked; the
    /// producer fetches only if its last answer is stale), at most once per player and
    /// [`WebSettings::view_interval`](crate::WebSettings::view_interval), in the background.
    fn viewed_known_player(&self, id: &PlayerId) {
        if self.inner.limits.view(id.as_str()).is_err() {
            return;
        }
        let request = new_request(id, RequestOrigin::View, self.now());
        let state = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            match state.inner.requests.send(request).await {
                Ok(_) => state
                    .inner
                    .metrics
                    .player_request(origin_name(RequestOrigin::View)),
                Err(e) => tracing::debug!(player = %id, error = %e, "view request not written"),
            }
        });
    }

    /// Whether a request for `id` is in flight and not timed out.
    fn waiting_for(&self, id: &PlayerId) -> bool {
        let timeout =
            i64::try_from(self.inner.settings.lookup_timeout.as_millis()).unwrap_or(i64::MAX);
        self.inner
            .lookups
            .get(id.as_str())
            .is_some_and(|p| self.now() < p.requested_at.saturating_add(timeout))
    }
}

/// The metrics label of an origin.
fn origin_name(origin: RequestOrigin) -> &'static str {
    match origin {
        RequestOrigin::Search => "search",
        RequestOrigin::Refresh => "refresh",
        RequestOrigin::Track => "track",
        RequestOrigin::View => "view",
        RequestOrigin::Other => "other",
    }
}

/// `GET /`.
pub(crate) async fn home(State(state): State<AppState>) -> Result<Markup, AppError> {
    let repository = state.inner.repository.clone();
    let tracked = blocking(move || repository.recent_players(TRACKED_ON_HOME)).await?;
    Ok(views::home::page(
        &state.recently_viewed(),
        &tracked,
        state.now(),
    ))
}

/// Query of `GET /search`.
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /search?q=Name%231234`: a redirect to the player page, or a 400 page saying why the
/// input is not a battletag (nothing is asked upstream then).
pub(crate) async fn search(
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let id = parse_player(&query.q)?;
    Ok(Redirect::to(&player_url(&id, &[])).into_response())
}

/// `GET /players/{id}`.
pub(crate) async fn player(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PlayerQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Path(raw) = path?;
    let id = parse_player(&raw)?;
    let Query(query) = query?;
    if raw != id.as_str() {
        // `Name#1234`, whitespace...: one canonical address per player.
        let params: Vec<(&str, &str)> = [
            ("platform", &query.platform),
            ("mode", &query.mode),
            ("hero", &query.hero),
            ("sort", &query.sort),
            ("dir", &query.dir),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
        return Ok(Redirect::permanent(&player_url(&id, &params)).into_response());
    }
    // The version first: the stores read next are at least as new as it says.
    let cache_key = format!("{}?{:?}", id.as_str(), query);
    let version = state
        .inner
        .changes
        .as_ref()
        .filter(|_| state.inner.lookups.get(id.as_str()).is_none())
        .map(|changes| changes.version(id.as_str()));
    if let Some(version) = version
        && let Some(page) = state.inner.pages.get(&cache_key, version, state.now())
    {
        // What a render of a known player would do besides rendering.
        state.viewed(&id);
        state.viewed_known_player(&id);
        return Ok(page.respond(StatusCode::OK, &headers));
    }
    let data = load(&state, &id).await?;
    let mut notice = None;
    let mut code = StatusCode::OK;
    if data.profile.is_none() && state.inner.lookups.get(id.as_str()).is_none() {
        (notice, code) = first_lookup(&state, &id, client).await;
    }
    let status = state.lookup_status(&id, data.profile.as_ref(), data.categories.is_some());
    if data.profile.is_some() {
        state.viewed(&id);
        if status.waiting.is_none() {
            state.viewed_known_player(&id);
        }
    }
    let page = views::player::page(&PlayerPage {
        id: &id,
        profile: data.profile.as_ref(),
        stats: data.categories.as_deref(),
        deltas: data.deltas.as_ref(),
        history: data.history.as_ref(),
        status: &status,
        query: &query,
        timeout: state.inner.settings.lookup_timeout,
        notice,
        now: state.now(),
    });
    let page = RenderedPage::new(page.into_string());
    // Kept only when nothing but the stores (and the clock's minutes) shapes it.
    if let Some(version) = version
        && code == StatusCode::OK
        && data.profile.is_some()
        && status.waiting.is_none()
        && state.inner.lookups.get(id.as_str()).is_none()
    {
        state
            .inner
            .pages
            .put(cache_key, version, state.now(), page.clone());
    }
    Ok(page.respond(code, &headers))
}

/// Asks the pipeline for a player seen for the first time, within the client's budget.
async fn first_lookup(
    state: &AppState,
    id: &PlayerId,
    client: Option<IpAddr>,
) -> (Option<Notice>, StatusCode) {
    if let Err(limited) = state.inner.limits.client(client) {
        state.inner.metrics.rate_limited("client");
        return (
            Some(Notice::Limited {
                retry_after: limited.retry_after(),
            }),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    match state.request_player(id, RequestOrigin::Search, None).await {
        Ok(()) => (None, StatusCode::OK),
        Err(e) => {
            tracing::warn!(player = %id, error = %e, "cannot request a player");
            (Some(Notice::RequestFailed), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// `POST /players/{id}/refresh`: asks the pipeline for a new fetch (rate-limited per player and
/// per client), then back to the player page.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(raw) = path?;
    let id = parse_player(&raw)?;
    if !state.waiting_for(&id) {
        state
            .inner
            .limits
            .refresh(id.as_str(), client)
            .map_err(|l| {
                state.inner.metrics.rate_limited(match l {
                    crate::limits::Limited::Player { .. } => "player",
                    crate::limits::Limited::Client { .. } => "client",
                });
                AppError::Limited(l)
            })?;
        let repository = state.inner.repository.clone();
        let lookup_id = id.clone();
        let profile = blocking(move || repository.profile(&lookup_id)).await?;
        let origin = if profile.is_some() {
            RequestOrigin::Refresh
        } else {
            RequestOrigin::Search
        };
        state
            .request_player(&id, origin, profile.map(|p| p.status.fetched_at))
            .await?;
    }
    Ok(Redirect::to(&player_url(&id, &[])).into_response())
}

/// The JSON of `/api/players/{id}`.
#[derive(Serialize)]
struct PlayerJson {
    player_id: String,
    status: LookupStatus,
    #[serde(flatten)]
    data: PlayerData,
}

/// `GET /api/players/{id}`: what the page shows, as JSON (no request is made).
pub(crate) async fn player_json(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    let id = parse_player(&raw)?;
    let data = load(&state, &id).await?;
    let status = state.lookup_status(&id, data.profile.as_ref(), data.categories.is_some());
    Ok(Json(PlayerJson {
        player_id: id.as_str().to_owned(),
        status,
        data,
    })
    .into_response())
}

/// The JSON of `/api/players/{id}/status`.
#[derive(Serialize)]
struct StatusJson {
    player_id: String,
    polling: bool,
    #[serde(flatten)]
    status: LookupStatus,
}

/// Query of `GET /api/players/{id}/status`.
#[derive(Deserialize)]
pub(crate) struct StatusQuery {
    /// The version the page shows: answer once the status has another one.
    version: Option<String>,
    /// How long to wait for that, in milliseconds (at most [`LONG_POLL_MAX`]).
    wait_ms: Option<u64>,
}

/// The longest a long-poll of the status waits (proxies commonly cut idle answers at 30 s).
pub(crate) const LONG_POLL_MAX: Duration = Duration::from_secs(25);
/// How often a long-poll reads the stores again when nothing tells it of changes (no
/// [`StoreChanges`](crate::StoreChanges) given to the state).
const LONG_POLL_RECHECK: Duration = Duration::from_millis(100);
/// How often a woken long-poll checks whether the web's streams app has committed.
const COMMIT_CHECK: Duration = Duration::from_millis(2);
/// The longest a woken long-poll waits for that commit.
const COMMIT_WAIT_MAX: Duration = Duration::from_secs(2);

async fn read_status(state: &AppState, id: &PlayerId) -> Result<LookupStatus, Error> {
    let repository = state.inner.repository.clone();
    let lookup_id = id.clone();
    let (profile, has_stats) = blocking(move || {
        Ok((
            repository.profile(&lookup_id)?,
            repository.has_categories(&lookup_id)?,
        ))
    })
    .await?;
    Ok(state.lookup_status(id, profile.as_ref(), has_stats))
}

/// Waits for the next change of `rx` (forever without one).
async fn next_change(rx: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Waits until the web's streams app has committed twice more (at most
/// [`COMMIT_WAIT_MAX`]). After the first, the batch whose write woke a long-poll is complete
/// (a page reloaded now shows all of a snapshot's records rather than the first of them, and
/// shows them committed); after the second, so is the hop through the daily history's
/// repartition topic (its records become readable at the first commit), so the reloaded page
/// has the new history point too.
async fn next_commit(state: &AppState) {
    let Some(streams) = &state.inner.streams else {
        return;
    };
    let until = streams.metrics().commits.saturating_add(2);
    let deadline = tokio::time::Instant::now() + COMMIT_WAIT_MAX;
    while streams.metrics().commits < until && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(COMMIT_CHECK).await;
    }
}

/// `GET /api/players/{id}/status`: the look-up state, followed by the page script.
///
/// With `?version=V` (and `wait_ms`, at most [`LONG_POLL_MAX`]) it is a long-poll: it answers
/// as soon as the status's version is not `V` (a store write for the player, then the web's
/// next commit; a look-up written; a look-up timing out), or when nothing is in flight, or when
/// the wait is over, whichever comes first.
pub(crate) async fn status_json(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    let id = parse_player(&raw)?;
    let Query(query) = query?;
    let wait = match &query.version {
        Some(_) => query
            .wait_ms
            .map_or(LONG_POLL_MAX, Duration::from_millis)
            .min(LONG_POLL_MAX),
        None => Duration::ZERO,
    };
    let deadline = tokio::time::Instant::now() + wait;
    let changes = state.inner.changes.clone();
    let mut stores = changes.as_ref().map(crate::StoreChanges::subscribe);
    let mut lookups = state.inner.lookups_changed.subscribe();
    let status = loop {
        let seen_store = changes.as_ref().map(|c| c.version(id.as_str()));
        let seen_lookup = state.inner.lookups_changed.version(id.as_str());
        if let Some(rx) = stores.as_mut() {
            rx.borrow_and_update();
        }
        lookups.borrow_and_update();
        let status = read_status(&state, &id).await?;
        let now = tokio::time::Instant::now();
        let changed = query.version.as_deref() != Some(status.version.as_str());
        if changed && query.version.is_some() && changes.is_some() {
            // Read mid-batch, the status may show the first record of a snapshot: answer
            // with what the web's next commit holds, the whole batch.
            next_commit(&state).await;
            break read_status(&state, &id).await?;
        }
        if changed || !status.polling() || now >= deadline {
            break status;
        }
        // The look-up times out at its deadline: its status changes then too.
        let until = status
            .waiting
            .as_ref()
            .map(|w| {
                let ms = u64::try_from(w.deadline.saturating_sub(state.now())).unwrap_or(0);
                now + Duration::from_millis(ms)
            })
            .map_or(deadline, |timeout| timeout.min(deadline));
        loop {
            tokio::select! {
                () = next_change(stores.as_mut()) => {
                    if changes.as_ref().map(|c| c.version(id.as_str())) != seen_store {
                        break;
                    }
                }
                () = next_change(Some(&mut lookups)) => {
                    if state.inner.lookups_changed.version(id.as_str()) != seen_lookup {
                        break;
                    }
                }
                () = tokio::time::sleep_until(until) => break,
                () = tokio::time::sleep(LONG_POLL_RECHECK), if changes.is_none() => break,
            }
        }
    };
    Ok(Json(StatusJson {
        player_id: id.as_str().to_owned(),
        polling: status.polling(),
        status,
    })
    .into_response())
}
