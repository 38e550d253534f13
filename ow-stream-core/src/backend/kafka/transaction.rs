//! Exactly-once on Kafka (Kafka Streams' `exactly_once_v2`): one transactional producer per
//! stream thread.
//!
//! * **Identity.** The producer's `transactional.id` is
//!   `<application_id>-<instance>-thread-<n>` ([`transactional_id`]): `n` is the stream
//!   thread's index (a replacement thread reuses it) and `instance` is a random id the instance
//!   keeps in its state directory, `<state_dir>/<application_id>/kafka-instance-id`
//!   ([`instance_id`]). So the id is stable across restarts of one instance and distinct
//!   between instances. Stability is not what fences zombies (v2 fences them with the
//!   consumer's group metadata, below); it lets a restarted thread's `init_transactions` abort
//!   at once whatever its previous run left open, instead of leaving it to the broker's
//!   `transaction.timeout.ms`.
//! * **Flow.** `init_transactions` when the thread starts; `begin_transaction` before the first
//!   record after a commit; every sink, changelog and repartition record (and the changelog
//!   commit markers) is sent inside it; at a commit
//!   ([`TaskManager::commit`](crate::runtime::manager::TaskManager::commit) documents the
//!   order) `send_offsets_to_transaction` with the input offsets and the **consumer's group
//!   metadata** (generation and member id: a thread that lost its partitions in a rebalance
//!   has its offsets refused, and its transaction can only abort), then `commit_transaction`.
//!   The consumer commits no offsets of its own, and the stores' local checkpoints are written
//!   after the transaction commits.
//! * **Errors.** A failed step the producer can recover from (an abortable or retriable
//!   transaction error, a record not delivered) aborts the transaction, drops the thread's
//!   tasks without committing and re-creates them from their stores and changelogs at the
//!   last committed offsets, which the consumer seeks back to. A fatal error (the producer was
//!   fenced: `PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH`, ...) ends the stream thread with that
//!   error, and the application's
//!   [`ThreadFailurePolicy`](crate::config::ThreadFailurePolicy) decides what follows.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;

use crate::config::StreamsConfig;
use crate::error::{Error, KafkaFailure};

/// How long `init_transactions`, `commit_transaction` and `abort_transaction` may take.
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The broker-side `transaction.timeout.ms` the library sets unless it is passed through:
/// Kafka Streams' 10 s, or three commit intervals when that is longer.
pub(crate) fn transaction_timeout_ms(config: &StreamsConfig) -> u128 {
    (config.commit_interval.as_millis() * 3).max(10_000)
}

/// The `transactional.id` of stream thread `thread` of instance `instance`.
pub(crate) fn transactional_id(config: &StreamsConfig, instance: &str, thread: usize) -> String {
    format!("{}-{instance}-thread-{thread}", config.application_id)
}

/// The name of the file, in `<state_dir>/<application_id>/`, that holds the instance id.
const INSTANCE_ID_FILE: &str = "kafka-instance-id";

/// This instance's id: read from `<state_dir>/<application_id>/kafka-instance-id`, or drawn
/// at random and written there the first time.
pub(crate) fn instance_id(config: &StreamsConfig) -> Result<String, Error> {
    let dir = config.state_dir.join(&config.application_id);
    let path = dir.join(INSTANCE_ID_FILE);
    if let Some(id) = read_instance_id(&path)? {
        return Ok(id);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let id = format!("{:016x}", rand::random::<u64>());
    // Written aside and renamed: a crash never leaves a half-written id behind.
    let tmp = dir.join(format!("{INSTANCE_ID_FILE}.tmp"));
    std::fs::write(&tmp, &id).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    tracing::info!(instance = %id, path = %path.display(), "new Kafka instance id");
    Ok(id)
}

fn read_instance_id(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let id = s.trim();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(Some(id.to_string()))
            } else {
                tracing::warn!(path = %path.display(), "ignoring an invalid instance id file");
                Ok(None)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The group metadata of the stream thread's consumer, as of its last commit or rebalance:
/// what `send_offsets_to_transaction` sends so that the group coordinator can refuse the
/// offsets of a member that is no longer part of the group.
#[derive(Clone, Default)]
pub(crate) struct GroupMetadata(Arc<Mutex<Option<ConsumerGroupMetadata>>>);

impl GroupMetadata {
    pub(crate) fn set(&self, metadata: Option<ConsumerGroupMetadata>) {
        *self.0.lock() = metadata;
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(Option<&ConsumerGroupMetadata>) -> T) -> T {
        f(self.0.lock().as_ref())
    }
}

/// A failed transactional call as a library error: retriable unless librdkafka says the
/// producer cannot go on (fatal, fenced).
pub(crate) fn transaction_error(operation: &'static str, e: KafkaError) -> Error {
    let retriable = match &e {
        KafkaError::Transaction(t) => !t.is_fatal(),
        _ => false,
    };
    Error::Kafka {
        operation,
        code: e.rdkafka_error_code(),
        retriable,
        source: Box::new(e),
    }
}

/// Whether a failed transactional call may be retried as is (librdkafka: "retriable", and
/// neither fatal nor needing an abort first).
pub(crate) fn may_retry(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(t) => t.is_retriable() && !t.is_fatal() && !t.txn_requires_abort(),
        _ => false,
    }
}

/// The producer's fatal error, if it has one, as a library error.
pub(crate) fn fatal_error(
    operation: &'static str,
    fatal: Option<(rdkafka::error::RDKafkaErrorCode, String)>,
) -> Option<Error> {
    fatal.map(|(code, message)| Error::Kafka {
        operation,
        code: Some(code),
        retriable: false,
        source: Box::new(KafkaFailure(format!(
            "the transactional producer failed fatally: {message} ({code:?})"
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    #[test]
    fn the_instance_id_is_kept_in_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = StreamsConfig::new("app", Backend::kafka("h:1")).with_state_dir(dir.path());
        let first = instance_id(&config).unwrap();
        assert_eq!(instance_id(&config).unwrap(), first);
        assert_eq!(
            transactional_id(&config, &first, 2),
            format!("app-{first}-thread-2")
        );
        let other = tempfile::tempdir().unwrap();
        let elsewhere = config.clone().with_state_dir(other.path());
        assert_ne!(instance_id(&elsewhere).unwrap(), first);
    }

    #[test]
    fn the_transaction_timeout_outlasts_the_commit_interval() {
        let config = StreamsConfig::new("app", Backend::kafka("h:1"));
        assert_eq!(transaction_timeout_ms(&config), 10_000);
        let slow = config.with_commit_interval(Duration::from_secs(30));
        assert_eq!(transaction_timeout_ms(&slow), 90_000);
    }
}
