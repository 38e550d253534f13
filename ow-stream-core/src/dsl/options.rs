//! Option objects of the DSL: small values with `with_*` modifiers, as in Kafka Streams.

use std::sync::Arc;
use std::time::Duration;

use crate::config::StoreBackend;
use crate::runtime::context::TaskCx;
use crate::serde::{Serde, SerdeContext, SerdeError};
use crate::topic::Topic;

/// How a stateful operator keeps its state: the store's name (required and explicit: it names
/// the changelog topic `<application_id>-<name>-changelog` and the interactive-query view),
/// its serdes, and where it lives.
///
/// Serdes not given here are inherited from the stream (the key serde of its source topic, for
/// example); the topology fails to build with a clear error when neither says.
///
/// ```
/// use ow_stream_core::dsl::Materialized;
/// use ow_stream_core::serde::{JsonSerde, StringSerde};
///
/// let m: Materialized<String, Vec<u32>> = Materialized::as_("scores-by-player")
///     .with_key_serde(StringSerde)
///     .with_value_serde(JsonSerde::new())
///     .in_memory();
/// assert_eq!(m.name(), "scores-by-player");
/// ```
pub struct Materialized<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) backend: Option<StoreBackend>,
    pub(crate) logging: bool,
    pub(crate) retention: Option<Duration>,
    pub(crate) emit_on_change: bool,
    pub(crate) caching: bool,
}

impl<K: 'static, V: 'static> Materialized<K, V> {
    /// A store called `name`.
    pub fn as_(name: impl Into<Arc<str>>) -> Self {
        Materialized {
            name: name.into(),
            key_serde: None,
            value_serde: None,
            backend: None,
            logging: true,
            retention: None,
            emit_on_change: false,
            caching: true,
        }
    }

    /// The same as [`Materialized::as_`].
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        Self::as_(name)
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the value serde.
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }

    /// Keeps the store in memory (rebuilt from its changelog at every start).
    pub fn in_memory(mut self) -> Self {
        self.backend = Some(StoreBackend::InMemory);
        self
    }

    /// Keeps the store in redb files under the state directory.
    pub fn persistent(mut self) -> Self {
        self.backend = Some(StoreBackend::Persistent);
        self
    }

    /// For window stores: how long windows are kept after they end, queryable, before they
    /// are deleted (never less than the grace period). Default: one day
    /// ([`DEFAULT_WINDOW_RETENTION`](crate::dsl::DEFAULT_WINDOW_RETENTION)), as Kafka Streams'
    /// windowed stores.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Writes no changelog. The store is then lost with its files; in-memory stores start empty.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// Emits only changes: when an update leaves a key's value the same — its new value encodes
    /// to the same bytes as the stored one — nothing is written to the store or its changelog
    /// and nothing is forwarded downstream.
    ///
    /// Applies to aggregations (`count`, `reduce`, `aggregate`, `aggregate_option`, and their
    /// windowed forms when they emit on every update) and to tables read from a topic
    /// ([`StreamsBuilder::table`](crate::StreamsBuilder::table)), which then read the stored
    /// value of every incoming key to compare.
    ///
    /// ```
    /// use ow_stream_core::dsl::Materialized;
    ///
    /// let m: Materialized<String, i64> = Materialized::as_("best-score").emit_on_change();
    /// assert!(m.emits_on_change());
    /// ```
    pub fn emit_on_change(mut self) -> Self {
        self.emit_on_change = true;
        self
    }

    /// Keeps no record cache for this store, whatever
    /// [`StreamsConfig::cache_max_bytes`](crate::config::StreamsConfig::cache_max_bytes) says:
    /// every update of the aggregation is written to the store and its changelog, and
    /// forwarded, at once (Kafka Streams' `withCachingDisabled`). Caching applies to the
    /// stores of aggregations only.
    ///
    /// ```
    /// use ow_stream_core::dsl::Materialized;
    ///
    /// let m: Materialized<String, i64> = Materialized::as_("counts").with_caching_disabled();
    /// assert!(!m.caches());
    /// ```
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// Whether the store keeps a record cache (the default, for aggregations; see
    /// [`Materialized::with_caching_disabled`]).
    pub fn caches(&self) -> bool {
        self.caching
    }

    /// Whether [`Materialized::emit_on_change`] was asked for.
    pub fn emits_on_change(&self) -> bool {
        self.emit_on_change
    }
}

/// How a stream is regrouped by a new key: the name of the repartition topic
/// (`<application_id>-<name>-repartition`) and the serdes written to it.
///
/// ```
/// use ow_stream_core::dsl::Grouped;
/// use ow_stream_core::serde::StringSerde;
///
/// let g: Grouped<String, String> = Grouped::as_("by-word").with_key_serde(StringSerde);
/// assert_eq!(g.name(), "by-word");
/// ```
pub struct Grouped<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
}

impl<K: 'static, V: 'static> Grouped<K, V> {
    /// A grouping whose repartition topic is called `<application_id>-<name>-repartition`.
    pub fn as_(name: impl Into<Arc<str>>) -> Self {
        Grouped {
            name: name.into(),
            key_serde: None,
            value_serde: None,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the key serde of the repartition topic.
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the value serde of the repartition topic.
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }
}

/// Computes a record's event time from its key, value and the timestamp it was written with.
pub(crate) type TimestampExtractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

/// How a topic is read by [`StreamsBuilder::stream_with`](crate::StreamsBuilder::stream_with)
/// (Kafka Streams' `Consumed`): where each record's timestamp comes from.
///
/// By default a record's timestamp is the one it was written with. A timestamp extractor
/// takes the event time from the record itself instead — and that time is what moves the
/// task's **stream time** (which closes windows and makes records late), as in Kafka Streams;
/// [`Stream::with_timestamp`](crate::Stream::with_timestamp) changes the record's timestamp
/// downstream only. An extractor that returns a negative time fails the record under the
/// application's processing-error policy.
///
/// ```
/// use ow_stream_core::{StreamsBuilder, Topic};
/// use ow_stream_core::dsl::Consumed;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Reading { measured_at: i64, celsius: f64 }
///
/// let builder = StreamsBuilder::new();
/// let readings: Topic<String, Reading> = Topic::json("readings");
/// let by_event_time = builder.stream_with(
///     &readings,
///     Consumed::new().with_timestamp_extractor(|_, r: &Reading, _written_at| r.measured_at),
/// );
/// ```
pub struct Consumed<K, V> {
    pub(crate) extractor: Option<TimestampExtractor<K, V>>,
}

impl<K, V> Default for Consumed<K, V> {
    fn default() -> Self {
        Consumed { extractor: None }
    }
}

impl<K: 'static, V: 'static> Consumed<K, V> {
    /// The defaults: records keep the timestamp they were written with.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes each record's timestamp from `f(key, value, written_at)` (milliseconds since the
    /// Unix epoch); the task's stream time follows it.
    pub fn with_timestamp_extractor(
        mut self,
        f: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(f));
        self
    }
}

/// How [`Stream::repartition`](crate::Stream::repartition) writes its internal topic: the
/// topic's name (`<application_id>-<name>-repartition`), serdes (the stream's when not
/// given) and partition count.
///
/// Without [`with_number_of_partitions`](Repartitioned::with_number_of_partitions) the topic
/// gets as many partitions as the topics it is joined with, or else as the sub-topology that
/// writes it reads (or
/// [`StreamsConfig::internal_topic_partitions`](crate::config::StreamsConfig::internal_topic_partitions)).
///
/// ```
/// use ow_stream_core::dsl::Repartitioned;
/// use ow_stream_core::serde::StringSerde;
///
/// let r: Repartitioned<String, u64> = Repartitioned::as_("by-customer")
///     .with_key_serde(StringSerde)
///     .with_number_of_partitions(8);
/// assert_eq!(r.name(), "by-customer");
/// assert_eq!(r.number_of_partitions(), Some(8));
/// ```
pub struct Repartitioned<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    pub(crate) partitions: Option<u32>,
}

impl<K: 'static, V: 'static> Repartitioned<K, V> {
    /// A repartition through the topic `<application_id>-<name>-repartition`.
    pub fn as_(name: impl Into<Arc<str>>) -> Self {
        Repartitioned {
            name: name.into(),
            key_serde: None,
            value_serde: None,
            partitions: None,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition count set with
    /// [`with_number_of_partitions`](Repartitioned::with_number_of_partitions), if any.
    pub fn number_of_partitions(&self) -> Option<u32> {
        self.partitions
    }

    /// Gives the topic `partitions` partitions (Kafka Streams'
    /// `Repartitioned.withNumberOfPartitions`), whatever the partition counts upstream and
    /// [`StreamsConfig::internal_topic_partitions`](crate::config::StreamsConfig::internal_topic_partitions):
    /// the sub-topology reading it runs as that many tasks.
    ///
    /// The application creates the topic with that count when it starts; an existing topic
    /// with another count, or a table joined downstream whose topic has another count (the
    /// join needs co-partitioned inputs), fails
    /// [`Streams::start`](crate::runtime::Streams::start). A count of 0 fails
    /// [`StreamsBuilder::build`](crate::StreamsBuilder::build).
    pub fn with_number_of_partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Sets the key serde of the topic.
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the value serde of the topic.
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }
}

/// Tumbling or hopping time windows, with a required grace period for late records.
///
/// A record with timestamp `t` belongs to every window `[start, start + size)` that contains
/// `t`, where `start` is a multiple of the advance. A window accepts records until stream time
/// reaches `end + grace`; later records for it are dropped, counted in
/// [`Metrics::late_records_dropped`](crate::metrics::Metrics::late_records_dropped) and logged
/// at `debug` with their window.
///
/// # Stream time, and why a record in time can be late
/// Stream time belongs to a **task**: it is the largest timestamp the task has seen, over all
/// of its input partitions (the timestamps records were written with, or what the source's
/// timestamp extractor says, see [`Consumed`]). After a re-key (`group_by`, or a key change
/// before `group_by_key`), the aggregating task reads a repartition topic that mixes the
/// records of *every* upstream partition: when one upstream partition runs ahead of another,
/// its records move the task's clock, and a record of the slower partition — in time order
/// within its own partition — may arrive after its window closed. This is Kafka Streams'
/// rule too. Give the windows a grace period at least as long as the skew between upstream
/// partitions (how far apart in event time their records are processed), and stamp records
/// with their event time at the source ([`Consumed::with_timestamp_extractor`]), so the clock
/// follows event time rather than when records were written.
///
/// ```
/// use std::time::Duration;
/// use ow_stream_core::dsl::TimeWindows;
///
/// let daily = TimeWindows::of_size_with_grace(Duration::from_secs(86_400), Duration::from_secs(3_600));
/// assert_eq!(daily.windows_for(90_000_000).len(), 1);
/// let hopping = TimeWindows::of_size_with_grace(Duration::from_secs(60), Duration::ZERO)
///     .advance_by(Duration::from_secs(30));
/// assert_eq!(hopping.windows_for(45_000).len(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size_ms: i64,
    pub(crate) advance_ms: i64,
    pub(crate) grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` accepting records up to `grace` after they end.
    pub fn of_size_with_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = (size.as_millis() as i64).max(1);
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: grace.as_millis() as i64,
        }
    }

    /// Hopping windows: a new window starts every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = (advance.as_millis() as i64).clamp(1, self.size_ms);
        self
    }

    /// The window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// The windows containing timestamp `t`, oldest first.
    pub fn windows_for(&self, t: i64) -> Vec<crate::state::window::Window> {
        let last_start = t - t.rem_euclid(self.advance_ms);
        let mut start = last_start;
        let mut out = Vec::new();
        while start > t - self.size_ms {
            out.push(crate::state::window::Window {
                start,
                end: start + self.size_ms,
            });
            start -= self.advance_ms;
        }
        out.reverse();
        out
    }
}

/// How long a window store keeps windows after they end when its
/// [`Materialized::with_retention`] does not say: one day, as in Kafka Streams.
pub const DEFAULT_WINDOW_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// When a windowed aggregation emits its results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmitStrategy {
    /// Every update of a window is emitted at once (the default).
    #[default]
    OnWindowUpdate,
    /// A window is emitted once, with its final value, when stream time passes its end plus the
    /// grace period.
    OnWindowClose,
}

/// Computes the bytes a sink hashes to pick a record's partition.
pub(crate) type HashedPartitioner<K, V> = Arc<dyn Fn(&K, &V) -> Vec<u8> + Send + Sync>;
/// Encodes the part of a record a sink partitions by, into the buffer it is given.
pub(crate) type EncodedPartitioner<K, V> =
    Arc<dyn Fn(&K, &V, &TaskCx<'_>, &mut Vec<u8>) -> Result<(), SerdeError> + Send + Sync>;
/// Picks a record's partition among the given number of partitions.
pub(crate) type ExplicitPartitioner<K, V> = Arc<dyn Fn(&K, &V, i32) -> i32 + Send + Sync>;

/// How a sink chooses the partition of each record.
pub(crate) enum SinkPartitioner<K, V> {
    /// Kafka's murmur2 over bytes computed from the record.
    Hashed(HashedPartitioner<K, V>),
    /// Kafka's murmur2 over the bytes a serde writes for a part of the record.
    Encoded(EncodedPartitioner<K, V>),
    /// A partition number chosen by the application.
    Explicit(ExplicitPartitioner<K, V>),
}

impl<K, V> Clone for SinkPartitioner<K, V> {
    fn clone(&self) -> Self {
        match self {
            SinkPartitioner::Hashed(f) => SinkPartitioner::Hashed(f.clone()),
            SinkPartitioner::Encoded(f) => SinkPartitioner::Encoded(f.clone()),
            SinkPartitioner::Explicit(f) => SinkPartitioner::Explicit(f.clone()),
        }
    }
}

/// How a stream is written to a topic by [`Stream::to_with`](crate::Stream::to_with): the
/// sink node's name and how each record's partition is chosen.
///
/// By default a record goes where Kafka's default partitioner sends its key bytes
/// (`murmur2(key) % partitions`, the same on both backends). A partitioner changes that
/// while the record keeps its key — for example, records keyed by
/// `(player, platform, mode)` that must share the partition of the player's other topics:
///
/// * [`Produced::with_partitioner`] hashes bytes computed from the record with murmur2;
/// * [`Produced::with_partition_key_of`] hashes a part of the record exactly as another
///   topic's key serde writes it (a player id as it is written as the key of the player's
///   topics, schema id included);
/// * [`Produced::with_stream_partitioner`] picks the partition number itself, given the
///   topic's partition count.
///
/// Partition counts are asked of the backend once per topic and sink thread.
///
/// ```
/// use ow_stream_core::dsl::Produced;
///
/// #[derive(Clone)]
/// struct DayKey { player: String, day: i64 }
///
/// // Every day of a player in the partition its player id (as UTF-8) hashes to.
/// let produced: Produced<DayKey, u64> = Produced::new()
///     .with_name("days-by-player")
///     .with_partitioner(|key: &DayKey, _| key.player.as_bytes().to_vec());
/// ```
pub struct Produced<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) partitioner: Option<SinkPartitioner<K, V>>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced {
            name: None,
            partitioner: None,
        }
    }
}

impl<K: 'static, V: 'static> Produced<K, V> {
    /// The defaults: a generated sink name, Kafka's default partitioner over the key bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the sink node (otherwise `<topic>-sink`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sends each record to the partition Kafka's default partitioner picks for the bytes
    /// `f` returns (`murmur2(bytes) % partitions`, as [`ow_stream_log::partition_for_key`]
    /// computes it), instead of its key bytes.
    pub fn with_partitioner(
        mut self,
        f: impl Fn(&K, &V) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(SinkPartitioner::Hashed(Arc::new(f)));
        self
    }

    /// Sends each record to the partition a record keyed by `f(key, value)` would get in
    /// `like`: the part `f` returns is encoded with `like`'s key serde (as a key of `like`, so
    /// an Avro serde writes the schema id registered for it) and hashed with murmur2.
    ///
    /// ```
    /// use ow_stream_core::Topic;
    /// use ow_stream_core::dsl::Produced;
    ///
    /// #[derive(Clone)]
    /// struct CategoryKey { player: String, category: String }
    ///
    /// let profiles: Topic<String, String> = Topic::json("profiles");
    /// // A category record goes where the player's profile goes.
    /// let produced: Produced<CategoryKey, u64> =
    ///     Produced::new().with_partition_key_of(&profiles, |key: &CategoryKey, _| &key.player);
    /// ```
    pub fn with_partition_key_of<P: 'static, PV: 'static>(
        mut self,
        like: &Topic<P, PV>,
        f: impl for<'a> Fn(&'a K, &'a V) -> &'a P + Send + Sync + 'static,
    ) -> Self {
        let serde = like.key_serde().clone();
        let topic = like.shared_name();
        self.partitioner = Some(SinkPartitioner::Encoded(Arc::new(
            move |k: &K, v: &V, cx: &TaskCx<'_>, out: &mut Vec<u8>| {
                cx.encode(&*serde, SerdeContext::key(&topic), f(k, v), out)
            },
        )));
        self
    }

    /// Sends each record to the partition `f(key, value, partitions)` returns, which must be
    /// in `0..partitions`; a number out of range is a processing error of the record.
    pub fn with_stream_partitioner(
        mut self,
        f: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(SinkPartitioner::Explicit(Arc::new(f)));
        self
    }
}
