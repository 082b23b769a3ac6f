//! The tree being backed up: walked in duplicity's order (depth first, each
//! directory's names sorted bytewise, which is index-tuple order), with the
//! metadata duplicity records read from `lstat`, and the selection rules
//! deciding what is in.
//!
//! The walk streams: it holds one sorted name list per open directory level,
//! never the whole tree, so a tree of millions of files costs no more memory
//! than its widest directory.

pub mod selection;

use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta};
use selection::{Decision, Selection};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The source path as duplicity records it (`Path.get_canonical`): `.`
/// components and trailing slashes removed, not made absolute.
pub fn canonical_source(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let raw = p.as_os_str().as_bytes();
    let absolute = raw.starts_with(b"/");
    let parts: Vec<&[u8]> = raw
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    let mut out = if absolute { b"/".to_vec() } else { Vec::new() };
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// One path of the source tree.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    pub index: Index,
    pub path: PathBuf,
    pub meta: Meta,
    /// Where a regular file's data is read when `path` is a symlink followed
    /// under `--copy-links` (its resolved target).
    pub content: Option<PathBuf>,
}

impl SourceEntry {
    /// The file to read this entry's data from.
    pub fn data_path(&self) -> &Path {
        self.content.as_deref().unwrap_or(&self.path)
    }
}

/// Something the walk could not read; reported, then skipped, as duplicity
/// does, so one unreadable file never fails a whole backup.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// Looks up owner names by number, cached (`cached_ops.getpwuid`).
#[derive(Default)]
pub struct Names {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl Names {
    pub fn user(&mut self, uid: u32) -> Vec<u8> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }

    pub fn group(&mut self, gid: u32) -> Vec<u8> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// The metadata duplicity records for a path (`ROPath.set_from_stat` and
/// `get_tarinfo`). `None` for sockets, which are never backed up.
pub fn meta_of(path: &Path, st: &fs::Metadata, names: &mut Names) -> io::Result<Option<Meta>> {
    let ft = st.file_type();
    let kind = if ft.is_file() {
        FileType::Regular
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_fifo() {
        FileType::Fifo
    } else if ft.is_char_device() {
        FileType::CharDevice
    } else if ft.is_block_device() {
        FileType::BlockDevice
    } else {
        return Ok(None);
    };
    let mut m = Meta {
        kind: Some(kind),
        mode: st.mode() & 0o7777,
        uid: u64::from(st.uid()),
        gid: u64::from(st.gid()),
        uname: names.user(st.uid()),
        gname: names.group(st.gid()),
        mtime: st.mtime().max(0),
        size: if kind == FileType::Regular {
            st.len()
        } else {
            0
        },
        ..Default::default()
    };
    match kind {
        FileType::Symlink => m.link_target = fs::read_link(path)?.into_os_string().into_vec(),
        FileType::CharDevice | FileType::BlockDevice => {
            let dev = st.rdev();
            m.devmajor = libc::major(dev);
            m.devminor = libc::minor(dev);
        }
        _ => {}
    }
    Ok(Some(m))
}

use std::os::unix::ffi::OsStringExt;

struct Level {
    index: Index,
    path: PathBuf,
    names: std::vec::IntoIter<OsString>,
}

/// Walks a source tree in index order.
pub struct Walk<'s> {
    root: PathBuf,
    stack: Vec<Level>,
    started: bool,
    selection: &'s Selection,
    names: Names,
    /// What could not be read so far.
    pub skipped: Vec<Skipped>,
    /// Sockets passed over (not errors, as in duplicity).
    pub sockets: u64,
    /// Scanned directories not yet emitted; they are the innermost open
    /// levels, so each ends when its level does.
    delayed: Vec<SourceEntry>,
    /// Entries decided and waiting to be returned.
    ready: std::collections::VecDeque<SourceEntry>,
}

fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(v)
}

impl<'s> Walk<'s> {
    pub fn new(root: &Path, selection: &'s Selection) -> Self {
        Walk {
            root: root.to_path_buf(),
            stack: Vec::new(),
            started: false,
            selection,
            names: Names::default(),
            skipped: Vec::new(),
            sockets: 0,
            delayed: Vec::new(),
            ready: std::collections::VecDeque::new(),
        }
    }

    fn skip(&mut self, path: PathBuf, e: impl std::fmt::Display) {
        self.skipped.push(Skipped {
            path,
            why: e.to_string(),
        });
    }

    fn open_dir(&mut self, index: Index, path: PathBuf) {
        match sorted_names(&path) {
            Ok(names) => self.stack.push(Level {
                index,
                path,
                names: names.into_iter(),
            }),
            Err(e) => {
                self.skip(path.clone(), format!("cannot list directory: {e}"));
                // An empty level keeps the delayed-directory bookkeeping aligned.
                self.stack.push(Level {
                    index,
                    path,
                    names: Vec::new().into_iter(),
                });
            }
        }
    }

    /// `--copy-links`: a symlink stands for what it points to. A dangling
    /// link is passed over as duplicity does; a link to a directory that
    /// contains it is skipped (duplicity would walk it forever).
    fn follow(&mut self, path: &Path, st: fs::Metadata) -> Option<(fs::Metadata, Option<PathBuf>)> {
        if !self.selection.copy_links || !st.file_type().is_symlink() {
            return Some((st, None));
        }
        let target = fs::metadata(path).ok()?;
        let resolved = fs::canonicalize(path).ok()?;
        if target.is_dir() {
            let parent = path.parent().and_then(|p| fs::canonicalize(p).ok());
            if parent.is_some_and(|p| p.starts_with(&resolved)) {
                self.skip(
                    path.to_path_buf(),
                    "a symlink to a directory that contains it; not followed",
                );
                return None;
            }
            return Some((target, None));
        }
        Some((target, Some(resolved)))
    }

    /// Reads one path; `None` if it is skipped.
    fn entry(&mut self, index: Index, path: PathBuf) -> Option<SourceEntry> {
        let st = match fs::symlink_metadata(&path) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.skip(path, "vanished while the backup ran");
                return None;
            }
            Err(e) => {
                self.skip(path, e);
                return None;
            }
        };
        let (st, content) = self.follow(&path, st)?;
        match meta_of(&path, &st, &mut self.names) {
            Ok(Some(meta)) => Some(SourceEntry {
                index,
                path,
                meta,
                content,
            }),
            Ok(None) => {
                self.sockets += 1;
                None
            }
            Err(e) => {
                self.skip(path, e);
                None
            }
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = SourceEntry;

    /// `selection.Select.Iterate`: the root first, then depth first; a
    /// directory that is only "scanned" waits on `delayed` and comes out just
    /// before the first thing inside it that is included, or not at all.
    fn next(&mut self) -> Option<SourceEntry> {
        if !self.started {
            self.started = true;
            let root = self.root.clone();
            let e = self.entry(Index::root(), root.clone())?;
            if e.meta.is_dir() {
                self.open_dir(Index::root(), root);
            }
            return Some(e);
        }
        if let Some(e) = self.ready.pop_front() {
            return Some(e);
        }
        loop {
            let level = self.stack.last_mut()?;
            let Some(name) = level.names.next() else {
                self.stack.pop();
                self.delayed.pop();
                continue;
            };
            let index = level.index.child(name.as_bytes());
            let path = level.path.join(&name);
            let Some(e) = self.entry(index, path) else {
                continue;
            };
            match self.selection.decide(&e.path, &e.meta, &self.root) {
                Decision::Exclude => continue,
                Decision::Include => {
                    if e.meta.is_dir() {
                        self.open_dir(e.index.clone(), e.path.clone());
                    }
                    // Scanned parents come out first, outermost first.
                    self.ready.extend(self.delayed.drain(..));
                    self.ready.push_back(e);
                    return self.ready.pop_front();
                }
                Decision::ScanOnly => {
                    if e.meta.is_dir() {
                        self.open_dir(e.index.clone(), e.path.clone());
                        self.delayed.push(e);
                    }
                    continue;
                }
            }
        }
    }
}

/// The name of `path` for messages.
pub fn shown(path: &Path) -> String {
    String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned()
}

#[allow(dead_code)]
fn os(s: &[u8]) -> &OsStr {
    OsStr::from_bytes(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn canonical_paths() {
        assert_eq!(canonical_source(Path::new("src/")), b"src");
        assert_eq!(canonical_source(Path::new("./src/./a//")), b"src/a");
        assert_eq!(canonical_source(Path::new("/home/x/")), b"/home/x");
        assert_eq!(canonical_source(Path::new(".")), b".");
        assert_eq!(canonical_source(Path::new("/")), b"/");
    }

    use super::*;

    #[test]
    fn walks_in_index_order_and_skips_sockets() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("a/x")).unwrap();
        fs::write(r.join("a.txt"), b"1").unwrap();
        fs::write(r.join("a/x/f"), b"2").unwrap();
        fs::write(r.join("b"), b"3").unwrap();
        std::os::unix::fs::symlink("b", r.join("c")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
        let sel = Selection::default();
        let mut w = Walk::new(r, &sel);
        let got: Vec<String> = w.by_ref().map(|e| e.index.to_string()).collect();
        assert_eq!(got, vec![".", "a", "a/x", "a/x/f", "a.txt", "b", "c"]);
        assert_eq!(w.sockets, 1);
        assert!(w.skipped.is_empty());
    }

    #[test]
    fn copy_links_follows_symlinks_and_passes_over_dangling_ones() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("d/x"), b"in").unwrap();
        fs::write(r.join("f"), b"data").unwrap();
        std::os::unix::fs::symlink("f", r.join("lf")).unwrap();
        std::os::unix::fs::symlink("d", r.join("ld")).unwrap();
        std::os::unix::fs::symlink("nowhere", r.join("dangling")).unwrap();
        std::os::unix::fs::symlink("..", r.join("d/loop")).unwrap();
        let mut sel = Selection::default();
        sel.copy_links = true;
        let mut w = Walk::new(r, &sel);
        let got: Vec<SourceEntry> = w.by_ref().collect();
        let names: Vec<String> = got.iter().map(|e| e.index.to_string()).collect();
        assert_eq!(names, vec![".", "d", "d/x", "f", "ld", "ld/x", "lf"]);
        let lf = &got[6];
        assert!(lf.meta.is_regular());
        assert_eq!(fs::read(lf.data_path()).unwrap(), b"data");
        assert_eq!(w.skipped.len(), 2, "the loop, twice: {:?}", w.skipped);
    }
}
