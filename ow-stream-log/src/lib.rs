//! ow-stream-log (being written).
