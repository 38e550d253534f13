//! Records: what flows through topics and topologies.
//!
//! A [`Record`] is an immutable key, value, timestamp and headers; processors make new records
//! with [`Record::with_key`] and [`Record::with_value`], as in Kafka Streams. Where a record
//! came from (topic, partition, offset) travels beside it in [`RecordMetadata`].

use std::sync::Arc;

use bytes::Bytes;

/// Kafka record headers: an ordered list of names with optional byte values. Names may repeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<(Arc<str>, Option<Bytes>)>);

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers(Vec::new())
    }

    /// Adds a header at the end.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: impl Into<Option<Bytes>>) {
        self.0.push((name.into(), value.into()));
    }

    /// Adds a header at the end and returns the headers, for chaining.
    pub fn with(mut self, name: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        self.insert(name, Some(value.into()));
        self
    }

    /// The value of the last header called `name`.
    pub fn last(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The last header called `name`, as UTF-8 text.
    pub fn last_str(&self, name: &str) -> Option<&str> {
        self.last(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Removes every header called `name`.
    pub fn remove_all(&mut self, name: &str) {
        self.0.retain(|(n, _)| &**n != name);
    }

    /// Every header in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.0.iter().map(|(n, v)| (&**n, v.as_deref()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<Arc<str>>, V: Into<Bytes>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), Some(v.into())))
                .collect(),
        )
    }
}

/// Where a record was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// A typed record: key, value, timestamp (milliseconds since the Unix epoch, UTC) and headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers, passed along unchanged by the DSL's operators.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with another key.
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value.
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with other headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// A record as bytes, exactly as it is stored in a topic partition on either backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key bytes; `None` for a record without a key.
    pub key: Option<Bytes>,
    /// Value bytes; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Headers,
}

impl RawRecord {
    /// Where this record was read from.
    pub fn metadata(&self) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_last_wins_and_keep_order() {
        let mut h = Headers::new();
        h.insert("a", Some(Bytes::from_static(b"1")));
        h.insert("b", None);
        h.insert("a", Some(Bytes::from_static(b"2")));
        assert_eq!(h.last("a"), Some(&b"2"[..]));
        assert_eq!(h.last("b"), None);
        assert_eq!(h.last_str("a"), Some("2"));
        let names: Vec<_> = h.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["a", "b", "a"]);
    }

    #[test]
    fn with_key_and_value_keep_the_rest() {
        let r = Record::new("k", 1, 42).with_headers(Headers::new().with("h", "v"));
        let r2 = r.with_key(7u8).with_value("x");
        assert_eq!(r2.key, 7);
        assert_eq!(r2.value, "x");
        assert_eq!(r2.timestamp, 42);
        assert_eq!(r2.headers.last_str("h"), Some("v"));
    }
}
