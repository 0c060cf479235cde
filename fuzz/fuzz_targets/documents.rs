//! Pipeline and stage documents, events and cache entries as stored in Redis.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis::fuzzing::documents(data));
