//! The `cairn` binary. Invoked as `duplicity` (a symlink) it speaks
//! duplicity's command line; otherwise the native one.

fn main() {
    std::process::exit(cairn::cli::main());
}
