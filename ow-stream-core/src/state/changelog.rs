//! Commit markers in changelog topics.
//!
//! Every store writes each change to its changelog topic (`<application_id>-<store>-changelog`,
//! one partition per task). At every commit, the task also writes a **commit marker** to each of
//! its changelogs: a record whose value says which input offsets (and which de-duplication marks
//! of repartitioned records) the store state up to that point reflects, and which changelogs the
//! commit's markers go to. The markers are written once every change of the commit is
//! acknowledged, in every changelog, and *before* the local store commits, so:
//!
//! * the data up to the last marker is exactly the state at the last commit, with its input
//!   offsets beside it — restoring it and resuming from those offsets never counts a record
//!   twice;
//! * a marker in one changelog means its commit's changes are in all of them: when a crash
//!   (at-least-once appends markers one changelog after the other) leaves a commit marked in
//!   some changelogs only, restore rolls it forward and writes the missing markers;
//! * data after the last marker of every changelog belongs to a commit that never finished;
//!   restore discards it and the restored task immediately writes *compensation* records (the
//!   restored value of every key that tail touched), flushes them, then a marker, so the
//!   changelog reads correctly from any point, also after log compaction has removed older
//!   records.
//!
//! Markers alternate between two keys (by sequence parity), so compaction always keeps the last
//! two: a changelog that the last commit's marker did not reach still has its own last marker.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::record::Headers;

/// Header present (value `1`) on commit markers.
pub(crate) const MARKER_HEADER: &str = "ow.commit";

/// The two marker keys; the first byte is NUL so user keys written by a serde cannot collide in
/// practice.
pub(crate) fn marker_key(seq: u64) -> &'static [u8] {
    if seq.is_multiple_of(2) {
        b"\0ow-commit-marker-0"
    } else {
        b"\0ow-commit-marker-1"
    }
}

/// The input positions a store state reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Commit sequence number (monotonic per task, across restarts).
    pub(crate) seq: u64,
    /// Next offset to read per input partition: `(topic, partition, offset)`.
    pub(crate) offsets: Vec<(Arc<str>, i32, i64)>,
    /// Last repartitioned record processed per upstream partition:
    /// `(upstream topic, upstream partition, upstream offset, sub-index)`.
    pub(crate) dedup: Vec<(Arc<str>, i32, i64, u32)>,
    /// The task's stream time (highest record timestamp seen), so windows stay closed after a
    /// restart.
    #[serde(default)]
    pub(crate) stream_time: i64,
    /// The changelogs the commit's markers go to (every changelog of the task), so that
    /// restore can tell a changelog the marker never reached (a commit cut short) from one of
    /// a store added since. Empty in markers written before it existed: read as "every
    /// changelog of the task".
    #[serde(default)]
    pub(crate) changelogs: Vec<Arc<str>>,
}

impl Checkpoint {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("bad commit marker: {e}"))
    }

    /// Whether this commit's markers were meant for `changelog`.
    pub(crate) fn written_to(&self, changelog: &str) -> bool {
        self.changelogs.is_empty() || self.changelogs.iter().any(|c| &**c == changelog)
    }
}

pub(crate) fn marker_headers() -> Headers {
    let mut h = Headers::new();
    h.insert(MARKER_HEADER, Some(Bytes::from_static(b"1")));
    h
}

pub(crate) fn is_marker(headers: &Headers) -> bool {
    headers.last(MARKER_HEADER).is_some()
}

/// Header written on records sent to repartition topics: where the record that caused them was
/// read, so the downstream task can drop the copies a crashed upstream task sends again.
pub(crate) const PROVENANCE_HEADER: &str = "ow.src";

/// Encodes `(topic, partition, offset, sub-index)` for [`PROVENANCE_HEADER`].
pub(crate) fn encode_provenance(topic: &str, partition: i32, offset: i64, sub: u32) -> Bytes {
    let mut out = Vec::with_capacity(topic.len() + 16);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&sub.to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    Bytes::from(out)
}

/// Decodes a [`PROVENANCE_HEADER`] value.
pub(crate) fn decode_provenance(bytes: &[u8]) -> Option<(&str, i32, i64, u32)> {
    if bytes.len() < 16 {
        return None;
    }
    let partition = i32::from_be_bytes(bytes[0..4].try_into().ok()?);
    let offset = i64::from_be_bytes(bytes[4..12].try_into().ok()?);
    let sub = u32::from_be_bytes(bytes[12..16].try_into().ok()?);
    let topic = std::str::from_utf8(&bytes[16..]).ok()?;
    Some((topic, partition, offset, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip() {
        let c = Checkpoint {
            seq: 7,
            offsets: vec![("in".into(), 2, 42)],
            dedup: vec![("up".into(), 0, 9, 1)],
            stream_time: 12,
            changelogs: vec!["app-s-changelog".into()],
        };
        assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
        assert!(Checkpoint::decode(b"nope").is_err());
    }

    #[test]
    fn provenance_round_trip() {
        let b = encode_provenance("t.x", 3, 1 << 40, 2);
        assert_eq!(decode_provenance(&b), Some(("t.x", 3, 1 << 40, 2)));
        assert_eq!(decode_provenance(&b[..10]), None);
    }

    #[test]
    fn marker_keys_alternate() {
        assert_ne!(marker_key(1), marker_key(2));
        assert_eq!(marker_key(1), marker_key(3));
    }
}
