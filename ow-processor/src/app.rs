//! The processor as a running streams application: [`start`] (for the embedded stack, which
//! keeps the handle) and [`run`] (for the binary, which runs until shutdown).

use std::future::Future;

use ow_stream_core::config::StreamsConfig;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;

use crate::error::ProcessorError;
use crate::topology::{Topics, TopologyOptions, build_on};

/// The processor's application id: its consumer group, the prefix of its internal topics
/// (`ow-processor-player-last-snapshot-changelog`, `ow-processor-dlq`, ...) and its directory
/// under the state directory.
pub const APPLICATION_ID: &str = "ow-processor";

/// Everything the processor needs to run.
///
/// ```
/// use ow_processor::{APPLICATION_ID, ProcessorConfig};
/// use ow_stream_core::config::{Backend, StreamsConfig};
///
/// let config = ProcessorConfig::new(
///     StreamsConfig::new(APPLICATION_ID, Backend::kafka("localhost:9092"))
///         .with_schema_registry("http://localhost:8081"),
/// );
/// assert_eq!(config.streams.application_id, "ow-processor");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProcessorConfig {
    /// The streams settings: backend, schema registry URL, state directory, commits, error
    /// policies (bad raw events go to the dead-letter topic `<application_id>-dlq` unless
    /// [`OnError`](ow_stream_core::config::OnError) says otherwise). Its application id is
    /// used as it is; [`ProcessorConfig::from_args`] sets [`APPLICATION_ID`].
    pub streams: StreamsConfig,
    /// The processor's own settings.
    pub topology: TopologyOptions,
    /// An open schema registry to use instead of `streams.schema_registry_url` (the embedded
    /// stack shares its in-process registry this way).
    pub registry: Option<SchemaRegistry>,
}

impl ProcessorConfig {
    /// A configuration with the default [`TopologyOptions`] and the registry named by
    /// `streams.schema_registry_url`.
    pub fn new(streams: StreamsConfig) -> Self {
        ProcessorConfig {
            streams,
            topology: TopologyOptions::default(),
            registry: None,
        }
    }

    /// The configuration the shared command-line flags describe, with application id
    /// [`APPLICATION_ID`], `--threads` stream threads and the `--topic-prefix`.
    ///
    /// # Errors
    /// [`ProcessorError::Streams`] when no broker is configured or a flag is malformed.
    pub fn from_args(args: &ow_cli::StreamsArgs) -> Result<Self, ProcessorError> {
        Ok(
            ProcessorConfig::new(args.to_config(APPLICATION_ID)?).with_topology_options(
                TopologyOptions::default().with_topic_prefix(args.topic_prefix.clone()),
            ),
        )
    }

    /// Sets the processor's own settings.
    pub fn with_topology_options(mut self, options: TopologyOptions) -> Self {
        self.topology = options;
        self
    }

    /// Uses an open registry instead of the URL of the streams settings.
    pub fn with_registry(mut self, registry: SchemaRegistry) -> Self {
        self.registry = Some(registry);
        self
    }
}

/// A running processor. Dropping it without [`Processor::close`] stops it as a crash would
/// (nothing is lost: the work since the last commit is done again on restart).
pub struct Processor {
    streams: Streams,
    registry: SchemaRegistry,
    topics: Topics,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("application_id", &self.streams.config().application_id)
            .field("state", &self.streams.state())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// The streams application: metrics, [`describe`](Streams::describe), interactive queries
    /// on the stores ([`PROFILE_STORE`](crate::PROFILE_STORE),
    /// [`SNAPSHOT_STORE`](crate::SNAPSHOT_STORE), [`DAILY_STORE`](crate::DAILY_STORE)),
    /// [`pause`](Streams::pause) and [`resume`](Streams::resume).
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// The schema registry the processor's serdes use.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// The topics the processor reads and writes, typed.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Resolves when a stream thread fails, with its error.
    pub async fn failed(&self) -> ProcessorError {
        ProcessorError::Streams(self.streams.failed().await)
    }

    /// Stops cleanly: the threads finish their batch, commit (stores, outputs and offsets
    /// together) and leave the consumer group.
    ///
    /// # Errors
    /// [`ProcessorError::Streams`] when a thread had failed, or the last commit failed.
    pub async fn close(self) -> Result<(), ProcessorError> {
        Ok(self.streams.close().await?)
    }

    /// Stops at once, as a crash would: no commit. The records processed since the last
    /// commit are processed again by whoever takes the partitions over.
    pub fn abort(self) {
        self.streams.abort();
    }
}

/// Starts the processor: opens the schema registry (the one given, else
/// `streams.schema_registry_url`, else on the local backend the registry persisted in
/// `<state_dir>/schema-registry`; Kafka needs one of the first two), registers the output schemas,
/// builds the [topology](crate::build) and starts its streams application.
///
/// Output records, changelogs and dead letters are compressed with zstd unless the streams
/// settings choose a `compression.type` (or `compression.codec`) themselves.
///
/// # Errors
/// [`ProcessorError::NoRegistry`], [`ProcessorError::Registry`], [`ProcessorError::Register`],
/// [`ProcessorError::Streams`] (missing topics, an unreachable cluster, a bad configuration).
pub async fn start(config: ProcessorConfig) -> Result<Processor, ProcessorError> {
    let ProcessorConfig {
        mut streams,
        topology: options,
        registry,
    } = config;
    let registry = match (registry, &streams.schema_registry_url) {
        (Some(registry), _) => registry,
        (None, Some(url)) => {
            SchemaRegistry::from_url(url).map_err(|source| ProcessorError::Registry {
                url: url.clone(),
                source,
            })?
        }
        // On the local log, the registry persisted beside it (as the other stages do).
        (None, None) => match &streams.backend {
            ow_stream_core::config::Backend::Local { .. } => {
                let dir = streams.state_dir.join("schema-registry");
                SchemaRegistry::open_dir(&dir).map_err(|source| ProcessorError::Registry {
                    url: dir.display().to_string(),
                    source,
                })?
            }
            _ => return Err(ProcessorError::NoRegistry),
        },
    };
    if !streams.kafka.contains_key("compression.type")
        && !streams.kafka.contains_key("compression.codec")
    {
        streams = streams.with_kafka_setting("compression.type", "zstd");
    }
    let topics = Topics::new(&registry, &options.topic_prefix)?;
    topics.prepare_outputs().await?;
    let topology = build_on(&registry, &topics, &options)?;
    let mut app = Streams::new(topology, streams)?;
    app.start().await?;
    tracing::info!(
        application = %app.config().application_id,
        registry = %registry.location(),
        input = %topics.raw.name(),
        "processor started"
    );
    Ok(Processor {
        streams: app,
        registry,
        topics,
    })
}

/// Runs the processor until `shutdown` resolves, then closes it cleanly (the threads drain
/// their batch and commit). A stream thread that fails ends `run` with its error.
///
/// ```no_run
/// use ow_processor::{APPLICATION_ID, ProcessorConfig, run};
/// use ow_stream_core::config::{Backend, StreamsConfig};
///
/// # async fn demo() -> Result<(), ow_processor::ProcessorError> {
/// let streams = StreamsConfig::new(APPLICATION_ID, Backend::kafka("localhost:9092"))
///     .with_schema_registry("http://localhost:8081");
/// run(ProcessorConfig::new(streams), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
///
/// # Errors
/// As [`start`], and [`ProcessorError::Streams`] when a stream thread fails or the last
/// commit does.
pub async fn run(
    config: ProcessorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProcessorError> {
    let processor = start(config).await?;
    let failure = tokio::select! {
        () = shutdown => None,
        error = processor.failed() => Some(error),
    };
    let closed = processor.close().await;
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!("processor closed");
            closed
        }
    }
}
