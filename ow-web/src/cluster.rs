//! The pipeline page over a cluster: topics with their offsets, consumer groups with their
//! lag, and the last records of a topic decoded — through the library's [`Admin`], so the same
//! code serves the embedded stack's local log and a Kafka cluster.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use ow_stream_core::admin::Admin;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::runtime::Streams;
use ow_stream_core::{RawRecord, TopologyDescription};

use crate::Error;
use crate::pipeline::{
    BrowsedRecord, GroupLag, GroupView, PartitionView, PipelineSource, PipelineView, StageControl,
    StageState, StageView, TopicBrowser, TopicView, stage_state,
};

/// A stage run by a [`Streams`] app of this process.
pub(crate) fn streams_stage(name: &str, streams: &Streams) -> StageView {
    StageView::new(name, &streams.config().application_id)
        .with_state(stage_state(streams.state(), streams.failure()))
        .with_topology(streams.describe())
        .with_node_counts(streams.node_counts())
        .with_metrics(streams.metrics())
        .with_paused(streams.is_paused())
}

/// Every topic with its offsets.
pub(crate) async fn topic_views(admin: &Admin) -> Result<Vec<TopicView>, Error> {
    let names = admin.list_topics().await?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(admin
        .topic_offsets(&refs)
        .await?
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| PartitionView {
                    partition: p.partition,
                    start_offset: p.start,
                    end_offset: p.end,
                })
                .collect();
            TopicView::new(t.name, partitions)
        })
        .collect())
}

/// A consumer group's positions in `topics`.
pub(crate) async fn group_view(
    admin: &Admin,
    group: &str,
    stage: &str,
    topics: &[String],
) -> Result<GroupView, Error> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let lag = admin.group_lag(group, &names).await?;
    Ok(GroupView::new(
        group,
        lag.into_iter()
            .map(|l| GroupLag {
                topic: l.topic,
                partition: l.partition,
                committed: l.committed,
                lag: Some(l.lag),
            })
            .collect(),
    )
    .with_stage(stage))
}

/// The topics a topology reads.
pub(crate) fn sources(description: &TopologyDescription) -> Vec<String> {
    let set: BTreeSet<String> = description
        .subtopologies
        .iter()
        .flat_map(|s| &s.nodes)
        .filter_map(|n| match &n.kind {
            ow_stream_core::topology::NodeKindDescription::Source { topic, .. } => {
                Some(topic.clone())
            }
            _ => None,
        })
        .collect();
    set.into_iter().collect()
}

/// The last `limit` records of `topic`, newest first, decoded for display.
pub(crate) async fn last_records(
    admin: &Admin,
    registry: &SchemaRegistry,
    topic: &str,
    limit: usize,
) -> Result<Vec<BrowsedRecord>, Error> {
    if !admin.list_topics().await?.iter().any(|t| t == topic) {
        return Err(Error::UnknownTopic {
            topic: topic.to_string(),
        });
    }
    let mut records = admin.tail(topic, limit).await?;
    records.sort_by_key(|r| std::cmp::Reverse((r.timestamp, r.offset)));
    records.truncate(limit);
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        out.push(browse(registry, r).await);
    }
    Ok(out)
}

/// Decodes record bytes for display: Confluent-framed Avro through the registry, else JSON,
/// else text, else hex.
async fn decode(registry: &SchemaRegistry, bytes: &[u8]) -> (serde_json::Value, Option<String>) {
    if bytes.len() > 5 && bytes[0] == 0 {
        match registry.decode_json(bytes).await {
            Ok(v) => return (v, None),
            Err(e) => return (hex(bytes), Some(e.to_string())),
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return (v, None);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (serde_json::Value::String(s.to_string()), None),
        Err(_) => (hex(bytes), None),
    }
}

fn hex(bytes: &[u8]) -> serde_json::Value {
    let shown: String = bytes.iter().take(256).map(|b| format!("{b:02x}")).collect();
    serde_json::Value::String(format!(
        "0x{shown}{}",
        if bytes.len() > 256 { "…" } else { "" }
    ))
}

async fn browse(registry: &SchemaRegistry, r: RawRecord) -> BrowsedRecord {
    let (key, key_error) = match &r.key {
        Some(k) => decode(registry, k).await,
        None => (serde_json::Value::Null, None),
    };
    let (value, value_error) = match &r.value {
        Some(v) => {
            let (v, e) = decode(registry, v).await;
            (Some(v), e)
        }
        None => (None, None),
    };
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut out =
        BrowsedRecord::new(r.partition, r.offset, r.timestamp, key, value).with_headers(headers);
    if let Some(e) = key_error.or(value_error) {
        out = out.with_error(e);
    }
    out
}

/// The pipeline page when the web runs as a stage of its own on Kafka: the web stage in full,
/// the producer and processor as the consumer groups they leave on the cluster, and every topic
/// with its offsets.
pub struct ClusterPipeline {
    admin: Arc<Admin>,
    registry: SchemaRegistry,
    web: Arc<Streams>,
    requests: String,
    raw: String,
    outputs: Vec<String>,
    group_prefix: String,
    clock: crate::Clock,
}

impl ClusterPipeline {
    /// The pipeline around the web stage `web`, whose request topic is `requests`; the raw
    /// topic and the processor's outputs are named by `raw` and `outputs`.
    pub fn new(
        admin: Admin,
        registry: SchemaRegistry,
        web: Arc<Streams>,
        requests: impl Into<String>,
        raw: impl Into<String>,
        outputs: Vec<String>,
    ) -> Self {
        ClusterPipeline {
            admin: Arc::new(admin),
            registry,
            web,
            requests: requests.into(),
            raw: raw.into(),
            outputs,
            group_prefix: String::new(),
            clock: crate::system_clock(),
        }
    }

    /// The namespace (`--topic-prefix`) the producer's and the processor's application ids
    /// carry, so that their consumer groups are found (none by default).
    pub fn with_group_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.group_prefix = prefix.into();
        self
    }
}

const ELSEWHERE: &str = "runs in another process";

#[async_trait]
impl PipelineSource for ClusterPipeline {
    async fn snapshot(&self) -> Result<PipelineView, Error> {
        let elsewhere = StageState::Failed {
            reason: ELSEWHERE.into(),
        };
        let producer_group = format!("{}{}", self.group_prefix, ow_producer::APPLICATION_ID);
        let processor_group = format!("{}{}", self.group_prefix, ow_processor::APPLICATION_ID);
        let producer = StageView::new("producer", &producer_group)
            .with_state(elsewhere.clone())
            .with_reads([self.requests.clone()])
            .with_writes([self.raw.clone()]);
        let processor = StageView::new("processor", &processor_group)
            .with_state(elsewhere)
            .with_reads([self.raw.clone()])
            .with_writes(self.outputs.clone());
        let web = streams_stage("web", &self.web).with_writes([self.requests.clone()]);
        let mut view = PipelineView::new((self.clock)())
            .with_stage(producer)
            .with_stage(processor)
            .with_stage(web);
        for topic in topic_views(&self.admin).await? {
            view = view.with_topic(topic);
        }
        let admin = &self.admin;
        view = view.with_group(
            group_view(
                admin,
                &producer_group,
                "producer",
                std::slice::from_ref(&self.requests),
            )
            .await?,
        );
        view = view.with_group(
            group_view(
                admin,
                &processor_group,
                "processor",
                std::slice::from_ref(&self.raw),
            )
            .await?,
        );
        view = view.with_group(
            group_view(
                admin,
                &self.web.config().application_id,
                "web",
                &sources(&self.web.describe()),
            )
            .await?,
        );
        Ok(view)
    }
}

#[async_trait]
impl StageControl for ClusterPipeline {
    async fn pause(&self, stage: &str) -> Result<(), Error> {
        match stage {
            "web" => {
                self.web.pause();
                Ok(())
            }
            "producer" | "processor" => Err(Error::StageControl {
                stage: stage.to_string(),
                action: "pause",
                reason: ELSEWHERE.into(),
            }),
            other => Err(Error::UnknownStage {
                stage: other.to_string(),
            }),
        }
    }

    async fn resume(&self, stage: &str) -> Result<(), Error> {
        match stage {
            "web" => {
                self.web.resume();
                Ok(())
            }
            "producer" | "processor" => Err(Error::StageControl {
                stage: stage.to_string(),
                action: "resume",
                reason: ELSEWHERE.into(),
            }),
            other => Err(Error::UnknownStage {
                stage: other.to_string(),
            }),
        }
    }
}

#[async_trait]
impl TopicBrowser for ClusterPipeline {
    async fn last_records(&self, topic: &str, limit: usize) -> Result<Vec<BrowsedRecord>, Error> {
        last_records(&self.admin, &self.registry, topic, limit).await
    }
}
