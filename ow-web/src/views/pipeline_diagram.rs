//! The pipeline as an SVG diagram: stages, the topics between them and each stage's stores as
//! boxes, with edges from writers to topics and from topics to readers.
//!
//! Layout: stage `i` (in the view's order) takes column `2i + 1`; a topic sits in the column
//! just before its first reader (or just after its last writer when nobody reads it), so data
//! flows left to right; the one edge that goes back (the web's requests to the producer) runs
//! under the boxes. A stage's stores hang under it. Texts that change (counts, rates, lag,
//! state) carry `data-live` attributes for the page script to update.

use std::collections::{BTreeMap, BTreeSet};

use maud::{Markup, html};

use crate::format;
use crate::pipeline::{PipelineView, StageView};

const COLUMN_WIDTH: f64 = 200.0;
const BOX_WIDTH: f64 = 160.0;
const STAGE_HEIGHT: f64 = 70.0;
const TOPIC_HEIGHT: f64 = 54.0;
const STORE_HEIGHT: f64 = 30.0;
const GAP: f64 = 18.0;
const MARGIN: f64 = 20.0;
/// Room under the boxes for edges that go back.
const RETURN_LANE: f64 = 50.0;

#[derive(Clone, Debug, PartialEq)]
enum BoxKind {
    Stage(usize),
    Topic(String),
    Store { stage: usize, name: String },
}

#[derive(Clone, Debug)]
struct Placed {
    kind: BoxKind,
    x: f64,
    y: f64,
    height: f64,
}

impl Placed {
    fn right(&self) -> (f64, f64) {
        (self.x + BOX_WIDTH, self.y + self.height / 2.0)
    }
    fn left(&self) -> (f64, f64) {
        (self.x, self.y + self.height / 2.0)
    }
    fn bottom(&self) -> (f64, f64) {
        (self.x + BOX_WIDTH / 2.0, self.y + self.height)
    }
}

/// The topics a diagram shows: every topic a stage reads or writes, and every other topic of
/// the view that is not internal to a stage.
pub(crate) fn shown_topics(view: &PipelineView) -> Vec<String> {
    let internal: Vec<String> = view
        .stages
        .iter()
        .filter(|s| !s.application_id.is_empty())
        .map(|s| format!("{}-", s.application_id))
        .collect();
    let mut topics: BTreeSet<String> = BTreeSet::new();
    for stage in &view.stages {
        topics.extend(stage.input_topics());
        topics.extend(stage.output_topics());
    }
    topics.extend(
        view.topics
            .iter()
            .map(|t| t.name.clone())
            .filter(|name| !internal.iter().any(|p| name.starts_with(p.as_str()))),
    );
    topics.into_iter().collect()
}

struct Layout {
    boxes: Vec<Placed>,
    width: f64,
    height: f64,
    /// Bottom of the tallest column, where the return lane starts.
    lane_top: f64,
}

fn layout(view: &PipelineView, topics: &[String]) -> Layout {
    let stage_col = |i: usize| 2 * i + 1;
    let readers = |t: &str| -> Vec<usize> {
        (0..view.stages.len())
            .filter(|&i| view.stages[i].input_topics().iter().any(|x| x == t))
            .collect()
    };
    let writers = |t: &str| -> Vec<usize> {
        (0..view.stages.len())
            .filter(|&i| view.stages[i].output_topics().iter().any(|x| x == t))
            .collect()
    };
    let mut columns: BTreeMap<usize, Vec<(BoxKind, f64)>> = BTreeMap::new();
    for topic in topics {
        let col = match (readers(topic).first(), writers(topic).last()) {
            (Some(&r), _) => stage_col(r) - 1,
            (None, Some(&w)) => stage_col(w) + 1,
            (None, None) => 0,
        };
        columns
            .entry(col)
            .or_default()
            .push((BoxKind::Topic(topic.clone()), TOPIC_HEIGHT));
    }
    for (i, stage) in view.stages.iter().enumerate() {
        let col = columns.entry(stage_col(i)).or_default();
        col.push((BoxKind::Stage(i), STAGE_HEIGHT));
        for store in stage.stores() {
            col.push((
                BoxKind::Store {
                    stage: i,
                    name: store,
                },
                STORE_HEIGHT,
            ));
        }
    }
    let column_height = |items: &[(BoxKind, f64)]| -> f64 {
        items.iter().map(|(_, h)| h).sum::<f64>() + GAP * items.len().saturating_sub(1) as f64
    };
    let tallest = columns
        .values()
        .map(|c| column_height(c))
        .fold(0.0, f64::max);
    let mut boxes = Vec::new();
    for (col, items) in &columns {
        let x = MARGIN + *col as f64 * COLUMN_WIDTH;
        let mut y = MARGIN + (tallest - column_height(items)) / 2.0;
        for (kind, height) in items {
            boxes.push(Placed {
                kind: kind.clone(),
                x,
                y,
                height: *height,
            });
            // Stores hang close under their stage.
            let gap = if matches!(kind, BoxKind::Stage(_) | BoxKind::Store { .. }) {
                GAP / 2.0
            } else {
                GAP
            };
            y += height + gap;
        }
    }
    let columns_used = columns.keys().max().map_or(1, |c| c + 1);
    Layout {
        boxes,
        width: MARGIN * 2.0 + (columns_used as f64 - 1.0) * COLUMN_WIDTH + BOX_WIDTH,
        height: MARGIN * 2.0 + tallest + RETURN_LANE,
        lane_top: MARGIN + tallest,
    }
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// A forward edge from `(x1, y1)` to `(x2, y2)`.
fn forward(from: (f64, f64), to: (f64, f64)) -> String {
    let bend = ((to.0 - from.0) / 2.0).max(20.0);
    format!(
        "M {} {} C {} {}, {} {}, {} {}",
        n(from.0),
        n(from.1),
        n(from.0 + bend),
        n(from.1),
        n(to.0 - bend),
        n(to.1),
        n(to.0),
        n(to.1)
    )
}

/// An edge that goes back to the left, under the boxes.
fn backward(from: (f64, f64), to: (f64, f64), lane: f64) -> String {
    format!(
        "M {} {} C {} {}, {} {}, {} {}",
        n(from.0),
        n(from.1),
        n(from.0),
        n(lane),
        n(to.0),
        n(lane),
        n(to.0),
        n(to.1)
    )
}

fn stage_box(stage: &StageView, p: &Placed) -> Markup {
    let consumed = stage.metrics.as_ref().map(|m| m.records_consumed);
    html! {
        g.node.stage data-stage=(stage.name) {
            rect.stage-box.paused[stage.paused] x=(n(p.x)) y=(n(p.y)) width=(n(BOX_WIDTH)) height=(n(p.height)) rx="8" {}
            text.box-title x=(n(p.x + 10.0)) y=(n(p.y + 22.0)) { (stage.name) }
            text.box-detail x=(n(p.x + 10.0)) y=(n(p.y + 40.0)) data-live="stage-state" data-stage=(stage.name) {
                (stage.state.label()) @if stage.paused { " · paused" }
            }
            text.box-detail x=(n(p.x + 10.0)) y=(n(p.y + 58.0)) data-live="stage-consumed" data-stage=(stage.name) {
                @if let Some(c) = consumed { (format::integer(c)) " records in" } @else { (stage.application_id) }
            }
        }
    }
}

fn topic_box(view: &PipelineView, name: &str, p: &Placed) -> Markup {
    let topic = view.topic(name);
    html! {
        a.node.topic href={ "/pipeline/topics/" (super::pipeline::path_segment(name)) } data-topic=(name) {
            rect.topic-box x=(n(p.x)) y=(n(p.y)) width=(n(BOX_WIDTH)) height=(n(p.height)) rx="26" {}
            text.box-title.topic-name x=(n(p.x + 14.0)) y=(n(p.y + 22.0)) { (name) }
            text.box-detail x=(n(p.x + 14.0)) y=(n(p.y + 40.0)) {
                tspan data-live="topic-records" data-topic=(name) {
                    @match topic { Some(t) if !t.partitions.is_empty() => { (format::integer(t.records())) " records" } _ => { "offsets unknown" } }
                }
                " · "
                tspan data-live="topic-rate" data-topic=(name) {
                    @match topic.and_then(|t| t.messages_per_sec) { Some(r) => { (format!("{r:.1}")) "/s" } None => { "—/s" } }
                }
            }
        }
    }
}

/// Where a lag label goes, and which group and topic it is for.
struct LagLabel {
    x: f64,
    y: f64,
    group: String,
    topic: String,
}

/// One edge: its SVG path, its class, and its lag label (edges into a reader).
struct Edge {
    path: String,
    class: &'static str,
    label: Option<LagLabel>,
}

/// The diagram of `view`.
pub(crate) fn diagram(view: &PipelineView) -> Markup {
    let topics = shown_topics(view);
    let l = layout(view, &topics);
    let find = |kind: &BoxKind| l.boxes.iter().find(|b| b.kind == *kind);
    let mut edges: Vec<Edge> = Vec::new();
    for (i, stage) in view.stages.iter().enumerate() {
        let Some(sp) = find(&BoxKind::Stage(i)) else {
            continue;
        };
        for t in stage.input_topics() {
            if let Some(tp) = find(&BoxKind::Topic(t.clone())) {
                let (from, to) = (tp.right(), sp.left());
                let path = if from.0 <= to.0 {
                    forward(from, to)
                } else {
                    backward(tp.bottom(), sp.bottom(), l.lane_top + RETURN_LANE - 10.0)
                };
                let mid = ((from.0 + to.0) / 2.0, (from.1 + to.1) / 2.0 - 6.0);
                edges.push(Edge {
                    path,
                    class: "edge read",
                    label: Some(LagLabel {
                        x: mid.0,
                        y: mid.1,
                        group: stage.application_id.clone(),
                        topic: t.clone(),
                    }),
                });
            }
        }
        for t in stage.output_topics() {
            if let Some(tp) = find(&BoxKind::Topic(t.clone())) {
                let (from, to) = (sp.right(), tp.left());
                let path = if from.0 <= to.0 {
                    forward(from, to)
                } else {
                    backward(sp.bottom(), tp.bottom(), l.lane_top + RETURN_LANE - 10.0)
                };
                edges.push(Edge {
                    path,
                    class: "edge write",
                    label: None,
                });
            }
        }
    }
    html! {
        svg.pipeline-diagram viewBox={ "0 0 " (n(l.width)) " " (n(l.height)) } role="img"
            aria-labelledby="pipeline-diagram-title" data-stages=(view.stages.len())
            data-topics=(topics.len()) {
            title #pipeline-diagram-title {
                "Pipeline: " (view.stages.len()) " stages, " (topics.len()) " topics"
            }
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path.arrow-head d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            g.edges {
                @for edge in &edges {
                    path class=(edge.class) d=(edge.path) marker-end="url(#arrow)" {}
                }
                @for label in edges.iter().filter_map(|e| e.label.as_ref()) {
                    @if let Some(lag) = view.lag(&label.group, &label.topic) {
                        text.edge-label x=(n(label.x)) y=(n(label.y)) text-anchor="middle"
                            data-live="lag" data-group=(label.group) data-topic=(label.topic) {
                            "lag " (format::integer(lag))
                        }
                    }
                }
            }
            @for b in &l.boxes {
                @match &b.kind {
                    BoxKind::Stage(i) => { (stage_box(&view.stages[*i], b)) }
                    BoxKind::Topic(name) => { (topic_box(view, name, b)) }
                    BoxKind::Store { stage, name } => {
                        g.node.store data-store=(name) data-stage=(view.stages[*stage].name) {
                            rect.store-box x=(n(b.x + 12.0)) y=(n(b.y)) width=(n(BOX_WIDTH - 24.0)) height=(n(b.height)) rx="4" {}
                            text.box-detail x=(n(b.x + 22.0)) y=(n(b.y + 19.0)) { "▤ " (name) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ow_stream_core::registry::SchemaRegistry;

    use super::*;
    use crate::pipeline::{GroupLag, GroupView, PartitionView, TopicView};

    fn view() -> PipelineView {
        let topics = crate::Topics::new(&SchemaRegistry::mock("diagram-tests"), "").unwrap();
        let web = crate::materialize::topology(&topics)
            .unwrap()
            .describe_for_application("ow-web");
        PipelineView::new(0)
            .with_stage(
                StageView::new("producer", "ow-producer")
                    .with_reads(["ow.player-requests"])
                    .with_writes(["ow.raw.player-profiles"]),
            )
            .with_stage(
                StageView::new("processor", "ow-processor")
                    .with_reads(["ow.raw.player-profiles"])
                    .with_writes([
                        "ow.players.profile",
                        "ow.stats.by-category",
                        "ow.stats.deltas",
                        "ow.stats.daily",
                    ]),
            )
            .with_stage(
                StageView::new("web", "ow-web")
                    .with_topology(web)
                    .with_writes(["ow.player-requests"])
                    .with_paused(true),
            )
            .with_topic(TopicView::new(
                "ow.stats.deltas",
                vec![PartitionView {
                    partition: 0,
                    start_offset: 0,
                    end_offset: 1234,
                }],
            ))
            .with_topic(TopicView::new("ow-web-player-stats-changelog", vec![]))
            .with_group(GroupView::new(
                "ow-web",
                vec![GroupLag {
                    topic: "ow.stats.deltas".into(),
                    partition: 0,
                    committed: Some(1200),
                    lag: Some(34),
                }],
            ))
    }

    #[test]
    fn boxes_edges_and_live_fields() {
        let v = view();
        let topics = shown_topics(&v);
        assert_eq!(topics.len(), 6, "{topics:?}: internal topics are hidden");
        let svg = diagram(&v).into_string();
        assert_eq!(svg.matches("<g class=\"node stage\"").count(), 3);
        assert_eq!(svg.matches("<a class=\"node topic\"").count(), 6);
        assert_eq!(svg.matches("<g class=\"node store\"").count(), 5);
        // requests→producer, raw→processor, 4 outputs→web; producer→raw, processor→4, web→requests.
        assert_eq!(svg.matches("class=\"edge read\"").count(), 6);
        assert_eq!(svg.matches("class=\"edge write\"").count(), 6);
        assert!(svg.contains("href=\"/pipeline/topics/ow.stats.deltas\""));
        assert!(svg.contains("1,234 records"));
        assert!(svg.contains("lag 34"));
        assert!(svg.contains("class=\"stage-box paused\""));
        assert!(svg.contains("running · paused"));
    }

    #[test]
    fn columns_follow_the_flow() {
        let v = view();
        let l = layout(&v, &shown_topics(&v));
        let x_of = |k: BoxKind| l.boxes.iter().find(|b| b.kind == k).unwrap().x;
        let requests = x_of(BoxKind::Topic("ow.player-requests".into()));
        let producer = x_of(BoxKind::Stage(0));
        let raw = x_of(BoxKind::Topic("ow.raw.player-profiles".into()));
        let processor = x_of(BoxKind::Stage(1));
        let daily = x_of(BoxKind::Topic("ow.stats.daily".into()));
        let web = x_of(BoxKind::Stage(2));
        assert!(requests < producer && producer < raw && raw < processor);
        assert!(processor < daily && daily < web);
    }
}
