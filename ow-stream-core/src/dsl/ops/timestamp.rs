//! `with_timestamp`: give records a timestamp computed from their key and value.

use std::sync::Arc;

use crate::dsl::{Data, Stream};
use crate::processor::node::fn_node;

impl<K: Data, V: Data> Stream<K, V> {
    /// Sets each record's timestamp (milliseconds since the Unix epoch) to `f(key, value)`:
    /// the time downstream operators see — windows assign records by it — and that sinks
    /// write. Keys, values and their serdes stay.
    ///
    /// The task's stream time (which closes windows and drops late records) still follows the
    /// timestamps of the input records, as in Kafka Streams: stamp records with event times
    /// no later than their input's, or expect windows to close by the input's clock. To move
    /// the clock by event time, extract it at the source instead
    /// ([`StreamsBuilder::stream_with`](crate::StreamsBuilder::stream_with) with
    /// [`Consumed::with_timestamp_extractor`](crate::dsl::Consumed::with_timestamp_extractor)).
    ///
    /// ```
    /// use ow_stream_core::{StreamsBuilder, Topic};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Reading { measured_at: i64, celsius: f64 }
    ///
    /// let builder = StreamsBuilder::new();
    /// let readings: Topic<String, Reading> = Topic::json("readings");
    /// let by_event_time = builder
    ///     .stream(&readings)
    ///     .with_timestamp(|_, reading| reading.measured_at);
    /// ```
    pub fn with_timestamp(
        &self,
        f: impl Fn(&K, &V) -> i64 + Send + Sync + 'static,
    ) -> Stream<K, V> {
        let f = Arc::new(f);
        let node = self.add_processor("with-timestamp", vec![], move |children, _| {
            let f = f.clone();
            Ok(fn_node(children, move |mut r, ch, cx| {
                r.timestamp = f(&r.key, &r.value);
                ch.forward(r, cx)
            }))
        });
        self.derive(node, self.key_serde.clone(), self.value_serde.clone())
    }
}
