//! `join_stream`, `left_join_stream`, `outer_join_stream`: windowed joins of two streams, as
//! Kafka Streams' `KStream#join(KStream, ValueJoiner, JoinWindows, StreamJoined)` and its left
//! and outer forms.
//!
//! # How it works
//! Each side buffers its records in a store of its own, keyed by (key, timestamp): the
//! *this* store `<store>-this-join-store` and the *other* store `<store>-other-join-store`.
//! A record of one side is written to its side's store, then joined with every record of the
//! other side's store with the same key whose timestamp is within the window. A pair is
//! therefore emitted exactly once, by whichever of its two records is processed second.
//! A record joins only the other side's records whose window is still open (stream time not
//! past their timestamp plus the window's far bound plus the grace), so a left or outer join
//! never emits both a pair and a `None`-padded result for one record.
//!
//! Left and outer joins also keep the records that have not joined (yet) in a third store,
//! `<store>-outer-shared-join-store`, ordered by time. A record leaves it when a record of the
//! other side joins it, or when its window closes — stream time passes its timestamp plus the
//! window's far bound plus the grace period — and it is then emitted with `None` for the other
//! side (Kafka Streams ≥ 3.1: no eager, spurious null-padded results).
//!
//! All three stores are changelogged (unless [`StreamJoined::with_logging_disabled`]), commit
//! with the input offsets like every other store, and are restored after a crash. Entries are
//! deleted once they are older than the window size plus the grace period, by stream time.
//!
//! # Store layout
//! Join stores: `<key length: u32><key><timestamp: 8 bytes, time order><sequence: u32>`, so a
//! key's records in a time range are one range read, and two records of a key with the same
//! timestamp are both kept (the sequence numbers them, from what the store holds, so a record
//! processed again after a crash gets the number it had). The shared store:
//! `<timestamp><side: u8><key length><key><sequence>`, so closed entries are a prefix.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::source::missing_serde;
use crate::config::StoreBackend;
use crate::dsl::{Data, Stream};
use crate::error::{Error, StoreError, TopologyError};
use crate::processor::node::{Children, Node, OpSpec, fn_node};
use crate::record::{Headers, Record};
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext, SerdeError};
use crate::state::window::encode_time;
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topology::NodeKind;

use super::aggregate::Unavailable;

/// The window of a stream–stream join: a record of this stream at time `t` joins the records
/// of the other stream with the same key and a timestamp in `[t - before, t + after]`
/// (Kafka Streams' `JoinWindows`).
///
/// Records may arrive out of order by up to the grace period. The window of a record of this
/// stream at `t` closes once stream time is past `t + after + grace` (one of the other stream:
/// `t + before + grace`): no record joins it after that, and a left or outer join then emits
/// it `None`-padded if nothing joined it. A record that arrives after its own window closed
/// still joins the other stream's records whose windows are open; one older than the window
/// size plus the grace (stream time past `t + before + after + grace`) can join nothing: it
/// is dropped, counted in
/// [`Metrics::late_records_dropped`](crate::metrics::Metrics::late_records_dropped) and logged
/// at `debug` (the join stores' retention, as in Kafka Streams).
///
/// ```
/// use std::time::Duration;
/// use ow_stream_core::dsl::JoinWindows;
///
/// let w = JoinWindows::of_time_difference_and_grace(Duration::from_secs(60), Duration::from_secs(10));
/// assert_eq!((w.before_ms(), w.after_ms(), w.grace_ms()), (60_000, 60_000, 10_000));
/// // Only records of the other stream up to 5 s earlier and 60 s later.
/// let w = w.before(Duration::from_secs(5));
/// assert_eq!(w.size_ms(), 65_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl JoinWindows {
    /// Records join when their timestamps are at most `difference` apart, either way; records
    /// are accepted up to `grace` out of order.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }

    /// Records join when their timestamps are at most `difference` apart, either way, with no
    /// grace period: a record is dropped once stream time is past its window.
    pub fn of_time_difference_without_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Sets how much earlier than a record of this stream the other stream's records may be
    /// (the window's lower bound, `t - before`).
    pub fn before(mut self, before: Duration) -> Self {
        self.before_ms = millis(before);
        self
    }

    /// Sets how much later than a record of this stream the other stream's records may be
    /// (the window's upper bound, `t + after`).
    pub fn after(mut self, after: Duration) -> Self {
        self.after_ms = millis(after);
        self
    }

    /// How much earlier the other stream's records may be, in milliseconds.
    pub fn before_ms(&self) -> i64 {
        self.before_ms
    }

    /// How much later the other stream's records may be, in milliseconds.
    pub fn after_ms(&self) -> i64 {
        self.after_ms
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// The window size, `before + after`, in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms)
    }

    /// How long the join stores keep a record: the window size plus the grace period.
    fn retention_ms(&self) -> i64 {
        self.size_ms().saturating_add(self.grace_ms)
    }
}

/// The options of a stream–stream join (Kafka Streams' `StreamJoined`): the name of its nodes
/// and stores, the serdes of the stores, where they live and whether they are changelogged.
///
/// [`StreamJoined::as_`] names the nodes `<name>-this-join`, `<name>-other-join` and
/// `<name>-merge`, the repartition topics (when a side needs one)
/// `<application_id>-<name>-left-repartition` and `…-right-repartition`, and the stores
/// `<name>-this-join-store`, `<name>-other-join-store` and (left and outer joins)
/// `<name>-outer-shared-join-store` — each with its changelog
/// `<application_id>-<store>-changelog`. [`StreamJoined::with_store_name`] names the stores
/// apart from the nodes. Serdes not given are the streams'.
///
/// ```
/// use ow_stream_core::dsl::StreamJoined;
/// use ow_stream_core::serde::{JsonSerde, StringSerde};
///
/// let joined: StreamJoined<String, i64, String> = StreamJoined::as_("clicks-with-views")
///     .with_key_serde(StringSerde)
///     .with_value_serde(JsonSerde::new())
///     .with_other_value_serde(StringSerde)
///     .with_store_name("click-view-buffer");
/// assert_eq!(joined.name(), "clicks-with-views");
/// assert_eq!(joined.store_name(), "click-view-buffer");
/// ```
pub struct StreamJoined<K, V, VO> {
    name: Arc<str>,
    store_name: Option<Arc<str>>,
    key_serde: Option<Arc<dyn Serde<K>>>,
    value_serde: Option<Arc<dyn Serde<V>>>,
    other_value_serde: Option<Arc<dyn Serde<VO>>>,
    backend: Option<StoreBackend>,
    logging: bool,
}

impl<K: 'static, V: 'static, VO: 'static> StreamJoined<K, V, VO> {
    /// A join whose nodes and stores are named after `name`.
    pub fn as_(name: impl Into<Arc<str>>) -> Self {
        StreamJoined {
            name: name.into(),
            store_name: None,
            key_serde: None,
            value_serde: None,
            other_value_serde: None,
            backend: None,
            logging: true,
        }
    }

    /// The name of the join's nodes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix of the join's store names (the name, unless
    /// [`StreamJoined::with_store_name`] set another).
    pub fn store_name(&self) -> &str {
        self.store_name.as_deref().unwrap_or(&self.name)
    }

    /// Names the stores `<store_name>-this-join-store` and so on.
    pub fn with_store_name(mut self, store_name: impl Into<Arc<str>>) -> Self {
        self.store_name = Some(store_name.into());
        self
    }

    /// Sets the serde of the keys (in the stores, and in a repartition topic).
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the serde of this stream's values.
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the serde of the other stream's values.
    pub fn with_other_value_serde(mut self, serde: impl Serde<VO>) -> Self {
        self.other_value_serde = Some(Arc::new(serde));
        self
    }

    /// Keeps the stores in memory (rebuilt from their changelogs at every start).
    pub fn in_memory(mut self) -> Self {
        self.backend = Some(StoreBackend::InMemory);
        self
    }

    /// Keeps the stores in redb files under the state directory.
    pub fn persistent(mut self) -> Self {
        self.backend = Some(StoreBackend::Persistent);
        self
    }

    /// Writes no changelogs: the buffered records are then lost with the stores' files.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// Whether the stores are changelogged (the default).
    pub fn logs(&self) -> bool {
        self.logging
    }
}

/// Builds a join result from the left and right values (`None`: the side did not join).
type BothJoiner<K, T, O, VR> = Arc<dyn Fn(&K, Option<T>, Option<O>) -> Option<VR> + Send + Sync>;

/// Which input of the join a record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left = 0,
    Right = 1,
}

/// The prefix of a key's entries in a join store.
fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 12);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

fn join_key(key: &[u8], t: i64, seq: u32) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&encode_time(t));
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

fn decode_time(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// Splits a join store key into (key bytes, timestamp, sequence).
fn decode_join_key(bytes: &[u8]) -> Option<(&[u8], i64, u32)> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let key = bytes.get(4..4 + len)?;
    let rest = bytes.get(4 + len..)?;
    if rest.len() != 12 {
        return None;
    }
    let t = decode_time(&rest[..8])?;
    let seq = u32::from_be_bytes(rest[8..].try_into().ok()?);
    Some((key, t, seq))
}

fn outer_key(side: Side, key: &[u8], t: i64, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 1 + 4 + key.len() + 4);
    out.extend_from_slice(&encode_time(t));
    out.push(side as u8);
    out.extend_from_slice(&key_prefix(key));
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Splits a shared-store key into (timestamp, side, key bytes).
fn decode_outer_key(bytes: &[u8]) -> Option<(i64, Side, &[u8])> {
    let t = decode_time(bytes.get(..8)?)?;
    let side = match bytes.get(8)? {
        0 => Side::Left,
        1 => Side::Right,
        _ => return None,
    };
    let rest = bytes.get(9..)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = rest.get(4..4 + len)?;
    (rest.len() == 4 + len + 4).then_some((t, side, key))
}

/// Describes the keys of the join stores in `describe()`.
struct JoinKeyDescribe(String);

impl Serde<()> for JoinKeyDescribe {
    fn serialize_into(
        &self,
        _: SerdeContext<'_>,
        _: &(),
        _: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        Err(SerdeError::custom("join store keys are internal"))
    }

    fn deserialize(&self, _: SerdeContext<'_>, _: &[u8]) -> Result<(), SerdeError> {
        Err(SerdeError::custom("join store keys are internal"))
    }

    fn describe(&self) -> String {
        self.0.clone()
    }
}

/// The node of one side of the join: buffers the side's records, joins them with the other
/// side's, and emits the records whose window closed unjoined.
struct JoinSideNode<K, T, O, VR> {
    name: Arc<str>,
    side: Side,
    this_store: Arc<str>,
    this_index: usize,
    other_store: Arc<str>,
    other_index: usize,
    /// The shared store of unjoined records, and whether this side's unjoined records go
    /// there (the left side of a left join, both sides of an outer join).
    outer: Option<(Arc<str>, usize)>,
    this_outer: bool,
    other_outer: bool,
    key: Arc<dyn Serde<K>>,
    this_value: Arc<dyn Serde<T>>,
    other_value: Arc<dyn Serde<O>>,
    /// Other-side records at most this much earlier join (the window from this side).
    before_ms: i64,
    /// Other-side records at most this much later join.
    after_ms: i64,
    /// The window's far bound seen from the other side (`before_ms` of the other node).
    other_after_ms: i64,
    grace_ms: i64,
    retention_ms: i64,
    joiner: BothJoiner<K, T, O, VR>,
    children: Children<K, VR>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Stream time of the last pass over the shared store.
    emitted_at: i64,
    /// Stream time of the last expiry pass over this side's store.
    expired_at: i64,
}

impl<K: Data, T: Data, O: Data, VR: Data> JoinSideNode<K, T, O, VR> {
    fn serde_err(store: &Arc<str>, e: SerdeError) -> Error {
        Error::store(store.clone(), StoreError::Serde(e))
    }

    /// The sequence number of a new record of the key at `t` in this side's store: one past
    /// the last the store holds for them.
    fn next_seq(&self, t: i64, cx: &TaskCx<'_>) -> Result<u32, Error> {
        let mut lower = key_prefix(&self.key_buf);
        lower.extend_from_slice(&encode_time(t));
        let mut upper = lower.clone();
        upper.extend_from_slice(&[0xff; 5]);
        let found = cx.state.range(
            self.this_index,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            usize::MAX,
        )?;
        Ok(found
            .last()
            .and_then(|(k, _)| decode_join_key(k))
            .map_or(0, |(_, _, seq)| seq.wrapping_add(1)))
    }

    /// The other side's records of the key with a timestamp in `[from, to]`.
    fn other_records(
        &self,
        from: i64,
        to: i64,
        cx: &TaskCx<'_>,
    ) -> Result<Vec<(i64, u32, Vec<u8>)>, Error> {
        let prefix = key_prefix(&self.key_buf);
        let mut lower = prefix.clone();
        lower.extend_from_slice(&encode_time(from));
        let mut upper = prefix;
        upper.extend_from_slice(&encode_time(to));
        upper.extend_from_slice(&[0xff; 5]);
        let found = cx.state.range(
            self.other_index,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            usize::MAX,
        )?;
        Ok(found
            .into_iter()
            .filter_map(|(k, v)| {
                let (_, t, seq) = decode_join_key(&k)?;
                Some((t, seq, v))
            })
            .collect())
    }

    /// Emits, `None`-padded, the unjoined records whose window closed, and deletes them from
    /// the shared store.
    fn emit_closed(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let Some((store, index)) = self.outer.clone() else {
            return Ok(());
        };
        if cx.stream_time <= self.emitted_at {
            return Ok(());
        }
        self.emitted_at = cx.stream_time;
        // A record at `t` of this side closes once stream time is past `t + after + grace`,
        // one of the other side past `t + other_after + grace`.
        let nearest = self.after_ms.min(self.other_after_ms);
        let bound = cx
            .stream_time
            .saturating_sub(self.grace_ms)
            .saturating_sub(nearest);
        let upper = encode_time(bound);
        let candidates =
            cx.state
                .range(index, Bound::Unbounded, Bound::Excluded(&upper), usize::MAX)?;
        let ts = cx.stream_time;
        for (k, v) in candidates {
            let Some((t, side, key_bytes)) = decode_outer_key(&k) else {
                continue;
            };
            let far = if side == self.side {
                self.after_ms
            } else {
                self.other_after_ms
            };
            if cx.stream_time <= t.saturating_add(far).saturating_add(self.grace_ms) {
                continue;
            }
            let key = cx
                .decode(&*self.key, SerdeContext::key(&store), key_bytes)
                .map_err(|e| Self::serde_err(&store, e))?;
            let result = if side == self.side {
                let value = cx
                    .decode(&*self.this_value, SerdeContext::value(&store), &v)
                    .map_err(|e| Self::serde_err(&store, e))?;
                (self.joiner)(&key, Some(value), None)
            } else {
                let value = cx
                    .decode(&*self.other_value, SerdeContext::value(&store), &v)
                    .map_err(|e| Self::serde_err(&store, e))?;
                (self.joiner)(&key, None, Some(value))
            };
            cx.state.put(index, &k, None, ts, cx.out)?;
            if let Some(value) = result {
                self.children.forward(
                    Record {
                        key,
                        value,
                        timestamp: t,
                        headers: Headers::default(),
                    },
                    cx,
                )?;
            }
        }
        Ok(())
    }

    /// Deletes this side's records older than the retention (a scan of the store, at most once
    /// per half retention of stream time).
    fn expire(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let every = (self.retention_ms / 2).max(1);
        if cx.stream_time.saturating_sub(self.expired_at) < every {
            return Ok(());
        }
        self.expired_at = cx.stream_time;
        let cutoff = cx.stream_time.saturating_sub(self.retention_ms);
        let all = cx.state.range(
            self.this_index,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
        )?;
        let ts = cx.stream_time;
        for (k, _) in all {
            if decode_join_key(&k).is_some_and(|(_, t, _)| t < cutoff) {
                cx.state.put(self.this_index, &k, None, ts, cx.out)?;
            }
        }
        Ok(())
    }
}

impl<K: Data, T: Data, O: Data, VR: Data> Node<K, T> for JoinSideNode<K, T, O, VR> {
    fn process(&mut self, r: Record<K, T>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let t = r.timestamp;
        let now = cx.stream_time;
        // Past the retention, no record of the other side whose window is open can be in
        // range any more: the record is late (as Kafka Streams' join stores drop it).
        if now > t.saturating_add(self.retention_ms) {
            cx.env.metrics.late_records_dropped.incr();
            tracing::debug!(
                node = %self.name, timestamp = t, before_ms = self.before_ms,
                after_ms = self.after_ms, grace_ms = self.grace_ms, stream_time = now,
                input = ?cx.input.map(|i| (i.topic.clone(), i.partition, i.offset)),
                "late record dropped: past its join window and grace \
                 (timestamp + before + after + grace < stream time)"
            );
            return Ok(());
        }
        // Once stream time is past `t + after + grace`, no record of the other side may join
        // this one any more (its window closed).
        let closed = now
            > t.saturating_add(self.after_ms)
                .saturating_add(self.grace_ms);
        self.key_buf.clear();
        cx.encode(
            &*self.key,
            SerdeContext::key(&self.this_store),
            &r.key,
            &mut self.key_buf,
        )
        .map_err(|e| Self::serde_err(&self.this_store, e))?;
        self.value_buf.clear();
        cx.encode(
            &*self.this_value,
            SerdeContext::value(&self.this_store),
            &r.value,
            &mut self.value_buf,
        )
        .map_err(|e| Self::serde_err(&self.this_store, e))?;
        let seq = if closed {
            0
        } else {
            let seq = self.next_seq(t, cx)?;
            let store_key = join_key(&self.key_buf, t, seq);
            cx.state.put(
                self.this_index,
                &store_key,
                Some(&self.value_buf),
                t,
                cx.out,
            )?;
            seq
        };

        let others = self.other_records(
            t.saturating_sub(self.before_ms),
            t.saturating_add(self.after_ms),
            cx,
        )?;
        let other_side = match self.side {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        };
        let mut joined = false;
        for (ot, oseq, bytes) in others {
            // A record of the other side whose window closed joins nothing more: a left or
            // outer join has emitted it `None`-padded already.
            let other_closes = ot
                .saturating_add(self.other_after_ms)
                .saturating_add(self.grace_ms);
            if now > other_closes {
                continue;
            }
            joined = true;
            let other = cx
                .decode(
                    &*self.other_value,
                    SerdeContext::value(&self.other_store),
                    &bytes,
                )
                .map_err(|e| Self::serde_err(&self.other_store, e))?;
            if self.other_outer
                && let Some((_, index)) = &self.outer
            {
                // The other record has joined now: it is no longer pending.
                let pending = outer_key(other_side, &self.key_buf, ot, oseq);
                if cx.state.get(*index, &pending)?.is_some() {
                    cx.state.put(*index, &pending, None, now, cx.out)?;
                }
            }
            if let Some(value) = (self.joiner)(&r.key, Some(r.value.clone()), Some(other)) {
                self.children.forward(
                    Record {
                        key: r.key.clone(),
                        value,
                        timestamp: t.max(ot),
                        headers: r.headers.clone(),
                    },
                    cx,
                )?;
            }
        }
        if !joined
            && self.this_outer
            && let Some((_, index)) = &self.outer
        {
            if closed {
                // Out of order past its own window: nothing can join it any more.
                if let Some(value) = (self.joiner)(&r.key, Some(r.value), None) {
                    self.children.forward(
                        Record {
                            key: r.key,
                            value,
                            timestamp: t,
                            headers: r.headers,
                        },
                        cx,
                    )?;
                }
            } else {
                let pending = outer_key(self.side, &self.key_buf, t, seq);
                cx.state
                    .put(*index, &pending, Some(&self.value_buf), t, cx.out)?;
            }
        }
        self.emit_closed(cx)?;
        self.expire(cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.children.punctuate(cx)
    }
}

/// What both sides' nodes are built from.
struct JoinPlan<K, T, O, VR> {
    name: Arc<str>,
    side: Side,
    this_store: Arc<str>,
    other_store: Arc<str>,
    outer: Option<Arc<str>>,
    this_outer: bool,
    other_outer: bool,
    key: Arc<dyn Serde<K>>,
    this_value: Arc<dyn Serde<T>>,
    other_value: Arc<dyn Serde<O>>,
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
    retention_ms: i64,
    joiner: BothJoiner<K, T, O, VR>,
}

impl<K: Data, T: Data, O: Data, VR: Data> JoinPlan<K, T, O, VR> {
    fn spec(self) -> OpSpec<K, T, K, VR> {
        OpSpec::<K, T, K, VR>::new(move |children, env| {
            let outer = match &self.outer {
                Some(s) => Some((s.clone(), env.store(s)?)),
                None => None,
            };
            Ok(Box::new(JoinSideNode {
                name: self.name.clone(),
                side: self.side,
                this_index: env.store(&self.this_store)?,
                this_store: self.this_store.clone(),
                other_index: env.store(&self.other_store)?,
                other_store: self.other_store.clone(),
                outer,
                this_outer: self.this_outer,
                other_outer: self.other_outer,
                key: self.key.clone(),
                this_value: self.this_value.clone(),
                other_value: self.other_value.clone(),
                before_ms: self.before_ms,
                after_ms: self.after_ms,
                other_after_ms: self.before_ms,
                grace_ms: self.grace_ms,
                retention_ms: self.retention_ms,
                joiner: self.joiner.clone(),
                children,
                key_buf: Vec::new(),
                value_buf: Vec::new(),
                emitted_at: i64::MIN,
                expired_at: i64::MIN,
            }))
        })
    }
}

impl<K: Data, V: Data> Stream<K, V> {
    /// Joins this stream with `other` on the key, within `windows` (an inner join): a record
    /// of this stream at `t` and each record of `other` with the same key and a timestamp in
    /// `[t - before, t + after]` give `joiner(key, value, other_value)`, stamped with the
    /// later of their timestamps. Records that join nothing give nothing (Kafka Streams'
    /// `KStream#join(KStream, ValueJoiner, JoinWindows, StreamJoined)`; Rust has no
    /// overloading, and [`Stream::join`] joins a table).
    ///
    /// Both sides buffer their records in the stores `joined` names, which are changelogged
    /// and restored like every store. The two streams must be co-partitioned: a side that an
    /// operator upstream may have re-keyed (`map`, `select_key`, ...) is first sent through
    /// the repartition topic `<application_id>-<name>-left-repartition` (this side) or
    /// `…-right-repartition` (the other), with as many partitions as the other side's topic;
    /// two topics read as they are must have the same partition count, or the application
    /// fails to start with [`Error::NotCopartitioned`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{JoinWindows, StreamJoined};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let views: Topic<String, String> = Topic::json("ad-views");
    /// let clicks: Topic<String, String> = Topic::json("ad-clicks");
    /// let out: Topic<String, String> = Topic::json("clicked-views");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&views)
    ///     .join_stream(
    ///         &builder.stream(&clicks),
    ///         |_ad, view, click| format!("{view}->{click}"),
    ///         JoinWindows::of_time_difference_without_grace(Duration::from_secs(10)),
    ///         StreamJoined::as_("views-clicks"),
    ///     )
    ///     .to(&out);
    /// let topology = builder.build().unwrap();
    /// assert!(topology.describe().to_string().contains("views-clicks-this-join-store"));
    ///
    /// let driver = TopologyTestDriver::new(topology).unwrap();
    /// driver.input_topic(&views).pipe_input_at("ad1".into(), "v1".into(), 1_000).unwrap();
    /// driver.input_topic(&clicks).pipe_input_at("ad1".into(), "c1".into(), 5_000).unwrap();
    /// driver.input_topic(&clicks).pipe_input_at("ad1".into(), "c2".into(), 20_000).unwrap();
    /// let joined = driver.output_topic(&out).read_values().unwrap();
    /// assert_eq!(joined, ["v1->c1"]);
    /// ```
    pub fn join_stream<VO: Data, VR: Data>(
        &self,
        other: &Stream<K, VO>,
        joiner: impl Fn(&K, V, VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Stream<K, VR> {
        self.stream_join(
            other,
            Arc::new(move |k, v, o| Some(joiner(k, v?, o?))),
            windows,
            joined,
            (false, false),
        )
    }

    /// Like [`Stream::join_stream`], but a record of this stream that joins nothing within its
    /// window is emitted too, as `joiner(key, value, None)`, once its window has closed —
    /// stream time is past its timestamp plus `after` plus the grace period — and not before
    /// (Kafka Streams ≥ 3.1). Until then it waits in the store
    /// `<store>-outer-shared-join-store`, changelogged like the others. A record that arrives
    /// after its own window closed (out of order by more than the grace) and joins nothing is
    /// emitted at once. Records of `other` that join nothing give nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{JoinWindows, StreamJoined};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let views: Topic<String, String> = Topic::json("ad-views");
    /// let clicks: Topic<String, String> = Topic::json("ad-clicks");
    /// let out: Topic<String, String> = Topic::json("views-maybe-clicked");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&views)
    ///     .left_join_stream(
    ///         &builder.stream(&clicks),
    ///         |_ad, view, click: Option<String>| format!("{view}->{}", click.unwrap_or_default()),
    ///         JoinWindows::of_time_difference_without_grace(Duration::from_secs(10)),
    ///         StreamJoined::as_("views-clicks"),
    ///     )
    ///     .to(&out);
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&views).pipe_input_at("ad1".into(), "v1".into(), 1_000).unwrap();
    /// let mut output = driver.output_topic(&out);
    /// assert!(output.is_empty(), "v1's window is still open");
    /// // Stream time passes 1 s + 10 s: v1's window closes.
    /// driver.input_topic(&views).pipe_input_at("ad2".into(), "v2".into(), 11_001).unwrap();
    /// assert_eq!(output.read_values().unwrap(), ["v1->"]);
    /// ```
    pub fn left_join_stream<VO: Data, VR: Data>(
        &self,
        other: &Stream<K, VO>,
        joiner: impl Fn(&K, V, Option<VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Stream<K, VR> {
        self.stream_join(
            other,
            Arc::new(move |k, v, o| Some(joiner(k, v?, o))),
            windows,
            joined,
            (true, false),
        )
    }

    /// Like [`Stream::left_join_stream`], for both sides: a record of either stream that
    /// joins nothing within its window is emitted, once the window has closed, as
    /// `joiner(key, Some(value), None)` or `joiner(key, None, Some(other_value))`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{JoinWindows, StreamJoined};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let views: Topic<String, String> = Topic::json("ad-views");
    /// let clicks: Topic<String, String> = Topic::json("ad-clicks");
    /// let out: Topic<String, String> = Topic::json("views-or-clicks");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&views)
    ///     .outer_join_stream(
    ///         &builder.stream(&clicks),
    ///         |_ad, view: Option<String>, click: Option<String>| {
    ///             format!("{}->{}", view.unwrap_or_default(), click.unwrap_or_default())
    ///         },
    ///         JoinWindows::of_time_difference_without_grace(Duration::from_secs(10)),
    ///         StreamJoined::as_("views-clicks"),
    ///     )
    ///     .to(&out);
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// driver.input_topic(&clicks).pipe_input_at("ad1".into(), "c1".into(), 1_000).unwrap();
    /// driver.input_topic(&views).pipe_input_at("ad2".into(), "v2".into(), 30_000).unwrap();
    /// assert_eq!(driver.output_topic(&out).read_values().unwrap(), ["->c1"]);
    /// ```
    pub fn outer_join_stream<VO: Data, VR: Data>(
        &self,
        other: &Stream<K, VO>,
        joiner: impl Fn(&K, Option<V>, Option<VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Stream<K, VR> {
        self.stream_join(
            other,
            Arc::new(move |k, v, o| Some(joiner(k, v, o))),
            windows,
            joined,
            (true, true),
        )
    }

    /// Declares a join store of `kind` with the join's serdes.
    fn join_store(
        &self,
        name: Arc<str>,
        kind: StoreKind,
        key_describe: String,
        value_describe: String,
        joined: &StreamJoined<K, impl Sized, impl Sized>,
    ) {
        let key: Arc<dyn Serde<()>> = Arc::new(JoinKeyDescribe(key_describe));
        let def = StoreDef {
            name,
            kind,
            backend: joined.backend,
            logging: joined.logging,
            caching: false,
            key_describe: key.describe(),
            value_describe,
            serdes: Arc::new(StoreSerdes::<(), ()> {
                key,
                value: Arc::new(Unavailable),
            }),
        };
        self.graph.borrow_mut().stores.push(Arc::new(def));
    }

    fn stream_join<VO: Data, VR: Data>(
        &self,
        other: &Stream<K, VO>,
        joiner: BothJoiner<K, V, VO, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        (left_outer, right_outer): (bool, bool),
    ) -> Stream<K, VR> {
        let name = joined.name.clone();
        let base = joined.store_name().to_string();
        let key = joined
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone())
            .or_else(|| other.key_serde.clone());
        let key: Arc<dyn Serde<K>> = key.unwrap_or_else(|| {
            self.graph.borrow_mut().error(missing_serde(&name, "key"));
            Arc::new(Unavailable)
        });
        let value: Arc<dyn Serde<V>> = joined
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone())
            .unwrap_or_else(|| {
                self.graph.borrow_mut().error(missing_serde(&name, "value"));
                Arc::new(Unavailable)
            });
        let other_value: Arc<dyn Serde<VO>> = joined
            .other_value_serde
            .clone()
            .or_else(|| other.value_serde.clone())
            .unwrap_or_else(|| {
                self.graph.borrow_mut().error(TopologyError::Invalid {
                    node: name.to_string(),
                    reason: "needs a value serde for the other stream and none is known here: \
                             give one with StreamJoined::with_other_value_serde, or \
                             Stream::with_serdes after a map"
                        .into(),
                });
                Arc::new(Unavailable)
            });
        // Both sides must sit in the partition their key belongs in: re-keyed sides go
        // through `<name>-left-repartition` / `<name>-right-repartition` first.
        let left = if self.repartition_required {
            self.repartition_through(
                &format!("{name}-left"),
                Some(key.clone()),
                Some(value.clone()),
            )
        } else {
            self.clone()
        };
        let right = if other.repartition_required {
            other.repartition_through(
                &format!("{name}-right"),
                Some(key.clone()),
                Some(other_value.clone()),
            )
        } else {
            other.clone()
        };

        let this_store: Arc<str> = format!("{base}-this-join-store").into();
        let other_store: Arc<str> = format!("{base}-other-join-store").into();
        let outer_store: Option<Arc<str>> =
            (left_outer || right_outer).then(|| format!("{base}-outer-shared-join-store").into());
        let kind = StoreKind::JoinWindow {
            size_ms: windows.size_ms(),
            retention_ms: windows.retention_ms(),
        };
        let key_describe = format!("join({})", key.describe());
        self.join_store(
            this_store.clone(),
            kind,
            key_describe.clone(),
            value.describe(),
            &joined,
        );
        self.join_store(
            other_store.clone(),
            kind,
            key_describe,
            other_value.describe(),
            &joined,
        );
        if let Some(outer) = &outer_store {
            self.join_store(
                outer.clone(),
                kind,
                format!("outer-join({})", key.describe()),
                format!("{} | {}", value.describe(), other_value.describe()),
                &joined,
            );
        }
        let mut stores = vec![this_store.clone(), other_store.clone()];
        stores.extend(outer_store.clone());

        let left_plan = JoinPlan {
            name: format!("{name}-this-join").into(),
            side: Side::Left,
            this_store: this_store.clone(),
            other_store: other_store.clone(),
            outer: outer_store.clone(),
            this_outer: left_outer,
            other_outer: right_outer,
            key: key.clone(),
            this_value: value.clone(),
            other_value: other_value.clone(),
            before_ms: windows.before_ms,
            after_ms: windows.after_ms,
            grace_ms: windows.grace_ms,
            retention_ms: windows.retention_ms(),
            joiner: joiner.clone(),
        };
        let swapped: BothJoiner<K, VO, V, VR> = Arc::new(move |k, o, v| joiner(k, v, o));
        let right_plan = JoinPlan {
            name: format!("{name}-other-join").into(),
            side: Side::Right,
            this_store: other_store,
            other_store: this_store,
            outer: outer_store,
            this_outer: right_outer,
            other_outer: left_outer,
            key: key.clone(),
            this_value: other_value,
            other_value: value,
            // Seen from the other side, the window is mirrored.
            before_ms: windows.after_ms,
            after_ms: windows.before_ms,
            grace_ms: windows.grace_ms,
            retention_ms: windows.retention_ms(),
            joiner: swapped,
        };
        let mut graph = self.graph.borrow_mut();
        let this_join = graph.add(
            Some(left_plan.name.to_string()),
            "join",
            NodeKind::Processor,
            vec![left.node],
            stores.clone(),
            Arc::new(left_plan.spec()),
        );
        let other_join = graph.add(
            Some(right_plan.name.to_string()),
            "join",
            NodeKind::Processor,
            vec![right.node],
            stores,
            Arc::new(right_plan.spec()),
        );
        let merge = OpSpec::<K, VR, K, VR>::new(|children, _| {
            Ok(fn_node(children, |r, ch, cx| ch.forward(r, cx)))
        });
        let node = graph.add(
            Some(format!("{name}-merge")),
            "merge",
            NodeKind::Processor,
            vec![this_join, other_join],
            vec![],
            Arc::new(merge),
        );
        graph.copartition.push((this_join, other_join));
        drop(graph);
        Stream {
            graph: self.graph.clone(),
            node,
            key_serde: Some(key),
            value_serde: None,
            repartition_required: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_sort_by_key_then_time_and_round_trip() {
        let a = [
            join_key(b"k", -5, 0),
            join_key(b"k", 0, 0),
            join_key(b"k", 0, 1),
            join_key(b"k", 7, 0),
        ];
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(a, sorted);
        assert_eq!(decode_join_key(&a[2]), Some((&b"k"[..], 0, 1)));
        assert!(join_key(b"k", i64::MAX, u32::MAX) < join_key(b"kk", i64::MIN, 0));
        let o = outer_key(Side::Right, b"key", 42, 3);
        assert_eq!(decode_outer_key(&o), Some((42, Side::Right, &b"key"[..])));
        assert!(outer_key(Side::Right, b"z", 1, 0) < outer_key(Side::Left, b"a", 2, 0));
        assert_eq!(decode_join_key(b"short"), None);
        assert_eq!(decode_outer_key(b"short"), None);
    }
}
