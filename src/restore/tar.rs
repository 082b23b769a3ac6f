//! A restore written as a tar stream instead of into a directory: the
//! dashboard's download (a zip is [`super::zip`]'s). Each path is written as
//! soon as it is rebuilt, so nothing is staged but the one regular file being
//! rebuilt (an unnamed temporary file, gone when it is streamed or when the
//! process dies).
//!
//! Entry names are relative: the path asked for is the archive's top
//! (`docs/`, `docs/a.txt` for a download of `docs`; `a.txt` for a file),
//! the backup's own top level when everything is asked for.

use super::{Output, RestoreReport, Selected, reconstruct};
use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta};
use crate::archive::tarfmt::{self, Entry};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::time;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes the sets `sel` chose ([`super::select`]: a time, and `path` or
/// everything) as a tar stream into `out`; scratch files go to `tempdir`.
/// Choosing the sets reads the manifests, so an unreachable target or a
/// wrong passphrase fails there, before the caller sends anything.
pub fn restore_to_tar<W: Write>(
    repo: &Repo,
    sel: Selected,
    path: Option<&Index>,
    tempdir: &Path,
    out: W,
) -> Result<RestoreReport> {
    let tar = TarOut {
        out,
        top: path.cloned().unwrap_or_else(Index::root),
        tempdir: tempdir.to_path_buf(),
        written: 0,
        problems: Vec::new(),
    };
    restore_to(repo, sel, path, tempdir, tar)
}

/// What a download's writer does besides [`Output`].
pub(super) trait Stream: Output + Sized {
    /// The closing records, then a flush.
    fn finish(self) -> Result<()>;
    /// What could not be written as it was.
    fn problems(&self) -> &[String];
}

/// The restore into a download's writer `out`.
pub(super) fn restore_to<O: Stream>(
    repo: &Repo,
    sel: Selected,
    path: Option<&Index>,
    tempdir: &Path,
    out: O,
) -> Result<RestoreReport> {
    let limit = super::free_space(tempdir);
    let (mut report, out, wrote_any) = reconstruct(repo, sel, path, out, limit)?;
    if !wrote_any && report.complete() {
        return Err(match path {
            Some(p) => Error::PathNotInBackup {
                path: p.to_string(),
                time: time::to_pretty(report.backup_time),
            },
            None => Error::NoBackups(repo.describe()),
        });
    }
    report.problems.extend(out.problems().iter().cloned());
    out.finish()?;
    Ok(report)
}

/// The entry name of `ix` in a download of `top` (the restore walks paths
/// relative to it): the top's own name, then the path below it.
pub(super) fn entry_name(top: &Index, ix: &Index, dir: bool) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = top
        .components()
        .last()
        .map(Vec::as_slice)
        .into_iter()
        .collect();
    parts.extend(ix.components().iter().map(Vec::as_slice));
    let mut name = parts.join(&b'/');
    if dir {
        name.push(b'/');
    }
    name
}

/// An unnamed scratch file in `dir` for the file being rebuilt.
pub(super) fn scratch_in(dir: &Path) -> Result<File> {
    tempfile::tempfile_in(dir).map_err(|e| Error::local("create", dir, e))
}

struct TarOut<W: Write> {
    out: W,
    /// The path asked for: names are relative to its parent.
    top: Index,
    tempdir: PathBuf,
    written: u64,
    problems: Vec<String>,
}

impl<W: Write> TarOut<W> {
    fn header(&mut self, ix: &Index, meta: &Meta, size: u64) -> Result<()> {
        let dir = meta.kind == Some(FileType::Directory);
        let name = entry_name(&self.top, ix, dir);
        let mut block = Vec::with_capacity(1024);
        tarfmt::write_header(&Entry::from_meta(&name, meta, size), &mut block);
        self.put(&block)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(stream_error)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

impl<W: Write> Stream for TarOut<W> {
    /// The end-of-archive blocks, then a flush.
    fn finish(mut self) -> Result<()> {
        let zeros = vec![0u8; tarfmt::footer_len(self.written)];
        self.put(&zeros)?;
        self.out.flush().map_err(stream_error)
    }

    fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// The receiving side went away (a download cancelled): the restore stops.
pub(super) fn stream_error(e: io::Error) -> Error {
    Error::local("write the download stream", Path::new("-"), e)
}

impl<W: Write> Output for TarOut<W> {
    type Scratch = File;

    fn scratch(&mut self, _ix: &Index) -> Result<File> {
        scratch_in(&self.tempdir)
    }

    fn scratch_file<'a>(&self, s: &'a mut File) -> &'a mut File {
        s
    }

    fn discard(&mut self, _s: File) {}

    fn file(&mut self, ix: &Index, mut s: File, meta: &Meta) -> Result<()> {
        // The scratch is positioned at its start.
        let size = s
            .metadata()
            .map_err(|e| Error::local("read back", &self.tempdir, e))?
            .len();
        self.header(ix, meta, size)?;
        let copied = io::copy(&mut s, &mut self.out).map_err(stream_error)?;
        if copied != size {
            return Err(stream_error(io::Error::other("scratch file shrank")));
        }
        self.written += size;
        let rest = (512 - size % 512) % 512;
        self.put(&vec![0u8; rest as usize])
    }

    fn dir(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        if ix.is_root() && self.top.is_root() {
            return Ok(());
        }
        self.header(ix, meta, 0)
    }

    fn special(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        self.header(ix, meta, 0)
    }

    fn shown(&self, ix: &Index) -> String {
        ix.to_string()
    }
}
