//! ow-producer binary.
fn main() {}
