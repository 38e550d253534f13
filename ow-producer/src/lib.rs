//! ow-producer (work in progress).
