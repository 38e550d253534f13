//! Schema registries for ow-stream: where Avro schemas get their ids.
//!
//! Records of ow-stream topics are Avro in Confluent's wire format ([`wire`]): a magic byte,
//! the 4-byte id of the writer's schema, then the Avro binary. The ids come from a schema
//! registry. This crate is that registry, for both ends of the wire:
//!
//! - the **client**: a [`SchemaRegistry`] handle that the serdes of `ow-stream-core` (which
//!   re-exports this crate as `ow_stream_core::registry`) register and fetch schemas through;
//! - the **registry itself**: a store with Confluent's rules (subjects, versions, global ids,
//!   [compatibility levels](CompatibilityLevel)), in memory or persisted in a directory;
//! - a **Confluent-compatible REST server** over any in-process registry ([`server`], cargo
//!   feature `server`), and the `ow-registry` binary that runs one, so a deployment of several
//!   processes has a registry without Confluent's.
//!
//! # Three kinds of registry
//!
//! A [`SchemaRegistry`] is a cheap-to-clone handle on one of three kinds of registry, chosen by
//! URL:
//!
//! | URL / constructor | registry | used by |
//! |---|---|---|
//! | `mock://<scope>`, [`SchemaRegistry::mock`] | in-process, shared by every handle of the process with the same scope | tests (Confluent's `mock://` convention) |
//! | [`SchemaRegistry::open_dir`] | in-process, persisted in a directory | the embedded stack (its state directory), `ow-registry --state-dir` |
//! | `http://…`, `https://…` (a comma-separated list is tried in order) | a Confluent-compatible Schema Registry (Confluent's, or `ow-registry`) | deployments of several processes |
//!
//! All of them speak Confluent's model: a schema registered under a *subject*
//! (`<topic>-key` / `<topic>-value`) becomes the subject's next *version* and gets a global *id*;
//! registering the same schema again returns the same id (schemas are identified by their
//! [`registry_form`]); a schema that does not pass the subject's [`CompatibilityLevel`]
//! (`BACKWARD` unless configured) is refused with [`RegistryError::Incompatible`].
//!
//! In-process registries answer at once, so they also have synchronous entry points
//! ([`SchemaRegistry::register_now`], [`SchemaRegistry::schema_now`]); this is why
//! `ow-stream-core`'s `AvroSerde`s over them never need to be prepared ahead of time.
//!
//! ```
//! use ow_stream_registry::{RegistryError, SchemaRegistry};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let registry = SchemaRegistry::from_url("mock://registry-doc").unwrap();
//! let v1 = apache_avro::Schema::parse_str(
//!     r#"{"type":"record","name":"Player","fields":[{"name":"id","type":"string"}]}"#,
//! ).unwrap();
//! let id = registry.register("players-value", &v1).await.unwrap();
//! assert_eq!(registry.register("players-value", &v1).await.unwrap(), id);
//! assert_eq!(registry.latest("players-value").await.unwrap().id(), id);
//!
//! // A new field without a default cannot read the data already written: refused.
//! let v2 = apache_avro::Schema::parse_str(
//!     r#"{"type":"record","name":"Player","fields":[
//!         {"name":"id","type":"string"},{"name":"level","type":"int"}]}"#,
//! ).unwrap();
//! let err = registry.register("players-value", &v2).await.unwrap_err();
//! assert!(matches!(err, RegistryError::Incompatible { subject, .. } if subject == "players-value"));
//! # });
//! ```
//!
//! # The server and the `ow-registry` binary
//!
//! [`server::RegistryServer`] serves any in-process registry over HTTP with the endpoints
//! Confluent's clients and tools call (`POST /subjects/{subject}/versions`,
//! `GET /schemas/ids/{id}`, `GET /subjects`, compatibility checks, levels…; see [`server`]).
//! The `ow-registry` binary runs it over a directory-persisted registry:
//!
//! ```sh
//! ow-registry --listen 127.0.0.1:8081 --state-dir /var/lib/ow-registry
//! # then, in every process: --schema-registry-url http://127.0.0.1:8081
//! ```
//!
//! Schemas survive restarts (ids stay valid); `ow-registry --help` lists the flags, each with
//! an environment variable (`OW_LISTEN`, `OW_STATE_DIR`, `RUST_LOG`).
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `server` | yes | the [`server`] module (axum, tokio) and the `ow-registry` binary |
//!
//! Libraries that only need the client (as `ow-stream-core` does) depend on this crate with
//! `default-features = false`.

mod compat;
mod error;
mod http;
mod json;
mod registered;
#[cfg(feature = "server")]
pub mod server;
mod store;
pub mod wire;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;

pub use compat::CompatibilityLevel;
pub use error::RegistryError;
pub use registered::{RegisteredSchema, SubjectVersion, registry_form, schema_name};

use http::HttpRegistry;
use store::{Store, VersionSpec};
use wire::split_frame;

/// A handle on a schema registry; clones share the registry and its caches.
///
/// See the [module documentation](self) for the kinds of registry and an example.
#[derive(Clone)]
pub struct SchemaRegistry {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(Arc<Store>),
    Http(Arc<HttpRegistry>),
}

impl SchemaRegistry {
    /// A registry by URL: `mock://<scope>` (in-process, shared by scope), or one or more
    /// comma-separated `http://` / `https://` base URLs of a Confluent-compatible registry.
    ///
    /// ```
    /// use ow_stream_registry::{RegistryError, SchemaRegistry};
    ///
    /// let a = SchemaRegistry::from_url("mock://from-url-doc").unwrap();
    /// assert!(a.is_in_process());
    /// let b = SchemaRegistry::from_url("http://registry-1:8081,http://registry-2:8081").unwrap();
    /// assert_eq!(b.location(), "http://registry-1:8081,http://registry-2:8081");
    /// assert!(matches!(
    ///     SchemaRegistry::from_url("ftp://x"),
    ///     Err(RegistryError::InvalidUrl { .. })
    /// ));
    /// ```
    pub fn from_url(url: &str) -> Result<Self, RegistryError> {
        let trimmed = url.trim();
        if let Some(scope) = trimmed.strip_prefix("mock://") {
            return Ok(SchemaRegistry::mock(scope));
        }
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            return Ok(SchemaRegistry {
                backend: Backend::Http(Arc::new(HttpRegistry::new(trimmed)?)),
            });
        }
        Err(RegistryError::InvalidUrl {
            url: url.to_string(),
            reason: "expected mock://<scope>, http://… or https://…".to_string(),
        })
    }

    /// The in-process registry of `scope`, shared by every handle in this process with the same
    /// scope (also reached as `mock://<scope>`) until [`drop_mock_scope`](Self::drop_mock_scope).
    pub fn mock(scope: &str) -> Self {
        SchemaRegistry {
            backend: Backend::Local(store::mock_scope(scope)),
        }
    }

    /// Forgets the schemas of a `mock://` scope: the next handle on it starts empty. Handles
    /// already open keep the old registry.
    pub fn drop_mock_scope(scope: &str) {
        store::drop_mock_scope(scope);
    }

    /// An in-process registry whose schemas are persisted in `dir` (created if missing), so ids
    /// stay valid across restarts. Every change is written atomically before it is visible.
    /// Handles opened on the same directory in one process share the registry; another process
    /// opening it gets [`RegistryError::Locked`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self, RegistryError> {
        Ok(SchemaRegistry {
            backend: Backend::Local(store::open_dir(dir.as_ref())?),
        })
    }

    /// Where the registry is: `mock://<scope>`, its directory, or its URL(s).
    pub fn location(&self) -> &str {
        match &self.backend {
            Backend::Local(store) => store.location(),
            Backend::Http(http) => http.url(),
        }
    }

    /// Whether the registry lives in this process (never waits on a network).
    pub fn is_in_process(&self) -> bool {
        matches!(self.backend, Backend::Local(_))
    }

    /// Registers `schema` under `subject` and returns its id; the same schema (ignoring
    /// whitespace, key order and docs) gets the same id. Refused with
    /// [`RegistryError::Incompatible`] if it does not pass the subject's compatibility level
    /// against its earlier versions.
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.register(subject, schema),
            Backend::Http(http) => http.register(subject, schema).await,
        }
    }

    /// [`register`](Self::register) without waiting: `None` when the registry is remote and
    /// the answer needs the network.
    pub fn register_now(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Option<Result<u32, RegistryError>> {
        match &self.backend {
            Backend::Local(store) => Some(store.register(subject, schema)),
            Backend::Http(_) => None,
        }
    }

    /// The schema with this id, fetched once and cached (ids are immutable).
    pub async fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.schema(id).ok_or(RegistryError::SchemaNotFound { id }),
            Backend::Http(http) => http.schema(id).await,
        }
    }

    /// [`schema`](Self::schema) without waiting: `None` when the schema is not cached and the
    /// registry is remote.
    pub fn schema_now(&self, id: u32) -> Option<Result<Arc<RegisteredSchema>, RegistryError>> {
        match &self.backend {
            Backend::Local(store) => {
                Some(store.schema(id).ok_or(RegistryError::SchemaNotFound { id }))
            }
            Backend::Http(http) => http.cached(id).map(Ok),
        }
    }

    /// The schema with this id if it is known without asking a remote registry.
    pub fn cached(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        match &self.backend {
            Backend::Local(store) => store.schema(id),
            Backend::Http(http) => http.cached(id),
        }
    }

    /// The latest version of `subject`.
    pub async fn latest(&self, subject: &str) -> Result<SubjectVersion, RegistryError> {
        self.version_spec(subject, VersionSpec::Latest).await
    }

    /// Version `version` (from 1) of `subject`.
    pub async fn version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<SubjectVersion, RegistryError> {
        self.version_spec(subject, VersionSpec::Number(version))
            .await
    }

    async fn version_spec(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<SubjectVersion, RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.version(subject, spec),
            Backend::Http(http) => http.version(subject, spec).await,
        }
    }

    /// The versions of `subject`, oldest first.
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.versions(subject),
            Backend::Http(http) => http.versions(subject).await,
        }
    }

    /// Every subject with at least one version.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        match &self.backend {
            Backend::Local(store) => Ok(store.subjects()),
            Backend::Http(http) => http.subjects().await,
        }
    }

    /// The version of `subject` that is `schema`, or `None` if the subject exists but does not
    /// have it ([`RegistryError::SubjectNotFound`] if it does not exist).
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.lookup(subject, schema),
            Backend::Http(http) => http.lookup(subject, schema).await,
        }
    }

    /// Whether [`register`](Self::register) would accept `schema` under `subject` as far as
    /// compatibility goes: `Ok` or [`RegistryError::Incompatible`]. A subject without versions
    /// accepts anything.
    pub async fn check_compatibility(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<(), RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.check(subject, schema),
            Backend::Http(http) => http.check(subject, schema).await,
        }
    }

    /// The compatibility level set for `subject`, or the global level for `None`. A subject
    /// without its own level gives `Ok(None)` (it follows the global level).
    ///
    /// Only in-process registries support this; an HTTP registry gives
    /// [`RegistryError::Unsupported`].
    pub async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        match &self.backend {
            Backend::Local(store) => Ok(store.level(subject)),
            Backend::Http(http) => Err(RegistryError::Unsupported {
                url: http.url().to_string(),
                operation: "reading compatibility levels",
            }),
        }
    }

    /// Sets the compatibility level of `subject`, or the global level for `None`.
    ///
    /// Only in-process registries support this; an HTTP registry gives
    /// [`RegistryError::Unsupported`] (set levels with the registry's own tools).
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        match &self.backend {
            Backend::Local(store) => store.set_level(subject, level),
            Backend::Http(http) => Err(RegistryError::Unsupported {
                url: http.url().to_string(),
                operation: "setting compatibility levels",
            }),
        }
    }

    /// Decodes a Confluent-framed Avro record (magic byte `0`, 4-byte big-endian schema id,
    /// Avro binary) with its writer schema, without any Rust type, into JSON: the form the
    /// dashboard's topic browser shows. Unions appear as their value, enums as their symbol.
    ///
    /// ```
    /// use ow_stream_registry::SchemaRegistry;
    /// use ow_stream_registry::wire::MAGIC_BYTE;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let registry = SchemaRegistry::mock("decode-json-doc");
    /// let id = registry.register("t-value", &apache_avro::Schema::String).await.unwrap();
    /// let mut bytes = vec![MAGIC_BYTE];
    /// bytes.extend_from_slice(&id.to_be_bytes());
    /// bytes.extend_from_slice(&apache_avro::to_avro_datum(
    ///     &apache_avro::Schema::String, apache_avro::types::Value::String("hi".into()),
    /// ).unwrap());
    /// assert_eq!(registry.decode_json(&bytes).await.unwrap(), serde_json::json!("hi"));
    /// # });
    /// ```
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<serde_json::Value, RegistryError> {
        let (id, mut payload) = split_frame(bytes).map_err(|e| RegistryError::Malformed {
            reason: e.to_string(),
        })?;
        let writer = self.schema(id).await?;
        let malformed = |e: apache_avro::Error| RegistryError::Malformed {
            reason: format!("schema id {id}: {}", error::lowercase_first(&e.to_string())),
        };
        let value = GenericDatumReader::builder(writer.schema())
            .build()
            .map_err(malformed)?
            .read_value(&mut payload)
            .map_err(malformed)?;
        if !payload.is_empty() {
            return Err(RegistryError::Malformed {
                reason: format!(
                    "{} bytes left over after the record of schema id {id}",
                    payload.len()
                ),
            });
        }
        Ok(json::to_json(value))
    }
}

impl fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SchemaRegistry")
            .field(&self.location())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handles_by_url_share_mock_scopes() {
        let a = SchemaRegistry::from_url("mock://mod-tests-share").unwrap();
        let b = SchemaRegistry::mock("mod-tests-share");
        let c = SchemaRegistry::mock("mod-tests-other");
        let id = a.register("t-value", &Schema::String).await.unwrap();
        assert_eq!(b.schema(id).await.unwrap().schema(), &Schema::String);
        assert_eq!(b.subjects().await.unwrap(), ["t-value"]);
        assert!(matches!(
            c.schema(id).await,
            Err(RegistryError::SchemaNotFound { id: i }) if i == id
        ));
        assert!(c.schema_now(id).unwrap().is_err());
        assert!(c.cached(id).is_none());
        assert_eq!(
            format!("{a:?}"),
            "SchemaRegistry(\"mock://mod-tests-share\")"
        );
        SchemaRegistry::drop_mock_scope("mod-tests-share");
        SchemaRegistry::drop_mock_scope("mod-tests-other");
    }

    #[tokio::test]
    async fn decode_json_errors() {
        let registry = SchemaRegistry::mock("mod-tests-json");
        let id = registry.register("t-value", &Schema::Long).await.unwrap();
        let mut framed = vec![0];
        framed.extend_from_slice(&id.to_be_bytes());
        framed.push(0x54); // zig-zag 42
        assert_eq!(
            registry.decode_json(&framed).await.unwrap(),
            serde_json::json!(42)
        );
        framed.push(0);
        assert!(matches!(
            registry.decode_json(&framed).await,
            Err(RegistryError::Malformed { .. })
        ));
        assert!(matches!(
            registry.decode_json(&[0, 0, 0, 0, 99, 1]).await,
            Err(RegistryError::SchemaNotFound { id: 99 })
        ));
        assert!(matches!(
            registry.decode_json(&[0, 0, 0, 0, id as u8, 0x80]).await,
            Err(RegistryError::Malformed { .. })
        ));
        SchemaRegistry::drop_mock_scope("mod-tests-json");
    }

    #[test]
    fn invalid_urls() {
        for url in ["", "kafka://x", "localhost:8081"] {
            assert!(
                matches!(
                    SchemaRegistry::from_url(url),
                    Err(RegistryError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
    }
}
