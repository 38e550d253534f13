//! Typed topics: a name bound to a key serde and a value serde.

use std::fmt;
use std::sync::Arc;

use crate::serde::{JsonSerde, Serde, SerdeContext, SerdeError, StringSerde};

/// A topic name bound to how its keys and values are written.
///
/// Cloning is cheap (the serdes are shared). The same `Topic` value is used to produce, to
/// consume, and in a topology, so a record can only ever be read the way it was written.
///
/// ```
/// use ow_stream_core::Topic;
/// use ow_stream_core::serde::{JsonSerde, StringSerde};
///
/// let words: Topic<String, String> = Topic::new("words", StringSerde, StringSerde);
/// let counts: Topic<String, i64> = Topic::new("word-counts", StringSerde, JsonSerde::new());
/// assert_eq!(words.name(), "words");
/// assert_eq!(counts.to_string(), "word-counts (key: string, value: json(i64))");
/// ```
pub struct Topic<K, V> {
    name: Arc<str>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        Topic {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K: 'static, V: 'static> Topic<K, V> {
    /// A topic called `name` whose keys and values are written by the given serdes.
    pub fn new(name: impl Into<Arc<str>>, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Topic {
            name: name.into(),
            key_serde: Arc::new(key),
            value_serde: Arc::new(value),
        }
    }

    /// Like [`Topic::new`], with serdes that are already shared.
    pub fn with_shared_serdes(
        name: impl Into<Arc<str>>,
        key: Arc<dyn Serde<K>>,
        value: Arc<dyn Serde<V>>,
    ) -> Self {
        Topic {
            name: name.into(),
            key_serde: key,
            value_serde: value,
        }
    }

    /// The topic name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic name, shared.
    pub fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The key serde.
    pub fn key_serde(&self) -> &Arc<dyn Serde<K>> {
        &self.key_serde
    }

    /// The value serde.
    pub fn value_serde(&self) -> &Arc<dyn Serde<V>> {
        &self.value_serde
    }

    /// Encodes a key for this topic.
    pub fn serialize_key(&self, key: &K) -> Result<Vec<u8>, SerdeError> {
        self.key_serde.serialize(SerdeContext::key(&self.name), key)
    }

    /// Encodes a value for this topic.
    pub fn serialize_value(&self, value: &V) -> Result<Vec<u8>, SerdeError> {
        self.value_serde
            .serialize(SerdeContext::value(&self.name), value)
    }

    /// Decodes a key of this topic (the writer schema must be loaded, see
    /// [`crate::serde::deserialize_loading`]).
    pub fn deserialize_key(&self, bytes: &[u8]) -> Result<K, SerdeError> {
        self.key_serde
            .deserialize(SerdeContext::key(&self.name), bytes)
    }

    /// Decodes a value of this topic.
    pub fn deserialize_value(&self, bytes: &[u8]) -> Result<V, SerdeError> {
        self.value_serde
            .deserialize(SerdeContext::value(&self.name), bytes)
    }

    /// Registers the writer schemas of both serdes (a no-op for schemaless serdes).
    pub async fn prepare(&self) -> Result<(), SerdeError> {
        self.key_serde
            .prepare(SerdeContext::key(&self.name))
            .await?;
        self.value_serde
            .prepare(SerdeContext::value(&self.name))
            .await
    }
}

impl<V: serde::Serialize + serde::de::DeserializeOwned + 'static> Topic<String, V> {
    /// A topic with **raw UTF-8 string keys** ([`StringSerde`]: the key `ada` is the three
    /// bytes `ada`, not the JSON string `"ada"`) and JSON values ([`JsonSerde`]): the usual
    /// shape of keyed topics, handy in examples and tests. For JSON keys too, use
    /// [`Topic::json_keys_and_values`].
    ///
    /// ```
    /// use ow_stream_core::Topic;
    ///
    /// let clicks: Topic<String, Vec<u32>> = Topic::json("clicks");
    /// assert_eq!(clicks.serialize_key(&"ada".to_string()).unwrap(), b"ada");
    /// assert_eq!(clicks.serialize_value(&vec![1, 2]).unwrap(), b"[1,2]");
    /// ```
    pub fn json(name: impl Into<Arc<str>>) -> Self {
        Topic::new(name, StringSerde, JsonSerde::<V>::new())
    }
}

impl<K, V> Topic<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// A topic whose keys and values are both JSON ([`JsonSerde`]): a string key `ada` is
    /// written `"ada"`, a structured key as a JSON object.
    ///
    /// ```
    /// use ow_stream_core::Topic;
    ///
    /// let t: Topic<(String, u32), i64> = Topic::json_keys_and_values("scores-by-day");
    /// assert_eq!(t.serialize_key(&("ada".to_string(), 7)).unwrap(), br#"["ada",7]"#);
    /// ```
    pub fn json_keys_and_values(name: impl Into<Arc<str>>) -> Self {
        Topic::new(name, JsonSerde::<K>::new(), JsonSerde::<V>::new())
    }
}

impl<K: 'static, V: 'static> fmt::Display for Topic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (key: {}, value: {})",
            self.name,
            self.key_serde.describe(),
            self.value_serde.describe()
        )
    }
}

impl<K: 'static, V: 'static> fmt::Debug for Topic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether `name` is a legal Kafka topic name: 1 to 249 characters of `[a-zA-Z0-9._-]`, and
/// neither `.` nor `..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(is_valid_topic_name("ow.raw.player-profiles"));
        assert!(is_valid_topic_name("app-counts-changelog"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name(".."));
        assert!(!is_valid_topic_name("a b"));
        assert!(!is_valid_topic_name("a/b"));
        assert!(!is_valid_topic_name(&"x".repeat(250)));
    }

    #[test]
    fn round_trip_through_a_topic() {
        let t: Topic<String, Vec<u32>> = Topic::json("t");
        let k = t.serialize_key(&"k".into()).unwrap();
        let v = t.serialize_value(&vec![1, 2]).unwrap();
        assert_eq!(t.deserialize_key(&k).unwrap(), "k");
        assert_eq!(t.deserialize_value(&v).unwrap(), vec![1, 2]);
    }
}
