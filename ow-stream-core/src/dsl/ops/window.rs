//! `windowed_by`: aggregations per key and time window.

use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::Arc;

use super::aggregate::{
    Aggregator, counting, encode_for_store, folding, forward_flushed, reducing,
};
use crate::dsl::{
    DEFAULT_WINDOW_RETENTION, Data, EmitStrategy, GroupedStream, Materialized, TimeWindows,
    WindowedStream, WindowedTable,
};
use crate::error::{Error, StoreError};
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::serde::{JsonSerde, Serde, SerdeContext, SerdeError};
use crate::state::StoreKind;
use crate::state::window::{
    EMITTED_UNTIL_KEY, Window, Windowed, decode_key, encode_key, encode_time,
};

struct WindowAggregateNode<K, V, A> {
    store: Arc<str>,
    index: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<A>>,
    f: Aggregator<K, V, A>,
    windows: TimeWindows,
    emit: EmitStrategy,
    /// Writes and forwards nothing when a window's new value's bytes equal the stored ones.
    emit_on_change: bool,
    retention_ms: i64,
    children: Children<Windowed<K>, A>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Start of the last window emitted on close (loaded from the store on first use).
    emitted_through: Option<i64>,
    /// Windows starting before this were already expired.
    expired_before: i64,
}

impl<K: Data, V: Data, A: Data> WindowAggregateNode<K, V, A> {
    fn serde_err(&self, e: SerdeError) -> Error {
        Error::store(self.store.clone(), StoreError::Serde(e))
    }

    fn emit_closed(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let size = self.windows.size_ms;
        let closed_through = cx
            .stream_time
            .saturating_sub(self.windows.grace_ms)
            .saturating_sub(size);
        let through = match self.emitted_through {
            Some(t) => t,
            None => {
                let stored = cx.state.get(self.index, EMITTED_UNTIL_KEY)?;
                let t = stored
                    .and_then(|b| b.as_slice().try_into().ok().map(i64::from_be_bytes))
                    .unwrap_or(i64::MIN);
                self.emitted_through = Some(t);
                t
            }
        };
        if closed_through <= through {
            return Ok(());
        }
        let lower = encode_time(through.saturating_add(1));
        let upper = encode_time(closed_through.saturating_add(1));
        let closed = cx.state.range(
            self.index,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            usize::MAX,
        )?;
        for (k, v) in closed {
            let Some((start, key_bytes)) = decode_key(&k) else {
                continue;
            };
            let key = cx
                .decode(&*self.key, SerdeContext::key(&self.store), key_bytes)
                .map_err(|e| self.serde_err(e))?;
            let value = cx
                .decode(&*self.value, SerdeContext::value(&self.store), &v)
                .map_err(|e| self.serde_err(e))?;
            self.children.forward(
                Record::new(
                    Windowed {
                        key,
                        window: Window {
                            start,
                            end: start + size,
                        },
                    },
                    value,
                    start + size - 1,
                ),
                cx,
            )?;
        }
        let ts = cx.stream_time;
        cx.state.put(
            self.index,
            EMITTED_UNTIL_KEY,
            Some(&closed_through.to_be_bytes()),
            ts,
            cx.out,
        )?;
        self.emitted_through = Some(closed_through);
        Ok(())
    }

    /// Writes the store's record cache to the store and its changelog and, when the node emits
    /// on every update, forwards the newest value of each window it held.
    fn flush(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let flushed = cx
            .state
            .flush_cache(self.index, self.emit_on_change, cx.out)?;
        if flushed.is_empty() || self.emit != EmitStrategy::OnWindowUpdate {
            return Ok(());
        }
        let size = self.windows.size_ms;
        let store = &self.store;
        let serde_err = |e: SerdeError| Error::store(store.clone(), StoreError::Serde(e));
        let (key_serde, value_serde) = (&self.key, &self.value);
        forward_flushed(
            cx,
            flushed,
            |cx, k, entry| {
                let (Some(value), Some((start, key_bytes))) = (&entry.value, decode_key(&k)) else {
                    return Ok(None);
                };
                let key = cx
                    .decode(&**key_serde, SerdeContext::key(store), key_bytes)
                    .map_err(serde_err)?;
                let value = cx
                    .decode(&**value_serde, SerdeContext::value(store), value)
                    .map_err(serde_err)?;
                Ok(Some(Record {
                    key: Windowed {
                        key,
                        window: Window {
                            start,
                            end: start + size,
                        },
                    },
                    value,
                    timestamp: entry.timestamp,
                    headers: entry.headers,
                }))
            },
            &mut self.children,
        )
    }

    /// Deletes windows that ended more than the retention ago.
    fn expire(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let cutoff = cx
            .stream_time
            .saturating_sub(self.retention_ms)
            .saturating_sub(self.windows.size_ms);
        if cutoff <= self.expired_before.saturating_add(self.windows.advance_ms) {
            return Ok(());
        }
        delete_windows_before(cx, self.index, cutoff)?;
        self.expired_before = cutoff;
        Ok(())
    }
}

/// Deletes the windows of window store `index` that start before `cutoff` (expiry).
pub(crate) fn delete_windows_before(
    cx: &mut TaskCx<'_>,
    index: usize,
    cutoff: i64,
) -> Result<(), Error> {
    let lower = encode_time(i64::MIN);
    let upper = encode_time(cutoff);
    let old = cx.state.range(
        index,
        Bound::Included(&lower),
        Bound::Excluded(&upper),
        usize::MAX,
    )?;
    let ts = cx.stream_time;
    for (k, _) in old {
        cx.state.put(index, &k, None, ts, cx.out)?;
    }
    Ok(())
}

impl<K: Data, V: Data, A: Data> Node<K, V> for WindowAggregateNode<K, V, A> {
    fn process(&mut self, r: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        encode_for_store(
            cx,
            &self.store,
            &*self.key,
            SerdeContext::key(&self.store),
            &r.key,
            &mut self.key_buf,
        )?;
        let windows: Vec<Window> = self
            .windows
            .windows_for(r.timestamp)
            .into_iter()
            .filter(|w| {
                let open = w.end.saturating_add(self.windows.grace_ms) > cx.stream_time;
                if !open {
                    cx.env.metrics.late_records_dropped.incr();
                    tracing::debug!(
                        store = %self.store, timestamp = r.timestamp, window_start = w.start,
                        window_end = w.end, grace_ms = self.windows.grace_ms,
                        stream_time = cx.stream_time,
                        input = ?cx.input.map(|i| (i.topic.clone(), i.partition, i.offset)),
                        "late record dropped: its window closed (end + grace <= stream time)"
                    );
                }
                open
            })
            .collect();
        let mut value = Some(r.value);
        let n = windows.len();
        let caching = cx.state.caching(self.index);
        let mut full = false;
        for (i, w) in windows.into_iter().enumerate() {
            let v = if i + 1 == n {
                value.take()
            } else {
                value.clone()
            };
            let Some(v) = v else { break };
            let store_key = encode_key(w.start, &self.key_buf);
            let old_bytes = cx.state.get(self.index, &store_key)?;
            let old = match &old_bytes {
                Some(bytes) => Some(
                    cx.decode(&*self.value, SerdeContext::value(&self.store), bytes)
                        .map_err(|e| self.serde_err(e))?,
                ),
                None => None,
            };
            let new = (self.f)(&r.key, v, old);
            self.value_buf.clear();
            cx.encode(
                &*self.value,
                SerdeContext::value(&self.store),
                &new,
                &mut self.value_buf,
            )
            .map_err(|e| self.serde_err(e))?;
            if self.emit_on_change && old_bytes.as_deref() == Some(self.value_buf.as_slice()) {
                continue;
            }
            if caching {
                full |= cx.state.put_cached(
                    self.index,
                    &store_key,
                    Some(&self.value_buf),
                    r.timestamp,
                    &r.headers,
                    cx.out,
                )?;
                continue;
            }
            cx.state.put(
                self.index,
                &store_key,
                Some(&self.value_buf),
                r.timestamp,
                cx.out,
            )?;
            if self.emit == EmitStrategy::OnWindowUpdate {
                self.children.forward(
                    Record {
                        key: Windowed {
                            key: r.key.clone(),
                            window: w,
                        },
                        value: new,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    },
                    cx,
                )?;
            }
        }
        if full {
            self.flush(cx)?;
        }
        if self.emit == EmitStrategy::OnWindowClose {
            self.emit_closed(cx)?;
        }
        self.expire(cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        if cx.flush_caches {
            self.flush(cx)?;
        }
        self.children.punctuate(cx)
    }
}

/// How long the window store of `materialized` keeps windows of `windows`: its retention, or
/// [`DEFAULT_WINDOW_RETENTION`], and at least the grace period.
pub(crate) fn window_retention<K, A>(
    materialized: &Materialized<K, A>,
    windows: TimeWindows,
) -> i64 {
    let retention_ms = materialized
        .retention
        .unwrap_or(DEFAULT_WINDOW_RETENTION)
        .as_millis()
        .min(i64::MAX as u128) as i64;
    retention_ms.max(windows.grace_ms)
}

/// The node that folds each record into its key's aggregates of `windows` in the window
/// store `store` (several such nodes may share one store: a windowed `cogroup`).
pub(crate) fn window_aggregate_spec<K: Data, V: Data, A: Data>(
    store: Arc<str>,
    (key, value): (Arc<dyn Serde<K>>, Arc<dyn Serde<A>>),
    f: Aggregator<K, V, A>,
    (windows, emit, emit_on_change): (TimeWindows, EmitStrategy, bool),
    retention_ms: i64,
) -> OpSpec<K, V, Windowed<K>, A> {
    OpSpec::<K, V, Windowed<K>, A>::new(move |children, env| {
        Ok(Box::new(WindowAggregateNode {
            store: store.clone(),
            index: env.store(&store)?,
            key: key.clone(),
            value: value.clone(),
            f: f.clone(),
            windows,
            emit,
            emit_on_change,
            retention_ms,
            children,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            emitted_through: None,
            expired_before: i64::MIN,
        }))
    })
}

impl<K: Data, V: Data> GroupedStream<K, V> {
    /// Cuts the grouped stream into time windows.
    pub fn windowed_by(&self, windows: TimeWindows) -> WindowedStream<K, V> {
        WindowedStream {
            grouped: GroupedStream {
                stream: self.stream.clone(),
            },
            windows,
            emit: EmitStrategy::OnWindowUpdate,
        }
    }
}

impl<K: Data, V: Data> WindowedStream<K, V> {
    /// Chooses when results are emitted (every update, or once per window when it closes).
    pub fn emit(mut self, strategy: EmitStrategy) -> Self {
        self.emit = strategy;
        self
    }

    fn window_aggregate<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value: Option<Arc<dyn Serde<A>>>,
        f: Aggregator<K, V, A>,
    ) -> WindowedTable<K, A> {
        let g = self.grouped.input(&materialized);
        let (key, value) = self.grouped.store_serdes(&materialized, default_value);
        let store = materialized.name.clone();
        let grace = self.windows.grace_ms;
        let retention_ms = window_retention(&materialized, self.windows);
        let (key_serde, value_serde) = (key.clone(), value.clone());
        let (table_key, table_value) = (key.clone(), value.clone());
        let spec = window_aggregate_spec(
            store.clone(),
            (key, value),
            f,
            (self.windows, self.emit, materialized.emit_on_change),
            retention_ms,
        );
        let node = GroupedStream::add_store_node(
            &g,
            &materialized,
            StoreKind::Window {
                size_ms: self.windows.size_ms,
                retention_ms,
            },
            (key_serde, value_serde),
            "window-aggregate",
            Arc::new(spec),
        );
        WindowedTable {
            graph: g.graph.clone(),
            node,
            store,
            key_serde: table_key,
            value_serde: table_value,
            grace_ms: grace,
            _types: PhantomData,
        }
    }

    /// Counts records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> WindowedTable<K, i64> {
        self.window_aggregate(
            materialized,
            Some(Arc::new(JsonSerde::<i64>::new())),
            counting(),
        )
    }

    /// Combines the values of each key and window.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> WindowedTable<K, V> {
        let default = self.grouped.stream.value_serde.clone();
        self.window_aggregate(materialized, default, reducing(reducer))
    }

    /// Folds the values of each key and window into an aggregate.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> WindowedTable<K, A> {
        self.window_aggregate(materialized, None, folding(initializer, aggregator))
    }
}
