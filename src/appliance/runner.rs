//! Runs one job of one plan on the engine, through the same library calls
//! the command line makes ([`crate::target`]): open the target with its
//! keys, back up with the catalog recording, apply retention, restore,
//! verify, clean up. Knows nothing of threads, HTTP or LEDs.

use super::config::{Config, Plan};
use super::jobs::{Kind, RestoreSpec};
use crate::backup::{self, BackupOptions};
use crate::catalog::{Catalog, Recorder};
use crate::maintenance::{self, Removal};
use crate::progress::{Cancel, Progress};
use crate::repo::Repo;
use crate::target::{self, EncryptionRequest, TargetArgs};
use crate::time::{self, Seconds};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What a job runs with.
pub struct Context<'a> {
    pub config: &'a Config,
    /// The time now (the daemon's clock).
    pub now: Seconds,
    /// Stamp sets with `now` (a simulated clock) instead of the system's.
    pub fixed_time: bool,
    pub progress: Arc<dyn Progress>,
    pub cancel: Cancel,
    /// A restore's time, path and destination name.
    pub restore: Option<RestoreSpec>,
}

/// What a job did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// One line for people: what happened.
    pub message: String,
    pub bytes: Option<u64>,
    pub volumes: Option<u64>,
    pub set_time: Option<Seconds>,
    /// Something the owner should look at although the job ran (a verify
    /// that found damage, a catalog that could not be updated).
    pub problem: Option<String>,
    /// The share of the target's volumes read back within the plan's
    /// `verify_within`, after the rotating check.
    pub verify_coverage: Option<f64>,
    /// Each further target (public URL) and how copying the set to it went.
    pub replicas: Vec<(String, Result<String, String>)>,
    /// The run's log beyond its one line: `(level, line)`, level `info` or
    /// `warning` (what was not backed up, and why).
    pub log: Vec<(&'static str, String)>,
}

/// At most this many lines of one kind go into a run's log.
const LOG_LINES: usize = 200;

/// A backup's log: what was chosen and why, the counts, and every path that
/// was not backed up as it is (up to [`LOG_LINES`] of each kind).
pub fn backup_log(r: &crate::backup::BackupReport) -> Vec<(&'static str, String)> {
    let mut log = vec![(
        "info",
        format!(
            "{} files, {} bytes in the source: {} new, {} changed, {} deleted",
            r.source_files, r.source_bytes, r.new_files, r.changed_files, r.deleted_files
        ),
    )];
    log.extend(r.note.iter().map(|n| ("info", n.clone())));
    if !r.cleared.is_empty() {
        log.push((
            "info",
            format!(
                "removed the leftovers of an interrupted run: {}",
                r.cleared.join(", ")
            ),
        ));
    }
    let skipped = r
        .skipped
        .iter()
        .map(|s| format!("not backed up: {}: {}", s.path.display(), s.why));
    capped(&mut log, "warning", skipped);
    let changed = r
        .changed_while_read
        .iter()
        .map(|p| format!("changed while it was read, stored as read: {p}"));
    capped(&mut log, "warning", changed);
    if r.sockets > 0 {
        log.push((
            "info",
            format!("{} socket(s) passed over (never backed up)", r.sockets),
        ));
    }
    log
}

/// Adds the lines, at most [`LOG_LINES`] of them, then how many more there were.
fn capped(
    log: &mut Vec<(&'static str, String)>,
    level: &'static str,
    lines: impl ExactSizeIterator<Item = String>,
) {
    let n = lines.len();
    log.extend(lines.take(LOG_LINES).map(|l| (level, l)));
    if n > LOG_LINES {
        log.push((level, format!("… and {} more like these", n - LOG_LINES)));
    }
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Engine(#[from] crate::Error),
    #[error(transparent)]
    Selection(#[from] crate::source::selection::SelectionError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("{0}")]
    Plan(String),
}

/// The target arguments of a plan; the appliance keeps its cache and its
/// catalog beside the configuration unless the plan says otherwise.
pub fn target_args(config: &Config, plan: &Plan) -> TargetArgs {
    let p = &plan.profile;
    let home = config.file.parent().map(PathBuf::from).unwrap_or_default();
    TargetArgs {
        archive_dir: p.archive_dir.clone().or_else(|| Some(home.join("cache"))),
        name: p.name.clone(),
        passphrase_file: p.encryption.passphrase_file.clone(),
        // Volumes are staged on the data partition, never in a RAM /tmp.
        tempdir: p.tempdir.clone().or_else(|| Some(home.join("tmp"))),
        remote: p.remote.clone(),
        catalog: p
            .catalog
            .clone()
            .or_else(|| Some(home.join("catalog.sqlite"))),
        ..TargetArgs::default()
    }
}

/// Runs `kind` for `plan`.
pub fn run(plan: &Plan, kind: Kind, cx: &Context) -> Result<Report, RunError> {
    let args = target_args(cx.config, plan);
    if let Some(t) = &args.tempdir {
        std::fs::create_dir_all(t).map_err(|e| crate::Error::local("create", t, e))?;
    }
    let repo = target::open(plan.target(), &args)?;
    match kind {
        Kind::Backup => {
            let mut r = backup_set(plan, &args, &repo, cx)?;
            let removed = retention(plan, &repo, cx.now)?;
            if removed > 0 {
                r.message += &format!("; retention removed {removed} file(s)");
                r.log.push((
                    "info",
                    format!("retention removed {removed} file(s) at the target"),
                ));
            }
            sync_catalog(plan, &args, &repo, &mut r);
            check_slice(plan, &args, &repo, cx.now, &mut r)?;
            r.replicas = plan
                .replicas
                .iter()
                .map(|url| {
                    (
                        crate::catalog::public_url(url),
                        replicate_to(plan, cx, &repo, url),
                    )
                })
                .collect();
            Ok(r)
        }
        Kind::Retention => {
            let removed = retention(plan, &repo, cx.now)?;
            let mut r = Report {
                message: format!("retention removed {removed} file(s)"),
                ..Report::default()
            };
            sync_catalog(plan, &args, &repo, &mut r);
            Ok(r)
        }
        Kind::Cleanup => cleanup(&repo),
        Kind::Verify => verify(plan, &repo),
        Kind::Restore => restore(plan, &repo, cx),
        Kind::Rebuild => rebuild(plan, &args, &repo, cx),
    }
}

/// A backup of the plan's source, recorded in the catalog as it is written.
fn backup_set(
    plan: &Plan,
    args: &TargetArgs,
    repo: &Repo,
    cx: &Context,
) -> Result<Report, RunError> {
    let p = &plan.profile;
    let storage = target::storage(&EncryptionRequest::from_profile(&p.encryption), repo, None)?;
    let mut opts = BackupOptions::new(plan.source().to_path_buf(), storage);
    opts.selection = target::selection(&p.selection, plan.source())?;
    opts.volsize = p.volsize.unwrap_or(200).max(1) << 20;
    opts.concurrency = p.concurrency.unwrap_or(1);
    if let Some(age) = &p.full_if_older_than {
        let t = time::parse_user_time(age, cx.now)
            .map_err(|e| RunError::Plan(format!("full_if_older_than: {e}")))?;
        opts.full_if_older_than = Some(t);
    }
    opts.time = cx.fixed_time.then_some(cx.now);
    opts.progress = cx.progress.clone();
    opts.cancel = cx.cancel.clone();
    let recorder = Arc::new(Mutex::new(Recorder::new(&repo.tempdir)));
    opts.observer = Some(recorder.clone());
    let r = backup::backup(repo, &opts)?;
    let mut report = Report {
        message: format!(
            "{} set of {} stored: {} volume(s), {} bytes",
            if r.kind == Some(crate::archive::collection::SetKind::Full) {
                "full"
            } else {
                "incremental"
            },
            time::to_string(r.time),
            r.volumes,
            r.stored_bytes
        ),
        bytes: Some(r.stored_bytes),
        volumes: Some(r.volumes),
        set_time: Some(r.time),
        problem: None,
        verify_coverage: None,
        replicas: Vec::new(),
        log: backup_log(&r),
    };
    if let Some(path) = target::catalog_path(repo, args) {
        let enc = opts.storage.encoding();
        if let Err(e) = target::index_backup(&path, repo, plan.target(), &r, enc, &recorder) {
            report.problem = Some(format!("the catalog could not be updated: {e}"));
        }
    }
    Ok(report)
}

/// The plan's retention rule at `now`, applied; the number of files removed.
fn retention(plan: &Plan, repo: &Repo, now: Seconds) -> Result<usize, RunError> {
    let rule = plan.profile.retention.removal(now);
    let how = match rule.map_err(|e| RunError::Plan(format!("retention.older_than: {e}")))? {
        None => return Ok(0),
        // A count of 0 is taken as 1: the newest chain always stays.
        Some(Removal::AllButNFull(n)) => Removal::AllButNFull(n.max(1)),
        Some(Removal::IncrementalsOfAllButNFull(n)) => Removal::IncrementalsOfAllButNFull(n.max(1)),
        Some(how) => how,
    };
    let coll = repo.collection()?;
    let removal = maintenance::plan_removal(repo, &coll, how);
    maintenance::apply(repo, &removal)?;
    Ok(removal.remote.len())
}

/// Brings the catalog up to date with the target after files were removed.
fn sync_catalog(plan: &Plan, args: &TargetArgs, repo: &Repo, report: &mut Report) {
    let Some(path) = target::catalog_path(repo, args) else {
        return;
    };
    let r = Catalog::open(&path)
        .and_then(|mut c| c.sync(repo, plan.target(), &crate::progress::Silent));
    if let Err(e) = r {
        report.problem = Some(format!("the catalog could not be updated: {e}"));
    }
}

/// duplicity's `cleanup --force`.
fn cleanup(repo: &Repo) -> Result<Report, RunError> {
    let coll = repo.collection()?;
    let plan = maintenance::plan_cleanup(repo, &coll);
    maintenance::apply(repo, &plan)?;
    Ok(Report {
        message: format!(
            "cleanup removed {} file(s)",
            plan.remote.len() + plan.local.len()
        ),
        ..Report::default()
    })
}

/// Every volume of the newest chain read, decrypted and checked, and
/// compared with the source.
fn verify(plan: &Plan, repo: &Repo) -> Result<Report, RunError> {
    let sel = target::selection(&plan.profile.selection, plan.source())?;
    let v = crate::restore::verify::verify(repo, plan.source(), None, None, true, &sel)?;
    let damaged = &v.restore.damaged_volumes;
    let problem = (!damaged.is_empty() || !v.restore.problems.is_empty()).then(|| {
        format!(
            "verify found damage at the target: {}",
            damaged
                .iter()
                .chain(&v.restore.problems)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    Ok(Report {
        message: format!(
            "verified {} file(s); {} differ from the source now",
            v.compared,
            v.differences.len()
        ),
        problem,
        ..Report::default()
    })
}

/// A point in time (the newest set unless the job says), whole or one
/// path, into a new directory under the restore directory (never over the
/// live source, never into an existing directory).
fn restore(plan: &Plan, repo: &Repo, cx: &Context) -> Result<Report, RunError> {
    let spec = cx.restore.clone().unwrap_or_default();
    spec.validate().map_err(RunError::Plan)?;
    if spec.replace.is_some() {
        return restore_over_original(plan, repo, cx, &spec);
    }
    let name = spec
        .into
        .clone()
        .unwrap_or_else(|| format!("{}-{}", plan.id, time::to_string(cx.now)));
    let dest = cx.config.restore_dir.join(name);
    if dest.symlink_metadata().is_ok() {
        return Err(RunError::Plan(format!(
            "{} exists already; a restore never writes into an existing directory",
            dest.display()
        )));
    }
    std::fs::create_dir_all(&cx.config.restore_dir)
        .map_err(|e| crate::Error::local("create", &cx.config.restore_dir, e))?;
    let mut opts = crate::restore::RestoreOptions::new(&dest);
    opts.time = spec.time;
    opts.path = match &spec.path {
        Some(p) if !p.is_empty() => Some(
            crate::archive::index::Index::parse(p.as_bytes())
                .map_err(|e| RunError::Plan(format!("path {p:?}: {e}")))?,
        ),
        _ => None,
    };
    let r = crate::restore::restore(repo, &opts)?;
    let problem = (!r.complete()).then(|| {
        format!(
            "the restore into {} is incomplete: {}",
            dest.display(),
            r.damaged_volumes
                .iter()
                .chain(&r.unrestored)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    Ok(Report {
        message: format!(
            "restored the set of {} into {} ({} files, {} bytes)",
            time::to_string(r.backup_time),
            dest.display(),
            r.files,
            r.bytes
        ),
        bytes: Some(r.bytes),
        set_time: Some(r.backup_time),
        problem,
        ..Report::default()
    })
}

/// `path` put back where it was, the version there kept beside it
/// (`restore::replace`); `replace` must name that place.
fn restore_over_original(
    plan: &Plan,
    repo: &Repo,
    cx: &Context,
    spec: &RestoreSpec,
) -> Result<Report, RunError> {
    spec.check_replace(plan.source()).map_err(RunError::Plan)?;
    let path = spec.path.as_deref().unwrap_or_default();
    let mut opts = crate::restore::RestoreOptions::new(plan.source());
    opts.time = spec.time;
    opts.path = Some(
        crate::archive::index::Index::parse(path.as_bytes())
            .map_err(|e| RunError::Plan(format!("path {path:?}: {e}")))?,
    );
    let stamp = time::to_string(cx.now);
    // Noted first, so that a power cut before the end is finished or
    // undone later (`recover_put_backs`).
    let notes = put_back_notes(&cx.config.file);
    let r = notes.replace(repo, plan.source(), &opts, &stamp)?;
    let kept = match &r.kept {
        Some(k) => format!("; the version it replaced is kept as {}", k.display()),
        None => String::new(),
    };
    Ok(Report {
        message: format!(
            "put {path} back as of {} ({} files, {} bytes){kept}",
            time::to_string(r.report.backup_time),
            r.report.files,
            r.report.bytes
        ),
        bytes: Some(r.report.bytes),
        set_time: Some(r.report.backup_time),
        ..Report::default()
    })
}

/// Where put-backs under way are noted: `put-back/` beside the
/// configuration.
fn put_back_notes(config_file: &std::path::Path) -> crate::restore::replace::Notes {
    let home = config_file.parent().unwrap_or(std::path::Path::new("."));
    crate::restore::replace::Notes(home.join("put-back"))
}

/// Finishes or undoes the put-backs a power cut interrupted
/// (`restore::replace::Notes::recover_all`); what was done, for the log.
pub fn recover_put_backs(config_file: &std::path::Path) -> Vec<String> {
    put_back_notes(config_file).recover_all()
}

/// The rotating check: the volumes read back longest ago (never first),
/// as many as it takes to read every one within `verify_within` at this
/// schedule's pace.
fn check_slice(
    plan: &Plan,
    args: &TargetArgs,
    repo: &Repo,
    now: Seconds,
    r: &mut Report,
) -> Result<(), RunError> {
    use crate::restore::check;
    let Some(path) = target::catalog_path(repo, args) else {
        return Ok(());
    };
    let cat = Catalog::open(&path)?;
    let mut jobs = check::volumes(repo)?;
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let last = cat.volume_checks(plan.target())?;
    let interval = plan
        .schedule
        .interval_around(now)
        .unwrap_or(7 * 86400)
        .max(1);
    let runs = (plan.verify_within / interval).max(1) as usize;
    let slice = jobs.len().div_ceil(runs);
    jobs.sort_by_key(|j| last.get(&j.name).copied().unwrap_or(i64::MIN));
    let results: Vec<(String, Option<String>)> = jobs
        .iter()
        .take(slice)
        .map(|j| (j.name.clone(), check::check(repo, j)))
        .collect();
    cat.record_checks(plan.target(), now, &results, &names)?;
    let problems: Vec<&str> = results.iter().filter_map(|(_, p)| p.as_deref()).collect();
    r.message += &format!("; checked {} of {} volume(s)", results.len(), names.len());
    if !problems.is_empty() {
        r.problem = Some(format!(
            "the check of stored volumes found damage: {}",
            problems.join("; ")
        ));
    }
    // Read within the period: before this run, or by it.
    let checked_now: std::collections::HashSet<&str> =
        results.iter().map(|(n, _)| n.as_str()).collect();
    let fresh = names
        .iter()
        .filter(|n| {
            checked_now.contains(n.as_str())
                || last.get(*n).is_some_and(|t| now - t < plan.verify_within)
        })
        .count();
    r.verify_coverage = Some(if names.is_empty() {
        1.0
    } else {
        fresh as f64 / names.len() as f64
    });
    Ok(())
}

/// Copies what the plan's target holds and `url` lacks, then applies the
/// plan's retention there too; the catalog learns the copy's sets.
fn replicate_to(plan: &Plan, cx: &Context, primary: &Repo, url: &str) -> Result<String, String> {
    let mut args = target_args(cx.config, plan);
    // Each target has its own cache directory (named after its URL).
    args.name = None;
    let replica = target::open(url, &args).map_err(|e| e.to_string())?;
    let c = crate::replicate::replicate(primary, &replica).map_err(|e| e.to_string())?;
    let removed = retention(plan, &replica, cx.now).map_err(|e| e.to_string())?;
    if let Some(path) = target::catalog_path(&replica, &args) {
        let synced = Catalog::open(&path)
            .and_then(|mut cat| cat.sync(&replica, url, &crate::progress::Silent));
        if let Err(e) = synced {
            return Err(format!("copied, but the catalog could not be updated: {e}"));
        }
    }
    Ok(format!(
        "copied {} file(s), {} bytes; retention removed {removed}",
        c.files, c.bytes
    ))
}

/// The catalog rebuilt from the target, its sets counted on the progress.
fn rebuild(plan: &Plan, args: &TargetArgs, repo: &Repo, cx: &Context) -> Result<Report, RunError> {
    let path = target::catalog_path(repo, args)
        .ok_or_else(|| RunError::Plan("the plan has no catalog file".into()))?;
    let coll = repo.collection()?;
    let r = Catalog::rebuild(&path, repo, plan.target(), &coll, cx.progress.as_ref())?;
    Ok(Report {
        message: format!(
            "catalog rebuilt from the target: {} set(s) indexed{}",
            r.added,
            if r.unindexed.is_empty() {
                String::new()
            } else {
                format!(", {} without signatures", r.unindexed.len())
            }
        ),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backups_log_names_what_was_not_backed_up_within_a_cap() {
        let mut r = crate::backup::BackupReport {
            source_files: 300,
            new_files: 300,
            sockets: 2,
            ..Default::default()
        };
        r.skipped = (0..250)
            .map(|i| crate::source::Skipped {
                path: format!("/data/share/f{i}").into(),
                why: "Permission denied".into(),
            })
            .collect();
        let log = backup_log(&r);
        assert!(log[0].1.contains("300 new"), "{log:?}");
        let skipped: Vec<_> = log.iter().filter(|l| l.0 == "warning").collect();
        assert_eq!(skipped.len(), LOG_LINES + 1);
        assert_eq!(
            skipped[0].1,
            "not backed up: /data/share/f0: Permission denied"
        );
        assert!(skipped[LOG_LINES].1.contains("and 50 more"), "{skipped:?}");
        assert!(log.last().unwrap().1.contains("2 socket(s)"));
    }
}
