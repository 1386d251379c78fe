//! Fuzz target `log`: see `check_log` in `fuzz/checks.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_log(data));
