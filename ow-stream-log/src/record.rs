//! The record model: Kafka's, field for field.

use bytes::Bytes;

/// One record header: a name and an optional value, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header name.
    pub key: String,
    /// The header value (`None` is a null value, distinct from empty).
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A record to append; the log assigns its offset.
///
/// ```
/// use ow_stream_log::NewRecord;
/// let rec = NewRecord::new(Some("player-1"), Some("{\"level\":3}"), 1_700_000_000_000)
///     .with_header("trace", "abc");
/// assert!(!rec.is_tombstone());
/// assert!(NewRecord::tombstone("player-1", 0).is_tombstone());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// The key (`None` = no key).
    pub key: Option<Bytes>,
    /// The value (`None` = a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Timestamp in milliseconds since the Unix epoch (Kafka's `CreateTime`).
    pub timestamp: i64,
    /// Headers, in order; names may repeat.
    pub headers: Vec<Header>,
}

impl NewRecord {
    /// A record with the given key, value and timestamp and no headers.
    pub fn new<K: Into<Bytes>, V: Into<Bytes>>(
        key: Option<K>,
        value: Option<V>,
        timestamp: i64,
    ) -> Self {
        NewRecord {
            key: key.map(Into::into),
            value: value.map(Into::into),
            timestamp,
            headers: Vec::new(),
        }
    }

    /// A tombstone (key, no value): deletes the key on a compacted topic.
    pub fn tombstone(key: impl Into<Bytes>, timestamp: i64) -> Self {
        NewRecord {
            key: Some(key.into()),
            value: None,
            timestamp,
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// True when the value is `None`.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A record read back from the log, with the offset it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key.
    pub key: Option<Bytes>,
    /// The value (`None` = tombstone).
    pub value: Option<Bytes>,
    /// Headers, in the order they were appended.
    pub headers: Vec<Header>,
}

impl StoredRecord {
    /// True when the value is `None`.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// What [`Log::append`](crate::Log::append) assigned to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppendResult {
    /// Offset of the first record of the batch.
    pub base_offset: i64,
    /// Offset of the last record of the batch (`base_offset + len - 1`).
    pub last_offset: i64,
}
