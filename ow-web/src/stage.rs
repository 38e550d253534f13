//! The web stage: its streams app (the materialization topology) plus the HTTP server, and
//! [`run`], the entry point of the binary.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ow_stream_core::client::Producer;
use ow_stream_core::config::{Backend, StreamsConfig};
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;
use tokio::net::TcpListener;

use crate::materialize::{self, APPLICATION_ID};
use crate::repository::StoreRepository;
use crate::requests::ProducerRequests;
use crate::{AppState, Error, StoreChanges, Topics, WebConfig, app};

/// The web stage's streams app: the four output topics of the processor materialized into the
/// web's stores (see [`materialize`]).
///
/// The embedded stack starts it next to the producer and processor; [`run`] starts it alone
/// on Kafka.
pub struct WebStage {
    streams: Arc<Streams>,
    topics: Topics,
    changes: StoreChanges,
}

impl WebStage {
    /// Builds the topology over `registry` and the topics named with `topic_prefix`, and
    /// starts it with `config` (whose application id should be [`APPLICATION_ID`]). The
    /// source topics must exist.
    pub async fn start(
        config: StreamsConfig,
        registry: &SchemaRegistry,
        topic_prefix: &str,
    ) -> Result<WebStage, Error> {
        let topics = Topics::new(registry, topic_prefix)?;
        let changes = StoreChanges::new();
        let topology = materialize::topology_with_changes(&topics, &changes)?;
        let mut streams = Streams::new(topology, config)?;
        streams.start().await?;
        Ok(WebStage {
            streams: Arc::new(streams),
            topics,
            changes,
        })
    }

    /// The versions of the players' data in the stage's stores (give them to
    /// [`AppState::with_store_changes`]).
    pub fn changes(&self) -> &StoreChanges {
        &self.changes
    }

    /// The stage's streams app (for metrics, `describe()`, pause and resume).
    pub fn streams(&self) -> &Arc<Streams> {
        &self.streams
    }

    /// The topics, bound to the registry the stage was started with.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// A repository over the stage's stores.
    pub fn repository(&self) -> Result<StoreRepository, Error> {
        StoreRepository::from_streams(&self.streams)
    }

    /// Resolves when the streams app fails, with its error.
    pub async fn failed(&self) -> Error {
        Error::Stream(self.streams.failed().await)
    }

    /// Stops the streams app cleanly. Every other holder of [`WebStage::streams`] (the
    /// [`AppState`] given to [`serve`]) must be dropped first; otherwise the app is stopped
    /// as a crash would, which loses nothing either (stores are exact after a restart).
    pub async fn close(self) -> Result<(), Error> {
        match Arc::try_unwrap(self.streams) {
            Ok(streams) => Ok(streams.close().await?),
            Err(shared) => {
                tracing::warn!("web streams app still shared at shutdown; aborting it");
                drop(shared);
                Ok(())
            }
        }
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets requests in progress
/// finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}

/// Runs the dashboard until `shutdown` resolves.
///
/// With `--brokers` (`OW_BROKERS`) set, the web runs as a stage of its own: it materializes
/// the processor's topics from that backend and writes requests to it. Without, it runs the whole
/// pipeline in one process on the durable local backend (the embedded stack, see
/// [`crate::embedded`]).
pub async fn run(
    config: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    match config.streams.backend()? {
        Some(backend) => run_stage(config, backend, shutdown).await,
        None => run_embedded(config, shutdown).await,
    }
}

/// The one-process embedded stack (producer, processor and web on the local backend).
async fn run_embedded(
    config: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    let stack = crate::embedded::EmbeddedStack::start(&config).await?;
    let state = stack.app_state(config.settings())?;
    let state_dir = config
        .streams
        .state_dir
        .canonicalize()
        .unwrap_or_else(|_| config.streams.state_dir.clone());
    tracing::info!(url = %format!("http://{addr}/"), state_dir = %state_dir.display(), "embedded stack running");
    println!("ow-stream dashboard: http://{addr}/");
    println!("state directory:     {}", state_dir.display());
    let supervise = async {
        loop {
            tokio::time::sleep(crate::embedded::SUPERVISION_INTERVAL).await;
            if let Some(reason) = stack.failure() {
                return Error::StageControl {
                    stage: "embedded stack".into(),
                    action: "run",
                    reason,
                };
            }
        }
    };
    let served = tokio::select! {
        served = serve(listener, state, shutdown) => served,
        failed = supervise => Err(failed),
    };
    tracing::info!("shutting down: draining and committing every stage");
    let closed = stack.close().await;
    served.and(closed)
}

/// The web as a stage of its own, on `backend`.
async fn run_stage(
    config: WebConfig,
    backend: Backend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let url = config
        .streams
        .schema_registry_url
        .clone()
        .ok_or(Error::Config {
            field: "schema_registry_url",
            reason: "set --schema-registry-url or OW_SCHEMA_REGISTRY_URL when --brokers is set"
                .into(),
        })?;
    let registry = SchemaRegistry::from_url(&url)?;
    let streams_config = config.streams.to_config_with(APPLICATION_ID, backend)?;
    let streams_config_for_admin = streams_config.clone();
    let producer = Producer::new(&streams_config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let stage = WebStage::start(streams_config, &registry, &config.streams.topic_prefix).await?;
    tracing::info!(listen = %config.listen, "ow-web serving");
    let processor_topics = ow_processor::Topics::new(&registry, &config.streams.topic_prefix)
        .map_err(|e| Error::Topics(Box::new(e)))?;
    let outputs = [
        processor_topics.stats_by_category.name(),
        processor_topics.profiles.name(),
        processor_topics.deltas.name(),
        processor_topics.daily.name(),
    ]
    .map(str::to_string)
    .to_vec();
    let pipeline = Arc::new(
        crate::cluster::ClusterPipeline::new(
            ow_stream_core::admin::Admin::new(&streams_config_for_admin)?,
            registry.clone(),
            stage.streams().clone(),
            stage.topics().requests.name(),
            processor_topics.raw.name(),
            outputs,
        )
        .with_group_prefix(&config.streams.topic_prefix),
    );
    let state = AppState::new(
        Arc::new(stage.repository()?),
        Arc::new(ProducerRequests::new(
            producer,
            stage.topics().requests.clone(),
        )),
    )
    .with_settings(config.settings())
    .with_pipeline(pipeline.clone())
    .with_stage_control(pipeline.clone())
    .with_topic_browser(pipeline)
    .with_streams(stage.streams().clone())
    .with_store_changes(stage.changes().clone());
    let served = tokio::select! {
        served = serve(listener, state, shutdown) => served,
        failed = stage.failed() => Err(failed),
    };
    let closed = stage.close().await;
    served.and(closed)
}
