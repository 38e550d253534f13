//! `process`: a custom [`Processor`] with access to named stores.

use std::any::TypeId;
use std::sync::Arc;

use super::source::missing_serde;
use crate::dsl::{Data, Materialized, Stream, StreamsBuilder};
use crate::error::{BoxError, Error};
use crate::processor::Processor;
use crate::processor::context::{ProcessorContext, PunctuatorFn};
use crate::processor::node::{Children, Node};
use crate::processor::punctuation::{PunctuationType, Schedule, TimerRound};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::state::{StoreDef, StoreKind, StoreSerdes};

struct ProcessorNode<P, KO, VO> {
    name: Arc<str>,
    processor: P,
    stores: Vec<(Arc<str>, usize)>,
    children: Children<KO, VO>,
    /// The processor's punctuation schedules.
    schedules: Vec<Schedule>,
    initialized: bool,
}

impl<P: 'static, KO: Data, VO: Data> ProcessorNode<P, KO, VO> {
    /// Applies the error policy to what the processor returned.
    fn outcome(
        name: &Arc<str>,
        result: Result<(), BoxError>,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        match result {
            Ok(()) => Ok(()),
            Err(e) => match e.downcast::<Error>() {
                // Errors of the library itself (a store, a downstream node) are not the
                // record's fault: they stop the task.
                Ok(inner) => Err(*inner),
                Err(e) => cx.processing_error(name, e),
            },
        }
    }

    /// Runs the due schedules of `kind`, each once, in the order they were scheduled.
    fn fire(&mut self, kind: PunctuationType, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let now = match kind {
            PunctuationType::StreamTime => cx.stream_time,
            PunctuationType::WallClockTime => cx.wall_clock,
        };
        // By index: a punctuator may schedule more (they run in this round if due).
        let mut i = 0;
        while i < self.schedules.len() {
            let schedule = &mut self.schedules[i];
            i += 1;
            if schedule.kind != kind || schedule.next > now || schedule.handle.is_cancelled() {
                continue;
            }
            let Some(mut callback) = schedule.callback.take() else {
                continue;
            };
            let result = match callback.downcast_mut::<PunctuatorFn<P, KO, VO>>() {
                Some(punctuator) => {
                    let mut ctx = ProcessorContext {
                        cx: &mut *cx,
                        children: &mut self.children,
                        stores: &self.stores,
                        schedules: &mut self.schedules,
                        processor: TypeId::of::<P>(),
                    };
                    punctuator(&mut self.processor, now, &mut ctx)
                }
                None => Err(Box::new(Error::Closed {
                    reason: format!(
                        "internal: a punctuator of node {} has the wrong type",
                        self.name
                    ),
                }) as BoxError),
            };
            let schedule = &mut self.schedules[i - 1];
            schedule.callback = Some(callback);
            schedule.advance(now);
            Self::outcome(&self.name, result, cx)?;
        }
        self.schedules.retain(|s| !s.handle.is_cancelled());
        Ok(())
    }
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
            schedules: &mut self.schedules,
            processor: TypeId::of::<P>(),
        };
        let result = self.processor.process(record, &mut ctx);
        Self::outcome(&self.name, result, cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        match cx.timer {
            Some(TimerRound::Init) => {
                if !self.initialized {
                    self.initialized = true;
                    let mut ctx = ProcessorContext {
                        cx: &mut *cx,
                        children: &mut self.children,
                        stores: &self.stores,
                        schedules: &mut self.schedules,
                        processor: TypeId::of::<P>(),
                    };
                    let result = self.processor.init(&mut ctx);
                    Self::outcome(&self.name, result, cx)?;
                }
            }
            Some(TimerRound::Fire(kind)) => self.fire(kind, cx)?,
            None => {
                let mut ctx = ProcessorContext {
                    cx: &mut *cx,
                    children: &mut self.children,
                    stores: &self.stores,
                    schedules: &mut self.schedules,
                    processor: TypeId::of::<P>(),
                };
                let result = self.processor.punctuate(&mut ctx);
                Self::outcome(&self.name, result, cx)?;
            }
        }
        // Tell the task when this node is due next (the round recomputes what it fired).
        for s in &self.schedules {
            if !s.handle.is_cancelled() {
                cx.timers.note(s.kind, s.next);
            }
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
                schedules: Vec::new(),
                initialized: false,
            }))
        });
        self.derive::<KO, VO>(node, None, None)
            .key_changed()
            .named(name)
    }
}
