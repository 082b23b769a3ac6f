//! The catalog on the command line: `cairn ls`, `status`, `history`,
//! `catalog rebuild|check`, and recording each `cairn backup`.

use super::common::{self, Outcome, TargetArgs};
use crate::archive::index::Index;
use crate::catalog::{Catalog, CatalogError, Recorder, SetRow};
use crate::repo::Repo;
use crate::time;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Where the target's catalog is: `--catalog`, else its archive dir.
pub fn path_for(repo: &Repo, args: &TargetArgs) -> Option<PathBuf> {
    crate::target::catalog_path(repo, args)
}

/// [`path_for`], or an error saying how to give one.
fn required_path(repo: &Repo, args: &TargetArgs) -> anyhow::Result<PathBuf> {
    path_for(repo, args)
        .ok_or_else(|| anyhow::anyhow!("no archive directory for the catalog; give --catalog FILE"))
}

/// A bar of sets indexed, with ETA, on a terminal; nothing otherwise.
struct SetsBar(Option<ProgressBar>);

impl crate::progress::Progress for SetsBar {
    fn total(&self, sets: u64) {
        if let Some(b) = &self.0 {
            b.set_length(sets);
            b.set_message("indexing sets");
        }
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

/// Brings `cat` in line with the target (listed in `coll`), with a bar.
fn sync_with_bar(
    cat: &mut Catalog,
    repo: &Repo,
    url: &str,
    coll: &crate::archive::collection::Collection,
) -> anyhow::Result<crate::catalog::SyncReport> {
    let bar = sets_bar();
    let r = cat.sync_with(repo, url, coll, &bar);
    if let Some(b) = &bar.0 {
        b.finish_and_clear();
    }
    Ok(r?)
}

fn sets_bar() -> SetsBar {
    SetsBar(std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    }))
}

/// Opens the catalog and brings it in line with the target, saying what
/// that took.
pub fn open_synced(repo: &Repo, url: &str, args: &TargetArgs) -> anyhow::Result<Catalog> {
    open_synced_with(repo, url, args, &repo.collection()?)
}

/// [`open_synced`] with a listing already made.
fn open_synced_with(
    repo: &Repo,
    url: &str,
    args: &TargetArgs,
    coll: &crate::archive::collection::Collection,
) -> anyhow::Result<Catalog> {
    let path = required_path(repo, args)?;
    let mut cat = Catalog::open(&path)?;
    for n in cat.notes.drain(..) {
        eprintln!("{n}");
    }
    let r = sync_with_bar(&mut cat, repo, url, coll)?;
    for s in &r.unindexed {
        eprintln!(
            "warning: the {s} is listed without its files: its signatures (or those of a set \
             before it) are missing or unreadable"
        );
    }
    Ok(cat)
}

fn parse_path(p: Option<&str>) -> anyhow::Result<Index> {
    Ok(match p {
        Some(p) => common::parse_restore_path(p)?.unwrap_or_else(Index::root),
        None => Index::root(),
    })
}

/// `cairn ls [--time T] [PATH]` from the catalog, as `list-current-files`
/// prints it: `asctime(mtime) path`.
pub fn ls(
    url: &str,
    args: &TargetArgs,
    at: Option<&str>,
    path: Option<&str>,
    long: bool,
) -> anyhow::Result<Outcome> {
    let repo = common::open_repo(url, args)?;
    let cat = match open_synced(&repo, url, args) {
        Ok(c) => c,
        // A catalog that cannot be written never stops a listing.
        Err(e) if path.is_none() && !long && is_local_failure(&e) => {
            eprintln!("warning: {e}; listing from the signatures instead");
            return common::list_current_files(url, args, at);
        }
        Err(e) => return Err(e),
    };
    let t = at
        .map(common::parse_time)
        .transpose()?
        .unwrap_or_else(time::now);
    let under = parse_path(path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    cat.walk(url, t, &under, |p, v| {
        if long {
            write!(out, "{} ", long_fields(v))?;
        } else {
            write!(out, "{} ", time::to_pretty(v.mtime))?;
        }
        out.write_all(&p.to_bytes())?;
        if let Some(l) = v.link.as_ref().filter(|_| long) {
            out.write_all(b" -> ")?;
            out.write_all(l)?;
        }
        out.write_all(b"\n")
    })?;
    out.flush()?;
    Ok(Outcome::ok())
}

/// `cairn ls --long`'s columns before the path: type, octal permissions,
/// owner/group (names, else numbers), size, mtime as epoch seconds and as a
/// date.
fn long_fields(v: &crate::catalog::Version) -> String {
    let name = |n: &[u8], id: u64| {
        if n.is_empty() {
            id.to_string()
        } else {
            String::from_utf8_lossy(n).into_owned()
        }
    };
    format!(
        "{:<4} {:04o} {}/{} {:>12} {} {}",
        v.kind.as_deref().unwrap_or("-"),
        v.mode,
        name(&v.uname, v.uid),
        name(&v.gname, v.gid),
        if v.kind.as_deref() == Some("reg") {
            v.size_text()
        } else {
            "-".into()
        },
        v.mtime,
        time::to_pretty(v.mtime),
    )
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A failure of the catalog file itself (unwritable, full disk), not of
/// the target: the command can go on without the catalog.
fn is_local_failure(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<CatalogError>(),
        Some(
            CatalogError::Sqlite { .. } | CatalogError::Dir { .. } | CatalogError::Unusable { .. }
        )
    )
}

/// `cairn status`: duplicity's collection-status, then (with `catalog`)
/// the catalog's summary of each set, from one listing of the target.
pub fn status(url: &str, args: &TargetArgs, catalog: bool) -> anyhow::Result<Outcome> {
    let repo = common::open_repo(url, args)?;
    let coll = repo.collection()?;
    common::print_status(&repo, &coll);
    if !catalog {
        return Ok(Outcome::ok());
    }
    // The summary is extra: collection-status has been printed, and what
    // stops the catalog (no passphrase, a full disk) must not fail it.
    match open_synced_with(&repo, url, args, &coll) {
        Ok(cat) => {
            println!();
            print_sets(&cat.sets(url)?);
        }
        Err(e) => eprintln!("warning: the catalog's summary is left out: {e}"),
    }
    Ok(Outcome::ok())
}

/// The catalog's summary of each set, after duplicity's collection-status.
pub fn print_sets(sets: &[SetRow]) {
    println!("Sets in the catalog:");
    println!(
        " {:<24} {:<5} {:>9} {:>11} {:>7} {:>8} {:>8} {:>11}",
        "Time", "Type", "Paths", "Size", "New", "Changed", "Deleted", "Stored"
    );
    for s in sets {
        if !s.indexed {
            println!(
                " {:<24} {:<5} (signatures missing: files not indexed)",
                time::to_pretty(s.end_time),
                if s.full { "full" } else { "inc" }
            );
            continue;
        }
        let approx = if s.source_slack > 0 { "~" } else { "" };
        println!(
            " {:<24} {:<5} {:>9} {:>11} {:>7} {:>8} {:>8} {:>11}",
            time::to_pretty(s.end_time),
            if s.full { "full" } else { "inc" },
            s.files,
            format!(
                "{approx}{}",
                size(s.source_bytes.saturating_sub(s.source_slack / 2))
            ),
            s.new_paths,
            s.changed_paths,
            s.deleted_paths,
            s.stored_bytes.map_or("-".to_string(), size),
        );
    }
}

/// `cairn history [URL] PATH`: every version of a path, one line each.
pub fn history(url: &str, args: &TargetArgs, path: &str) -> anyhow::Result<Outcome> {
    let repo = common::open_repo(url, args)?;
    let cat = open_synced(&repo, url, args)?;
    let ix = parse_path(Some(path))?;
    let versions = cat.history(url, &ix)?;
    if versions.is_empty() {
        return Err(crate::Error::PathNotInBackup {
            path: path.to_string(),
            time: "any backup".into(),
        }
        .into());
    }
    for (set, v) in versions {
        println!(
            "{}  {:<5} {:<16} {:<4} {:>12}  {}",
            time::to_pretty(set.end_time),
            if set.full { "full" } else { "inc" },
            v.change.as_str(),
            v.kind.as_deref().unwrap_or("-"),
            if v.kind.as_deref() == Some("reg") {
                v.size_text()
            } else {
                "-".into()
            },
            if v.change == crate::catalog::Change::Deleted {
                String::new()
            } else {
                time::to_pretty(v.mtime)
            },
        );
    }
    Ok(Outcome::ok())
}

/// `cairn catalog rebuild`: a new catalog from the target alone, replacing
/// the old one only once it is complete.
pub fn rebuild(url: &str, args: &TargetArgs) -> anyhow::Result<Outcome> {
    let repo = common::open_repo(url, args)?;
    let path = required_path(&repo, args)?;
    let bar = sets_bar();
    let r = Catalog::rebuild(&path, &repo, url, &repo.collection()?, &bar);
    if let Some(b) = &bar.0 {
        b.finish_and_clear();
    }
    let r = r?;
    println!(
        "Rebuilt {} from the target: {} sets indexed{}.",
        path.display(),
        r.added,
        if r.unindexed.is_empty() {
            String::new()
        } else {
            format!(", {} without signatures", r.unindexed.len())
        }
    );
    Ok(Outcome::ok())
}

/// `cairn catalog check`: the catalog against a rebuild from the target,
/// set by set. Exit 1 if they differ; sets not indexed yet are reported
/// (the next use indexes them) but are not a difference.
pub fn check(url: &str, args: &TargetArgs) -> anyhow::Result<Outcome> {
    let repo = common::open_repo(url, args)?;
    let path = required_path(&repo, args)?;
    let cat = Catalog::open(&path)?;
    for n in &cat.notes {
        println!("{n}");
    }
    let dir = tempfile::tempdir_in(&repo.tempdir)?;
    let mut fresh = Catalog::open(&dir.path().join("check.sqlite"))?;
    fresh.sync(&repo, url, &crate::progress::Silent)?;
    let problems = crate::catalog::compare(&cat, &fresh, url)?;
    let (behind, wrong): (Vec<_>, Vec<_>) = problems.iter().partition(|p| p.behind);
    for p in &behind {
        println!("not indexed yet: {}", p.what);
    }
    for p in &wrong {
        println!("differs: {}", p.what);
    }
    if wrong.is_empty() {
        println!(
            "The catalog {} agrees with the target ({} sets{}).",
            path.display(),
            fresh.sets(url)?.len(),
            if behind.is_empty() {
                String::new()
            } else {
                format!("; {} to index on next use", behind.len())
            }
        );
        Ok(Outcome::ok())
    } else {
        Ok(Outcome { code: 1 })
    }
}

/// Indexes the set a backup just wrote. A failure never fails the backup:
/// it is said, and the next use of the catalog catches up from the target.
pub fn record_backup(
    repo: &Repo,
    url: &str,
    args: &TargetArgs,
    report: &crate::backup::BackupReport,
    encoding: crate::archive::names::Encoding,
    recorder: &std::sync::Mutex<Recorder>,
    started: time::Seconds,
) {
    let Some(path) = path_for(repo, args) else {
        return;
    };
    let r = (|| -> Result<(), CatalogError> {
        let (cat, notes) =
            crate::target::index_backup(&path, repo, url, report, encoding, recorder)?;
        for n in notes {
            eprintln!("{n}");
        }
        cat.record_run(
            url,
            "backup",
            started,
            Some(report.stored_bytes),
            Some(report.time),
            None,
        )?;
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!(
            "warning: the backup is complete, but the catalog could not be updated: {e}. \
             The next `cairn ls`, `status` or backup brings it up to date from the target."
        );
    }
}

/// Records a backup that failed, best effort (the catalog may be what failed).
pub fn record_failed_backup(
    repo: &Repo,
    url: &str,
    args: &TargetArgs,
    started: time::Seconds,
    error: &str,
) {
    if let Some(path) = path_for(repo, args)
        && let Ok(cat) = Catalog::open(&path)
    {
        let _ = cat.record_run(url, "backup", started, None, None, Some(error));
    }
}
