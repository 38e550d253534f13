//! The running stage: one task reads requests (and, on the scheduling instance, views), starts
//! fetches, writes raw events and dead letters, commits, and refreshes tracked players. Fetches
//! and writes run as tasks of their own; the stage's task owns every piece of state, so nothing
//! but the tracked-player book (shared with the handle for reading) needs a lock.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ow_schemas::{FetchOutcome, PlayerRequest, RequestOrigin};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::registry::{RegistryError, SchemaRegistry};
use ow_stream_core::serde::{SerdeContext, SerdeError, deserialize_loading};
use ow_stream_core::{Headers, RawRecord, Record, RecordMetadata, Topic};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::battletag::PlayerId;
use crate::clock::Clock;
use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::metrics::{Metrics, ProducerMetrics};
use crate::offsets::Offsets;
use crate::overfast::OverfastClient;
use crate::topics::{Topics, dead_letter_headers as dlq, raw_event_headers as raw_headers};
use crate::tracking::{Book, StateFile, TrackedPlayer, refetch_wait_ms};

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

/// What woke the stage.
enum Event {
    Control { handle_alive: bool },
    Request(Option<Result<RawRecord, ow_stream_core::Error>>),
    View(Option<Result<RawRecord, ow_stream_core::Error>>),
    Done(Option<Result<Done, JoinError>>),
    Commit,
    Schedule,
}

/// Why a request could not be decoded.
struct DecodeError {
    part: &'static str,
    source: SerdeError,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode the {}: {}", self.part, self.source)
    }
}

/// Whether a decoding error is the registry's trouble rather than the record's.
fn is_transient(e: &SerdeError) -> bool {
    match e {
        SerdeError::Registry(r) => match r {
            RegistryError::Unreachable { .. }
            | RegistryError::BadResponse { .. }
            | RegistryError::Io { .. }
            | RegistryError::Locked { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        },
        _ => false,
    }
}

async fn decode_request(
    topic: &Topic<String, PlayerRequest>,
    raw: &RawRecord,
) -> Result<(String, PlayerRequest), DecodeError> {
    let key = deserialize_loading(
        &**topic.key_serde(),
        SerdeContext::key(topic.name()),
        raw.key.as_deref().unwrap_or_default(),
    )
    .await
    .map_err(|source| DecodeError {
        part: "key",
        source,
    })?;
    let Some(value) = raw.value.as_deref() else {
        return Err(DecodeError {
            part: "value",
            source: SerdeError::Malformed {
                format: "record",
                reason: "a tombstone (null value)".into(),
            },
        });
    };
    let value = deserialize_loading(
        &**topic.value_serde(),
        SerdeContext::value(topic.name()),
        value,
    )
    .await
    .map_err(|source| DecodeError {
        part: "value",
        source,
    })?;
    Ok((key, value))
}

/// The player a request names, if the request is one the producer can answer.
fn validate(key: &str, request: &PlayerRequest) -> Result<PlayerId, String> {
    let player = PlayerId::parse(&request.player_id).map_err(|e| e.to_string())?;
    match PlayerId::parse(key) {
        Ok(k) if k == player => Ok(player),
        _ => Err(format!(
            "record key {key:?} does not name the request's player {player}"
        )),
    }
}

/// One fetch and the write of its raw event.
struct FetchJob {
    client: OverfastClient,
    producer: Producer,
    topic: Topic<String, ow_schemas::RawPlayerProfile>,
    player: PlayerId,
    request_id: String,
    request_ids: Arc<Mutex<Vec<String>>>,
    scheduled: bool,
    halted: Arc<AtomicBool>,
}

impl FetchJob {
    async fn run(self) -> Done {
        let fetch = self.client.fetch(&self.player).await;
        // Aborted as a crash would: a fetch that ends afterwards writes nothing.
        if self.halted.load(Ordering::SeqCst) {
            return Done::Halted;
        }
        let event = fetch.into_raw(self.request_id);
        let wait_ms = refetch_wait_ms(&event);
        let mut headers = Headers::new();
        for id in lock(&self.request_ids).iter() {
            headers = headers.with(raw_headers::REQUEST_ID, id.clone());
        }
        headers = headers.with(
            raw_headers::TRIGGER,
            if self.scheduled {
                raw_headers::TRIGGER_SCHEDULE
            } else {
                raw_headers::TRIGGER_REQUEST
            },
        );
        let timestamp = event.fetched_at;
        let mut record =
            Record::new(self.player.to_string(), event, timestamp).with_headers(headers);
        let delivery = |source| ProducerError::Delivery {
            topic: self.topic.name().to_owned(),
            key: self.player.to_string(),
            source: Box::new(source),
        };
        let result = match self.producer.send_record(&self.topic, &record).await {
            Ok(_) => Ok(()),
            // Larger than the backend takes (librdkafka's `MessageSizeTooLarge`, the local
            // log's batch limit).
            Err(e @ ow_stream_core::Error::RecordTooLarge { .. }) => {
                // The answer cannot be kept: say so in an event the topic takes, rather than
                // stopping on a player whose profile will never fit.
                let len = record.value.body.as_ref().map_or(0, String::len);
                tracing::warn!(player = %self.player, bytes = len, error = %e,
                    "the answer is too large for the raw topic; writing the event without its body");
                record.value.body = None;
                record.value.outcome = FetchOutcome::UpstreamError;
                record.value.error = Some(format!(
                    "the answer ({len} bytes) is larger than topic {} accepts: {e}",
                    self.topic.name()
                ));
                self.producer
                    .send_record(&self.topic, &record)
                    .await
                    .map(|_| ())
                    .map_err(delivery)
            }
            Err(e) => Err(delivery(e)),
        };
        Done::Fetched {
            player: self.player,
            outcome: record.value.outcome,
            wait_ms,
            result,
        }
    }
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

async fn next_view(tracker: Option<&Tracker>) -> Option<Result<RawRecord, ow_stream_core::Error>> {
    match tracker {
        Some(t) => t.consumer.next_raw().await,
        None => std::future::pending().await,
    }
}

impl Stage {
    async fn run(mut self, mut control: watch::Receiver<Control>) -> Result<(), ProducerError> {
        let mut commit_tick = tokio::time::interval(self.commit_interval);
        commit_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut schedule_tick = tokio::time::interval(self.check_interval);
        schedule_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let served = self
            .serve(&mut control, &mut commit_tick, &mut schedule_tick)
            .await;
        let result = match served {
            Ok(()) => self.drain().await,
            Err(error) => {
                tracing::error!(%error, "the producer stops");
                self.tasks.abort_all();
                // Whatever was answered before the failure is still worth committing.
                if let Err(e) = self.commit().await {
                    tracing::warn!(error = %e, "last commit after the failure failed too");
                }
                Err(error)
            }
        };
        // Closing a Kafka consumer waits for its group to let it go: not on a runtime thread.
        let Stage {
            requests, tracker, ..
        } = self;
        let _ = tokio::task::spawn_blocking(move || {
            drop(requests);
            drop(tracker);
        })
        .await;
        result
    }

    async fn serve(
        &mut self,
        control: &mut watch::Receiver<Control>,
        commit_tick: &mut tokio::time::Interval,
        schedule_tick: &mut tokio::time::Interval,
    ) -> Result<(), ProducerError> {
        // A record read at the moment the stage was paused waits here for the resume.
        let mut stashed: Option<Event> = None;
        loop {
            let Control { paused, closing } = *control.borrow_and_update();
            if closing {
                return Ok(());
            }
            if !paused && let Some(event) = stashed.take() {
                self.handle(event).await?;
                continue;
            }
            let read_requests =
                !paused && stashed.is_none() && self.offsets.pending() < self.max_pending;
            let read_views = !paused && stashed.is_none() && self.tracker.is_some();
            // Biased: a pause, then finished work and the timers (each ready once per
            // interval), win over new work; requests before views.
            let event = tokio::select! {
                biased;
                changed = control.changed() => Event::Control { handle_alive: changed.is_ok() },
                done = self.tasks.join_next(), if !self.tasks.is_empty() => Event::Done(done),
                _ = commit_tick.tick() => Event::Commit,
                _ = schedule_tick.tick(), if !paused => Event::Schedule,
                next = self.requests.next_raw(), if read_requests => Event::Request(next),
                next = next_view(self.tracker.as_ref()), if read_views => Event::View(next),
            };
            match event {
                Event::Control { handle_alive } => {
                    if !handle_alive {
                        return Ok(());
                    }
                }
                event @ (Event::Request(_) | Event::View(_)) if control.borrow().paused => {
                    stashed = Some(event);
                }
                event => self.handle(event).await?,
            }
        }
    }

    async fn handle(&mut self, event: Event) -> Result<(), ProducerError> {
        match event {
            Event::Control { .. } | Event::Done(None) => {}
            Event::Request(next) => self.on_request(next).await?,
            Event::View(next) => self.on_view(next).await?,
            Event::Done(Some(done)) => self.on_done(done)?,
            Event::Commit => self.commit().await?,
            Event::Schedule => self.schedule(),
        }
        Ok(())
    }

    /// Lets the fetches in flight finish (within the grace period), then commits what is done,
    /// even when one of them failed.
    async fn drain(&mut self) -> Result<(), ProducerError> {
        let deadline = Instant::now() + self.shutdown_grace;
        let mut failure = None;
        while !self.tasks.is_empty() {
            let done = tokio::select! {
                done = self.tasks.join_next() => done,
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        in_flight = self.tasks.len(),
                        "closing: dropping the fetches still in flight; their requests are \
                         answered after the next start"
                    );
                    break;
                }
            };
            if let Some(done) = done
                && let Err(error) = self.on_done(done)
            {
                failure.get_or_insert(error);
            }
        }
        self.tasks.abort_all();
        let committed = self.commit().await;
        match failure {
            Some(error) => Err(error),
            None => committed,
        }
    }

    fn update_pending(&self) {
        Metrics::set_gauge(&self.metrics.pending_requests, self.offsets.pending());
    }

    async fn on_request(
        &mut self,
        next: Option<Result<RawRecord, ow_stream_core::Error>>,
    ) -> Result<(), ProducerError> {
        let raw = match next {
            None => {
                return Err(ProducerError::Stopped {
                    reason: "the requests consumer ended".into(),
                });
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "reading requests failed; trying again");
                tokio::time::sleep(CONSUMER_RETRY).await;
                return Ok(());
            }
            Some(Ok(raw)) => raw,
        };
        self.metrics.requests_consumed.incr();
        self.offsets.read(raw.partition, raw.offset);
        self.update_pending();
        match decode_request(&self.topics.requests, &raw).await {
            Err(e) if is_transient(&e.source) => {
                return Err(ProducerError::Schema {
                    schema: "ow.player-requests",
                    source: e.source,
                });
            }
            Err(e) => self.dead_letter(raw, "deserialize", None, e.to_string()),
            Ok((key, request)) => match validate(&key, &request) {
                Err(reason) => {
                    self.dead_letter(raw, "process", Some(dlq::VALIDATE_NODE), reason);
                }
                Ok(player) => self.answer(player, request, raw.partition, raw.offset),
            },
        }
        Ok(())
    }

    /// Answers a valid request: joins the fetch in flight, answers a `view` of fresh data at
    /// once, or starts a fetch.
    fn answer(&mut self, player: PlayerId, request: PlayerRequest, partition: i32, offset: i64) {
        if let Some(flight) = self.in_flight.get_mut(&player) {
            flight.offsets.push((partition, offset));
            lock(&flight.request_ids).push(request.request_id);
            self.metrics.requests_coalesced.incr();
            tracing::debug!(player = %player, partition, offset, "joined the fetch in flight");
            return;
        }
        if request.origin == RequestOrigin::View
            && lock(&self.book).is_fresh(&player, self.clock.now_ms())
        {
            tracing::debug!(player = %player, partition, offset, "view of fresh data: nothing to fetch");
            self.metrics.requests_fresh.incr();
            self.request_done(partition, offset);
            return;
        }
        tracing::debug!(player = %player, origin = ?request.origin, request_id = %request.request_id, "fetching");
        self.start_fetch(player, request.request_id, Some((partition, offset)), false);
    }

    fn start_fetch(
        &mut self,
        player: PlayerId,
        request_id: String,
        offset: Option<(i32, i64)>,
        scheduled: bool,
    ) {
        let request_ids = Arc::new(Mutex::new(vec![request_id.clone()]));
        self.in_flight.insert(
            player.clone(),
            Flight {
                request_ids: request_ids.clone(),
                offsets: offset.into_iter().collect(),
                scheduled,
            },
        );
        Metrics::set_gauge(&self.metrics.in_flight, self.in_flight.len());
        let job = FetchJob {
            client: self.client.clone(),
            producer: self.producer.clone(),
            topic: self.topics.raw.clone(),
            player,
            request_id,
            request_ids,
            scheduled,
            halted: self.halted.clone(),
        };
        self.tasks.spawn(job.run());
    }

    /// Writes a request the producer cannot answer to the dead-letter topic, byte for byte,
    /// with its provenance; its offset is done once the write is acknowledged.
    fn dead_letter(
        &mut self,
        raw: RawRecord,
        stage: &'static str,
        node: Option<&'static str>,
        error: String,
    ) {
        tracing::warn!(
            topic = %raw.topic, partition = raw.partition, offset = raw.offset, stage,
            error = %error, dlq = %self.dead_letter_topic,
            "request sent to the dead-letter topic"
        );
        let mut headers = raw
            .headers
            .clone()
            .with(dlq::TOPIC, raw.topic.to_string())
            .with(dlq::PARTITION, raw.partition.to_string())
            .with(dlq::OFFSET, raw.offset.to_string())
            .with(dlq::TIMESTAMP, raw.timestamp.to_string())
            .with(dlq::STAGE, stage);
        if let Some(node) = node {
            headers = headers.with(dlq::NODE, node);
        }
        let headers = headers
            .with(dlq::ERROR, error)
            .with(dlq::APPLICATION, self.application_id.clone());
        let producer = self.producer.clone();
        let topic = self.dead_letter_topic.clone();
        let halted = self.halted.clone();
        self.tasks.spawn(async move {
            if halted.load(Ordering::SeqCst) {
                return Done::Halted;
            }
            let result = producer
                .send_raw(
                    &topic,
                    raw.key.as_deref(),
                    raw.value.as_deref(),
                    raw.timestamp,
                    &headers,
                )
                .await
                .map(|_| ())
                .map_err(|source| ProducerError::Delivery {
                    topic: topic.to_string(),
                    key: String::from_utf8_lossy(raw.key.as_deref().unwrap_or_default())
                        .into_owned(),
                    source: Box::new(source),
                });
            Done::DeadLettered {
                partition: raw.partition,
                offset: raw.offset,
                result,
            }
        });
    }

    fn request_done(&mut self, partition: i32, offset: i64) {
        self.offsets.done(partition, offset);
        self.metrics.requests_answered.incr();
        self.update_pending();
    }

    fn on_done(&mut self, done: Result<Done, JoinError>) -> Result<(), ProducerError> {
        let done = done.map_err(|e| ProducerError::Stopped {
            reason: format!("a fetch task ended without a result: {e}"),
        })?;
        match done {
            Done::Fetched {
                player,
                outcome,
                wait_ms,
                result,
            } => {
                let flight = self.in_flight.remove(&player);
                Metrics::set_gauge(&self.metrics.in_flight, self.in_flight.len());
                result?;
                self.metrics.fetched(outcome);
                self.metrics.raw_events_written.incr();
                if let Some(flight) = flight {
                    if flight.scheduled {
                        self.metrics.scheduled_fetches.incr();
                    }
                    for (partition, offset) in flight.offsets {
                        self.request_done(partition, offset);
                    }
                }
                lock(&self.book).fetched(&player, self.clock.now_ms(), outcome, wait_ms);
                tracing::debug!(player = %player, ?outcome, "raw event written");
            }
            Done::DeadLettered {
                partition,
                offset,
                result,
            } => {
                result?;
                self.metrics.dead_letters.incr();
                self.request_done(partition, offset);
            }
            Done::Halted => {}
        }
        Ok(())
    }

    /// Reads one request for its view (the scheduling instance's tracker consumer).
    async fn on_view(
        &mut self,
        next: Option<Result<RawRecord, ow_stream_core::Error>>,
    ) -> Result<(), ProducerError> {
        let raw = match next {
            None => {
                return Err(ProducerError::Stopped {
                    reason: "the tracker consumer ended".into(),
                });
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "reading requests for the tracked players failed; trying again");
                tokio::time::sleep(CONSUMER_RETRY).await;
                return Ok(());
            }
            Some(Ok(raw)) => raw,
        };
        let Some(tracker) = &mut self.tracker else {
            return Ok(());
        };
        let position = tracker
            .positions
            .entry(raw.partition)
            .or_insert((raw.offset, raw.offset));
        position.0 = position.0.max(raw.offset + 1);
        match decode_request(&self.topics.requests, &raw).await {
            Ok((key, request)) => {
                // Bad requests are the answering side's business (it dead-letters them).
                if let Ok(player) = validate(&key, &request) {
                    let at = request.requested_at.min(self.clock.now_ms());
                    lock(&self.book).viewed(&player, at);
                }
            }
            Err(e) if is_transient(&e.source) => {
                return Err(ProducerError::Schema {
                    schema: "ow.player-requests",
                    source: e.source,
                });
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// Writes the tracked-player state down if it changed, then commits the request offsets
    /// that are done and the tracker's position.
    async fn commit(&mut self) -> Result<(), ProducerError> {
        if let (Some(file), Some(tracker)) = (&self.state_file, &self.tracker) {
            let entries = {
                let mut book = lock(&self.book);
                book.take_dirty().then(|| book.entries())
            };
            if let Some(entries) = entries
                && let Err(e) = file.save(&tracker.group, entries).await
            {
                // Keep the changes for the next attempt; nothing is committed meanwhile.
                lock(&self.book).mark_dirty();
                return Err(e);
            }
        }
        let topic = self.topics.requests.shared_name();
        for (partition, next) in self.offsets.advance() {
            let point = RecordMetadata {
                topic: topic.clone(),
                partition,
                offset: next - 1,
            };
            match self.requests.commit(&point) {
                Ok(()) => self.metrics.commits.incr(),
                Err(error) => {
                    tracing::warn!(%error, partition, next, "commit of request offsets failed")
                }
            }
        }
        if let Some(tracker) = &mut self.tracker {
            for (&partition, (next, committed)) in &mut tracker.positions {
                if *next > *committed {
                    let point = RecordMetadata {
                        topic: topic.clone(),
                        partition,
                        offset: *next - 1,
                    };
                    match tracker.consumer.commit(&point) {
                        Ok(()) => *committed = *next,
                        Err(error) => {
                            tracing::warn!(%error, partition, "commit of the tracker's position failed");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One pass of the schedule: forgets stale untracked players, then starts the refreshes
    /// that are due (within the schedule's share of the client's concurrency).
    fn schedule(&mut self) {
        let now = self.clock.now_ms();
        let due = {
            let mut book = lock(&self.book);
            book.sweep(now);
            let scheduling = self.tracker.is_some();
            Metrics::set_gauge(
                &self.metrics.tracked,
                if scheduling {
                    book.tracked_count(now)
                } else {
                    0
                },
            );
            if scheduling {
                book.due(now)
            } else {
                Vec::new()
            }
        };
        let mut running = self.in_flight.values().filter(|f| f.scheduled).count();
        for player in due {
            if running >= self.schedule_limit {
                break;
            }
            if self.in_flight.contains_key(&player) || self.client.not_before(&player).is_some() {
                continue;
            }
            tracing::debug!(player = %player, "refreshing a tracked player");
            let request_id = format!("schedule-{player}-{now}");
            self.start_fetch(player, request_id, None, true);
            running += 1;
        }
        self.metrics.schedule_passes.incr();
    }
}

/// A running producer stage.
///
/// Dropping it without [`ProducerHandle::close`] stops it as a crash would: nothing is lost
/// (requests not committed yet are answered again after a restart).
pub struct ProducerHandle {
    control: watch::Sender<Control>,
    task: Option<JoinHandle<Result<(), ProducerError>>>,
    halted: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    book: Arc<Mutex<Book>>,
    clock: Arc<dyn Clock>,
    topics: Topics,
    registry: SchemaRegistry,
    tracker_group: Option<String>,
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle")
            .field("requests", &self.topics.requests.name())
            .field("tracker_group", &self.tracker_group)
            .field("paused", &self.is_paused())
            .finish_non_exhaustive()
    }
}

impl ProducerHandle {
    /// The counters and gauges now.
    pub fn metrics(&self) -> ProducerMetrics {
        self.metrics.snapshot()
    }

    /// Stops reading requests and refreshing tracked players. Fetches in flight finish and
    /// are committed. On Kafka, a pause longer than the consumer's `max.poll.interval.ms`
    /// (5 minutes by default) makes the consumer leave its group; it rejoins on
    /// [`resume`](Self::resume) and goes on from the committed offsets.
    pub fn pause(&self) {
        self.control.send_modify(|c| c.paused = true);
        self.metrics
            .paused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads requests and refreshes tracked players again.
    pub fn resume(&self) {
        self.control.send_modify(|c| c.paused = false);
        self.metrics
            .paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the stage is paused.
    pub fn is_paused(&self) -> bool {
        self.control.borrow().paused
    }

    /// The players on this instance's schedule (none when it does not schedule), by id.
    pub fn tracked_players(&self) -> Vec<TrackedPlayer> {
        if self.tracker_group.is_none() {
            return Vec::new();
        }
        lock(&self.book).tracked(self.clock.now_ms())
    }

    /// The consumer group of the tracked players' views (`<application id>-tracker-<epoch>`),
    /// when this instance schedules.
    pub fn tracker_group(&self) -> Option<&str> {
        self.tracker_group.as_deref()
    }

    /// The topics the producer reads and writes, typed.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The schema registry the producer's serdes use.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// Whether the stage's task has ended (by itself, after a failure, or after
    /// [`close`](Self::close)): a cheap check for supervisors that poll.
    pub fn has_stopped(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Resolves when the stage stops by itself, with why (a write that failed, the schema
    /// registry out of reach, a state file that cannot be written). Never resolves while the
    /// stage runs.
    pub async fn failed(&mut self) -> ProducerError {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let joined = task.await;
        self.task = None;
        match joined {
            Ok(Err(error)) => error,
            Ok(Ok(())) => ProducerError::Stopped {
                reason: "the stage ended".into(),
            },
            Err(e) => ProducerError::Stopped {
                reason: e.to_string(),
            },
        }
    }

    /// Stops cleanly: no more requests are read, fetches in flight get the
    /// [shutdown grace](ProducerConfig::shutdown_grace) to finish, what is answered is committed
    /// (after the tracked-player state is written), and the consumers leave their groups.
    ///
    /// # Errors
    /// The error the stage had stopped with, or the one of its last commit.
    pub async fn close(mut self) -> Result<(), ProducerError> {
        self.control.send_modify(|c| c.closing = true);
        let Some(task) = self.task.take() else {
            return Err(ProducerError::Stopped {
                reason: "the stage had stopped already".into(),
            });
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(ProducerError::Stopped {
                reason: e.to_string(),
            }),
        }
    }

    /// Stops at once, as a crash would: nothing more is written or committed. Requests read
    /// since the last commit are answered again after the next start.
    pub fn abort(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(task) = self.task.take() {
            // Fetches that end from now on write nothing, even before the task is torn down.
            self.halted.store(true, Ordering::SeqCst);
            task.abort();
        }
    }
}

impl Drop for ProducerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts the producer stage and returns its handle (the embedded stack keeps it).
///
/// Opens the schema registry (the one given, else the one the streams settings name), checks
/// that `ow.player-requests` and `ow.raw.player-profiles` exist (creating the dead-letter topic
/// `<application id>-dlq` if it is missing), joins the consumer group `<application id>` on the
/// requests and, when this instance schedules, loads the tracked-player state and joins its
/// tracker group (see [`crate::tracking`]).
///
/// # Errors
/// [`ProducerError::Config`], [`ProducerError::Overfast`], [`ProducerError::Streams`] (no
/// registry, a bad backend), [`ProducerError::MissingTopic`], [`ProducerError::State`] and
/// [`ProducerError::CorruptState`] (the state file).
pub async fn start(config: ProducerConfig) -> Result<ProducerHandle, ProducerError> {
    config.validate()?;
    let ProducerConfig {
        mut streams,
        registry,
        client,
        tracking,
        topic_prefix,
        max_pending_requests,
        shutdown_grace,
        clock,
    } = config;
    if !streams.kafka.contains_key("compression.type")
        && !streams.kafka.contains_key("compression.codec")
    {
        streams = streams.with_kafka_setting("compression.type", "zstd");
    }
    let registry = match registry {
        Some(registry) => registry,
        None => streams
            .schema_registry()
            .map_err(ProducerError::streams("open the schema registry"))?,
    };
    let topics = Topics::new(&registry, &topic_prefix)?;
    let schedule_limit = (client.concurrency / 2).max(1);
    let client = OverfastClient::new(client)?;
    let dead_letter_topic = streams.dead_letter_topic();
    ensure_topics(&streams, &topics, &dead_letter_topic).await?;
    let producer =
        Producer::new(&streams).map_err(ProducerError::streams("create the producer"))?;
    let requests = Consumer::subscribe(&streams, &streams.application_id, &topics.requests)
        .map_err(ProducerError::streams("subscribe to the requests"))?;

    let mut book = Book::new(tracking.refresh_interval, tracking.untrack_after);
    let (state_file, tracker) = if tracking.schedule {
        book.configure(&tracking.players);
        let file = StateFile::new(&streams.state_dir, &streams.application_id);
        let group = match file.load()? {
            Some(loaded) => {
                book.load(loaded.players);
                loaded.tracker_group
            }
            None => {
                let group = format!(
                    "{}-tracker-{}-{:08x}",
                    streams.application_id,
                    crate::overfast::now_ms(),
                    rand::random::<u32>()
                );
                tracing::info!(
                    state = %file.path().display(), group = %group,
                    "no tracked-player state: rebuilding it from the requests topic"
                );
                group
            }
        };
        // The group is written down before anything is read under it.
        file.save(&group, book.entries()).await?;
        let consumer = Consumer::subscribe(&streams, &group, &topics.requests).map_err(
            ProducerError::streams("subscribe to the requests for tracking"),
        )?;
        (
            Some(file),
            Some(Tracker {
                consumer,
                group,
                positions: BTreeMap::new(),
            }),
        )
    } else {
        if !tracking.players.is_empty() {
            tracing::warn!(
                players = tracking.players.len(),
                "this instance does not schedule refreshes: the tracked players given are ignored"
            );
        }
        (None, None)
    };
    let tracker_group = tracker.as_ref().map(|t| t.group.clone());
    let metrics = Arc::new(Metrics::default());
    let halted = Arc::new(AtomicBool::new(false));
    let book = Arc::new(Mutex::new(book));
    let stage = Stage {
        clock: clock.clone(),
        client,
        producer,
        topics: topics.clone(),
        application_id: streams.application_id.clone(),
        dead_letter_topic: dead_letter_topic.as_str().into(),
        requests,
        tracker,
        state_file,
        book: book.clone(),
        offsets: Offsets::default(),
        in_flight: HashMap::new(),
        tasks: JoinSet::new(),
        metrics: metrics.clone(),
        halted: halted.clone(),
        schedule_limit,
        max_pending: max_pending_requests,
        commit_interval: streams.commit_interval,
        check_interval: tracking.check_interval,
        shutdown_grace,
    };
    let (control, control_rx) = watch::channel(Control::default());
    let task = tokio::spawn(stage.run(control_rx));
    tracing::info!(
        application = %streams.application_id,
        requests = %topics.requests.name(),
        raw = %topics.raw.name(),
        dead_letters = %dead_letter_topic,
        registry = %registry.location(),
        tracker_group = ?tracker_group,
        "producer started"
    );
    Ok(ProducerHandle {
        control,
        task: Some(task),
        halted,
        metrics,
        book,
        clock,
        topics,
        registry,
        tracker_group,
    })
}

/// Checks the pipeline topics exist; creates the dead-letter topic if it does not.
async fn ensure_topics(
    streams: &ow_stream_core::config::StreamsConfig,
    topics: &Topics,
    dead_letter_topic: &str,
) -> Result<(), ProducerError> {
    use ow_stream_core::admin::{Admin, TopicSpec};
    let admin = Admin::new(streams).map_err(ProducerError::streams("open the admin client"))?;
    if let Err(error) = admin
        .create_topics(&[TopicSpec::new(dead_letter_topic, 1)])
        .await
    {
        tracing::warn!(%error, topic = dead_letter_topic, "cannot create the dead-letter topic");
    }
    let names = [topics.requests.name(), topics.raw.name()];
    let found = admin
        .topic_offsets(&names)
        .await
        .map_err(ProducerError::streams("look up the topics"))?;
    for name in names {
        if !found.iter().any(|t| t.name == name) {
            return Err(ProducerError::MissingTopic {
                topic: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Runs the producer until `shutdown` resolves, then closes it cleanly (fetches in flight get
/// the shutdown grace, answered requests are committed). A failure of the stage ends `run`
/// with its error.
///
/// ```no_run
/// use ow_producer::{APPLICATION_ID, ProducerConfig, run};
/// use ow_producer::overfast::ClientConfig;
/// use ow_stream_core::config::{Backend, StreamsConfig};
///
/// # async fn demo() -> Result<(), ow_producer::ProducerError> {
/// let streams = StreamsConfig::new(APPLICATION_ID, Backend::kafka("localhost:9092"))
///     .with_schema_registry("http://localhost:8081");
/// run(ProducerConfig::new(streams, ClientConfig::default()), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
///
/// # Errors
/// As [`start`], and the error the stage stops with.
pub async fn run(
    config: ProducerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProducerError> {
    let mut handle = start(config).await?;
    let failure = tokio::select! {
        () = shutdown => None,
        error = handle.failed() => Some(error),
    };
    match failure {
        Some(error) => Err(error),
        None => {
            let closed = handle.close().await;
            if closed.is_ok() {
                tracing::info!("producer closed");
            }
            closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(player: &str) -> PlayerRequest {
        PlayerRequest {
            request_id: "r".into(),
            player_id: player.into(),
            requested_at: 0,
            origin: RequestOrigin::Search,
        }
    }

    #[test]
    fn requests_must_name_a_battletag_in_key_and_value() {
        assert_eq!(
            validate("TeKrop-2217", &request("TeKrop#2217")).map(|p| p.to_string()),
            Ok("TeKrop-2217".to_string())
        );
        let bad = validate("../etc#1", &request("../etc#1")).unwrap_err();
        assert!(bad.contains("slash"), "{bad}");
        let mismatch = validate("JohnV1-1190", &request("TeKrop-2217")).unwrap_err();
        assert!(mismatch.contains("does not name"), "{mismatch}");
    }

    #[test]
    fn registry_outages_are_not_the_records_fault() {
        assert!(is_transient(&SerdeError::Registry(
            RegistryError::Unreachable {
                url: "http://r".into(),
                source: "refused".into(),
            }
        )));
        assert!(!is_transient(&SerdeError::Registry(
            RegistryError::SchemaNotFound { id: 7 }
        )));
        assert!(!is_transient(&SerdeError::Malformed {
            format: "x",
            reason: "y".into()
        }));
    }
}
