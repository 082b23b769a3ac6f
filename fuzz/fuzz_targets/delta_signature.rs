//! librsync signatures, as stored in signature tars.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn::delta::parse_signature(data.to_vec());
});
