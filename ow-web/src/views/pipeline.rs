//! `/pipeline`: the teaching page. The diagram, then one card per stage (state, pause/resume,
//! counters, topology text, records per node), the topics with their offsets and rates, and
//! the consumer groups with their lag. The page script refreshes the numbers from
//! `/api/pipeline` and shows a topic's last records when it is clicked; without script the
//! page is complete, and topics link to `/pipeline/topics/{name}`.

use maud::{Markup, html};
use ow_stream_core::topology::NodeKindDescription;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{layout, pipeline_diagram, topology_diagram};
use crate::format;
use crate::pipeline::{PipelineView, StageView};

/// Bytes kept as they are in a path segment: RFC 3986 unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` as one URL path segment.
pub(crate) fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// What the page may offer besides the view.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Features {
    /// Pause/resume buttons.
    pub(crate) control: bool,
    /// Topic record browser.
    pub(crate) browser: bool,
}

fn kind_label(kind: &NodeKindDescription) -> &'static str {
    match kind {
        NodeKindDescription::Source { .. } => "source",
        NodeKindDescription::Processor => "processor",
        NodeKindDescription::Sink { .. } => "sink",
    }
}

fn stage_card(stage: &StageView, features: Features) -> Markup {
    let action = if stage.paused { "resume" } else { "pause" };
    html! {
        article.stage-card id={ "stage-" (stage.name) } data-stage=(stage.name) {
            header {
                h3 { (stage.name) }
                span class={ "badge " (stage.state.label()) } data-live="stage-badge" data-stage=(stage.name) {
                    (stage.state.label()) @if stage.paused { ", paused" }
                }
                @if features.control {
                    form.inline-form method="post" action={ "/pipeline/stages/" (path_segment(&stage.name)) "/" (action) } {
                        button type="submit" { @if stage.paused { "Resume" } @else { "Pause" } }
                    }
                }
            }
            @if let crate::pipeline::StageState::Failed { reason } = &stage.state {
                p.notice.error { "Failed: " (reason) }
            }
            dl.stage-facts {
                dt { "Application id" } dd { code { (stage.application_id) } }
                @if let Some(m) = &stage.metrics {
                    dt { "Records consumed" } dd data-live="stage-consumed-total" data-stage=(stage.name) { (format::integer(m.records_consumed)) }
                    dt { "Records produced" } dd { (format::integer(m.records_produced)) }
                    dt { "Commits" } dd { (format::integer(m.commits)) }
                }
                dt { "Dead letters" } dd data-live="dlq" data-stage=(stage.name) { (format::integer(stage.dead_letters)) }
                dt { "Reads" } dd { (stage.input_topics().join(", ")) }
                dt { "Writes" } dd { (stage.output_topics().join(", ")) }
            }
            @if let Some(topology) = &stage.topology {
                p { a href={ "#topology-" (stage.name) } { "Topology diagram" } }
                details {
                    summary { "Topology as text (describe())" }
                    pre.topology { (topology) }
                }
                table.node-counts {
                    caption { "Records received per node" }
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Kind" } th scope="col" { "Records" } } }
                    tbody {
                        @for sub in &topology.subtopologies {
                            @for node in &sub.nodes {
                                tr {
                                    th scope="row" { code { (node.name) } }
                                    td { (kind_label(&node.kind)) }
                                    td.num data-live="node-count" data-stage=(stage.name) data-node=(node.name) {
                                        (format::integer(stage.node_counts.get(&node.name).copied().unwrap_or(0)))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page: the view when there is one, why there is none otherwise.
pub(crate) fn page(view: Result<&PipelineView, &str>, features: Features) -> Markup {
    layout::page(
        "Pipeline",
        None,
        html! {
            section.intro {
                h1 { "Pipeline" }
                p {
                    "The web writes player requests; the producer fetches them from OverFast and "
                    "writes raw answers; the processor turns them into four topics; the web reads "
                    "those into its own stores and draws these pages from them. "
                    "Click a topic to see its last records."
                }
            }
            @match view {
                Err(reason) => {
                    p.notice.warning { "Pipeline introspection is not available: " (reason) }
                }
                Ok(view) => {
                    div #pipeline data-pipeline-url="/api/pipeline" data-refresh-ms="2000"
                        data-browser=(if features.browser { "true" } else { "false" }) {
                        div.diagram-scroll { (pipeline_diagram::diagram(view)) }
                        section #topic-records aria-live="polite" hidden {}
                        p.muted {
                            "Snapshot of "
                            time datetime=(format::iso8601(view.generated_at)) data-live="generated-at" {
                                (format::time_of_day(view.generated_at))
                            }
                        }
                        section.stages aria-label="Stages" {
                            @for stage in &view.stages { (stage_card(stage, features)) }
                        }
                        @for stage in view.stages.iter().filter(|s| s.topology.is_some()) {
                            @if let Some(topology) = &stage.topology {
                                section.topology id={ "topology-" (stage.name) } aria-labelledby={ "topology-" (stage.name) "-heading" } {
                                    h2 id={ "topology-" (stage.name) "-heading" } { "Topology of the " (stage.name) }
                                    p.muted {
                                        "Its sub-topologies from " code { "describe()" } ": each node, the stores it "
                                        "uses and the records it has received (live)."
                                    }
                                    div.diagram-scroll { (topology_diagram::diagram(&stage.name, topology, &stage.node_counts)) }
                                }
                            }
                        }
                        section aria-labelledby="topics-title" {
                            h2 #topics-title { "Topics" }
                            div.table-scroll {
                                table.topics {
                                    thead { tr {
                                        th scope="col" { "Topic" } th scope="col" { "Partitions" }
                                        th scope="col" { "End offsets" } th scope="col" { "Records kept" } th scope="col" { "Messages/s" }
                                    } }
                                    tbody {
                                        @for topic in &view.topics {
                                            tr data-topic=(topic.name) {
                                                th scope="row" {
                                                    a href={ "/pipeline/topics/" (path_segment(&topic.name)) } data-topic=(topic.name) { (topic.name) }
                                                }
                                                td.num { (topic.partitions.len()) }
                                                td.num data-live="topic-end" data-topic=(topic.name) { (format::integer(topic.end_offset_total())) }
                                                td.num { (format::integer(topic.records())) }
                                                td.num data-live="topic-rate-cell" data-topic=(topic.name) {
                                                    @match topic.messages_per_sec { Some(r) => { (format!("{r:.1}")) } None => { "—" } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        section aria-labelledby="groups-title" {
                            h2 #groups-title { "Consumer groups" }
                            @if view.groups.is_empty() {
                                p.empty { "No consumer group information." }
                            } @else {
                                div.table-scroll {
                                    table.groups {
                                        thead { tr {
                                            th scope="col" { "Group" } th scope="col" { "Stage" } th scope="col" { "Topic" }
                                            th scope="col" { "Partition" } th scope="col" { "Committed" } th scope="col" { "Lag" }
                                        } }
                                        tbody {
                                            @for group in &view.groups {
                                                @for p in &group.partitions {
                                                    tr {
                                                        th scope="row" { (group.group) }
                                                        td { (group.stage.as_deref().unwrap_or("—")) }
                                                        td { (p.topic) }
                                                        td.num { (p.partition) }
                                                        td.num { (p.committed.map_or_else(|| "—".to_owned(), format::integer)) }
                                                        td.num { (p.lag.map_or_else(|| "—".to_owned(), format::integer)) }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
