//! The stream DSL: `stream`, `table`, `map`, `filter`, `group_by_key`, `aggregate`, time,
//! session and sliding windows, `cogroup`, stream–table, stream–stream and table–table joins
//! (on the key or a foreign key), global tables (`global_table`, `join_global`), `suppress` —
//! in Kafka Streams' vocabulary.
//!
//! A [`StreamsBuilder`] records operators; [`StreamsBuilder::build`] validates them into a
//! [`Topology`]. Streams and tables are handles to nodes of the graph being built: every
//! operator takes `&self`, so one stream can feed several operators.
//!
//! ```
//! use ow_stream_core::{StreamsBuilder, Topic};
//! use ow_stream_core::dsl::{Grouped, Materialized};
//! use ow_stream_core::serde::{JsonSerde, StringSerde};
//!
//! let lines: Topic<String, String> = Topic::new("lines", StringSerde, StringSerde);
//! let counts: Topic<String, i64> = Topic::new("word-counts", StringSerde, JsonSerde::new());
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream(&lines)
//!     .flat_map_values(|line: String| {
//!         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!     })
//!     .group_by(|_, word| word.clone(), Grouped::as_("words").with_key_serde(StringSerde).with_value_serde(StringSerde))
//!     .count(Materialized::as_("word-counts"))
//!     .to_stream()
//!     .to(&counts);
//! let topology = builder.build().unwrap();
//! assert_eq!(topology.describe().subtopologies.len(), 2);
//! ```

mod ops;
mod options;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use ops::branch::{BranchedStream, Branches};
pub use ops::cogroup::{CogroupedStream, TimeWindowedCogroupedStream};
pub use ops::global_table::GlobalTable;
pub use ops::session::{SessionTable, SessionWindowedStream, SessionWindows};
pub use ops::sliding::{SlidingWindowedStream, SlidingWindows};
pub use ops::stream_join::{JoinWindows, StreamJoined};
pub use ops::suppress::{BufferConfig, Suppressed};
pub use options::{
    Consumed, DEFAULT_WINDOW_RETENTION, EmitStrategy, Grouped, Materialized, Produced,
    Repartitioned, TimeWindows,
};

use crate::error::TopologyError;
use crate::processor::node::NodeSpec;
use crate::serde::Serde;
use crate::state::StoreDef;
pub use crate::state::window::{Window, Windowed};
use crate::topology::{NodeDef, NodeKind, Topology};

/// What records of a stream may hold: cloneable (a record fanned out to several operators is
/// cloned) and sendable to a processing thread.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) stores: Vec<Arc<StoreDef>>,
    pub(crate) errors: Vec<TopologyError>,
    /// Pairs of nodes whose inputs must be co-partitioned (the two sides of a stream–stream
    /// join).
    pub(crate) copartition: Vec<(usize, usize)>,
    /// Global stores (`global_table`): outside every sub-topology.
    pub(crate) globals: Vec<Arc<crate::state::global::GlobalStoreDef>>,
}

impl Graph {
    /// Adds a node named `name`, or `<prefix>-<n>` when no name is given.
    pub(crate) fn add(
        &mut self,
        name: Option<String>,
        prefix: &str,
        kind: NodeKind,
        parents: Vec<usize>,
        stores: Vec<Arc<str>>,
        spec: Arc<dyn NodeSpec>,
    ) -> usize {
        let index = self.nodes.len();
        let name = name.unwrap_or_else(|| format!("{prefix}-{index}"));
        self.nodes.push(NodeDef {
            name: name.into(),
            kind,
            parents,
            stores,
            spec,
            counter: Arc::new(AtomicU64::new(0)),
        });
        index
    }

    pub(crate) fn error(&mut self, error: TopologyError) {
        self.errors.push(error);
    }
}

pub(crate) type GraphRef = Rc<RefCell<Graph>>;

/// Records the operators of a topology.
#[derive(Default)]
pub struct StreamsBuilder {
    pub(crate) graph: GraphRef,
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        StreamsBuilder::default()
    }

    /// Validates what was recorded: names are unique and legal, every stateful node and
    /// internal topic is named, every store has its serdes, every part reads a topic.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let graph = std::mem::take(&mut *self.graph.borrow_mut());
        if let Some(e) = graph.errors.into_iter().next() {
            return Err(e);
        }
        Topology::build(graph.nodes, graph.stores, graph.copartition)?.with_globals(graph.globals)
    }
}

/// An unbounded stream of records (Kafka Streams' `KStream`).
pub struct Stream<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) node: usize,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    /// An operator upstream may have changed the key since the stream was last partitioned
    /// by it (Kafka Streams' `repartitionRequired`): joins and aggregations repartition first.
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for Stream<K, V> {
    fn clone(&self) -> Self {
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

/// A changelog stream read as the latest value per key, backed by a store (Kafka Streams'
/// `KTable`).
pub struct Table<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) node: usize,
    pub(crate) store: Arc<str>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    /// The node forwards the table's changes (deletes included) to the nodes that take them
    /// (derived tables, table–table joins), as well as its updates; a suppressed table's node
    /// forwards its updates only.
    pub(crate) changes: bool,
}

/// A stream grouped by key, ready to aggregate.
pub struct GroupedStream<K, V> {
    pub(crate) stream: Stream<K, V>,
}

/// A grouped stream cut into time windows, ready to aggregate per key and window.
pub struct WindowedStream<K, V> {
    pub(crate) grouped: GroupedStream<K, V>,
    pub(crate) windows: TimeWindows,
    pub(crate) emit: EmitStrategy,
}

/// A table of windowed aggregates.
pub struct WindowedTable<K, V> {
    pub(crate) graph: GraphRef,
    pub(crate) node: usize,
    pub(crate) store: Arc<str>,
    /// The serdes of the record keys and the aggregates, for a suppression's buffer.
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    /// The windows' grace period: a window's final result is due at its end + grace.
    pub(crate) grace_ms: i64,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> Stream<K, V> {
    pub(crate) fn derive<K2, V2>(
        &self,
        node: usize,
        key_serde: Option<Arc<dyn Serde<K2>>>,
        value_serde: Option<Arc<dyn Serde<V2>>>,
    ) -> Stream<K2, V2> {
        Stream {
            graph: self.graph.clone(),
            node,
            key_serde,
            value_serde,
            repartition_required: self.repartition_required,
        }
    }

    /// Marks the stream as possibly re-keyed: a join or aggregation downstream repartitions
    /// it first.
    pub(crate) fn key_changed(mut self) -> Self {
        self.repartition_required = true;
        self
    }

    /// Renames the node that produces this stream (stateless nodes get generated names such
    /// as `map-3` otherwise). Names appear in `describe()`, logs and metrics.
    pub fn named(self, name: impl Into<String>) -> Self {
        let name: String = name.into();
        self.graph.borrow_mut().nodes[self.node].name = name.into();
        self
    }

    /// Declares the serdes of this stream's keys and values, for operators downstream that
    /// need them (stores, repartition topics) after a `map` made them unknown.
    pub fn with_serdes(mut self, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        self.key_serde = Some(Arc::new(key));
        self.value_serde = Some(Arc::new(value));
        self
    }

    /// The name of the node that produces this stream.
    pub fn node_name(&self) -> String {
        self.graph.borrow().nodes[self.node].name.to_string()
    }
}

impl<K: Data, V: Data> Table<K, V> {
    /// The changes of this table as a stream: one record per update.
    pub fn to_stream(&self) -> Stream<K, V> {
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            key_serde: Some(self.key_serde.clone()),
            value_serde: Some(self.value_serde.clone()),
            repartition_required: false,
        }
    }

    /// The name of the store behind this table (for interactive queries).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl<K: Data, V: Data> WindowedTable<K, V> {
    /// The changes of this table as a stream of windowed keys.
    pub fn to_stream(&self) -> Stream<Windowed<K>, V> {
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            key_serde: None,
            value_serde: None,
            repartition_required: false,
        }
    }

    /// The name of the window store behind this table.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}
