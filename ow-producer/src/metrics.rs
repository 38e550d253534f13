//! What the producer stage counts about itself, for the dashboard's pipeline page.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ow_domain::FetchOutcome;
use ow_stream_core::metrics::Counter;
use serde::Serialize;

/// Fetches by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FetchCounts {
    /// Public profiles.
    pub ok: u64,
    /// Private profiles.
    pub private: u64,
    /// Players OverFast does not know (or still remembers as unknown).
    pub not_found: u64,
    /// Fetches that ended rate limited.
    pub rate_limited: u64,
    /// Fetches that failed (5xx, timeouts, unreadable or oversized answers).
    pub upstream_error: u64,
}

impl FetchCounts {
    /// Fetches of one outcome.
    ///
    /// ```
    /// use ow_producer::FetchCounts;
    /// use ow_domain::FetchOutcome;
    ///
    /// assert_eq!(FetchCounts::default().get(FetchOutcome::Ok), 0);
    /// ```
    pub fn get(&self, outcome: FetchOutcome) -> u64 {
        match outcome {
            FetchOutcome::Ok => self.ok,
            FetchOutcome::Private => self.private,
            FetchOutcome::NotFound => self.not_found,
            FetchOutcome::RateLimited => self.rate_limited,
            FetchOutcome::UpstreamError => self.upstream_error,
        }
    }

    /// Fetches of every outcome.
    pub fn total(&self) -> u64 {
        self.ok + self.private + self.not_found + self.rate_limited + self.upstream_error
    }
}

/// A copy of the producer's counters and gauges at one moment
/// ([`ProducerHandle::metrics`](crate::ProducerHandle::metrics)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records taken from the requests topic, good or bad.
    pub requests_consumed: u64,
    /// Requests done with: answered by a raw event that was acknowledged, answered by fresh
    /// data, or dead-lettered. Their offsets are committed at the next commit.
    pub requests_answered: u64,
    /// Requests that joined a fetch already in flight for their player.
    pub requests_coalesced: u64,
    /// `view` requests answered without a fetch because the last answer was still fresh.
    pub requests_fresh: u64,
    /// Requests written to the dead-letter topic.
    pub dead_letters: u64,
    /// Finished fetches, by outcome (each wrote one raw event).
    pub fetches: FetchCounts,
    /// Raw events acknowledged by the backend.
    pub raw_events_written: u64,
    /// Finished fetches the refresh schedule made (included in `fetches`).
    pub scheduled_fetches: u64,
    /// Times the schedule looked for players to refresh.
    pub schedule_passes: u64,
    /// Commits of request offsets.
    pub commits: u64,
    /// Fetches in flight now.
    pub in_flight: u64,
    /// Requests read and not done with yet.
    pub pending_requests: u64,
    /// Players refreshed on the schedule now.
    pub tracked: u64,
    /// Whether the stage is paused.
    pub paused: bool,
}

/// The live counters, shared by the stage and its handle.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) requests_consumed: Counter,
    pub(crate) requests_answered: Counter,
    pub(crate) requests_coalesced: Counter,
    pub(crate) requests_fresh: Counter,
    pub(crate) dead_letters: Counter,
    pub(crate) ok: Counter,
    pub(crate) private: Counter,
    pub(crate) not_found: Counter,
    pub(crate) rate_limited: Counter,
    pub(crate) upstream_error: Counter,
    pub(crate) raw_events_written: Counter,
    pub(crate) scheduled_fetches: Counter,
    pub(crate) schedule_passes: Counter,
    pub(crate) commits: Counter,
    pub(crate) in_flight: AtomicU64,
    pub(crate) pending_requests: AtomicU64,
    pub(crate) tracked: AtomicU64,
    pub(crate) paused: AtomicBool,
}

impl Metrics {
    pub(crate) fn fetched(&self, outcome: FetchOutcome) {
        match outcome {
            FetchOutcome::Ok => self.ok.incr(),
            FetchOutcome::Private => self.private.incr(),
            FetchOutcome::NotFound => self.not_found.incr(),
            FetchOutcome::RateLimited => self.rate_limited.incr(),
            FetchOutcome::UpstreamError => self.upstream_error.incr(),
        }
    }

    pub(crate) fn set_gauge(gauge: &AtomicU64, value: usize) {
        gauge.store(u64::try_from(value).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ProducerMetrics {
        ProducerMetrics {
            requests_consumed: self.requests_consumed.get(),
            requests_answered: self.requests_answered.get(),
            requests_coalesced: self.requests_coalesced.get(),
            requests_fresh: self.requests_fresh.get(),
            dead_letters: self.dead_letters.get(),
            fetches: FetchCounts {
                ok: self.ok.get(),
                private: self.private.get(),
                not_found: self.not_found.get(),
                rate_limited: self.rate_limited.get(),
                upstream_error: self.upstream_error.get(),
            },
            raw_events_written: self.raw_events_written.get(),
            scheduled_fetches: self.scheduled_fetches.get(),
            schedule_passes: self.schedule_passes.get(),
            commits: self.commits.get(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            pending_requests: self.pending_requests.load(Ordering::Relaxed),
            tracked: self.tracked.load(Ordering::Relaxed),
            paused: self.paused.load(Ordering::Relaxed),
        }
    }
}
