//! `cogroup`: several grouped streams, of different value types, aggregated into one store —
//! Kafka Streams' `CogroupedKStream` (KIP-150).

use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::aggregate::{Aggregator, Unavailable, declare_store, kv_aggregate_spec};
use super::source::missing_serde;
use super::window::{window_aggregate_spec, window_retention};
use crate::dsl::{
    Data, EmitStrategy, GraphRef, GroupedStream, Materialized, Table, TimeWindows, Windowed,
    WindowedTable,
};
use crate::processor::node::{NodeSpec, OpSpec, fn_node};
use crate::serde::Serde;
use crate::state::StoreKind;
use crate::topology::NodeKind;

type Initializer<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// What one input's aggregate node is built for: the shared store and how it aggregates.
struct Plan<K, A> {
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<A>>,
    /// The key serde `Materialized` gives, for repartition topics.
    materialized_key: Option<Arc<dyn Serde<K>>>,
    initializer: Initializer<A>,
    emit_on_change: bool,
    /// `None`: a key-value aggregation; otherwise its windows and store retention.
    windows: Option<(TimeWindows, i64)>,
}

/// Adds the aggregate node of input `i` for a plan (after repartitioning the input when it may
/// have been re-keyed); returns the node's index.
type AddInput<K, A> = Rc<dyn Fn(&Plan<K, A>, usize) -> usize>;

struct Input<K, A> {
    add: AddInput<K, A>,
    key_serde: Option<Arc<dyn Serde<K>>>,
}

/// Grouped streams of one key type and possibly different value types, each with its own
/// aggregator, folded into one aggregate per key in one store (Kafka Streams'
/// `CogroupedKStream`). Made by [`GroupedStream::cogroup`]; more streams join with
/// [`CogroupedStream::cogroup`].
///
/// Each input that an operator upstream may have re-keyed is first sent through its own
/// repartition topic `<application_id>-<store>-cogroup-<i>-repartition` (`i`: the input's
/// position, from 0), and all inputs must be co-partitioned: their topics (or repartition
/// topics) have the same partition count, checked when the application starts.
pub struct CogroupedStream<K, A> {
    graph: GraphRef,
    inputs: Vec<Input<K, A>>,
}

/// A cogrouped stream cut into time windows, ready to aggregate per key and window.
pub struct TimeWindowedCogroupedStream<K, A> {
    cogrouped: CogroupedStream<K, A>,
    windows: TimeWindows,
}

impl<K: Data, V: Data> GroupedStream<K, V> {
    /// Starts a cogroup: this stream's values fold into the shared aggregate with
    /// `aggregator(key, value, aggregate)`. Add other grouped streams with
    /// [`CogroupedStream::cogroup`], then [`aggregate`](CogroupedStream::aggregate).
    pub fn cogroup<A: Data>(
        &self,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> CogroupedStream<K, A> {
        CogroupedStream {
            graph: self.stream.graph.clone(),
            inputs: Vec::new(),
        }
        .cogroup(self, aggregator)
    }
}

impl<K: Data, A: Data> CogroupedStream<K, A> {
    /// Adds `grouped`, whose values fold into the shared aggregate with
    /// `aggregator(key, value, aggregate)`.
    pub fn cogroup<V: Data>(
        mut self,
        grouped: &GroupedStream<K, V>,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> Self {
        let stream = grouped.stream.clone();
        let aggregator = Arc::new(aggregator);
        let key_serde = stream.key_serde.clone();
        let add: AddInput<K, A> = Rc::new(move |plan: &Plan<K, A>, i: usize| {
            let name = format!("{}-cogroup-{i}", plan.store);
            // The key serde of a repartition topic: `Materialized`'s, the input's, or the one
            // the store's keys are written with (a `select_key` upstream made it unknown).
            let key = plan
                .materialized_key
                .clone()
                .or_else(|| stream.key_serde.clone())
                .unwrap_or_else(|| plan.key.clone());
            let input = stream.repartitioned_if_needed(&name, Some(key));
            let (agg, init) = (aggregator.clone(), plan.initializer.clone());
            let f: Aggregator<K, V, A> =
                Arc::new(move |k, v, old: Option<A>| agg(k, v, old.unwrap_or_else(|| init())));
            let serdes = (plan.key.clone(), plan.value.clone());
            let spec: Arc<dyn NodeSpec> = match plan.windows {
                None => Arc::new(kv_aggregate_spec(
                    plan.store.clone(),
                    serdes,
                    f,
                    plan.emit_on_change,
                )),
                Some((windows, retention_ms)) => Arc::new(window_aggregate_spec(
                    plan.store.clone(),
                    serdes,
                    f,
                    (windows, EmitStrategy::OnWindowUpdate, plan.emit_on_change),
                    retention_ms,
                )),
            };
            input.graph.borrow_mut().add(
                Some(name),
                "cogroup",
                NodeKind::Processor,
                vec![input.node],
                vec![plan.store.clone()],
                spec,
            )
        });
        self.inputs.push(Input { add, key_serde });
        self
    }

    /// Cuts the cogrouped streams into time windows: one aggregate per key and window.
    pub fn windowed_by(self, windows: TimeWindows) -> TimeWindowedCogroupedStream<K, A> {
        TimeWindowedCogroupedStream {
            cogrouped: self,
            windows,
        }
    }

    /// Declares the store, adds each input's aggregate node and the node `<store>-merge` that
    /// forwards all their updates; returns the store's serdes and the merge node.
    fn build<KOut: Data>(
        &self,
        materialized: &Materialized<K, A>,
        initializer: Initializer<A>,
        windows: Option<(TimeWindows, i64)>,
    ) -> (Arc<dyn Serde<K>>, Arc<dyn Serde<A>>, usize) {
        let store = materialized.name.clone();
        let key = materialized
            .key_serde
            .clone()
            .or_else(|| self.inputs.iter().find_map(|i| i.key_serde.clone()))
            .unwrap_or_else(|| {
                self.graph.borrow_mut().error(missing_serde(&store, "key"));
                Arc::new(Unavailable)
            });
        let value = materialized.value_serde.clone().unwrap_or_else(|| {
            self.graph
                .borrow_mut()
                .error(missing_serde(&store, "value"));
            Arc::new(Unavailable)
        });
        let kind = match windows {
            None => StoreKind::KeyValue,
            Some((w, retention_ms)) => StoreKind::Window {
                size_ms: w.size_ms,
                retention_ms,
            },
        };
        declare_store(
            &self.graph,
            materialized,
            kind,
            (key.clone(), value.clone()),
        );
        let plan = Plan {
            store: store.clone(),
            key: key.clone(),
            value: value.clone(),
            materialized_key: materialized.key_serde.clone(),
            initializer,
            emit_on_change: materialized.emit_on_change,
            windows,
        };
        let nodes: Vec<usize> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| (input.add)(&plan, i))
            .collect();
        let merge = OpSpec::<KOut, A, KOut, A>::new(|children, _| {
            Ok(fn_node(children, |r, ch, cx| ch.forward(r, cx)))
        });
        let mut graph = self.graph.borrow_mut();
        let node = graph.add(
            Some(format!("{store}-merge")),
            "merge",
            NodeKind::Processor,
            nodes.clone(),
            vec![],
            Arc::new(merge),
        );
        // All inputs must be co-partitioned, or the records of a key would not meet in one
        // task.
        if let Some((first, rest)) = nodes.split_first() {
            for other in rest {
                graph.copartition.push((*first, *other));
            }
        }
        (key, value, node)
    }

    /// Folds every input into one aggregate per key that starts as `initializer()`, in the
    /// key-value store `materialized` names (its value serde is required).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Materialized;
    /// use ow_stream_core::serde::JsonSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct Summary { clicks: i64, spent: f64 }
    ///
    /// let clicks: Topic<String, i64> = Topic::json("clicks");
    /// let purchases: Topic<String, f64> = Topic::json("purchases");
    /// let builder = StreamsBuilder::new();
    /// let by_user = builder
    ///     .stream(&clicks)
    ///     .group_by_key()
    ///     .cogroup(|_, n, s: Summary| Summary { clicks: s.clicks + n, ..s })
    ///     .cogroup(&builder.stream(&purchases).group_by_key(), |_, amount, s: Summary| {
    ///         Summary { spent: s.spent + amount, ..s }
    ///     })
    ///     .aggregate(Summary::default, Materialized::as_("summaries").with_value_serde(JsonSerde::new()));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&clicks).pipe_input_at("ada".into(), 3, 0).unwrap();
    /// driver.input_topic(&purchases).pipe_input_at("ada".into(), 9.5, 1).unwrap();
    /// let store = driver.key_value_store::<String, Summary>(by_user.store_name()).unwrap();
    /// assert_eq!(store.get(&"ada".into()).unwrap(), Some(Summary { clicks: 3, spent: 9.5 }));
    /// ```
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> Table<K, A> {
        let (key, value, node) = self.build::<K>(&materialized, Arc::new(initializer), None);
        Table {
            graph: self.graph.clone(),
            node,
            store: materialized.name.clone(),
            key_serde: key,
            value_serde: value,
            // The merge node forwards updates (an aggregate never deletes): tables derived
            // from it and joins over it take those.
            changes: false,
        }
    }
}

impl<K: Data, A: Data> TimeWindowedCogroupedStream<K, A> {
    /// Folds every input into one aggregate per key and window that starts as
    /// `initializer()`, in the window store `materialized` names (its value serde is
    /// required). Every update is emitted; use
    /// [`suppress`](WindowedTable::suppress) for one final result per window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{Materialized, TimeWindows};
    /// use ow_stream_core::serde::JsonSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let clicks: Topic<String, i64> = Topic::json("clicks");
    /// let views: Topic<String, String> = Topic::json("views");
    /// let builder = StreamsBuilder::new();
    /// let activity = builder
    ///     .stream(&clicks)
    ///     .group_by_key()
    ///     .cogroup(|_, n, total: i64| total + n)
    ///     .cogroup(&builder.stream(&views).group_by_key(), |_, _page, total: i64| total + 1)
    ///     .windowed_by(TimeWindows::of_size_with_grace(Duration::from_secs(60), Duration::ZERO))
    ///     .aggregate(|| 0, Materialized::as_("activity").with_value_serde(JsonSerde::new()));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&clicks).pipe_input_at("ada".into(), 2, 1_000).unwrap();
    /// driver.input_topic(&views).pipe_input_at("ada".into(), "/".into(), 2_000).unwrap();
    /// driver.input_topic(&views).pipe_input_at("ada".into(), "/".into(), 61_000).unwrap();
    /// let store = driver.window_store::<String, i64>(activity.store_name()).unwrap();
    /// let got: Vec<(i64, i64)> = store
    ///     .fetch(&"ada".into(), 0, i64::MAX)
    ///     .unwrap()
    ///     .into_iter()
    ///     .map(|(w, n)| (w.start, n))
    ///     .collect();
    /// assert_eq!(got, [(0, 3), (60_000, 1)]);
    /// ```
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> WindowedTable<K, A> {
        let retention_ms = window_retention(&materialized, self.windows);
        let (key, value, node) = self.cogrouped.build::<Windowed<K>>(
            &materialized,
            Arc::new(initializer),
            Some((self.windows, retention_ms)),
        );
        WindowedTable {
            graph: self.cogrouped.graph.clone(),
            node,
            store: materialized.name.clone(),
            key_serde: key,
            value_serde: value,
            grace_ms: self.windows.grace_ms,
            _types: PhantomData,
        }
    }
}
