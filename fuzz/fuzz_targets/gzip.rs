//! gzip volumes (unencrypted archives), possibly multi-member.
#![no_main]
use cairn::archive::names::Encoding;
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};

const CAP: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let keys = cairn::crypto::Keyring::default();
    if let Ok(r) = cairn::archive::codec::decode(Cursor::new(data.to_vec()), Encoding::Gzip, &keys)
    {
        let _ = std::io::copy(&mut r.take(CAP), &mut std::io::sink());
    }
});
