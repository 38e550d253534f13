//! The sparse offset index kept beside each segment.
//!
//! One 24-byte entry (`i64 offset, u64 position, i64 max_timestamp_before`,
//! little-endian) every [`LogOptions::index_interval_bytes`] of segment data:
//! the batch whose base offset is `offset` starts at byte `position`, and
//! every record before that position has a timestamp ≤
//! `max_timestamp_before`. Lookups binary-search the entries (held in memory)
//! and then scan at most one interval of batches. The index is only a cache:
//! it is rebuilt from the segment whenever it is missing or does not match.
//!
//! [`LogOptions::index_interval_bytes`]: crate::LogOptions::index_interval_bytes

use crate::batch::i64_at;

pub(crate) const ENTRY_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) offset: i64,
    pub(crate) position: u64,
    pub(crate) max_ts_before: i64,
}

impl IndexEntry {
    pub(crate) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.position.to_le_bytes());
        b[16..24].copy_from_slice(&self.max_ts_before.to_le_bytes());
        b
    }
}

/// Decodes an index file. Entries must be strictly increasing in offset and
/// position; a trailing partial entry (torn write) is ignored.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<IndexEntry>, &'static str> {
    let mut out: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for chunk in bytes.chunks_exact(ENTRY_LEN) {
        let e = IndexEntry {
            offset: i64_at(chunk, 0),
            position: i64_at(chunk, 8) as u64,
            max_ts_before: i64_at(chunk, 16),
        };
        if let Some(prev) = out.last()
            && (e.offset <= prev.offset || e.position <= prev.position)
        {
            return Err("index entries out of order");
        }
        out.push(e);
    }
    Ok(out)
}

/// The last entry at or before `offset`, if any.
pub(crate) fn lookup(entries: &[IndexEntry], offset: i64) -> Option<IndexEntry> {
    let n = entries.partition_point(|e| e.offset <= offset);
    n.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<IndexEntry> {
        vec![
            IndexEntry {
                offset: 10,
                position: 4096,
                max_ts_before: 5,
            },
            IndexEntry {
                offset: 25,
                position: 8300,
                max_ts_before: 9,
            },
            IndexEntry {
                offset: 40,
                position: 12_500,
                max_ts_before: 9,
            },
        ]
    }

    #[test]
    fn encode_decode_roundtrip() {
        let bytes: Vec<u8> = entries().iter().flat_map(|e| e.encode()).collect();
        assert_eq!(bytes.len(), 3 * ENTRY_LEN);
        assert_eq!(decode(&bytes).unwrap(), entries());
    }

    #[test]
    fn torn_last_entry_is_ignored() {
        let mut bytes: Vec<u8> = entries().iter().flat_map(|e| e.encode()).collect();
        bytes.truncate(2 * ENTRY_LEN + 5);
        assert_eq!(decode(&bytes).unwrap(), entries()[..2].to_vec());
    }

    #[test]
    fn out_of_order_is_rejected() {
        let mut e = entries();
        e.swap(0, 1);
        let bytes: Vec<u8> = e.iter().flat_map(|e| e.encode()).collect();
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn lookup_finds_floor_entry() {
        let e = entries();
        assert_eq!(lookup(&e, 0), None);
        assert_eq!(lookup(&e, 9), None);
        assert_eq!(lookup(&e, 10).map(|e| e.offset), Some(10));
        assert_eq!(lookup(&e, 24).map(|e| e.offset), Some(10));
        assert_eq!(lookup(&e, 25).map(|e| e.offset), Some(25));
        assert_eq!(lookup(&e, 1000).map(|e| e.offset), Some(40));
        assert_eq!(lookup(&[], 5), None);
    }
}
