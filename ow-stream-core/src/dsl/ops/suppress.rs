//! `suppress`: hold a table's updates back in a buffer and emit only some of them — one final
//! result per window when it closes, or each key's latest update once a time limit passed — as
//! Kafka Streams' `KTable#suppress`.
//!
//! The buffer is a key-value store `<name>-store` with a changelog like any other, so it
//! commits with the input offsets and the stores upstream: after a crash the buffer is what the
//! last commit left, the input after the commit is processed again, and a result emitted and
//! committed before the crash is gone from the buffer and never emitted again.
//!
//! Time is stream time (the highest record timestamp the task has seen), as in Kafka Streams.
//! An entry is due at a time fixed when the key is first buffered (window end + grace, or the
//! first update's timestamp + the time limit); while it waits, later updates of the key replace
//! its value. Due entries are emitted in order of that time as soon as stream time reaches it,
//! when a record reaches the node or at a punctuation — but never while the aggregation
//! upstream still holds updates in its record cache, so that a final result never misses one.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::session::SessionKeySerde;
use crate::dsl::{Data, SessionTable, Stream, Table, WindowedTable};
use crate::error::{Error, StoreError, TopologyError};
use crate::metrics::Metrics;
use crate::processor::node::{Children, Node, OpSpec};
use crate::record::Record;
use crate::runtime::context::TaskCx;
use crate::serde::{BytesSerde, Serde, SerdeContext, SerdeError};
use crate::state::{StoreDef, StoreKind, StoreSerdes};
use crate::topology::NodeKind;

/// What a bounded buffer does when an update would take it over its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhenFull {
    /// Fail the stream thread with [`Error::SuppressBufferFull`].
    ShutDown,
    /// Emit the oldest buffered entries before they are due, until the buffer is within its
    /// limits again.
    EmitEarly,
}

/// How much a suppression may buffer, and what happens when it is full (Kafka Streams'
/// `Suppressed.BufferConfig`).
///
/// A buffer limited by [`BufferConfig::max_records`] or [`BufferConfig::max_bytes`] emits
/// early when full unless [`BufferConfig::shut_down_when_full`] says otherwise, as in Kafka
/// Streams. The bytes of an entry are those of its key and value in the buffer store.
///
/// ```
/// use ow_stream_core::dsl::BufferConfig;
///
/// let strict = BufferConfig::max_records(10_000).with_max_bytes(1 << 20).shut_down_when_full();
/// assert_eq!(strict.max_records_limit(), Some(10_000));
/// assert_eq!(strict.max_bytes_limit(), Some(1 << 20));
/// assert!(strict.shuts_down_when_full());
/// assert!(!BufferConfig::max_records(10).shuts_down_when_full());
/// assert_eq!(BufferConfig::unbounded().max_records_limit(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferConfig {
    max_records: Option<u64>,
    max_bytes: Option<u64>,
    when_full: WhenFull,
}

impl BufferConfig {
    /// A buffer without limits: it holds everything until it is due (and grows with the
    /// number of open windows or keys).
    pub fn unbounded() -> Self {
        BufferConfig {
            max_records: None,
            max_bytes: None,
            when_full: WhenFull::ShutDown,
        }
    }

    /// A buffer of at most `records` entries (keys), emitting early when full.
    pub fn max_records(records: u64) -> Self {
        BufferConfig {
            max_records: Some(records),
            max_bytes: None,
            when_full: WhenFull::EmitEarly,
        }
    }

    /// A buffer of at most `bytes` bytes of keys and values, emitting early when full.
    pub fn max_bytes(bytes: u64) -> Self {
        BufferConfig {
            max_records: None,
            max_bytes: Some(bytes),
            when_full: WhenFull::EmitEarly,
        }
    }

    /// Adds (or changes) the limit on entries.
    pub fn with_max_records(mut self, records: u64) -> Self {
        self.max_records = Some(records);
        self
    }

    /// Adds (or changes) the limit on bytes.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// When an update would take the buffer over a limit, the stream thread fails with
    /// [`Error::SuppressBufferFull`] naming the operator (through the application's
    /// [`ThreadFailurePolicy`](crate::config::ThreadFailurePolicy)): nothing is emitted early.
    pub fn shut_down_when_full(mut self) -> Self {
        self.when_full = WhenFull::ShutDown;
        self
    }

    /// When an update takes the buffer over a limit, the oldest entries are emitted before
    /// they are due until it is within its limits (counted in
    /// [`Metrics::suppress_emitted_early`]). Only
    /// [`Suppressed::until_time_limit`] allows it: early results are not final.
    pub fn emit_early_when_full(mut self) -> Self {
        self.when_full = WhenFull::EmitEarly;
        self
    }

    /// The limit on entries, if any.
    pub fn max_records_limit(&self) -> Option<u64> {
        self.max_records
    }

    /// The limit on bytes, if any.
    pub fn max_bytes_limit(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Whether a full buffer fails the stream thread (rather than emitting early).
    pub fn shuts_down_when_full(&self) -> bool {
        self.when_full == WhenFull::ShutDown
    }

    fn is_bounded(&self) -> bool {
        self.max_records.is_some() || self.max_bytes.is_some()
    }

    fn over(&self, records: u64, bytes: u64) -> bool {
        self.max_records.is_some_and(|m| records > m) || self.max_bytes.is_some_and(|m| bytes > m)
    }

    fn describe_limit(&self) -> String {
        match (self.max_records, self.max_bytes) {
            (Some(r), Some(b)) => format!("max {r} records, max {b} bytes"),
            (Some(r), None) => format!("max {r} records"),
            (None, Some(b)) => format!("max {b} bytes"),
            (None, None) => "unbounded".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    WindowCloses,
    TimeLimit { ms: i64 },
}

/// When a suppressed table emits (Kafka Streams' `Suppressed`): pass it to
/// [`WindowedTable::suppress`], [`SessionTable::suppress`] or [`Table::suppress`].
///
/// The operator is named `<upstream store>-suppress` unless [`Suppressed::with_name`] names
/// it; its buffer store is `<name>-store`, logged to `<application_id>-<name>-store-changelog`.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_core::{StreamsBuilder, Topic};
/// use ow_stream_core::dsl::{BufferConfig, Materialized, Suppressed, TimeWindows, Windowed};
/// use ow_stream_core::serde::JsonSerde;
/// use ow_stream_core::testing::TopologyTestDriver;
///
/// let kills: Topic<String, String> = Topic::json("kills");
/// let finals: Topic<Windowed<String>, i64> =
///     Topic::new("kills-per-minute", JsonSerde::new(), JsonSerde::new());
/// let builder = StreamsBuilder::new();
/// builder
///     .stream(&kills)
///     .group_by_key()
///     .windowed_by(TimeWindows::of_size_with_grace(Duration::from_secs(60), Duration::from_secs(10)))
///     .count(Materialized::as_("kill-counts"))
///     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("final-kill-counts"))
///     .to_stream()
///     .to(&finals);
/// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
/// let input = driver.input_topic(&kills);
/// input.pipe_input_at("ana".into(), "genji".into(), 1_000).unwrap();
/// input.pipe_input_at("ana".into(), "tracer".into(), 2_000).unwrap();
/// let mut out = driver.output_topic(&finals);
/// assert!(out.read_key_values().unwrap().is_empty()); // the window [0, 60 s) is open
/// input.pipe_input_at("ana".into(), "mercy".into(), 70_000).unwrap(); // 60 s + 10 s grace
/// let finals: Vec<(String, i64, i64)> = out
///     .read_key_values()
///     .unwrap()
///     .into_iter()
///     .map(|(w, n)| (w.key, w.window.start, n))
///     .collect();
/// assert_eq!(finals, [("ana".to_string(), 0, 2)]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    until: Until,
    buffer: BufferConfig,
    name: Option<Arc<str>>,
}

impl Suppressed {
    /// Emits exactly one final result per window, when stream time reaches the window's end +
    /// grace (for sessions: end + inactivity gap + grace), and nothing before. Windowed tables
    /// only. The buffer must be [`BufferConfig::unbounded`] or
    /// [`BufferConfig::shut_down_when_full`]: the topology fails to build otherwise.
    pub fn until_window_closes(buffer: BufferConfig) -> Self {
        Suppressed {
            until: Until::WindowCloses,
            buffer,
            name: None,
        }
    }

    /// Holds each key's latest update, and emits it once stream time is `limit` past the
    /// timestamp of the key's first buffered update. Updates of a buffered key replace its
    /// value; deletes (tombstones) are buffered and emitted like updates.
    pub fn until_time_limit(limit: Duration, buffer: BufferConfig) -> Self {
        Suppressed {
            until: Until::TimeLimit {
                ms: limit.as_millis().min(i64::MAX as u128) as i64,
            },
            buffer,
            name: None,
        }
    }

    /// Names the operator (and so its buffer store `<name>-store`).
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The buffer's configuration.
    pub fn buffer_config(&self) -> BufferConfig {
        self.buffer
    }
}

/// When a key first buffered at `timestamp` is due.
type DueFn<K> = Arc<dyn Fn(&K, i64) -> i64 + Send + Sync>;

/// Buffer entries are stored as `[due: 8][timestamp: 8][value bytes]` (times big-endian).
const HEADER: usize = 16;

fn encode_entry(due: i64, timestamp: i64, value: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&due.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
}

fn decode_entry(bytes: &[u8]) -> Option<(i64, i64, &[u8])> {
    let due = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let timestamp = i64::from_be_bytes(bytes.get(8..HEADER)?.try_into().ok()?);
    Some((due, timestamp, &bytes[HEADER..]))
}

/// The in-memory index of a task's buffer: built from the store when the node first runs
/// (after restore), then kept in step with every write.
#[derive(Default)]
struct Index {
    /// (due, key bytes), in emission order.
    by_due: BTreeSet<(i64, Vec<u8>)>,
    /// Key bytes → (due, bytes of the entry).
    entries: HashMap<Vec<u8>, (i64, u64)>,
    bytes: u64,
}

impl Index {
    fn insert(&mut self, key: Vec<u8>, due: i64, size: u64) {
        if let Some((old_due, old)) = self.entries.insert(key.clone(), (due, size)) {
            self.bytes -= old;
            self.by_due.remove(&(old_due, key.clone()));
        }
        self.bytes += size;
        self.by_due.insert((due, key));
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        let Some((due, size)) = self.entries.remove(key) else {
            return false;
        };
        self.bytes -= size;
        self.by_due.remove(&(due, key.to_vec()));
        true
    }

    fn len(&self) -> u64 {
        self.entries.len() as u64
    }
}

struct SuppressNode<K, V> {
    name: Arc<str>,
    store: Arc<str>,
    index: usize,
    /// The store of the table being suppressed: nothing is emitted while its record cache
    /// holds updates.
    upstream: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    due: DueFn<K>,
    is_tombstone: fn(&V) -> bool,
    /// Final results: a tombstone removes the key's entry and is not emitted (Kafka Streams
    /// drops them as safe to drop: no result of the window was emitted).
    final_results: bool,
    buffer: BufferConfig,
    children: Children<K, V>,
    /// `None` until the node first runs.
    buffered: Option<Index>,
    /// For the buffer-size gauge, which this node's entries leave when it is dropped.
    metrics: Option<Arc<Metrics>>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    entry_buf: Vec<u8>,
}

impl<K, V> Drop for SuppressNode<K, V> {
    fn drop(&mut self) {
        if let (Some(metrics), Some(index)) = (&self.metrics, &self.buffered) {
            metrics.suppress_buffered.sub(index.len());
        }
    }
}

impl<K: Data, V: Data> SuppressNode<K, V> {
    fn serde_err(&self, e: SerdeError) -> Error {
        Error::store(self.store.clone(), StoreError::Serde(e))
    }

    fn malformed(&self) -> Error {
        self.serde_err(SerdeError::Malformed {
            format: "suppress buffer entry",
            reason: "shorter than its 16-byte header".into(),
        })
    }

    /// The index, read from the store on first use.
    fn load(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        if self.buffered.is_some() {
            return Ok(());
        }
        let mut index = Index::default();
        let all = cx
            .state
            .range(self.index, Bound::Unbounded, Bound::Unbounded, usize::MAX)?;
        for (k, v) in all {
            let (due, _, _) = decode_entry(&v).ok_or_else(|| self.malformed())?;
            let size = (k.len() + v.len()) as u64;
            index.insert(k, due, size);
        }
        cx.env.metrics.suppress_buffered.add(index.len());
        self.metrics = Some(cx.env.metrics.clone());
        self.buffered = Some(index);
        Ok(())
    }

    fn index(&mut self) -> &mut Index {
        self.buffered.get_or_insert_with(Index::default)
    }

    /// Whether entries may be emitted now: not while the aggregation upstream holds updates
    /// in its record cache or is forwarding a flush of it (the updates it is yet to forward
    /// could belong to a due entry).
    fn may_emit(&self, cx: &TaskCx<'_>, in_process: bool) -> bool {
        if !cx.state.caching(self.upstream) {
            return true;
        }
        !(in_process && cx.input.is_none()) && cx.state.cache_is_empty(self.upstream)
    }

    /// Takes the entry of `key` out of the buffer (store and index) and forwards it, unless it
    /// is a tombstone of final results.
    fn emit(&mut self, key: Vec<u8>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        let stored = cx.state.get(self.index, &key)?;
        self.index().remove(&key);
        cx.env.metrics.suppress_buffered.decr();
        let ts = cx.stream_time;
        cx.state.put(self.index, &key, None, ts, cx.out)?;
        let Some(stored) = stored else {
            return Ok(());
        };
        let (_, timestamp, value) = decode_entry(&stored).ok_or_else(|| self.malformed())?;
        let value = cx
            .decode(&*self.value, SerdeContext::value(&self.store), value)
            .map_err(|e| self.serde_err(e))?;
        if self.final_results && (self.is_tombstone)(&value) {
            return Ok(());
        }
        let key = cx
            .decode(&*self.key, SerdeContext::key(&self.store), &key)
            .map_err(|e| self.serde_err(e))?;
        self.children
            .forward(Record::new(key, value, timestamp), cx)
    }

    /// Emits every entry due at the current stream time, in order of due time.
    fn emit_due(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        loop {
            let next = match self.index().by_due.first() {
                Some((due, key)) if *due <= cx.stream_time => key.clone(),
                _ => return Ok(()),
            };
            self.emit(next, cx)?;
            cx.env.metrics.suppress_emitted.incr();
        }
    }

    /// Applies the buffer's limits after a write.
    fn enforce_limits(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        loop {
            let (records, bytes) = {
                let index = self.index();
                (index.len(), index.bytes)
            };
            if !self.buffer.over(records, bytes) {
                return Ok(());
            }
            if self.buffer.when_full == WhenFull::ShutDown {
                return Err(Error::SuppressBufferFull {
                    node: self.name.clone(),
                    store: self.store.clone(),
                    records,
                    bytes,
                    limit: self.buffer.describe_limit(),
                });
            }
            let Some((_, oldest)) = self.index().by_due.first().cloned() else {
                return Ok(());
            };
            self.emit(oldest, cx)?;
            cx.env.metrics.suppress_emitted_early.incr();
        }
    }
}

impl<K: Data, V: Data> Node<K, V> for SuppressNode<K, V> {
    fn process(&mut self, r: Record<K, V>, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.load(cx)?;
        self.key_buf.clear();
        cx.encode(
            &*self.key,
            SerdeContext::key(&self.store),
            &r.key,
            &mut self.key_buf,
        )
        .map_err(|e| self.serde_err(e))?;
        let key = std::mem::take(&mut self.key_buf);
        let result = self.buffer_record(&key, r, cx);
        self.key_buf = key;
        result?;
        if self.may_emit(cx, true) {
            self.emit_due(cx)?;
        }
        self.enforce_limits(cx)
    }

    fn punctuate(&mut self, cx: &mut TaskCx<'_>) -> Result<(), Error> {
        self.load(cx)?;
        if self.may_emit(cx, false) {
            self.emit_due(cx)?;
        }
        self.children.punctuate(cx)
    }
}

impl<K: Data, V: Data> SuppressNode<K, V> {
    /// Writes `r` into the buffer under `key` (its bytes).
    fn buffer_record(
        &mut self,
        key: &[u8],
        r: Record<K, V>,
        cx: &mut TaskCx<'_>,
    ) -> Result<(), Error> {
        let existing = self.index().entries.get(key).map(|(due, _)| *due);
        let ts = r.timestamp;
        if self.final_results && (self.is_tombstone)(&r.value) {
            if existing.is_some() {
                self.index().remove(key);
                cx.env.metrics.suppress_buffered.decr();
                cx.state.put(self.index, key, None, ts, cx.out)?;
            }
            return Ok(());
        }
        let due = existing.unwrap_or_else(|| (self.due)(&r.key, ts));
        self.value_buf.clear();
        cx.encode(
            &*self.value,
            SerdeContext::value(&self.store),
            &r.value,
            &mut self.value_buf,
        )
        .map_err(|e| self.serde_err(e))?;
        let mut entry = std::mem::take(&mut self.entry_buf);
        encode_entry(due, ts, &self.value_buf, &mut entry);
        let size = (key.len() + entry.len()) as u64;
        let result = cx.state.put(self.index, key, Some(&entry), ts, cx.out);
        self.entry_buf = entry;
        result?;
        if existing.is_none() {
            cx.env.metrics.suppress_buffered.incr();
        }
        self.index().insert(key.to_vec(), due, size);
        Ok(())
    }
}

/// What a suppression needs to know of the table it follows.
struct Upstream<K, V> {
    stream: Stream<K, V>,
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    value_describe: String,
    /// `Some(due)` for windowed tables: when a window's final result is due.
    window_close: Option<DueFn<K>>,
    is_tombstone: fn(&V) -> bool,
}

/// Adds the suppress node after `up`, and returns its index and name.
fn add_suppress<K: Data, V: Data>(up: Upstream<K, V>, suppressed: Suppressed) -> usize {
    let name: Arc<str> = suppressed
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-suppress", up.store).into());
    let store: Arc<str> = format!("{name}-store").into();
    let mut graph = up.stream.graph.borrow_mut();
    let due: DueFn<K> = match (suppressed.until, &up.window_close) {
        (Until::WindowCloses, Some(close)) => {
            if suppressed.buffer.is_bounded() && !suppressed.buffer.shuts_down_when_full() {
                graph.error(TopologyError::Invalid {
                    node: name.to_string(),
                    reason: "until_window_closes emits final results only: its buffer must be \
                             unbounded or shut_down_when_full, not emit_early_when_full"
                        .into(),
                });
            }
            close.clone()
        }
        (Until::WindowCloses, None) => {
            graph.error(TopologyError::Invalid {
                node: name.to_string(),
                reason: "until_window_closes needs a windowed table (windowed_by or \
                         windowed_by_session before the aggregation); use until_time_limit"
                    .into(),
            });
            Arc::new(|_, ts| ts)
        }
        (Until::TimeLimit { ms }, _) => Arc::new(move |_, ts: i64| ts.saturating_add(ms)),
    };
    let final_results = suppressed.until == Until::WindowCloses;
    let def = StoreDef {
        name: store.clone(),
        kind: StoreKind::KeyValue,
        backend: None,
        logging: true,
        caching: false,
        key_describe: up.key.describe(),
        value_describe: format!("suppress-buffer({})", up.value_describe),
        serdes: Arc::new(StoreSerdes::<Vec<u8>, Vec<u8>> {
            key: Arc::new(BytesSerde),
            value: Arc::new(BytesSerde),
        }),
    };
    graph.stores.push(Arc::new(def));
    let (s, upstream, key, value, is_tombstone) = (
        store.clone(),
        up.store.clone(),
        up.key.clone(),
        up.value.clone(),
        up.is_tombstone,
    );
    let node_name = name.clone();
    let buffer = suppressed.buffer;
    let spec = OpSpec::<K, V, K, V>::new(move |children, env| {
        Ok(Box::new(SuppressNode {
            name: node_name.clone(),
            store: s.clone(),
            index: env.store(&s)?,
            upstream: env.store(&upstream)?,
            key: key.clone(),
            value: value.clone(),
            due: due.clone(),
            is_tombstone,
            final_results,
            buffer,
            children,
            buffered: None,
            metrics: None,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            entry_buf: Vec::new(),
        }))
    });
    graph.add(
        Some(name.to_string()),
        "suppress",
        NodeKind::Processor,
        vec![up.stream.node],
        vec![store],
        Arc::new(spec),
    )
}

fn never_tombstone<V>(_: &V) -> bool {
    false
}

impl<K: Data, V: Data> Table<K, V> {
    /// Holds this table's updates back as `suppressed` says (Kafka Streams' `suppress`).
    /// Only [`Suppressed::until_time_limit`] applies to a table that is not windowed.
    ///
    /// The returned table's changes are the emitted updates; its
    /// [`store_name`](Table::store_name) is still this table's store (the buffer is not
    /// queryable).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{BufferConfig, Materialized, Suppressed};
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let scores: Topic<String, i64> = Topic::json("scores");
    /// let best: Topic<String, i64> = Topic::json("best-scores");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&scores)
    ///     .group_by_key()
    ///     .reduce(i64::max, Materialized::as_("best-score"))
    ///     .suppress(Suppressed::until_time_limit(Duration::from_secs(60), BufferConfig::max_records(1_000)))
    ///     .to_stream()
    ///     .to(&best);
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// let input = driver.input_topic(&scores);
    /// input.pipe_input_at("ana".into(), 10, 0).unwrap();
    /// input.pipe_input_at("ana".into(), 30, 20_000).unwrap();
    /// input.pipe_input_at("ana".into(), 20, 40_000).unwrap();
    /// let mut out = driver.output_topic(&best);
    /// assert!(out.read_key_values().unwrap().is_empty());
    /// input.pipe_input_at("zen".into(), 5, 60_000).unwrap(); // 60 s after ana's first update
    /// assert_eq!(out.read_key_values().unwrap(), [("ana".to_string(), 30)]);
    /// ```
    pub fn suppress(&self, suppressed: Suppressed) -> Table<K, V> {
        let node = add_suppress(
            Upstream {
                stream: self.to_stream(),
                store: self.store.clone(),
                key: self.key_serde.clone(),
                value: self.value_serde.clone(),
                value_describe: self.value_serde.describe(),
                window_close: None,
                is_tombstone: never_tombstone::<V>,
            },
            suppressed,
        );
        Table {
            graph: self.graph.clone(),
            node,
            store: self.store.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            changes: false,
        }
    }
}

impl<K: Data, V: Data> WindowedTable<K, V> {
    /// Holds this table's updates back as `suppressed` says (Kafka Streams' `suppress`):
    /// with [`Suppressed::until_window_closes`], one final result per window when stream time
    /// reaches its end + grace. See [`Suppressed`] for an example.
    ///
    /// The returned table's [`store_name`](WindowedTable::store_name) is still this table's
    /// window store (the buffer is not queryable).
    ///
    /// A final result must never be emitted early, so a bounded buffer that would emit early
    /// when full is refused when the topology is built:
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic, TopologyError};
    /// use ow_stream_core::dsl::{BufferConfig, Materialized, Suppressed, TimeWindows};
    ///
    /// let kills: Topic<String, String> = Topic::json("kills");
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&kills)
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_grace(Duration::from_secs(60), Duration::ZERO))
    ///     .count(Materialized::as_("kill-counts"))
    ///     .suppress(Suppressed::until_window_closes(BufferConfig::max_records(1_000)));
    /// match builder.build() {
    ///     Err(TopologyError::Invalid { node, .. }) => assert_eq!(node, "kill-counts-suppress"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn suppress(&self, suppressed: Suppressed) -> WindowedTable<K, V> {
        let grace = self.grace_ms;
        let node = add_suppress(
            Upstream {
                stream: self.to_stream(),
                store: self.store.clone(),
                key: Arc::new(SessionKeySerde::windowed(self.key_serde.clone())),
                value: self.value_serde.clone(),
                value_describe: self.value_serde.describe(),
                window_close: Some(Arc::new(move |w: &crate::dsl::Windowed<K>, _| {
                    w.window.end.saturating_add(grace)
                })),
                is_tombstone: never_tombstone::<V>,
            },
            suppressed,
        );
        WindowedTable {
            graph: self.graph.clone(),
            node,
            store: self.store.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            grace_ms: self.grace_ms,
            _types: PhantomData,
        }
    }
}

/// `Option<V>` as one flag byte (`0`: `None`), then `V`'s bytes: the values of session tables
/// in a suppression buffer.
struct OptionSerde<V> {
    inner: Arc<dyn Serde<V>>,
}

impl<V: 'static> Serde<Option<V>> for OptionSerde<V> {
    fn serialize_into(
        &self,
        ctx: SerdeContext<'_>,
        value: &Option<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        match value {
            None => {
                out.push(0);
                Ok(())
            }
            Some(v) => {
                out.push(1);
                self.inner.serialize_into(ctx, v, out)
            }
        }
    }

    fn deserialize(&self, ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<Option<V>, SerdeError> {
        match bytes.split_first() {
            Some((0, _)) => Ok(None),
            Some((1, rest)) => self.inner.deserialize(ctx, rest).map(Some),
            _ => Err(SerdeError::Malformed {
                format: "optional value",
                reason: "no 0/1 flag byte".into(),
            }),
        }
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
        format!("option({})", self.inner.describe())
    }
}

impl<K: Data, V: Data> SessionTable<K, V> {
    /// Holds this table's updates back as `suppressed` says (Kafka Streams' `suppress`):
    /// with [`Suppressed::until_window_closes`], one final result per session when stream
    /// time passes its end + inactivity gap + grace (sessions merged away meanwhile emit
    /// nothing); with [`Suppressed::until_time_limit`], tombstones of merged sessions are
    /// buffered and emitted like updates.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ow_stream_core::{StreamsBuilder, Topic};
    /// use ow_stream_core::dsl::{BufferConfig, Materialized, SessionWindows, Suppressed, Windowed};
    /// use ow_stream_core::serde::JsonSerde;
    /// use ow_stream_core::testing::TopologyTestDriver;
    ///
    /// let clicks: Topic<String, String> = Topic::json("clicks");
    /// let visits: Topic<Windowed<String>, Option<i64>> =
    ///     Topic::new("visits", JsonSerde::new(), JsonSerde::new());
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream(&clicks)
    ///     .group_by_key()
    ///     .windowed_by_session(SessionWindows::with_inactivity_gap(Duration::from_secs(60)))
    ///     .count(Materialized::as_("visit-counts"))
    ///     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
    ///     .to_stream()
    ///     .to(&visits);
    /// let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    /// let input = driver.input_topic(&clicks);
    /// input.pipe_input_at("ada".into(), "/".into(), 0).unwrap();
    /// input.pipe_input_at("ada".into(), "/docs".into(), 50_000).unwrap();
    /// input.pipe_input_at("bob".into(), "/".into(), 200_000).unwrap();
    /// let out: Vec<(i64, i64, Option<i64>)> = driver
    ///     .output_topic(&visits)
    ///     .read_key_values()
    ///     .unwrap()
    ///     .into_iter()
    ///     .map(|(w, n)| (w.window.start, w.window.end, n))
    ///     .collect();
    /// assert_eq!(out, [(0, 50_000, Some(2))]);
    /// ```
    pub fn suppress(&self, suppressed: Suppressed) -> SessionTable<K, V> {
        let close_after = self.gap_ms.saturating_add(self.grace_ms).saturating_add(1);
        let node = add_suppress(
            Upstream {
                stream: self.stream.clone(),
                store: self.store.clone(),
                key: Arc::new(SessionKeySerde::new(self.key_serde.clone())),
                value: Arc::new(OptionSerde {
                    inner: self.value_serde.clone(),
                }),
                value_describe: self.value_serde.describe(),
                window_close: Some(Arc::new(move |w: &crate::dsl::Windowed<K>, _| {
                    w.window.end.saturating_add(close_after)
                })),
                is_tombstone: Option::is_none,
            },
            suppressed,
        );
        SessionTable {
            stream: self.stream.derive(node, None, None),
            store: self.store.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            gap_ms: self.gap_ms,
            grace_ms: self.grace_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut buf = Vec::new();
        encode_entry(-5, 42, b"v", &mut buf);
        assert_eq!(decode_entry(&buf), Some((-5, 42, &b"v"[..])));
        assert_eq!(decode_entry(b"short"), None);
    }

    #[test]
    fn limits() {
        let b = BufferConfig::max_records(2).with_max_bytes(100);
        assert!(!b.over(2, 100));
        assert!(b.over(3, 10));
        assert!(b.over(1, 101));
        assert!(!BufferConfig::unbounded().over(u64::MAX, u64::MAX));
    }

    #[test]
    fn index_tracks_bytes_and_order() {
        let mut i = Index::default();
        i.insert(b"b".to_vec(), 10, 5);
        i.insert(b"a".to_vec(), 20, 7);
        i.insert(b"b".to_vec(), 10, 6);
        assert_eq!(i.len(), 2);
        assert_eq!(i.bytes, 13);
        assert_eq!(i.by_due.first(), Some(&(10, b"b".to_vec())));
        assert!(i.remove(b"b"));
        assert!(!i.remove(b"b"));
        assert_eq!(i.bytes, 7);
    }
}
