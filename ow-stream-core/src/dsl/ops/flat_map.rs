//! `flat_map`, `flat_map_values`, `try_flat_map_values`: one record in, any number out.

use std::sync::Arc;

use crate::Record;
use crate::dsl::{Data, Stream};
use crate::error::BoxError;
use crate::processor::node::fn_node;

impl<K: Data, V: Data> Stream<K, V> {
    /// Replaces each record by the records `f` returns (new keys and values; serdes unknown).
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> Stream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let f = Arc::new(f);
        let node = self.add_processor("flat-map", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
                for (k, v) in f(r.key, r.value) {
                    ch.forward(
                        Record {
                            key: k,
                            value: v,
                            timestamp: r.timestamp,
                            headers: r.headers.clone(),
                        },
                        cx,
                    )?;
                }
                Ok(())
            }))
        });
        self.derive(node, None, None).key_changed()
    }

    /// Replaces each value by the values `f` returns, each with the record's key.
    ///
    /// ```
    /// # use ow_stream_core::{StreamsBuilder, Topic};
    /// # let builder = StreamsBuilder::new();
    /// # let lines: Topic<String, String> = Topic::json("lines");
    /// let words = builder
    ///     .stream(&lines)
    ///     .flat_map_values(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>());
    /// ```
    pub fn flat_map_values<V2: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> Stream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        let f = Arc::new(f);
        let node = self.add_processor("flat-map-values", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
                for v in f(r.value) {
                    ch.forward(
                        Record {
                            key: r.key.clone(),
                            value: v,
                            timestamp: r.timestamp,
                            headers: r.headers.clone(),
                        },
                        cx,
                    )?;
                }
                Ok(())
            }))
        });
        self.derive(node, self.key_serde.clone(), None)
    }

    /// Like [`Stream::flat_map_values`] for a function that can fail: a failure applies the
    /// application's processing-error policy to the input record, and nothing is forwarded.
    pub fn try_flat_map_values<V2: Data, I, E>(
        &self,
        f: impl Fn(V) -> Result<I, E> + Send + Sync + 'static,
    ) -> Stream<K, V2>
    where
        I: IntoIterator<Item = V2>,
        E: Into<BoxError>,
    {
        let f = Arc::new(f);
        let node = self.add_processor("try-flat-map-values", vec![], move |children, env| {
            let f = f.clone();
            let name = env.name.clone();
            Ok(fn_node(children, move |r: Record<K, V>, ch, cx| {
                match f(r.value) {
                    Ok(values) => {
                        for v in values {
                            ch.forward(
                                Record {
                                    key: r.key.clone(),
                                    value: v,
                                    timestamp: r.timestamp,
                                    headers: r.headers.clone(),
                                },
                                cx,
                            )?;
                        }
                        Ok(())
                    }
                    Err(e) => cx.processing_error(&name, e.into()),
                }
            }))
        });
        self.derive(node, self.key_serde.clone(), None)
    }
}
