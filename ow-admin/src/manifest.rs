//! The topic manifest: one topic per line, `NAME PARTITIONS [KEY=VALUE ...]`, `#` comments.
//!
//! ```
//! use ow_admin::manifest::Manifest;
//!
//! let manifest = Manifest::parse(
//!     "# requests\now.player-requests 6 retention.ms=1209600000\nplayers 3 cleanup.policy=compact\n",
//! )
//! .unwrap();
//! let specs = manifest.specs(None);
//! assert_eq!(specs[0].name, "ow.player-requests");
//! assert_eq!(specs[0].partitions, 6);
//! assert!(specs[1].compacted);
//! // One partition count for every topic, as PARTITIONS=2 does.
//! assert!(manifest.specs(Some(2)).iter().all(|s| s.partitions == 2));
//! ```

use std::path::Path;
use std::time::Duration;

use ow_stream_core::admin::TopicSpec;

/// Why a manifest cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the topic manifest {path}: {source}")]
    Read {
        /// The manifest's path.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// A line is not `NAME PARTITIONS [KEY=VALUE ...]`.
    #[error("topic manifest line {line}: {reason}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One topic of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestTopic {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Its topic configs, in the manifest's order.
    pub configs: Vec<(String, String)>,
}

impl ManifestTopic {
    /// The value of config `key`, when the manifest sets it.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The topic to create, with `partitions` instead of the manifest's count when given.
    /// Every config goes to Kafka as it is; the ones the local backend knows
    /// (`cleanup.policy=compact`, a positive `retention.ms`, a non-negative `retention.bytes`)
    /// also set [`TopicSpec`]'s typed fields.
    pub fn spec(&self, partitions: Option<i32>) -> TopicSpec {
        let mut spec = TopicSpec::new(&self.name, partitions.unwrap_or(self.partitions));
        if self
            .config("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "compact"))
        {
            spec = spec.compacted();
        }
        if let Some(ms) = self
            .config("retention.ms")
            .and_then(|v| v.parse::<u64>().ok())
        {
            spec = spec.with_retention(Duration::from_millis(ms));
        }
        if let Some(bytes) = self
            .config("retention.bytes")
            .and_then(|v| v.parse::<u64>().ok())
        {
            spec = spec.with_retention_bytes(bytes);
        }
        self.configs
            .iter()
            .fold(spec, |spec, (k, v)| spec.with_config(k, v))
    }
}

/// The pipeline's topics (`infra/topics.txt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The topics, in the manifest's order.
    pub topics: Vec<ManifestTopic>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Manifest::parse(&text)
    }

    /// Parses a manifest's text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut topics: Vec<ManifestTopic> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let err = |reason: String| ManifestError::Line {
                line: line_no,
                reason,
            };
            let content = line.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let name = words.next().unwrap_or_default();
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                || name.len() > 249
            {
                return Err(err(format!("{name:?} is not a Kafka topic name")));
            }
            let partitions = words
                .next()
                .ok_or_else(|| err(format!("topic {name} has no partition count")))?;
            let partitions: i32 = partitions
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| err(format!("{partitions:?} is not a partition count")))?;
            let mut configs: Vec<(String, String)> = Vec::new();
            for word in words {
                let Some((k, v)) = word.split_once('=') else {
                    return Err(err(format!("{word:?} is not KEY=VALUE")));
                };
                if k.is_empty() || v.is_empty() {
                    return Err(err(format!("{word:?} is not KEY=VALUE")));
                }
                if configs.iter().any(|(key, _)| key == k) {
                    return Err(err(format!("{k} is set twice for {name}")));
                }
                configs.push((k.to_owned(), v.to_owned()));
            }
            if topics.iter().any(|t| t.name == name) {
                return Err(err(format!("topic {name} is listed twice")));
            }
            topics.push(ManifestTopic {
                name: name.to_owned(),
                partitions,
                configs,
            });
        }
        Ok(Manifest { topics })
    }

    /// The same topics with `prefix` before every name (`--topic-prefix`).
    pub fn with_prefix(mut self, prefix: &str) -> Manifest {
        for topic in &mut self.topics {
            topic.name = format!("{prefix}{}", topic.name);
        }
        self
    }

    /// The topics to create (see [`ManifestTopic::spec`]).
    pub fn specs(&self, partitions: Option<i32>) -> Vec<TopicSpec> {
        self.topics.iter().map(|t| t.spec(partitions)).collect()
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&ManifestTopic> {
        self.topics.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_say_where_and_why() {
        for (text, line, says) in [
            ("a 1\nb\n", 2, "no partition count"),
            ("a zero\n", 1, "not a partition count"),
            ("a 0\n", 1, "not a partition count"),
            ("a/b 1\n", 1, "not a Kafka topic name"),
            ("a 1 retention.ms\n", 1, "not KEY=VALUE"),
            ("a 1 =1\n", 1, "not KEY=VALUE"),
            ("a 1 x=1 x=2\n", 1, "set twice"),
            ("a 1\n# c\na 2\n", 3, "listed twice"),
        ] {
            match Manifest::parse(text) {
                Err(ManifestError::Line { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(reason.contains(says), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn configs_reach_the_spec() {
        let m =
            Manifest::parse("t 3 cleanup.policy=delete retention.ms=-1 max.message.bytes=9 # x")
                .expect("a valid manifest");
        let spec = m.specs(None).remove(0);
        assert!(!spec.compacted);
        assert_eq!(
            spec.retention, None,
            "-1 is Kafka's 'forever', not a duration"
        );
        assert_eq!(spec.configs.len(), 3);
        assert_eq!(
            m.topic("t").and_then(|t| t.config("max.message.bytes")),
            Some("9")
        );
    }

    #[test]
    fn the_repository_manifest_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/topics.txt");
        let m = Manifest::read(&path).expect("infra/topics.txt");
        assert_eq!(m.topics.len(), 6);
        let counts: Vec<i32> = m.topics.iter().map(|t| t.partitions).collect();
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
        for t in &m.topics {
            assert!(t.config("cleanup.policy").is_some(), "{}", t.name);
            assert!(t.config("retention.ms").is_some(), "{}", t.name);
        }
    }
}
