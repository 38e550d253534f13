//! The on-disk record batch: one `append` call = one CRC-protected frame.
//!
//! ```text
//! offset size field
//!  0      4   length            u32 LE, bytes after the first 8 (total - 8)
//!  4      4   crc               u32 LE, CRC-32C of bytes 16..total followed
//!                               by bytes 8..16 (see below)
//!  8      8   base_offset       i64 LE
//! 16      1   magic             1
//! 17      1   attributes        bit 0: transactional, bit 1: control (0 = plain)
//! 18      2   producer_id       u16 LE, the transactional producer (0 = none)
//! 20      4   last_offset_delta u32 LE, last offset - base_offset (kept by compaction)
//! 24      4   record_count      u32 LE, records present (≤ last_offset_delta + 1)
//! 28      8   first_timestamp   i64 LE, timestamp of the first record
//! 36      8   max_timestamp     i64 LE, largest record timestamp
//! 44      8   delete_horizon    i64 LE, -1, or the time after which compaction
//!                               may drop this batch's tombstones
//! 52      …   records
//!
//! record:
//!   u32 offset_delta, i64 timestamp,
//!   i32 key_len (-1 = null) + key, i32 value_len (-1 = null) + value,
//!   u32 header_count, then per header: u32 name_len + UTF-8 name,
//!                                      i32 value_len (-1 = null) + value
//! ```
//!
//! All integers little-endian. The CRC covers every byte after it, the base
//! offset last: so the CRC of everything else is computed while encoding,
//! outside the partition's write lock, and finishing it once the offset is
//! known is an 8-byte `crc32c_append`. Covering the base offset means a frame
//! copied to the wrong place is caught too.

use bytes::Bytes;

use crate::record::{Header, NewRecord, StoredRecord};

pub(crate) const HEADER_LEN: usize = 52;
pub(crate) const MAGIC: u8 = 1;
/// Largest encoded batch accepted by `append`.
pub(crate) const MAX_BATCH_BYTES: usize = 64 << 20;
pub(crate) const NO_HORIZON: i64 = -1;
/// Attribute bit: the batch belongs to a transaction of `producer_id`.
pub(crate) const ATTR_TRANSACTIONAL: u8 = 1;
/// Attribute bit: the batch is a transaction marker (one control record).
pub(crate) const ATTR_CONTROL: u8 = 2;
/// Key of a commit marker's control record (version 0, type 1), as in Kafka.
pub(crate) const CONTROL_COMMIT: [u8; 2] = [0, 1];
/// Key of an abort marker's control record (version 0, type 0).
pub(crate) const CONTROL_ABORT: [u8; 2] = [0, 0];

/// Builds one batch frame. Offsets are filled in last ([`Self::seal`]) so a
/// batch can be encoded, and most of its CRC computed, outside the
/// partition's write lock.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    buf: Vec<u8>,
    count: u32,
    first_ts: i64,
    max_ts: i64,
    attributes: u8,
    producer_id: u16,
}

impl BatchBuilder {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + bytes);
        buf.resize(HEADER_LEN, 0);
        BatchBuilder {
            buf,
            count: 0,
            first_ts: 0,
            max_ts: i64::MIN,
            attributes: 0,
            producer_id: 0,
        }
    }

    /// Marks the batch as written by a transactional producer (`attributes`
    /// from [`ATTR_TRANSACTIONAL`] and [`ATTR_CONTROL`]).
    pub(crate) fn set_producer(&mut self, attributes: u8, producer_id: u16) {
        self.attributes = attributes;
        self.producer_id = producer_id;
    }

    /// Encoded size of one record (for capacity planning and read limits).
    pub(crate) fn record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        24 + key.map_or(0, <[u8]>::len)
            + value.map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|h| 8 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }

    pub(crate) fn push(
        &mut self,
        offset_delta: u32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.first_ts = timestamp;
        }
        self.count += 1;
        self.max_ts = self.max_ts.max(timestamp);
        let b = &mut self.buf;
        b.extend_from_slice(&offset_delta.to_le_bytes());
        b.extend_from_slice(&timestamp.to_le_bytes());
        put_nullable(b, key);
        put_nullable(b, value);
        b.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        for h in headers {
            b.extend_from_slice(&(h.key.len() as u32).to_le_bytes());
            b.extend_from_slice(h.key.as_bytes());
            put_nullable(b, h.value.as_deref());
        }
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_ts
    }

    /// Fills every header field but the base offset and computes the CRC of
    /// bytes 16.. (everything after the base offset).
    pub(crate) fn finish(
        mut self,
        last_offset_delta: u32,
        max_timestamp: i64,
        delete_horizon: i64,
    ) -> SealedBody {
        let len = self.buf.len();
        let b = &mut self.buf;
        b[0..4].copy_from_slice(&((len - 8) as u32).to_le_bytes());
        b[16] = MAGIC;
        b[17] = self.attributes;
        b[18..20].copy_from_slice(&self.producer_id.to_le_bytes());
        b[20..24].copy_from_slice(&last_offset_delta.to_le_bytes());
        b[24..28].copy_from_slice(&self.count.to_le_bytes());
        b[28..36].copy_from_slice(&self.first_ts.to_le_bytes());
        b[36..44].copy_from_slice(&max_timestamp.to_le_bytes());
        b[44..52].copy_from_slice(&delete_horizon.to_le_bytes());
        let tail_crc = crc32c::crc32c(&b[16..]);
        SealedBody {
            buf: self.buf,
            tail_crc,
            max_ts: max_timestamp,
        }
    }
}

/// A batch with everything but its base offset in place.
#[derive(Debug)]
pub(crate) struct SealedBody {
    buf: Vec<u8>,
    tail_crc: u32,
    pub(crate) max_ts: i64,
}

impl SealedBody {
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the base offset and the final CRC (cheap: 8 more CRC bytes).
    pub(crate) fn seal(&mut self, base_offset: i64) -> &[u8] {
        let off = base_offset.to_le_bytes();
        self.buf[8..16].copy_from_slice(&off);
        let crc = crc32c::crc32c_append(self.tail_crc, &off);
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

fn put_nullable(b: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        None => b.extend_from_slice(&(-1i32).to_le_bytes()),
        Some(d) => {
            b.extend_from_slice(&(d.len() as i32).to_le_bytes());
            b.extend_from_slice(d);
        }
    }
}

/// Encodes records for `append` (offset deltas 0..n).
#[cfg(test)]
pub(crate) fn encode_new(records: &[NewRecord]) -> SealedBody {
    encode_new_for(records, 0)
}

/// Encodes records for a transactional append by `producer_id` (0: a plain
/// batch).
pub(crate) fn encode_new_for(records: &[NewRecord], producer_id: u16) -> SealedBody {
    let cap = records
        .iter()
        .map(|r| BatchBuilder::record_size(r.key.as_deref(), r.value.as_deref(), &r.headers))
        .sum();
    let mut b = BatchBuilder::with_capacity(cap);
    if producer_id != 0 {
        b.set_producer(ATTR_TRANSACTIONAL, producer_id);
    }
    for (i, r) in records.iter().enumerate() {
        b.push(
            i as u32,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let max_ts = b.max_timestamp();
    let last = b.count().saturating_sub(1);
    b.finish(last, max_ts, NO_HORIZON)
}

/// Encodes a transaction marker of `producer_id`: a control batch of one
/// keyed, valueless record.
pub(crate) fn encode_marker(producer_id: u16, commit: bool, timestamp: i64) -> SealedBody {
    let key = if commit {
        CONTROL_COMMIT
    } else {
        CONTROL_ABORT
    };
    let mut b = BatchBuilder::with_capacity(BatchBuilder::record_size(Some(&key), None, &[]));
    b.set_producer(ATTR_TRANSACTIONAL | ATTR_CONTROL, producer_id);
    b.push(0, timestamp, Some(&key), None, &[]);
    b.finish(0, timestamp, NO_HORIZON)
}

/// The fixed part of a batch frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    /// Total frame size in bytes.
    pub(crate) size: u32,
    pub(crate) crc: u32,
    pub(crate) base_offset: i64,
    pub(crate) last_offset_delta: u32,
    pub(crate) record_count: u32,
    pub(crate) first_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) delete_horizon: i64,
    pub(crate) attributes: u8,
    /// The transactional producer (0 = none).
    pub(crate) producer_id: u16,
}

impl BatchHeader {
    /// Whether this is a transaction marker.
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The transactional producer of the batch, if any.
    pub(crate) fn transactional(&self) -> Option<u16> {
        (self.attributes & ATTR_TRANSACTIONAL != 0).then_some(self.producer_id)
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Parses and sanity-checks the header (not the CRC).
    pub(crate) fn parse(b: &[u8]) -> Result<BatchHeader, &'static str> {
        if b.len() < HEADER_LEN {
            return Err("truncated batch header");
        }
        let len = u32_at(b, 0);
        let size = u64::from(len) + 8;
        if size < HEADER_LEN as u64 {
            return Err("batch length below the header size");
        }
        if size > (MAX_BATCH_BYTES + HEADER_LEN) as u64 {
            return Err("batch length above the maximum batch size");
        }
        if b[16] != MAGIC {
            return Err("unknown batch magic byte");
        }
        let h = BatchHeader {
            size: len + 8,
            crc: u32_at(b, 4),
            base_offset: i64_at(b, 8),
            last_offset_delta: u32_at(b, 20),
            record_count: u32_at(b, 24),
            first_timestamp: i64_at(b, 28),
            max_timestamp: i64_at(b, 36),
            delete_horizon: i64_at(b, 44),
            attributes: b[17],
            producer_id: u16::from_le_bytes([b[18], b[19]]),
        };
        if h.attributes & !(ATTR_TRANSACTIONAL | ATTR_CONTROL) != 0 {
            return Err("unknown batch attributes");
        }
        if h.base_offset < 0 {
            return Err("negative base offset");
        }
        if u64::from(h.record_count) > u64::from(h.last_offset_delta) + 1 {
            return Err("more records than offsets in batch");
        }
        Ok(h)
    }

    /// Checks the CRC of a complete frame (`frame.len() == size`).
    pub(crate) fn crc_ok(&self, frame: &[u8]) -> bool {
        frame.len() == self.size as usize && frame_crc(frame) == self.crc
    }
}

/// The CRC of a complete frame: bytes 16.., then the base offset (8..16).
pub(crate) fn frame_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[16..]), &frame[8..16])
}

/// Decodes the records of a complete, CRC-checked frame held in `frame`.
/// Key, value and header bytes are zero-copy slices of `frame`.
pub(crate) fn decode_records(h: &BatchHeader, frame: &Bytes) -> Result<Vec<StoredRecord>, String> {
    decode_records_from(h, frame, i64::MIN, usize::MAX)
}

/// Like [`decode_records`], but only materialises records with an offset of
/// at least `from`, and at most `limit` of them: records before `from` are
/// stepped over without allocating, and decoding stops at the limit.
pub(crate) fn decode_records_from(
    h: &BatchHeader,
    frame: &Bytes,
    from: i64,
    limit: usize,
) -> Result<Vec<StoredRecord>, String> {
    let mut out = Vec::with_capacity((h.record_count as usize).min(limit).min(1024));
    let mut cur = Cursor {
        buf: frame,
        pos: HEADER_LEN,
    };
    let mut last_delta: Option<u32> = None;
    for _ in 0..h.record_count {
        if out.len() >= limit {
            return Ok(out);
        }
        let delta = cur.u32()?;
        if delta > h.last_offset_delta || last_delta.is_some_and(|l| delta <= l) {
            return Err(format!(
                "record offset delta {delta} out of order or out of range"
            ));
        }
        last_delta = Some(delta);
        let offset = h.base_offset + i64::from(delta);
        let timestamp = cur.i64()?;
        if offset < from {
            cur.skip_nullable()?;
            cur.skip_nullable()?;
            for _ in 0..cur.u32()? {
                let klen = cur.u32()? as usize;
                cur.advance(klen)?;
                cur.skip_nullable()?;
            }
            continue;
        }
        let key = cur.nullable()?;
        let value = cur.nullable()?;
        let n = cur.u32()?;
        let mut headers = Vec::with_capacity((n as usize).min(64));
        for _ in 0..n {
            let klen = cur.u32()? as usize;
            let at = cur.advance(klen)?;
            let key = std::str::from_utf8(&frame[at..at + klen])
                .map_err(|_| "header name is not UTF-8".to_owned())?
                .to_owned();
            let value = cur.nullable()?;
            headers.push(Header { key, value });
        }
        out.push(StoredRecord {
            offset,
            timestamp,
            key,
            value,
            headers,
        });
    }
    if cur.pos != frame.len() {
        return Err("trailing bytes after the last record".to_owned());
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    /// Moves past `n` bytes, returning where they start.
    fn advance(&mut self, n: usize) -> Result<usize, String> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| "record runs past the end of its batch".to_owned())?;
        self.pos = end;
        Ok(start)
    }

    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        let start = self.advance(n)?;
        Ok(self.buf.slice(start..start + n))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let at = self.advance(4)?;
        Ok(u32_at(self.buf, at))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let at = self.advance(8)?;
        Ok(i64_at(self.buf, at))
    }

    fn nullable_len(&mut self) -> Result<Option<usize>, String> {
        match self.u32()? as i32 {
            -1 => Ok(None),
            n if n < 0 => Err(format!("negative length {n}")),
            n => Ok(Some(n as usize)),
        }
    }

    fn nullable(&mut self) -> Result<Option<Bytes>, String> {
        match self.nullable_len()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    fn skip_nullable(&mut self) -> Result<(), String> {
        if let Some(n) = self.nullable_len()? {
            self.advance(n)?;
        }
        Ok(())
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NewRecord> {
        vec![
            NewRecord::new(Some("k1"), Some("v1"), 10).with_header("h", "x"),
            NewRecord::new(None::<&str>, Some("v2"), 5),
            NewRecord::tombstone("k1", 30),
            NewRecord {
                key: Some(Bytes::new()),
                value: Some(Bytes::new()),
                timestamp: -7,
                headers: vec![Header {
                    key: "n".into(),
                    value: None,
                }],
            },
        ]
    }

    fn frame(base: i64) -> Bytes {
        let mut s = encode_new(&sample());
        Bytes::copy_from_slice(s.seal(base))
    }

    #[test]
    fn roundtrip_preserves_every_field() {
        let f = frame(42);
        let h = BatchHeader::parse(&f).unwrap();
        assert!(h.crc_ok(&f));
        assert_eq!(h.size as usize, f.len());
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.record_count, 4);
        assert_eq!(h.last_offset(), 45);
        assert_eq!(h.first_timestamp, 10);
        assert_eq!(h.max_timestamp, 30);
        assert_eq!(h.delete_horizon, NO_HORIZON);
        let recs = decode_records(&h, &f).unwrap();
        let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![42, 43, 44, 45]);
        for (got, want) in recs.iter().zip(sample()) {
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
            assert_eq!(got.timestamp, want.timestamp);
            assert_eq!(got.headers, want.headers);
        }
        // Null and empty stay distinct.
        assert_eq!(recs[3].key, Some(Bytes::new()));
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[2].value, None);
    }

    #[test]
    fn partial_decode_matches_full_decode() {
        let f = frame(100);
        let h = BatchHeader::parse(&f).unwrap();
        let all = decode_records(&h, &f).unwrap();
        for from in 99..=104 {
            for limit in 0..=5 {
                let want: Vec<_> = all
                    .iter()
                    .filter(|r| r.offset >= from)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(decode_records_from(&h, &f, from, limit).unwrap(), want);
            }
        }
    }

    #[test]
    fn seal_crc_is_the_documented_crc() {
        for base in [0, 1, 1 << 40] {
            let f = frame(base);
            let mut covered = f[16..].to_vec();
            covered.extend_from_slice(&f[8..16]);
            assert_eq!(u32_at(&f, 4), crc32c::crc32c(&covered));
            assert_eq!(u32_at(&f, 4), frame_crc(&f));
        }
        // Same body, other offset: other CRC.
        assert_ne!(u32_at(&frame(1), 4), u32_at(&frame(2), 4));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let f = frame(7);
        for byte in 0..f.len() {
            for bit in 0..8 {
                let mut g = f.to_vec();
                g[byte] ^= 1 << bit;
                let ok = match BatchHeader::parse(&g) {
                    Err(_) => false,
                    Ok(h) => h.crc_ok(&g),
                };
                assert!(!ok, "flip of bit {bit} in byte {byte} went unnoticed");
            }
        }
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let f = frame(0);
        for cut in 0..f.len() {
            let g = &f[..cut];
            let ok = match BatchHeader::parse(g) {
                Err(_) => false,
                Ok(h) => h.crc_ok(g),
            };
            assert!(!ok, "frame cut at {cut} accepted");
        }
    }

    #[test]
    fn record_size_matches_encoding() {
        let recs = sample();
        let total: usize = recs
            .iter()
            .map(|r| BatchBuilder::record_size(r.key.as_deref(), r.value.as_deref(), &r.headers))
            .sum();
        assert_eq!(frame(0).len(), HEADER_LEN + total);
    }

    #[test]
    fn garbage_lengths_do_not_panic_the_decoder() {
        let f = frame(0);
        let h = BatchHeader::parse(&f).unwrap();
        // Claim more records than present: must be an error, not a panic.
        let lying = BatchHeader {
            record_count: 3,
            ..h
        };
        let mut short = f.to_vec();
        short.truncate(HEADER_LEN + 30);
        assert!(decode_records(&lying, &Bytes::from(short)).is_err());
    }
}
