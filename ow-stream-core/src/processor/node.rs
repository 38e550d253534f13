//! Nodes: the instantiated operators of one task, and the specs that build them.
//!
//! The DSL records, for every operator, a [`NodeSpec`] that knows the operator's types. When a
//! task starts, the topology instantiates the specs from the sinks up: each spec receives its
//! children (already built, type-erased) and returns itself, type-erased, to its parents. Inside
//! a task no type erasure remains on the hot path: a node calls its children through
//! `Box<dyn Node<K, V>>`.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::Error;
use crate::record::{RawRecord, Record};
use crate::runtime::context::TaskCx;

/// A node that receives records of type `Record<K, V>`.
pub(crate) trait Node<K, V>: Send {
    /// Handles one record (and forwards whatever it produces to its children).
    fn process(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error>;
    /// Lets time-driven nodes act on the current stream and wall-clock time, then passes the
    /// punctuation on to the children.
    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error>;
}

/// A boxed node.
pub(crate) type NodeBox<K, V> = Box<dyn Node<K, V>>;

/// The entry node of a task for one topic: decodes raw records.
pub(crate) trait SourceNode: Send {
    fn process_raw(&mut self, raw: &RawRecord, cx: &mut TaskCx<'_>) -> Result<(), Error>;
    /// Whether the source takes timestamps from its records (and moves stream time itself)
    /// rather than using the timestamps they were written with.
    fn extracts_timestamps(&self) -> bool {
        false
    }
    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error>;
}

/// The children of a node.
pub(crate) struct Children<K, V>(pub(crate) Vec<NodeBox<K, V>>);

impl<K: Clone, V: Clone> Children<K, V> {
    /// Sends `record` to every child (cloning for all but the last).
    #[inline]
    pub(crate) fn forward(
        &mut self,
        record: Record<K, V>,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        match self.0.as_mut_slice() {
            [] => Ok(()),
            [only] => only.process(record, cx),
            [init @ .., last] => {
                for child in init {
                    child.process(record.clone(), cx)?;
                }
                last.process(record, cx)
            }
        }
    }

    /// Passes a punctuation on.
    pub(crate) fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        for child in &mut self.0 {
            child.punctuate(cx)?;
        }
        Ok(())
    }
}

/// A node reached by several parents (after a `merge`): one instance behind a lock, so each
/// parent holds a handle. Tasks are single-threaded, so the lock is never contended.
struct Shared<K, V> {
    inner: Arc<Mutex<NodeBox<K, V>>>,
    last_round: Arc<AtomicU64>,
}

impl<K: Send + 'static, V: Send + 'static> Node<K, V> for Shared<K, V> {
    fn process(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.inner.lock().process(record, cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        // Several parents pass the same punctuation round on: act on the first only.
        if self.last_round.swap(cx.round, Ordering::Relaxed) == cx.round {
            return Ok(());
        }
        self.inner.lock().punctuate(cx)
    }
}

/// Counts the records a node receives, for metrics and the pipeline page.
struct Counted<K, V> {
    inner: NodeBox<K, V>,
    counter: Arc<AtomicU64>,
}

impl<K: Send + 'static, V: Send + 'static> Node<K, V> for Counted<K, V> {
    #[inline]
    fn process(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.counter.fetch_add(1, Ordering::Relaxed);
        self.inner.process(record, cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.inner.punctuate(cx)
    }
}

/// `node`, counting the records it receives in `counter` (what [`OpSpec`] does to the nodes
/// it builds), for specs of their own.
pub(crate) fn counted<K: Send + 'static, V: Send + 'static>(
    node: NodeBox<K, V>,
    counter: Arc<AtomicU64>,
) -> NodeBox<K, V> {
    Box::new(Counted {
        inner: node,
        counter,
    })
}

/// What a spec may look up while it instantiates its node for a task.
pub(crate) struct BuildEnv<'e> {
    /// The name of the node being built.
    pub(crate) name: Arc<str>,
    /// Store name → index in the task's state manager.
    pub(crate) stores: &'e HashMap<Arc<str>, usize>,
    /// Resolves topic references (internal topics get the application id prefix).
    pub(crate) resolve_topic: &'e dyn Fn(&crate::topology::TopicRef) -> Arc<str>,
    /// The counter of records received by the node being built.
    pub(crate) counter: Arc<AtomicU64>,
}

impl BuildEnv<'_> {
    /// The task-local index of a store.
    pub(crate) fn store(&self, name: &str) -> Result<usize, Error> {
        self.stores
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownStore {
                store: name.to_string(),
                reason: "the task does not own it".into(),
            })
    }
}

/// A type-erased node instance on its way to its parents.
pub(crate) type ErasedNode = Box<dyn Any + Send>;

/// Builds one operator's node for a task.
pub(crate) trait NodeSpec: Send + Sync + 'static {
    /// Builds the node, given its children (each an erased `NodeBox` of this node's output
    /// types) and returns it erased: a `NodeBox` of its input types, or a `Box<dyn SourceNode>`
    /// for sources.
    fn instantiate(
        &self,
        children: Vec<ErasedNode>,
        env: &BuildEnv<'_>,
    ) -> Result<ErasedNode, Error>;

    /// Turns one built node into `n` handles for `n` parents.
    fn share(&self, node: ErasedNode, n: usize) -> Vec<ErasedNode>;
}

/// The spec of an ordinary operator: input `Record<KIn, VIn>`, output `Record<KOut, VOut>`.
pub(crate) struct OpSpec<KIn, VIn, KOut, VOut> {
    #[allow(clippy::type_complexity)]
    make: Box<
        dyn Fn(Children<KOut, VOut>, &BuildEnv<'_>) -> Result<NodeBox<KIn, VIn>, Error>
            + Send
            + Sync,
    >,
    _types: PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<KIn, VIn, KOut, VOut> OpSpec<KIn, VIn, KOut, VOut>
where
    KIn: Send + 'static,
    VIn: Send + 'static,
    KOut: Send + 'static,
    VOut: Send + 'static,
{
    /// A spec from a function that builds the node around its children.
    pub(crate) fn new(
        make: impl Fn(Children<KOut, VOut>, &BuildEnv<'_>) -> Result<NodeBox<KIn, VIn>, Error>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        OpSpec {
            make: Box::new(make),
            _types: PhantomData,
        }
    }
}

pub(crate) fn downcast_children<K: 'static, V: 'static>(
    children: Vec<ErasedNode>,
) -> Result<Children<K, V>, Error> {
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        match child.downcast::<NodeBox<K, V>>() {
            Ok(node) => out.push(*node),
            Err(_) => {
                return Err(Error::Closed {
                    reason: format!(
                        "internal: child node does not take Record<{}, {}>",
                        std::any::type_name::<K>(),
                        std::any::type_name::<V>()
                    ),
                });
            }
        }
    }
    Ok(Children(out))
}

pub(crate) fn share_node<K: Send + 'static, V: Send + 'static>(
    node: ErasedNode,
    n: usize,
) -> Vec<ErasedNode> {
    let node = match node.downcast::<NodeBox<K, V>>() {
        Ok(node) => *node,
        // Only ever called with what `instantiate` returned.
        Err(other) => return vec![other],
    };
    let inner = Arc::new(Mutex::new(node));
    let last_round = Arc::new(AtomicU64::new(u64::MAX));
    (0..n)
        .map(|_| {
            let handle: NodeBox<K, V> = Box::new(Shared {
                inner: inner.clone(),
                last_round: last_round.clone(),
            });
            Box::new(handle) as ErasedNode
        })
        .collect()
}

impl<KIn, VIn, KOut, VOut> NodeSpec for OpSpec<KIn, VIn, KOut, VOut>
where
    KIn: Send + 'static,
    VIn: Send + 'static,
    KOut: Send + 'static,
    VOut: Send + 'static,
{
    fn instantiate(
        &self,
        children: Vec<ErasedNode>,
        env: &BuildEnv<'_>,
    ) -> Result<ErasedNode, Error> {
        let children = downcast_children::<KOut, VOut>(children)?;
        let node = (self.make)(children, env)?;
        let counted: NodeBox<KIn, VIn> = Box::new(Counted {
            inner: node,
            counter: env.counter.clone(),
        });
        Ok(Box::new(counted))
    }

    fn share(&self, node: ErasedNode, n: usize) -> Vec<ErasedNode> {
        share_node::<KIn, VIn>(node, n)
    }
}

/// A node made of a closure over its children: most stateless operators.
pub(crate) struct FnNode<KOut, VOut, F> {
    pub(crate) f: F,
    pub(crate) children: Children<KOut, VOut>,
}

impl<K, V, KOut, VOut, F> Node<K, V> for FnNode<KOut, VOut, F>
where
    KOut: Clone + Send,
    VOut: Clone + Send,
    F: FnMut(Record<K, V>, &mut Children<KOut, VOut>, &mut TaskCx<'_>) -> Result<(), Error> + Send,
{
    #[inline]
    fn process(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        (self.f)(record, &mut self.children, cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

/// Boxes a closure node.
pub(crate) fn fn_node<K, V, KOut, VOut, F>(children: Children<KOut, VOut>, f: F) -> NodeBox<K, V>
where
    K: 'static,
    V: 'static,
    KOut: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    F: FnMut(Record<K, V>, &mut Children<KOut, VOut>, &mut TaskCx<'_>) -> Result<(), Error>
        + Send
        + 'static,
{
    Box::new(FnNode { f, children })
}
