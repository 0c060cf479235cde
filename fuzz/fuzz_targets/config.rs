//! A config file and environment variables: the input before the first NUL byte is the file,
//! the rest `NAME=value` lines.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, env) = text.split_once('\0').unwrap_or((&text, ""));
    artemis::fuzzing::config(file, env);
});
