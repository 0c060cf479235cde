//! Redis replies of any shape (in the wire protocol) where the readers expect hashes, sets,
//! counters, stream entries, `CLUSTER SLOTS` and usage reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis::fuzzing::resp(data));
