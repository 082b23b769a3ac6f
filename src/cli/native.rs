//! The native `cairn` command line.

use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser)]
#[command(name = "cairn", version, about = "Encrypted, incremental backups in duplicity's format")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the appliance's web interface and health endpoint.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
    },
    /// Run the duplicity-compatible command line: `cairn duplicity [ARGS…]`.
    #[command(disable_help_flag = true)]
    Duplicity {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Serve { listen } => match crate::serve::run(&listen) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cairn serve: {e:#}");
                1
            }
        },
        Command::Duplicity { args } => super::duplicity_main(args),
    }
}
