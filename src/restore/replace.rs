//! Putting a path back where it was: restore it beside the original, then
//! swap the two by renaming, keeping the version it replaces.
//!
//! Every prefix of the steps is safe to run again: the staging copy
//! (`.NAME.cairn-restore`) is only ever rebuilt, never taken as done; the
//! current version is renamed aside (`NAME.before-restore-STAMP`), never
//! deleted; the restored copy is flushed before it takes the original's name.

use super::{RestoreOptions, RestoreReport, restore};
use crate::error::{Error, Result};
use crate::repo::Repo;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// What a restore over the original location did.
#[derive(Debug)]
pub struct Replaced {
    pub report: RestoreReport,
    /// Where the version it replaced now is (None: nothing was there).
    pub kept: Option<PathBuf>,
}

/// Restores `opts.path` of the backup of `source` over `source/path`.
/// `stamp` names the kept version (e.g. the time, `20261207T201500Z`).
/// Nothing is replaced unless the restore is complete.
pub fn replace(repo: &Repo, source: &Path, opts: &RestoreOptions, stamp: &str) -> Result<Replaced> {
    let original = match &opts.path {
        Some(p) if !p.is_root() => p.to_path(source),
        _ => {
            return Err(refused(
                source,
                "the whole source cannot be replaced; restore it into a new folder",
            ));
        }
    };
    let parent = original.parent().expect("a path below the source");
    real_directories(source, parent)?;
    let name = original.file_name().expect("a named path").to_os_string();
    let staging = parent.join(with(".", &name, ".cairn-restore"));
    remove_any(&staging)?;
    let mut opts = opts.clone();
    opts.dest = staging.clone();
    opts.force = false;
    let report = restore(repo, &opts)?;
    if !report.complete() {
        remove_any(&staging)?;
        return Err(refused(
            &original,
            "the restore was incomplete, so nothing was replaced",
        ));
    }
    sync(&staging)?;
    let kept = match original.symlink_metadata() {
        Ok(_) => {
            let aside = parent.join(with("", &name, &format!(".before-restore-{stamp}")));
            if aside.symlink_metadata().is_ok() {
                return Err(refused(
                    &aside,
                    "exists already; move it away and restore again",
                ));
            }
            rename(&original, &aside)?;
            Some(aside)
        }
        Err(_) => None,
    };
    rename(&staging, &original)?;
    Ok(Replaced { report, kept })
}

/// Every directory from `source` down to `dir` is a real directory (created
/// if missing), not a symlink that would lead the restore elsewhere.
fn real_directories(source: &Path, dir: &Path) -> Result<()> {
    let below = dir.strip_prefix(source).expect("inside the source");
    let mut at = source.to_path_buf();
    for part in std::iter::once(None).chain(below.components().map(Some)) {
        if let Some(c) = part {
            at.push(c);
        }
        match at.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) if at == source && at.is_dir() => {}
            Ok(_) => {
                return Err(refused(
                    &at,
                    "is not a directory (a symlink or a file) in the live source",
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && at != source => {
                fs::create_dir(&at).map_err(|e| Error::local("create", &at, e))?;
            }
            Err(e) => return Err(Error::local("read", &at, e)),
        }
    }
    Ok(())
}

fn with(prefix: &str, name: &std::ffi::OsStr, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(name);
    s.push(suffix);
    s
}

fn remove_any(p: &Path) -> Result<()> {
    let r = match p.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    r.map_err(|e| Error::local("remove", p, e))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::local("rename", from, e))?;
    sync(to.parent().expect("a parent"))
}

/// Flushes the file system holding `p` (the restored files and the renames).
fn sync(p: &Path) -> Result<()> {
    let dir = if p.is_dir() {
        p
    } else {
        p.parent().expect("a parent")
    };
    let f = fs::File::open(dir).map_err(|e| Error::local("open", dir, e))?;
    nix::unistd::syncfs(&f).map_err(|e| Error::local("sync", dir, e.into()))
}

fn refused(path: &Path, why: &str) -> Error {
    Error::Replace {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}
