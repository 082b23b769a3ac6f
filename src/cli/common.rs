//! What the native and the duplicity-compatible command lines share: opening
//! a target with its keys and cache, running an engine, and turning the
//! outcome into messages and an exit code.

use super::machine_log as mlog;
use crate::archive::index::Index;
use crate::error::Error;
use crate::repo::Repo;
use crate::restore::{self, RestoreOptions};
use crate::time;
use anyhow::Context;
use std::path::PathBuf;

pub use crate::target::{EncryptionRequest, TargetArgs};

/// The target at `url` with its cache and keys ([`crate::target::open`]).
pub fn open_repo(url: &str, args: &TargetArgs) -> anyhow::Result<Repo> {
    Ok(crate::target::open(url, args)?)
}

/// How a command ended, beyond success.
pub struct Outcome {
    pub code: i32,
}

impl Outcome {
    pub fn ok() -> Self {
        Outcome { code: 0 }
    }
}

/// duplicity's exit codes (`log.ErrorCode`) for the errors that have one.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    use crate::backend::BackendError;
    use crate::crypto::CryptoError;
    if e.downcast_ref::<CliError>().is_some() {
        return 23;
    }
    if let Some(s) = e.downcast_ref::<crate::source::selection::SelectionError>() {
        return s.exit_code();
    }
    let err = match e.downcast_ref::<crate::catalog::CatalogError>() {
        Some(crate::catalog::CatalogError::Target(inner)) => Some(inner),
        _ => e.downcast_ref::<Error>(),
    };
    let Some(err) = err else {
        if let Some(b) = e.downcast_ref::<BackendError>() {
            return backend_exit_code(b);
        }
        if e.downcast_ref::<CryptoError>().is_some() {
            return 31;
        }
        return 1;
    };
    match err {
        Error::DestinationNotEmpty(_) | Error::DestinationIsFile(_) => 11,
        Error::IncrementalWithoutSignatures(_) => 17,
        // duplicity's hostname_mismatch and source_dir_mismatch.
        Error::SourceMismatch { host: true, .. } => 3,
        Error::SourceMismatch { host: false, .. } => 42,
        Error::PathNotInBackup { .. } | Error::BadRestorePath { .. } => 19,
        Error::Crypto { .. } | Error::Encrypt { .. } | Error::Undecryptable(_) | Error::Keys(_) => {
            31
        }
        Error::Manifest { .. } | Error::NoManifest { .. } => 6,
        Error::Backend(b) => backend_exit_code(b),
        Error::Usage(_) => 2,
        Error::NoBackups(_) | Error::Collection(_) => 30,
        _ => 1,
    }
}

/// duplicity's code for a target error: 23 (3.x's command-line error) for
/// a target URL that names no usable target, 52 for a missing file, 50 for
/// the rest.
fn backend_exit_code(e: &crate::backend::BackendError) -> i32 {
    use crate::backend::BackendError;
    match e {
        BackendError::BadUrl { .. } | BackendError::UnsupportedUrl(_) => 23,
        BackendError::NotFound { .. } => 52,
        _ => 50,
    }
}

/// Errors in what the command line asked for, found before any engine ran;
/// duplicity 3.x exits 23 for these.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value or combination the command line cannot take; the message
    /// says which and what to give instead.
    #[error("{0}")]
    Usage(String),
    #[error("backup source {path} cannot be read ({source}); check the path")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Prints an outcome's error, if any, and returns the exit code.
pub fn report(r: anyhow::Result<Outcome>) -> i32 {
    match r {
        Ok(o) => o.code,
        Err(e) => {
            // Cairn's own errors already name their cause in the message.
            let msg = if e.downcast_ref::<Error>().is_some()
                || e.downcast_ref::<crate::catalog::CatalogError>().is_some()
            {
                format!("{e}")
            } else {
                format!("{e:#}")
            };
            eprintln!("cairn: {msg}");
            let code = exit_code(&e);
            mlog::error(code, error_class(&e, code), &msg);
            code
        }
    }
}

/// The exception class duplicity names in its log for an error like this
/// one (the extra of its `ERROR` record), where it names one.
fn error_class(e: &anyhow::Error, code: i32) -> Option<&'static str> {
    use crate::backend::BackendError;
    if let Some(b) = e
        .downcast_ref::<BackendError>()
        .or_else(|| match e.downcast_ref() {
            Some(Error::Backend(b)) => Some(b),
            _ => None,
        })
    {
        return Some(match b {
            BackendError::UnsupportedUrl(_) => "UnsupportedBackendScheme",
            BackendError::BadUrl { .. } => "InvalidBackendURL",
            _ => "BackendException",
        });
    }
    match code {
        23 => Some("CommandLineError"),
        31 => Some("GPGError"),
        _ => None,
    }
}

pub struct RestoreRequest {
    pub dest: PathBuf,
    pub time: Option<String>,
    pub path: Option<String>,
    pub force: bool,
    pub numeric_owner: bool,
    pub restore_owner: bool,
    /// `--dry-run`: list the volumes a restore would read, write nothing.
    pub dry_run: bool,
}

pub fn parse_time(s: &str) -> anyhow::Result<time::Seconds> {
    Ok(time::parse_user_time(s, time::now())?)
}

pub fn parse_restore_path(p: &str) -> anyhow::Result<Option<Index>> {
    let trimmed = p.trim_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        return Ok(None);
    }
    Ok(Some(Index::parse(trimmed.as_bytes()).map_err(|e| {
        Error::BadRestorePath {
            path: p.to_string(),
            reason: e.to_string(),
        }
    })?))
}

pub fn restore(url: &str, args: &TargetArgs, req: RestoreRequest) -> anyhow::Result<Outcome> {
    let repo = open_repo(url, args)?;
    let dry_run = req.dry_run;
    let mut opts = RestoreOptions::new(req.dest);
    opts.time = req.time.as_deref().map(parse_time).transpose()?;
    opts.path = match req.path.as_deref() {
        Some(p) => parse_restore_path(p)?,
        None => None,
    };
    if dry_run {
        return restore_plan(&repo, &opts);
    }
    opts.force = req.force;
    opts.numeric_owner = req.numeric_owner;
    opts.restore_owner = req.restore_owner;
    let report = restore::restore(&repo, &opts)?;
    for p in &report.problems {
        eprintln!("warning: {p}");
        mlog::log(mlog::WARNING, mlog::warning::GENERIC, None, &p.to_string());
    }
    for v in &report.damaged_volumes {
        eprintln!("error: unusable volume {v}");
        mlog::error(21, None, &format!("unusable volume {v}"));
    }
    for u in &report.unrestored {
        eprintln!("error: not restored: {u}");
        mlog::log(
            mlog::WARNING,
            mlog::warning::GENERIC,
            None,
            &format!("not restored: {u}"),
        );
    }
    let summary = format!(
        "Restored the backup of {} into {}: {} files ({} bytes), {} directories, {} other entries.",
        time::to_pretty(report.backup_time),
        opts.dest.display(),
        report.files,
        report.bytes,
        report.directories,
        report.others
    );
    eprintln!("{summary}");
    mlog::notice(&summary);
    if report.complete() {
        Ok(Outcome::ok())
    } else {
        eprintln!(
            "Restore INCOMPLETE: {} path(s) could not be restored and {} volume(s) were unusable; \
             everything else was restored.",
            report.unrestored.len(),
            report.damaged_volumes.len()
        );
        Ok(Outcome { code: 21 })
    }
}

/// `restore --dry-run`: duplicity's list of the volumes the restore would
/// read. Nothing is downloaded or written; a destination that a restore
/// would refuse is refused here too.
fn restore_plan(repo: &Repo, opts: &RestoreOptions) -> anyhow::Result<Outcome> {
    if !opts.force && !dest_is_empty(&opts.dest) {
        return Err(Error::DestinationNotEmpty(opts.dest.clone()).into());
    }
    let sel = restore::select(repo, opts.time, opts.path.as_ref())?;
    let plan = format!(
        "Required volumes to restore:\n\t{}",
        sel.volume_names().join("\n\t")
    );
    println!("{plan}");
    mlog::notice(&plan);
    Ok(Outcome::ok())
}

/// Whether a restore destination is absent or an empty directory.
fn dest_is_empty(dest: &std::path::Path) -> bool {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none()),
        Ok(_) => false,
        Err(_) => true,
    }
}

/// `collection-status`, in duplicity's layout.
pub fn status(url: &str, args: &TargetArgs) -> anyhow::Result<Outcome> {
    let repo = open_repo(url, args)?;
    let coll = repo.collection()?;
    print_status(&repo, &coll);
    Ok(Outcome::ok())
}

/// Prints and logs `collection-status` for a listing already made.
pub fn print_status(repo: &Repo, coll: &crate::archive::collection::Collection) {
    print!("{}", crate::archive::status::render(coll, repo));
    log_last_full(coll);
    log_collection(coll, repo, true);
}

/// The collection-status record (INFO 3): the report as its message, the
/// chains as its data lines. `always`: written at any verbosity, as for
/// the collection-status command; otherwise from `-v8` (backups).
fn log_collection(coll: &crate::archive::collection::Collection, repo: &Repo, always: bool) {
    use crate::archive::status;
    let extra = format!("\n{}", status::log_info(coll, repo).join("\n"));
    let text = status::render_collection(coll, repo);
    let text = text.trim_end_matches('\n');
    // duplicity logs it at level 8: named INFO, written from -v8.
    let write = if always { mlog::always } else { mlog::log };
    write(8, mlog::info::COLLECTION_STATUS, Some(&extra), text);
}

/// `list-current-files`: every path in the backup at a time, from the
/// signatures alone, as `asctime(mtime) path`.
pub fn list_current_files(
    url: &str,
    args: &TargetArgs,
    at: Option<&str>,
) -> anyhow::Result<Outcome> {
    use std::io::Write;
    let repo = open_repo(url, args)?;
    let coll = repo.collection()?;
    let t = at.map(parse_time).transpose()?.unwrap_or_else(time::now);
    let chain = coll
        .sig_chain_at(t)
        .ok_or_else(|| Error::NoBackups(repo.describe()))?
        .clone();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut combined =
            crate::archive::sigtar::Combined::start(scope, repo.signature_sources(&chain, Some(t)));
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        while let Some(e) = combined.next_entry().map_err(anyhow::Error::msg)? {
            if e.is_deleted() {
                continue;
            }
            write!(out, "{} ", time::to_pretty(e.meta.mtime))?;
            out.write_all(&e.index.to_bytes())?;
            out.write_all(b"\n")?;
            log_file_entry(&e);
        }
        out.flush()?;
        Ok(())
    })?;
    Ok(Outcome::ok())
}

/// A `list-current-files` entry as duplicity logs it (INFO 10, at any
/// verbosity): `TIME 'path' type` as data, `pretty-time path` as text.
fn log_file_entry(e: &crate::archive::sigtar::SigEntry) {
    if !mlog::is_open() {
        return;
    }
    let path = e.index.to_bytes();
    let extra = format!(
        "{} {} {}",
        time::to_string(e.meta.mtime),
        mlog::escape(&path),
        e.meta
            .kind
            .map_or("None", crate::archive::meta::FileType::name)
    );
    let text = format!(
        "{} {}",
        time::to_pretty(e.meta.mtime),
        String::from_utf8_lossy(&path)
    );
    mlog::always(mlog::INFO, mlog::info::FILE_LIST, Some(&extra), &text);
}

/// Builds the storage settings ([`crate::target::storage`]), saying which
/// recipients are weak.
pub fn storage(
    req: &EncryptionRequest,
    repo: &Repo,
    gnupg_home: Option<&PathBuf>,
) -> anyhow::Result<crate::backup::Storage> {
    let storage = crate::target::storage(req, repo, gnupg_home)?;
    if let crate::backup::Storage::Encrypted(cfg) = &storage {
        warn_weak_keys(cfg.recipients.iter().chain(&cfg.hidden_recipients));
    }
    Ok(storage)
}

/// Says which recipients are used only because their SHA-1 self-signatures
/// are accepted, as gpg accepts them.
fn warn_weak_keys<'a>(certs: impl Iterator<Item = &'a sequoia_openpgp::Cert>) {
    for w in certs.filter_map(crate::crypto::weak_key_warning) {
        eprintln!("warning: {w}");
        mlog::log(mlog::WARNING, mlog::warning::GENERIC, None, &w);
    }
}

pub struct BackupRequest {
    pub source: PathBuf,
    pub mode: crate::backup::Mode,
    pub volsize_mib: u64,
    /// Volumes uploaded at once while the next is encoded (0: one after
    /// the other).
    pub concurrency: usize,
    pub encryption: EncryptionRequest,
    pub selection: crate::source::selection::Selection,
    pub allow_source_mismatch: bool,
    pub full_if_older_than: Option<String>,
    pub current_time: Option<time::Seconds>,
    pub print_statistics: bool,
    /// 3.x's `--full-if-n-inc`: a full instead of an incremental once the
    /// last chain has this many incrementals.
    pub full_if_n_inc: Option<usize>,
    /// 3.x's `--skip-if-no-change`: store no incremental when nothing
    /// changed.
    pub skip_if_no_change: bool,
    /// 3.x's `--jsonstat`: print the statistics as JSON and store them at
    /// the target beside the manifest.
    pub jsonstat: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// `--dry-run`: do the whole backup, store nothing anywhere.
    pub dry_run: bool,
    /// duplicity's verbosity (0 error … 9 debug): what is said besides the
    /// statistics and errors.
    pub verbosity: u8,
    /// Record the set in the catalog as it is written.
    pub catalog: bool,
}

/// A dry run's view of a target: reads from the real target and archive
/// directory; uploads and deletions are discarded, and the archive directory
/// is a scratch copy, dropped with the returned directory.
fn dry_run_repo(repo: Repo) -> anyhow::Result<(Repo, tempfile::TempDir)> {
    let scratch = scratch_dir(&repo)?;
    if let Some(dir) = &repo.archive_dir {
        for name in repo.local_names() {
            copy_for_dry_run(&dir.join(&name), &scratch.path().join(&name))?;
        }
    }
    let inner = repo.backend;
    let dry = Repo {
        backend: Box::new(crate::backend::discard::DiscardWrites::new(inner)),
        archive_dir: Some(scratch.path().to_path_buf()),
        ..repo
    };
    Ok((dry, scratch))
}

/// The scratch archive directory: beside the real one when its parent
/// exists (same file system, so the cache is hard-linked, not copied),
/// otherwise in the temporary directory.
fn scratch_dir(repo: &Repo) -> anyhow::Result<tempfile::TempDir> {
    let beside = repo
        .archive_dir
        .as_deref()
        .and_then(std::path::Path::parent)
        .filter(|p| p.is_dir());
    let at = beside.unwrap_or(&repo.tempdir);
    tempfile::Builder::new()
        .prefix(".cairn-dry-run-")
        .tempdir_in(at)
        .with_context(|| {
            format!(
                "creating a scratch archive directory for --dry-run in {}",
                at.display()
            )
        })
}

/// Links a finished cache file into the scratch directory (the backup only
/// replaces such files, never writes into them); copies anything else.
fn copy_for_dry_run(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    if !from.is_file() {
        return Ok(());
    }
    let finished = !from.to_string_lossy().contains(".part");
    if finished && std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| {
        format!(
            "copying {} to a scratch directory for --dry-run",
            from.display()
        )
    })?;
    Ok(())
}

/// Runs a backup and prints duplicity's statistics block.
pub fn backup(url: &str, args: &TargetArgs, req: BackupRequest) -> anyhow::Result<Outcome> {
    use crate::backup::{self, BackupOptions};
    if let Err(source) = std::fs::metadata(&req.source) {
        return Err(CliError::Source {
            path: req.source,
            source,
        }
        .into());
    }
    args.remote
        .check_rate_with(req.concurrency)
        .map_err(Error::Usage)?;
    let repo = open_repo(url, args)?;
    let (repo, _scratch) = if req.dry_run {
        let (r, s) = dry_run_repo(repo)?;
        (r, Some(s))
    } else {
        (repo, None)
    };
    let storage = storage(&req.encryption, &repo, args.gnupg_home.as_ref())?;
    log_before_backup(&repo);
    let mode = mode_for_inc_count(&repo, req.mode, req.full_if_n_inc)?;
    let mut opts = BackupOptions::new(req.source, storage);
    opts.selection = req.selection;
    opts.mode = mode;
    opts.volsize = req.volsize_mib.max(1) << 20;
    opts.concurrency = req.concurrency;
    opts.allow_source_mismatch = req.allow_source_mismatch;
    opts.full_if_older_than = req
        .full_if_older_than
        .as_deref()
        .map(parse_time)
        .transpose()?;
    opts.time = req.current_time;
    let console = super::progress::Console::new(req.progress, req.verbosity);
    opts.progress = console.clone();
    let started = std::time::Instant::now();
    let start_wall = time::now();
    if req.skip_if_no_change
        && let Some(r) = unchanged_incremental(url, args, &opts)?
    {
        let msg = "Skipped volume upload, as effectively nothing has changed";
        if req.verbosity >= 3 {
            eprintln!("{msg}");
        }
        mlog::notice(msg);
        if req.print_statistics {
            let stats = statistics(&r, start_wall, started.elapsed().as_secs_f64());
            print!("{stats}");
            mlog::always(mlog::NOTICE, mlog::info::GENERIC, None, &stats);
        }
        return Ok(Outcome::ok());
    }
    let recorder = (req.catalog && !req.dry_run).then(|| {
        std::sync::Arc::new(std::sync::Mutex::new(crate::catalog::Recorder::new(
            &repo.tempdir,
        )))
    });
    if let Some(r) = &recorder {
        opts.observer = Some(r.clone());
    }
    let r = backup::backup(&repo, &opts);
    console.done();
    let r = match (r, &recorder) {
        (Ok(r), Some(rec)) => {
            let enc = opts.storage.encoding();
            super::catalog::record_backup(&repo, url, args, &r, enc, rec, start_wall);
            r
        }
        (Err(e), Some(_)) => {
            super::catalog::record_failed_backup(&repo, url, args, start_wall, &e.to_string());
            return Err(e.into());
        }
        (r, None) => r?,
    };
    report_backup_notes(&r, req.verbosity);
    if req.print_statistics {
        let stats = statistics(&r, start_wall, started.elapsed().as_secs_f64());
        print!("{stats}");
        mlog::always(mlog::NOTICE, mlog::info::GENERIC, None, &stats);
    }
    if req.jsonstat {
        let meta = super::jsonstat::Meta {
            start: start_wall as f64,
            end: start_wall as f64 + started.elapsed().as_secs_f64(),
            target: url,
            source: &opts.source.to_string_lossy(),
            concurrency: opts.concurrency,
        };
        write_jsonstat(&repo, &opts.storage, &r, &meta, req.dry_run)?;
    }
    Ok(Outcome::ok())
}

/// `--jsonstat`: the statistics as JSON, printed, logged and (unless a dry
/// run) stored at the target.
fn write_jsonstat(
    repo: &Repo,
    storage: &crate::backup::Storage,
    r: &crate::backup::BackupReport,
    meta: &super::jsonstat::Meta<'_>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let coll = repo.collection()?;
    let chain = coll
        .chains
        .iter()
        .find(|c| c.all_sets().any(|s| s.set_time() == r.time));
    // As 3.2.1 counts them: the incrementals before this one.
    let (incs, full_time) = chain.map_or((0, r.time), |c| {
        (c.incs.len().saturating_sub(1), c.full.set_time())
    });
    let json = super::jsonstat::render(r, incs, full_time, meta);
    println!("{json}");
    mlog::always(mlog::NOTICE, mlog::info::GENERIC, None, &json);
    if !dry_run {
        super::jsonstat::store(repo, storage, r, &json)?;
    }
    Ok(())
}

/// `--full-if-n-inc N`: a full when the last chain already has N or more
/// incrementals (3.x's check, made before the backup starts).
fn mode_for_inc_count(
    repo: &Repo,
    mode: crate::backup::Mode,
    n: Option<usize>,
) -> anyhow::Result<crate::backup::Mode> {
    use crate::backup::Mode;
    let Some(n) = n.filter(|_| mode != Mode::Full) else {
        return Ok(mode);
    };
    let coll = repo.collection()?;
    let incs = coll.chains.last().map_or(0, |c| c.incs.len());
    if n > 0 && incs >= n {
        let msg = format!(
            "Latest chain has {incs} incrementals (--full-if-n-inc {n}), forcing full backup"
        );
        eprintln!("{msg}");
        mlog::notice(&msg);
        return Ok(Mode::Full);
    }
    Ok(mode)
}

/// `--skip-if-no-change`: the backup run first against a copy of the
/// target that stores nothing; its report if it would be an incremental
/// with no entry in it (then nothing is stored), `None` otherwise (then the
/// real backup runs; only changed files are read twice).
fn unchanged_incremental(
    url: &str,
    args: &TargetArgs,
    opts: &crate::backup::BackupOptions,
) -> anyhow::Result<Option<crate::backup::BackupReport>> {
    use crate::archive::collection::SetKind;
    let (dry, _scratch) = dry_run_repo(open_repo(url, args)?)?;
    let mut probe = opts.clone();
    probe.progress = crate::progress::silent();
    let r = crate::backup::backup(&dry, &probe)?;
    let unchanged = r.kind == Some(SetKind::Inc) && r.delta_entries == 0;
    Ok(unchanged.then_some(r))
}

/// What duplicity logs before a backup: the last full's date and, at info
/// and up, the collection status. Only when a machine log is written (it
/// costs a listing of the target).
fn log_before_backup(repo: &Repo) {
    if !mlog::is_open() {
        return;
    }
    if let Ok(coll) = repo.collection() {
        log_last_full(&coll);
        log_collection(&coll, repo, false);
    }
}

/// The restart, skipped files and files that changed while read, on
/// standard error and in the machine log.
fn report_backup_notes(r: &crate::backup::BackupReport, verbosity: u8) {
    if !r.cleared.is_empty() && verbosity >= 3 {
        eprintln!(
            "The last backup was interrupted; started over (removed {} leftover file(s): {}).",
            r.cleared.len(),
            r.cleared.join(", ")
        );
    }
    for s in &r.skipped {
        let shown = crate::source::shown(&s.path);
        let msg = format!("skipped {shown}: {}", s.why);
        if verbosity >= 2 {
            eprintln!("warning: {msg}");
        }
        let extra = mlog::escape(s.path.as_os_str().as_encoded_bytes());
        mlog::log(
            mlog::WARNING,
            mlog::warning::CANNOT_READ,
            Some(&extra),
            &msg,
        );
    }
    for c in &r.changed_while_read {
        let msg = format!("{c} changed while it was being backed up; stored as it was read");
        if verbosity >= 2 {
            eprintln!("warning: {msg}");
        }
        mlog::log(mlog::WARNING, mlog::warning::GENERIC, None, &msg);
    }
}

/// duplicity's statistics block.
fn statistics(r: &crate::backup::BackupReport, start_wall: time::Seconds, elapsed: f64) -> String {
    let end = time::now();
    [
        "--------------[ Backup Statistics ]--------------".to_string(),
        format!(
            "StartTime {start_wall}.00 ({})",
            time::to_pretty(start_wall)
        ),
        format!("EndTime {end}.00 ({})", time::to_pretty(end)),
        format!("ElapsedTime {elapsed:.2} ({elapsed:.2} seconds)"),
        format!("SourceFiles {}", r.source_files),
        format!("SourceFileSize {}", r.source_bytes),
        format!("NewFiles {}", r.new_files),
        format!("DeletedFiles {}", r.deleted_files),
        format!("ChangedFiles {}", r.changed_files),
        format!("TotalDestinationSizeChange {}", r.stored_bytes),
        format!("Errors {}", r.skipped.len()),
        "-------------------------------------------------\n".to_string(),
    ]
    .join("\n")
}

fn times(ts: &[time::Seconds]) -> String {
    ts.iter()
        .map(|t| time::to_pretty(*t))
        .collect::<Vec<_>>()
        .join("\n")
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `remove-older-than`, `remove-all-but-n-full`, `remove-all-inc-of-but-n-full`,
/// with duplicity's messages: a plan without `force`, deletion with it.
pub fn remove(
    url: &str,
    args: &TargetArgs,
    how: crate::maintenance::Removal,
    force: bool,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    use crate::maintenance;
    let repo = open_repo(url, args)?;
    let _lock = repo.lock()?;
    let coll = repo.collection()?;
    print_last_full(&coll);
    let plan = maintenance::plan_removal(&repo, &coll, how);
    if !plan.required.is_empty() {
        eprintln!(
            "There are backup set(s) at time(s):\n{}\nWhich can't be deleted because newer sets depend on them.",
            times(&plan.required)
        );
    }
    if plan.active_chain_kept {
        eprintln!(
            "Current active backup chain is older than specified time.  However, it will not be deleted.  \
             To remove all your backups, manually purge the repository."
        );
    }
    if !plan.leftovers.is_empty() {
        println!(
            "{} an interrupted removal left (no manifest):\n{}",
            plural(
                plan.leftovers.len(),
                "Found an incomplete backup set",
                "Found incomplete backup sets"
            ),
            times(&plan.leftovers)
        );
    }
    if plan.chains.is_empty() && (plan.leftovers.is_empty() || !force) {
        if plan.leftovers.is_empty() {
            println!("No old backup sets found, nothing deleted.");
        } else {
            println!("Rerun command with --force option to actually delete.");
        }
        return Ok(Outcome::ok());
    }
    let n = plan.chains.len();
    if !force {
        println!(
            "{}\n{}\nRerun command with --force option to actually delete.",
            plural(
                n,
                "Found old backup chain at the following time:",
                "Found old backup chains at the following times:"
            ),
            times(&plan.chains)
        );
        return Ok(Outcome::ok());
    }
    if n > 0 {
        println!(
            "{}\n{}",
            plural(
                n,
                "Deleting backup chain at time:",
                "Deleting backup chains at times:"
            ),
            times(&plan.chains)
        );
    }
    for t in plan.chains.iter().rev() {
        if plan.keep_full {
            println!(
                "Deleting any incremental backup chain rooted at {}",
                time::to_pretty(*t)
            );
        } else {
            println!("Deleting complete backup chain {}", time::to_pretty(*t));
        }
    }
    if !dry_run {
        maintenance::apply(&repo, &plan)?;
        repo.tidy_cache(&repo.backend.list()?)?;
    }
    Ok(Outcome::ok())
}

/// `cleanup`: removes a partial last set, orphaned and incomplete sets and
/// orphaned signatures; lists them without `force`, and deletes nothing on a
/// dry run.
pub fn cleanup(
    url: &str,
    args: &TargetArgs,
    force: bool,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    use crate::maintenance;
    let repo = open_repo(url, args)?;
    let _lock = repo.lock()?;
    let coll = repo.collection()?;
    print_last_full(&coll);
    let plan = maintenance::plan_cleanup(&repo, &coll);
    if plan.is_empty() {
        if force && !dry_run {
            repo.tidy_cache(&repo.backend.list()?)?;
        }
        eprintln!("No extraneous files found, nothing deleted in cleanup.");
        return Ok(Outcome::ok());
    }
    let mut files: Vec<String> = plan.remote.clone();
    files.extend(plan.local.iter().map(|p| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }));
    let n = files.len();
    if !force {
        println!(
            "{}\n{}\nRun duplicity again with the --force option to actually delete.",
            plural(
                n,
                "Found the following file to delete:",
                "Found the following files to delete:"
            ),
            files.join("\n")
        );
        return Ok(Outcome::ok());
    }
    println!(
        "{}\n{}",
        plural(
            n,
            "Deleting this file from backend:",
            "Deleting these files from backend:"
        ),
        files.join("\n")
    );
    if !dry_run {
        maintenance::apply(&repo, &plan)?;
        repo.tidy_cache(&repo.backend.list()?)?;
    }
    Ok(Outcome::ok())
}

/// duplicity's first notice for most commands.
pub fn print_last_full(coll: &crate::archive::collection::Collection) {
    println!("{}", last_full_line(coll));
    log_last_full(coll);
}

fn last_full_line(coll: &crate::archive::collection::Collection) -> String {
    match coll.nth_last_full_time(1) {
        Some(t) => format!("Last full backup date: {}", time::to_pretty(t)),
        None => "Last full backup date: none".to_string(),
    }
}

fn log_last_full(coll: &crate::archive::collection::Collection) {
    mlog::notice(&last_full_line(coll));
}

/// `verify`: rebuilds the backup and compares it with `dir`.
pub fn verify(
    url: &str,
    args: &TargetArgs,
    dir: &std::path::Path,
    at: Option<&str>,
    path: Option<&str>,
    compare_data: bool,
    selection: &crate::source::selection::Selection,
) -> anyhow::Result<Outcome> {
    let repo = open_repo(url, args)?;
    let coll = repo.collection()?;
    print_last_full(&coll);
    let t = at.map(parse_time).transpose()?;
    let path = match path {
        Some(p) => parse_restore_path(p)?,
        None => None,
    };
    let r = crate::restore::verify::verify(&repo, dir, t, path.as_ref(), compare_data, selection)?;
    for d in &r.differences {
        println!("{d}");
    }
    for v in &r.restore.damaged_volumes {
        eprintln!("error: unusable volume {v}");
    }
    for u in &r.restore.unrestored {
        eprintln!("error: could not rebuild {u}");
    }
    let n = r.differences.len();
    println!(
        "Verify complete: {} {}, {} {}.",
        r.compared,
        plural(r.compared as usize, "file compared", "files compared"),
        n,
        plural(n, "difference found", "differences found")
    );
    if !r.restore.complete() {
        return Ok(Outcome { code: 21 });
    }
    Ok(Outcome {
        code: if n > 0 { 1 } else { 0 },
    })
}
