//! A restore written as a zip stream (the dashboard's `.zip` download, for
//! machines without a tar tool). As with [`super::tar`], each path is written
//! as soon as it is rebuilt and only that one file is staged (unnamed); the
//! central directory goes to a second unnamed file as the entries are
//! written, so memory does not grow with the number of files. Entries are
//! stored, not compressed (the volumes were compressed; the LAN is fast).
//! FIFOs and devices have no place in a zip: they are left out and named.

use super::tar::{Stream, entry_name, restore_to, scratch_in, stream_error};
use super::{Output, RestoreReport, Selected};
use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta};
use crate::archive::zipfmt::{self, Entry, Kind};
use crate::error::{Error, Result};
use crate::repo::Repo;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes the sets `sel` chose as a zip stream into `out` (see
/// [`super::tar::restore_to_tar`], the same otherwise).
pub fn restore_to_zip<W: Write>(
    repo: &Repo,
    sel: Selected,
    path: Option<&Index>,
    tempdir: &Path,
    out: W,
) -> Result<RestoreReport> {
    let zip = ZipOut::new(out, path, tempdir, zipfmt::ZIP64_FROM)?;
    restore_to(repo, sel, path, tempdir, zip)
}

struct ZipOut<W: Write> {
    out: W,
    /// The path asked for: names are relative to its parent.
    top: Index,
    tempdir: PathBuf,
    written: u64,
    /// The central directory's records so far, spooled.
    central: BufWriter<File>,
    central_size: u64,
    entries: u64,
    problems: Vec<String>,
    /// Sizes and offsets from here on get ZIP64 fields (lowered by tests).
    zip64_from: u64,
}

impl<W: Write> ZipOut<W> {
    fn new(out: W, path: Option<&Index>, tempdir: &Path, zip64_from: u64) -> Result<Self> {
        Ok(ZipOut {
            out,
            top: path.cloned().unwrap_or_else(Index::root),
            tempdir: tempdir.to_path_buf(),
            written: 0,
            central: BufWriter::new(scratch_in(tempdir)?),
            central_size: 0,
            entries: 0,
            problems: Vec::new(),
            zip64_from,
        })
    }

    /// One entry: its local header, `data` (exactly `e.size` bytes), and its
    /// record for the central directory.
    fn entry(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        let offset = self.written;
        self.put(&zipfmt::local_header(e, self.zip64_from))?;
        let copied = io::copy(data, &mut self.out).map_err(stream_error)?;
        if copied != e.size {
            return Err(stream_error(io::Error::other("scratch file changed size")));
        }
        self.written += copied;
        let record = zipfmt::central_record(e, offset, self.zip64_from);
        self.central
            .write_all(&record)
            .map_err(|err| Error::local("write", &self.tempdir, err))?;
        self.central_size += record.len() as u64;
        self.entries += 1;
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(stream_error)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn facts(&self, ix: &Index, meta: &Meta, kind: Kind, size: u64, crc: u32) -> Entry {
        Entry {
            name: entry_name(&self.top, ix, kind == Kind::Dir),
            kind,
            mode: meta.mode,
            mtime: meta.mtime,
            size,
            crc,
        }
    }
}

/// The CRC-32 and length of a file, read from its start; left at its start.
fn crc_of(f: &mut File) -> io::Result<(u32, u64)> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    f.seek(SeekFrom::Start(0))?;
    Ok((h.finalize(), len))
}

impl<W: Write> Output for ZipOut<W> {
    type Scratch = File;

    fn scratch(&mut self, _ix: &Index) -> Result<File> {
        scratch_in(&self.tempdir)
    }

    fn scratch_file<'a>(&self, s: &'a mut File) -> &'a mut File {
        s
    }

    fn discard(&mut self, _s: File) {}

    fn file(&mut self, ix: &Index, mut s: File, meta: &Meta) -> Result<()> {
        let (crc, size) =
            crc_of(&mut s).map_err(|e| Error::local("read back", &self.tempdir, e))?;
        let e = self.facts(ix, meta, Kind::File, size, crc);
        self.entry(&e, &mut s)
    }

    fn dir(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        if ix.is_root() && self.top.is_root() {
            return Ok(());
        }
        let e = self.facts(ix, meta, Kind::Dir, 0, 0);
        self.entry(&e, &mut io::empty())
    }

    fn special(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        if meta.kind != Some(FileType::Symlink) {
            self.problems.push(format!(
                "{}: a {:?} cannot be put in a zip; download as .tar to keep it",
                ix,
                meta.kind.unwrap_or(FileType::Regular)
            ));
            return Ok(());
        }
        let target = meta.link_target.clone();
        let e = self.facts(
            ix,
            meta,
            Kind::Symlink,
            target.len() as u64,
            crc32fast::hash(&target),
        );
        self.entry(&e, &mut target.as_slice())
    }

    fn shown(&self, ix: &Index) -> String {
        ix.to_string()
    }
}

impl<W: Write> Stream for ZipOut<W> {
    /// The central directory, then the end records, then a flush.
    fn finish(mut self) -> Result<()> {
        let cd_offset = self.written;
        let mut central = self
            .central
            .into_inner()
            .map_err(|e| Error::local("write", &self.tempdir, e.into_error()))?;
        central
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::local("read back", &self.tempdir, e))?;
        let copied = io::copy(&mut central, &mut self.out).map_err(stream_error)?;
        self.written += copied;
        let end = zipfmt::end_records(self.entries, cd_offset, copied, self.zip64_from);
        self.out.write_all(&end).map_err(stream_error)?;
        self.out.flush().map_err(stream_error)
    }

    fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: FileType, mode: u32, link: &[u8]) -> Meta {
        Meta {
            kind: Some(kind),
            mode,
            mtime: 1_765_000_000,
            link_target: link.to_vec(),
            ..Meta::default()
        }
    }

    fn ix(p: &str) -> Index {
        Index::parse(p.as_bytes()).unwrap()
    }

    /// A download of `docs`: a directory, a file, a symlink and a FIFO.
    fn zip_of_docs(dir: &Path, zip64_from: u64) -> (Vec<u8>, Vec<String>) {
        let mut buf = Vec::new();
        let mut z = ZipOut::new(&mut buf, Some(&ix("docs")), dir, zip64_from).unwrap();
        z.dir(&Index::root(), &meta(FileType::Directory, 0o750, b""))
            .unwrap();
        let mut s = z.scratch(&ix("a.txt")).unwrap();
        s.write_all(b"hello, zip\n").unwrap();
        s.seek(SeekFrom::Start(0)).unwrap();
        z.file(&ix("a.txt"), s, &meta(FileType::Regular, 0o640, b""))
            .unwrap();
        z.special(&ix("link"), &meta(FileType::Symlink, 0o777, b"a.txt"))
            .unwrap();
        z.special(&ix("pipe"), &meta(FileType::Fifo, 0o644, b""))
            .unwrap();
        let problems = z.problems().to_vec();
        z.finish().unwrap();
        (buf, problems)
    }

    /// Python's zipfile reads it back, plain and with ZIP64 fields everywhere.
    #[test]
    fn pythons_zipfile_reads_names_modes_data_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        for zip64_from in [zipfmt::ZIP64_FROM, 0] {
            let (bytes, problems) = zip_of_docs(dir.path(), zip64_from);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("pipe"), "{problems:?}");
            let p = dir.path().join("d.zip");
            std::fs::write(&p, &bytes).unwrap();
            let script = "import sys, zipfile\n\
                z = zipfile.ZipFile(sys.argv[1])\n\
                assert z.testzip() is None\n\
                for i in z.infolist():\n    \
                print(i.filename, oct(i.external_attr >> 16), i.file_size, z.read(i).decode(), \
                i.date_time[0] >= 2025)\n";
            let out = std::process::Command::new("python3")
                .args(["-c", script])
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "docs/ 0o40750 0  True\n\
                 docs/a.txt 0o100640 11 hello, zip\n True\n\
                 docs/link 0o120777 5 a.txt True\n",
                "ZIP64 from {zip64_from}"
            );
        }
    }
}
