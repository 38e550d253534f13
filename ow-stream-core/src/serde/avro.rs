//! Avro in the Confluent wire format, with schemas from a [`SchemaRegistry`].
//!
//! Encoding writes magic byte `0`, the 4-byte big-endian id of the serde's schema as registered
//! under the record's subject (`<topic>-key` / `<topic>-value`), then the Avro binary written by
//! apache-avro's schema-aware serializer straight into the caller's buffer. The id is
//! registered once per subject and cached.
//!
//! Decoding reads the writer schema's id from the bytes and always resolves that writer schema
//! against the serde's own (reader) schema, so a reader one version ahead or behind reads the
//! data. The decoder of each writer id is prepared once and cached: when writer and reader
//! schemas are the same (same [registry form](crate::registry::RegisteredSchema)) it is
//! apache-avro's direct schema-aware deserializer; otherwise the datum is read as an Avro
//! `Value`, resolved against the reader schema (defaults filled in, promotions applied) and
//! converted with `apache_avro::from_value`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::{AvroSchema, Schema, write_avro_datum_ref};
use futures::future::BoxFuture;
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Serde, SerdeContext, SerdeError, SerdeTarget};
use crate::registry::wire::{FRAME_LEN, MAGIC_BYTE, split_frame};
use crate::registry::{RegisteredSchema, SchemaRegistry, registry_form, schema_name};

const FORMAT: &str = "confluent avro";

/// Avro values of `T` in the Confluent wire format (magic byte `0`, 4-byte big-endian schema
/// id, Avro binary), with ids from a [`SchemaRegistry`].
///
/// `T` goes through `serde`: records are structs, Avro enums are Rust enums of unit variants
/// (by symbol name), `["null", X]` unions are `Option<X>`, maps are `HashMap<String, _>` or
/// `BTreeMap<String, _>`, arrays are `Vec`, `timestamp-millis` is `i64`.
///
/// Decoding data written with the serde's own schema is fastest when the Rust struct names (or
/// their `#[serde(rename = "…")]`) equal the Avro record names, as with types whose schema is
/// derived: apache-avro's direct deserializer insists on it. Otherwise the serde notices on the
/// first record and decodes through an Avro `Value` instead, which is slower but as correct.
///
/// Clones share the schema, the ids and the prepared decoders. Over an in-process registry
/// (`mock://`, directory) the serde registers and loads schemas by itself; over an HTTP
/// registry, await [`Serde::prepare`] before the first write of a subject, and
/// [`Serde::load_schema`] when a decode reports [`SerdeError::SchemaNotLoaded`] (or use
/// [`deserialize_loading`](super::deserialize_loading)).
///
/// ```
/// use ow_stream_core::registry::SchemaRegistry;
/// use ow_stream_core::serde::{AvroSerde, Serde, SerdeContext};
///
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct Player { id: String, level: i32 }
///
/// let registry = SchemaRegistry::mock("avro-serde-doc");
/// let serde = AvroSerde::<Player>::from_avsc(&registry, r#"{"type":"record","name":"ow.Player",
///     "fields":[{"name":"id","type":"string"},{"name":"level","type":"int"}]}"#).unwrap();
/// let ctx = SerdeContext::value("players");
/// let player = Player { id: "TeKrop-2217".into(), level: 30 };
/// let bytes = serde.serialize(ctx, &player).unwrap();
/// assert_eq!(bytes[0], 0); // magic byte, then the schema id of subject players-value
/// assert_eq!(serde.deserialize(ctx, &bytes).unwrap(), player);
/// assert_eq!(serde.describe(), "avro(ow.Player)");
/// ```
pub struct AvroSerde<T> {
    core: Arc<Core>,
    _type: PhantomData<fn() -> T>,
}

impl<T> AvroSerde<T> {
    /// A serde writing and reading with `schema` (an [`avro::Schema`](crate::avro::Schema)) through
    /// `registry`.
    pub fn new(registry: &SchemaRegistry, schema: Schema) -> Result<Self, SerdeError> {
        Ok(AvroSerde {
            core: Arc::new(Core::new(registry, schema)?),
            _type: PhantomData,
        })
    }

    /// A serde for the schema in `avsc` (Avro schema JSON).
    pub fn from_avsc(registry: &SchemaRegistry, avsc: &str) -> Result<Self, SerdeError> {
        Self::new(registry, Schema::parse_str(avsc)?)
    }

    /// The serde's schema: the writer schema on encode, the reader schema on decode.
    pub fn schema(&self) -> &Schema {
        self.core.schema()
    }

    /// The registry the serde takes ids from.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.core.registry
    }
}

impl<T: AvroSchema> AvroSerde<T> {
    /// A serde for the schema derived from `T` (`#[derive(apache_avro::AvroSchema)]`).
    pub fn derived(registry: &SchemaRegistry) -> Result<Self, SerdeError> {
        Self::new(registry, T::get_schema())
    }
}

impl<T> Clone for AvroSerde<T> {
    fn clone(&self) -> Self {
        AvroSerde {
            core: self.core.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for AvroSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvroSerde")
            .field("schema", &self.core.name)
            .field("registry", &self.core.registry)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for AvroSerde<T> {
    fn serialize_into(
        &self,
        ctx: SerdeContext<'_>,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let core = &*self.core;
        let id = core.writer_id(ctx)?;
        let start = out.len();
        out.reserve(FRAME_LEN + 64);
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        let schema = &core.schema;
        let names = schema.borrow_dependent().get_names();
        if let Err(e) = write_avro_datum_ref(schema.borrow_owner(), names, value, out) {
            out.truncate(start);
            return Err(e.into());
        }
        Ok(())
    }

    fn deserialize(&self, _ctx: SerdeContext<'_>, bytes: &[u8]) -> Result<T, SerdeError> {
        self.core.decode(bytes)
    }

    fn prepare<'a>(&'a self, ctx: SerdeContext<'a>) -> BoxFuture<'a, Result<(), SerdeError>> {
        Box::pin(self.core.prepare(ctx))
    }

    fn load_schema(&self, id: u32) -> BoxFuture<'_, Result<(), SerdeError>> {
        Box::pin(self.core.load_schema(id))
    }

    fn describe(&self) -> String {
        format!("avro({})", self.core.name)
    }
}

// ---------------------------------------------------------------------------------------------
// The shared machinery

/// The schema, the writer ids per subject, the decoders per writer id.
struct Core {
    registry: SchemaRegistry,
    /// The serde's schema with its names resolved once.
    schema: Arc<ResolvedCell>,
    /// Identity of the schema, to spot writer schemas that need no resolution.
    form: String,
    /// Full name, for `describe`.
    name: String,
    /// The id of the schema under each subject written so far.
    ids: RwLock<Vec<SubjectId>>,
    /// Decoders by writer schema id (a handful at most: a linear scan beats hashing).
    decoders: RwLock<Vec<(u32, Decoder)>>,
}

struct SubjectId {
    topic: Box<str>,
    target: SerdeTarget,
    id: u32,
}

impl Core {
    fn new(registry: &SchemaRegistry, schema: Schema) -> Result<Self, SerdeError> {
        let name = schema_name(&schema);
        let form = registry_form(&schema);
        Ok(Core {
            registry: registry.clone(),
            schema: Arc::new(ResolvedCell::try_new(schema, |s| ResolvedSchema::new(s))?),
            form,
            name,
            ids: RwLock::new(Vec::new()),
            decoders: RwLock::new(Vec::new()),
        })
    }

    fn schema(&self) -> &Schema {
        self.schema.borrow_owner()
    }

    fn known_id(&self, ctx: SerdeContext<'_>) -> Option<u32> {
        self.ids
            .read()
            .iter()
            .find(|s| s.target == ctx.target && &*s.topic == ctx.topic)
            .map(|s| s.id)
    }

    fn remember_id(&self, ctx: SerdeContext<'_>, id: u32) {
        let mut ids = self.ids.write();
        if !ids
            .iter()
            .any(|s| s.target == ctx.target && &*s.topic == ctx.topic)
        {
            ids.push(SubjectId {
                topic: ctx.topic.into(),
                target: ctx.target,
                id,
            });
        }
    }

    /// The id to write under `ctx`'s subject, registering the schema now if the registry is
    /// in-process.
    fn writer_id(&self, ctx: SerdeContext<'_>) -> Result<u32, SerdeError> {
        if let Some(id) = self.known_id(ctx) {
            return Ok(id);
        }
        let subject = ctx.subject();
        match self.registry.register_now(&subject, self.schema()) {
            Some(Ok(id)) => {
                self.remember_id(ctx, id);
                Ok(id)
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(SerdeError::NotPrepared { subject }),
        }
    }

    async fn prepare(&self, ctx: SerdeContext<'_>) -> Result<(), SerdeError> {
        if self.known_id(ctx).is_some() {
            return Ok(());
        }
        let id = self
            .registry
            .register(&ctx.subject(), self.schema())
            .await?;
        self.remember_id(ctx, id);
        Ok(())
    }

    async fn load_schema(&self, id: u32) -> Result<(), SerdeError> {
        if self.decoders.read().iter().any(|(known, _)| *known == id) {
            return Ok(());
        }
        let writer = self.registry.schema(id).await?;
        self.add_decoder(writer)?;
        Ok(())
    }

    fn add_decoder(&self, writer: Arc<RegisteredSchema>) -> Result<(), SerdeError> {
        let id = writer.id();
        let direct = writer.form() == self.form;
        let owner = DecoderSchemas {
            writer,
            reader: self.schema.clone(),
            direct,
            direct_works: AtomicBool::new(direct),
        };
        let decoder = Decoder::try_new(owner, |schemas| {
            if schemas.direct {
                // Same schema: read straight into `T`, no `Value` and no resolution.
                GenericDatumReader::builder(schemas.reader.borrow_owner()).build()
            } else {
                GenericDatumReader::builder(schemas.writer.schema())
                    .reader_schema(schemas.reader.borrow_owner())
                    .build()
            }
        })?;
        let mut decoders = self.decoders.write();
        if !decoders.iter().any(|(known, _)| *known == id) {
            decoders.push((id, decoder));
        }
        Ok(())
    }

    /// Splits the framing, finds (or, for in-process registries, builds) the decoder of the
    /// writer id and decodes the payload, which must be consumed entirely.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        let (id, mut payload) = split_frame(bytes).map_err(|e| SerdeError::Malformed {
            format: FORMAT,
            reason: e.to_string(),
        })?;
        let value = {
            let decoders = self.decoders.read();
            match decoders.iter().find(|(known, _)| *known == id) {
                Some((_, decoder)) => Some(decoder.read::<T>(&mut payload)?),
                None => None,
            }
        };
        let value = match value {
            Some(value) => value,
            None => {
                match self.registry.schema_now(id) {
                    Some(Ok(writer)) => self.add_decoder(writer)?,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(SerdeError::SchemaNotLoaded { id }),
                }
                let decoders = self.decoders.read();
                let (_, decoder) = decoders
                    .iter()
                    .find(|(known, _)| *known == id)
                    .ok_or(SerdeError::SchemaNotLoaded { id })?;
                decoder.read::<T>(&mut payload)?
            }
        };
        if !payload.is_empty() {
            return Err(SerdeError::Malformed {
                format: FORMAT,
                reason: format!(
                    "{} bytes left over after the record of schema id {id}",
                    payload.len()
                ),
            });
        }
        Ok(value)
    }
}

self_cell::self_cell!(
    /// A schema and its resolved names (apache-avro's `ResolvedOwnedSchema` is not public).
    struct ResolvedCell {
        owner: Schema,
        #[covariant]
        dependent: ResolvedSchema,
    }
);

/// The schemas a decoder borrows.
struct DecoderSchemas {
    writer: Arc<RegisteredSchema>,
    reader: Arc<ResolvedCell>,
    /// Writer and reader are the same schema: no resolution needed, and the decoder has no
    /// reader schema.
    direct: bool,
    /// Whether `T` can be read with the direct deserializer. It cannot when a Rust struct's
    /// name differs from its Avro record's name (apache-avro's direct deserializer insists on
    /// equal names); the first such record switches the decoder to the `Value` path for good.
    direct_works: AtomicBool,
}

self_cell::self_cell!(
    /// A prepared reader for one writer schema id.
    struct Decoder {
        owner: DecoderSchemas,
        #[covariant]
        dependent: GenericDatumReader,
    }
);

impl Decoder {
    fn read<T: DeserializeOwned>(&self, payload: &mut &[u8]) -> Result<T, SerdeError> {
        let schemas = self.borrow_owner();
        let reader = self.borrow_dependent();
        if schemas.direct_works.load(Ordering::Relaxed) {
            // `read_deser` must not be given a reader schema (apache-avro 0.22 panics then):
            // the direct decoder has none.
            let start = *payload;
            match reader.read_deser::<T>(payload) {
                Ok(value) => return Ok(value),
                Err(direct) => {
                    // Bad data, or a `T` the direct deserializer cannot fill: the `Value` path
                    // tells them apart.
                    *payload = start;
                    let value = Self::read_via_value::<T>(reader, payload)?;
                    schemas.direct_works.store(false, Ordering::Relaxed);
                    tracing::debug!(
                        schema = %schemas.writer.name(),
                        rust_type = std::any::type_name::<T>(),
                        error = %direct,
                        "avro: decoding through Value from now on (the direct deserializer \
                         needs Rust struct names equal to the schema's record names)"
                    );
                    return Ok(value);
                }
            }
        }
        Self::read_via_value(reader, payload)
    }

    /// Reads an Avro `Value` (resolved against the reader schema if the decoder has one) and
    /// converts it to `T`.
    fn read_via_value<T: DeserializeOwned>(
        reader: &GenericDatumReader<'_>,
        payload: &mut &[u8],
    ) -> Result<T, SerdeError> {
        let value = reader.read_value(payload)?;
        Ok(apache_avro::from_value::<T>(&value)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Outcome {
        Ok,
        Private,
        NotFound,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        name: String,
        score: f64,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        id: String,
        at: i64,
        outcome: Outcome,
        status: Option<i32>,
        body: Option<String>,
        counts: HashMap<String, i64>,
        sorted: BTreeMap<String, Inner>,
        tags: Vec<String>,
        inner: Inner,
        maybe_inner: Option<Inner>,
        flag: bool,
        ratio: f32,
    }

    const EVERYTHING: &str = r#"{
        "type": "record", "name": "Everything", "namespace": "test",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "outcome", "type": {"type": "enum", "name": "Outcome",
                "symbols": ["ok", "private", "not_found"]}},
            {"name": "status", "type": ["null", "int"], "default": null},
            {"name": "body", "type": ["null", "string"], "default": null},
            {"name": "counts", "type": {"type": "map", "values": "long"}},
            {"name": "sorted", "type": {"type": "map", "values": {"type": "record",
                "name": "Inner", "fields": [
                    {"name": "name", "type": "string"},
                    {"name": "score", "type": "double"}]}}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "inner", "type": "Inner"},
            {"name": "maybe_inner", "type": ["null", "Inner"], "default": null},
            {"name": "flag", "type": "boolean"},
            {"name": "ratio", "type": "float"}
        ]
    }"#;

    /// The same record with fields reordered, a doc, an extra field with a default and a
    /// promotion (int → long in the reader): reading needs resolution.
    const EVERYTHING_V2: &str = r#"{
        "type": "record", "name": "Everything", "namespace": "test", "doc": "v2",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "id", "type": "string"},
            {"name": "added", "type": "string", "default": "none"},
            {"name": "outcome", "type": {"type": "enum", "name": "Outcome",
                "symbols": ["ok", "private", "not_found", "rate_limited"], "default": "ok"}},
            {"name": "status", "type": ["null", "int"], "default": null},
            {"name": "body", "type": ["null", "string"], "default": null},
            {"name": "counts", "type": {"type": "map", "values": "long"}},
            {"name": "sorted", "type": {"type": "map", "values": {"type": "record",
                "name": "Inner", "fields": [
                    {"name": "name", "type": "string"},
                    {"name": "score", "type": "double"}]}}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "inner", "type": "Inner"},
            {"name": "maybe_inner", "type": ["null", "Inner"], "default": null},
            {"name": "flag", "type": "boolean"},
            {"name": "ratio", "type": "double"}
        ]
    }"#;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct EverythingV2 {
        id: String,
        at: i64,
        added: String,
        outcome: Outcome,
        status: Option<i32>,
        body: Option<String>,
        counts: HashMap<String, i64>,
        sorted: BTreeMap<String, Inner>,
        tags: Vec<String>,
        inner: Inner,
        maybe_inner: Option<Inner>,
        flag: bool,
        ratio: f64,
    }

    fn sample(i: i64) -> Everything {
        Everything {
            id: format!("Player-{i}"),
            at: 1_700_000_000_000 + i,
            outcome: if i % 2 == 0 {
                Outcome::NotFound
            } else {
                Outcome::Private
            },
            status: (i % 3 != 0).then_some(200),
            body: (i % 2 == 0).then(|| "{\"ok\":true}".to_string()),
            counts: [("wins".to_string(), i), ("losses".to_string(), -i)]
                .into_iter()
                .collect(),
            sorted: [(
                "a".to_string(),
                Inner {
                    name: "x".into(),
                    score: 1.5,
                },
            )]
            .into_iter()
            .collect(),
            tags: vec!["t1".into(), "t2".into()],
            inner: Inner {
                name: "inner".into(),
                score: -0.25,
            },
            maybe_inner: (i % 2 == 1).then(|| Inner {
                name: "maybe".into(),
                score: 2.0,
            }),
            flag: i % 2 == 0,
            ratio: 0.5,
        }
    }

    fn scope(name: &str) -> SchemaRegistry {
        SchemaRegistry::drop_mock_scope(name);
        SchemaRegistry::mock(name)
    }

    #[test]
    fn every_shape_round_trips_on_the_direct_path() {
        let registry = scope("avro-tests-direct");
        let serde = AvroSerde::<Everything>::from_avsc(&registry, EVERYTHING).unwrap();
        let ctx = SerdeContext::value("everything");
        for i in 0..4 {
            let value = sample(i);
            let bytes = serde.serialize(ctx, &value).unwrap();
            assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
            assert_eq!(serde.deserialize(ctx, &bytes).unwrap(), value);
        }
        assert!(serde.core.decoders.read()[0].1.borrow_owner().direct);
        assert_eq!(serde.describe(), "avro(test.Everything)");
        SchemaRegistry::drop_mock_scope("avro-tests-direct");
    }

    #[test]
    fn every_shape_round_trips_on_the_resolving_path() {
        let registry = scope("avro-tests-resolving");
        let v1 = AvroSerde::<Everything>::from_avsc(&registry, EVERYTHING).unwrap();
        let v2 = AvroSerde::<EverythingV2>::from_avsc(&registry, EVERYTHING_V2).unwrap();
        let ctx = SerdeContext::value("everything");
        for i in 0..4 {
            let old = sample(i);
            let bytes = v1.serialize(ctx, &old).unwrap();
            let new = v2.deserialize(ctx, &bytes).unwrap();
            assert_eq!(new.added, "none");
            assert_eq!(new.ratio, 0.5);
            assert_eq!(
                (&new.id, new.at, new.outcome, new.status, &new.body),
                (&old.id, old.at, old.outcome, old.status, &old.body)
            );
            assert_eq!(
                (
                    &new.counts,
                    &new.sorted,
                    &new.tags,
                    &new.inner,
                    &new.maybe_inner
                ),
                (
                    &old.counts,
                    &old.sorted,
                    &old.tags,
                    &old.inner,
                    &old.maybe_inner
                )
            );
        }
        assert!(!v2.core.decoders.read()[0].1.borrow_owner().direct);
        SchemaRegistry::drop_mock_scope("avro-tests-resolving");
    }

    #[test]
    fn same_schema_with_other_docs_takes_the_direct_path() {
        let registry = scope("avro-tests-docs");
        let plain = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
        let documented = r#"{"type":"record","name":"R","doc":"d","fields":[{"name":"a","type":"long","doc":"x"}]}"#;
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct R {
            a: i64,
        }
        let writer = AvroSerde::<R>::from_avsc(&registry, plain).unwrap();
        let reader = AvroSerde::<R>::from_avsc(&registry, documented).unwrap();
        let ctx = SerdeContext::value("r");
        let bytes = writer.serialize(ctx, &R { a: 7 }).unwrap();
        assert_eq!(reader.deserialize(ctx, &bytes).unwrap(), R { a: 7 });
        assert!(reader.core.decoders.read()[0].1.borrow_owner().direct);
        SchemaRegistry::drop_mock_scope("avro-tests-docs");
    }

    #[test]
    fn rust_names_other_than_the_record_names_fall_back_to_the_value_path() {
        let registry = scope("avro-tests-names");
        // `Renamed` and `Nested` are not the schema's `Everything` and `Inner`.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Nested {
            name: String,
            score: f64,
        }
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Renamed {
            id: String,
            at: i64,
            outcome: Outcome,
            status: Option<i32>,
            body: Option<String>,
            counts: HashMap<String, i64>,
            sorted: BTreeMap<String, Nested>,
            tags: Vec<String>,
            inner: Nested,
            maybe_inner: Option<Nested>,
            flag: bool,
            ratio: f32,
        }
        let serde = AvroSerde::<Renamed>::from_avsc(&registry, EVERYTHING).unwrap();
        let typed = AvroSerde::<Everything>::from_avsc(&registry, EVERYTHING).unwrap();
        let ctx = SerdeContext::value("renamed");
        for i in 0..4 {
            let bytes = typed.serialize(ctx, &sample(i)).unwrap();
            let read = serde.deserialize(ctx, &bytes).unwrap();
            assert_eq!(read.id, sample(i).id);
            assert_eq!(read.maybe_inner.is_some(), i % 2 == 1);
            // And it writes too (the serializer does not compare names).
            let again = serde.serialize(ctx, &read).unwrap();
            assert_eq!(typed.deserialize(ctx, &again).unwrap(), sample(i));
        }
        let decoders = serde.core.decoders.read();
        let schemas = decoders[0].1.borrow_owner();
        assert!(schemas.direct);
        assert!(!schemas.direct_works.load(Ordering::Relaxed));
        drop(decoders);
        // The direct path stays on for a type whose names match.
        let bytes = typed.serialize(ctx, &sample(1)).unwrap();
        typed.deserialize(ctx, &bytes).unwrap();
        let decoders = typed.core.decoders.read();
        assert!(
            decoders[0]
                .1
                .borrow_owner()
                .direct_works
                .load(Ordering::Relaxed)
        );
        drop(decoders);
        SchemaRegistry::drop_mock_scope("avro-tests-names");
    }

    #[test]
    fn ids_are_per_subject() {
        let registry = scope("avro-tests-subjects");
        let serde = AvroSerde::<String>::from_avsc(&registry, r#""string""#).unwrap();
        // Another schema first, so the two subjects' ids differ from the first registered.
        let long = AvroSerde::<i64>::from_avsc(&registry, r#""long""#).unwrap();
        long.serialize(SerdeContext::key("a"), &1).unwrap();
        let a = serde
            .serialize(SerdeContext::value("a"), &"x".into())
            .unwrap();
        let b = serde
            .serialize(SerdeContext::key("b"), &"x".into())
            .unwrap();
        assert_eq!(&a[..5], &[0, 0, 0, 0, 2]);
        assert_eq!(a, b);
        let mut subjects = futures::executor::block_on(registry.subjects()).unwrap();
        subjects.sort();
        assert_eq!(subjects, ["a-key", "a-value", "b-key"]);
        assert_eq!(serde.core.ids.read().len(), 2);
        SchemaRegistry::drop_mock_scope("avro-tests-subjects");
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        let registry = scope("avro-tests-garbage");
        let serde = AvroSerde::<Everything>::from_avsc(&registry, EVERYTHING).unwrap();
        let v2 = AvroSerde::<EverythingV2>::from_avsc(&registry, EVERYTHING_V2).unwrap();
        let ctx = SerdeContext::value("everything");
        let bytes = serde.serialize(ctx, &sample(1)).unwrap();
        for len in 0..bytes.len() {
            let err = serde.deserialize(ctx, &bytes[..len]).unwrap_err();
            match len {
                0..5 => assert!(matches!(err, SerdeError::Malformed { .. }), "{len}: {err}"),
                _ => assert!(matches!(err, SerdeError::Avro(_)), "{len}: {err}"),
            }
            assert!(v2.deserialize(ctx, &bytes[..len]).is_err());
        }
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = 1;
        assert!(matches!(
            serde.deserialize(ctx, &wrong_magic),
            Err(SerdeError::Malformed { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            serde.deserialize(ctx, &trailing),
            Err(SerdeError::Malformed { .. })
        ));
        // Unknown id in an in-process registry: not found, not "load it".
        assert!(matches!(
            serde.deserialize(ctx, &[0, 0, 0, 0, 99, 0]),
            Err(SerdeError::Registry(
                crate::registry::RegistryError::SchemaNotFound { id: 99 }
            ))
        ));
        // Pseudo-random garbage behind a valid header.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            let len = (seed % 64) as usize;
            let mut garbage = bytes[..5].to_vec();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                garbage.push(seed as u8);
            }
            let _ = serde.deserialize(ctx, &garbage);
            let _ = v2.deserialize(ctx, &garbage);
        }
        SchemaRegistry::drop_mock_scope("avro-tests-garbage");
    }

    #[test]
    fn a_value_that_does_not_fit_the_schema_leaves_the_buffer_alone() {
        let registry = scope("avro-tests-misfit");
        #[derive(Serialize, Deserialize)]
        struct Wrong {
            id: i32,
        }
        let serde = AvroSerde::<Wrong>::from_avsc(&registry, EVERYTHING).unwrap();
        let mut out = b"keep".to_vec();
        let err = serde
            .serialize_into(SerdeContext::value("w"), &Wrong { id: 1 }, &mut out)
            .unwrap_err();
        assert!(matches!(err, SerdeError::Avro(_)), "{err}");
        assert_eq!(out, b"keep");
        SchemaRegistry::drop_mock_scope("avro-tests-misfit");
    }

    #[test]
    fn serdes_are_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<S: Send + Sync + 'static>(_: &S) {}
        let registry = scope("avro-tests-send");
        let serde = AvroSerde::<String>::from_avsc(&registry, r#""string""#).unwrap();
        assert_send_sync(&serde);
        let clone = serde.clone();
        assert!(Arc::ptr_eq(&serde.core, &clone.core));
        SchemaRegistry::drop_mock_scope("avro-tests-send");
    }
}
