//! Arbitrary Engine.IO / Socket.IO frames over a real WebSocket into a running host; the
//! host must keep answering a fresh client afterwards.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtm_fuzz::frames(data));
