//! The errors of the schema registry.

use std::error::Error as StdError;
use std::path::PathBuf;

/// Why the schema registry refused or failed a request.
///
/// The variants that mirror Confluent's error codes (subject, version or schema not found, an
/// incompatible or invalid schema, an invalid compatibility level) are the same whichever
/// registry answered: an HTTP registry's error bodies are mapped onto them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The subject has no registered schema (Confluent error 40401).
    #[error("subject {subject} not found")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but has no such version (Confluent error 40402).
    #[error("subject {subject} has no version {version}")]
    VersionNotFound {
        /// The subject asked for.
        subject: String,
        /// The version asked for.
        version: u32,
    },
    /// No schema has this id (Confluent error 40403).
    #[error("schema id {id} not found")]
    SchemaNotFound {
        /// The id asked for.
        id: u32,
    },
    /// The schema is not compatible with the earlier versions of the subject under the
    /// subject's compatibility level (Confluent error 409).
    #[error("schema is incompatible with subject {subject}: {reason}")]
    Incompatible {
        /// The subject the schema was meant for.
        subject: String,
        /// What does not resolve, e.g. `field score is new in the reader schema and has no
        /// default`.
        reason: String,
    },
    /// The schema text is not a valid Avro schema, or uses something this registry does not
    /// support (Confluent error 42201).
    #[error("invalid schema: {reason}")]
    InvalidSchema {
        /// What is wrong with it.
        reason: String,
    },
    /// Not one of `BACKWARD`, `BACKWARD_TRANSITIVE`, `FORWARD`, `FORWARD_TRANSITIVE`, `FULL`,
    /// `FULL_TRANSITIVE`, `NONE` (Confluent error 42203).
    #[error("invalid compatibility level {level:?}")]
    InvalidCompatibility {
        /// The level given.
        level: String,
    },
    /// Bytes handed to [`SchemaRegistry::decode_json`](super::SchemaRegistry::decode_json)
    /// are not Confluent-framed Avro of their writer schema.
    #[error("malformed confluent avro data: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The HTTP registry answered with an error this client has no better variant for.
    #[error("schema registry at {url} answered {status} (error code {code}): {message}")]
    Http {
        /// The registry URL(s).
        url: String,
        /// HTTP status.
        status: u16,
        /// Confluent error code from the body (`0` when the body had none).
        code: u32,
        /// Message from the body.
        message: String,
    },
    /// The HTTP registry could not be reached (connection refused, timeout, 502/503, ...).
    #[error("cannot reach schema registry at {url}")]
    Unreachable {
        /// The registry URL(s).
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// The HTTP registry answered something that is not a schema registry answer.
    #[error("unexpected answer from schema registry at {url}: {reason}")]
    BadResponse {
        /// The registry URL(s).
        url: String,
        /// What was unexpected.
        reason: String,
    },
    /// The registry URL is not `mock://<scope>`, `http://…` or `https://…`.
    #[error("invalid schema registry url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This kind of registry cannot do the operation (for example setting compatibility levels
    /// through the HTTP client).
    #[error("schema registry at {url} does not support {operation}")]
    Unsupported {
        /// The registry location.
        url: String,
        /// What was asked.
        operation: &'static str,
    },
    /// Reading or writing a directory-backed registry failed.
    #[error("schema registry file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file of a directory-backed registry exists but cannot be understood.
    #[error("schema registry file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process has the directory-backed registry open.
    #[error("schema registry directory {path} is in use by another process")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
}

impl RegistryError {
    /// Whether the error says the registry is away for now rather than that the request is
    /// wrong: it could not be reached ([`RegistryError::Unreachable`]), or it answered 408,
    /// 429 or a 5xx. Asking again later may work; stream threads wait for it (see
    /// `StreamsConfig::schema_registry_wait` in ow-stream-core) instead of treating the record
    /// as bad.
    ///
    /// ```
    /// use ow_stream_registry::RegistryError;
    ///
    /// assert!(!RegistryError::SchemaNotFound { id: 7 }.is_transient());
    /// let busy = RegistryError::Http {
    ///     url: "http://registry:8081".into(),
    ///     status: 503,
    ///     code: 50003,
    ///     message: "forwarding failed".into(),
    /// };
    /// assert!(busy.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Http { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_schema(e: impl std::fmt::Display) -> Self {
        RegistryError::InvalidSchema {
            reason: lowercase_first(&e.to_string()),
        }
    }
}

/// `"Failed to parse"` → `"failed to parse"` (apache-avro's messages start with a capital).
pub(crate) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() && !chars.clone().next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_string(),
    }
}
