//! Creating the manifest's topics and checking that they are there.

use std::time::{Duration, Instant};

use ow_stream_core::admin::{Admin, TopicSpec};

use crate::manifest::Manifest;

/// Why the topics are not ready.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The broker did not answer a metadata request in time.
    #[error("the broker did not answer within {waited:?}: {source}")]
    Unreachable {
        /// How long it was given.
        waited: Duration,
        /// The last failure.
        source: ow_stream_core::Error,
    },
    /// A topic is still missing after it was created (the broker refused it, or cannot
    /// create topics).
    #[error("topic {topic} does not exist after creating it (see the broker's log)")]
    Missing {
        /// The topic.
        topic: String,
    },
    /// A topic exists with another partition count than the manifest's.
    #[error("topic {topic} has {actual} partitions, the manifest wants {wanted}")]
    Partitions {
        /// The topic.
        topic: String,
        /// The manifest's count (or `--partitions`).
        wanted: i32,
        /// The broker's.
        actual: i32,
    },
    /// A request to the broker failed.
    #[error(transparent)]
    Streams(#[from] ow_stream_core::Error),
}

/// One topic as the broker has it, after [`ensure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Whether it existed before (`false`: created now).
    pub existed: bool,
    /// The configs it was created with (empty when it existed).
    pub configs: Vec<(String, String)>,
}

/// Lists topics until the broker answers, for at most `wait`.
pub async fn wait_until_answering(admin: &Admin, wait: Duration) -> Result<(), AdminError> {
    let deadline = Instant::now() + wait;
    loop {
        match admin.list_topics().await {
            Ok(_) => return Ok(()),
            Err(source) if Instant::now() >= deadline => {
                return Err(AdminError::Unreachable {
                    waited: wait,
                    source,
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "the broker does not answer yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Creates every topic of `manifest` that does not exist (with `partitions` partitions each
/// when given, else the manifest's), then checks that each exists with that count.
pub async fn ensure(
    admin: &Admin,
    manifest: &Manifest,
    partitions: Option<i32>,
) -> Result<Vec<TopicState>, AdminError> {
    let specs: Vec<TopicSpec> = manifest.specs(partitions);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let before = counts(admin, &names).await?;
    admin.create_topics(&specs).await?;
    let after = counts(admin, &names).await?;
    let mut out = Vec::new();
    for spec in specs {
        let Some(actual) = after.iter().find(|(n, _)| *n == spec.name).map(|(_, c)| *c) else {
            return Err(AdminError::Missing { topic: spec.name });
        };
        if actual != spec.partitions {
            return Err(AdminError::Partitions {
                topic: spec.name,
                wanted: spec.partitions,
                actual,
            });
        }
        let existed = before.iter().any(|(n, _)| *n == spec.name);
        out.push(TopicState {
            configs: if existed { Vec::new() } else { spec.configs },
            name: spec.name,
            partitions: actual,
            existed,
        });
    }
    Ok(out)
}

/// The partition counts of those of `names` that exist.
async fn counts(admin: &Admin, names: &[&str]) -> Result<Vec<(String, i32)>, AdminError> {
    Ok(admin
        .topic_offsets(names)
        .await?
        .into_iter()
        .filter(|t| !t.partitions.is_empty())
        .map(|t| {
            let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
            (t.name, count)
        })
        .collect())
}
