//! The client: one fetch, with retries, the not-found memory and the throttle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ow_domain::FetchOutcome;
use ow_domain::battletag::PlayerId;
use tokio::time::Instant;
use url::Url;

use super::classify::{Answer, Retry, Verdict, classify};
use super::config::{ClientConfig, ConfigError, Source};
use super::fetch::{FetchError, ProfileFetch, add_ms, now_ms};
use super::http::HttpSource;
use super::replay::{Recorder, ReplayDir};
use super::throttle::Throttle;

/// Longest shared pause a `Retry-After` can impose on every fetch.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// Past this many remembered not-found players, expired entries are swept on insert.
const SWEEP_AT: usize = 4096;

/// Fetches player profiles from OverFast (or a replay directory), politely.
///
/// Cheap to clone; clones share the throttle and the not-found memory, so one client per process
/// keeps the whole process within [`ClientConfig::rate_per_second`].
///
/// ```no_run
/// use ow_domain::battletag::PlayerId;
/// use ow_producer::overfast::{ClientConfig, OverfastClient};
/// use ow_domain::FetchOutcome;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = OverfastClient::new(ClientConfig::default())?;
/// let fetch = client.fetch(&PlayerId::parse("TeKrop#2217")?).await;
/// if fetch.outcome == FetchOutcome::Ok {
///     let event = fetch.into_raw("request-1");
///     println!("{} bytes", event.body.map_or(0, |b| b.len()));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OverfastClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    backend: Backend,
    not_found: Mutex<HashMap<PlayerId, NotBefore>>,
}

#[derive(Debug)]
enum Backend {
    Live(Box<Live>),
    Replay { base: String, dir: ReplayDir },
}

#[derive(Debug)]
struct Live {
    base: Url,
    http: HttpSource,
    throttle: Throttle,
    recorder: Option<Recorder>,
}

/// A remembered 404.
#[derive(Clone, Copy, Debug)]
struct NotBefore {
    deadline: Instant,
    until_ms: i64,
}

/// The last attempt, for the fetch's result.
struct Last {
    status: Option<u16>,
    answer: Answer,
    verdict: Verdict,
    fetched_at: i64,
}

impl OverfastClient {
    /// Checks the settings and builds the client (creating the record directory if asked).
    pub fn new(config: ClientConfig) -> Result<OverfastClient, ConfigError> {
        config.validate()?;
        let backend = match &config.source {
            Source::Live(base) => {
                let recorder = match &config.record_dir {
                    Some(dir) => {
                        std::fs::create_dir_all(dir).map_err(|source| ConfigError::RecordDir {
                            path: dir.clone(),
                            source,
                        })?;
                        Some(Recorder::new(dir.clone()))
                    }
                    None => None,
                };
                Backend::Live(Box::new(Live {
                    base: base.clone(),
                    http: HttpSource::new(&config)?,
                    throttle: Throttle::new(&config)?,
                    recorder,
                }))
            }
            Source::Replay(dir) => {
                let meta = std::fs::metadata(dir).map_err(|source| ConfigError::ReplayDir {
                    path: dir.clone(),
                    source,
                })?;
                if !meta.is_dir() {
                    return Err(ConfigError::ReplayDir {
                        path: dir.clone(),
                        source: std::io::Error::other("not a directory"),
                    });
                }
                Backend::Replay {
                    base: config.source.url_text(),
                    dir: ReplayDir::new(dir.clone(), config.max_body_bytes),
                }
            }
        };
        Ok(OverfastClient {
            inner: Arc::new(Inner {
                config,
                backend,
                not_found: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The URL asked for `player`: `{base}/players/{percent-encoded id}`.
    pub fn request_url(&self, player: &PlayerId) -> String {
        match &self.inner.backend {
            Backend::Live(live) => live_url(&live.base, player).to_string(),
            Backend::Replay { base, .. } => {
                format!("{base}/players/{}", player.url_path_segment())
            }
        }
    }

    /// When this player may be asked about again after a 404 (milliseconds since the epoch), or
    /// `None` if nothing holds it back.
    pub fn not_before(&self, player: &PlayerId) -> Option<i64> {
        self.remembered(player).map(|nb| nb.until_ms)
    }

    /// Fetches `GET /players/{player}` and says how it went.
    ///
    /// Never fails: see [`ProfileFetch`]. A player that got a 404 is not asked again before the
    /// time OverFast gave (`retry_after` / `next_check_at`); until then the answer comes from
    /// memory with `attempts == 0`. Rate-limited answers wait as told and upstream errors back off
    /// (exponentially, with jitter), both within [`ClientConfig::max_attempts`]. A replayed answer
    /// is read once, never retried.
    pub async fn fetch(&self, player: &PlayerId) -> ProfileFetch {
        let request_url = self.request_url(player);
        if let Some(nb) = self.remembered(player) {
            tracing::debug!(player = %player, until_ms = nb.until_ms, "not found earlier; not asking yet");
            return ProfileFetch {
                player_id: player.clone(),
                request_url,
                fetched_at: now_ms(),
                http_status: None,
                outcome: FetchOutcome::NotFound,
                body: None,
                cache: Default::default(),
                error: Some(FetchError::NotBefore {
                    until_ms: nb.until_ms,
                }),
                attempts: 0,
                next_attempt_at: Some(nb.until_ms),
            };
        }
        match &self.inner.backend {
            Backend::Live(live) => self.fetch_live(player, request_url, live).await,
            Backend::Replay { dir, .. } => self.fetch_replay(player, request_url, dir).await,
        }
    }

    async fn fetch_live(
        &self,
        player: &PlayerId,
        request_url: String,
        live: &Live,
    ) -> ProfileFetch {
        let config = &self.inner.config;
        let Live {
            base,
            http,
            throttle,
            recorder,
        } = live;
        let url = &live_url(base, player);
        let mut attempts = 0u32;
        let mut last: Option<Last> = None;
        loop {
            // An earlier `Retry-After` (from any fetch) holds every attempt back.
            if let Some(until) = throttle.paused_until() {
                let remaining = until.saturating_duration_since(Instant::now());
                if remaining > config.max_retry_after {
                    let until_ms = add_ms(now_ms(), remaining);
                    tracing::warn!(player = %player, until_ms, "overfast asked to wait; not asking");
                    return self.paused(player, request_url, attempts, last, until_ms);
                }
                tokio::time::sleep_until(until).await;
                continue;
            }
            let answer = {
                let _permit = throttle.admit().await;
                if throttle.paused_until().is_some() {
                    continue;
                }
                attempts += 1;
                tracing::debug!(player = %player, attempt = attempts, url = %url, "asking overfast");
                http.get(url).await
            };
            let fetched_at = now_ms();
            let verdict = classify(&answer, SystemTime::now(), config.not_found_retry);
            let status = answer.status;
            let retry = verdict.retry;
            let this = Last {
                status,
                answer,
                verdict,
                fetched_at,
            };
            match retry {
                Retry::No => {
                    if let (Some(recorder), Ok(bytes)) = (recorder, &this.answer.body) {
                        recorder.save(player, this.verdict.outcome, bytes).await;
                    }
                    return self.finish(player, request_url, attempts, this, None);
                }
                Retry::Backoff => {
                    if attempts >= config.max_attempts {
                        tracing::warn!(player = %player, attempts, error = ?this.verdict.error, "giving up");
                        return self.finish(player, request_url, attempts, this, None);
                    }
                    let delay = backoff(attempts, config.backoff_base, config.backoff_max);
                    tracing::debug!(player = %player, attempt = attempts, status = ?status, error = ?this.verdict.error, delay = ?delay, "retrying");
                    last = Some(this);
                    tokio::time::sleep(delay).await;
                }
                Retry::After(told) => {
                    let wait = told.unwrap_or_else(|| {
                        backoff(attempts, config.backoff_base, config.backoff_max)
                    });
                    if told.is_some() {
                        throttle.pause_until(deadline(wait.min(MAX_PAUSE)));
                    }
                    let until_ms = add_ms(fetched_at, wait);
                    if attempts >= config.max_attempts || wait > config.max_retry_after {
                        tracing::warn!(player = %player, attempts, wait = ?wait, "rate limited; giving up for now");
                        return self.finish(player, request_url, attempts, this, Some(until_ms));
                    }
                    tracing::debug!(player = %player, attempt = attempts, status = ?status, wait = ?wait, "rate limited; waiting as told");
                    last = Some(this);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn fetch_replay(
        &self,
        player: &PlayerId,
        request_url: String,
        dir: &ReplayDir,
    ) -> ProfileFetch {
        let config = &self.inner.config;
        let Some(answer) = dir.get(player).await else {
            let fetched_at = now_ms();
            let until_ms = self.remember(player, fetched_at, config.not_found_retry);
            return ProfileFetch {
                player_id: player.clone(),
                request_url,
                fetched_at,
                http_status: None,
                outcome: FetchOutcome::NotFound,
                body: None,
                cache: Default::default(),
                error: Some(FetchError::NotRecorded {
                    dir: dir.dir().display().to_string(),
                }),
                attempts: 1,
                next_attempt_at: Some(until_ms),
            };
        };
        let fetched_at = now_ms();
        let verdict = classify(&answer, SystemTime::now(), config.not_found_retry);
        let next_attempt_at = match verdict.retry {
            Retry::After(Some(wait)) => Some(add_ms(fetched_at, wait)),
            _ => None,
        };
        let last = Last {
            status: answer.status,
            answer,
            verdict,
            fetched_at,
        };
        self.finish(player, request_url, 1, last, next_attempt_at)
    }

    /// The result of the last attempt; remembers a not-found.
    fn finish(
        &self,
        player: &PlayerId,
        request_url: String,
        attempts: u32,
        last: Last,
        next_attempt_at: Option<i64>,
    ) -> ProfileFetch {
        let Last {
            status,
            answer,
            verdict,
            fetched_at,
        } = last;
        let next_attempt_at = match verdict.not_found_wait {
            Some(wait) => Some(self.remember(player, fetched_at, wait)),
            None => next_attempt_at,
        };
        tracing::debug!(player = %player, outcome = ?verdict.outcome, attempts, "fetched");
        ProfileFetch {
            player_id: player.clone(),
            request_url,
            fetched_at,
            http_status: status,
            outcome: verdict.outcome,
            body: verdict.body,
            cache: answer.cache,
            error: verdict.error,
            attempts,
            next_attempt_at,
        }
    }

    /// Ended by a shared pause longer than the client waits.
    fn paused(
        &self,
        player: &PlayerId,
        request_url: String,
        attempts: u32,
        last: Option<Last>,
        until_ms: i64,
    ) -> ProfileFetch {
        let mut fetch = match last {
            Some(last) => self.finish(player, request_url, attempts, last, None),
            None => ProfileFetch {
                player_id: player.clone(),
                request_url,
                fetched_at: now_ms(),
                http_status: None,
                outcome: FetchOutcome::RateLimited,
                body: None,
                cache: Default::default(),
                error: None,
                attempts,
                next_attempt_at: None,
            },
        };
        fetch.outcome = FetchOutcome::RateLimited;
        fetch.error = Some(FetchError::Paused { until_ms });
        fetch.next_attempt_at = Some(until_ms);
        fetch
    }

    /// Remembers a 404 answered at `fetched_at` for `wait`; returns the time it ends, in
    /// milliseconds since the epoch.
    fn remember(&self, player: &PlayerId, fetched_at: i64, wait: Duration) -> i64 {
        let until_ms = add_ms(fetched_at, wait);
        let entry = NotBefore {
            deadline: deadline(wait),
            until_ms,
        };
        let mut memory = self
            .inner
            .not_found
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if memory.len() >= SWEEP_AT {
            let now = Instant::now();
            memory.retain(|_, nb| nb.deadline > now);
        }
        memory.insert(player.clone(), entry);
        until_ms
    }

    /// The remembered 404 of this player, if it still holds.
    fn remembered(&self, player: &PlayerId) -> Option<NotBefore> {
        let mut memory = self
            .inner
            .not_found
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let nb = *memory.get(player)?;
        if nb.deadline > Instant::now() {
            Some(nb)
        } else {
            memory.remove(player);
            None
        }
    }
}

/// `{base}/players/{id}`.
fn live_url(base: &Url, player: &PlayerId) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect(
            "ClientConfig::validate lets only http(s) urls through, and they always have a path",
        )
        .pop_if_empty()
        .push("players")
        .push(player.as_str());
    url
}

/// `now + wait` on tokio's clock, far in the future rather than overflowing.
fn deadline(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Exponential backoff with jitter: `base · 2^(attempt-1)`, capped at `max`, then a random wait
/// between half of it and all of it.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    let capped = base.saturating_mul(factor).min(max);
    let half = capped / 2;
    half + (capped - half).mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        for _ in 0..100 {
            let d1 = backoff(1, base, max);
            assert!(d1 >= Duration::from_millis(250) && d1 <= base);
            let d3 = backoff(3, base, max);
            assert!(d3 >= Duration::from_secs(1) && d3 <= Duration::from_secs(2));
            let d40 = backoff(40, base, max);
            assert!(d40 >= Duration::from_secs(15) && d40 <= max);
        }
    }

    #[test]
    fn a_live_source_without_a_path_is_refused_before_any_fetch() {
        let mailto = Url::parse("mailto:someone@example.com").unwrap();
        let err = OverfastClient::new(ClientConfig::new(Source::Live(mailto))).unwrap_err();
        assert!(
            matches!(err, ConfigError::UnsupportedScheme { ref scheme, .. } if scheme == "mailto"),
            "{err:?}"
        );
    }

    #[test]
    fn urls() {
        let base = Url::parse("https://example.com/api/").unwrap();
        let id = PlayerId::parse("Jöhn#1234").unwrap();
        assert_eq!(
            live_url(&base, &id).as_str(),
            "https://example.com/api/players/J%C3%B6hn-1234"
        );
        let base = Url::parse("https://overfast-api.tekrop.fr").unwrap();
        assert_eq!(
            live_url(&base, &PlayerId::parse("소녀#21").unwrap()).as_str(),
            format!(
                "https://overfast-api.tekrop.fr/players/{}",
                PlayerId::parse("소녀#21").unwrap().url_path_segment()
            )
        );
    }
}
