//! Topologies: the graph of sources, processors, stores and sinks that the DSL builds.
//!
//! A [`Topology`] is immutable and cheap to clone. It splits into **sub-topologies** — the
//! connected parts of the graph once repartition topics cut it — and a running application
//! instantiates each sub-topology once per partition of its input topics (a *task*).
//! [`Topology::describe`] returns the structure as plain data with a stable text form.

mod describe;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use describe::{
    GlobalStoreDescription, NodeDescription, NodeKindDescription, StoreDescription,
    SubtopologyDescription, TopologyDescription,
};

use crate::error::{Error, TopologyError};
use crate::processor::node::{BuildEnv, ErasedNode, NodeSpec, SourceNode};
use crate::state::StoreDef;
use crate::state::global::GlobalStoreDef;
use crate::topic::is_valid_topic_name;

/// A topic as a topology names it: user topics by name, internal topics by the name the
/// application gives them (`<application_id>-<name>-<suffix>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TopicRef {
    External(Arc<str>),
    Internal {
        name: Arc<str>,
        suffix: &'static str,
    },
}

impl TopicRef {
    pub(crate) fn repartition(name: &str) -> Self {
        TopicRef::Internal {
            name: name.into(),
            suffix: "repartition",
        }
    }

    pub(crate) fn changelog(name: &str) -> Self {
        TopicRef::Internal {
            name: name.into(),
            suffix: "changelog",
        }
    }

    /// The topic name for an application.
    pub(crate) fn resolve(&self, application_id: &str) -> Arc<str> {
        match self {
            TopicRef::External(name) => name.clone(),
            TopicRef::Internal { name, suffix } => {
                format!("{application_id}-{name}-{suffix}").into()
            }
        }
    }

    pub(crate) fn is_internal(&self) -> bool {
        matches!(self, TopicRef::Internal { .. })
    }
}

impl std::fmt::Display for TopicRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRef::External(name) => f.write_str(name),
            TopicRef::Internal { name, suffix } => write!(f, "${{application_id}}-{name}-{suffix}"),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Source {
        topic: TopicRef,
        key_serde: String,
        value_serde: String,
    },
    Processor,
    Sink {
        topic: TopicRef,
        /// The partition count the topic must have (`Repartitioned::with_number_of_partitions`),
        /// or `None` when the application derives it.
        partitions: Option<i32>,
    },
}

pub(crate) struct NodeDef {
    pub(crate) name: Arc<str>,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<usize>,
    pub(crate) stores: Vec<Arc<str>>,
    pub(crate) spec: Arc<dyn NodeSpec>,
    pub(crate) counter: Arc<AtomicU64>,
}

/// A connected part of the topology, run as one task per partition.
#[derive(Debug, Clone)]
pub(crate) struct SubTopology {
    pub(crate) id: u32,
    /// Node indices in topological order.
    pub(crate) nodes: Vec<usize>,
    /// Topics read by this sub-topology's sources.
    pub(crate) source_topics: Vec<TopicRef>,
    /// Topics written by this sub-topology's sinks.
    pub(crate) sink_topics: Vec<TopicRef>,
    /// Store indices.
    pub(crate) stores: Vec<usize>,
}

pub(crate) struct TopologyInner {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) stores: Vec<Arc<StoreDef>>,
    pub(crate) subtopologies: Vec<SubTopology>,
    /// Pairs of nodes whose inputs must be co-partitioned (the sides of stream–stream joins).
    pub(crate) copartition: Vec<(usize, usize)>,
    /// Global stores: read by a global thread, outside every sub-topology.
    pub(crate) globals: Vec<Arc<GlobalStoreDef>>,
}

/// A built, validated topology. Cheap to clone; run it with
/// [`Streams`](crate::runtime::Streams) or the [`TopologyTestDriver`](crate::testing::TopologyTestDriver).
#[derive(Clone)]
pub struct Topology {
    pub(crate) inner: Arc<TopologyInner>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

/// The nodes of one task, ready to process.
pub(crate) struct TaskNodes {
    /// Resolved topic name → its source node.
    pub(crate) sources: HashMap<Arc<str>, Box<dyn SourceNode>>,
}

impl Topology {
    /// Validates the graph the DSL recorded and splits it into sub-topologies.
    pub(crate) fn build(
        nodes: Vec<NodeDef>,
        stores: Vec<Arc<StoreDef>>,
        copartition: Vec<(usize, usize)>,
    ) -> Result<Topology, TopologyError> {
        let mut store_names = BTreeSet::new();
        for store in &stores {
            if !is_valid_topic_name(&format!("x-{}-changelog", store.name)) {
                return Err(TopologyError::InvalidName {
                    kind: "store",
                    name: store.name.to_string(),
                    reason: "store names become topic names: use [a-zA-Z0-9._-]",
                });
            }
            if !store_names.insert(store.name.clone()) {
                return Err(TopologyError::DuplicateName {
                    kind: "store",
                    name: store.name.to_string(),
                });
            }
        }
        let mut read = BTreeSet::new();
        for node in &nodes {
            if let NodeKind::Source { topic, .. } = &node.kind
                && !read.insert(topic.clone())
            {
                return Err(TopologyError::TopicReadTwice {
                    topic: topic.to_string(),
                });
            }
        }
        let mut names = BTreeSet::new();
        for node in &nodes {
            if node.name.is_empty() {
                return Err(TopologyError::InvalidName {
                    kind: "node",
                    name: node.name.to_string(),
                    reason: "it is empty",
                });
            }
            if !names.insert(node.name.clone()) {
                return Err(TopologyError::DuplicateName {
                    kind: "node",
                    name: node.name.to_string(),
                });
            }
        }
        let mut internal = BTreeSet::new();
        for node in &nodes {
            match &node.kind {
                NodeKind::Source { topic, .. } => check_topic(topic)?,
                NodeKind::Sink { topic, .. } => {
                    check_topic(topic)?;
                    if topic.is_internal() && !internal.insert(topic.clone()) {
                        return Err(TopologyError::DuplicateName {
                            kind: "internal topic",
                            name: topic.to_string(),
                        });
                    }
                }
                NodeKind::Processor => {}
            }
            for store in &node.stores {
                if !store_names.contains(store) {
                    return Err(TopologyError::Invalid {
                        node: node.name.to_string(),
                        reason: format!("uses store {store:?}, which no operator declares"),
                    });
                }
            }
        }
        for name in &store_names {
            let changelog = TopicRef::changelog(name);
            if internal.contains(&changelog) {
                return Err(TopologyError::DuplicateName {
                    kind: "internal topic",
                    name: changelog.to_string(),
                });
            }
        }
        if read.is_empty() {
            return Err(TopologyError::NoSource);
        }

        // Connected components: parent edges, plus nodes sharing a store.
        let mut uf = UnionFind::new(nodes.len());
        let mut store_owner: HashMap<Arc<str>, usize> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            for &p in &node.parents {
                uf.union(i, p);
            }
            for store in &node.stores {
                match store_owner.get(store) {
                    Some(&j) => uf.union(i, j),
                    None => {
                        store_owner.insert(store.clone(), i);
                    }
                }
            }
        }
        // Number sub-topologies in order of their first source, as Kafka Streams does.
        let mut component_id: BTreeMap<usize, u32> = BTreeMap::new();
        let mut subtopologies: Vec<SubTopology> = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let root = uf.find(i);
            let id = match component_id.get(&root) {
                Some(id) => *id,
                None => {
                    let id = subtopologies.len() as u32;
                    component_id.insert(root, id);
                    subtopologies.push(SubTopology {
                        id,
                        nodes: Vec::new(),
                        source_topics: Vec::new(),
                        sink_topics: Vec::new(),
                        stores: Vec::new(),
                    });
                    id
                }
            };
            let sub = &mut subtopologies[id as usize];
            sub.nodes.push(i);
            match &node.kind {
                NodeKind::Source { topic, .. } => sub.source_topics.push(topic.clone()),
                NodeKind::Sink { topic, .. } => sub.sink_topics.push(topic.clone()),
                NodeKind::Processor => {}
            }
            for store in &node.stores {
                if let Some(s) = stores.iter().position(|d| &d.name == store)
                    && !sub.stores.contains(&s)
                {
                    sub.stores.push(s);
                }
            }
        }
        for sub in &subtopologies {
            if sub.source_topics.is_empty() {
                let first = &nodes[sub.nodes[0]].name;
                return Err(TopologyError::Invalid {
                    node: first.to_string(),
                    reason: "is not connected to any source".into(),
                });
            }
        }
        Ok(Topology {
            inner: Arc::new(TopologyInner {
                nodes,
                stores,
                subtopologies,
                copartition,
                globals: Vec::new(),
            }),
        })
    }

    /// Adds the global stores (`global_table`) to a topology just built: their names must be
    /// unique among all stores, and their topics read by nothing else.
    pub(crate) fn with_globals(
        self,
        globals: Vec<Arc<GlobalStoreDef>>,
    ) -> Result<Topology, TopologyError> {
        let mut inner = Arc::try_unwrap(self.inner).map_err(|_| TopologyError::Invalid {
            node: "global tables".into(),
            reason: "internal: the topology is shared already".into(),
        })?;
        let mut names: BTreeSet<Arc<str>> = inner.stores.iter().map(|s| s.name.clone()).collect();
        let mut read: BTreeSet<TopicRef> = inner
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Source { topic, .. } => Some(topic.clone()),
                _ => None,
            })
            .collect();
        for g in &globals {
            if !is_valid_topic_name(&format!("x-{}-changelog", g.store.name)) {
                return Err(TopologyError::InvalidName {
                    kind: "store",
                    name: g.store.name.to_string(),
                    reason: "store names become topic names: use [a-zA-Z0-9._-]",
                });
            }
            if !names.insert(g.store.name.clone()) {
                return Err(TopologyError::DuplicateName {
                    kind: "store",
                    name: g.store.name.to_string(),
                });
            }
            let topic = TopicRef::External(g.topic.clone());
            check_topic(&topic)?;
            if !read.insert(topic.clone()) {
                return Err(TopologyError::TopicReadTwice {
                    topic: topic.to_string(),
                });
            }
        }
        inner.globals = globals;
        Ok(Topology {
            inner: Arc::new(inner),
        })
    }

    /// The global stores.
    pub(crate) fn globals(&self) -> &[Arc<GlobalStoreDef>] {
        &self.inner.globals
    }

    /// Internal topics whose partition count the topology fixes
    /// (`Repartitioned::with_number_of_partitions`), with that count.
    pub(crate) fn fixed_partitions(&self) -> HashMap<TopicRef, i32> {
        self.inner
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Sink {
                    topic,
                    partitions: Some(p),
                } => Some((topic.clone(), *p)),
                _ => None,
            })
            .collect()
    }

    /// The topics that must be co-partitioned: for each pair of nodes declared so (the two
    /// sides of a stream–stream join), the sub-topology and the topics read upstream of
    /// either node.
    pub(crate) fn copartition_groups(&self) -> Vec<(u32, Vec<TopicRef>)> {
        let nodes = &self.inner.nodes;
        let sources = |start: usize| {
            let mut out = Vec::new();
            let mut stack = vec![start];
            let mut seen = BTreeSet::new();
            while let Some(i) = stack.pop() {
                if !seen.insert(i) {
                    continue;
                }
                if let NodeKind::Source { topic, .. } = &nodes[i].kind
                    && !out.contains(topic)
                {
                    out.push(topic.clone());
                }
                stack.extend(nodes[i].parents.iter().copied());
            }
            out
        };
        self.inner
            .copartition
            .iter()
            .filter_map(|&(a, b)| {
                let sub = self
                    .inner
                    .subtopologies
                    .iter()
                    .find(|s| s.nodes.contains(&a))?;
                let mut topics = sources(a);
                for t in sources(b) {
                    if !topics.contains(&t) {
                        topics.push(t);
                    }
                }
                Some((sub.id, topics))
            })
            .collect()
    }

    pub(crate) fn subtopologies(&self) -> &[SubTopology] {
        &self.inner.subtopologies
    }

    pub(crate) fn stores(&self) -> &[Arc<StoreDef>] {
        &self.inner.stores
    }

    /// The sub-topology that reads `topic` (resolved for `application_id`).
    pub(crate) fn subtopology_of(&self, topic: &str, application_id: &str) -> Option<u32> {
        self.inner.subtopologies.iter().find_map(|s| {
            s.source_topics
                .iter()
                .any(|t| &*t.resolve(application_id) == topic)
                .then_some(s.id)
        })
    }

    /// Every topic the topology reads, resolved.
    pub(crate) fn source_topics(&self, application_id: &str) -> Vec<Arc<str>> {
        self.inner
            .subtopologies
            .iter()
            .flat_map(|s| s.source_topics.iter().map(|t| t.resolve(application_id)))
            .collect()
    }

    /// Internal topics: `(resolved name, sub-topology that reads or owns it, is changelog)`.
    pub(crate) fn internal_topics(&self, application_id: &str) -> Vec<(Arc<str>, u32, bool)> {
        let mut out = Vec::new();
        for sub in &self.inner.subtopologies {
            for t in sub.source_topics.iter().filter(|t| t.is_internal()) {
                out.push((t.resolve(application_id), sub.id, false));
            }
            for &s in &sub.stores {
                let def = &self.inner.stores[s];
                if def.logging {
                    out.push((
                        TopicRef::changelog(&def.name).resolve(application_id),
                        sub.id,
                        true,
                    ));
                }
            }
        }
        out
    }

    /// The stores of a sub-topology with their changelog topics, resolved.
    pub(crate) fn task_stores(
        &self,
        subtopology: u32,
        application_id: &str,
    ) -> Vec<(Arc<StoreDef>, Option<Arc<str>>)> {
        self.inner.subtopologies[subtopology as usize]
            .stores
            .iter()
            .map(|&s| {
                let def = self.inner.stores[s].clone();
                let changelog = def
                    .logging
                    .then(|| TopicRef::changelog(&def.name).resolve(application_id));
                (def, changelog)
            })
            .collect()
    }

    /// Builds the nodes of one task.
    pub(crate) fn instantiate(
        &self,
        subtopology: u32,
        application_id: &str,
        store_index: &HashMap<Arc<str>, usize>,
    ) -> Result<TaskNodes, Error> {
        let sub = &self.inner.subtopologies[subtopology as usize];
        let resolve = |t: &TopicRef| t.resolve(application_id);
        let members: BTreeSet<usize> = sub.nodes.iter().copied().collect();
        let mut handles: HashMap<usize, Vec<ErasedNode>> = HashMap::new();
        let mut sources = HashMap::new();
        for &i in sub.nodes.iter().rev() {
            let node = &self.inner.nodes[i];
            let mut children = Vec::new();
            for &c in &sub.nodes {
                if self.inner.nodes[c].parents.contains(&i) {
                    let handle =
                        handles
                            .get_mut(&c)
                            .and_then(Vec::pop)
                            .ok_or_else(|| Error::Closed {
                                reason: format!("internal: node {} has no handle left", c),
                            })?;
                    children.push(handle);
                }
            }
            let env = BuildEnv {
                name: node.name.clone(),
                stores: store_index,
                resolve_topic: &resolve,
                counter: node.counter.clone(),
            };
            let built = node.spec.instantiate(children, &env)?;
            match &node.kind {
                NodeKind::Source { topic, .. } => {
                    let source =
                        built
                            .downcast::<Box<dyn SourceNode>>()
                            .map_err(|_| Error::Closed {
                                reason: format!("internal: {} is not a source", node.name),
                            })?;
                    sources.insert(resolve(topic), *source);
                }
                _ => {
                    let parents = node.parents.iter().filter(|p| members.contains(p)).count();
                    let list = if parents > 1 {
                        node.spec.share(built, parents)
                    } else {
                        vec![built]
                    };
                    handles.insert(i, list);
                }
            }
        }
        Ok(TaskNodes { sources })
    }

    /// Records received by each node so far, by node name (all tasks of this process).
    pub fn node_counts(&self) -> BTreeMap<String, u64> {
        self.inner
            .nodes
            .iter()
            .map(|n| (n.name.to_string(), n.counter.load(Ordering::Relaxed)))
            .collect()
    }
}

fn check_topic(topic: &TopicRef) -> Result<(), TopologyError> {
    let name = topic.resolve("app");
    if !is_valid_topic_name(&name) {
        return Err(TopologyError::InvalidName {
            kind: "topic",
            name: topic.to_string(),
            reason: "topic names use 1 to 249 characters of [a-zA-Z0-9._-]",
        });
    }
    Ok(())
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }

    fn find(&mut self, i: usize) -> usize {
        let mut root = i;
        while self.0[root] != root {
            root = self.0[root];
        }
        let mut j = i;
        while self.0[j] != root {
            let next = self.0[j];
            self.0[j] = root;
            j = next;
        }
        root
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Keep the smaller index as root so numbering follows declaration order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}
