//! ow-web binary.
fn main() {}
