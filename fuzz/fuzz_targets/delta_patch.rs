//! librsync deltas applied to a basis file. Input: the first byte is the
//! basis length (0..=255), then the basis, then the delta.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Mutex;

/// Output larger than this is refused by `apply`.
const LIMIT: u64 = 16 << 20;

static BASIS: Mutex<Option<std::fs::File>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize).min(rest.len());
    let (basis, delta) = rest.split_at(n);
    let mut guard = BASIS.lock().unwrap();
    let file = guard.get_or_insert_with(|| tempfile::tempfile().expect("tempfile"));
    file.set_len(0).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(basis).unwrap();
    let mut out = Vec::new();
    let r = cairn::delta::apply(file, delta, &mut out, LIMIT);
    if let Ok(written) = r {
        assert_eq!(written, out.len() as u64);
        assert!(written <= LIMIT);
    }
});
