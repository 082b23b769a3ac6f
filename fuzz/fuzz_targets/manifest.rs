//! Manifests come from the target (plain or decrypted) and are parsed before
//! anything else is trusted.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = cairn::archive::manifest::Manifest::parse(data) {
        // What the parsed manifest is used for must not panic either.
        let _ = m.to_bytes();
        let _ = m.same_as(&m);
    }
});
