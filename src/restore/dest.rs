//! Writing a restore into the destination without ever leaving it.
//!
//! Every operation goes through directory file descriptors opened with
//! `O_NOFOLLOW`, one per level of the current path, so a symlink restored
//! earlier (or planted by a hostile archive) can never redirect a later write
//! outside DEST. Files are written under a temporary name and renamed into
//! place, so a name in DEST is never a half-written file; directory
//! attributes are applied when the walk leaves the directory, after its
//! contents, as duplicity does.

use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta, OwnerMap};
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, futimens, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, mkfifoat, symlinkat, unlinkat};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

struct Frame {
    index: Index,
    fd: OwnedFd,
    /// Attributes to apply when leaving; `None` for directories we had to
    /// create without an archive entry.
    meta: Option<Meta>,
}

/// A file being written under a temporary name.
pub struct Scratch {
    pub file: File,
    name: OsString,
    /// Depth of the directory frame it lives in.
    depth: usize,
}

pub struct DestTree<'o> {
    dest: PathBuf,
    parent: OwnedFd,
    dest_name: OsString,
    stack: Vec<Frame>,
    owners: &'o OwnerMap,
    restore_owner: bool,
    counter: u64,
    /// What could not be created or set, for the report.
    pub problems: Vec<String>,
}

fn nix_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn dir_flags() -> OFlag {
    OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY
}

fn last_name(index: &Index) -> &OsStr {
    OsStr::from_bytes(index.components().last().map_or(&b""[..], Vec::as_slice))
}

/// Removes whatever is at `name` in `dir`, recursively, without following links.
pub(crate) fn remove_at(dir: impl AsFd + Copy, name: &OsStr) -> nix::Result<()> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        let fd = openat(dir, name, dir_flags(), Mode::empty())?;
        remove_contents(&fd, &[])?;
        drop(fd);
        unlinkat(dir, name, UnlinkatFlags::RemoveDir)
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
    }
}

/// Removes everything in the open directory `dir` but the names in `keep`,
/// recursively, without following links.
pub(crate) fn remove_contents(dir: &OwnedFd, keep: &[&OsStr]) -> nix::Result<()> {
    let listing = openat(dir, ".", dir_flags(), Mode::empty())?;
    let mut d = nix::dir::Dir::from_fd(listing)?;
    let names: Vec<OsString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != ".." && !keep.contains(&n.as_os_str()))
        .collect();
    drop(d);
    for n in names {
        remove_at(dir, &n)?;
    }
    Ok(())
}

impl<'o> DestTree<'o> {
    /// Prepares to restore into `dest`, which must not exist, be empty, or
    /// `force` must be set. Creates missing parent directories.
    pub fn open(
        dest: &Path,
        force: bool,
        owners: &'o OwnerMap,
        restore_owner: bool,
    ) -> Result<Self> {
        let dest = if dest.is_absolute() {
            dest.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::local("find the current directory for", dest, e))?
                .join(dest)
        };
        let dest_name = dest.file_name().map(OsStr::to_os_string).ok_or_else(|| {
            Error::Usage(format!(
                "restore destination {} has no final name",
                dest.display()
            ))
        })?;
        let parent_path = dest.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent_path).map_err(|e| Error::local("create", parent_path, e))?;
        if !force {
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => {
                    let mut rd =
                        std::fs::read_dir(&dest).map_err(|e| Error::local("read", &dest, e))?;
                    if rd.next().is_some() {
                        return Err(Error::DestinationNotEmpty(dest));
                    }
                }
                Ok(_) => return Err(Error::DestinationIsFile(dest)),
                Err(_) => {}
            }
        }
        let parent = File::open(parent_path)
            .map(OwnedFd::from)
            .map_err(|e| Error::local("open", parent_path, e))?;
        Ok(DestTree {
            dest,
            parent,
            dest_name,
            stack: Vec::new(),
            owners,
            restore_owner,
            counter: 0,
            problems: Vec::new(),
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    fn err(&self, op: &'static str, index: &Index, e: Errno) -> Error {
        Error::local(op, index.to_path(&self.dest), nix_io(e))
    }

    /// The directory the root (DEST itself) lives in, and DEST's name, or the
    /// frame for `index`'s parent.
    fn ensure_root(&mut self) -> Result<()> {
        if !self.stack.is_empty() {
            return Ok(());
        }
        let root = Index::root();
        match mkdirat(
            &self.parent,
            self.dest_name.as_os_str(),
            Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.err("create directory", &root, e)),
        }
        let fd = match openat(
            &self.parent,
            self.dest_name.as_os_str(),
            dir_flags(),
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                // DEST is a file or symlink (only reachable with --force).
                remove_at(&self.parent, &self.dest_name)
                    .map_err(|e| self.err("replace", &root, e))?;
                mkdirat(
                    &self.parent,
                    self.dest_name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(|e| self.err("create directory", &root, e))?;
                openat(
                    &self.parent,
                    self.dest_name.as_os_str(),
                    dir_flags(),
                    Mode::empty(),
                )
                .map_err(|e| self.err("open", &root, e))?
            }
            Err(e) => return Err(self.err("open", &root, e)),
        };
        self.stack.push(Frame {
            index: root,
            fd,
            meta: None,
        });
        Ok(())
    }

    fn apply_dir_attrs(&mut self, frame: Frame) {
        if let Some(m) = &frame.meta {
            self.set_attrs_fd(&frame.fd, m, &frame.index);
        }
    }

    fn set_attrs_fd(&mut self, fd: &OwnedFd, m: &Meta, index: &Index) {
        if self.restore_owner {
            // Errors are ignored, as duplicity ignores them: a non-root restore
            // keeps the restoring user as owner.
            let _ = fchown(
                fd,
                Some(Uid::from_raw(self.owners.uid(m))),
                Some(Gid::from_raw(self.owners.gid(m))),
            );
        }
        if let Err(e) = fchmod(fd, Mode::from_bits_truncate(m.mode as libc::mode_t)) {
            self.problems.push(format!(
                "{}: cannot set mode: {}",
                index.to_path(&self.dest).display(),
                nix_io(e)
            ));
        }
        let mtime = TimeSpec::new(m.mtime.max(0) as libc::time_t, 0);
        if let Err(e) = futimens(fd, &TimeSpec::UTIME_NOW, &mtime) {
            self.problems.push(format!(
                "{}: cannot set mtime: {}",
                index.to_path(&self.dest).display(),
                nix_io(e)
            ));
        }
    }

    /// Leaves directories until the top of the stack is `index`'s parent,
    /// creating parents that had no entry of their own.
    fn enter_parent(&mut self, index: &Index) -> Result<()> {
        self.ensure_root()?;
        let parent = index.parent().unwrap_or_else(Index::root);
        while self.stack.len() > 1 && !parent.starts_with(&self.stack.last().expect("frame").index)
        {
            let f = self.stack.pop().expect("frame");
            self.apply_dir_attrs(f);
        }
        while self.stack.last().expect("frame").index != parent {
            let depth = self.stack.last().expect("frame").index.len();
            let next = parent.truncated(depth + 1);
            let fd = self.open_dir(&next, None)?;
            self.stack.push(Frame {
                index: next,
                fd,
                meta: None,
            });
        }
        Ok(())
    }

    /// Creates (or reuses) directory `index` under the top frame and opens it.
    fn open_dir(&mut self, index: &Index, _meta: Option<&Meta>) -> Result<OwnedFd> {
        let name = last_name(index).to_os_string();
        let top = &self.stack.last().expect("frame").fd;
        match mkdirat(top, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.err("create directory", index, e)),
        }
        match openat(top, name.as_os_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                // Something else is in the way: replace it, as duplicity does.
                remove_at(top, &name).map_err(|e| self.err("replace", index, e))?;
                mkdirat(top, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| self.err("create directory", index, e))?;
                openat(top, name.as_os_str(), dir_flags(), Mode::empty())
                    .map_err(|e| self.err("open", index, e))
            }
            Err(e) => Err(self.err("open", index, e)),
        }
    }

    /// Restores a directory; its attributes are applied when the walk leaves it.
    pub fn put_dir(&mut self, index: &Index, meta: &Meta) -> Result<()> {
        if index.is_root() {
            self.ensure_root()?;
            self.stack[0].meta = Some(meta.clone());
            return Ok(());
        }
        self.enter_parent(index)?;
        let fd = self.open_dir(index, Some(meta))?;
        self.stack.push(Frame {
            index: index.clone(),
            fd,
            meta: Some(meta.clone()),
        });
        Ok(())
    }

    fn temp_name(&mut self) -> OsString {
        self.counter += 1;
        OsString::from(format!(
            ".cairn-restore.{}.{}",
            std::process::id(),
            self.counter
        ))
    }

    /// The directory fd a non-directory at `index` goes into, and its name.
    fn slot(&mut self, index: &Index) -> Result<(usize, OsString)> {
        if index.is_root() {
            return Ok((usize::MAX, self.dest_name.clone()));
        }
        self.enter_parent(index)?;
        Ok((self.stack.len() - 1, last_name(index).to_os_string()))
    }

    fn dir_fd(&self, depth: usize) -> &OwnedFd {
        if depth == usize::MAX {
            &self.parent
        } else {
            &self.stack[depth].fd
        }
    }

    /// A new temporary file next to where `index` will go.
    pub fn scratch(&mut self, index: &Index) -> Result<Scratch> {
        let (depth, _) = self.slot(index)?;
        let name = self.temp_name();
        let fd = openat(
            self.dir_fd(depth),
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.err("create a temporary file for", index, e))?;
        Ok(Scratch {
            file: File::from(fd),
            name,
            depth,
        })
    }

    /// Throws a scratch file away.
    pub fn discard(&mut self, s: Scratch) {
        let Scratch { file, name, depth } = s;
        drop(file);
        if depth == usize::MAX || depth < self.stack.len() {
            let _ = unlinkat(
                self.dir_fd(depth),
                name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    /// Moves whatever is at `tmp` in the frame at `depth` to `index`'s name,
    /// replacing what is there (a directory in the way is removed).
    fn place(&mut self, depth: usize, tmp: &OsStr, index: &Index) -> Result<()> {
        let name = if index.is_root() {
            self.dest_name.clone()
        } else {
            last_name(index).to_os_string()
        };
        let dir = self.dir_fd(depth);
        match renameat(dir, tmp, dir, name.as_os_str()) {
            Ok(()) => Ok(()),
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                remove_at(dir, &name).map_err(|e| self.err("replace", index, e))?;
                renameat(dir, tmp, dir, name.as_os_str())
                    .map_err(|e| self.err("rename into place", index, e))
            }
            Err(e) => Err(self.err("rename into place", index, e)),
        }
    }

    /// Finishes a regular file: attributes, then the rename into place.
    pub fn commit_file(&mut self, index: &Index, s: Scratch, meta: &Meta) -> Result<()> {
        let Scratch { file, name, depth } = s;
        let fd = OwnedFd::from(file);
        self.set_attrs_fd(&fd, meta, index);
        drop(fd);
        self.place(depth, &name, index)
    }

    /// Restores a symlink, FIFO or device node.
    pub fn put_special(&mut self, index: &Index, meta: &Meta) -> Result<()> {
        let (depth, _) = self.slot(index)?;
        let tmp = self.temp_name();
        let dir = self.dir_fd(depth);
        let perm = Mode::from_bits_truncate(meta.mode as libc::mode_t);
        let made = match meta.kind {
            Some(FileType::Symlink) => {
                symlinkat(OsStr::from_bytes(&meta.link_target), dir, tmp.as_os_str())
            }
            Some(FileType::Fifo) => mkfifoat(dir, tmp.as_os_str(), perm),
            Some(FileType::CharDevice) | Some(FileType::BlockDevice) => {
                let kind = if meta.kind == Some(FileType::CharDevice) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                mknodat(
                    dir,
                    tmp.as_os_str(),
                    kind,
                    perm,
                    libc::makedev(meta.devmajor, meta.devminor),
                )
            }
            _ => return Ok(()),
        };
        if let Err(e) = made {
            self.problems.push(format!(
                "{}: cannot create {}: {}",
                index.to_path(&self.dest).display(),
                meta.kind.map_or("entry", FileType::name),
                nix_io(e)
            ));
            return Ok(());
        }
        if meta.kind == Some(FileType::Symlink) {
            if self.restore_owner {
                let _ = fchownat(
                    dir,
                    tmp.as_os_str(),
                    Some(Uid::from_raw(self.owners.uid(meta))),
                    Some(Gid::from_raw(self.owners.gid(meta))),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
            }
        } else {
            if self.restore_owner {
                let _ = fchownat(
                    dir,
                    tmp.as_os_str(),
                    Some(Uid::from_raw(self.owners.uid(meta))),
                    Some(Gid::from_raw(self.owners.gid(meta))),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                );
            }
            // The node was just made here by us, so following is safe.
            let _ = nix::sys::stat::fchmodat(
                dir,
                tmp.as_os_str(),
                perm,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            );
            let _ = nix::sys::stat::utimensat(
                dir,
                tmp.as_os_str(),
                &TimeSpec::UTIME_NOW,
                &TimeSpec::new(meta.mtime.max(0) as libc::time_t, 0),
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
        self.place(depth, &tmp, index)
    }

    /// Leaves every open directory, applying their attributes.
    pub fn finish(mut self) -> Vec<String> {
        while let Some(f) = self.stack.pop() {
            self.apply_dir_attrs(f);
        }
        self.problems
    }
}
