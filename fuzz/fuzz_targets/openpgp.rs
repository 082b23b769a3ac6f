//! Encrypted archive files: the fast SEIPD path and, for anything else,
//! sequoia's decryptor. The passphrase is the sample archives' (`test`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};
use std::sync::OnceLock;

const CAP: u64 = 16 << 20;

fn keyring() -> &'static cairn::crypto::Keyring {
    static K: OnceLock<cairn::crypto::Keyring> = OnceLock::new();
    K.get_or_init(|| cairn::crypto::Keyring::with_passphrase("test"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = cairn::crypto::message::open(Cursor::new(data.to_vec()), keyring()) {
        let _ = std::io::copy(&mut r.take(CAP), &mut std::io::sink());
    }
});
