//! ow-processor (work in progress).
