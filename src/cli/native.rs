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
    /// Back up a directory to a target.
    ///
    /// Writes an incremental backup on top of the latest chain at the target,
    /// or a full backup if there is none (or with --full). Encrypts with the
    /// passphrase in PASSPHRASE (or --passphrase-file) unless --no-encryption.
    Backup {
        /// The directory to back up.
        source: std::path::PathBuf,
        /// The target, e.g. file:///mnt/usb/backups.
        url: String,
        /// Start a new chain with a full backup.
        #[arg(long, conflicts_with = "incremental")]
        full: bool,
        /// Insist on an incremental backup (fail if there is no chain to extend).
        #[arg(long)]
        incremental: bool,
        /// Make a full backup instead if the last full is older than this (e.g. 2M).
        #[arg(long, value_name = "TIME")]
        full_if_older_than: Option<String>,
        /// Volume size in MiB.
        #[arg(long, default_value_t = 200, value_name = "MIB")]
        volsize: u64,
        /// Store volumes unencrypted (gzip only).
        #[arg(long)]
        no_encryption: bool,
        /// Store volumes uncompressed (with --no-encryption).
        #[arg(long)]
        no_compression: bool,
        /// Extend a chain made from another host or directory.
        #[arg(long)]
        allow_source_mismatch: bool,
        #[command(flatten)]
        target: super::common::TargetArgs,
    },
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
    /// Connect to HOST PORT over Tor and relay stdin/stdout (rsync's
    /// RSYNC_CONNECT_PROG, ssh's ProxyCommand).
    #[command(hide = true)]
    TorConnect(crate::backend::tor::ConnectArgs),
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
        Command::TorConnect(args) => crate::backend::tor::connect_main(args),
        Command::Backup {
            source,
            url,
            full,
            incremental,
            full_if_older_than,
            volsize,
            no_encryption,
            no_compression,
            allow_source_mismatch,
            target,
        } => super::common::report(super::common::backup(
            &url,
            &target,
            super::common::BackupRequest {
                source,
                mode: if full {
                    crate::backup::Mode::Full
                } else if incremental {
                    crate::backup::Mode::Incremental
                } else {
                    crate::backup::Mode::Auto
                },
                volsize_mib: volsize,
                encrypt: !no_encryption,
                compress: !no_compression,
                allow_source_mismatch,
                full_if_older_than,
                current_time: None,
                print_statistics: true,
            },
        )),
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
