//! Keeping a crowd of fetches from flooding OverFast: a concurrency cap (a tokio semaphore), a
//! token bucket (governor, on tokio's clock so paused test time drives it) and a shared pause set
//! by `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::config::{ClientConfig, ConfigError};

/// Governor's clock on tokio time: nanoseconds since the throttle was made.
#[derive(Clone, Debug)]
pub(crate) struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// The gate every live attempt passes.
#[derive(Debug)]
pub(crate) struct Throttle {
    permits: Semaphore,
    bucket: Bucket,
    clock: TokioClock,
    paused_until: Mutex<Option<Instant>>,
}

impl Throttle {
    pub(crate) fn new(config: &ClientConfig) -> Result<Throttle, ConfigError> {
        let invalid = |setting, reason: &str| ConfigError::Invalid {
            setting,
            reason: reason.to_owned(),
        };
        let burst =
            NonZeroU32::new(config.burst).ok_or_else(|| invalid("burst", "must be at least 1"))?;
        let period = Duration::from_secs_f64(1.0 / config.rate_per_second);
        let quota = Quota::with_period(period)
            .ok_or_else(|| invalid("rate_per_second", "too fast"))?
            .allow_burst(burst);
        let clock = TokioClock {
            start: Instant::now(),
        };
        Ok(Throttle {
            permits: Semaphore::new(config.concurrency),
            bucket: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            paused_until: Mutex::new(None),
        })
    }

    /// Waits for a slot (concurrency) and then a token (rate); send at once after this, and keep
    /// the permit until the answer is read.
    pub(crate) async fn admit(&self) -> SemaphorePermit<'_> {
        // The permit comes first: a token taken while queueing for a slot could be spent late,
        // together with others, and break the rate.
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the throttle never closes its semaphore");
        loop {
            match self.bucket.check() {
                Ok(()) => return permit,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
    }

    /// Holds every attempt back until `until` (a `Retry-After`); a later pause wins.
    pub(crate) fn pause_until(&self, until: Instant) {
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// The current pause, if it has not ended.
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        paused.filter(|p| *p > Instant::now())
    }
}
