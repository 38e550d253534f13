//! Kafka's default partitioner, bit for bit.
//!
//! A keyed record goes to `to_positive(murmur2(key)) % partitions`, exactly
//! like the Java client's `BuiltInPartitioner.partitionForKey` and
//! librdkafka's `murmur2_random` partitioner, so a topology moved from the
//! embedded backend to a real Kafka cluster keeps every key in the same
//! partition (and co-partitioned topics stay co-partitioned).

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, the input
/// read as little-endian 32-bit words.
///
/// ```
/// assert_eq!(ow_stream_log::murmur2(b"foobar"), -790_332_482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Kafka mixes the length in as a Java `int`; keys are far below 2^31.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which
/// overflows on `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for `key` among
/// `partitions` partitions.
///
/// ```
/// assert_eq!(ow_stream_log::partition_for_key(b"foobar", 50), 16);
/// ```
///
/// # Panics
/// If `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka `clients/.../common/utils/UtilsTest.java`, `testMurmur2`
    /// (read from the Kafka sources): the Java `int` results.
    #[test]
    fn murmur2_matches_kafka_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// librdkafka `src/rdmurmur2.c`, `unittest_murmur2` (read from the
    /// librdkafka sources; it checks them against the Java client): covers
    /// every tail length and the empty key.
    #[test]
    fn murmur2_matches_librdkafka_unittest() {
        let cases: [(&[u8], u32); 11] = [
            (b"kafka", 0xd067_cf64),
            (b"giberish123456789", 0x8f55_2b0c),
            (b"1234", 0x9fc9_7b14),
            (b"234", 0xe7c0_09ca),
            (b"34", 0x8739_30da),
            (b"4", 0x5a4b_5ca1),
            (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
            (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
            (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4_e09e),
            (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8_b43f),
            (b"", 0x106e_08d9),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected as i32,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The brief's vector for the empty key, as a Java int.
        assert_eq!(murmur2(b""), 275_646_681);
    }

    #[test]
    fn partition_is_positive_modulo() {
        // murmur2("foobar") is negative: toPositive, not abs.
        assert_eq!(
            partition_for_key(b"foobar", 50),
            (-790_332_482i32 & 0x7fff_ffff) % 50
        );
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        assert_eq!(partition_for_key(b"abc", 7), 479_470_107 % 7);
        for n in 1..20 {
            for key in [&b"a"[..], b"bb", b"player-123", b""] {
                let p = partition_for_key(key, n);
                assert!((0..n).contains(&p));
            }
        }
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
    }
}
