//! [`start`]: from the settings to a running stage; [`run`]: until shutdown.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ow_stream_core::client::{Consumer, Producer};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Control, ProducerHandle, Stage, Tracker};
use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::metrics::Metrics;
use crate::offsets::Offsets;
use crate::overfast::OverfastClient;
use crate::topics::Topics;
use crate::tracking::{Book, StateFile};

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
