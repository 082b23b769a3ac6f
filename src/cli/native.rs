//! The native `cairn` command line.

use super::common::{self, EncryptionRequest, TargetArgs};
use crate::profile::Profile;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

const ABOUT: &str = "Encrypted, incremental backups in duplicity's archive format";

const LONG_ABOUT: &str = "\
Cairn backs up a directory as encrypted full and incremental sets of rsync \
deltas and OpenPGP, in exactly the format duplicity writes, so stock \
duplicity (0.8 or 3.x) restores what Cairn writes and Cairn restores and \
extends what duplicity wrote.

Targets are URLs: file:///mnt/usb/backups, rsync://user@host::module/path, \
sftp://user@host/path, s3://bucket/prefix.

The passphrase comes from the PASSPHRASE environment variable or from \
--passphrase-file (or the profile's [encryption] passphrase_file). \
Invoked as `duplicity` (a symlink), or as `cairn duplicity ...`, Cairn \
accepts duplicity's own command line.";

/// `cairn --version`: the version and the optional parts built in.
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let mut targets = vec!["file", "rsync"];
        if cfg!(feature = "sftp") {
            targets.push("sftp");
        }
        if cfg!(feature = "s3") {
            targets.push("s3");
        }
        format!(
            "{} (targets: {}; Tor: system tor{})",
            env!("CARGO_PKG_VERSION"),
            targets.join(" "),
            if cfg!(feature = "tor") {
                ", embedded arti"
            } else {
                ""
            }
        )
    })
}

const AFTER: &str = "\
EXAMPLES:
  Back up a directory (full the first time, incremental afterwards):
    PASSPHRASE=... cairn backup /home/me file:///mnt/usb/backups
  Everything from a profile:
    cairn --config /data/cairn/cairn.toml backup
  Restore the state of two weeks ago:
    cairn restore --time 2W file:///mnt/usb/backups /tmp/restored
  Keep the newest three full chains (shows the plan; --force deletes):
    cairn prune --keep-full 3 file:///mnt/usb/backups

EXIT STATUS:
  0 success; 1 verify found differences; 2 usage error; 11 restore \
destination not empty; 19 path not in the backup; 21 backup incomplete \
(damaged or missing volumes); 30 no backups; 31 decryption failed; 50+ \
target errors. These are duplicity's codes.";

#[derive(Parser)]
#[command(name = "cairn", version = version(), about = ABOUT, long_about = LONG_ABOUT, after_long_help = AFTER)]
struct Cli {
    /// A profile (TOML) with the source, target, selection, encryption,
    /// secrets files and retention to use; flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The target, when the profile does not name it.
#[derive(Args, Debug, Default, Clone)]
struct TargetUrl {
    /// The target URL, e.g. file:///mnt/usb/backups (default: the profile's).
    #[arg(value_name = "URL")]
    url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Back up a directory to a target.
    ///
    /// Writes an incremental set on top of the latest chain at the target,
    /// or a full set when there is none (or with --full, or when the last
    /// full is older than --full-if-older-than). Only what changed since
    /// the last backup is sent: rsync deltas of changed files, new files
    /// whole, and records of what was deleted. An interrupted backup is
    /// resumed by the next run.
    Backup {
        /// The directory to back up (default: the profile's source).
        source: Option<PathBuf>,
        /// The target URL (default: the profile's target).
        url: Option<String>,
        /// Start a new chain with a full backup.
        #[arg(long, conflicts_with = "incremental")]
        full: bool,
        /// Insist on an incremental backup (fail if there is no chain to extend).
        #[arg(long)]
        incremental: bool,
        /// Make a full backup instead if the last full is older than this (e.g. 1M).
        #[arg(long, value_name = "TIME")]
        full_if_older_than: Option<String>,
        /// Volume size in MiB [default: 200].
        #[arg(long, value_name = "MIB")]
        volsize: Option<u64>,
        /// Volumes uploaded at once while the next is encoded [default: 1];
        /// 0 uploads each volume before encoding the next.
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        /// Exclude paths matching GLOB (duplicity's globbing; first match wins).
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Include paths matching GLOB (put includes before a broader exclude).
        #[arg(long, value_name = "GLOB")]
        include: Vec<String>,
        /// Leave out directories that contain a file with this name.
        #[arg(long, value_name = "NAME")]
        exclude_if_present: Vec<String>,
        #[command(flatten)]
        crypt: CryptArgs,
        /// Extend a chain made from another host or directory.
        #[arg(long)]
        allow_source_mismatch: bool,
        /// No progress bar, only log lines.
        #[arg(long)]
        quiet: bool,
        /// Do not record the set in the catalog (the next `cairn ls` or
        /// `status` indexes it from the target instead).
        #[arg(long)]
        no_catalog: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Restore a point in time from a target into a directory.
    ///
    /// Restores the latest backup unless --time names another moment; with
    /// --path, restores only that file or directory, written as DEST itself.
    /// DEST must be new or empty unless --force is given. Every volume is
    /// checked against its manifest first; if one is damaged or missing,
    /// everything that does not depend on it is still restored, the damage
    /// is named, and the exit status is 21.
    Restore {
        /// The target URL.
        url: String,
        /// Where to write the restored files.
        dest: PathBuf,
        /// When to restore: now, 2026-11-25, 20261125T073022Z, or an age such as 3D or 2W.
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
        target: TargetArgs,
    },
    /// Show the backup chains and sets at a target (duplicity's
    /// collection-status), then the catalog's summary of each set: paths,
    /// size, what it added, changed and deleted.
    Status {
        #[command(flatten)]
        url: TargetUrl,
        /// Only duplicity's collection-status, without the catalog.
        #[arg(long)]
        no_catalog: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List the files in a backup, or under PATH in it.
    ///
    /// Answers from the catalog after a listing of the target (sets the
    /// catalog lacks are indexed from their signatures first); with
    /// --no-catalog, reads the signatures directly.
    Ls {
        /// The target URL (default: the profile's), then the PATH to list.
        #[arg(value_name = "URL|PATH")]
        args: Vec<String>,
        /// The backup time to list [default: the latest].
        #[arg(short, long)]
        time: Option<String>,
        /// Read the signatures directly instead of the catalog.
        #[arg(long)]
        no_catalog: bool,
        /// One line per path with type, permissions, owner, size and
        /// modification time, as `ls -l` shows them; a size from a set
        /// indexed from its signatures is an upper bound, shown as `<=N`.
        #[arg(short, long, conflicts_with = "no_catalog")]
        long: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every version of a path across all sets: one line per set that
    /// added, changed or deleted it, with its time, size and change.
    History {
        /// [URL] PATH: the target (default: the profile's) and the path,
        /// relative to the backed-up directory.
        #[arg(value_name = "URL|PATH", required = true)]
        args: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// The catalog: `rebuild` it from the target alone, or `check` it
    /// against the target.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Check a backup: rebuild it from the target (every volume's hash and every
    /// delta) and, with --compare-data, compare it with a directory.
    Verify {
        /// The target URL.
        url: String,
        /// The directory to compare with.
        dir: PathBuf,
        /// Compare types, permissions, owners, times and contents (else only
        /// the rebuild is checked, as duplicity does).
        #[arg(long)]
        compare_data: bool,
        #[arg(short, long)]
        time: Option<String>,
        #[arg(short, long)]
        path: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove old backup chains (shows the plan; --force deletes).
    ///
    /// Whole chains go, never the chain the next backup extends and never a
    /// set that a newer set depends on. With no rule given, the profile's
    /// [retention] applies.
    Prune {
        #[command(flatten)]
        url: TargetUrl,
        /// Keep the newest N full chains (duplicity's remove-all-but-n-full).
        #[arg(long, value_name = "N", group = "rule")]
        keep_full: Option<usize>,
        /// Keep incrementals only in the newest N chains
        /// (remove-all-inc-of-but-n-full).
        #[arg(long, value_name = "N", group = "rule")]
        keep_incrementals_of: Option<usize>,
        /// Remove chains that ended before this time or age (remove-older-than).
        #[arg(long, value_name = "TIME", group = "rule")]
        older_than: Option<String>,
        /// Really delete.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove what interrupted or broken runs left: partial, orphaned and
    /// incomplete sets and orphaned signatures (shows them; --force deletes).
    Cleanup {
        #[command(flatten)]
        url: TargetUrl,
        /// Really delete.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run the appliance: scheduled backups, jobs, LEDs and button, and its
    /// HTTP API (the configuration is --config, default /data/cairn/cairn.toml).
    Serve {
        /// Address to listen on (default: the configuration's `listen`, else
        /// 0.0.0.0:8080).
        #[arg(long)]
        listen: Option<String>,
        /// The LEDs and button: the Pi's GPIO, a simulated board (driven
        /// through the API), or auto (the Pi's on a Raspberry Pi).
        #[arg(long, value_enum, default_value = "auto")]
        board: crate::serve::BoardChoice,
        /// Run on a simulated clock starting at TIME, set through
        /// `POST /api/clock` (for tests and demonstrations).
        #[arg(long, value_name = "TIME")]
        sim_clock: Option<String>,
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

#[derive(Subcommand)]
enum CatalogAction {
    /// Build the catalog anew from the target's manifests and signatures
    /// (never its volumes); the old one is replaced when the new one is done.
    Rebuild {
        #[command(flatten)]
        url: TargetUrl,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Compare the catalog, set by set, with what the target holds; exit 1
    /// if they differ.
    Check {
        #[command(flatten)]
        url: TargetUrl,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `[URL] [PATH]`: one argument is a URL when it has a scheme, or when no
/// profile names a target; otherwise it is the path.
fn url_and_path(
    args: Vec<String>,
    p: &Profile,
    path_required: bool,
) -> anyhow::Result<(String, Option<String>)> {
    let mut args = args.into_iter();
    let (a, b) = (args.next(), args.next());
    if args.next().is_some() {
        anyhow::bail!("too many arguments: give [URL] [PATH]");
    }
    let (url, path) = match (a, b) {
        (Some(u), Some(p)) => (Some(u), Some(p)),
        (Some(x), None) if path_required || (!x.contains("://") && p.target.is_some()) => {
            (None, Some(x))
        }
        (x, None) => (x, None),
        (None, Some(_)) => unreachable!("positional order"),
    };
    Ok((url_or_profile(url, p)?, path))
}

/// Encryption flags.
#[derive(Args, Debug, Default, Clone)]
struct CryptArgs {
    /// Store volumes unencrypted (gzip only).
    #[arg(long)]
    no_encryption: bool,
    /// Store volumes uncompressed.
    #[arg(long)]
    no_compression: bool,
    /// Encrypt to this public key (key file, key ID or fingerprint in the
    /// GnuPG keyring) instead of a passphrase; repeatable. Backups then need
    /// no secret key; restores do.
    #[arg(long, value_name = "KEY")]
    encrypt_key: Vec<String>,
    /// Sign every file with this secret key (unlocked with SIGN_PASSPHRASE).
    #[arg(long, value_name = "KEY")]
    sign_key: Option<String>,
    /// gpg options as duplicity's --gpg-options, e.g. "--compress-level=9".
    #[arg(long, value_name = "OPTIONS")]
    gpg_options: Option<String>,
}

/// Fills target arguments from the profile where the flags left them empty.
fn with_profile(mut t: TargetArgs, p: &Profile) -> TargetArgs {
    t.archive_dir = t.archive_dir.or_else(|| p.archive_dir.clone());
    t.catalog = t.catalog.or_else(|| p.catalog.clone());
    t.name = t.name.or_else(|| p.name.clone());
    t.tempdir = t.tempdir.or_else(|| p.tempdir.clone());
    t.passphrase_file = t
        .passphrase_file
        .or_else(|| p.encryption.passphrase_file.clone());
    t.remote = t.remote.or(&p.remote);
    t
}

fn url_or_profile(url: Option<String>, p: &Profile) -> anyhow::Result<String> {
    url.or_else(|| p.target.clone()).ok_or_else(|| {
        anyhow::anyhow!("no target: give a URL or a profile (--config) with `target = ...`")
    })
}

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // The Tor relay's stdout is rsync's data stream: nothing else may print.
    if let Command::TorConnect(args) = cli.command {
        return crate::backend::tor::connect_main(args);
    }
    // `serve` only checks that its configuration exists; the service reads
    // it. The duplicity line has its own options.
    let needs_profile = !matches!(
        cli.command,
        Command::Serve { .. } | Command::Duplicity { .. }
    );
    let profile = match cli.config.as_ref().filter(|_| needs_profile) {
        Some(p) => match Profile::load(p) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("cairn: {e}");
                return 2;
            }
        },
        None => Profile::default(),
    };
    common::report(run(cli.command, &profile, cli.config.as_deref()))
}

fn run(
    command: Command,
    profile: &Profile,
    config: Option<&std::path::Path>,
) -> anyhow::Result<common::Outcome> {
    match command {
        Command::Serve {
            listen,
            board,
            sim_clock,
        } => {
            let config = config.map_or_else(
                || PathBuf::from(crate::serve::DEFAULT_CONFIG),
                std::path::Path::to_path_buf,
            );
            let sim_clock = sim_clock.as_deref().map(common::parse_time).transpose()?;
            crate::serve::run(crate::serve::ServeOptions {
                listen,
                config,
                board,
                sim_clock,
            })?;
            Ok(common::Outcome::ok())
        }
        Command::Duplicity { args } => Ok(common::Outcome {
            code: super::duplicity_main(args),
        }),
        Command::TorConnect(args) => Ok(common::Outcome {
            code: crate::backend::tor::connect_main(args),
        }),
        Command::Backup {
            source,
            url,
            full,
            incremental,
            full_if_older_than,
            volsize,
            concurrency,
            exclude,
            include,
            exclude_if_present,
            crypt,
            allow_source_mismatch,
            quiet,
            no_catalog,
            target,
        } => {
            let target = with_profile(target, profile);
            let source = source.or_else(|| profile.source.clone()).ok_or_else(|| {
                anyhow::anyhow!("no source: give a directory or a profile with `source = ...`")
            })?;
            let url = url_or_profile(url, profile)?;
            let mut sel = crate::source::selection::Selection::default();
            for n in &exclude_if_present {
                sel.add("exclude-if-present", n, &source)?;
            }
            for g in &include {
                sel.add("include", g, &source)?;
            }
            for g in &exclude {
                sel.add("exclude", g, &source)?;
            }
            if !profile.selection.is_empty() {
                sel.add_filelist(&profile.selection.join("\n"), false, false, &source)?;
            }
            sel.check()?;
            let enc = &profile.encryption;
            if let Some(f) = &enc.sign_passphrase_file {
                let (p, note) = crate::profile::read_secret(f)?;
                if let Some(n) = note {
                    eprintln!("{n}");
                }
                // SAFETY: single-threaded at this point; the value is read
                // back by this process only.
                unsafe { std::env::set_var("SIGN_PASSPHRASE", p) };
            }
            common::backup(
                &url,
                &target,
                common::BackupRequest {
                    source,
                    mode: if full {
                        crate::backup::Mode::Full
                    } else if incremental {
                        crate::backup::Mode::Incremental
                    } else {
                        crate::backup::Mode::Auto
                    },
                    volsize_mib: volsize.or(profile.volsize).unwrap_or(200),
                    concurrency: concurrency.or(profile.concurrency).unwrap_or(1),
                    encryption: EncryptionRequest {
                        encrypt: !crypt.no_encryption && enc.enabled.unwrap_or(true),
                        compress: !crypt.no_compression && enc.compress.unwrap_or(true),
                        gpg_options: crypt
                            .gpg_options
                            .or_else(|| enc.gpg_options.clone())
                            .unwrap_or_default(),
                        encrypt_keys: if crypt.encrypt_key.is_empty() {
                            enc.encrypt_keys.clone()
                        } else {
                            crypt.encrypt_key
                        },
                        hidden_keys: enc.hidden_keys.clone(),
                        sign_key: crypt.sign_key.or_else(|| enc.sign_key.clone()),
                    },
                    selection: sel,
                    allow_source_mismatch,
                    full_if_older_than: full_if_older_than
                        .or_else(|| profile.full_if_older_than.clone()),
                    current_time: None,
                    print_statistics: true,
                    full_if_n_inc: None,
                    skip_if_no_change: false,
                    jsonstat: false,
                    progress: !quiet,
                    dry_run: false,
                    // Cairn's own command line always shows volumes and notes.
                    verbosity: 5,
                    catalog: !no_catalog,
                },
            )
        }
        Command::Restore {
            url,
            dest,
            time,
            path,
            force,
            numeric_owner,
            no_restore_ownership,
            target,
        } => common::restore(
            &url,
            &with_profile(target, profile),
            common::RestoreRequest {
                dest,
                time,
                path,
                force,
                numeric_owner,
                restore_owner: !no_restore_ownership,
                dry_run: false,
            },
        ),
        Command::Status {
            url,
            no_catalog,
            target,
        } => {
            let (url, target) = (
                url_or_profile(url.url, profile)?,
                with_profile(target, profile),
            );
            super::catalog::status(&url, &target, !no_catalog)
        }
        Command::Ls {
            args,
            time,
            no_catalog,
            long,
            target,
        } => {
            let (url, path) = url_and_path(args, profile, false)?;
            let target = with_profile(target, profile);
            if no_catalog {
                if path.is_some() {
                    anyhow::bail!("--no-catalog lists the whole backup; leave out PATH");
                }
                common::list_current_files(&url, &target, time.as_deref())
            } else {
                super::catalog::ls(&url, &target, time.as_deref(), path.as_deref(), long)
            }
        }
        Command::History { args, target } => {
            let (url, path) = url_and_path(args, profile, true)?;
            let path =
                path.ok_or_else(|| anyhow::anyhow!("give the PATH whose history to show"))?;
            super::catalog::history(&url, &with_profile(target, profile), &path)
        }
        Command::Catalog { action } => match action {
            CatalogAction::Rebuild { url, target } => super::catalog::rebuild(
                &url_or_profile(url.url, profile)?,
                &with_profile(target, profile),
            ),
            CatalogAction::Check { url, target } => super::catalog::check(
                &url_or_profile(url.url, profile)?,
                &with_profile(target, profile),
            ),
        },
        Command::Verify {
            url,
            dir,
            compare_data,
            time,
            path,
            target,
        } => common::verify(
            &url,
            &with_profile(target, profile),
            &dir,
            time.as_deref(),
            path.as_deref(),
            compare_data,
            &Default::default(),
        ),
        Command::Prune {
            url,
            keep_full,
            keep_incrementals_of,
            older_than,
            force,
            target,
        } => {
            use crate::maintenance::Removal;
            let flags = crate::profile::Retention {
                keep_full,
                keep_incrementals_of,
                older_than,
            };
            let now = crate::time::now();
            let how = match flags.removal(now)? {
                Some(how) => how,
                None => profile.retention.removal(now)?.ok_or_else(|| {
                    anyhow::anyhow!(
                        "no retention rule: give --keep-full, --keep-incrementals-of or --older-than, or a profile with [retention]"
                    )
                })?,
            };
            if matches!(
                how,
                Removal::AllButNFull(0) | Removal::IncrementalsOfAllButNFull(0)
            ) {
                anyhow::bail!("the count must be at least 1");
            }
            common::remove(
                &url_or_profile(url.url, profile)?,
                &with_profile(target, profile),
                how,
                force,
                false,
            )
        }
        Command::Cleanup { url, force, target } => common::cleanup(
            &url_or_profile(url.url, profile)?,
            &with_profile(target, profile),
            force,
            false,
        ),
    }
}
