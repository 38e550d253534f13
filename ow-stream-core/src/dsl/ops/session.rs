//! `windowed_by_session`: aggregations per key and session — a period of activity that ends
//! after an inactivity gap — as Kafka Streams' `SessionWindows`.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{counting, encode_for_store, folding, reducing};
use crate::dsl::{DEFAULT_WINDOW_RETENTION, Data, GroupedStream, Materialized, Stream};
use crate::error::{Error, StoreError};
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::serde::{JsonSerde, Serde, SerdeContext, SerdeError};
use crate::state::StoreKind;
use crate::state::window::{Window, Windowed, encode_time};

/// Session windows: the records of a key whose timestamps are at most an inactivity gap apart
/// belong to one session `[first, last]` (both timestamps inclusive, as in Kafka Streams), and
/// a record that falls between two sessions merges them.
///
/// A session accepts records until stream time passes its end + gap + grace; a record for a
/// session closed by then is dropped, counted in
/// [`Metrics::late_records_dropped`](crate::metrics::Metrics::late_records_dropped) and logged
/// at `debug` with its session.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_core::dsl::SessionWindows;
///
/// let visits = SessionWindows::with_inactivity_gap(Duration::from_secs(300)).grace(Duration::from_secs(60));
/// assert_eq!(visits.gap_ms(), 300_000);
/// assert_eq!(visits.grace_ms(), 60_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` without a record, with no grace period (set one with
    /// [`SessionWindows::grace`]).
    pub fn with_inactivity_gap(gap: Duration) -> Self {
        SessionWindows {
            gap_ms: millis(gap).max(1),
            grace_ms: 0,
        }
    }

    /// Accepts records up to `grace` after a session closed (out-of-order records).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace_ms = millis(grace);
        self
    }

    /// The inactivity gap in milliseconds.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// A grouped stream cut into sessions, ready to aggregate per key and session.
pub struct SessionWindowedStream<K, V> {
    grouped: GroupedStream<K, V>,
    windows: SessionWindows,
}

/// A table of session aggregates, kept in a key-value store keyed by [`Windowed`] keys (the
/// session's first and last timestamps as the window's `start` and `end`).
///
/// Its changes, [`SessionTable::to_stream`], carry `Some(aggregate)` for a session created or
/// grown, and `None` for a session merged into another (a tombstone of its old window), as
/// Kafka Streams forwards them.
pub struct SessionTable<K, V> {
    pub(crate) stream: Stream<Windowed<K>, Option<V>>,
    pub(crate) store: Arc<str>,
    /// The serdes of the record keys and the aggregates, for a suppression's buffer.
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
}

impl<K: Data, V: Data> SessionTable<K, V> {
    /// The changes of this table as a stream: `Some` for a new or grown session, `None` for
    /// a session merged away.
    pub fn to_stream(&self) -> Stream<Windowed<K>, Option<V>> {
        self.stream.clone()
    }

    /// The name of the store behind this table. Query it as a key-value store of
    /// `Windowed<K>` keys ([`Streams::key_value_store`](crate::Streams::key_value_store)):
    /// its entries are ordered by key, then session end.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

/// Merges two session aggregates when a record joins their sessions.
type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;
/// Folds a value into a session's aggregate (`None`: the session's first value).
type SessionAggregator<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// Session store keys: the record key's bytes (length-prefixed, so one key's sessions are
/// contiguous), then the session end and start, each 8 bytes in time order. A key's sessions
/// overlapping a time are then one range read.
pub(crate) struct SessionKeySerde<K> {
    inner: Arc<dyn Serde<K>>,
    /// What `describe` calls it.
    label: &'static str,
}

impl<K> SessionKeySerde<K> {
    /// The serde of session keys.
    pub(crate) fn new(inner: Arc<dyn Serde<K>>) -> Self {
        SessionKeySerde {
            inner,
            label: "session",
        }
    }

    /// The same layout for the keys of time windows.
    pub(crate) fn windowed(inner: Arc<dyn Serde<K>>) -> Self {
        SessionKeySerde {
            inner,
            label: "windowed",
        }
    }
}

fn session_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 16);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

fn session_key(key: &[u8], window: Window) -> Vec<u8> {
    let mut out = session_prefix(key);
    out.extend_from_slice(&encode_time(window.end));
    out.extend_from_slice(&encode_time(window.start));
    out
}

fn decode_time(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// Splits a session store key into (record key bytes, session).
fn decode_session_key(bytes: &[u8]) -> Option<(&[u8], Window)> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let key = bytes.get(4..4 + len)?;
    let rest = bytes.get(4 + len..)?;
    if rest.len() != 16 {
        return None;
    }
    let end = decode_time(&rest[..8])?;
    let start = decode_time(&rest[8..])?;
    Some((key, Window { start, end }))
}

impl<K: 'static> Serde<Windowed<K>> for SessionKeySerde<K> {
    fn serialize_into(
        &self,
        ctx: SerdeContext<'_>,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let key = self.inner.serialize(ctx, &value.key)?;
        out.extend_from_slice(&session_key(&key, value.window));
        Ok(())
    }

    fn deserialize(&self, ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let (key, window) = decode_session_key(bytes).ok_or_else(|| SerdeError::Malformed {
            format: "session key",
            reason: "not <length><key><end><start>".into(),
        })?;
        Ok(Windowed {
            key: self.inner.deserialize(ctx, key)?,
            window,
        })
    }

    fn prepare<'a>(
        &'a self,
        ctx: SerdeContext<'a>,
    ) -> futures::future::BoxFuture<'a, Result<(), SerdeError>> {
        self.inner.prepare(ctx)
    }

    fn load_schema(&self, id: u32) -> futures::future::BoxFuture<'_, Result<(), SerdeError>> {
        self.inner.load_schema(id)
    }

    fn describe(&self) -> String {
        format!("{}({})", self.label, self.inner.describe())
    }
}

struct SessionAggregateNode<K, V, A> {
    store: Arc<str>,
    index: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<A>>,
    aggregate: SessionAggregator<K, V, A>,
    merge: Merger<K, A>,
    windows: SessionWindows,
    retention_ms: i64,
    children: Children<Windowed<K>, Option<A>>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Stream time of the last expiry pass.
    expired_at: i64,
}

impl<K: Data, V: Data, A: Data> SessionAggregateNode<K, V, A> {
    fn serde_err(&self, e: SerdeError) -> Error {
        Error::store(self.store.clone(), StoreError::Serde(e))
    }

    /// The key's sessions that a record at `t` touches: those ending at `t - gap` or later
    /// and starting at `t + gap` or earlier.
    fn overlapping(&self, t: i64, cx: &TaskCx<'_>) -> Result<Vec<(Window, Vec<u8>)>, Error> {
        let gap = self.windows.gap_ms;
        let prefix = session_prefix(&self.key_buf);
        let mut lower = prefix.clone();
        lower.extend_from_slice(&encode_time(t.saturating_sub(gap)));
        let mut upper = prefix;
        upper.extend_from_slice(&[0xff; 17]);
        let found = cx.state.range(
            self.index,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            usize::MAX,
        )?;
        Ok(found
            .into_iter()
            .filter_map(|(k, v)| {
                let (_, window) = decode_session_key(&k)?;
                (window.start <= t.saturating_add(gap)).then_some((window, v))
            })
            .collect())
    }

    /// Deletes sessions that ended more than the retention ago (a scan of the store, at
    /// most once per inactivity gap of stream time).
    fn expire(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        if cx.stream_time.saturating_sub(self.expired_at) < self.windows.gap_ms {
            return Ok(());
        }
        self.expired_at = cx.stream_time;
        let cutoff = cx.stream_time.saturating_sub(self.retention_ms);
        let all = cx
            .state
            .range(self.index, Bound::Unbounded, Bound::Unbounded, usize::MAX)?;
        let ts = cx.stream_time;
        for (k, _) in all {
            if decode_session_key(&k).is_some_and(|(_, w)| w.end < cutoff) {
                cx.state.put(self.index, &k, None, ts, cx.out)?;
            }
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Node<K, V> for SessionAggregateNode<K, V, A> {
    fn process(&mut self, r: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        encode_for_store(
            cx,
            &self.store,
            &*self.key,
            SerdeContext::key(&self.store),
            &r.key,
            &mut self.key_buf,
        )?;
        let t = r.timestamp;
        let overlapping = self.overlapping(t, cx)?;
        let mut merged = Window { start: t, end: t };
        for (w, _) in &overlapping {
            merged.start = merged.start.min(w.start);
            merged.end = merged.end.max(w.end);
        }
        let close = cx
            .stream_time
            .saturating_sub(self.windows.grace_ms)
            .saturating_sub(self.windows.gap_ms);
        if merged.end < close {
            cx.env.metrics.late_records_dropped.incr();
            tracing::debug!(
                store = %self.store, timestamp = t, session_start = merged.start,
                session_end = merged.end, gap_ms = self.windows.gap_ms,
                grace_ms = self.windows.grace_ms, stream_time = cx.stream_time,
                input = ?cx.input.map(|i| (i.topic.clone(), i.partition, i.offset)),
                "late record dropped: its session closed (end + gap + grace <= stream time)"
            );
            return Ok(());
        }
        let mut acc: Option<A> = None;
        for (w, bytes) in overlapping {
            let old = cx
                .decode(&*self.value, SerdeContext::value(&self.store), &bytes)
                .map_err(|e| self.serde_err(e))?;
            acc = Some(match acc {
                None => old,
                Some(a) => (self.merge)(&r.key, a, old),
            });
            if w != merged {
                let old_key = session_key(&self.key_buf, w);
                cx.state.put(self.index, &old_key, None, t, cx.out)?;
                let removed = Windowed {
                    key: r.key.clone(),
                    window: w,
                };
                self.children
                    .forward(Record::new(removed, None, w.end), cx)?;
            }
        }
        let new = (self.aggregate)(&r.key, r.value, acc);
        encode_for_store(
            cx,
            &self.store,
            &*self.value,
            SerdeContext::value(&self.store),
            &new,
            &mut self.value_buf,
        )?;
        let store_key = session_key(&self.key_buf, merged);
        cx.state
            .put(self.index, &store_key, Some(&self.value_buf), t, cx.out)?;
        let session = Windowed {
            key: r.key,
            window: merged,
        };
        self.children.forward(
            Record {
                key: session,
                value: Some(new),
                timestamp: merged.end,
                headers: r.headers,
            },
            cx,
        )?;
        self.expire(cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

impl<K: Data, V: Data> GroupedStream<K, V> {
    /// Cuts the grouped stream into sessions (see [`SessionWindows`]).
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedStream<K, V> {
        SessionWindowedStream {
            grouped: GroupedStream {
                stream: self.stream.clone(),
            },
            windows,
        }
    }
}

impl<K: Data, V: Data> SessionWindowedStream<K, V> {
    fn session_aggregate<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value: Option<Arc<dyn Serde<A>>>,
        aggregate: SessionAggregator<K, V, A>,
        merge: Merger<K, A>,
    ) -> SessionTable<K, A> {
        let input = self.grouped.input(&materialized);
        let (key, value) = self.grouped.store_serdes(&materialized, default_value);
        let store = materialized.name.clone();
        let windows = self.windows;
        let retention_ms = millis(materialized.retention.unwrap_or(DEFAULT_WINDOW_RETENTION))
            .max(windows.gap_ms.saturating_add(windows.grace_ms));
        let store_key: Arc<dyn Serde<Windowed<K>>> = Arc::new(SessionKeySerde::new(key.clone()));
        let (table_key, table_value) = (key.clone(), value.clone());
        let (s, value_serde) = (store.clone(), value.clone());
        let spec = OpSpec::<K, V, Windowed<K>, Option<A>>::new(move |children, env| {
            Ok(Box::new(SessionAggregateNode {
                store: s.clone(),
                index: env.store(&s)?,
                key: key.clone(),
                value: value.clone(),
                aggregate: aggregate.clone(),
                merge: merge.clone(),
                windows,
                retention_ms,
                children,
                key_buf: Vec::new(),
                value_buf: Vec::new(),
                expired_at: i64::MIN,
            }))
        });
        let node = GroupedStream::add_store_node(
            &input,
            &materialized,
            StoreKind::KeyValue,
            (store_key, value_serde),
            "session-aggregate",
            Arc::new(spec),
        );
        SessionTable {
            stream: Stream {
                graph: input.graph.clone(),
                node,
                key_serde: None,
                value_serde: None,
                repartition_required: false,
            },
            store,
            key_serde: table_key,
            value_serde: table_value,
            gap_ms: windows.gap_ms,
            grace_ms: windows.grace_ms,
        }
    }

    /// Counts records per key and session (stored as JSON unless `materialized` says
    /// otherwise).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{Materialized, SessionWindows, Windowed};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let clicks: Topic<String, String> = Topic::json("clicks");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&clicks)
    ///     .group_by_key()
    ///     .windowed_by_session(SessionWindows::with_inactivity_gap(Duration::from_secs(60)))
    ///     .count(Materialized::as_("visits"));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// let input = driver.input_topic(&clicks);
    /// input.pipe_input_at("ada".into(), "/".into(), 0).unwrap();
    /// input.pipe_input_at("ada".into(), "/docs".into(), 50_000).unwrap();
    /// input.pipe_input_at("ada".into(), "/".into(), 500_000).unwrap();
    /// let visits = driver.key_value_store::<Windowed<String>, i64>("visits").unwrap();
    /// let sessions: Vec<(i64, i64, i64)> = visits
    ///     .all()
    ///     .unwrap()
    ///     .into_iter()
    ///     .map(|(w, n)| (w.window.start, w.window.end, n))
    ///     .collect();
    /// assert_eq!(sessions, [(0, 50_000, 2), (500_000, 500_000, 1)]);
    /// ```
    pub fn count(&self, materialized: Materialized<K, i64>) -> SessionTable<K, i64> {
        self.session_aggregate(
            materialized,
            Some(Arc::new(JsonSerde::<i64>::new())),
            counting(),
            Arc::new(|_, a, b| a + b),
        )
    }

    /// Combines the values of each key and session with `reducer` (which also merges two
    /// sessions' values when a record joins them).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> SessionTable<K, V> {
        let default = self.grouped.stream.value_serde.clone();
        let reducer = Arc::new(reducer);
        let merge = reducer.clone();
        self.session_aggregate(
            materialized,
            default,
            reducing(move |acc, v| reducer(acc, v)),
            Arc::new(move |_, a, b| merge(a, b)),
        )
    }

    /// Folds the values of each key and session into an aggregate that starts as
    /// `initializer()`; `merger(key, a, b)` combines two sessions' aggregates when a record
    /// joins them (Kafka Streams' `Merger`).
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> SessionTable<K, A> {
        self.session_aggregate(
            materialized,
            None,
            folding(initializer, aggregator),
            Arc::new(merger),
        )
    }
}
