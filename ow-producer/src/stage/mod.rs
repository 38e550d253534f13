//! The running stage: one task reads requests (and, on the scheduling instance, views), starts
//! fetches, writes raw events and dead letters, commits, and refreshes tracked players. Fetches
//! and writes run as tasks of their own; the stage's task owns every piece of state, so nothing
//! but the tracked-player book (shared with the handle for reading) needs a lock.
//!
//! One file per job:
//!
//! | file | job |
//! |---|---|
//! | `startup.rs` | [`start`]: topics, clients, the tracked-player state; [`run`] until shutdown |
//! | `event_loop.rs` | the stage's task: what woke it, and what it does about it |
//! | `decode.rs` | from a record of `ow.player-requests` to a request the producer can answer |
//! | `fetch_job.rs` | one fetch and the write of its raw event |
//! | `handle.rs` | [`ProducerHandle`]: pause, resume, metrics, close, abort |
//!
//! This file holds the state they share.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ow_domain::FetchOutcome;
use ow_domain::PlayerRequest;
use ow_domain::battletag::PlayerId;
use ow_stream_core::client::{Consumer, Producer};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::error::ProducerError;
use crate::metrics::Metrics;
use crate::offsets::Offsets;
use crate::overfast::OverfastClient;
use crate::topics::Topics;
use crate::tracking::{Book, StateFile};

mod decode;
mod event_loop;
mod fetch_job;
mod handle;
mod startup;

pub use handle::ProducerHandle;
pub use startup::{run, start};

/// How long to wait before reading again after a consumer error.
const CONSUMER_RETRY: Duration = Duration::from_millis(500);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the handle tells the stage.
#[derive(Clone, Copy, Debug, Default)]
struct Control {
    paused: bool,
    closing: bool,
}

/// A fetch in flight, and the requests it will answer.
struct Flight {
    /// Ids of the requests answered, read by the fetch task just before it writes the event.
    request_ids: Arc<Mutex<Vec<String>>>,
    /// Offsets of the requests answered.
    offsets: Vec<(i32, i64)>,
    /// Started by the schedule.
    scheduled: bool,
}

/// A finished task.
enum Done {
    Fetched {
        player: PlayerId,
        outcome: FetchOutcome,
        wait_ms: Option<i64>,
        result: Result<(), ProducerError>,
    },
    DeadLettered {
        partition: i32,
        offset: i64,
        result: Result<(), ProducerError>,
    },
    /// The handle aborted the stage while the task ran: nothing was written.
    Halted,
}

/// The consumer that feeds views into the book, on the scheduling instance.
struct Tracker {
    consumer: Consumer<String, PlayerRequest>,
    group: String,
    /// Per partition: the next offset to read, and the last one committed.
    positions: BTreeMap<i32, (i64, i64)>,
}

/// The stage's state, owned by its task.
struct Stage {
    clock: Arc<dyn Clock>,
    client: OverfastClient,
    producer: Producer,
    topics: Topics,
    application_id: String,
    dead_letter_topic: Arc<str>,
    requests: Consumer<String, PlayerRequest>,
    tracker: Option<Tracker>,
    state_file: Option<StateFile>,
    book: Arc<Mutex<Book>>,
    offsets: Offsets,
    in_flight: HashMap<PlayerId, Flight>,
    tasks: JoinSet<Done>,
    metrics: Arc<Metrics>,
    halted: Arc<AtomicBool>,
    schedule_limit: usize,
    max_pending: usize,
    commit_interval: Duration,
    check_interval: Duration,
    shutdown_grace: Duration,
}
