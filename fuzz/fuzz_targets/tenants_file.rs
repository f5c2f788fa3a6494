//! `rtm_host::fuzzing::tenants_file` on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtm_host::fuzzing::tenants_file(data));
