//! Server API bodies: the first byte picks the route, the rest is the body, sent to an
//! in-process host with a valid API key. Any answer but a 5xx is fine.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtm_fuzz::api_body(data));
