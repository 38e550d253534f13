//! Confluent-framed Avro decoding: [`split_frame`] and the core's [`AvroSerde`] decode path over a
//! registry, for every key and value serde of the processor's topics.
//!
//! The first input byte picks the serde, the rest is the framed record. Decoding must never
//! panic, and [`split_frame`] must take the header apart exactly. A record that decodes must be
//! writable again, and what is written must decode to a record that is written to the very same
//! bytes (a fixed point: nothing is lost or changed by a round trip through the topic).
//!
//! [`AvroSerde`]: ow_stream_core::serde::AvroSerde

use std::fmt::Debug;

use ow_stream_core::Topic;
use ow_stream_core::registry::wire::{FRAME_LEN, MAGIC_BYTE, split_frame};

use crate::pipeline::pipeline;

/// How many serdes the first byte chooses from.
pub const SERDES: u8 = 10;

/// Checks the decoder on `data`; panics if a property is broken.
pub fn check(data: &[u8]) {
    let Some((&which, frame)) = data.split_first() else {
        return;
    };
    check_split(frame);
    let t = &pipeline().topics;
    match which % SERDES {
        0 => key(&t.raw, frame),
        1 => value(&t.raw, frame),
        2 => key(&t.stats_by_category, frame),
        3 => value(&t.stats_by_category, frame),
        4 => key(&t.profiles, frame),
        5 => value(&t.profiles, frame),
        6 => key(&t.deltas, frame),
        7 => value(&t.deltas, frame),
        8 => key(&t.daily, frame),
        _ => value(&t.daily, frame),
    }
}

fn check_split(frame: &[u8]) {
    match split_frame(frame) {
        Ok((id, payload)) => {
            assert!(frame.len() >= FRAME_LEN && frame[0] == MAGIC_BYTE);
            assert_eq!(id.to_be_bytes(), frame[1..FRAME_LEN]);
            assert_eq!(payload, &frame[FRAME_LEN..]);
        }
        Err(e) => {
            assert!(frame.len() < FRAME_LEN || frame[0] != MAGIC_BYTE, "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

fn key<K: Debug + 'static, V: 'static>(topic: &Topic<K, V>, frame: &[u8]) {
    round_trip(
        frame,
        |b| topic.deserialize_key(b),
        |k| topic.serialize_key(k),
    );
}

fn value<K: 'static, V: Debug + 'static>(topic: &Topic<K, V>, frame: &[u8]) {
    round_trip(
        frame,
        |b| topic.deserialize_value(b),
        |v| topic.serialize_value(v),
    );
}

fn round_trip<T: Debug, E: std::fmt::Display>(
    frame: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Result<Vec<u8>, E>,
) {
    let record = match decode(frame) {
        Ok(record) => record,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let written = encode(&record)
        .unwrap_or_else(|e| panic!("decoded {record:?} but cannot write it again: {e}"));
    let again = decode(&written)
        .unwrap_or_else(|e| panic!("wrote {record:?} but cannot read it back: {e}"));
    let rewritten =
        encode(&again).unwrap_or_else(|e| panic!("read back {again:?} but cannot write it: {e}"));
    assert_eq!(
        written, rewritten,
        "{record:?} changes in a round trip, to {again:?}"
    );
}
