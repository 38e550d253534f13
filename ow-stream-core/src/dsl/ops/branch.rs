//! `split` / `branch`: route each record to the first branch whose predicate accepts it.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::processor::node::fn_node;

type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream being split into branches; see [`Stream::split`].
pub struct BranchedStream<K, V> {
    stream: Stream<K, V>,
    name: String,
    predicates: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> Stream<K, V> {
    /// Starts splitting this stream: each record goes to the first branch whose predicate
    /// accepts it (and to the default branch, if any, when none does). Branch nodes are named
    /// `<name>-<branch>`.
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # let builder = StreamsBuilder::new();
    /// # let topic: Topic<String, i64> = Topic::json("scores");
    /// let branches = builder
    ///     .stream(&topic)
    ///     .split("by-score")
    ///     .branch("high", |_, v| *v >= 100)
    ///     .branch("low", |_, v| *v >= 0)
    ///     .default_branch("negative");
    /// assert_eq!(branches.len(), 3);
    /// ```
    pub fn split(&self, name: impl Into<String>) -> BranchedStream<K, V> {
        BranchedStream {
            stream: self.clone(),
            name: name.into(),
            predicates: Vec::new(),
        }
    }
}

impl<K: Data, V: Data> BranchedStream<K, V> {
    /// Adds a branch.
    pub fn branch(
        mut self,
        name: impl Into<String>,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push((name.into(), Arc::new(predicate)));
        self
    }

    /// Ends the split with a branch for the records no predicate accepted; returns every
    /// branch, by name and in order.
    pub fn default_branch(self, name: impl Into<String>) -> Branches<K, V> {
        self.finish(Some(name.into()))
    }

    /// Ends the split; records no predicate accepts are dropped. Returns every branch, by name
    /// and in order.
    pub fn no_default_branch(self) -> Branches<K, V> {
        self.finish(None)
    }

    fn finish(self, default: Option<String>) -> Branches<K, V> {
        let all: Vec<Predicate<K, V>> = self.predicates.iter().map(|(_, p)| p.clone()).collect();
        let mut out = Vec::new();
        let branches = self
            .predicates
            .iter()
            .map(|(n, _)| n.clone())
            .enumerate()
            .map(|(i, n)| (n, Some(i)))
            .chain(default.map(|n| (n, None)));
        for (branch, index) in branches {
            let earlier: Vec<Predicate<K, V>> = all[..index.unwrap_or(all.len())].to_vec();
            let own = index.map(|i| all[i].clone());
            let node = self
                .stream
                .add_processor("branch", vec![], move |children, _| {
                    let earlier = earlier.clone();
                    let own = own.clone();
                    Ok(fn_node(children, move |r, ch, cx| {
                        let taken_before = earlier.iter().any(|p| p(&r.key, &r.value));
                        let mine = own.as_ref().is_none_or(|p| p(&r.key, &r.value));
                        if !taken_before && mine {
                            ch.forward(r, cx)
                        } else {
                            Ok(())
                        }
                    }))
                });
            let s = self
                .stream
                .derive(
                    node,
                    self.stream.key_serde.clone(),
                    self.stream.value_serde.clone(),
                )
                .named(format!("{}-{}", self.name, branch));
            out.push((branch, s));
        }
        Branches { branches: out }
    }
}

/// The branches of a split (Kafka Streams' `Map<String, KStream>`): reachable by branch name
/// (`branches["high"]`, [`Branches::get`]) and by position (`branches[0]`, in the order they
/// were declared, the default branch last).
///
/// ```
/// # use ow_stream_core::{StreamsBuilder, Topic};
/// # let builder = StreamsBuilder::new();
/// # let topic: Topic<String, i64> = Topic::json("scores");
/// let branches = builder
///     .stream(&topic)
///     .split("by-score")
///     .branch("high", |_, v| *v >= 100)
///     .default_branch("rest");
/// branches["high"].to(&Topic::json("high-scores"));
/// assert_eq!(branches.get("rest").unwrap().node_name(), "by-score-rest");
/// assert!(branches.get("low").is_none());
/// assert_eq!(branches.names().collect::<Vec<_>>(), ["high", "rest"]);
/// ```
pub struct Branches<K, V> {
    branches: Vec<(String, Stream<K, V>)>,
}

impl<K, V> Branches<K, V> {
    /// The branch called `name`.
    pub fn get(&self, name: &str) -> Option<&Stream<K, V>> {
        self.branches
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// The branch names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.branches.iter().map(|(n, _)| n.as_str())
    }

    /// How many branches there are.
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// Whether there are none (a split with no branch and no default branch).
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The branches by name.
    pub fn into_map(self) -> std::collections::BTreeMap<String, Stream<K, V>> {
        self.branches.into_iter().collect()
    }
}

impl<K, V> std::ops::Index<usize> for Branches<K, V> {
    type Output = Stream<K, V>;

    /// The branch at `index`, in declaration order. Panics when out of range, as a slice does.
    fn index(&self, index: usize) -> &Stream<K, V> {
        &self.branches[index].1
    }
}

impl<K, V> std::ops::Index<&str> for Branches<K, V> {
    type Output = Stream<K, V>;

    /// The branch called `name`. Panics when there is none (use [`Branches::get`] to ask).
    fn index(&self, name: &str) -> &Stream<K, V> {
        match self.get(name) {
            Some(s) => s,
            None => panic!("no branch called {name:?}"),
        }
    }
}

impl<K, V> IntoIterator for Branches<K, V> {
    type Item = (String, Stream<K, V>);
    type IntoIter = std::vec::IntoIter<(String, Stream<K, V>)>;

    /// Every `(name, branch)`, in order.
    fn into_iter(self) -> Self::IntoIter {
        self.branches.into_iter()
    }
}
