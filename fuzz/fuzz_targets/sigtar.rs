//! Signature tars (decoded) from the target or the local cache.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let _ = cairn::archive::sigtar::read(Cursor::new(data), |e| {
        let _ = e.is_deleted();
        Ok(())
    });
});
