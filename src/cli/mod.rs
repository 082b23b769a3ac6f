//! The binary's edge: argument parsing, messages and exit codes. Everything
//! here turns library results into what a person (or cron) sees.

mod catalog;
mod common;
pub mod duplicity;
mod jsonstat;
mod machine_log;
mod native;
mod progress;

use std::ffi::OsString;
use std::path::Path;

/// Runs the program and returns its exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked_as == "duplicity" {
        return duplicity_main(args.into_iter().skip(1).collect());
    }
    native::main(args)
}

/// The duplicity-compatible command line (`duplicity …` or `cairn duplicity …`).
pub fn duplicity_main(args: Vec<OsString>) -> i32 {
    duplicity::main(args)
}
