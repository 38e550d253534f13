//! `describe()`: the structure of a topology as plain data, text and Graphviz DOT.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use super::{NodeKind, TopicRef, Topology};
use crate::state::StoreKind;

/// What kind of node a [`NodeDescription`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKindDescription {
    /// Reads a topic.
    Source {
        /// The topic (internal topics as `${application_id}-<name>-repartition`).
        topic: String,
        /// How keys are decoded.
        key_serde: String,
        /// How values are decoded.
        value_serde: String,
    },
    /// Transforms records.
    Processor,
    /// Writes a topic.
    Sink {
        /// The topic.
        topic: String,
        /// The partition count the topology fixes for the topic
        /// ([`Repartitioned::with_number_of_partitions`](crate::dsl::Repartitioned::with_number_of_partitions)),
        /// or `None` when the application derives it.
        #[serde(skip_serializing_if = "Option::is_none")]
        partitions: Option<i32>,
    },
}

/// One node of a sub-topology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeDescription {
    /// Unique name.
    pub name: String,
    /// Source, processor or sink.
    #[serde(flatten)]
    pub kind: NodeKindDescription,
    /// Stores the node reads or writes.
    pub stores: Vec<String>,
    /// Nodes feeding this one.
    pub predecessors: Vec<String>,
    /// Nodes this one feeds.
    pub successors: Vec<String>,
}

/// A sub-topology: the nodes that run together in one task per partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubtopologyDescription {
    /// Its number (task ids are `<id>_<partition>`).
    pub id: u32,
    /// Its nodes, in topological order.
    pub nodes: Vec<NodeDescription>,
}

/// A state store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreDescription {
    /// The store name.
    pub name: String,
    /// `"key-value"` or `"window(<size>ms, retention <ms>ms)"`.
    pub kind: String,
    /// Its changelog topic, if logged.
    pub changelog: Option<String>,
    /// Key serde.
    pub key_serde: String,
    /// Value serde.
    pub value_serde: String,
    /// The sub-topology that owns it.
    pub subtopology: u32,
}

/// A global store (`global_table`) and what feeds it: a sub-topology of its own that
/// generates no tasks, run by the global thread of every instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalStoreDescription {
    /// Its number, after the sub-topologies'.
    pub id: u32,
    /// The source node that reads the topic.
    pub source: String,
    /// The topic, read whole (every partition) on every instance; it is also the store's
    /// changelog.
    pub topic: String,
    /// The processor node that writes the store.
    pub processor: String,
    /// The store name.
    pub store: String,
    /// Key serde.
    pub key_serde: String,
    /// Value serde.
    pub value_serde: String,
}

/// The structure of a topology. Its `Display` form is stable (golden-tested) and follows
/// Kafka Streams' `TopologyDescription`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopologyDescription {
    /// Sub-topologies in order.
    pub subtopologies: Vec<SubtopologyDescription>,
    /// Every store of the sub-topologies.
    pub stores: Vec<StoreDescription>,
    /// Global stores, each with its own sub-topology.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_stores: Vec<GlobalStoreDescription>,
}

fn topic_name(t: &TopicRef, application_id: Option<&str>) -> String {
    match application_id {
        Some(app) => t.resolve(app).to_string(),
        None => t.to_string(),
    }
}

impl Topology {
    /// The structure of this topology, with internal topics written as
    /// `${application_id}-<name>-<suffix>`.
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    ///
    /// let builder = StreamsBuilder::new();
    /// let input: Topic<String, String> = Topic::json("input");
    /// builder.stream(&input).filter(|_, v| !v.is_empty()).to(&Topic::json("output"));
    /// let text = builder.build().unwrap().describe().to_string();
    /// assert!(text.contains("Source: input-source (topic: input)"));
    /// ```
    pub fn describe(&self) -> TopologyDescription {
        self.describe_for(None)
    }

    /// Like [`Topology::describe`], with internal topic names resolved for an application.
    pub fn describe_for_application(&self, application_id: &str) -> TopologyDescription {
        self.describe_for(Some(application_id))
    }

    fn describe_for(&self, app: Option<&str>) -> TopologyDescription {
        let nodes = &self.inner.nodes;
        let subtopologies = self
            .inner
            .subtopologies
            .iter()
            .map(|sub| SubtopologyDescription {
                id: sub.id,
                nodes: sub
                    .nodes
                    .iter()
                    .map(|&i| {
                        let node = &nodes[i];
                        NodeDescription {
                            name: node.name.to_string(),
                            kind: match &node.kind {
                                NodeKind::Source {
                                    topic,
                                    key_serde,
                                    value_serde,
                                } => NodeKindDescription::Source {
                                    topic: topic_name(topic, app),
                                    key_serde: key_serde.clone(),
                                    value_serde: value_serde.clone(),
                                },
                                NodeKind::Processor => NodeKindDescription::Processor,
                                NodeKind::Sink { topic, partitions } => NodeKindDescription::Sink {
                                    topic: topic_name(topic, app),
                                    partitions: *partitions,
                                },
                            },
                            stores: node.stores.iter().map(|s| s.to_string()).collect(),
                            predecessors: node
                                .parents
                                .iter()
                                .map(|&p| nodes[p].name.to_string())
                                .collect(),
                            successors: sub
                                .nodes
                                .iter()
                                .filter(|&&c| nodes[c].parents.contains(&i))
                                .map(|&c| nodes[c].name.to_string())
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let stores = self
            .inner
            .stores
            .iter()
            .map(|s| StoreDescription {
                name: s.name.to_string(),
                kind: match s.kind {
                    StoreKind::KeyValue => "key-value".into(),
                    StoreKind::Window {
                        size_ms,
                        retention_ms,
                    } => format!("window({size_ms}ms, retention {retention_ms}ms)"),
                    StoreKind::JoinWindow {
                        size_ms,
                        retention_ms,
                    } => format!("join-window({size_ms}ms, retention {retention_ms}ms)"),
                },
                changelog: s
                    .logging
                    .then(|| topic_name(&TopicRef::changelog(&s.name), app)),
                key_serde: s.key_describe.clone(),
                value_serde: s.value_describe.clone(),
                subtopology: self
                    .inner
                    .subtopologies
                    .iter()
                    .find(|sub| {
                        sub.stores
                            .iter()
                            .any(|&i| self.inner.stores[i].name == s.name)
                    })
                    .map(|sub| sub.id)
                    .unwrap_or(0),
            })
            .collect();
        let first = self.inner.subtopologies.len() as u32;
        let global_stores = self
            .inner
            .globals
            .iter()
            .enumerate()
            .map(|(i, g)| GlobalStoreDescription {
                id: first + i as u32,
                source: g.source_name.to_string(),
                topic: g.topic.to_string(),
                processor: g.processor_name.to_string(),
                store: g.store.name.to_string(),
                key_serde: g.key_describe.clone(),
                value_serde: g.value_describe.clone(),
            })
            .collect();
        TopologyDescription {
            subtopologies,
            stores,
            global_stores,
        }
    }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Topologies:")?;
        for sub in &self.subtopologies {
            writeln!(f, "   Sub-topology: {}", sub.id)?;
            for node in &sub.nodes {
                match &node.kind {
                    NodeKindDescription::Source { topic, .. } => {
                        writeln!(f, "    Source: {} (topic: {})", node.name, topic)?
                    }
                    NodeKindDescription::Processor => writeln!(
                        f,
                        "    Processor: {} (stores: [{}])",
                        node.name,
                        node.stores.join(", ")
                    )?,
                    NodeKindDescription::Sink {
                        topic,
                        partitions: None,
                    } => writeln!(f, "    Sink: {} (topic: {})", node.name, topic)?,
                    NodeKindDescription::Sink {
                        topic,
                        partitions: Some(p),
                    } => writeln!(
                        f,
                        "    Sink: {} (topic: {}, partitions: {})",
                        node.name, topic, p
                    )?,
                }
                if !node.successors.is_empty() {
                    writeln!(f, "      --> {}", node.successors.join(", "))?;
                } else if !matches!(node.kind, NodeKindDescription::Sink { .. }) {
                    writeln!(f, "      --> none")?;
                }
                if !node.predecessors.is_empty() {
                    writeln!(f, "      <-- {}", node.predecessors.join(", "))?;
                }
            }
        }
        for g in &self.global_stores {
            writeln!(
                f,
                "   Sub-topology: {} for global store (will not generate tasks)",
                g.id
            )?;
            writeln!(f, "    Source: {} (topic: {})", g.source, g.topic)?;
            writeln!(f, "      --> {}", g.processor)?;
            writeln!(f, "    Processor: {} (stores: [{}])", g.processor, g.store)?;
            writeln!(f, "      --> none")?;
            writeln!(f, "      <-- {}", g.source)?;
        }
        if !self.stores.is_empty() {
            writeln!(f, "Stores:")?;
            for s in &self.stores {
                writeln!(
                    f,
                    "   {} ({}, sub-topology {}, changelog: {})",
                    s.name,
                    s.kind,
                    s.subtopology,
                    s.changelog.as_deref().unwrap_or("none")
                )?;
            }
        }
        if !self.global_stores.is_empty() {
            writeln!(f, "Global stores:")?;
            for g in &self.global_stores {
                writeln!(
                    f,
                    "   {} (key-value, sub-topology {}, changelog: {} (its source topic))",
                    g.store, g.id, g.topic
                )?;
            }
        }
        Ok(())
    }
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl TopologyDescription {
    /// The topology as a Graphviz DOT graph: topics as ellipses, processors as boxes, stores
    /// as cylinders, one cluster per sub-topology.
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph topology {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
        let mut topics = std::collections::BTreeSet::new();
        for sub in &self.subtopologies {
            let _ = writeln!(
                out,
                "  subgraph cluster_{} {{\n    label=\"sub-topology {}\";",
                sub.id, sub.id
            );
            for node in &sub.nodes {
                let _ = writeln!(out, "    {} [shape=box];", dot_id(&node.name));
            }
            out.push_str("  }\n");
            for node in &sub.nodes {
                match &node.kind {
                    NodeKindDescription::Source { topic, .. } => {
                        topics.insert(topic.clone());
                        let _ = writeln!(
                            out,
                            "  {} -> {};",
                            dot_id(&format!("topic:{topic}")),
                            dot_id(&node.name)
                        );
                    }
                    NodeKindDescription::Sink { topic, .. } => {
                        topics.insert(topic.clone());
                        let _ = writeln!(
                            out,
                            "  {} -> {};",
                            dot_id(&node.name),
                            dot_id(&format!("topic:{topic}"))
                        );
                    }
                    NodeKindDescription::Processor => {}
                }
                for succ in &node.successors {
                    let _ = writeln!(out, "  {} -> {};", dot_id(&node.name), dot_id(succ));
                }
                for store in &node.stores {
                    let _ = writeln!(
                        out,
                        "  {} -> {} [dir=both, style=dashed];",
                        dot_id(&node.name),
                        dot_id(&format!("store:{store}"))
                    );
                }
            }
        }
        for g in &self.global_stores {
            let _ = writeln!(
                out,
                "  subgraph cluster_{} {{\n    label=\"global store {}\";\n    {} [shape=box];\n    {} [shape=box];\n  }}",
                g.id,
                g.store,
                dot_id(&g.source),
                dot_id(&g.processor)
            );
            topics.insert(g.topic.clone());
            let _ = writeln!(
                out,
                "  {} -> {};\n  {} -> {};\n  {} -> {} [dir=both, style=dashed];",
                dot_id(&format!("topic:{}", g.topic)),
                dot_id(&g.source),
                dot_id(&g.source),
                dot_id(&g.processor),
                dot_id(&g.processor),
                dot_id(&format!("store:{}", g.store))
            );
            let _ = writeln!(
                out,
                "  {} [shape=cylinder, label={}];",
                dot_id(&format!("store:{}", g.store)),
                dot_id(&g.store)
            );
        }
        for topic in topics {
            let _ = writeln!(
                out,
                "  {} [shape=ellipse, label={}];",
                dot_id(&format!("topic:{topic}")),
                dot_id(&topic)
            );
        }
        for store in &self.stores {
            let _ = writeln!(
                out,
                "  {} [shape=cylinder, label={}];",
                dot_id(&format!("store:{}", store.name)),
                dot_id(&store.name)
            );
        }
        out.push_str("}\n");
        out
    }
}
