//! File names come from the target's listing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|name: &str| {
    if let Some(p) = cairn::archive::names::default_naming().parse(name) {
        let _ = p.set_time();
        let _ = p.encoding();
    }
});
