//! The duplicity-compatible command line: the input split on NUL into argv.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let argv: Vec<String> = data
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let Ok(inv) = cairn::cli::duplicity::parse(&argv) {
        let _ = inv.flag("dry-run");
        let _ = inv.last("verbosity");
        let _ = inv.all("exclude");
    }
});
