//! Every string-to-value parser on arbitrary input: no panic, and every value that converts
//! prints a canonical text that converts back to itself (`snap2dsql::convert::exercise_parsers`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        snap2dsql::convert::exercise_parsers(text);
    }
});
