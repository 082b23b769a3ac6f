//! The native `cairn` command line.

use clap::{Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Encrypted, incremental backups in duplicity's format"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Restore a point in time from a target into a directory.
    ///
    /// Restores the latest backup unless --time names another moment; with
    /// --path, restores only that file or directory, written as DEST itself.
    /// DEST must be new or empty unless --force is given.
    Restore {
        /// The target, e.g. file:///mnt/usb/backups.
        url: String,
        /// Where to write the restored files.
        dest: std::path::PathBuf,
        /// When to restore: "now", 2026-11-25, 20261125T073022Z, or an age such as 3D or 2W.
        #[arg(short, long)]
        time: Option<String>,
        /// Restore only this path (relative to the backed-up directory).
        #[arg(short, long)]
        path: Option<String>,
        /// Restore into a non-empty destination, replacing what is in the way.
        #[arg(long)]
        force: bool,
        /// Set owners from the recorded numbers, ignoring the recorded names.
        #[arg(long)]
        numeric_owner: bool,
        /// Do not try to restore file ownership.
        #[arg(long)]
        no_restore_ownership: bool,
        #[command(flatten)]
        target: super::common::TargetArgs,
    },
    /// Show the backup chains and sets at a target.
    Status {
        /// The target, e.g. file:///mnt/usb/backups.
        url: String,
        #[command(flatten)]
        target: super::common::TargetArgs,
    },
    /// Serve the appliance's web interface and health endpoint.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// Configuration file; the appliance reports itself unconfigured while it is missing.
        #[arg(long, default_value = crate::serve::DEFAULT_CONFIG)]
        config: std::path::PathBuf,
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
        Command::Serve { listen, config } => match crate::serve::run(&listen, &config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cairn serve: {e:#}");
                1
            }
        },
        Command::Duplicity { args } => super::duplicity_main(args),
        Command::Restore {
            url,
            dest,
            time,
            path,
            force,
            numeric_owner,
            no_restore_ownership,
            target,
        } => super::common::report(super::common::restore(
            &url,
            &target,
            super::common::RestoreRequest {
                dest,
                time,
                path,
                force,
                numeric_owner,
                restore_owner: !no_restore_ownership,
            },
        )),
        Command::Status { url, target } => {
            super::common::report(super::common::status(&url, &target))
        }
    }
}
