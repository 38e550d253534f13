//! libFuzzer entry point of [`ow_fuzz::avro_frame`]: the property lives there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ow_fuzz::avro_frame::check(data));
