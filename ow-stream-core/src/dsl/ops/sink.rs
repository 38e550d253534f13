//! `to`: where records leave a topology.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::error::Error;
use crate::processor::context::{OutRecord, TaskCx};
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::Record;
use crate::serde::{Serde, SerdeContext};
use crate::state::changelog::{PROVENANCE_HEADER, encode_provenance};
use crate::topic::Topic;
use crate::topology::{NodeKind, TopicRef};

pub(crate) struct SinkNode<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) topic: Arc<str>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    /// Writes a repartition topic: mark each record with where its cause was read.
    pub(crate) repartition: bool,
    pub(crate) key_buf: Vec<u8>,
    pub(crate) value_buf: Vec<u8>,
}

impl<K: Data, V: Data> Node<K, V> for SinkNode<K, V> {
    fn process(&mut self, mut record: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.key_buf.clear();
        self.value_buf.clear();
        let encoded = cx
            .encode(
                &*self.key,
                SerdeContext::key(&self.topic),
                &record.key,
                &mut self.key_buf,
            )
            .and_then(|()| {
                cx.encode(
                    &*self.value,
                    SerdeContext::value(&self.topic),
                    &record.value,
                    &mut self.value_buf,
                )
            });
        if let Err(e) = encoded {
            let error = Error::Serialize {
                topic: self.topic.clone(),
                source: e,
            };
            return cx.processing_error(&self.name, Box::new(error));
        }
        if self.repartition
            && let Some(input) = cx.input
        {
            let seq = cx.emit_seq;
            cx.emit_seq += 1;
            record.headers.insert(
                PROVENANCE_HEADER,
                Some(encode_provenance(
                    &input.topic,
                    input.partition,
                    input.offset,
                    seq,
                )),
            );
        }
        cx.out.send(OutRecord {
            topic: &self.topic,
            partition: None,
            key: Some(&self.key_buf),
            value: Some(&self.value_buf),
            timestamp: record.timestamp,
            headers: &record.headers,
        })
    }

    fn punctuate(&mut self, _cx: &mut TaskCx<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// Adds a sink node writing `topic_ref` with the given serdes.
pub(crate) fn add_sink<K: Data, V: Data>(
    stream: &Stream<K, V>,
    name: String,
    topic_ref: TopicRef,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    repartition: bool,
) {
    let node_name: Arc<str> = name.clone().into();
    let spec_topic = topic_ref.clone();
    let spec = OpSpec::<K, V, (), ()>::new(move |_children: Children<(), ()>, env| {
        Ok(Box::new(SinkNode {
            name: node_name.clone(),
            topic: (env.resolve_topic)(&spec_topic),
            key: key.clone(),
            value: value.clone(),
            repartition,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
        }))
    });
    stream.graph.borrow_mut().add(
        Some(name),
        "sink",
        NodeKind::Sink { topic: topic_ref },
        vec![stream.node],
        vec![],
        Arc::new(spec),
    );
}

impl<K: Data, V: Data> Stream<K, V> {
    /// Writes every record to `topic`, encoded with the topic's serdes. The sink node is called
    /// `<topic>-sink` (the first time; `<topic>-sink-<n>` after).
    pub fn to(&self, topic: &Topic<K, V>) {
        let name = {
            let graph = self.graph.borrow();
            let base = format!("{}-sink", topic.name());
            if graph.nodes.iter().any(|n| *n.name == *base) {
                format!("{base}-{}", graph.nodes.len())
            } else {
                base
            }
        };
        add_sink(
            self,
            name,
            TopicRef::External(topic.shared_name()),
            topic.key_serde().clone(),
            topic.value_serde().clone(),
            false,
        );
    }
}
