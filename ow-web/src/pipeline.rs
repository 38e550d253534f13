//! The pipeline page's data model ([`PipelineView`]) and the three traits the running stack
//! implements to feed and steer it:
//!
//! | trait | what it does | page |
//! |---|---|---|
//! | [`PipelineSource`] | a snapshot of stages, topics, offsets and consumer groups | `/pipeline`, `/api/pipeline` |
//! | [`StageControl`] | pauses and resumes a stage | the pause/resume buttons |
//! | [`TopicBrowser`] | the last records of a topic, decoded to JSON | `/pipeline/topics/{name}`, `/api/topics/{name}/records` |
//!
//! Only [`PipelineSource::snapshot`], [`StageControl::pause`]/[`StageControl::resume`] and
//! [`TopicBrowser::last_records`] are required. The dashboard fills in what a source leaves
//! out: messages per second ([`TopicView::messages_per_sec`]) from the end offsets of
//! successive snapshots.
//!
//! When the web runs alone on Kafka it describes itself only ([`LocalStage`]: its own topology,
//! node counts, metrics and pause switch); the embedded stack implements the traits over all
//! three stages and the local backend's introspection.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use ow_stream_core::TopologyDescription;
use ow_stream_core::metrics::MetricsSnapshot;
use ow_stream_core::runtime::{BrokerConnectivity, Streams, StreamsState};
use ow_stream_core::topology::NodeKindDescription;
use parking_lot::Mutex;
use serde::Serialize;

use crate::Error;

/// Everything the pipeline page draws, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PipelineView {
    /// When the snapshot was taken, in milliseconds since the epoch.
    pub generated_at: i64,
    /// The stages in data-flow order (producer, processor, web).
    pub stages: Vec<StageView>,
    /// Every topic known, internal ones included.
    pub topics: Vec<TopicView>,
    /// Consumer groups and their lag.
    pub groups: Vec<GroupView>,
}

impl PipelineView {
    /// A snapshot taken at `generated_at`.
    pub fn new(generated_at: i64) -> PipelineView {
        PipelineView {
            generated_at,
            ..PipelineView::default()
        }
    }

    /// Adds a stage.
    pub fn with_stage(mut self, stage: StageView) -> Self {
        self.stages.push(stage);
        self
    }

    /// Adds a topic.
    pub fn with_topic(mut self, topic: TopicView) -> Self {
        self.topics.push(topic);
        self
    }

    /// Adds a consumer group.
    pub fn with_group(mut self, group: GroupView) -> Self {
        self.groups.push(group);
        self
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicView> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageView> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The lag of `group` on `topic`, summed over partitions (`None` when unknown).
    pub fn lag(&self, group: &str, topic: &str) -> Option<i64> {
        let g = self.groups.iter().find(|g| g.group == group)?;
        let lags: Vec<i64> = g
            .partitions
            .iter()
            .filter(|p| p.topic == topic)
            .filter_map(|p| p.lag)
            .collect();
        (!lags.is_empty()).then(|| lags.iter().sum())
    }
}

/// Whether a stage runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageState {
    /// Running (possibly paused: see [`StageView::paused`]).
    #[default]
    Running,
    /// Starting or restoring its stores.
    Starting,
    /// Stopped.
    Stopped,
    /// Failed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl StageState {
    /// A short label.
    pub fn label(&self) -> &'static str {
        match self {
            StageState::Running => "running",
            StageState::Starting => "starting",
            StageState::Stopped => "stopped",
            StageState::Failed { .. } => "failed",
        }
    }
}

/// One stage of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StageView {
    /// `producer`, `processor` or `web`: the name used in URLs (`/pipeline/stages/{name}/pause`).
    pub name: String,
    /// Its application id (its consumer group, the prefix of its internal topics).
    pub application_id: String,
    /// Whether it runs.
    pub state: StageState,
    /// Whether it is paused.
    pub paused: bool,
    /// Its topology, for stages written with the DSL (`Streams::describe()`).
    pub topology: Option<TopologyDescription>,
    /// Topics it reads outside a topology (the producer's consumer).
    pub reads: Vec<String>,
    /// Topics it writes outside a topology (the producer's raw events, the web's requests).
    pub writes: Vec<String>,
    /// Records received per topology node.
    pub node_counts: BTreeMap<String, u64>,
    /// Its library counters, when it has them.
    pub metrics: Option<MetricsSnapshot>,
    /// Records it sent to its dead-letter topic.
    pub dead_letters: u64,
}

impl StageView {
    /// A running stage called `name` with application id `application_id`.
    pub fn new(name: impl Into<String>, application_id: impl Into<String>) -> StageView {
        StageView {
            name: name.into(),
            application_id: application_id.into(),
            ..StageView::default()
        }
    }

    /// Sets its topology.
    pub fn with_topology(mut self, topology: TopologyDescription) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Sets the topics it reads outside a topology.
    pub fn with_reads(mut self, topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.reads = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the topics it writes outside a topology.
    pub fn with_writes(mut self, topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.writes = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Sets its node counts.
    pub fn with_node_counts(mut self, counts: BTreeMap<String, u64>) -> Self {
        self.node_counts = counts;
        self
    }

    /// Sets its metrics (and the dead-letter count from them).
    pub fn with_metrics(mut self, metrics: MetricsSnapshot) -> Self {
        self.dead_letters = metrics.dead_letters;
        self.metrics = Some(metrics);
        self
    }

    /// Sets whether it is paused.
    pub fn with_paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Sets its state.
    pub fn with_state(mut self, state: StageState) -> Self {
        self.state = state;
        self
    }

    /// Every topic it reads: its topology's sources and [`StageView::reads`], without its
    /// internal topics (`<application_id>-…`).
    pub fn input_topics(&self) -> Vec<String> {
        self.topics(true)
    }

    /// Every topic it writes: its topology's sinks and [`StageView::writes`], without its
    /// internal topics.
    pub fn output_topics(&self) -> Vec<String> {
        self.topics(false)
    }

    fn topics(&self, inputs: bool) -> Vec<String> {
        let internal = format!("{}-", self.application_id);
        let mut out: BTreeSet<String> = if inputs {
            self.reads.iter().cloned().collect()
        } else {
            self.writes.iter().cloned().collect()
        };
        for sub in self.topology.iter().flat_map(|t| &t.subtopologies) {
            for node in &sub.nodes {
                match (&node.kind, inputs) {
                    (NodeKindDescription::Source { topic, .. }, true)
                    | (NodeKindDescription::Sink { topic, .. }, false) => {
                        out.insert(topic.clone());
                    }
                    _ => {}
                }
            }
        }
        out.into_iter()
            .filter(|t| self.application_id.is_empty() || !t.starts_with(&internal))
            .collect()
    }

    /// The names of its stores.
    pub fn stores(&self) -> Vec<String> {
        self.topology
            .iter()
            .flat_map(|t| &t.stores)
            .map(|s| s.name.clone())
            .collect()
    }
}

/// One partition of a topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionView {
    /// The partition number.
    pub partition: i32,
    /// Offset of its first record still kept.
    pub start_offset: i64,
    /// Offset the next record will get.
    pub end_offset: i64,
}

/// One topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TopicView {
    /// The topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionView>,
    /// Records written per second lately; filled in by the dashboard when the source leaves it
    /// out.
    pub messages_per_sec: Option<f64>,
}

impl TopicView {
    /// A topic with its partitions.
    pub fn new(name: impl Into<String>, partitions: Vec<PartitionView>) -> TopicView {
        TopicView {
            name: name.into(),
            partitions,
            messages_per_sec: None,
        }
    }

    /// Sum of the end offsets: records ever written.
    pub fn end_offset_total(&self) -> i64 {
        self.partitions.iter().map(|p| p.end_offset).sum()
    }

    /// Records kept (end minus start offsets).
    pub fn records(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| (p.end_offset - p.start_offset).max(0))
            .sum()
    }
}

/// A consumer group's position on one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// End offset minus committed offset, when both are known.
    pub lag: Option<i64>,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupView {
    /// The group id.
    pub group: String,
    /// The stage it belongs to, when known.
    pub stage: Option<String>,
    /// Its positions.
    pub partitions: Vec<GroupLag>,
}

impl GroupView {
    /// A group with its positions.
    pub fn new(group: impl Into<String>, partitions: Vec<GroupLag>) -> GroupView {
        GroupView {
            group: group.into(),
            stage: None,
            partitions,
        }
    }

    /// Names the stage the group belongs to.
    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    /// The lag summed over partitions where it is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// Where the pipeline page gets its data.
#[async_trait]
pub trait PipelineSource: Send + Sync + 'static {
    /// Stages, topics with their offsets, and consumer groups, now.
    async fn snapshot(&self) -> Result<PipelineView, Error>;
}

/// Pauses and resumes stages (what the buttons on the pipeline page do).
#[async_trait]
pub trait StageControl: Send + Sync + 'static {
    /// Stops `stage` taking records; [`Error::UnknownStage`] when there is no such stage.
    async fn pause(&self, stage: &str) -> Result<(), Error>;
    /// Lets `stage` take records again.
    async fn resume(&self, stage: &str) -> Result<(), Error>;
}

/// A record of a topic, decoded for display.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BrowsedRecord {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp, in milliseconds since the epoch.
    pub timestamp: i64,
    /// The key, decoded (`null` when absent).
    pub key: serde_json::Value,
    /// The value, decoded (`None`: a tombstone).
    pub value: Option<serde_json::Value>,
    /// Header names and values (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// Why the key or value could not be decoded (they are then shown as received).
    pub error: Option<String>,
}

impl BrowsedRecord {
    /// A record at `partition`/`offset`.
    pub fn new(
        partition: i32,
        offset: i64,
        timestamp: i64,
        key: serde_json::Value,
        value: Option<serde_json::Value>,
    ) -> BrowsedRecord {
        BrowsedRecord {
            partition,
            offset,
            timestamp,
            key,
            value,
            headers: Vec::new(),
            error: None,
        }
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// Says why it could not be decoded.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// Reads the last records of a topic (clicking a topic on the pipeline page).
#[async_trait]
pub trait TopicBrowser: Send + Sync + 'static {
    /// The last `limit` records of `topic` over all partitions, newest first;
    /// [`Error::UnknownTopic`] when there is no such topic.
    async fn last_records(&self, topic: &str, limit: usize) -> Result<Vec<BrowsedRecord>, Error>;
}

/// Messages per second of every topic, from the end offsets of successive snapshots.
#[derive(Default)]
pub(crate) struct RateTracker {
    samples: Mutex<HashMap<String, VecDeque<(i64, i64)>>>,
}

/// Samples kept per topic: enough for a 10-second window at two polls a second.
const RATE_SAMPLES: usize = 32;
/// The window a rate is averaged over, in milliseconds.
const RATE_WINDOW_MS: i64 = 10_000;

/// The rate over `samples` (time in ms, total end offset), newest last, as seen at the newest
/// sample: from the oldest sample at most [`RATE_WINDOW_MS`] older (or the oldest one).
pub(crate) fn rate(samples: &VecDeque<(i64, i64)>) -> Option<f64> {
    let &(t1, o1) = samples.back()?;
    let &(t0, o0) = samples
        .iter()
        .find(|(t, _)| t1 - *t <= RATE_WINDOW_MS)
        .filter(|(t, _)| *t < t1)
        .or_else(|| samples.iter().rev().nth(1))?;
    if t1 <= t0 {
        return None;
    }
    Some(((o1 - o0).max(0) as f64) * 1000.0 / ((t1 - t0) as f64))
}

impl RateTracker {
    /// Records the view's end offsets at its time and fills in the rates it lacks.
    pub(crate) fn fill(&self, view: &mut PipelineView) {
        let mut samples = self.samples.lock();
        for topic in &mut view.topics {
            let entry = samples.entry(topic.name.clone()).or_default();
            let total = topic.end_offset_total();
            match entry.back() {
                Some(&(t, _)) if t >= view.generated_at => {}
                _ => entry.push_back((view.generated_at, total)),
            }
            while entry.len() > RATE_SAMPLES {
                entry.pop_front();
            }
            if topic.messages_per_sec.is_none() {
                topic.messages_per_sec = rate(entry);
            }
        }
        let known: BTreeSet<&str> = view.topics.iter().map(|t| t.name.as_str()).collect();
        samples.retain(|name, _| known.contains(name.as_str()));
    }
}

/// What the dashboard knows of a running streams app: enough for `/metrics` and `/healthz`.
pub trait StreamsProbe: Send + Sync + 'static {
    /// Its application id.
    fn application_id(&self) -> String;
    /// Its counters.
    fn metrics(&self) -> MetricsSnapshot;
    /// Where it is in its life.
    fn state(&self) -> StreamsState;
    /// Its first failure, if any.
    fn failure(&self) -> Option<String>;
    /// Whether it reaches its brokers (default: it does).
    fn broker_connectivity(&self) -> BrokerConnectivity {
        BrokerConnectivity::Connected
    }
    /// Appends its metrics in the OpenMetrics text format, without the closing `# EOF`
    /// (default: none).
    fn encode_metrics(&self, out: &mut String) -> std::fmt::Result {
        let _ = out;
        Ok(())
    }
}

impl StreamsProbe for Streams {
    fn application_id(&self) -> String {
        self.config().application_id.clone()
    }

    fn metrics(&self) -> MetricsSnapshot {
        Streams::metrics(self)
    }

    fn state(&self) -> StreamsState {
        Streams::state(self)
    }

    fn failure(&self) -> Option<String> {
        Streams::failure(self)
    }

    fn broker_connectivity(&self) -> BrokerConnectivity {
        Streams::broker_connectivity(self)
    }

    fn encode_metrics(&self, out: &mut String) -> std::fmt::Result {
        ow_stream_core::metrics::prometheus_client::encoding::text::encode_registry(
            out,
            self.metrics_registry(),
        )
    }
}

/// The stage state of a streams app.
pub(crate) fn stage_state(state: StreamsState, failure: Option<String>) -> StageState {
    if let Some(reason) = failure {
        return StageState::Failed { reason };
    }
    match state {
        StreamsState::Created => StageState::Starting,
        StreamsState::Running => StageState::Running,
        StreamsState::PendingShutdown | StreamsState::NotRunning => StageState::Stopped,
        StreamsState::Error => StageState::Failed {
            reason: "failed".into(),
        },
        // States the library may add later.
        _ => StageState::Stopped,
    }
}

/// One stage described by its own [`Streams`]: the web stage when it runs alone on Kafka.
///
/// As a [`PipelineSource`] it reports that stage only (topology, node counts, metrics, paused
/// flag, and the topics it writes outside its topology) with no offsets, since the library has
/// no topic introspection for Kafka yet; as a [`StageControl`] it pauses and resumes it.
pub struct LocalStage {
    name: String,
    streams: Arc<Streams>,
    writes: Vec<String>,
    clock: crate::Clock,
}

impl LocalStage {
    /// The stage `name` run by `streams`, writing `writes` outside its topology.
    pub fn new(
        name: impl Into<String>,
        streams: Arc<Streams>,
        writes: impl IntoIterator<Item = impl Into<String>>,
    ) -> LocalStage {
        LocalStage {
            name: name.into(),
            streams,
            writes: writes.into_iter().map(Into::into).collect(),
            clock: crate::system_clock(),
        }
    }

    fn check(&self, stage: &str) -> Result<(), Error> {
        if stage == self.name {
            Ok(())
        } else {
            Err(Error::UnknownStage {
                stage: stage.to_owned(),
            })
        }
    }
}

#[async_trait]
impl PipelineSource for LocalStage {
    async fn snapshot(&self) -> Result<PipelineView, Error> {
        let s = &self.streams;
        let stage = StageView::new(&self.name, &s.config().application_id)
            .with_state(stage_state(s.state(), s.failure()))
            .with_topology(s.describe())
            .with_node_counts(s.node_counts())
            .with_metrics(s.metrics())
            .with_writes(self.writes.clone())
            .with_paused(s.is_paused());
        let mut view = PipelineView::new((self.clock)());
        let mut names: BTreeSet<String> = stage.input_topics().into_iter().collect();
        names.extend(stage.output_topics());
        for name in names {
            view = view.with_topic(TopicView::new(name, Vec::new()));
        }
        Ok(view.with_stage(stage))
    }
}

#[async_trait]
impl StageControl for LocalStage {
    async fn pause(&self, stage: &str) -> Result<(), Error> {
        self.check(stage)?;
        self.streams.pause();
        Ok(())
    }

    async fn resume(&self, stage: &str) -> Result<(), Error> {
        self.check(stage)?;
        self.streams.resume();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_a_window() {
        let s: VecDeque<(i64, i64)> = [(0, 0), (1_000, 10), (2_000, 30)].into();
        assert_eq!(rate(&s), Some(15.0));
        let one: VecDeque<(i64, i64)> = [(0, 5)].into();
        assert_eq!(rate(&one), None);
        // Samples older than the window are skipped.
        let s: VecDeque<(i64, i64)> = [(0, 0), (20_000, 100), (25_000, 150)].into();
        assert_eq!(rate(&s), Some(10.0));
        // Offsets never go back (a topic re-created): no negative rates.
        let s: VecDeque<(i64, i64)> = [(0, 100), (1_000, 0)].into();
        assert_eq!(rate(&s), Some(0.0));
    }

    #[test]
    fn tracker_fills_missing_rates() {
        let tracker = RateTracker::default();
        let view = |at: i64, end: i64| {
            PipelineView::new(at).with_topic(TopicView::new(
                "t",
                vec![PartitionView {
                    partition: 0,
                    start_offset: 0,
                    end_offset: end,
                }],
            ))
        };
        let mut first = view(1_000, 10);
        tracker.fill(&mut first);
        assert_eq!(first.topics[0].messages_per_sec, None);
        let mut second = view(3_000, 30);
        tracker.fill(&mut second);
        assert_eq!(second.topics[0].messages_per_sec, Some(10.0));
    }

    #[test]
    fn lag_and_totals() {
        let view = PipelineView::new(0).with_group(
            GroupView::new(
                "ow-web",
                vec![
                    GroupLag {
                        topic: "a".into(),
                        partition: 0,
                        committed: Some(5),
                        lag: Some(3),
                    },
                    GroupLag {
                        topic: "a".into(),
                        partition: 1,
                        committed: None,
                        lag: None,
                    },
                    GroupLag {
                        topic: "b".into(),
                        partition: 0,
                        committed: Some(1),
                        lag: Some(4),
                    },
                ],
            )
            .with_stage("web"),
        );
        assert_eq!(view.lag("ow-web", "a"), Some(3));
        assert_eq!(view.lag("ow-web", "c"), None);
        assert_eq!(view.groups[0].total_lag(), 7);
    }
}
