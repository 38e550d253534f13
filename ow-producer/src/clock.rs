//! The time the schedule runs on: the system clock, or a [`ManualClock`] a test moves by hand.
//!
//! Every time the producer keeps about players (when they were last asked for, fetched, and
//! may be fetched again) is read from one [`Clock`], so a test can jump ten minutes ahead
//! without waiting and without pausing tokio's clock (which the Kafka client's own timers and
//! the loopback HTTP server could not follow). The raw events keep the OverFast client's
//! wall-clock `fetched_at`; only the schedule uses this clock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time, in milliseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
///
/// ```
/// use ow_producer::clock::{Clock, SystemClock};
///
/// assert!(SystemClock.now_ms() > 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::overfast::now_ms()
    }
}

/// A clock that only moves when told to; clones share the time.
///
/// ```
/// use std::time::Duration;
/// use ow_producer::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// let same = clock.clone();
/// clock.advance(Duration::from_secs(600));
/// assert_eq!(same.now_ms(), 601_000);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start_ms` (milliseconds since the epoch).
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// A clock standing at the current wall-clock time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(SystemClock.now_ms())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(ms))
            });
    }

    /// Sets the clock to `ms` (milliseconds since the epoch).
    pub fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
