//! The stage's task: what woke it ([`Event`]), and what it does about it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ow_domain::battletag::PlayerId;
use ow_domain::{PlayerRequest, RequestOrigin};
use ow_stream_core::{RawRecord, RecordMetadata};
use tokio::sync::watch;
use tokio::task::JoinError;
use tokio::time::{Instant, MissedTickBehavior};

use super::decode::{decode_request, is_transient, validate};
use super::fetch_job::FetchJob;
use super::{CONSUMER_RETRY, Control, Done, Flight, Stage, Tracker, lock};
use crate::error::ProducerError;
use crate::metrics::Metrics;
use crate::topics::dead_letter_headers as dlq;

/// What woke the stage.
enum Event {
    Control { handle_alive: bool },
    Request(Option<Result<RawRecord, ow_stream_core::Error>>),
    View(Option<Result<RawRecord, ow_stream_core::Error>>),
    Done(Option<Result<Done, JoinError>>),
    Commit,
    Schedule,
}

async fn next_view(tracker: Option<&Tracker>) -> Option<Result<RawRecord, ow_stream_core::Error>> {
    match tracker {
        Some(t) => t.consumer.next_raw().await,
        None => std::future::pending().await,
    }
}

impl Stage {
    pub(super) async fn run(
        mut self,
        mut control: watch::Receiver<Control>,
    ) -> Result<(), ProducerError> {
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
