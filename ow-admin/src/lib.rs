//! Administration of an ow-stream deployment.
//!
//! The pipeline's topics are listed once, in the manifest `infra/topics.txt` ([`manifest`]):
//! docker compose's `create-topics.sh` feeds it to `kafka-topics.sh`, and `infra/local-broker.sh`
//! to `ow-admin create-topics`, which speaks the Kafka protocol through the library's admin
//! client (so it works on brokers without Kafka's scripts, tansu among them, and on hosted
//! Kafka with the TLS/SASL settings of `--kafka-config`). [`topics::ensure`] is that command:
//! wait until the broker answers, create what is missing, then check that every topic exists
//! with its partition count.

pub mod manifest;
pub mod topics;

pub use manifest::{Manifest, ManifestError, ManifestTopic};
pub use topics::{AdminError, TopicState, ensure, wait_until_answering};
