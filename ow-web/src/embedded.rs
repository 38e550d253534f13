//! The embedded stack: the whole pipeline — producer, processor and web — in one process, on
//! the library's durable local backend, with the schema registry persisted in the state
//! directory. This is what `cargo run --release -p ow-web` starts when no broker is configured.
//!
//! Layout of the state directory (`--state-dir`, `./.ow-state` by default):
//!
//! | path | what |
//! |---|---|
//! | `log/` | the topics (the local log) and consumer-group offsets |
//! | `schema-registry/` | the registered schemas (ids stay valid across restarts) |
//! | `ow-processor/`, `ow-web/` | the stages' state stores, one directory per task |
//! | `ow-producer/` | the producer's tracked players |
//!
//! Each stage keeps its own consumer group, exactly as it would on Kafka, so the pipeline page
//! shows real lag between stages, and pausing one stage makes its lag grow.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ow_producer::{ProducerConfig, ProducerHandle};
use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::config::{Backend, ProcessingGuarantee, StreamsConfig};
use ow_stream_core::metrics::MetricsSnapshot;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;

use crate::cluster::{group_view, last_records, sources, streams_stage, topic_views};
use crate::pipeline::{
    BrowsedRecord, PipelineSource, PipelineView, StageControl, StageState, StageView, TopicBrowser,
};
use ow_stream_core::client::Producer;

use crate::{AppState, Error, ProducerRequests, WebConfig, WebSettings, WebStage};

/// The application id of each stage.
const PRODUCER: &str = ow_producer::APPLICATION_ID;
const PROCESSOR: &str = ow_processor::APPLICATION_ID;
const WEB: &str = crate::materialize::APPLICATION_ID;

/// The three stages running in this process.
pub struct EmbeddedStack {
    producer: Arc<ProducerHandle>,
    processor: Arc<ow_processor::Processor>,
    web: WebStage,
    pipeline: Arc<EmbeddedPipeline>,
    registry: SchemaRegistry,
    web_config: StreamsConfig,
}

/// The commit interval of the embedded stack's stages when `--commit-interval-ms` is not given.
///
/// Each stage's outputs become visible downstream when it commits (exactly-once: its
/// transaction; at-least-once: the stores and offsets committed with them), so with Kafka
/// Streams' 1 s a look-up waited up to a second per stage. 20 ms keeps the commit guarantees
/// as they are (stores, changelogs and offsets still commit together, in one transaction under
/// exactly-once) and costs a commit (an fsync of the local log when there is something to
/// commit) 50 times a second per stage: about 1.4 % of one core for the idle stack, against
/// 0.3 % at 1 s. `BENCHMARKS.md` ("Freshness (embedded)") has the figures.
pub const EMBEDDED_COMMIT_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes of raw OverFast events kept per partition of the raw topic in the embedded stack.
pub const RAW_RETENTION_BYTES: u64 = 256 << 20;

impl EmbeddedStack {
    /// Opens (or creates) the state directory named by `config`, creates the pipeline's topics
    /// when they are missing, and starts the producer, the processor and the web's streams app.
    pub async fn start(config: &WebConfig) -> Result<EmbeddedStack, Error> {
        let state_dir = config.streams.state_dir.clone();
        let backend = Backend::local(state_dir.join("log"));
        let registry = SchemaRegistry::open_dir(state_dir.join("schema-registry"))?;
        // Exactly-once unless `--processing-guarantee` says otherwise: on the local log a
        // crash writes no delta twice, so the dashboard needs no de-duplication.
        let guarantee = config
            .streams
            .processing_guarantee
            .unwrap_or(ProcessingGuarantee::ExactlyOnce);
        // A short commit interval unless `--commit-interval-ms` says otherwise: outputs of a
        // stage become visible to the next (read_committed) at its commit, so the interval is
        // most of the time from a fetch to the page (see EMBEDDED_COMMIT_INTERVAL).
        let commit_interval = config
            .streams
            .commit_interval_ms
            .map_or(EMBEDDED_COMMIT_INTERVAL, |ms| {
                Duration::from_millis(ms.max(1))
            });
        let stage_config = |app: &str| {
            config
                .streams
                .to_config_with(app, backend.clone())
                .map(|c| {
                    c.with_processing_guarantee(guarantee)
                        .with_commit_interval(commit_interval)
                })
        };
        let prefix = config.streams.topic_prefix.as_str();
        let partitions = config.partitions.max(1);

        let admin = Arc::new(Admin::new(&stage_config(WEB)?)?);
        let producer_topics = ow_producer::topics::Topics::new(&registry, prefix)
            .map_err(|e| Error::Topics(Box::new(e)))?;
        let processor_topics =
            ow_processor::Topics::new(&registry, prefix).map_err(|e| Error::Topics(Box::new(e)))?;
        let tracking = config.tracking.to_config().map_err(|e| Error::Config {
            field: "tracking",
            reason: e.to_string(),
        })?;
        // Retention keeps a long-running stack bounded: requests as long as a requested player
        // stays tracked (the producer rebuilds its list from them), raw bodies (about 140 KB
        // each) for the default 7 days and at most RAW_RETENTION_BYTES per partition.
        let mut specs = vec![
            TopicSpec::new(producer_topics.requests.name(), partitions)
                .with_retention(tracking.untrack_after + Duration::from_secs(86_400)),
            TopicSpec::new(producer_topics.raw.name(), partitions)
                .with_retention_bytes(RAW_RETENTION_BYTES),
        ];
        specs.extend(processor_topics.output_specs(partitions));
        admin.create_topics(&specs).await?;

        let client = config
            .overfast
            .to_client_config()
            .map_err(|e| Error::Config {
                field: "overfast",
                reason: e.to_string(),
            })?;
        let producer = ow_producer::start(
            ProducerConfig::new(stage_config(PRODUCER)?, client)
                .with_registry(registry.clone())
                .with_tracking(tracking)
                .with_topic_prefix(prefix),
        )
        .await
        .map_err(|e| stage_error("producer", e))?;
        let processor = ow_processor::start(
            ow_processor::ProcessorConfig::new(stage_config(PROCESSOR)?)
                .with_registry(registry.clone())
                .with_topology_options(
                    ow_processor::TopologyOptions::default().with_topic_prefix(prefix),
                ),
        )
        .await
        .map_err(|e| stage_error("processor", e))?;
        let web_config = stage_config(WEB)?;
        let web = WebStage::start(web_config.clone(), &registry, prefix).await?;

        let producer = Arc::new(producer);
        let processor = Arc::new(processor);
        let pipeline = Arc::new(EmbeddedPipeline {
            admin,
            registry: registry.clone(),
            producer: producer.clone(),
            producer_reads: vec![producer_topics.requests.name().to_string()],
            producer_writes: vec![producer_topics.raw.name().to_string()],
            processor: processor.clone(),
            web: web.streams().clone(),
            producer_group: config.streams.application_id(PRODUCER),
            clock: crate::system_clock(),
        });
        Ok(EmbeddedStack {
            producer,
            processor,
            web,
            pipeline,
            registry,
            web_config,
        })
    }

    /// The dashboard's state over this stack: pages answered from the web stage's stores,
    /// player requests written to the request topic, and the pipeline page over all three
    /// stages.
    pub fn app_state(&self, settings: WebSettings) -> Result<AppState, Error> {
        let producer = Producer::new(&self.web_config)?;
        Ok(AppState::new(
            Arc::new(self.web.repository()?),
            Arc::new(ProducerRequests::new(
                producer,
                self.web.topics().requests.clone(),
            )),
        )
        .with_settings(settings)
        .with_pipeline(self.pipeline.clone())
        .with_stage_control(self.pipeline.clone())
        .with_topic_browser(self.pipeline.clone())
        .with_streams(self.web.streams().clone())
        .with_store_changes(self.web.changes().clone()))
    }

    /// The web stage (its stores answer the pages).
    pub fn web(&self) -> &WebStage {
        &self.web
    }

    /// The pipeline page's source, stage control and topic browser over the three stages.
    pub fn pipeline(&self) -> Arc<EmbeddedPipeline> {
        self.pipeline.clone()
    }

    /// The in-process schema registry.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// The web stage's library configuration (its producer writes player requests).
    pub fn web_config(&self) -> &StreamsConfig {
        &self.web_config
    }

    /// The producer stage.
    pub fn producer(&self) -> &ProducerHandle {
        &self.producer
    }

    /// The processor stage.
    pub fn processor(&self) -> &ow_processor::Processor {
        &self.processor
    }

    /// Why a stage stopped by itself, if one did.
    pub fn failure(&self) -> Option<String> {
        if self.producer.has_stopped() {
            return Some("the producer stage stopped".into());
        }
        if let Some(f) = self.processor.streams().failure() {
            return Some(format!("processor: {f}"));
        }
        self.web.streams().failure().map(|f| format!("web: {f}"))
    }

    /// Stops every stage cleanly, upstream first: the producer finishes its fetches and commits,
    /// the processor and the web drain their batch and commit their stores and offsets.
    /// Whatever still holds the pipeline handle (the HTTP state) must be dropped first.
    pub async fn close(self) -> Result<(), Error> {
        let EmbeddedStack {
            producer,
            processor,
            web,
            pipeline,
            ..
        } = self;
        drop(pipeline);
        let mut first_error: Option<Error> = None;
        match Arc::try_unwrap(producer) {
            Ok(p) => {
                if let Err(e) = p.close().await {
                    first_error.get_or_insert(stage_error("producer", e));
                }
            }
            Err(_) => tracing::warn!("producer still shared at shutdown: stopping it as a crash"),
        }
        match Arc::try_unwrap(processor) {
            Ok(p) => {
                if let Err(e) = p.close().await {
                    first_error.get_or_insert(stage_error("processor", e));
                }
            }
            Err(_) => tracing::warn!("processor still shared at shutdown: stopping it as a crash"),
        }
        if let Err(e) = web.close().await {
            first_error.get_or_insert(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn stage_error(stage: &'static str, e: impl std::fmt::Display) -> Error {
    Error::StageControl {
        stage: stage.to_string(),
        action: "run",
        reason: e.to_string(),
    }
}

/// The pipeline page over the embedded stack: the three stages, every topic of the local log
/// with its offsets, and each stage's consumer groups with their lag.
pub struct EmbeddedPipeline {
    admin: Arc<Admin>,
    registry: SchemaRegistry,
    producer: Arc<ProducerHandle>,
    producer_reads: Vec<String>,
    producer_writes: Vec<String>,
    processor: Arc<ow_processor::Processor>,
    web: Arc<Streams>,
    /// The producer's application id (with the topic prefix), its consumer group.
    producer_group: String,
    clock: crate::Clock,
}

impl EmbeddedPipeline {
    fn producer_stage(&self) -> StageView {
        let m = self.producer.metrics();
        let mut metrics = MetricsSnapshot::default();
        metrics.records_consumed = m.requests_consumed;
        metrics.records_produced = m.raw_events_written;
        metrics.dead_letters = m.dead_letters;
        metrics.commits = m.commits;
        let state = if self.producer.has_stopped() {
            StageState::Failed {
                reason: "stopped".into(),
            }
        } else {
            StageState::Running
        };
        StageView::new("producer", &self.producer_group)
            .with_state(state)
            .with_reads(self.producer_reads.clone())
            .with_writes(self.producer_writes.clone())
            .with_metrics(metrics)
            .with_paused(self.producer.is_paused())
    }
}

#[async_trait]
impl PipelineSource for EmbeddedPipeline {
    async fn snapshot(&self) -> Result<PipelineView, Error> {
        let mut view = PipelineView::new((self.clock)())
            .with_stage(self.producer_stage())
            .with_stage(streams_stage("processor", self.processor.streams()))
            .with_stage(streams_stage("web", &self.web));
        for topic in topic_views(&self.admin).await? {
            view = view.with_topic(topic);
        }
        let admin = &self.admin;
        let reads = &self.producer_reads;
        let producer = &self.producer_group;
        view = view.with_group(group_view(admin, producer, "producer", reads).await?);
        if let Some(tracker) = self.producer.tracker_group() {
            view = view.with_group(group_view(admin, tracker, "producer", reads).await?);
        }
        let processor = sources(&self.processor.streams().describe());
        let group = &self.processor.streams().config().application_id;
        view = view.with_group(group_view(admin, group, "processor", &processor).await?);
        let web = sources(&self.web.describe());
        let group = &self.web.config().application_id;
        view = view.with_group(group_view(admin, group, "web", &web).await?);
        Ok(view)
    }
}

#[async_trait]
impl StageControl for EmbeddedPipeline {
    async fn pause(&self, stage: &str) -> Result<(), Error> {
        match stage {
            "producer" => self.producer.pause(),
            "processor" => self.processor.streams().pause(),
            "web" => self.web.pause(),
            other => {
                return Err(Error::UnknownStage {
                    stage: other.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn resume(&self, stage: &str) -> Result<(), Error> {
        match stage {
            "producer" => self.producer.resume(),
            "processor" => self.processor.streams().resume(),
            "web" => self.web.resume(),
            other => {
                return Err(Error::UnknownStage {
                    stage: other.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TopicBrowser for EmbeddedPipeline {
    async fn last_records(&self, topic: &str, limit: usize) -> Result<Vec<BrowsedRecord>, Error> {
        last_records(&self.admin, &self.registry, topic, limit).await
    }
}

/// How often the embedded stack checks that its stages still run.
pub(crate) const SUPERVISION_INTERVAL: Duration = Duration::from_millis(500);
