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
//! the restore fails; one a power cut left is finished or undone by
//! [`recover`].
//!
//! The folder holding the original is opened one level at a time from the
//! source without following symlinks, and every step after that (the
//! staging folder, the restore's writes, both renames) goes through that
//! descriptor: someone who can write to the share and swaps a folder on the
//! way for a symlink meanwhile cannot lead any of it elsewhere.

use super::{RestoreOptions, RestoreReport, restore};
use crate::error::{Error, Result};
use crate::repo::Repo;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::{Mode, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

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
    let parent_path = original.parent().expect("a path below the source");
    let name = original.file_name().expect("a named path");
    let parent = pinned_dir(source, parent_path)?;
    not_a_mount_point(&parent, name, &original)?;
    let aside = with(name, &format!(".before-restore-{stamp}"));
    if exists_at(&parent, &aside) {
        return Err(refused(
            &parent_path.join(&aside),
            "exists already; move it away and restore again",
        ));
    }
    let staging = Staging::create(parent, staging_name(name), parent_path)?;
    let mut opts = opts.clone();
    // The staging folder through its descriptor, whatever its path becomes.
    opts.dest = staging.proc_path().join(name);
    opts.force = false;
    let report = restore(repo, &opts)?;
    if !report.complete() {
        return Err(refused(
            &original,
            "the restore was incomplete, so nothing was replaced",
        ));
    }
    staging.mark_complete()?;
    let p = &staging.parent;
    let kept = match exists_at(p, name) {
        true => {
            rename_at(p, name, p, &aside, &original)?;
            Some(parent_path.join(&aside))
        }
        false => None,
    };
    if let Err(e) = rename_at(&staging.fd, name, p, name, &original) {
        return Err(undo(staging, name, &aside, kept.is_some(), &original, e));
    }
    let mut report = report;
    // Done: what is left to tidy is no reason to call it failed.
    if let Err(e) = nix::unistd::fsync(p) {
        report
            .problems
            .push(format!("{}: sync: {e}", parent_path.display()));
    }
    if let Err(e) = staging.finish() {
        report.problems.push(e.to_string());
    }
    Ok(Replaced { report, kept })
}

/// The restored copy could not be moved into place (something appeared
/// there meanwhile): the version that was there goes back; if even that
/// fails, both stay where they are and the error says where.
fn undo(
    mut staging: Staging,
    name: &OsStr,
    aside: &OsStr,
    was_moved: bool,
    original: &Path,
    e: Error,
) -> Error {
    let p = &staging.parent;
    if !was_moved || rename_at(p, aside, p, name, original).is_ok() {
        return e;
    }
    staging.finished = true;
    refused(
        original,
        &format!(
            "could not be put in place ({e}); the version that was there is kept as {}, and the \
             restored copy is in {}",
            aside.display(),
            staging.path.join(name).display()
        ),
    )
}

/// Where put-backs under way are noted, one file each (the source, the
/// path, the stamp and the folder's file system), so that one a power cut
/// interrupted is finished or undone later by [`Notes::recover_all`].
pub struct Notes(pub PathBuf);

/// One noted put-back.
struct Noted {
    source: PathBuf,
    original: PathBuf,
    stamp: String,
    dev: u64,
}

impl Notes {
    /// [`replace`], noted first and the note removed when it is over. A
    /// note left for the same path is settled first; if it cannot be, this
    /// put-back waits (nothing is replaced).
    pub fn replace(
        &self,
        repo: &Repo,
        source: &Path,
        opts: &RestoreOptions,
        stamp: &str,
    ) -> Result<Replaced> {
        let original = opts
            .path
            .as_ref()
            .map(|p| p.to_path(source))
            .unwrap_or_default();
        let file = self.file(&original);
        if file.exists() {
            let said = self.settle(&file).unwrap_or_default();
            if file.exists() {
                return Err(refused(
                    &original,
                    &format!(
                        "an earlier put-back of it is not settled yet ({said}); nothing was replaced"
                    ),
                ));
            }
        }
        let parent = original.parent().unwrap_or(source);
        let dev = std::fs::metadata(parent).map_or(0, |m| std::os::unix::fs::MetadataExt::dev(&m));
        let mut text = Vec::new();
        for part in [
            source.as_os_str().as_bytes(),
            original.as_os_str().as_bytes(),
            stamp.as_bytes(),
            dev.to_string().as_bytes(),
        ] {
            text.extend_from_slice(part);
            text.push(0);
        }
        std::fs::create_dir_all(&self.0).map_err(|e| Error::local("create", &self.0, e))?;
        crate::repo::write_atomic(&file, &text)?;
        let r = replace(repo, source, opts, stamp);
        let _ = std::fs::remove_file(&file);
        r
    }

    /// Every noted put-back settled where it can be: what was done, for the
    /// log. A note that cannot be settled yet (its disk not mounted) stays.
    pub fn recover_all(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| self.settle(&e.path()))
            .collect()
    }

    /// The note's file for `original`.
    fn file(&self, original: &Path) -> PathBuf {
        // FNV-1a: a short stable name per path.
        let h = original
            .as_os_str()
            .as_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
        self.0.join(format!("{h:016x}"))
    }

    /// Settles one note: removed when done (or unreadable), kept otherwise.
    fn settle(&self, file: &Path) -> Option<String> {
        let bytes = std::fs::read(file).ok()?;
        let Some(n) = Noted::parse(&bytes) else {
            let _ = std::fs::remove_file(file);
            return Some(format!(
                "{} was not a put-back's note; removed",
                file.display()
            ));
        };
        match recover(&n) {
            Ok(done) => {
                let _ = std::fs::remove_file(file);
                done
            }
            Err(e) => Some(format!(
                "an interrupted put-back of {} is not settled yet: {e}",
                n.original.display()
            )),
        }
    }
}

impl Noted {
    fn parse(bytes: &[u8]) -> Option<Noted> {
        let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
        let [source, original, stamp, dev, rest] = parts[..] else {
            return None;
        };
        let path = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
        Some(Noted {
            source: path(source),
            original: path(original),
            stamp: String::from_utf8(stamp.to_vec()).ok()?,
            dev: std::str::from_utf8(dev).ok()?.parse().ok()?,
        })
        .filter(|_| rest.is_empty())
    }
}

/// Finishes or undoes a noted put-back a power cut interrupted:
/// - a complete, flushed copy whose original was already moved aside goes
///   into place; anything else staged is removed (the original was not
///   touched then);
/// - no staging folder, the original aside and nothing in its place: the
///   original goes back;
/// - the folder moved meanwhile: nothing is touched, and it says where to
///   look.
///
/// An error (the source or its disk not there yet) keeps the note.
fn recover(n: &Noted) -> Result<Option<String>> {
    let (Some(parent_path), Some(name)) = (n.original.parent(), n.original.file_name()) else {
        return Ok(None);
    };
    let aside = with(name, &format!(".before-restore-{}", n.stamp));
    let parent = match pinned_dir(&n.source, parent_path) {
        Err(Error::Replace { why, .. }) => {
            return Ok(Some(format!(
                "{}: an interrupted put-back cannot be settled ({why}); look for {} and .cairn-restore-{} there",
                n.original.display(),
                aside.display(),
                name.display()
            )));
        }
        other => other?,
    };
    if fstat(&parent)
        .map_err(|e| Error::local("stat", parent_path, e.into()))?
        .st_dev
        != n.dev
    {
        return Err(refused(
            parent_path,
            "is not on the disk it was on (not mounted yet?)",
        ));
    }
    let staging_name = staging_name(name);
    let mut done = None;
    if let Some(staging) = Staging::existing(&parent, &staging_name) {
        let complete = exists_at(&staging, OsStr::new(DONE)) && exists_at(&staging, name);
        done = Some("removed the staging folder of an interrupted put-back; nothing was replaced");
        if complete && !exists_at(&parent, name) {
            rename_at(&staging, name, &parent, name, &n.original)?;
            done = Some("finished putting it back after an interruption");
        }
        remove_held(&parent, &staging_name, &staging)
            .map_err(|e| Error::local("remove", parent_path.join(&staging_name), e.into()))?;
    }
    // No copy to put in place, but the version that was there is aside.
    if exists_at(&parent, &aside) && !exists_at(&parent, name) {
        rename_at(&parent, &aside, &parent, name, &n.original)?;
        done = Some("the restored copy was gone; the version that was there is back");
    }
    nix::unistd::fsync(&parent).map_err(|e| Error::local("sync", parent_path, e.into()))?;
    Ok(done.map(|d| format!("{}: {d}", n.original.display())))
}

/// `.cairn-restore-NAME`, beside `NAME`.
fn staging_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(".cairn-restore-");
    s.push(name);
    s
}

fn dir_flags() -> OFlag {
    OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY
}

/// The directory `dir` below `source`, opened one level at a time without
/// following symlinks; it must exist and be a real directory all the way.
fn pinned_dir(source: &Path, dir: &Path) -> Result<OwnedFd> {
    let below = dir.strip_prefix(source).expect("inside the source");
    let mut fd: OwnedFd = std::fs::File::open(source)
        .map_err(|e| Error::local("open", source, e))?
        .into();
    let mut at = source.to_path_buf();
    for c in below.components() {
        let Component::Normal(c) = c else {
            return Err(refused(dir, "is not a plain path inside the source"));
        };
        at.push(c);
        fd = match openat(&fd, c, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(refused(
                    &at,
                    "is not a directory (a symlink or a file) in the live source",
                ));
            }
            Err(Errno::ENOENT) => {
                return Err(refused(
                    &at,
                    "no longer exists; put back the folder above it instead",
                ));
            }
            Err(e) => return Err(Error::local("open", &at, e.into())),
        };
    }
    Ok(fd)
}

/// Whether anything (a symlink included) is at `name` in `dir`.
fn exists_at(dir: &impl AsFd, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

/// A directory mounted at `name` cannot be renamed; its content would be
/// staged on the parent's file system.
fn not_a_mount_point(parent: &OwnedFd, name: &OsStr, shown: &Path) -> Result<()> {
    let (Ok(o), Ok(p)) = (
        fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        fstat(parent),
    ) else {
        return Ok(());
    };
    let is_dir = o.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && o.st_dev != p.st_dev {
        return Err(refused(
            shown,
            "is a mount point; restore into a new folder and copy from there",
        ));
    }
    Ok(())
}

/// The staging folder, marked as Cairn's, held open; removed again unless
/// finished.
struct Staging {
    parent: OwnedFd,
    name: OsString,
    fd: OwnedFd,
    /// For messages.
    path: PathBuf,
    finished: bool,
}

impl Staging {
    /// A fresh staging folder `name` in `parent`; a marked one left by an
    /// interrupted run is removed first, anything else there is refused.
    fn create(parent: OwnedFd, name: OsString, parent_path: &Path) -> Result<Staging> {
        let path = parent_path.join(&name);
        if exists_at(&parent, &name) {
            match Staging::existing(&parent, &name) {
                Some(stale) => remove_held(&parent, &name, &stale)
                    .map_err(|e| Error::local("remove", &path, e.into()))?,
                // An empty folder (all a cut in its removal can leave) goes;
                // anything else is someone's.
                None => {
                    unlinkat(&parent, name.as_os_str(), UnlinkatFlags::RemoveDir).map_err(|_| {
                        refused(&path, "is in the way and is not Cairn's; move it away")
                    })?
                }
            }
        }
        mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
            .map_err(|e| Error::local("create", &path, e.into()))?;
        let fd = openat(&parent, name.as_os_str(), dir_flags(), Mode::empty())
            .map_err(|e| Error::local("open", &path, e.into()))?;
        let staging = Staging {
            parent,
            name,
            fd,
            path,
            finished: false,
        };
        staging.write(MARK, b"a restore in progress; Cairn removes this folder\n")?;
        Ok(staging)
    }

    /// The marked staging folder `name` in `parent`, opened, if there is one.
    /// Cairn's own only: a folder of this process's user that no one else
    /// may write to, marked by a regular file of that user. (Anyone who can
    /// write to the share can make a folder with a file of that name.)
    fn existing(parent: &OwnedFd, name: &OsStr) -> Option<OwnedFd> {
        let fd = openat(parent, name, dir_flags(), Mode::empty()).ok()?;
        let me = nix::unistd::geteuid().as_raw();
        let dir = fstat(&fd).ok()?;
        let mark = fstatat(&fd, MARK, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        let private = dir.st_uid == me && dir.st_mode & 0o077 == 0;
        let marked = mark.st_uid == me && mark.st_mode & libc::S_IFMT == libc::S_IFREG;
        (private && marked).then_some(fd)
    }

    /// The folder as a path that goes through its descriptor.
    fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    fn write(&self, file: &str, data: &[u8]) -> Result<()> {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, file, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::local("create", self.path.join(file), e.into()))?;
        nix::unistd::write(&fd, data)
            .map(drop)
            .map_err(|e| Error::local("write", self.path.join(file), e.into()))
    }

    /// The copy is complete: flushed first, then said in the folder (the
    /// mark must never reach the disk before the data it speaks for).
    fn mark_complete(&self) -> Result<()> {
        let sync = |e: Errno| Error::local("sync", &self.path, e.into());
        nix::unistd::syncfs(&self.fd).map_err(sync)?;
        self.write(DONE, b"")?;
        nix::unistd::fsync(&self.fd).map_err(sync)
    }

    /// The restored copy has been moved out: the marked folder goes.
    fn finish(mut self) -> Result<()> {
        self.finished = true;
        unlinkat(&self.fd, DONE, UnlinkatFlags::NoRemoveDir)
            .and_then(|()| unlinkat(&self.fd, MARK, UnlinkatFlags::NoRemoveDir))
            .and_then(|()| {
                unlinkat(
                    &self.parent,
                    self.name.as_os_str(),
                    UnlinkatFlags::RemoveDir,
                )
            })
            .map_err(|e| Error::local("remove", &self.path, e.into()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.finished {
            let _ = remove_held(&self.parent, &self.name, &self.fd);
        }
    }
}

/// Empties the held directory `dir` through its descriptor, then removes
/// `name` from `parent` only if that is still the same directory: a
/// folder swapped in under the name meanwhile (an owner's, renamed there by
/// someone who can write to the share) is never touched.
fn remove_held(parent: &OwnedFd, name: &OsStr, dir: &OwnedFd) -> nix::Result<()> {
    // The "complete" mark first, the folder's own mark last: whatever a
    // power cut leaves is never taken for a complete copy, and is still
    // recognised as Cairn's (or is an empty folder).
    match unlinkat(dir, DONE, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => nix::unistd::fsync(dir)?,
        Err(e) => return Err(e),
    }
    super::dest::remove_contents(dir, &[OsStr::new(MARK)])?;
    match unlinkat(dir, MARK, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (there, held) = (
        fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?,
        fstat(dir)?,
    );
    if (there.st_dev, there.st_ino) != (held.st_dev, held.st_ino) {
        return Err(Errno::ESTALE);
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

fn with(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_os_string();
    s.push(suffix);
    s
}

/// Renames `from` in `from_dir` to `to` in `to_dir`, never over something
/// there; `shown` names the place in an error.
fn rename_at(
    from_dir: &OwnedFd,
    from: &OsStr,
    to_dir: &OwnedFd,
    to: &OsStr,
    shown: &Path,
) -> Result<()> {
    renameat2(from_dir, from, to_dir, to, RenameFlags::RENAME_NOREPLACE).map_err(|e| {
        Error::local(
            "rename",
            shown,
            std::io::Error::other(format!("{} to {}: {e}", from.display(), to.display())),
        )
    })
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
    use std::fs;

    #[test]
    fn the_folder_is_held_open_so_a_symlink_swapped_in_leads_nowhere() {
        let t = tempfile::tempdir().unwrap();
        let (source, elsewhere) = (t.path().join("share"), t.path().join("elsewhere"));
        fs::create_dir_all(source.join("dir/item")).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, source.join("link")).unwrap();
        let e = pinned_dir(&source, &source.join("link")).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(pinned_dir(&source, &source.join("gone")).is_err());

        let parent = pinned_dir(&source, &source.join("dir")).unwrap();
        fs::rename(source.join("dir"), source.join("moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, source.join("dir")).unwrap();
        let staging = Staging::create(
            parent,
            staging_name(OsStr::new("item")),
            &source.join("dir"),
        )
        .unwrap();
        fs::create_dir(staging.proc_path().join("item")).unwrap();
        staging.mark_complete().unwrap();
        let p = &staging.parent;
        rename_at(
            p,
            OsStr::new("item"),
            p,
            OsStr::new("item.before"),
            Path::new("item"),
        )
        .unwrap();
        rename_at(
            &staging.fd,
            OsStr::new("item"),
            p,
            OsStr::new("item"),
            Path::new("item"),
        )
        .unwrap();
        staging.finish().unwrap();
        assert_eq!(
            fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing went through the symlink"
        );
        let mut names: Vec<String> = fs::read_dir(source.join("moved"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["item", "item.before"]);
    }

    /// The note of a put-back of `item` (below `source`) stamped "S".
    fn noted(source: &Path, item: &Path) -> Noted {
        let dev = std::os::unix::fs::MetadataExt::dev(&fs::metadata(source).unwrap());
        Noted {
            source: source.to_path_buf(),
            original: item.to_path_buf(),
            stamp: "S".into(),
            dev,
        }
    }

    /// A staging folder for `dir/item` as an interrupted put-back left it.
    fn staged(dir: &Path, marked: bool, complete: bool, copy: bool) -> PathBuf {
        let staging = dir.join(".cairn-restore-item");
        fs::create_dir(&staging).unwrap();
        fs::set_permissions(
            &staging,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
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
    fn a_folder_swapped_in_under_the_staging_name_is_never_removed() {
        let t = tempfile::tempdir().unwrap();
        let source = t.path();
        fs::create_dir(source.join("item")).unwrap();
        fs::write(source.join("item/f"), b"the owner's").unwrap();
        let parent = pinned_dir(source, source).unwrap();
        let staging = Staging::create(parent, staging_name(OsStr::new("item")), source).unwrap();
        fs::write(staging.proc_path().join("scratch"), b"ours").unwrap();
        // Someone who can write here moves our folder away and puts the
        // owner's folder under its name; then the restore fails.
        fs::rename(source.join(".cairn-restore-item"), source.join("x")).unwrap();
        fs::rename(source.join("item"), source.join(".cairn-restore-item")).unwrap();
        drop(staging);
        assert_eq!(
            fs::read(source.join(".cairn-restore-item/f")).unwrap(),
            b"the owner's"
        );
        assert_eq!(
            fs::read_dir(source.join("x")).unwrap().count(),
            0,
            "ours emptied"
        );
    }

    #[test]
    fn a_staging_folder_someone_else_could_write_or_mark_is_not_taken_for_ours() {
        let t = tempfile::tempdir().unwrap();
        let source = t.path();
        let staging = staged(source, true, true, true);
        let mode =
            |m| fs::set_permissions(&staging, std::os::unix::fs::PermissionsExt::from_mode(m));
        mode(0o777).unwrap();
        let name = staging_name(OsStr::new("item"));
        let create = || Staging::create(pinned_dir(source, source).unwrap(), name.clone(), source);
        assert!(create().is_err(), "a folder others may write to");
        assert!(staging.join("item/f").exists());
        mode(0o700).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(staging.join(MARK), Some(65534), None).unwrap();
            assert!(create().is_err(), "a mark of another user's");
            assert!(staging.join("item/f").exists());
        }
        // An empty folder (a cut while removing ours) is not in the way.
        fs::remove_dir_all(&staging).unwrap();
        fs::create_dir(&staging).unwrap();
        drop(create().unwrap());
        assert!(!staging.exists());
    }

    #[test]
    fn notes_are_settled_or_kept_until_their_disk_is_there() {
        let t = tempfile::tempdir().unwrap();
        let (source, notes) = (t.path().join("share"), Notes(t.path().join("notes")));
        fs::create_dir_all(source.join("item.before-restore-S")).unwrap();
        fs::create_dir_all(&notes.0).unwrap();
        let item = source.join("item");
        let write = |dev: u64| {
            let n = noted(&source, &item);
            let text = format!(
                "{}\0{}\0S\0{dev}\0",
                n.source.display(),
                n.original.display()
            );
            fs::write(notes.file(&item), text).unwrap();
            n.dev
        };
        let dev = write(1);
        let said = notes.recover_all();
        assert!(said[0].contains("not on the disk it was on"), "{said:?}");
        assert!(notes.file(&item).exists(), "kept until its disk is there");
        write(dev);
        let said = notes.recover_all();
        assert!(said[0].contains("is back"), "{said:?}");
        assert!(item.exists() && !notes.file(&item).exists());
        fs::write(notes.0.join("junk"), "no").unwrap();
        assert!(notes.recover_all()[0].contains("not a put-back's note"));
        assert_eq!(fs::read_dir(&notes.0).unwrap().count(), 0);
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
        assert!(
            recover(&noted(t.path(), &item))
                .unwrap()
                .unwrap()
                .contains("finished")
        );
        assert_eq!(read(), b"restored");
        assert!(!staging.exists());
        fs::remove_dir_all(&item).unwrap();

        // Cut before the first rename, complete or not: the original stays.
        for complete in [true, false] {
            original();
            let staging = staged(t.path(), true, complete, true);
            assert!(
                recover(&noted(t.path(), &item))
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
        recover(&noted(t.path(), &item)).unwrap();
        assert!(!item.exists() && !staging.exists());

        // Cut after the second rename: the empty marked folder goes.
        original();
        let staging = staged(t.path(), true, false, false);
        recover(&noted(t.path(), &item)).unwrap();
        assert!(!staging.exists());
        assert_eq!(read(), b"original");

        // A folder of the owner's under that name is not Cairn's: left alone.
        let staging = staged(t.path(), false, true, true);
        assert_eq!(recover(&noted(t.path(), &item)).unwrap(), None);
        assert!(staging.join("item/f").exists());
    }
}
