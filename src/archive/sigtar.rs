//! Signature tars (`*.sigtar`): for every path, its metadata, and for regular
//! files the librsync signature of their content (`diffdir.sigtar2path_iter`).
//! A full-signatures file lists everything; each new-signatures file lists
//! what an incremental added, changed or deleted. Combined in chain order,
//! latest entry winning, they describe the tree as of the chain's end
//! (`diffdir.combine_path_iters`).

use super::difftar::{self, DifftarError};
use super::index::Index;
use super::meta::Meta;
use std::io::Read;
use std::sync::mpsc::{Receiver, sync_channel};

/// One path as a signature tar records it. `meta.kind == None` for a
/// `deleted/` entry.
#[derive(Debug, Clone)]
pub struct SigEntry {
    pub index: Index,
    pub meta: Meta,
    /// The signature, for regular files.
    pub signature: Option<Vec<u8>>,
}

impl SigEntry {
    pub fn is_deleted(&self) -> bool {
        self.meta.kind.is_none()
    }
}

/// Signatures larger than this are refused as corrupt: even a 1 TiB file's
/// signature is about 12 MiB under either duplicity block-size rule.
const MAX_SIGNATURE: u64 = 1 << 30;

/// Reads a decoded signature tar, calling `f` for every entry in order.
pub fn read<R: Read>(
    reader: R,
    mut f: impl FnMut(SigEntry) -> Result<(), DifftarError>,
) -> Result<(), DifftarError> {
    difftar::for_each_entry(reader, |raw, data| {
        let name = raw.name.as_slice();
        let (kind, rest): (u8, &[u8]) = if let Some(r) = name.strip_prefix(b"signature/") {
            (b's', r)
        } else if let Some(r) = name.strip_prefix(b"snapshot/") {
            (b'n', r)
        } else if let Some(r) = name.strip_prefix(b"deleted/") {
            (b'd', r)
        } else {
            return Err(DifftarError::UnknownEntry(
                String::from_utf8_lossy(name).into_owned(),
            ));
        };
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        let index = Index::parse(rest)?;
        let mut meta = raw.meta;
        let mut signature = None;
        if kind == b'd' {
            meta = Meta::default();
        } else if kind == b's' && meta.is_regular() {
            if meta.size > MAX_SIGNATURE {
                return Err(DifftarError::UnknownEntry(format!(
                    "{}: signature of {} bytes is implausibly large",
                    String::from_utf8_lossy(name),
                    meta.size
                )));
            }
            // The header's size is a claim, not data: reserve at most 1 MiB
            // up front and let the vector grow with the bytes that come.
            let mut sig = Vec::with_capacity(meta.size.min(1 << 20) as usize);
            data.read_to_end(&mut sig).map_err(DifftarError::Tar)?;
            signature = Some(sig);
        }
        f(SigEntry {
            index,
            meta,
            signature,
        })
    })
}

/// Opens one signature file's decoded stream (run on a reader thread).
pub type OpenFn<'a> = Box<dyn FnOnce() -> Result<Box<dyn Read + Send + 'a>, String> + Send + 'a>;

/// Entries of one signature file, read by a background thread.
struct Feed {
    rx: Receiver<Result<SigEntry, String>>,
    head: Option<SigEntry>,
    done: bool,
}

impl Feed {
    fn peek(&mut self) -> Result<Option<&SigEntry>, String> {
        if self.head.is_none() && !self.done {
            match self.rx.recv() {
                Ok(Ok(e)) => self.head = Some(e),
                Ok(Err(e)) => return Err(e),
                Err(_) => self.done = true,
            }
        }
        Ok(self.head.as_ref())
    }
}

/// The combined view of a signature chain, in index order, latest wins.
/// Deleted entries are yielded too (callers decide whether they matter).
pub struct Combined {
    feeds: Vec<Feed>,
}

impl Combined {
    /// `sources` are the chain's signature files in order, each a function
    /// that opens the decoded stream (run on its own thread) and a name for
    /// messages.
    pub fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        sources: Vec<(String, OpenFn<'env>)>,
    ) -> Combined {
        let mut feeds = Vec::new();
        for (name, open) in sources {
            let (tx, rx) = sync_channel(64);
            scope.spawn(move || {
                let reader = match open() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(format!("{name}: {e}")));
                        return;
                    }
                };
                let res = read(reader, |e| {
                    tx.send(Ok(e))
                        .map_err(|_| DifftarError::Tar(std::io::Error::other("reader gone")))
                });
                if let Err(e) = res
                    && !matches!(&e, DifftarError::Tar(io) if io.to_string() == "reader gone")
                {
                    let _ = tx.send(Err(format!("{name}: {e}")));
                }
            });
            feeds.push(Feed {
                rx,
                head: None,
                done: false,
            });
        }
        Combined { feeds }
    }

    /// The next path of the combined view.
    pub fn next_entry(&mut self) -> Result<Option<SigEntry>, String> {
        let mut least: Option<Index> = None;
        for f in self.feeds.iter_mut() {
            if let Some(h) = f.peek()?
                && least.as_ref().is_none_or(|l| h.index < *l)
            {
                least = Some(h.index.clone());
            }
        }
        let Some(ix) = least else { return Ok(None) };
        let mut winner = None;
        for f in self.feeds.iter_mut() {
            if f.head.as_ref().is_some_and(|h| h.index == ix) {
                winner = f.head.take();
            }
        }
        Ok(winner)
    }
}

/// Writes a signature tar: entries in index order, ended as Python's
/// `TarFile.close()` ends it (two zero blocks, padded to a 10 KiB record).
pub struct SigtarWriter<W: std::io::Write> {
    out: W,
    offset: u64,
    buf: Vec<u8>,
}

fn sig_name(prefix: &[u8], index: &Index, dir: bool) -> Vec<u8> {
    let mut n = prefix.to_vec();
    n.extend_from_slice(&index.joined());
    if dir && !index.is_root() {
        n.push(b'/');
    }
    n
}

impl<W: std::io::Write> SigtarWriter<W> {
    pub fn new(out: W) -> Self {
        SigtarWriter {
            out,
            offset: 0,
            buf: Vec::with_capacity(2048),
        }
    }

    fn put(&mut self, name: &[u8], meta: Option<&Meta>, data: &[u8]) -> std::io::Result<()> {
        use super::tarfmt::{Entry, pad, write_header};
        self.buf.clear();
        let e = match meta {
            Some(m) => Entry::from_meta(name, m, data.len() as u64),
            None => Entry::deleted(name),
        };
        write_header(&e, &mut self.buf);
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self.out.write_all(&self.buf)?;
        self.offset += self.buf.len() as u64;
        Ok(())
    }

    /// A regular file and its signature.
    pub fn signature(&mut self, index: &Index, meta: &Meta, sig: &[u8]) -> std::io::Result<()> {
        self.put(&sig_name(b"signature/", index, false), Some(meta), sig)
    }

    /// Anything that is not a regular file.
    pub fn snapshot(&mut self, index: &Index, meta: &Meta) -> std::io::Result<()> {
        self.put(
            &sig_name(b"snapshot/", index, meta.is_dir()),
            Some(meta),
            b"",
        )
    }

    pub fn deleted(&mut self, index: &Index) -> std::io::Result<()> {
        self.put(&sig_name(b"deleted/", index, false), None, b"")
    }

    /// Ends the archive and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        let end = self.offset + 1024;
        let total = end.div_ceil(super::tarfmt::RECORD as u64) * super::tarfmt::RECORD as u64;
        let zeros = vec![0u8; (total - self.offset) as usize];
        self.out.write_all(&zeros)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::meta::FileType;

    fn sigtar(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, t, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(match t {
                b'd' => tar::EntryType::Directory,
                _ => tar::EntryType::Regular,
            });
            h.set_mode(0o644);
            h.set_mtime(1000);
            h.set_size(data.len() as u64);
            h.set_path(name).unwrap();
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Found while fuzzing (target `sigtar`): a 1 KiB signature tar whose
    /// header claims a 1 GiB signature made `read` allocate 1 GiB up front.
    #[test]
    fn claimed_signature_size_is_not_allocated_up_front() {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(MAX_SIGNATURE);
        h.set_path("signature/a").unwrap();
        h.set_cksum();
        let mut input = h.as_bytes().to_vec();
        input.extend_from_slice(b"rs\x016");
        input.resize(1024, 0);
        let mut reserved = Vec::new();
        let _ = read(&input[..], |e| {
            reserved.push(e.signature.map_or(0, |s| s.capacity()));
            Ok(())
        });
        assert!(reserved.iter().all(|&c| c <= 1 << 20), "{reserved:?}");
    }

    #[test]
    fn combine_latest_wins_and_deletions_show() {
        let full = sigtar(&[
            ("snapshot/", b'd', b""),
            ("signature/a", b'f', b"sigA"),
            ("signature/b", b'f', b"sigB"),
        ]);
        let inc = sigtar(&[
            ("deleted/a", b'f', b""),
            ("signature/b", b'f', b"sigB2"),
            ("signature/c", b'f', b"sigC"),
        ]);
        let got: Vec<(String, bool, Option<Vec<u8>>)> = std::thread::scope(|s| {
            let sources: Vec<(String, OpenFn<'static>)> = vec![
                (
                    "full".into(),
                    Box::new(move || {
                        Ok(Box::new(std::io::Cursor::new(full)) as Box<dyn Read + Send>)
                    }),
                ),
                (
                    "inc".into(),
                    Box::new(move || {
                        Ok(Box::new(std::io::Cursor::new(inc)) as Box<dyn Read + Send>)
                    }),
                ),
            ];
            let mut c = Combined::start(s, sources);
            let mut out = Vec::new();
            while let Some(e) = c.next_entry().unwrap() {
                out.push((e.index.to_string(), e.is_deleted(), e.signature));
            }
            out
        });
        assert_eq!(
            got,
            vec![
                (".".into(), false, None),
                ("a".into(), true, None),
                ("b".into(), false, Some(b"sigB2".to_vec())),
                ("c".into(), false, Some(b"sigC".to_vec())),
            ]
        );
    }

    #[test]
    fn root_and_directory_names() {
        let t = sigtar(&[("snapshot/", b'd', b""), ("snapshot/sub/", b'd', b"")]);
        let mut seen = Vec::new();
        read(&t[..], |e| {
            seen.push((e.index.to_string(), e.meta.kind));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (".".into(), Some(FileType::Directory)),
                ("sub".into(), Some(FileType::Directory))
            ]
        );
    }
}
