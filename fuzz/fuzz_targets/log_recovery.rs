//! libFuzzer entry point of [`ow_fuzz::log_recovery`]: the property lives there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ow_fuzz::log_recovery::check(data));
