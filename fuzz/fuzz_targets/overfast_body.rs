//! libFuzzer entry point of [`ow_fuzz::overfast_body`]: the property lives there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ow_fuzz::overfast_body::check(data));
