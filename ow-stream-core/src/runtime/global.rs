//! The global thread: bootstraps every global store before the stream threads start, then
//! keeps them up to date (Kafka Streams' `GlobalStreamThread`).
//!
//! One thread per application instance reads every partition of every global table's topic
//! through the backend's [`GlobalConsumer`] (no consumer group; on Kafka a manual `assign` of
//! every partition). [`start`] returns once each store has read its topic up to the end
//! offsets taken when it opened (the bootstrap, counted in
//! [`Metrics::records_restored`](crate::metrics::Metrics::records_restored)), so the first
//! stream record already joins with every row written before the application started. Each
//! batch read is applied and committed with the positions it reflects (see
//! `state::global`). A failure (a record the `Fail` policy rejects, a store error, a panic in
//! a serde) stops the thread and puts the application in
//! [`StreamsState::Error`](super::StreamsState::Error), as a dead stream thread does; the
//! failure counts in [`Metrics::stream_thread_failures`](crate::metrics::Metrics::stream_thread_failures).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Shared, catch_panic};
use crate::backend::{Connection, GlobalConsumer, RawProducer};
use crate::error::Error;
use crate::state::global::{Applied, GlobalStore};

/// How long one poll of a global topic waits for records.
const POLL: Duration = Duration::from_millis(50);

type Ready = Option<tokio::sync::oneshot::Sender<Result<(), Error>>>;

/// Opens and bootstraps the application's global stores, makes them visible to joins and
/// interactive queries, and starts the global thread that keeps them current. `None` when
/// the topology has no global table.
pub(crate) async fn start(shared: &Arc<Shared>) -> Result<Option<JoinHandle<()>>, Error> {
    if shared.topology.globals().is_empty() {
        return Ok(None);
    }
    let connection = crate::backend::connect(&shared.config)?;
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name(format!("{}-global", shared.config.application_id))
        .spawn(move || {
            let shared = thread_shared;
            let mut ready: Ready = Some(tx);
            let outcome = catch_panic(
                || "the global thread".into(),
                || run(&shared, &*connection, &runtime, &mut ready),
            );
            // The stores close with the thread (a later instance may open their files).
            for def in shared.topology.globals() {
                shared.env.globals.write().remove(&def.store.name);
                shared.registry.remove_shard(&def.store.name, 0);
            }
            let Err(error) = outcome else { return };
            match ready.take() {
                // Failed during the bootstrap: `start` returns the error.
                Some(tx) => {
                    let _ = tx.send(Err(error));
                }
                None if shared.abort.load(Ordering::SeqCst) => {}
                None => {
                    tracing::error!(
                        application = %shared.config.application_id, error = %error,
                        "the global thread failed"
                    );
                    shared.env.metrics.stream_thread_failures.incr();
                    shared.fail(&error);
                }
            }
        })
        .map_err(|e| Error::io("global thread", e))?;
    match rx.await {
        Ok(Ok(())) => Ok(Some(handle)),
        Ok(Err(error)) => {
            let _ = handle.join();
            Err(error)
        }
        // The thread ended without a word: it was asked to stop during the bootstrap.
        Err(_) => {
            let _ = handle.join();
            Err(Error::Closed {
                reason: "the application stopped while its global stores bootstrapped".into(),
            })
        }
    }
}

/// One global store with its reader.
struct Global {
    store: GlobalStore,
    consumer: Box<dyn GlobalConsumer>,
}

fn stopping(shared: &Shared) -> bool {
    shared.shutdown.load(Ordering::SeqCst) || shared.abort.load(Ordering::SeqCst)
}

fn run(
    shared: &Arc<Shared>,
    connection: &dyn Connection,
    runtime: &tokio::runtime::Handle,
    ready: &mut Ready,
) -> Result<(), Error> {
    let app = &shared.config.application_id;
    let dir = shared.config.state_dir.join(app).join("global");
    let mut producer: Option<Arc<dyn RawProducer>> = None;
    let mut globals = Vec::new();
    for def in shared.topology.globals() {
        let store = GlobalStore::open(def.clone(), &dir, shared.config.default_store)?;
        let mut consumer = connection.global_consumer(def.topic.clone())?;
        let offsets = consumer.offsets()?;
        consumer.seek(store.positions())?;
        let mut global = Global { store, consumer };
        let mut restored = 0u64;
        loop {
            if stopping(shared) {
                return Ok(());
            }
            let mut at = global.consumer.positions()?;
            for (p, o) in global.store.positions() {
                let e = at.entry(*p).or_insert(*o);
                *e = (*e).max(*o);
            }
            let done = offsets
                .iter()
                .all(|(p, (start, end))| at.get(p).copied().unwrap_or(*start) >= *end);
            if done {
                break;
            }
            restored += poll_once(shared, &mut global, &mut producer, connection, runtime)?;
        }
        shared.env.metrics.records_restored.add(restored);
        tracing::info!(
            application = %app, store = %def.store.name, topic = %def.topic, records = restored,
            keys = global.store.len()?, "global store bootstrapped"
        );
        shared
            .env
            .globals
            .write()
            .insert(def.store.name.clone(), global.store.query_handle());
        shared.registry.declare(&def.store);
        shared
            .registry
            .add_shard(def.store.name.clone(), 0, global.store.query_handle());
        globals.push(global);
    }
    if let Some(tx) = ready.take() {
        let _ = tx.send(Ok(()));
    }
    while !stopping(shared) {
        for global in &mut globals {
            poll_once(shared, global, &mut producer, connection, runtime)?;
        }
    }
    Ok(())
}

/// Reads one batch of a global topic into its store and commits it with its positions;
/// dead-letters what the policy says to. Returns the number of records read.
fn poll_once(
    shared: &Shared,
    global: &mut Global,
    producer: &mut Option<Arc<dyn RawProducer>>,
    connection: &dyn Connection,
    runtime: &tokio::runtime::Handle,
) -> Result<u64, Error> {
    let batch = global.consumer.poll(POLL)?;
    if batch.is_empty() {
        return Ok(0);
    }
    let env = &shared.env;
    let mut dead = Vec::new();
    for raw in &batch {
        match global
            .store
            .apply(raw, env.deserialization_errors, &env.application_id)
        {
            Ok(Applied::Done) => {}
            Ok(Applied::DeadLetter(headers)) => {
                env.metrics.deserialization_errors.incr();
                dead.push((raw, headers));
            }
            Err(e) => {
                if matches!(e, Error::Deserialize { .. }) {
                    env.metrics.deserialization_errors.incr();
                }
                return Err(e);
            }
        }
    }
    if !dead.is_empty() {
        let producer = match producer {
            Some(p) => p.clone(),
            None => producer.insert(connection.producer()?).clone(),
        };
        runtime.block_on(async {
            for (raw, headers) in &dead {
                tracing::warn!(
                    topic = %raw.topic, partition = raw.partition, offset = raw.offset,
                    dlq = %env.dead_letter_topic,
                    "global table record sent to the dead-letter topic"
                );
                producer
                    .send(
                        &env.dead_letter_topic,
                        raw.key.as_deref(),
                        raw.value.as_deref(),
                        raw.timestamp,
                        headers,
                    )
                    .wait()
                    .await?;
                env.metrics.dead_letters.incr();
            }
            producer.flush().await
        })?;
    }
    // The dead letters are acknowledged before the positions past them are committed.
    global.store.commit()?;
    Ok(batch.len() as u64)
}
