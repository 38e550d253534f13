//! Serializers and deserializers ("serdes") that turn keys and values into bytes and back.
//!
//! Every [`Topic`](crate::Topic) carries one serde for its keys and one for its values. The
//! library ships four:
//!
//! | serde | bytes on the wire | use it for |
//! |---|---|---|
//! | [`AvroSerde`] | Confluent wire format: magic byte `0`, 4-byte big-endian schema id, Avro binary | the records of your own topics (the default for ow-stream applications) |
//! | [`JsonSerde`] | UTF-8 JSON | internal topics and stores of types that are only `serde` types |
//! | [`StringSerde`] | UTF-8 | plain text keys and values |
//! | [`BytesSerde`] | the bytes themselves | pass-through |
//!
//! Anything else implements [`Serde`]. Only [`Serde::serialize_into`] and
//! [`Serde::deserialize`] are required; the other methods have defaults that suit serdes that
//! need no schema registry.
//!
//! # Why serialization is synchronous
//!
//! Records are encoded and decoded on the processing hot path, once each, with no per-record
//! future. Serdes that need a schema registry do their network work ahead of time:
//! [`Serde::prepare`] registers the writer schema before the first record is written, and a
//! decode that meets an unknown schema id reports [`SerdeError::SchemaNotLoaded`]; the caller
//! then awaits [`Serde::load_schema`] and decodes again. Both happen once per schema id.
//!
//! ```
//! use ow_stream_core::serde::{Serde, SerdeContext, StringSerde};
//!
//! let serde = StringSerde;
//! let ctx = SerdeContext::value("greetings");
//! let bytes = serde.serialize(ctx, &"hello".to_string()).unwrap();
//! assert_eq!(bytes, b"hello");
//! assert_eq!(serde.deserialize(ctx, &bytes).unwrap(), "hello");
//! ```

mod avro;
pub(crate) mod blocking;
mod builtin;

use std::error::Error as StdError;
use std::fmt;

use futures::future::BoxFuture;

pub use avro::AvroSerde;
pub(crate) use blocking::{decode_blocking, encode_blocking};
pub use builtin::{BytesSerde, JsonSerde, StringSerde, UnitSerde};

/// Which half of a record a serde is working on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SerdeTarget {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl SerdeTarget {
    /// `"key"` or `"value"`, as used in schema registry subject names (`<topic>-key`).
    pub fn as_str(self) -> &'static str {
        match self {
            SerdeTarget::Key => "key",
            SerdeTarget::Value => "value",
        }
    }
}

/// What a serde is told about the bytes it reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerdeContext<'a> {
    /// The topic the bytes belong to.
    pub topic: &'a str,
    /// Key or value.
    pub target: SerdeTarget,
}

impl<'a> SerdeContext<'a> {
    /// The context of a key of `topic`.
    pub fn key(topic: &'a str) -> Self {
        SerdeContext {
            topic,
            target: SerdeTarget::Key,
        }
    }

    /// The context of a value of `topic`.
    pub fn value(topic: &'a str) -> Self {
        SerdeContext {
            topic,
            target: SerdeTarget::Value,
        }
    }

    /// The schema registry subject under Confluent's `TopicNameStrategy`: `<topic>-key` or
    /// `<topic>-value`.
    pub fn subject(&self) -> String {
        format!("{}-{}", self.topic, self.target.as_str())
    }
}

/// Why a serde could not turn a value into bytes or bytes into a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerdeError {
    /// The bytes name a schema id that this serde has not loaded yet. Await
    /// [`Serde::load_schema`] with this id, then decode again.
    #[error("schema id {id} is not loaded yet")]
    SchemaNotLoaded {
        /// The schema id found in the bytes.
        id: u32,
    },
    /// The writer schema has not been registered yet: await [`Serde::prepare`] first.
    #[error("serde for subject {subject} is not prepared: its schema is not registered yet")]
    NotPrepared {
        /// The subject whose schema is missing.
        subject: String,
    },
    /// The bytes are not in the expected framing (for example no Confluent magic byte).
    #[error("malformed {format} data: {reason}")]
    Malformed {
        /// The format expected (`"confluent avro"`, `"utf-8"`, ...).
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The schema registry refused or failed a request.
    #[error("schema registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    /// Avro encoding, decoding or schema resolution failed (an [`apache_avro::Error`], re-exported
    /// as [`crate::avro::Error`]).
    #[error("avro: {0}")]
    Avro(#[source] Box<apache_avro::Error>),
    /// JSON encoding or decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A serde written by a user failed.
    #[error("{0}")]
    Custom(Box<dyn StdError + Send + Sync + 'static>),
}

impl From<apache_avro::Error> for SerdeError {
    fn from(e: apache_avro::Error) -> Self {
        SerdeError::Avro(Box::new(e))
    }
}

impl SerdeError {
    /// Wraps any error of a user-written serde.
    pub fn custom(e: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        SerdeError::Custom(e.into())
    }
}

/// Turns values of `T` into bytes and back.
///
/// Implementations must be deterministic: the same value always gives the same bytes (state
/// stores and compaction compare keys by their bytes).
pub trait Serde<T>: Send + Sync + 'static {
    /// Appends the bytes of `value` to `out`.
    fn serialize_into(
        &self,
        ctx: SerdeContext<'_>,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError>;

    /// Reads a value from `bytes`.
    fn deserialize(&self, ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<T, SerdeError>;

    /// The bytes of `value` in a new vector.
    fn serialize(&self, ctx: SerdeContext<'_>, value: &T) -> Result<Vec<u8>, SerdeError> {
        let mut out = Vec::new();
        self.serialize_into(ctx, value, &mut out)?;
        Ok(out)
    }

    /// Does, ahead of time, the network work this serde needs before it can serialize for
    /// `ctx` (for Avro: register the writer schema under the subject). Idempotent and cheap
    /// once done. The default does nothing.
    fn prepare<'a>(&'a self, ctx: SerdeContext<'a>) -> BoxFuture<'a, Result<(), SerdeError>> {
        let _ = ctx;
        Box::pin(futures::future::ready(Ok(())))
    }

    /// Loads the schema `id` that a [`SerdeError::SchemaNotLoaded`] asked for. The default
    /// fails: serdes without schemas never ask.
    fn load_schema(&self, id: u32) -> BoxFuture<'_, Result<(), SerdeError>> {
        Box::pin(futures::future::ready(Err(SerdeError::Malformed {
            format: "schemaless",
            reason: format!("this serde has no schema registry to load schema id {id} from"),
        })))
    }

    /// A short description for [`describe`](crate::Topology::describe) output and the
    /// pipeline page, such as `"avro(ow.PlayerProfile)"` or `"string"`.
    fn describe(&self) -> String {
        std::any::type_name::<Self>()
            .rsplit("::")
            .next()
            .unwrap_or("serde")
            .to_string()
    }
}

impl<T: 'static, S: Serde<T> + ?Sized> Serde<T> for std::sync::Arc<S> {
    fn serialize_into(
        &self,
        ctx: SerdeContext<'_>,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        (**self).serialize_into(ctx, value, out)
    }
    fn deserialize(&self, ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize(ctx, bytes)
    }
    fn prepare<'a>(&'a self, ctx: SerdeContext<'a>) -> BoxFuture<'a, Result<(), SerdeError>> {
        (**self).prepare(ctx)
    }
    fn load_schema(&self, id: u32) -> BoxFuture<'_, Result<(), SerdeError>> {
        (**self).load_schema(id)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Decodes `bytes`, loading a missing writer schema from the registry first when the serde asks
/// for one. This is the one place the library waits on the registry while reading.
pub async fn deserialize_loading<T: 'static>(
    serde: &dyn Serde<T>,
    ctx: SerdeContext<'_>,
    bytes: &[u8],
) -> Result<T, SerdeError> {
    // A record can name at most one unknown schema; the loop is bounded for serdes that keep
    // asking (which would be a bug in the serde).
    for _ in 0..3 {
        match serde.deserialize(ctx, bytes) {
            Err(SerdeError::SchemaNotLoaded { id }) => serde.load_schema(id).await?,
            other => return other,
        }
    }
    serde.deserialize(ctx, bytes)
}

impl fmt::Display for SerdeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
