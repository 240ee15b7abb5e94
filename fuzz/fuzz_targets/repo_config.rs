#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shipgate_fuzz::repo_config(data));
