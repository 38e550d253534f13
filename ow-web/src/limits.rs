//! Rate limits on what reaches upstream: refreshes per player, and player requests (refreshes
//! and look-ups of new players) per client address.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::WebSettings;

/// Checks between two sweeps of the limiters' forgotten keys.
const SWEEP_EVERY: u64 = 1024;

/// Why a request was refused, and when it may be made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limited {
    /// This player was refreshed too recently.
    Player {
        /// Time until the next refresh is allowed.
        retry_after: Duration,
    },
    /// This client made too many requests.
    Client {
        /// Time until the next request is allowed.
        retry_after: Duration,
    },
}

impl Limited {
    /// Time until the next request is allowed.
    pub(crate) fn retry_after(self) -> Duration {
        match self {
            Limited::Player { retry_after } | Limited::Client { retry_after } => retry_after,
        }
    }
}

/// The dashboard's rate limiters.
pub(crate) struct Limits {
    clients: DefaultKeyedRateLimiter<Option<IpAddr>>,
    players: DefaultKeyedRateLimiter<String>,
    views: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    clock: &DefaultClock,
) -> Result<(), Duration> {
    limiter
        .check_key(key)
        .map_err(|not_until| not_until.wait_time_from(clock.now()))
}

impl Limits {
    pub(crate) fn new(settings: &WebSettings) -> Limits {
        let per_player = Quota::with_period(settings.refresh_interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        let per_view = Quota::with_period(settings.view_interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Limits {
            views: DefaultKeyedRateLimiter::keyed(per_view),
            clients: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                settings.client_requests_per_minute,
            )),
            players: DefaultKeyedRateLimiter::keyed(per_player),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.clients.retain_recent();
            self.players.retain_recent();
            self.views.retain_recent();
        }
    }

    /// Takes one request of `client` (`None`: address unknown, all such clients share one
    /// budget).
    pub(crate) fn client(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        self.sweep();
        check(&self.clients, &client, &self.clock)
            .map_err(|retry_after| Limited::Client { retry_after })
    }

    /// Takes a view request of `player_id` (no client budget: the producer answers views of
    /// fresh data without fetching).
    pub(crate) fn view(&self, player_id: &str) -> Result<(), Duration> {
        self.sweep();
        check(&self.views, &player_id.to_owned(), &self.clock)
    }

    /// Takes a refresh of `player_id` by `client`: the player's limit first (refused refreshes
    /// do not use the client's budget).
    pub(crate) fn refresh(&self, player_id: &str, client: Option<IpAddr>) -> Result<(), Limited> {
        self.sweep();
        check(&self.players, &player_id.to_owned(), &self.clock)
            .map_err(|retry_after| Limited::Player { retry_after })?;
        self.client(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        let settings = WebSettings::default()
            .with_client_requests_per_minute(NonZeroU32::new(2).unwrap())
            .with_refresh_interval(Duration::from_secs(3600));
        let limits = Limits::new(&settings);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!(limits.client(a).is_ok());
        assert!(limits.client(a).is_ok());
        assert!(matches!(limits.client(a), Err(Limited::Client { .. })));
        assert!(limits.client(b).is_ok(), "budgets are per client");
        assert!(limits.refresh("P-1", b).is_ok());
        let refused = limits.refresh("P-1", b).unwrap_err();
        assert!(matches!(refused, Limited::Player { .. }));
        assert!(refused.retry_after() > Duration::from_secs(3000));
        assert!(matches!(
            limits.refresh("P-2", b),
            Err(Limited::Client { .. })
        ));
        assert!(limits.view("P-1").is_ok());
        assert!(limits.view("P-1").is_err());
        assert!(limits.view("P-2").is_ok());
    }
}
