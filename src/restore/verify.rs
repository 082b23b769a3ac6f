//! `verify`: rebuild the backup (checking every volume's hash and applying
//! every delta) and collate it with a live directory, as duplicity's
//! `verify` does. Without `compare_data` nothing is reported as different
//! (duplicity's rule: the rebuild itself is the check); with it, type,
//! permissions, owner, mtime, link target and contents are compared.

use super::{Output, RestoreReport};
use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta, OwnerMap};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::source::selection::Selection;
use crate::source::{SourceEntry, Walk};
use crate::time;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What a verify found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub compared: u64,
    pub differences: Vec<String>,
    pub restore: RestoreReport,
}

struct Compare<'w> {
    live: std::iter::Peekable<Walk<'w>>,
    compare_data: bool,
    owners: OwnerMap,
    tempdir: PathBuf,
    /// Where `Index::root()` is in the live tree.
    root: PathBuf,
    compared: u64,
    differences: Vec<String>,
}

impl Compare<'_> {
    fn diff(&mut self, ix: &Index, what: String) {
        self.differences.push(format!(
            "Difference found: {}",
            what.replace("%s", &ix.to_string())
        ));
    }

    /// Counts the live paths before `ix` (new since the backup).
    fn drain_before(&mut self, ix: Option<&Index>) {
        while let Some(e) = self.live.next_if(|e| ix.is_none_or(|ix| e.index < *ix)) {
            self.compared += 1;
            if self.compare_data {
                self.diff(&e.index, "New file %s".into());
            }
        }
    }

    fn take_live(&mut self, ix: &Index) -> Option<SourceEntry> {
        self.drain_before(Some(ix));
        self.live.next_if(|e| e.index == *ix)
    }

    /// `ROPath.compare_verbose`, for everything but contents.
    fn compare_meta(&mut self, ix: &Index, backup: &Meta, live: Option<&SourceEntry>) -> bool {
        self.compared += 1;
        if !self.compare_data {
            return false;
        }
        let Some(live) = live else {
            self.diff(ix, "File %s is missing".into());
            return false;
        };
        let b = self.owners.localize(backup);
        let l = &live.meta;
        let name = |k: Option<FileType>| k.map_or("None", FileType::name);
        if b.kind != l.kind {
            self.diff(
                ix,
                format!(
                    "File %s has type {}, expected {}",
                    name(l.kind),
                    name(b.kind)
                ),
            );
            return false;
        }
        let perms = |m: &Meta| format!("{}:{} {:o}", m.uid, m.gid, m.mode);
        match b.kind {
            Some(FileType::Symlink) => {
                if b.link_target != l.link_target {
                    self.diff(
                        ix,
                        format!(
                            "Symlink %s points to {}, expected {}",
                            String::from_utf8_lossy(&l.link_target),
                            String::from_utf8_lossy(&b.link_target)
                        ),
                    );
                }
                false
            }
            Some(FileType::CharDevice | FileType::BlockDevice) => {
                if b.mode != l.mode || b.uid != l.uid || b.gid != l.gid {
                    self.diff(
                        ix,
                        format!(
                            "Device file %s has permissions {}, expected {}",
                            perms(l),
                            perms(&b)
                        ),
                    );
                } else if (b.devmajor, b.devminor) != (l.devmajor, l.devminor) {
                    self.diff(
                        ix,
                        format!(
                            "Device file %s has device number ({}, {}), expected ({}, {})",
                            l.devmajor, l.devminor, b.devmajor, b.devminor
                        ),
                    );
                }
                false
            }
            _ => {
                if b.mode != l.mode || b.uid != l.uid || b.gid != l.gid {
                    self.diff(
                        ix,
                        format!(
                            "File %s has permissions {}, expected {}",
                            perms(l),
                            perms(&b)
                        ),
                    );
                    return false;
                }
                if b.mtime != l.mtime && (b.mtime > 0 || l.mtime > 0) {
                    self.diff(
                        ix,
                        format!(
                            "File %s has mtime {}, expected {}",
                            time::to_pretty(l.mtime),
                            time::to_pretty(b.mtime)
                        ),
                    );
                    return false;
                }
                // Regular files go on to compare contents.
                b.kind == Some(FileType::Regular)
            }
        }
    }
}

fn same_contents(mut a: impl Read, mut b: impl Read) -> io::Result<bool> {
    let mut x = vec![0u8; 256 * 1024];
    let mut y = vec![0u8; 256 * 1024];
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y[..n.max(1)])?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Output for Compare<'_> {
    type Scratch = File;

    fn scratch(&mut self, _ix: &Index) -> Result<File> {
        tempfile::tempfile_in(&self.tempdir)
            .map_err(|e| Error::local("create a temporary file in", &self.tempdir, e))
    }

    fn scratch_file<'a>(&self, s: &'a mut File) -> &'a mut File {
        s
    }

    fn discard(&mut self, _s: File) {}

    fn file(&mut self, ix: &Index, mut s: File, meta: &Meta) -> Result<()> {
        let live = self.take_live(ix);
        if self.compare_meta(ix, meta, live.as_ref()) {
            let path = live.as_ref().map(|e| e.path.clone()).unwrap_or_default();
            let same = File::open(&path).and_then(|f| same_contents(&mut s, f));
            match same {
                Ok(true) => {}
                Ok(false) => self.diff(ix, "Data for file %s is different".into()),
                Err(e) => self.diff(ix, format!("File %s cannot be read: {e}")),
            }
        }
        Ok(())
    }

    fn dir(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        let live = self.take_live(ix);
        self.compare_meta(ix, meta, live.as_ref());
        Ok(())
    }

    fn special(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        let live = self.take_live(ix);
        self.compare_meta(ix, meta, live.as_ref());
        Ok(())
    }

    fn shown(&self, ix: &Index) -> String {
        ix.to_path(&self.root).display().to_string()
    }
}

/// Verifies the backup at `t` (latest if `None`) against `dir`; with `path`,
/// only that path of the backup, compared with `dir` itself.
pub fn verify(
    repo: &Repo,
    dir: &Path,
    t: Option<time::Seconds>,
    path: Option<&Index>,
    compare_data: bool,
    selection: &Selection,
) -> Result<VerifyReport> {
    if !dir.exists() {
        return Err(Error::local(
            "verify against",
            dir,
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    let sel = super::select(repo, t, path)?;
    let walk = Walk::new(dir, selection);
    let cmp = Compare {
        live: walk.peekable(),
        compare_data,
        owners: OwnerMap::new(false),
        tempdir: repo.tempdir.clone(),
        root: dir.to_path_buf(),
        compared: 0,
        differences: Vec::new(),
    };
    let (restore, mut cmp, _) = super::reconstruct(repo, sel, path, cmp, u64::MAX)?;
    cmp.drain_before(None);
    Ok(VerifyReport {
        compared: cmp.compared,
        differences: cmp.differences,
        restore,
    })
}
