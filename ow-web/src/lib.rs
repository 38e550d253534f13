//! ow-web (work in progress).
