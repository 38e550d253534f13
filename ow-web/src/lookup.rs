//! Look-ups in flight: which players the dashboard asked the pipeline for, and what a page
//! should say about a player while (and after) it waits.
//!
//! A request is answered when the player's profile changes: it appears (a new player), or its
//! latest fetch time differs from the one seen when the request was written. Comparing with the
//! previous fetch, rather than with the request's time, is immune to clock skew between the web
//! and the producer.

use std::collections::HashMap;
use std::time::Duration;

use ow_domain::{FetchOutcome, PlayerProfile, RequestOrigin};
use parking_lot::Mutex;
use serde::Serialize;

/// A request written and not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The request id.
    pub(crate) request_id: String,
    /// Why it was asked.
    pub(crate) origin: RequestOrigin,
    /// When it was written, in milliseconds since the epoch.
    pub(crate) requested_at: i64,
    /// `status.fetched_at` of the profile when the request was written (`None`: no profile).
    pub(crate) baseline: Option<i64>,
}

impl Pending {
    /// Whether `profile` answers this request.
    pub(crate) fn answered_by(&self, profile: Option<&PlayerProfile>) -> bool {
        profile.is_some_and(|p| self.baseline != Some(p.status.fetched_at))
    }
}

/// The requests in flight, by player id, bounded.
pub(crate) struct LookupTracker {
    pending: Mutex<HashMap<String, Pending>>,
    capacity: usize,
}

impl LookupTracker {
    pub(crate) fn new(capacity: usize) -> LookupTracker {
        LookupTracker {
            pending: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The request in flight for `player_id`.
    pub(crate) fn get(&self, player_id: &str) -> Option<Pending> {
        self.pending.lock().get(player_id).cloned()
    }

    /// Records a request, forgetting the oldest one when full.
    pub(crate) fn insert(&self, player_id: &str, pending: Pending) {
        let mut map = self.pending.lock();
        if !map.contains_key(player_id) && map.len() >= self.capacity {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.requested_at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(player_id.to_owned(), pending);
    }

    /// Forgets the request for `player_id` if it is still `request_id`.
    pub(crate) fn resolve(&self, player_id: &str, request_id: &str) {
        let mut map = self.pending.lock();
        if map
            .get(player_id)
            .is_some_and(|p| p.request_id == request_id)
        {
            map.remove(player_id);
        }
    }

    /// How many requests are in flight.
    pub(crate) fn len(&self) -> usize {
        self.pending.lock().len()
    }
}

/// What the page of a player is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LookupState {
    /// Nothing known and nothing asked.
    Unknown,
    /// Asked, waiting for the first answer.
    Pending,
    /// Asked, and no answer came within the time-out.
    TimedOut,
    /// The latest fetch succeeded.
    Ready,
    /// The profile is private.
    Private,
    /// OverFast knows no such player.
    NotFound,
    /// OverFast (or Blizzard) is rate-limiting.
    RateLimited,
    /// OverFast (or Blizzard) failed.
    UpstreamError,
}

impl LookupState {
    /// The snake-case name used in JSON and `data-` attributes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LookupState::Unknown => "unknown",
            LookupState::Pending => "pending",
            LookupState::TimedOut => "timed_out",
            LookupState::Ready => "ready",
            LookupState::Private => "private",
            LookupState::NotFound => "not_found",
            LookupState::RateLimited => "rate_limited",
            LookupState::UpstreamError => "upstream_error",
        }
    }
}

/// A request still in flight, as a page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Waiting {
    /// When it was written, in milliseconds since the epoch.
    pub(crate) requested_at: i64,
    /// When the page stops waiting.
    pub(crate) deadline: i64,
    /// Whether the deadline has passed.
    pub(crate) timed_out: bool,
    /// `search`, `refresh`...
    pub(crate) origin: RequestOrigin,
}

/// Everything a page (or the status endpoint) says about a player's look-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LookupStatus {
    /// What the page is about.
    pub(crate) state: LookupState,
    /// Whether stats are materialized for the player.
    pub(crate) has_stats: bool,
    /// A request in flight.
    pub(crate) waiting: Option<Waiting>,
    /// When the latest fetch ended, in milliseconds since the epoch.
    pub(crate) fetched_at: Option<i64>,
    /// When OverFast will be asked again (not found, rate-limited, failed).
    pub(crate) retry_at: Option<i64>,
    /// HTTP status of the latest fetch.
    pub(crate) http_status: Option<i32>,
    /// What went wrong, from the latest fetch.
    pub(crate) message: Option<String>,
    /// Changes whenever the page would change: the static script reloads when it does.
    pub(crate) version: String,
}

impl LookupStatus {
    /// Whether the page should keep polling (something is in flight and not timed out).
    pub(crate) fn polling(&self) -> bool {
        self.waiting.as_ref().is_some_and(|w| !w.timed_out)
    }
}

/// What to say about a player with `profile`, whether stats are materialized, and the request
/// in flight (if any), at `now`.
///
/// A request counts as in flight until it is answered *and*, when the answer is a successful
/// fetch, its stats have arrived too (they come on another topic).
pub(crate) fn status(
    profile: Option<&PlayerProfile>,
    has_stats: bool,
    pending: Option<&Pending>,
    now: i64,
    timeout: Duration,
) -> LookupStatus {
    let answered = pending.is_none_or(|p| p.answered_by(profile));
    let outcome = profile.map(|p| p.status.outcome);
    let complete = answered && (outcome != Some(FetchOutcome::Ok) || has_stats);
    let waiting = match pending {
        Some(p) if !complete => {
            let deadline = p
                .requested_at
                .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
            Some(Waiting {
                requested_at: p.requested_at,
                deadline,
                timed_out: now >= deadline,
                origin: p.origin,
            })
        }
        _ => None,
    };
    let state = match (outcome, &waiting) {
        (Some(FetchOutcome::Ok), Some(w)) if !has_stats => pending_state(w),
        (Some(FetchOutcome::Ok), _) => LookupState::Ready,
        (Some(FetchOutcome::Private), _) => LookupState::Private,
        (Some(FetchOutcome::NotFound), _) => LookupState::NotFound,
        (Some(FetchOutcome::RateLimited), _) => LookupState::RateLimited,
        (Some(FetchOutcome::UpstreamError), _) => LookupState::UpstreamError,
        (None, Some(w)) => pending_state(w),
        (None, None) => LookupState::Unknown,
    };
    let fetch = profile.map(|p| &p.status);
    let version = format!(
        "{}:{}:{}:{}",
        state.as_str(),
        has_stats,
        waiting
            .as_ref()
            .map_or("idle", |w| if w.timed_out { "late" } else { "waiting" }),
        fetch.map_or(0, |f| f.fetched_at)
    );
    LookupStatus {
        state,
        has_stats,
        waiting,
        fetched_at: fetch.map(|f| f.fetched_at),
        retry_at: fetch.and_then(|f| f.next_check_at),
        http_status: fetch.and_then(|f| f.http_status),
        message: fetch.and_then(|f| f.message.clone()),
        version,
    }
}

fn pending_state(waiting: &Waiting) -> LookupState {
    if waiting.timed_out {
        LookupState::TimedOut
    } else {
        LookupState::Pending
    }
}

#[cfg(test)]
mod tests {
    use ow_domain::FetchStatus;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn profile(outcome: FetchOutcome, fetched_at: i64) -> PlayerProfile {
        PlayerProfile {
            player_id: "Someone-1234".into(),
            username: Some("Someone".into()),
            avatar: None,
            namecard: None,
            title: None,
            endorsement: None,
            competitive: vec![],
            last_updated_at: None,
            profile_fetched_at: Some(fetched_at),
            status: FetchStatus {
                outcome,
                fetched_at,
                http_status: Some(200),
                message: None,
                next_check_at: Some(fetched_at + 600_000),
            },
        }
    }

    fn pending(requested_at: i64, baseline: Option<i64>) -> Pending {
        Pending {
            request_id: "r".into(),
            origin: RequestOrigin::Search,
            requested_at,
            baseline,
        }
    }

    #[test]
    fn unknown_pending_timed_out() {
        let s = status(None, false, None, 0, TIMEOUT);
        assert_eq!(s.state, LookupState::Unknown);
        assert!(!s.polling());
        let p = pending(1_000, None);
        let s = status(None, false, Some(&p), 2_000, TIMEOUT);
        assert_eq!(s.state, LookupState::Pending);
        assert!(s.polling());
        assert_eq!(s.waiting.as_ref().map(|w| w.deadline), Some(61_000));
        let late = status(None, false, Some(&p), 61_000, TIMEOUT);
        assert_eq!(late.state, LookupState::TimedOut);
        assert!(!late.polling());
        assert_ne!(s.version, late.version);
    }

    #[test]
    fn answers() {
        let p = pending(1_000, None);
        // A successful fetch whose stats have not arrived yet: still pending.
        let ok = profile(FetchOutcome::Ok, 5_000);
        let s = status(Some(&ok), false, Some(&p), 6_000, TIMEOUT);
        assert_eq!(s.state, LookupState::Pending);
        let s = status(Some(&ok), true, Some(&p), 6_000, TIMEOUT);
        assert_eq!(s.state, LookupState::Ready);
        assert!(s.waiting.is_none());
        for (outcome, state) in [
            (FetchOutcome::Private, LookupState::Private),
            (FetchOutcome::NotFound, LookupState::NotFound),
            (FetchOutcome::RateLimited, LookupState::RateLimited),
            (FetchOutcome::UpstreamError, LookupState::UpstreamError),
        ] {
            let s = status(
                Some(&profile(outcome, 5_000)),
                false,
                Some(&p),
                6_000,
                TIMEOUT,
            );
            assert_eq!(s.state, state);
            assert_eq!(s.retry_at, Some(605_000));
            assert!(s.waiting.is_none());
        }
    }

    #[test]
    fn refresh_waits_for_a_new_fetch() {
        let old = profile(FetchOutcome::Ok, 5_000);
        let p = pending(10_000, Some(5_000));
        let s = status(Some(&old), true, Some(&p), 11_000, TIMEOUT);
        assert_eq!(s.state, LookupState::Ready);
        assert!(s.polling());
        let new = profile(FetchOutcome::Ok, 12_000);
        let s = status(Some(&new), true, Some(&p), 13_000, TIMEOUT);
        assert!(s.waiting.is_none());
        let failed = profile(FetchOutcome::RateLimited, 12_000);
        let s = status(Some(&failed), true, Some(&p), 13_000, TIMEOUT);
        assert_eq!(s.state, LookupState::RateLimited);
        assert!(s.has_stats);
    }

    #[test]
    fn tracker_is_bounded() {
        let t = LookupTracker::new(2);
        t.insert("a", pending(1, None));
        t.insert("b", pending(2, None));
        t.insert("c", pending(3, None));
        assert_eq!(t.len(), 2);
        assert!(t.get("a").is_none());
        t.resolve("b", "other");
        assert!(t.get("b").is_some());
        t.resolve("b", "r");
        assert!(t.get("b").is_none());
    }
}
