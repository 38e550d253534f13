//! Windows, windowed keys, and how window stores lay them out.

use serde::{Deserialize, Serialize};

/// A time window `[start, end)` in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// A key within a window: the key type of windowed aggregations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// Window stores order entries by window start, then key: the start is written as 8 bytes
/// big-endian with the sign bit flipped, so byte order is time order (negative times included).
pub(crate) fn encode_key(start: i64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&encode_time(start));
    out.extend_from_slice(key);
    out
}

pub(crate) fn encode_time(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Splits a window store key into (window start, key bytes).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let start = (u64::from_be_bytes(head) ^ (1 << 63)) as i64;
    Some((start, &bytes[8..]))
}

/// Keys of window stores that are bookkeeping, not windows: they sort before every window.
pub(crate) const EMITTED_UNTIL_KEY: &[u8] = b"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_time_order() {
        let times = [-5_000i64, -1, 0, 1, 86_400_000, i64::MAX / 2];
        let encoded: Vec<_> = times.iter().map(|t| encode_key(*t, b"k")).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
        for t in times {
            assert_eq!(decode_key(&encode_key(t, b"abc")), Some((t, &b"abc"[..])));
        }
        assert_eq!(decode_key(b"short"), None);
        assert!(EMITTED_UNTIL_KEY < encode_key(i64::MIN, b"").as_slice());
    }
}
