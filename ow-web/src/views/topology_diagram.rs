//! A stage's topology (from `Streams::describe()`) as an SVG diagram: one band per
//! sub-topology, its nodes in columns by depth (sources on the left, sinks on the right), edges
//! from each node to its successors, the stores a node uses and the records it received so far
//! (a `data-live="node-count"` field the page script updates).

use std::collections::{BTreeMap, HashMap};

use maud::{Markup, html};
use ow_stream_core::topology::{NodeDescription, NodeKindDescription, TopologyDescription};

use crate::format;

const NODE_WIDTH: f64 = 190.0;
const NODE_HEIGHT: f64 = 72.0;
const COLUMN_GAP: f64 = 36.0;
const ROW_GAP: f64 = 12.0;
const BAND_TITLE: f64 = 26.0;
const BAND_GAP: f64 = 16.0;
const MARGIN: f64 = 12.0;
/// Characters of a text line that fit in a node box.
const LINE_CHARS: usize = 28;

/// One node, placed.
struct Placed<'a> {
    node: &'a NodeDescription,
    x: f64,
    y: f64,
}

/// A sub-topology's band: its title's baseline and its nodes.
struct Band<'a> {
    id: u32,
    top: f64,
    nodes: Vec<Placed<'a>>,
}

/// Depth of each node of a sub-topology: 0 for sources, else one more than its deepest
/// predecessor (nodes form a DAG; a cycle, which `build` refuses, would stop at the node count).
fn depths(nodes: &[NodeDescription]) -> HashMap<&str, usize> {
    let mut depth: HashMap<&str, usize> = nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for n in nodes {
            let d = n
                .predecessors
                .iter()
                .filter_map(|p| depth.get(p.as_str()))
                .map(|d| d + 1)
                .max()
                .unwrap_or(0);
            if depth.get(n.name.as_str()) != Some(&d) {
                depth.insert(&n.name, d);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

fn layout(topology: &TopologyDescription) -> (Vec<Band<'_>>, f64, f64) {
    let mut bands = Vec::new();
    let mut top = MARGIN;
    let mut width: f64 = 0.0;
    for sub in &topology.subtopologies {
        let depth = depths(&sub.nodes);
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        let mut nodes = Vec::new();
        for node in &sub.nodes {
            let d = depth.get(node.name.as_str()).copied().unwrap_or(0);
            let row = rows.entry(d).or_insert(0);
            nodes.push(Placed {
                node,
                x: MARGIN + d as f64 * (NODE_WIDTH + COLUMN_GAP),
                y: top + BAND_TITLE + *row as f64 * (NODE_HEIGHT + ROW_GAP),
            });
            *row += 1;
        }
        let columns = rows.keys().max().map_or(1, |d| d + 1);
        let height = rows.values().max().copied().unwrap_or(0) as f64 * (NODE_HEIGHT + ROW_GAP);
        width = width.max(MARGIN * 2.0 + columns as f64 * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP);
        bands.push(Band {
            id: sub.id,
            top,
            nodes,
        });
        top += BAND_TITLE + height + BAND_GAP;
    }
    (bands, width.max(NODE_WIDTH + 2.0 * MARGIN), top)
}

/// `text` cut to what fits in a box, with an ellipsis.
fn fit(text: &str) -> String {
    if text.chars().count() <= LINE_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(LINE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The second line of a node: what it reads or writes.
fn detail(node: &NodeDescription) -> String {
    match &node.kind {
        NodeKindDescription::Source { topic, .. } => format!("◀ {topic}"),
        NodeKindDescription::Sink { topic, .. } => format!("▶ {topic}"),
        NodeKindDescription::Processor => "processor".to_owned(),
    }
}

/// The third line of a node: the stores it uses, if any.
fn stores(node: &NodeDescription) -> Option<String> {
    (!node.stores.is_empty()).then(|| format!("▤ {}", node.stores.join(", ")))
}

fn class(node: &NodeDescription) -> &'static str {
    match node.kind {
        NodeKindDescription::Source { .. } => "node-box source",
        NodeKindDescription::Sink { .. } => "node-box sink",
        NodeKindDescription::Processor => "node-box processor",
    }
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// The diagram of `stage`'s topology with the records each node received.
pub(crate) fn diagram(
    stage: &str,
    topology: &TopologyDescription,
    counts: &BTreeMap<String, u64>,
) -> Markup {
    let (bands, width, height) = layout(topology);
    let mut edges = Vec::new();
    for band in &bands {
        let at: HashMap<&str, &Placed<'_>> = band
            .nodes
            .iter()
            .map(|p| (p.node.name.as_str(), p))
            .collect();
        for from in &band.nodes {
            for successor in &from.node.successors {
                if let Some(to) = at.get(successor.as_str()) {
                    let (x1, y1) = (from.x + NODE_WIDTH, from.y + NODE_HEIGHT / 2.0);
                    let (x2, y2) = (to.x, to.y + NODE_HEIGHT / 2.0);
                    let bend = (x2 - x1).abs() / 2.0;
                    edges.push(format!(
                        "M {} {} C {} {}, {} {}, {} {}",
                        n(x1),
                        n(y1),
                        n(x1 + bend),
                        n(y1),
                        n(x2 - bend),
                        n(y2),
                        n(x2 - 1.0),
                        n(y2)
                    ));
                }
            }
        }
    }
    let nodes: usize = bands.iter().map(|b| b.nodes.len()).sum();
    let title_id = format!("topology-{stage}-title");
    let arrow_id = format!("topology-{stage}-arrow");
    let arrow = format!("url(#{arrow_id})");
    html! {
        svg.pipeline-diagram.topology-diagram viewBox={ "0 0 " (n(width)) " " (n(height)) }
            width=(n(width)) height=(n(height))
            role="img" aria-labelledby=(title_id) data-stage=(stage) data-nodes=(nodes) {
            title id=(title_id) {
                "Topology of " (stage) ": " (bands.len()) " sub-topologies, " (nodes) " nodes"
            }
            defs {
                marker id=(arrow_id) viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path.arrow-head d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for band in &bands {
                text.band-title x=(n(MARGIN)) y=(n(band.top + 16.0)) { "Sub-topology " (band.id) }
            }
            g.edges {
                @for path in &edges {
                    path.edge.flow d=(path) marker-end=(arrow) {}
                }
            }
            @for band in &bands {
                @for p in &band.nodes {
                    g.topology-node data-node=(p.node.name) {
                        title {
                            (p.node.name) " — " (detail(p.node))
                            @if let Some(stores) = stores(p.node) { " — " (stores) }
                        }
                        rect class=(class(p.node)) x=(n(p.x)) y=(n(p.y)) width=(n(NODE_WIDTH)) height=(n(NODE_HEIGHT)) rx="6" {}
                        text.box-title x=(n(p.x + 8.0)) y=(n(p.y + 17.0)) { (fit(&p.node.name)) }
                        text.box-detail x=(n(p.x + 8.0)) y=(n(p.y + 33.0)) { (fit(&detail(p.node))) }
                        @if let Some(stores) = stores(p.node) {
                            text.box-detail.stores x=(n(p.x + 8.0)) y=(n(p.y + 48.0)) { (fit(&stores)) }
                        }
                        text.box-detail x=(n(p.x + 8.0)) y=(n(p.y + 63.0)) {
                            tspan data-live="node-count" data-stage=(stage) data-node=(p.node.name) {
                                (format::integer(counts.get(&p.node.name).copied().unwrap_or(0)))
                            }
                            " records in"
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

    fn web_topology() -> TopologyDescription {
        let topics =
            crate::Topics::new(&SchemaRegistry::mock("topology-diagram-tests"), "").unwrap();
        crate::materialize::topology(&topics)
            .unwrap()
            .describe_for_application("ow-web")
    }

    #[test]
    fn every_node_edge_and_count_is_drawn() {
        let topology = web_topology();
        let nodes: Vec<&NodeDescription> = topology
            .subtopologies
            .iter()
            .flat_map(|s| s.nodes.iter())
            .collect();
        let edges: usize = nodes.iter().map(|n| n.successors.len()).sum();
        let first = nodes[0].name.clone();
        let counts = BTreeMap::from([(first.clone(), 1234)]);
        let svg = diagram("web", &topology, &counts).into_string();
        assert_eq!(
            svg.matches("<g class=\"topology-node\"").count(),
            nodes.len()
        );
        assert_eq!(svg.matches("class=\"edge flow\"").count(), edges);
        assert!(edges > 0);
        assert_eq!(svg.matches("data-live=\"node-count\"").count(), nodes.len());
        assert!(svg.contains(&format!("data-node=\"{first}\">1,234</tspan> records in")));
        assert_eq!(
            svg.matches("Sub-topology ").count(),
            topology.subtopologies.len()
        );
        // Sources and sinks name their topics; a stateful node names its store.
        assert!(svg.contains("◀ ow.players.profile"));
        assert!(svg.contains("▶ ow-web-daily-by-player-repartition"));
        // Every store of the topology hangs on a node that uses it.
        for store in &topology.stores {
            assert!(svg.contains(&format!("▤ {}", store.name)), "{}", store.name);
        }
    }

    #[test]
    fn successors_sit_right_of_their_predecessors() {
        let topology = web_topology();
        let (bands, width, height) = layout(&topology);
        for band in &bands {
            let x: HashMap<&str, f64> = band
                .nodes
                .iter()
                .map(|p| (p.node.name.as_str(), p.x))
                .collect();
            for p in &band.nodes {
                assert!(p.x + NODE_WIDTH <= width && p.y + NODE_HEIGHT <= height);
                for s in &p.node.successors {
                    assert!(x[s.as_str()] > p.x, "{} → {s}", p.node.name);
                }
            }
        }
        // Bands do not overlap.
        for pair in bands.windows(2) {
            let bottom = pair[0]
                .nodes
                .iter()
                .map(|p| p.y + NODE_HEIGHT)
                .fold(0.0, f64::max);
            assert!(bottom < pair[1].top);
        }
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(fit("short"), "short");
        let long = "a".repeat(40);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), LINE_CHARS);
        assert!(cut.ends_with('…'));
    }
}
