//! Putting a path back where it was: restore it beside the original, then
//! swap the two by renaming, keeping the version it replaces.
//!
//! The restore goes into a staging folder beside the original,
//! `.cairn-restore-NAME/NAME`, marked as Cairn's by a file in it; the current
//! version is renamed to `NAME.before-restore-STAMP`, never deleted; the
//! restored copy is flushed, then renamed into place. Both renames refuse to
//! replace anything (`RENAME_NOREPLACE`), so what appears under either name
//! meanwhile is never lost. Every prefix is safe to run again: a marked
//! staging folder is only ever rebuilt, never taken as done, and removed when
//! the restore fails.

use super::{RestoreOptions, RestoreReport, restore};
use crate::error::{Error, Result};
use crate::repo::Repo;
use nix::fcntl::{RenameFlags, renameat2};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file that marks a staging folder as Cairn's.
const MARK: &str = ".cairn-staging";
/// The file that says the staged copy is complete (flushed with it).
const DONE: &str = ".cairn-complete";

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
    let name = original.file_name().expect("a named path");
    existing_real_directories(source, parent)?;
    not_a_mount_point(&original, parent)?;
    let aside = parent.join(with(name, &format!(".before-restore-{stamp}")));
    if aside.symlink_metadata().is_ok() {
        return Err(refused(
            &aside,
            "exists already; move it away and restore again",
        ));
    }
    let staging = Staging::create(parent.join(staging_name(name)))?;
    let mut opts = opts.clone();
    opts.dest = staging.0.join(name);
    opts.force = false;
    let report = restore(repo, &opts)?;
    if !report.complete() {
        return Err(refused(
            &original,
            "the restore was incomplete, so nothing was replaced",
        ));
    }
    fs::write(staging.0.join(DONE), b"").map_err(|e| Error::local("create", &staging.0, e))?;
    sync(&staging.0)?;
    let dir = fs::File::open(parent).map_err(|e| Error::local("open", parent, e))?;
    let kept = match original.symlink_metadata() {
        Ok(_) => {
            swap(&dir, &original, name.as_ref(), &aside)?;
            Some(aside)
        }
        Err(_) => None,
    };
    let restored = Path::new(staging.0.file_name().expect("named")).join(name);
    swap(&dir, &opts.dest, &restored, &original)?;
    dir.sync_all()
        .map_err(|e| Error::local("sync", parent, e))?;
    staging.finish()?;
    Ok(Replaced { report, kept })
}

/// Finishes or undoes a put-back of `original` that a power cut
/// interrupted, from what its staging folder holds: a complete, flushed
/// copy whose original had already been moved aside is renamed into place;
/// anything else staged is removed (the original was never touched then).
/// Returns what was done; nothing when there is no marked staging folder.
pub fn recover(original: &Path) -> Result<Option<String>> {
    let (Some(parent), Some(name)) = (original.parent(), original.file_name()) else {
        return Ok(None);
    };
    let staging = parent.join(staging_name(name));
    let ours = staging.symlink_metadata().is_ok_and(|m| m.is_dir()) && staging.join(MARK).is_file();
    if !ours {
        return Ok(None);
    }
    let staged = staging.join(name);
    let complete = staging.join(DONE).is_file() && staged.symlink_metadata().is_ok();
    let mut done = "removed the staging folder of an interrupted put-back; nothing was replaced";
    if complete && original.symlink_metadata().is_err() {
        let dir = fs::File::open(parent).map_err(|e| Error::local("open", parent, e))?;
        let from = Path::new(staging.file_name().expect("named")).join(name);
        swap(&dir, &staged, &from, original)?;
        dir.sync_all()
            .map_err(|e| Error::local("sync", parent, e))?;
        done = "finished putting it back after an interruption";
    }
    fs::remove_dir_all(&staging).map_err(|e| Error::local("remove", &staging, e))?;
    Ok(Some(format!("{}: {done}", original.display())))
}

/// `.cairn-restore-NAME`, beside `NAME`.
fn staging_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(".cairn-restore-");
    s.push(name);
    s
}

/// Every directory from `source` down to `dir` exists and is a real
/// directory, not a symlink that would lead the restore elsewhere.
fn existing_real_directories(source: &Path, dir: &Path) -> Result<()> {
    let below = dir.strip_prefix(source).expect("inside the source");
    let mut at = source.to_path_buf();
    for c in below.components() {
        at.push(c);
        match at.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(refused(
                    &at,
                    "is not a directory (a symlink or a file) in the live source",
                ));
            }
            Err(_) => {
                return Err(refused(
                    &at,
                    "no longer exists; put back the folder above it instead",
                ));
            }
        }
    }
    Ok(())
}

/// A directory mounted at `original` cannot be renamed; its content would
/// be staged on the parent's file system.
fn not_a_mount_point(original: &Path, parent: &Path) -> Result<()> {
    let (Ok(o), Ok(p)) = (original.symlink_metadata(), parent.symlink_metadata()) else {
        return Ok(());
    };
    if o.is_dir() && o.dev() != p.dev() {
        return Err(refused(
            original,
            "is a mount point; restore into a new folder and copy from there",
        ));
    }
    Ok(())
}

/// The staging folder, marked as Cairn's; removed again unless finished.
struct Staging(PathBuf);

impl Staging {
    /// A fresh staging folder at `path`; a marked one left by an interrupted
    /// run is removed first, anything else there is refused.
    fn create(path: PathBuf) -> Result<Staging> {
        if path.symlink_metadata().is_ok() {
            if !path.join(MARK).is_file() || path.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
                return Err(refused(
                    &path,
                    "is in the way and is not Cairn's; move it away",
                ));
            }
            fs::remove_dir_all(&path).map_err(|e| Error::local("remove", &path, e))?;
        }
        fs::create_dir(&path).map_err(|e| Error::local("create", &path, e))?;
        let staging = Staging(path);
        fs::write(
            staging.0.join(MARK),
            b"a restore in progress; Cairn removes this folder\n",
        )
        .map_err(|e| Error::local("create", &staging.0, e))?;
        Ok(staging)
    }

    /// The restored copy has been moved out: the marked folder goes.
    fn finish(self) -> Result<()> {
        let path = self.0.clone();
        std::mem::forget(self);
        fs::remove_file(path.join(DONE))
            .and_then(|()| fs::remove_file(path.join(MARK)))
            .and_then(|()| fs::remove_dir(&path))
            .map_err(|e| Error::local("remove", &path, e))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn with(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_os_string();
    s.push(suffix);
    s
}

/// Renames `from` (relative to `dir`) to the name of `to` in `dir`, never
/// over something there.
fn swap(dir: &fs::File, shown: &Path, from: &Path, to: &Path) -> Result<()> {
    let to_name = to.file_name().expect("named");
    renameat2(dir, from, dir, to_name, RenameFlags::RENAME_NOREPLACE).map_err(|e| {
        Error::local(
            "rename",
            shown,
            std::io::Error::other(format!("to {}: {e}", to.display())),
        )
    })
}

/// Flushes the file system holding `dir` (the restored files).
fn sync(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| Error::local("open", dir, e))?;
    nix::unistd::syncfs(&f).map_err(|e| Error::local("sync", dir, e.into()))
}

fn refused(path: &Path, why: &str) -> Error {
    Error::Replace {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staging folder for `dir/item` as an interrupted put-back left it.
    fn staged(dir: &Path, marked: bool, complete: bool, copy: bool) -> PathBuf {
        let staging = dir.join(".cairn-restore-item");
        fs::create_dir(&staging).unwrap();
        if marked {
            fs::write(staging.join(MARK), b"").unwrap();
        }
        if complete {
            fs::write(staging.join(DONE), b"").unwrap();
        }
        if copy {
            fs::create_dir(staging.join("item")).unwrap();
            fs::write(staging.join("item/f"), b"restored").unwrap();
        }
        staging
    }

    #[test]
    fn an_interrupted_put_back_is_finished_or_undone_by_what_it_left() {
        let t = tempfile::tempdir().unwrap();
        let item = t.path().join("item");
        let original = || {
            fs::create_dir(&item).unwrap();
            fs::write(item.join("f"), b"original").unwrap();
        };
        let read = || fs::read(item.join("f")).unwrap();

        // Cut between the two renames: the original is aside, the copy complete.
        let staging = staged(t.path(), true, true, true);
        assert!(recover(&item).unwrap().unwrap().contains("finished"));
        assert_eq!(read(), b"restored");
        assert!(!staging.exists());
        fs::remove_dir_all(&item).unwrap();

        // Cut before the first rename, complete or not: the original stays.
        for complete in [true, false] {
            original();
            let staging = staged(t.path(), true, complete, true);
            assert!(
                recover(&item)
                    .unwrap()
                    .unwrap()
                    .contains("nothing was replaced")
            );
            assert_eq!(read(), b"original");
            assert!(!staging.exists());
            fs::remove_dir_all(&item).unwrap();
        }

        // An incomplete copy with no original: nothing is put in its place.
        let staging = staged(t.path(), true, false, true);
        recover(&item).unwrap();
        assert!(!item.exists() && !staging.exists());

        // Cut after the second rename: the empty marked folder goes.
        original();
        let staging = staged(t.path(), true, false, false);
        recover(&item).unwrap();
        assert!(!staging.exists());
        assert_eq!(read(), b"original");

        // A folder of the owner's under that name is not Cairn's: left alone.
        let staging = staged(t.path(), false, true, true);
        assert_eq!(recover(&item).unwrap(), None);
        assert!(staging.join("item/f").exists());
    }
}
