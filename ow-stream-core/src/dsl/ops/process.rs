//! `process`: a custom [`Processor`] with access to named stores.

use std::sync::Arc;

use super::source::missing_serde;
use crate::dsl::{Data, Materialized, Stream, StreamsBuilder};
use crate::error::Error;
use crate::processor::Processor;
use crate::processor::context::ProcessorContext;
use crate::processor::node::{Children, Node};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::state::{StoreDef, StoreKind, StoreSerdes};

struct ProcessorNode<P, KO, VO> {
    name: Arc<str>,
    processor: P,
    stores: Vec<(Arc<str>, usize)>,
    children: Children<KO, VO>,
}

impl<K, V, KO, VO, P> Node<K, V> for ProcessorNode<P, KO, VO>
where
    K: Data,
    V: Data,
    KO: Data,
    VO: Data,
    P: Processor<K, V, KO, VO>,
{
    fn process(&mut self, record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let mut ctx = ProcessorContext {
            cx,
            children: &mut self.children,
            stores: &self.stores,
        };
        match self.processor.process(record, &mut ctx) {
            Ok(()) => Ok(()),
            Err(e) => match e.downcast::<Error>() {
                // Errors of the library itself (a store, a downstream node) are not the
                // record's fault: they stop the task.
                Ok(inner) => Err(*inner),
                Err(e) => cx.processing_error(&self.name, e),
            },
        }
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let mut ctx = ProcessorContext {
            cx,
            children: &mut self.children,
            stores: &self.stores,
        };
        if let Err(e) = self.processor.punctuate(&mut ctx) {
            return match e.downcast::<Error>() {
                Ok(inner) => Err(*inner),
                Err(e) => cx.processing_error(&self.name, e),
            };
        }
        self.children.punctuate(cx)
    }
}

impl StreamsBuilder {
    /// Declares a key-value store for custom processors (see [`Stream::process`]). Both serdes
    /// must be given in `materialized`.
    pub fn add_state_store<K: Data, V: Data>(&self, materialized: Materialized<K, V>) {
        let mut graph = self.graph.borrow_mut();
        let (Some(key), Some(value)) = (
            materialized.key_serde.clone(),
            materialized.value_serde.clone(),
        ) else {
            let what = if materialized.key_serde.is_none() {
                "key"
            } else {
                "value"
            };
            graph.error(missing_serde(&materialized.name, what));
            return;
        };
        graph.stores.push(Arc::new(StoreDef {
            name: materialized.name.clone(),
            kind: StoreKind::KeyValue,
            backend: materialized.backend,
            logging: materialized.logging,
            caching: false,
            key_describe: key.describe(),
            value_describe: value.describe(),
            serdes: Arc::new(StoreSerdes { key, value }),
        }));
    }
}

impl<K: Data, V: Data> Stream<K, V> {
    /// Runs a custom [`Processor`] (one instance per task, made by `supplier`) connected to the
    /// named stores (declared with [`StreamsBuilder::add_state_store`]). `name` names the node.
    pub fn process<KO: Data, VO: Data, P: Processor<K, V, KO, VO>>(
        &self,
        name: impl Into<String>,
        stores: &[&str],
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> Stream<KO, VO> {
        let store_names: Vec<Arc<str>> = stores.iter().map(|s| Arc::from(*s)).collect();
        let names = store_names.clone();
        let node = self.add_processor("process", store_names, move |children, env| {
            let mut stores = Vec::with_capacity(names.len());
            for n in &names {
                stores.push((n.clone(), env.store(n)?));
            }
            Ok(Box::new(ProcessorNode {
                name: env.name.clone(),
                processor: supplier(),
                stores,
                children,
            }))
        });
        self.derive::<KO, VO>(node, None, None)
            .key_changed()
            .named(name)
    }
}
