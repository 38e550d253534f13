//! Option objects of the DSL: small values with `with_*` modifiers, as in Kafka Streams.

use std::sync::Arc;
use std::time::Duration;

use crate::config::StoreBackend;
use crate::serde::Serde;

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

    /// For window stores: how long windows are kept after they end (at least the grace period;
    /// longer retention keeps closed windows queryable).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Writes no changelog. The store is then lost with its files; in-memory stores start empty.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
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

/// Tumbling or hopping time windows, with a required grace period for late records.
///
/// A record with timestamp `t` belongs to every window `[start, start + size)` that contains
/// `t`, where `start` is a multiple of the advance. A window accepts records until stream time
/// reaches `end + grace`; later records for it are dropped and counted as late.
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
