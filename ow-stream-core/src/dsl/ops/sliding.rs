//! `windowed_by_sliding`: aggregations per key over sliding windows — windows of a fixed time
//! difference that exist only where records are, as Kafka Streams' `SlidingWindows` (KIP-450).

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{Aggregator, counting, encode_for_store, folding, reducing};
use super::session::millis;
use super::window::delete_windows_before;
use crate::dsl::{DEFAULT_WINDOW_RETENTION, Data, GroupedStream, Materialized, WindowedTable};
use crate::error::{Error, StoreError};
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::{Headers, Record};
use crate::runtime::context::TaskCx;
use crate::serde::{JsonSerde, Serde, SerdeContext, SerdeError};
use crate::state::StoreKind;
use crate::state::window::{Window, Windowed, decode_key, encode_key, encode_time};

/// Sliding windows: every window is `time_difference` long, **inclusive on both ends**, and
/// windows exist only where records are — for each record at `t`, the window `[t - diff, t]`
/// that ends with it, and, when a later record of the key falls within `diff` after it, the
/// window `[t + 1, t + 1 + diff]` that starts just after it. Each window aggregates every
/// record of its key whose timestamp lies in it, so the distinct windows are every distinct
/// set of records within `diff` of each other, and no window is empty (KIP-450).
///
/// A window accepts records until stream time passes its end + grace; a record all of whose
/// windows are closed by then is dropped, counted in
/// [`Metrics::late_records_dropped`](crate::metrics::Metrics::late_records_dropped) (once
/// per closed window it would have updated, as Kafka Streams counts) and logged at `debug`
/// with its window. Out-of-order records within grace update every window they fall in and
/// create their own windows, exactly as records in order do.
///
/// Differences from Kafka Streams: windows may start before time 0 (our window stores order
/// negative times), so a record earlier than `diff` gets its own `[t - diff, t]` window
/// rather than Kafka's combined `[0, diff]` workaround window; every update is written
/// through and forwarded (no record cache, as for session windows); and a
/// [`suppress`](WindowedTable::suppress) until the window closes emits a window once stream
/// time is *past* its end + grace (Kafka's suppression emits at end + grace, while the window
/// still takes records at that time).
///
/// ```
/// use std::time::Duration;
/// use ow_stream_core::dsl::SlidingWindows;
///
/// let five_minutes = SlidingWindows::with_time_difference_and_grace(
///     Duration::from_secs(300),
///     Duration::from_secs(30),
/// );
/// assert_eq!(five_minutes.time_difference_ms(), 300_000);
/// assert_eq!(five_minutes.grace_ms(), 30_000);
/// let strict = SlidingWindows::of_time_difference_without_grace(Duration::from_secs(300));
/// assert_eq!(strict.grace_ms(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindows {
    diff_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of `time_difference` (both ends inclusive) that accept records up to `grace`
    /// after they end.
    pub fn with_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        SlidingWindows {
            diff_ms: millis(time_difference),
            grace_ms: millis(grace),
        }
    }

    /// Windows of `time_difference` with no grace period: a record is late as soon as stream
    /// time is past the end of its windows.
    pub fn of_time_difference_without_grace(time_difference: Duration) -> Self {
        Self::with_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// The time difference (the windows' size) in milliseconds.
    pub fn time_difference_ms(&self) -> i64 {
        self.diff_ms
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// A grouped stream cut into sliding windows, ready to aggregate per key and window.
pub struct SlidingWindowedStream<K, V> {
    grouped: GroupedStream<K, V>,
    windows: SlidingWindows,
}

/// The values of sliding window stores: the timestamp of the window's newest record (8 bytes,
/// big-endian), then the aggregate — Kafka Streams' timestamped window store layout. The
/// newest record's time tells whether a window holds records after a given time, which the
/// aggregation needs to create windows without keeping the records themselves.
pub(crate) struct TimestampedSerde<A> {
    inner: Arc<dyn Serde<A>>,
}

/// Splits a sliding window store value into (newest record's timestamp, aggregate bytes).
fn split_timestamped(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((i64::from_be_bytes(head), &bytes[8..]))
}

impl<A: 'static> Serde<A> for TimestampedSerde<A> {
    fn serialize_into(
        &self,
        _: SerdeContext<'_>,
        _: &A,
        _: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        Err(SerdeError::custom(
            "a sliding window store is written by its aggregation only",
        ))
    }

    fn deserialize(&self, ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<A, SerdeError> {
        let (_, value) = split_timestamped(bytes).ok_or_else(|| SerdeError::Malformed {
            format: "sliding window value",
            reason: "shorter than its 8-byte timestamp".into(),
        })?;
        self.inner.deserialize(ctx, value)
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
        format!("timestamped({})", self.inner.describe())
    }
}

/// A window of the record's key found in the store: its start, stored bytes (timestamp and
/// aggregate) and newest record's timestamp.
struct Found {
    start: i64,
    bytes: Vec<u8>,
    max_ts: i64,
}

struct SlidingAggregateNode<K, V, A> {
    store: Arc<str>,
    index: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<A>>,
    f: Aggregator<K, V, A>,
    windows: SlidingWindows,
    retention_ms: i64,
    children: Children<Windowed<K>, A>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Windows starting before this were already expired.
    expired_before: i64,
}

impl<K: Data, V: Data, A: Data> SlidingAggregateNode<K, V, A> {
    fn serde_err(&self, e: SerdeError) -> Error {
        Error::store(self.store.clone(), StoreError::Serde(e))
    }

    fn decode(&self, cx: &TaskCx<'_>, bytes: &[u8]) -> Result<A, Error> {
        let value = self
            .value_of(bytes)
            .ok_or_else(|| self.serde_err(malformed()))?;
        cx.decode(&*self.value, SerdeContext::value(&self.store), value)
            .map_err(|e| self.serde_err(e))
    }

    fn value_of<'b>(&self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        split_timestamped(bytes).map(|(_, v)| v)
    }

    /// The key's windows starting within `[from, to]`, oldest first.
    fn fetch(&self, cx: &TaskCx<'_>, from: i64, to: i64) -> Result<Vec<Found>, Error> {
        let lower = encode_time(from);
        let upper = encode_time(to.saturating_add(1));
        let found = cx.state.range(
            self.index,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            usize::MAX,
        )?;
        let mut out = Vec::new();
        for (k, v) in found {
            let Some((start, key)) = decode_key(&k) else {
                continue;
            };
            if key != self.key_buf.as_slice() {
                continue;
            }
            let (max_ts, _) = split_timestamped(&v).ok_or_else(|| self.serde_err(malformed()))?;
            out.push(Found {
                start,
                bytes: v,
                max_ts,
            });
        }
        Ok(out)
    }

    /// Folds the record into the window starting at `start` (whose aggregate is `old`, of
    /// newest record `old_ts`), writes it and forwards the update — unless the window is
    /// closed: then the record is dropped from it, counted and logged.
    fn update(
        &mut self,
        cx: &mut TaskCx<'_>,
        r: &Record<K, V>,
        start: i64,
        old: Option<A>,
        old_ts: i64,
    ) -> Result<(), Error> {
        let window = self.window(start);
        let close = cx.stream_time.saturating_sub(self.windows.grace_ms);
        if window.end < close {
            self.dropped(cx, r.timestamp, window);
            return Ok(());
        }
        let new_ts = if old.is_some() {
            old_ts.max(r.timestamp)
        } else {
            r.timestamp
        };
        let new = (self.f)(&r.key, r.value.clone(), old);
        self.write(cx, start, new_ts, &new)?;
        self.forward(cx, &r.key, window, new, new_ts, &r.headers)
    }

    fn window(&self, start: i64) -> Window {
        Window {
            start,
            end: start.saturating_add(self.windows.diff_ms),
        }
    }

    fn write(
        &mut self,
        cx: &mut TaskCx<'_>,
        start: i64,
        max_ts: i64,
        agg: &A,
    ) -> Result<(), Error> {
        encode_for_store(
            cx,
            &self.store,
            &*self.value,
            SerdeContext::value(&self.store),
            agg,
            &mut self.value_buf,
        )?;
        let mut bytes = Vec::with_capacity(8 + self.value_buf.len());
        bytes.extend_from_slice(&max_ts.to_be_bytes());
        bytes.extend_from_slice(&self.value_buf);
        let store_key = encode_key(start, &self.key_buf);
        cx.state
            .put(self.index, &store_key, Some(&bytes), max_ts, cx.out)
    }

    fn forward(
        &mut self,
        cx: &mut TaskCx<'_>,
        key: &K,
        window: Window,
        value: A,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<(), Error> {
        self.children.forward(
            Record {
                key: Windowed {
                    key: key.clone(),
                    window,
                },
                value,
                timestamp,
                headers: headers.clone(),
            },
            cx,
        )
    }

    fn dropped(&self, cx: &TaskCx<'_>, timestamp: i64, window: Window) {
        cx.env.metrics.late_records_dropped.incr();
        tracing::debug!(
            store = %self.store, timestamp, window_start = window.start,
            window_end = window.end, grace_ms = self.windows.grace_ms,
            stream_time = cx.stream_time,
            input = ?cx.input.map(|i| (i.topic.clone(), i.partition, i.offset)),
            "late record dropped: its sliding window closed (end + grace < stream time)"
        );
    }

    /// Adds the record to the windows it falls in and creates the windows it brings about, as
    /// Kafka Streams' `KStreamSlidingWindowAggregate` does (reading the key's windows newest
    /// first).
    fn aggregate(&mut self, r: &Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let (t, diff) = (r.timestamp, self.windows.diff_ms);
        let found = self.fetch(
            cx,
            t.saturating_sub(diff.saturating_mul(2)),
            t.saturating_add(1),
        )?;
        let mut starts = BTreeSet::new();
        let (mut left_agg, mut right_win): (Option<A>, Option<Found>) = (None, None);
        let (mut left_exists, mut right_exists) = (false, false);
        let mut previous: Option<i64> = None;
        for w in found.into_iter().rev() {
            starts.insert(w.start);
            let end = w.start.saturating_add(diff);
            if w.start == t.saturating_add(1) {
                // The record's right window exists already.
                right_exists = true;
            } else if end > t {
                // A window the record falls in, with records after it: the newest is the
                // content of the record's right window, should it be created.
                let old = self.decode(cx, &w.bytes)?;
                self.update(cx, r, w.start, Some(old), w.max_ts)?;
                if right_win.is_none() {
                    right_win = Some(w);
                }
            } else if end == t {
                left_exists = true;
                let old = self.decode(cx, &w.bytes)?;
                self.update(cx, r, w.start, Some(old), w.max_ts)?;
                if w.max_ts < t {
                    previous = Some(w.max_ts);
                } else {
                    // A record at `t` came before: every window it brings about exists.
                    return Ok(());
                }
            } else {
                // The newest window ending before `t`: its records are those before `t`
                // within `diff` of it, when its newest record is.
                left_agg = Some(self.decode(cx, &w.bytes)?);
                previous = Some(w.max_ts);
                break;
            }
        }
        // The right window of the record before this one, which now holds this one.
        if let Some(p) = previous {
            let start = p.saturating_add(1);
            if !starts.contains(&start) && start.saturating_add(diff) >= t {
                self.update(cx, r, start, None, t)?;
            }
        }
        // The record's left window, `[t - diff, t]`.
        if !left_exists {
            let before = match previous {
                Some(p) if t.saturating_sub(diff) <= p => left_agg,
                _ => None,
            };
            self.update(cx, r, t.saturating_sub(diff), before, t)?;
        }
        // The record's right window, `[t + 1, t + 1 + diff]`, when records follow it.
        if !right_exists && let Some(w) = right_win.filter(|w| w.max_ts > t) {
            let agg = self.decode(cx, &w.bytes)?;
            let start = t.saturating_add(1);
            let store_key = encode_key(start, &self.key_buf);
            cx.state
                .put(self.index, &store_key, Some(&w.bytes), w.max_ts, cx.out)?;
            self.forward(cx, &r.key, self.window(start), agg, w.max_ts, &r.headers)?;
        }
        Ok(())
    }

    /// Deletes windows that ended more than the retention ago.
    fn expire(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let cutoff = cx
            .stream_time
            .saturating_sub(self.retention_ms)
            .saturating_sub(self.windows.diff_ms);
        if cutoff
            <= self
                .expired_before
                .saturating_add(self.windows.diff_ms.max(1))
        {
            return Ok(());
        }
        delete_windows_before(cx, self.index, cutoff)?;
        self.expired_before = cutoff;
        Ok(())
    }
}

fn malformed() -> SerdeError {
    SerdeError::Malformed {
        format: "sliding window value",
        reason: "shorter than its 8-byte timestamp".into(),
    }
}

impl<K: Data, V: Data, A: Data> Node<K, V> for SlidingAggregateNode<K, V, A> {
    fn process(&mut self, r: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        encode_for_store(
            cx,
            &self.store,
            &*self.key,
            SerdeContext::key(&self.store),
            &r.key,
            &mut self.key_buf,
        )?;
        let (t, diff) = (r.timestamp, self.windows.diff_ms);
        let close = cx.stream_time.saturating_sub(self.windows.grace_ms);
        if t.saturating_add(1).saturating_add(diff) <= close {
            // Even the record's right window is closed.
            self.dropped(cx, t, self.window(t.saturating_sub(diff)));
        } else {
            self.aggregate(&r, cx)?;
        }
        self.expire(cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

impl<K: Data, V: Data> GroupedStream<K, V> {
    /// Cuts the grouped stream into sliding windows (see [`SlidingWindows`]).
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedStream<K, V> {
        SlidingWindowedStream {
            grouped: GroupedStream {
                stream: self.stream.clone(),
            },
            windows,
        }
    }
}

impl<K: Data, V: Data> SlidingWindowedStream<K, V> {
    fn sliding_aggregate<A: Data>(
        &self,
        materialized: Materialized<K, A>,
        default_value: Option<Arc<dyn Serde<A>>>,
        f: Aggregator<K, V, A>,
    ) -> WindowedTable<K, A> {
        let input = self.grouped.input(&materialized);
        let (key, value) = self.grouped.store_serdes(&materialized, default_value);
        let store = materialized.name.clone();
        let windows = self.windows;
        let retention_ms = millis(materialized.retention.unwrap_or(DEFAULT_WINDOW_RETENTION))
            .max(windows.diff_ms.saturating_add(windows.grace_ms));
        let stored: Arc<dyn Serde<A>> = Arc::new(TimestampedSerde {
            inner: value.clone(),
        });
        let (table_key, table_value) = (key.clone(), value.clone());
        let (key_serde, s) = (key.clone(), store.clone());
        let spec = OpSpec::<K, V, Windowed<K>, A>::new(move |children, env| {
            Ok(Box::new(SlidingAggregateNode {
                store: s.clone(),
                index: env.store(&s)?,
                key: key.clone(),
                value: value.clone(),
                f: f.clone(),
                windows,
                retention_ms,
                children,
                key_buf: Vec::new(),
                value_buf: Vec::new(),
                expired_before: i64::MIN,
            }))
        });
        let node = GroupedStream::add_store_node(
            &input,
            &materialized,
            StoreKind::Window {
                size_ms: windows.diff_ms,
                retention_ms,
            },
            (key_serde, stored),
            "sliding-aggregate",
            Arc::new(spec),
        );
        WindowedTable {
            graph: input.graph.clone(),
            node,
            store,
            key_serde: table_key,
            value_serde: table_value,
            // A sliding window's end is inclusive: it is closed once stream time is past
            // end + grace.
            grace_ms: windows.grace_ms.saturating_add(1),
            _types: PhantomData,
        }
    }

    /// Counts records per key and sliding window (stored as JSON unless `materialized` says
    /// otherwise).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{Materialized, SlidingWindows};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let clicks: Topic<String, String> = Topic::json("clicks");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&clicks)
    ///     .group_by_key()
    ///     .windowed_by_sliding(SlidingWindows::of_time_difference_without_grace(
    ///         Duration::from_millis(10),
    ///     ))
    ///     .count(Materialized::as_("clicks-in-10ms"));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// let input = driver.input_topic(&clicks);
    /// for t in [10, 15, 30] {
    ///     input.pipe_input_at("ada".into(), "/".into(), t).unwrap();
    /// }
    /// let store = driver.window_store::<String, i64>("clicks-in-10ms").unwrap();
    /// let windows: Vec<(i64, i64, i64)> = store
    ///     .fetch(&"ada".to_string(), i64::MIN, i64::MAX)
    ///     .unwrap()
    ///     .into_iter()
    ///     .map(|(w, n)| (w.start, w.end, n))
    ///     .collect();
    /// // [0, 10] and [5, 15] end with a record; [11, 21] starts after the record at 10 and
    /// // holds the one at 15; [20, 30] ends with the record at 30.
    /// assert_eq!(windows, [(0, 10, 1), (5, 15, 2), (11, 21, 1), (20, 30, 1)]);
    /// ```
    pub fn count(&self, materialized: Materialized<K, i64>) -> WindowedTable<K, i64> {
        self.sliding_aggregate(
            materialized,
            Some(Arc::new(JsonSerde::<i64>::new())),
            counting(),
        )
    }

    /// Combines the values of each key and sliding window with `reducer(aggregate, value)`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> WindowedTable<K, V> {
        let default = self.grouped.stream.value_serde.clone();
        self.sliding_aggregate(materialized, default, reducing(reducer))
    }

    /// Folds the values of each key and sliding window into an aggregate that starts as
    /// `initializer()`.
    pub fn aggregate<A: Data>(
        &self,
        initializer: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> WindowedTable<K, A> {
        self.sliding_aggregate(materialized, None, folding(initializer, aggregator))
    }
}
