//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use ow_stream_log::{Clock, FsyncPolicy, Log, LogOptions, ManualClock, NewRecord, StoredRecord};

/// Options for tests: no background thread, chosen fsync policy.
pub fn opts(fsync: FsyncPolicy) -> LogOptions {
    LogOptions::default()
        .with_fsync(fsync)
        .with_maintenance_interval(None)
        .with_index_interval_bytes(256)
}

/// Options with a manual clock starting at `now`.
pub fn opts_with_clock(fsync: FsyncPolicy, now: i64) -> (LogOptions, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    (opts(fsync).with_clock(dyn_clock), clock)
}

pub fn open(dir: &Path) -> Log {
    Log::open(dir, opts(FsyncPolicy::Never)).expect("open log")
}

/// A record with key `k`, value `v`, timestamp `ts`.
pub fn rec(k: &str, v: &str, ts: i64) -> NewRecord {
    NewRecord::new(Some(k.to_owned()), Some(v.to_owned()), ts)
}

/// A keyless record.
pub fn val(v: &str, ts: i64) -> NewRecord {
    NewRecord::new(None::<String>, Some(v.to_owned()), ts)
}

/// Reads a whole partition from its start.
pub fn read_all(log: &Log, topic: &str, partition: i32) -> Vec<StoredRecord> {
    let (start, end) = log.offsets(topic, partition).expect("offsets");
    let mut out = Vec::new();
    let mut next = start;
    while next < end {
        let batch = log
            .read(topic, partition, next, 1000, 1 << 20)
            .expect("read");
        let Some(last) = batch.last() else { break };
        next = last.offset + 1;
        out.extend(batch);
    }
    out
}

pub fn value_str(r: &StoredRecord) -> Option<String> {
    r.value
        .as_ref()
        .map(|v| String::from_utf8(v.to_vec()).expect("utf-8 value"))
}

pub fn key_str(r: &StoredRecord) -> Option<String> {
    r.key
        .as_ref()
        .map(|v| String::from_utf8(v.to_vec()).expect("utf-8 key"))
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: runs a future to completion on this thread, parking
/// between polls (so the test needs no async runtime).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A small deterministic PRNG (xorshift64*), seeded by the caller.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn seed_from_time() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id())
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}
