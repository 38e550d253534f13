//! Topics: name rules, persisted configuration, partitions.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::config::{CleanupPolicy, TopicConfig};
use crate::error::{IoContext, LogError};
use crate::partition::Partition;

/// The topic configuration file inside a topic directory.
pub(crate) const CONFIG_FILE: &str = "topic.conf";
const CONFIG_MAGIC: &str = "# ow-stream-log topic v1";

#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) config: Arc<TopicConfig>,
    pub(crate) partitions: Vec<Arc<Partition>>,
    /// Round-robin counter for keyless records.
    pub(crate) next_keyless: AtomicU32,
}

/// Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic`).
pub(crate) fn validate_name(name: &str) -> Result<(), LogError> {
    let fail = |reason| {
        Err(LogError::InvalidTopicName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("the name is empty");
    }
    if name == "." || name == ".." {
        return fail("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return fail("the name is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return fail("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "none".to_owned(), |d| d.as_millis().to_string())
}

pub(crate) fn render_config(c: &TopicConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{CONFIG_MAGIC}");
    let _ = writeln!(s, "partitions={}", c.partitions);
    let _ = writeln!(s, "cleanup.policy={}", c.cleanup.as_str());
    let _ = writeln!(s, "retention.ms={}", opt_ms(c.retention));
    let _ = writeln!(
        s,
        "retention.bytes={}",
        c.retention_bytes
            .map_or_else(|| "none".to_owned(), |b| b.to_string())
    );
    let _ = writeln!(s, "segment.bytes={}", c.segment_bytes);
    let _ = writeln!(s, "segment.ms={}", opt_ms(c.segment_time));
    let _ = writeln!(s, "delete.retention.ms={}", c.delete_retention.as_millis());
    let _ = writeln!(s, "min.cleanable.dirty.ratio={}", c.min_cleanable_ratio);
    s
}

pub(crate) fn parse_config(path: &Path, text: &str) -> Result<TopicConfig, LogError> {
    let bad = |line: usize, reason: String| LogError::corrupt(path, line as u64, reason);
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if l == CONFIG_MAGIC => {}
        _ => return Err(bad(0, "missing topic config header".to_owned())),
    }
    let mut c = TopicConfig::new(0);
    let mut partitions = None;
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(n, format!("not key=value: {line:?}")));
        };
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| bad(n, format!("{k}: not a number: {v:?}")))
        };
        let opt_num = |v: &str| {
            if v == "none" {
                Ok(None)
            } else {
                num(v).map(Some)
            }
        };
        match k {
            "partitions" => {
                partitions = Some(
                    v.parse::<i32>()
                        .map_err(|_| bad(n, format!("partitions: not a number: {v:?}")))?,
                );
            }
            "cleanup.policy" => {
                c.cleanup = CleanupPolicy::parse(v)
                    .ok_or_else(|| bad(n, format!("unknown cleanup.policy {v:?}")))?;
            }
            "retention.ms" => c.retention = opt_num(v)?.map(Duration::from_millis),
            "retention.bytes" => c.retention_bytes = opt_num(v)?,
            "segment.bytes" => c.segment_bytes = num(v)?,
            "segment.ms" => c.segment_time = opt_num(v)?.map(Duration::from_millis),
            "delete.retention.ms" => c.delete_retention = Duration::from_millis(num(v)?),
            "min.cleanable.dirty.ratio" => {
                c.min_cleanable_ratio = v
                    .parse::<f64>()
                    .map_err(|_| bad(n, format!("{k}: not a number: {v:?}")))?;
            }
            // Unknown keys from a newer version are ignored.
            _ => {}
        }
    }
    c.partitions = partitions.ok_or_else(|| bad(0, "partitions missing".to_owned()))?;
    c.validate().map_err(|reason| bad(0, reason))?;
    Ok(c)
}

/// Writes the config file durably (temp file, fsync, rename).
pub(crate) fn write_config(dir: &Path, c: &TopicConfig) -> Result<(), LogError> {
    let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
    let path = dir.join(CONFIG_FILE);
    let mut f = fs::File::create(&tmp).at(&tmp)?;
    f.write_all(render_config(c).as_bytes()).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    fs::rename(&tmp, &path).at(&path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_rules() {
        for ok in [
            "a",
            "player-stats",
            "ow.raw_events-v2",
            &"x".repeat(249),
            "...",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250), "a:b"] {
            assert!(
                matches!(validate_name(bad), Err(LogError::InvalidTopicName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_roundtrip() {
        let c = TopicConfig::new(3)
            .with_cleanup(CleanupPolicy::DeleteAndCompact)
            .with_retention(None)
            .with_retention_bytes(Some(1234))
            .with_segment_bytes(8192)
            .with_segment_time(Some(Duration::from_millis(500)))
            .with_delete_retention(Duration::from_secs(9))
            .with_min_cleanable_ratio(0.25);
        let text = render_config(&c);
        assert_eq!(parse_config(Path::new("x"), &text).unwrap(), c);
        assert_eq!(
            parse_config(Path::new("x"), &render_config(&TopicConfig::new(1))).unwrap(),
            TopicConfig::new(1)
        );
        assert!(parse_config(Path::new("x"), "garbage").is_err());
        assert!(
            parse_config(
                Path::new("x"),
                &text.replace("partitions=3", "partitions=x")
            )
            .is_err()
        );
    }
}
