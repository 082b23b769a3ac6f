//! Volume tars (tar headers, GNU long names, pax records) from the target.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};

/// No entry's data is read past this, whatever its header claims.
const CAP: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = cairn::archive::difftar::for_each_entry(Cursor::new(data), |entry, body| {
        let _ = cairn::archive::difftar::parse_entry_name(&entry.name);
        std::io::copy(&mut body.take(CAP), &mut std::io::sink())
            .map_err(cairn::archive::difftar::DifftarError::Tar)?;
        Ok(())
    });
});
