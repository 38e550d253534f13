//! Schema registry clients: Confluent-compatible over HTTP, in-process (`mock://<scope>`), and
//! persisted in a directory for the embedded stack. (Being written: see the registry work.)

/// Why the schema registry refused or failed a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Placeholder until the registry lands.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}
