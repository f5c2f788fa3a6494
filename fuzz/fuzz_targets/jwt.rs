//! `rtm_host::fuzzing::jwt` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtm_host::fuzzing::jwt(data));
