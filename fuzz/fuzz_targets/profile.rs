//! The TOML profile the native CLI and the appliance read.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(p) = cairn::profile::Profile::parse(text, "fuzz.toml") {
        let _ = p.remote.backend_options(None);
    }
});
