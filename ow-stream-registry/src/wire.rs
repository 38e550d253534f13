//! Confluent's wire format: the 5-byte header in front of every registry-encoded record.
//!
//! A record encoded against a schema registry starts with the magic byte `0` and the schema's
//! global id as 4 big-endian bytes; the encoded payload (Avro binary, for the schemas this
//! crate knows) follows. Serdes write the header with [`MAGIC_BYTE`] and the id, and read it
//! back with [`split_frame`].
//!
//! ```
//! use ow_stream_registry::wire::{FRAME_LEN, FrameError, MAGIC_BYTE, split_frame};
//!
//! let mut framed = vec![MAGIC_BYTE];
//! framed.extend_from_slice(&258u32.to_be_bytes());
//! framed.push(42);
//! assert_eq!(framed.len(), FRAME_LEN + 1);
//! assert_eq!(split_frame(&framed), Ok((258, &[42u8][..])));
//! assert_eq!(split_frame(&[1, 0, 0, 0, 7]), Err(FrameError::NotMagic { byte: 1 }));
//! ```

/// The first byte of every Confluent-framed record.
pub const MAGIC_BYTE: u8 = 0;

/// The length of the header: the magic byte and the 4-byte schema id.
pub const FRAME_LEN: usize = 5;

/// Bytes that do not start with a Confluent header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the header needs.
    #[error("{len} bytes are too short for the {FRAME_LEN}-byte header")]
    TooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// The first byte is not [`MAGIC_BYTE`].
    #[error("first byte is {byte}, not the magic byte {MAGIC_BYTE}")]
    NotMagic {
        /// The first byte.
        byte: u8,
    },
}

/// Splits Confluent framing — magic byte `0`, 4-byte big-endian schema id — from the payload:
/// the schema id and the bytes after the header.
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), FrameError> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, payload @ ..] => {
            Ok((u32::from_be_bytes([*a, *b, *c, *d]), payload))
        }
        [byte, ..] if *byte != MAGIC_BYTE => Err(FrameError::NotMagic { byte: *byte }),
        _ => Err(FrameError::TooShort { len: bytes.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(split_frame(&[0, 0, 0, 1, 2, 9]).unwrap(), (258, &[9u8][..]));
        assert_eq!(split_frame(&[0, 0, 0, 0, 7]).unwrap(), (7, &[][..]));
        let short = split_frame(&[0, 0, 0]).unwrap_err();
        assert_eq!(short, FrameError::TooShort { len: 3 });
        assert_eq!(
            short.to_string(),
            "3 bytes are too short for the 5-byte header"
        );
        assert_eq!(
            split_frame(&[]).unwrap_err(),
            FrameError::TooShort { len: 0 }
        );
        let magic = split_frame(&[1, 0, 0, 0, 7]).unwrap_err();
        assert_eq!(magic.to_string(), "first byte is 1, not the magic byte 0");
    }
}
