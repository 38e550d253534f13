//! ow-processor binary.
fn main() {}
