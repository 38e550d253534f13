//! `to` and `to_with`: where records leave a topology.

use std::sync::Arc;

use crate::dsl::options::SinkPartitioner;
use crate::dsl::{Data, Produced, Stream};
use crate::error::Error;
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::Record;
use crate::runtime::collector::OutRecord;
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext, SerdeError};
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
    /// Chooses partitions instead of the default partitioner over the key bytes.
    pub(crate) partitioner: Option<SinkPartitioner<K, V>>,
    pub(crate) key_buf: Vec<u8>,
    pub(crate) value_buf: Vec<u8>,
    /// The bytes an encoding partitioner hashes.
    pub(crate) partition_buf: Vec<u8>,
}

/// The partition `partitioner` picks for `record` in `topic`; `Err(outcome)` when the record
/// could not be placed (`outcome` is what the processing-error policy made of it).
fn pick_partition<K: Data, V: Data>(
    partitioner: &SinkPartitioner<K, V>,
    topic: &Arc<str>,
    node: &Arc<str>,
    buf: &mut Vec<u8>,
    record: &Record<K, V>,
    cx: &mut TaskCx<'_>,
) -> Result<i32, Result<(), Error>> {
    let count = cx.out.partition_count(topic).map_err(Err)?;
    if count <= 0 {
        return Err(Err(Error::Config {
            field: "topics",
            reason: format!("topic {topic} has no partitions"),
        }));
    }
    let partition = match partitioner {
        SinkPartitioner::Hashed(f) => {
            ow_stream_log::partition_for_key(&f(&record.key, &record.value), count)
        }
        SinkPartitioner::Encoded(f) => {
            buf.clear();
            if let Err(e) = f(&record.key, &record.value, cx, buf) {
                let e = match e {
                    SerdeError::Registry(e) if e.is_transient() => {
                        return Err(Err(Error::Registry(e)));
                    }
                    other => other,
                };
                let error = Error::Serialize {
                    topic: topic.clone(),
                    source: e,
                };
                return Err(cx.processing_error(node, Box::new(error)));
            }
            ow_stream_log::partition_for_key(buf, count)
        }
        SinkPartitioner::Explicit(f) => {
            let p = f(&record.key, &record.value, count);
            if !(0..count).contains(&p) {
                let error = format!(
                    "the partitioner chose partition {p} of topic {topic}, which has {count}"
                );
                return Err(cx.processing_error(node, error.into()));
            }
            p
        }
    };
    Ok(partition)
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
            // A registry still away after the wait fails the thread: the record is not bad.
            let e = match e {
                SerdeError::Registry(e) if e.is_transient() => return Err(Error::Registry(e)),
                other => other,
            };
            let error = Error::Serialize {
                topic: self.topic.clone(),
                source: e,
            };
            return cx.processing_error(&self.name, Box::new(error));
        }
        let partition = match &self.partitioner {
            None => None,
            Some(partitioner) => {
                let buf = &mut self.partition_buf;
                match pick_partition(partitioner, &self.topic, &self.name, buf, &record, cx) {
                    Ok(p) => Some(p),
                    Err(handled) => return handled,
                }
            }
        };
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
            partition,
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
    partitioner: Option<SinkPartitioner<K, V>>,
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
            partitioner: partitioner.clone(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            partition_buf: Vec::new(),
        }))
    });
    stream.graph.borrow_mut().add(
        Some(name),
        "sink",
        NodeKind::Sink {
            topic: topic_ref,
            partitions: None,
        },
        vec![stream.node],
        vec![],
        Arc::new(spec),
    );
}

impl<K: Data, V: Data> Stream<K, V> {
    /// Writes every record to `topic`, encoded with the topic's serdes, to the partition
    /// Kafka's default partitioner picks for its key bytes. The sink node is called
    /// `<topic>-sink` (the first time; `<topic>-sink-<n>` after).
    pub fn to(&self, topic: &Topic<K, V>) {
        self.to_with(topic, Produced::new());
    }

    /// Writes every record to `topic` as `produced` says: under its sink name, and to the
    /// partitions its partitioner picks (see [`Produced`]).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::Produced;
    ///
    /// let builder = StreamsBuilder::new();
    /// let scores: Topic<String, i64> = Topic::json("scores");
    /// // Keys look like "<player>/<mode>": every mode of a player goes to one partition.
    /// builder.stream(&scores).to_with(
    ///     &Topic::json("scores-by-player"),
    ///     Produced::new().with_partitioner(|key: &String, _| {
    ///         key.split('/').next().unwrap_or_default().as_bytes().to_vec()
    ///     }),
    /// );
    /// builder.build().unwrap();
    /// ```
    pub fn to_with(&self, topic: &Topic<K, V>, produced: Produced<K, V>) {
        let name = match produced.name {
            Some(name) => name,
            None => {
                let graph = self.graph.borrow();
                let base = format!("{}-sink", topic.name());
                if graph.nodes.iter().any(|n| *n.name == *base) {
                    format!("{base}-{}", graph.nodes.len())
                } else {
                    base
                }
            }
        };
        add_sink(
            self,
            name,
            TopicRef::External(topic.shared_name()),
            topic.key_serde().clone(),
            topic.value_serde().clone(),
            false,
            produced.partitioner,
        );
    }
}
