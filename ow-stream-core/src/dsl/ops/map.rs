//! `map`, `map_values`, `select_key`, `try_map`, `try_map_values`: one record in, one record
//! out.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::error::Error;
use crate::processor::node::{BuildEnv, Children, NodeBox, OpSpec, fn_node};
use crate::topology::NodeKind;

impl<K: Data, V: Data> Stream<K, V> {
    /// Adds a processor node with generated name `<prefix>-<n>` after this stream.
    pub(crate) fn add_processor<K2: Data, V2: Data>(
        &self,
        prefix: &str,
        stores: Vec<Arc<str>>,
        make: impl Fn(Children<K2, V2>, &BuildEnv<'_>) -> Result<NodeBox<K, V>, Error>
        + Send
        + Sync
        + 'static,
    ) -> usize {
        self.graph.borrow_mut().add(
            None,
            prefix,
            NodeKind::Processor,
            vec![self.node],
            stores,
            Arc::new(OpSpec::new(make)),
        )
    }

    /// Replaces each record's key and value. The serdes of the result are unknown (declare them
    /// with [`Stream::with_serdes`] if a store or repartition topic downstream needs them).
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # let builder = StreamsBuilder::new();
    /// # let topic: Topic<String, String> = Topic::json("t");
    /// let lengths = builder.stream(&topic).map(|k, v| (v, k.len() as u64));
    /// ```
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> Stream<K2, V2> {
        let f = Arc::new(f);
        let node = self.add_processor("map", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                let (k, v) = f(r.key, r.value);
                ch.forward(
                    crate::Record {
                        key: k,
                        value: v,
                        timestamp: r.timestamp,
                        headers: r.headers,
                    },
                    cx,
                )
            }))
        });
        self.derive(node, None, None).key_changed()
    }

    /// Replaces each record's value; the key (and its serde) stay.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> Stream<K, V2> {
        let f = Arc::new(f);
        let node = self.add_processor("map-values", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                let v = f(r.value);
                ch.forward(
                    crate::Record {
                        key: r.key,
                        value: v,
                        timestamp: r.timestamp,
                        headers: r.headers,
                    },
                    cx,
                )
            }))
        });
        self.derive(node, self.key_serde.clone(), None)
    }

    /// Replaces each record's key; the value (and its serde) stay.
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> Stream<K2, V> {
        let f = Arc::new(f);
        let node = self.add_processor("select-key", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                let k = f(&r.key, &r.value);
                ch.forward(r.with_key(k), cx)
            }))
        });
        self.derive(node, None, self.value_serde.clone())
            .key_changed()
    }

    /// Replaces each record's key and value by what `f` returns, or, when it fails, applies
    /// the application's processing-error policy to the input record (fail, skip, or
    /// dead-letter topic). The serdes of the result are unknown, as after [`Stream::map`].
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # let builder = StreamsBuilder::new();
    /// # let topic: Topic<String, String> = Topic::json("readings");
    /// // "<sensor>=<value>" lines keyed by sensor; a line that does not parse is dead-lettered.
    /// let readings = builder.stream(&topic).try_map(|_, line: String| {
    ///     let (sensor, value) = line.split_once('=').ok_or("no '='")?;
    ///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>((sensor.to_string(), value.parse::<f64>()?))
    /// });
    /// ```
    pub fn try_map<K2: Data, V2: Data, E: Into<crate::error::BoxError>>(
        &self,
        f: impl Fn(K, V) -> Result<(K2, V2), E> + Send + Sync + 'static,
    ) -> Stream<K2, V2> {
        let f = Arc::new(f);
        let node = self.add_processor("try-map", vec![], move |children, env| {
            let f = f.clone();
            let name = env.name.clone();
            Ok(fn_node(children, move |r, ch, cx| {
                match f(r.key, r.value) {
                    Ok((k, v)) => ch.forward(
                        crate::Record {
                            key: k,
                            value: v,
                            timestamp: r.timestamp,
                            headers: r.headers,
                        },
                        cx,
                    ),
                    Err(e) => cx.processing_error(&name, e.into()),
                }
            }))
        });
        self.derive(node, None, None).key_changed()
    }

    /// Replaces each value by what `f` returns, or, when it fails, applies the application's
    /// processing-error policy to the input record (fail, skip, or dead-letter topic).
    pub fn try_map_values<V2: Data, E: Into<crate::error::BoxError>>(
        &self,
        f: impl Fn(V) -> Result<V2, E> + Send + Sync + 'static,
    ) -> Stream<K, V2> {
        let f = Arc::new(f);
        let node = self.add_processor("try-map-values", vec![], move |children, env| {
            let f = f.clone();
            let name = env.name.clone();
            Ok(fn_node(children, move |r, ch, cx| match f(r.value) {
                Ok(v) => ch.forward(
                    crate::Record {
                        key: r.key,
                        value: v,
                        timestamp: r.timestamp,
                        headers: r.headers,
                    },
                    cx,
                ),
                Err(e) => cx.processing_error(&name, e.into()),
            }))
        });
        self.derive(node, self.key_serde.clone(), None)
    }
}
