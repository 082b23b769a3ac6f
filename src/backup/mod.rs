//! Writing a backup set (`duplicity full` / `incremental`): walk the source
//! in index order beside the combined signatures of the chain being extended,
//! and for every path that is new, changed or gone emit what duplicity would:
//! a `snapshot/` (whole file, 64 KiB chunks), a `diff/` (rsync delta against
//! the old signature), or a `deleted/` entry; write each file's new signature
//! into the set's signature tar as it is read; cut the entry stream into
//! volumes; upload the signatures and, last, the manifest, whose presence is
//! what makes a set complete.

mod uploads;
mod volumes;

pub use uploads::MAX_CONCURRENCY;

use crate::archive::codec;
use crate::archive::codec::Encoder;
use crate::archive::collection::{Collection, SetKind};
use crate::archive::difftar::{self, CHUNK, DiffType};
use crate::archive::index::Index;
use crate::archive::manifest::{Manifest, VolumeInfo};
use crate::archive::meta::{Meta, OwnerMap};
use crate::archive::names::Encoding;
use crate::archive::sigtar::{Combined, SigEntry, SigtarWriter};
use crate::archive::tarfmt;
use crate::crypto::{EncryptConfig, MessageKeys};
use crate::delta::{self, Differ, SignatureBuilder};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::source::selection::Selection;
use crate::source::{Skipped, SourceEntry, Walk, canonical_source};
use crate::time::{self, Seconds};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use volumes::{StoredVolume, VolumeLog, VolumeWriter, encode_err};

/// Which kind of set to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Incremental,
    /// Incremental if there is a chain to extend, else full (duplicity's
    /// implicit backup).
    Auto,
}

/// How stored files are encoded.
#[derive(Clone)]
pub enum Storage {
    Encrypted(Box<EncryptConfig>),
    Gzip,
    Plain,
}

impl Storage {
    pub fn encoding(&self) -> Encoding {
        match self {
            Storage::Encrypted(_) => Encoding::Gpg,
            Storage::Gzip => Encoding::Gzip,
            Storage::Plain => Encoding::Plain,
        }
    }

    /// How OpenPGP content is compressed: gpg's `--compress-algo`.
    pub(crate) fn packing(&self) -> codec::Packing {
        use sequoia_openpgp::types::CompressionAlgorithm as C;
        match self {
            Storage::Encrypted(c) => match c.compression {
                C::Zlib => codec::Packing::Zlib,
                C::Uncompressed => codec::Packing::None,
                _ => codec::Packing::Zip,
            },
            _ => codec::Packing::Zip,
        }
    }

    /// The deflate level: gpg's `--compress-level` if given, else 6.
    pub(crate) fn level(&self) -> u32 {
        match self {
            Storage::Encrypted(c) => c.compress_level.map_or(codec::DEFAULT_LEVEL, u32::from),
            Storage::Gzip => codec::DEFAULT_LEVEL,
            Storage::Plain => 0,
        }
    }
}

#[derive(Clone)]
pub struct BackupOptions {
    /// The source directory, as given (recorded as the manifest's Localdir).
    pub source: PathBuf,
    pub mode: Mode,
    /// Volume size target in bytes (`--volsize` MiB × 2²⁰).
    pub volsize: u64,
    /// Volumes uploaded at once while the next one is encoded (duplicity
    /// 3.x's `--concurrency`); 0 uploads each before encoding the next.
    pub concurrency: usize,
    pub storage: Storage,
    pub selection: Selection,
    /// Recorded as the manifest's Hostname and checked on incrementals.
    pub hostname: String,
    pub allow_source_mismatch: bool,
    /// An incremental becomes a full when the last full is older than this.
    pub full_if_older_than: Option<Seconds>,
    /// The backup time (`--current-time`); default now.
    pub time: Option<Seconds>,
    pub progress: std::sync::Arc<dyn crate::progress::Progress>,
    /// Sees every entry of the new signatures as it is written (the
    /// catalog's feed: no second pass over the source).
    pub observer: Option<std::sync::Arc<std::sync::Mutex<dyn Observer>>>,
    /// Stops the backup at the next file or chunk, resumable
    /// ([`Error::Cancelled`]).
    pub cancel: crate::progress::Cancel,
}

/// Told what the new set's signature tar records, entry by entry, as it is
/// written: for every path that is new or changed its metadata (for a
/// regular file, `meta.size` is the file's size, which the signature tar
/// itself does not keep), and for every path that is gone, `None`.
pub trait Observer: Send {
    /// A set's signatures start (again: a set that restarts begins anew).
    fn start(&mut self);
    fn entry(&mut self, index: &Index, meta: Option<&Meta>);
}

impl BackupOptions {
    pub fn new(source: impl Into<PathBuf>, storage: Storage) -> Self {
        BackupOptions {
            source: source.into(),
            mode: Mode::Auto,
            volsize: 200 << 20,
            concurrency: 1,
            storage,
            selection: Selection::default(),
            hostname: hostname(),
            allow_source_mismatch: false,
            full_if_older_than: None,
            time: None,
            progress: crate::progress::silent(),
            observer: None,
            cancel: crate::progress::Cancel::default(),
        }
    }
}

/// `socket.gethostname()`.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a backup did.
#[derive(Debug, Default)]
pub struct BackupReport {
    pub kind: Option<SetKind>,
    pub time: Seconds,
    /// For an incremental, the time of the set it extends.
    pub previous: Option<Seconds>,
    /// Why the kind was chosen, when it was not asked for (for the log).
    pub note: Option<String>,
    pub source_files: u64,
    pub source_bytes: u64,
    pub new_files: u64,
    pub changed_files: u64,
    pub deleted_files: u64,
    /// Entries written to the volumes (duplicity's DeltaEntries: new,
    /// changed and deleted paths of every kind).
    pub delta_entries: u64,
    pub volumes: u64,
    /// Bytes stored at the target (volumes, signatures, manifest).
    pub stored_bytes: u64,
    pub skipped: Vec<Skipped>,
    /// Sockets passed over (never backed up, as in duplicity).
    pub sockets: u64,
    /// Files that changed while they were read (stored as read).
    pub changed_while_read: Vec<String>,
    /// Leftovers of an interrupted run that were removed first.
    pub cleared: Vec<String>,
}

/// The manifest being written to the archive directory as the backup goes.
struct ManifestPart {
    path: PathBuf,
    file: File,
    /// The volumes' plaintext hashes, for resuming ([`plain_hashes_path`]).
    hashes_path: PathBuf,
    hashes: File,
    progress: std::sync::Arc<dyn crate::progress::Progress>,
}

impl VolumeLog for ManifestPart {
    fn volume_done(
        &mut self,
        info: &VolumeInfo,
        stored: &crate::archive::codec::Stored,
        plain_sha1: &[u8],
    ) -> Result<()> {
        let mut b = info.to_bytes();
        b.push(b'\n');
        let err = |e| Error::local("write", self.path.clone(), e);
        self.file.write_all(&b).map_err(err)?;
        self.file.sync_data().map_err(err)?;
        crate::fault::step();
        let line = format!("{} {}\n", info.number, hex::encode(plain_sha1));
        let err = |e| Error::local("write", self.hashes_path.clone(), e);
        self.hashes.write_all(line.as_bytes()).map_err(err)?;
        self.hashes.sync_data().map_err(err)?;
        crate::fault::step();
        self.progress.volume(info.number, stored.size);
        Ok(())
    }
}

/// Beside a partial manifest in the archive dir: `NUMBER SHA1` of each stored
/// volume's plaintext tar, which a resumed run checks its regenerated entries
/// against. duplicity ignores the file (its name is not one of duplicity's).
pub(crate) fn plain_hashes_path(cache: &Path, partial_manifest: &str) -> PathBuf {
    cache.join(format!(
        "{}{partial_manifest}",
        crate::repo::PLAIN_HASHES_PREFIX
    ))
}

/// Reads [`plain_hashes_path`]; a torn last line is ignored.
fn read_plain_hashes(path: &Path) -> std::collections::BTreeMap<u64, Vec<u8>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (n, h) = l.split_once(' ')?;
            let h = hex::decode(h).ok().filter(|h| h.len() == 20)?;
            Some((n.parse().ok()?, h))
        })
        .collect()
}

/// The plaintext SHA1 of each stored volume 1, 2, … of a partial set that
/// has no resume record (one duplicity left), read back from the target,
/// checked against the manifest's hash and decoded: what a resume checks its
/// regenerated volumes against. Stops at the first volume that is missing,
/// damaged or cannot be decoded (another passphrase).
fn hash_stored_volumes(
    repo: &Repo,
    manifest: &Manifest,
    volumes: &std::collections::BTreeMap<u64, String>,
) -> std::collections::BTreeMap<u64, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for (n, info) in &manifest.volumes {
        let hash = volumes
            .get(n)
            .filter(|_| *n == out.len() as u64 + 1)
            .and_then(|name| plain_sha1_of(repo, name, info));
        match hash {
            Some(h) => out.insert(*n, h),
            None => break,
        };
    }
    out
}

/// The SHA1 of a stored volume's tar (see [`tar_sha1`]), or `None` if it
/// cannot be fetched, fails its manifest hash, or cannot be decoded.
fn plain_sha1_of(repo: &Repo, name: &str, info: &VolumeInfo) -> Option<Vec<u8>> {
    let vol = repo.fetch_volume(name, Some(info)).ok()?;
    let enc = repo.naming.parse(name)?.encoding();
    let r = codec::decode(vol.open().ok()?, enc, &repo.keys).ok()?;
    tar_sha1(r)
}

/// The SHA1 of a volume's tar: its entries and its footer, as Cairn's own
/// resume record hashes them. duplicity pads a volume's plaintext after the
/// tar to reach its size (`top_off`); that padding is not part of it.
fn tar_sha1(mut r: impl Read) -> Option<Vec<u8>> {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    let mut offset: u64 = 0;
    let mut block = [0u8; 512];
    loop {
        r.read_exact(&mut block).ok()?;
        if block.iter().all(|&b| b == 0) {
            break;
        }
        h.update(block);
        let padded = tar_entry_size(&block)?.div_ceil(512) * 512;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = padded;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..n]).ok()?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        offset += 512 + padded;
    }
    let mut footer = vec![0u8; tarfmt::footer_len(offset).checked_sub(512)?];
    r.read_exact(&mut footer).ok()?;
    h.update(block);
    h.update(&footer);
    Some(h.finalize().to_vec())
}

/// The data size in a tar header: octal, or base-256 with the high bit set.
fn tar_entry_size(header: &[u8; 512]) -> Option<u64> {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .try_fold(0u64, |n, &b| n.checked_mul(256).map(|n| n + u64::from(b)));
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// Feeds tar entries to the volume writer and records what the manifest's
/// Filelist needs.
struct Emitter<'r, 'c, 'm> {
    vw: VolumeWriter<'r, 'c>,
    log: &'m mut ManifestPart,
    header: Vec<u8>,
    /// `(change, path)` lines of the Filelist, spooled to disk.
    filelist: BufWriter<File>,
    filelist_count: u64,
}

impl Emitter<'_, '_, '_> {
    fn entry(
        &mut self,
        index: &Index,
        difftype: DiffType,
        chunk: Option<(u64, bool)>,
        meta: Option<&Meta>,
        data: &[u8],
    ) -> Result<()> {
        let is_dir = meta.is_some_and(Meta::is_dir);
        let name = difftar::entry_name(index, difftype, chunk.map(|c| c.0), is_dir);
        self.header.clear();
        let e = match meta {
            Some(m) => tarfmt::Entry::from_meta(&name, m, data.len() as u64),
            None => tarfmt::Entry::deleted(&name),
        };
        tarfmt::write_header(&e, &mut self.header);
        // The manifest records a chunk number only for chunks that are not
        // their file's last.
        let block = chunk.and_then(|(k, last)| (!last).then_some(k));
        let header = std::mem::take(&mut self.header);
        let r = self.vw.add(index, block, &header, data, self.log);
        self.header = header;
        r
    }

    fn changed(&mut self, change: &str, index: &Index) -> Result<()> {
        let line = format!("{change}\0");
        let mut b = line.into_bytes();
        b.extend_from_slice(&index.to_bytes());
        b.push(b'\n');
        self.filelist
            .write_all(&b)
            .map_err(|e| Error::local("write", "the file list spool", e))?;
        self.filelist_count += 1;
        Ok(())
    }
}

/// Streams a file's data (or delta) into 64 KiB volume entries exactly as
/// duplicity chunks it: one entry if it is under 64 KiB, else numbered
/// multivol chunks, the last one short (empty if the size is a multiple).
struct Chunker<'a, 'r, 'c, 'm> {
    em: &'a mut Emitter<'r, 'c, 'm>,
    index: &'a Index,
    meta: &'a Meta,
    difftype: DiffType,
    pending: Vec<u8>,
    emitted: u64,
    /// The first error from the volume writer (I/O errors returned to the
    /// delta code are only a carrier for it).
    failed: Option<Error>,
    bytes: u64,
}

impl Chunker<'_, '_, '_, '_> {
    fn emit_full_chunk(&mut self) -> Result<()> {
        self.emitted += 1;
        let chunk = std::mem::take(&mut self.pending);
        let r = self.em.entry(
            self.index,
            self.difftype,
            Some((self.emitted, false)),
            Some(self.meta),
            &chunk,
        );
        self.pending = chunk;
        self.pending.clear();
        r
    }

    fn finish(mut self) -> Result<u64> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.emitted == 0 && self.pending.len() < CHUNK {
            let data = std::mem::take(&mut self.pending);
            self.em
                .entry(self.index, self.difftype, None, Some(self.meta), &data)?;
        } else {
            let data = std::mem::take(&mut self.pending);
            self.em.entry(
                self.index,
                self.difftype,
                Some((self.emitted + 1, true)),
                Some(self.meta),
                &data,
            )?;
        }
        Ok(self.bytes)
    }
}

impl Write for Chunker<'_, '_, '_, '_> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("volume write failed"));
        }
        let n = buf.len();
        while !buf.is_empty() {
            if self.pending.len() == CHUNK
                && let Err(e) = self.emit_full_chunk()
            {
                self.failed = Some(e);
                return Err(io::Error::other("volume write failed"));
            }
            let take = (CHUNK - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A source file being read; remembers a read error so it is told apart
/// from a failure to write the backup.
struct SourceReader {
    file: File,
    error: Option<io::Error>,
    cancel: crate::progress::Cancel,
    /// Set when a read was refused because the backup is being stopped.
    cancelled: bool,
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            self.cancelled = true;
            return Err(io::Error::other("the backup was stopped"));
        }
        match self.file.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(shown)
            }
        }
    }
}

/// Opens a source file for reading without following a symlink swapped in
/// since the walk, without blocking on a FIFO swapped in, and without
/// touching its atime where the kernel allows.
fn open_source(path: &Path) -> io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOATIME)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)?,
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("it is no longer a regular file"));
    }
    Ok(f)
}

/// The state one backup run carries.
struct Run<'r, 'c, 'm> {
    em: Emitter<'r, 'c, 'm>,
    sigs: SigtarWriter<BufWriter<File>>,
    owners: OwnerMap,
    report: BackupReport,
    progress: std::sync::Arc<dyn crate::progress::Progress>,
    observer: Option<std::sync::Arc<std::sync::Mutex<dyn Observer>>>,
    cancel: crate::progress::Cancel,
}

impl Run<'_, '_, '_> {
    fn sig_io(e: io::Error) -> Error {
        Error::local("write", "the signature file", e)
    }

    /// Tells the observer what the signature tar just recorded.
    fn observe(&self, index: &Index, meta: Option<&Meta>) {
        if let Some(o) = &self.observer {
            o.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(index, meta);
        }
    }

    /// One path that exists now and is new or changed.
    fn changed_path(&mut self, new: &SourceEntry, old: Option<&SigEntry>) -> Result<()> {
        let meta = &new.meta;
        if !meta.is_regular() {
            self.em
                .entry(&new.index, DiffType::Snapshot, None, Some(meta), b"")?;
            self.report.delta_entries += 1;
            self.sigs.snapshot(&new.index, meta).map_err(Self::sig_io)?;
            self.observe(&new.index, Some(meta));
            return Ok(());
        }
        let old_sig = old
            .and_then(|o| o.signature.as_ref())
            .filter(|_| old.is_some_and(|o| o.meta.is_regular()));
        let file = match open_source(new.data_path()) {
            Ok(f) => f,
            Err(e) => {
                self.report.skipped.push(Skipped {
                    path: new.path.clone(),
                    why: e.to_string(),
                });
                return Ok(());
            }
        };
        let mut src = SourceReader {
            file,
            error: None,
            cancel: self.cancel.clone(),
            cancelled: false,
        };
        let mut sig = SignatureBuilder::new(delta::block_size(meta.size));
        let difftype = if old_sig.is_some() {
            DiffType::Diff
        } else {
            DiffType::Snapshot
        };
        let mut chunker = Chunker {
            em: &mut self.em,
            index: &new.index,
            meta,
            difftype,
            pending: Vec::with_capacity(CHUNK),
            emitted: 0,
            failed: None,
            bytes: 0,
        };
        let mut read_bytes = 0u64;
        let progress = self.progress.clone();
        let copied: io::Result<()> = match old_sig {
            Some(old_bytes) => match delta::parse_signature(old_bytes.clone()) {
                Ok(s) => Differ::new(&s)
                    .diff(&mut src, &mut chunker, |b| {
                        sig.update(b);
                        read_bytes += b.len() as u64;
                        progress.advance(b.len() as u64);
                    })
                    .map(|_| ()),
                Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            },
            None => {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match src.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            sig.update(&buf[..n]);
                            read_bytes += n as u64;
                            progress.advance(n as u64);
                            if let Err(e) = chunker.write_all(&buf[..n]) {
                                break Err(e);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        let volume_failure = chunker.failed.is_some();
        let source_failure = src.error.take().or_else(|| match &copied {
            Err(e) if !volume_failure => Some(io::Error::new(e.kind(), e.to_string())),
            _ => None,
        });
        // The entry is always closed (a cut-short file is stored as far as it
        // was read), so the volume stream stays well formed.
        chunker.finish()?;
        if src.cancelled {
            // The open volume is never committed: the set stays resumable
            // after the last volume stored.
            return Err(Error::Cancelled);
        }
        self.report.delta_entries += 1;
        if let Some(e) = source_failure {
            // No signature: the next backup sends the whole file again.
            self.report.skipped.push(Skipped {
                path: new.path.clone(),
                why: format!("read failed part-way ({e}); stored only what was read"),
            });
            return Ok(());
        }
        if let Ok(after) = src.file.metadata()
            && (after.len() != meta.size || after.mtime() != meta.mtime)
        {
            self.report
                .changed_while_read
                .push(crate::source::shown(&new.path));
        }
        self.sigs
            .signature(&new.index, meta, &sig.finish())
            .map_err(Self::sig_io)?;
        self.observe(&new.index, Some(meta));
        self.report.source_bytes += read_bytes;
        let change = if difftype == DiffType::Diff {
            self.report.changed_files += 1;
            "changed"
        } else {
            self.report.new_files += 1;
            "new"
        };
        self.em.changed(change, &new.index)
    }

    fn deleted_path(&mut self, old: &SigEntry) -> Result<()> {
        self.em
            .entry(&old.index, DiffType::Deleted, None, None, b"")?;
        self.sigs.deleted(&old.index).map_err(Self::sig_io)?;
        self.observe(&old.index, None);
        self.report.deleted_files += 1;
        self.report.delta_entries += 1;
        if old.meta.is_regular() {
            self.em.changed("deleted", &old.index)?;
        }
        Ok(())
    }
}

/// One side of the collation: the old signatures, peekable.
struct OldSigs<'a> {
    combined: Option<&'a mut Combined>,
    head: Option<SigEntry>,
}

impl OldSigs<'_> {
    fn peek(&mut self) -> Result<Option<&SigEntry>> {
        if self.head.is_none()
            && let Some(c) = self.combined.as_mut()
        {
            self.head = c
                .next_entry()
                .map_err(|e| Error::Usage(format!("cannot read the signatures: {e}")))?;
        }
        Ok(self.head.as_ref())
    }
}

fn decide_mode(
    repo: &Repo,
    coll: &Collection,
    opts: &BackupOptions,
    now: Seconds,
) -> Result<(SetKind, Option<String>)> {
    let has_chain = coll.matched.is_some();
    match opts.mode {
        Mode::Full => Ok((SetKind::Full, None)),
        Mode::Incremental | Mode::Auto if !has_chain => {
            if opts.mode == Mode::Incremental && !coll.chains.is_empty() {
                return Err(Error::IncrementalWithoutSignatures(
                    "the latest backup chain has no matching signatures".into(),
                ));
            }
            Ok((
                SetKind::Full,
                Some("No signatures found, switching to full backup.".into()),
            ))
        }
        _ => {
            if let (Some(limit), Some(last_full)) =
                (opts.full_if_older_than, coll.nth_last_full_time(1))
                && last_full < limit
            {
                return Ok((
                    SetKind::Full,
                    Some("Last full backup is too old, forcing full backup".into()),
                ));
            }
            let _ = (repo, now);
            Ok((SetKind::Inc, None))
        }
    }
}

/// Refuses to extend a chain made from another host or directory, as
/// duplicity's `check_dirinfo` does.
fn check_source_matches(last: &Manifest, opts: &BackupOptions) -> Result<()> {
    if opts.allow_source_mismatch {
        return Ok(());
    }
    if let Some(h) = &last.hostname
        && !h.is_empty()
        && *h != opts.hostname
    {
        return Err(Error::SourceMismatch {
            host: true,
            detail: format!(
                "current hostname: {}, previous hostname: {h}",
                opts.hostname
            ),
        });
    }
    if let Some(d) = &last.localdir
        && !d.is_empty()
        && *d != canonical_source(&opts.source)
    {
        return Err(Error::SourceMismatch {
            host: false,
            detail: format!(
                "current directory: {}, previous directory: {}",
                String::from_utf8_lossy(&canonical_source(&opts.source)),
                String::from_utf8_lossy(d)
            ),
        });
    }
    Ok(())
}

/// Encodes a local file and stores it at the target under `name`.
fn upload_file(repo: &Repo, local: &Path, name: &str, format: codec::Format<'_>) -> Result<u64> {
    let dest = repo.create(name)?;
    let mut enc = Encoder::new(dest, format).map_err(|e| encode_err(name, e))?;
    let mut f = File::open(local).map_err(|e| Error::local("read", local, e))?;
    io::copy(&mut f, &mut enc).map_err(|e| Error::local("upload", name.to_string(), e))?;
    Ok(enc.finish().map_err(|e| encode_err(name, e))?.size)
}

/// Removes what an interrupted run left, so this run starts cleanly: the
/// local `.part` files of an unfinished set and, when the target never got
/// that set's manifest, the set's volumes (garbage: no manifest, no set).
/// A set whose manifest did reach the target is complete; only its local
/// `.part` files go (the cache sync fetched the real ones).
pub fn clear_partial_sets(repo: &Repo) -> Result<Vec<String>> {
    clear_partial_sets_except(repo, None)
}

/// As [`clear_partial_sets`], sparing the set of the manifest `keep`.
fn clear_partial_sets_except(repo: &Repo, keep: Option<&str>) -> Result<Vec<String>> {
    let spared = keep.and_then(|k| repo.naming.parse(k));
    let local = repo.local_names();
    let parts: Vec<(String, crate::archive::names::ParsedName)> = local
        .iter()
        .filter_map(|n| {
            repo.naming
                .parse(n)
                .filter(|p| p.partial)
                .filter(|p| {
                    !spared.as_ref().is_some_and(|s| {
                        s.time == p.time && s.start_time == p.start_time && s.end_time == p.end_time
                    })
                })
                .map(|p| (n.clone(), p))
        })
        .collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let remote = repo.backend.list()?;
    let dir = repo.cache_dir()?.to_path_buf();
    let mut removed = Vec::new();
    for (name, p) in &parts {
        if p.manifest {
            let same_set = |q: &crate::archive::names::ParsedName| {
                q.time == p.time
                    && q.start_time == p.start_time
                    && q.end_time == p.end_time
                    && matches!(
                        q.kind,
                        crate::archive::names::Kind::Full | crate::archive::names::Kind::Inc
                    )
            };
            let complete = remote.iter().any(|r| {
                repo.naming
                    .parse(r)
                    .is_some_and(|q| same_set(&q) && q.manifest && !q.partial)
            });
            if !complete {
                let volumes: Vec<String> = remote
                    .iter()
                    .filter(|r| {
                        repo.naming
                            .parse(r)
                            .is_some_and(|q| same_set(&q) && q.volume.is_some())
                    })
                    .cloned()
                    .collect();
                repo.backend.delete(&volumes)?;
                removed.extend(volumes);
            }
        }
        // The resume record before its manifest (see `maintenance`).
        if p.manifest && fs::remove_file(plain_hashes_path(&dir, name)).is_ok() {
            crate::fault::step();
        }
        let path = dir.join(name);
        fs::remove_file(&path).map_err(|e| Error::local("remove", &path, e))?;
        crate::fault::step();
        removed.push(name.clone());
    }
    Ok(removed)
}

/// How to continue a set an interrupted run left (`dup_main.Restart`).
struct Restart {
    prev: Option<Seconds>,
    time: Seconds,
    /// The manifest so far: header and the volumes that are stored.
    manifest: Manifest,
    /// Those volumes, for checking the regenerated entries.
    stored: Vec<StoredVolume>,
}

/// The partial set's volumes after the `kept` ones the resume continues
/// from: stored by uploads that ran ahead (`--concurrency` above 1) or
/// ended just before the interruption, in no manifest. The resumed run
/// cuts its volumes anew, so a leftover could outlast its last one; they
/// are removed first.
fn drop_unlisted_volumes(
    repo: &Repo,
    volumes: &std::collections::BTreeMap<u64, String>,
    kept: u64,
) -> Result<Vec<String>> {
    let stale: Vec<String> = volumes.range(kept + 1..).map(|(_, n)| n.clone()).collect();
    if !stale.is_empty() {
        repo.backend.delete(&stale)?;
    }
    Ok(stale)
}

/// Finds a partial last set to resume. Sets that cannot be resumed (no
/// volume stored yet, other encoding, other source) are removed instead, so
/// the run starts cleanly; the names removed go to `cleared`.
fn plan_restart(
    repo: &Repo,
    opts: &BackupOptions,
    cleared: &mut Vec<String>,
) -> Result<Option<Restart>> {
    use crate::archive::names::Kind;
    let local = repo.local_names();
    let mut parts: Vec<(String, crate::archive::names::ParsedName)> = local
        .iter()
        .filter_map(|n| {
            repo.naming
                .parse(n)
                .filter(|p| p.partial && p.manifest)
                .map(|p| (n.clone(), p))
        })
        .collect();
    parts.sort_by_key(|(_, p)| p.set_time());
    let Some((name, p)) = parts.pop() else {
        return Ok(None);
    };
    // Older partial sets (a state duplicity never leaves) are cleared.
    if !parts.is_empty() {
        cleared.extend(clear_partial_sets_except(repo, Some(&name))?);
    }
    let remote = repo.backend.list()?;
    let same_set = |q: &crate::archive::names::ParsedName| {
        q.time == p.time
            && q.start_time == p.start_time
            && q.end_time == p.end_time
            && matches!(q.kind, Kind::Full | Kind::Inc)
    };
    let complete = remote.iter().any(|r| {
        repo.naming
            .parse(r)
            .is_some_and(|q| same_set(&q) && q.manifest && !q.partial)
    });
    let dir = repo.cache_dir()?.to_path_buf();
    let text = fs::read(dir.join(&name)).unwrap_or_default();
    let parsed = Manifest::parse(&text).ok();
    let volumes: std::collections::BTreeMap<u64, String> = remote
        .iter()
        .filter_map(|r| {
            repo.naming
                .parse(r)
                .filter(|q| same_set(q) && q.volume.is_some())
                .map(|q| (q.volume.unwrap_or(0), r.clone()))
        })
        .collect();
    let mut resumable = !complete && parsed.is_some();
    let mut manifest = parsed.unwrap_or_default();
    // Keep volumes 1..k that the manifest records, the target holds, and
    // whose plaintext hash is known: from the resume record, or, for a set
    // another program (duplicity) left without one, read back from the
    // target. Without it a resume could not be checked.
    let mut hashes = read_plain_hashes(&plain_hashes_path(&dir, &name));
    if hashes.is_empty() && !complete {
        hashes = hash_stored_volumes(repo, &manifest, &volumes);
    }
    let mut k = 0;
    while manifest.volumes.contains_key(&(k + 1))
        && volumes.contains_key(&(k + 1))
        && hashes.contains_key(&(k + 1))
    {
        k += 1;
    }
    manifest.volumes.retain(|n, _| *n <= k);
    manifest.files_changed.clear();
    if k == 0 {
        resumable = false;
    }
    if resumable {
        let vol1 = &volumes[&1];
        let enc = repo.naming.parse(vol1).map(|q| q.encoding());
        let same_source = manifest.hostname.as_deref() == Some(opts.hostname.as_str())
            && manifest.localdir.as_deref() == Some(canonical_source(&opts.source).as_slice());
        if enc != Some(opts.storage.encoding()) || !same_source {
            resumable = false;
        } else if enc == Some(Encoding::Gpg)
            && !matches!(&opts.storage, Storage::Encrypted(c) if !c.recipients.is_empty() || !c.hidden_recipients.is_empty())
        {
            // Same passphrase as the volumes already stored? Decrypt a little
            // of volume 1 to know, as duplicity does.
            let vol = repo
                .fetch_volume(vol1, None)
                .map_err(|e| Error::Usage(format!("{vol1}: {e}")))?;
            let f = vol.open().map_err(|e| Error::local("read", &vol.path, e))?;
            let mut r =
                codec::decode(f, Encoding::Gpg, &repo.keys).map_err(|source| Error::Crypto {
                    file: vol1.clone(),
                    source,
                })?;
            let mut probe = [0u8; 512];
            r.read_exact(&mut probe).map_err(|source| Error::Read {
                file: vol1.clone(),
                source,
            })?;
        }
    }
    if !resumable {
        cleared.extend(clear_partial_sets_except(repo, None)?);
        return Ok(None);
    }
    let dropped = drop_unlisted_volumes(repo, &volumes, k)?;
    if !dropped.is_empty() {
        opts.progress.note(&format!(
            "{} volume(s) stored after volume {k} are not in the partial manifest; they are \
             removed and made again: {}",
            dropped.len(),
            dropped.join(", ")
        ));
    }
    // The signatures are rewritten from the start.
    let _ = fs::remove_file(dir.join(repo.naming.signatures(
        p.start_time,
        p.set_time(),
        Encoding::Plain,
        true,
    )));
    let stored = manifest
        .volumes
        .values()
        .map(|v| StoredVolume {
            number: v.number,
            end: (v.end.clone(), v.end_block),
            plain_sha1: hashes[&v.number].clone(),
        })
        .collect();
    Ok(Some(Restart {
        prev: p.start_time,
        time: p.set_time(),
        manifest,
        stored,
    }))
}

/// Writes a backup set.
pub fn backup(repo: &Repo, opts: &BackupOptions) -> Result<BackupReport> {
    if opts.concurrency > uploads::MAX_CONCURRENCY {
        return Err(Error::Usage(format!(
            "--concurrency {}: at most {} uploads at once; each one stages a whole volume \
             in the temporary directory",
            opts.concurrency,
            uploads::MAX_CONCURRENCY
        )));
    }
    // A directory or, as in duplicity, a single file (the set's root entry).
    fs::metadata(&opts.source)
        .map_err(|e| Error::local("read the backup source", &opts.source, e))?;
    let _lock = repo.lock()?;
    repo.backend.remove_stale_uploads()?;
    repo.sync_cache()?;
    match backup_set(repo, opts, true) {
        Err(Error::SourceChanged { volume }) => {
            let cleared = clear_partial_sets_except(repo, None)?;
            let note = format!(
                "The interrupted backup could not be resumed: the source changed after \
                 volume {volume} was stored. Starting the set again."
            );
            opts.progress.note(&note);
            let mut report = backup_set(repo, opts, false)?;
            report.cleared.splice(0..0, cleared);
            report.note = Some(match report.note.take() {
                Some(n) => format!("{note}\n{n}"),
                None => note,
            });
            Ok(report)
        }
        other => other,
    }
}

/// Writes one set; with `resume`, continues an interrupted one if there is
/// one to continue.
fn backup_set(repo: &Repo, opts: &BackupOptions, resume: bool) -> Result<BackupReport> {
    let mut cleared = Vec::new();
    let restart = if resume {
        plan_restart(repo, opts, &mut cleared)?
    } else {
        None
    };
    let coll = repo.collection()?;
    let now = opts.time.unwrap_or_else(time::now);
    let (kind, note) = match &restart {
        Some(r) => (
            if r.prev.is_some() {
                SetKind::Inc
            } else {
                SetKind::Full
            },
            Some(format!(
                "Last {} backup left a partial set, restarting after volume {}.",
                if r.prev.is_some() {
                    "incremental"
                } else {
                    "full"
                },
                r.manifest.volumes.len()
            )),
        ),
        None => decide_mode(repo, &coll, opts, now)?,
    };
    if let Some(n) = &note {
        opts.progress.note(n);
    }
    if opts.progress.wants_total() {
        // A metadata-only walk, beside the backup, to give the bar its end.
        let (root, sel, p) = (
            opts.source.clone(),
            opts.selection.clone(),
            opts.progress.clone(),
        );
        std::thread::spawn(move || {
            let total: u64 = Walk::new(&root, &sel).map(|e| e.meta.size).sum();
            p.total(total);
        });
    }
    let mut report = BackupReport {
        kind: Some(kind),
        note,
        cleared,
        ..Default::default()
    };

    // The chain to extend, and the time the new set starts from.
    let (prev, sig_chain) = if let Some(r) = &restart {
        let sc = match r.prev {
            Some(p) => Some(
                coll.sig_chains
                    .iter()
                    .filter_map(|c| c.truncated_to(p))
                    .max_by_key(|c| c.local)
                    .ok_or_else(|| {
                        Error::IncrementalWithoutSignatures(
                            "the signatures the interrupted incremental extends are gone".into(),
                        )
                    })?,
            ),
            None => None,
        };
        (r.prev, sc)
    } else if kind == SetKind::Inc {
        let chain = coll.matched_chain().expect("matched");
        let last = repo.manifest(chain.last())?;
        check_source_matches(&last, opts)?;
        let sc = coll.matched_sig_chain().expect("matched").clone();
        (Some(sc.end_time()), Some(sc))
    } else {
        (None, None)
    };
    let mut t = restart.as_ref().map_or(now, |r| r.time);
    if let (Some(p), None) = (prev, &restart) {
        // Names need a later time than the set extended; duplicity sleeps.
        while t <= p && opts.time.is_none() {
            std::thread::sleep(std::time::Duration::from_millis(200));
            t = time::now();
        }
        if t <= p {
            return Err(Error::Usage(format!(
                "the backup time {} is not after the previous backup ({})",
                time::to_string(t),
                time::to_string(p)
            )));
        }
    }
    report.time = t;
    report.previous = prev;

    let cache = repo.cache_dir()?.to_path_buf();
    let encoding = opts.storage.encoding();
    let man_part = cache.join(repo.naming.manifest(prev, t, Encoding::Plain, true));
    let sig_part = cache.join(repo.naming.signatures(prev, t, Encoding::Plain, true));
    let hashes_path = plain_hashes_path(
        &cache,
        &repo.naming.manifest(prev, t, Encoding::Plain, true),
    );
    let mut hashes_text = String::new();
    if let Some(r) = &restart {
        for v in &r.stored {
            hashes_text.push_str(&format!("{} {}\n", v.number, hex::encode(&v.plain_sha1)));
        }
    }
    crate::repo::write_atomic(&hashes_path, hashes_text.as_bytes())?;
    let mut manifest = ManifestPart {
        file: File::create(&man_part).map_err(|e| Error::local("create", &man_part, e))?,
        path: man_part.clone(),
        hashes: OpenOptions::new()
            .append(true)
            .open(&hashes_path)
            .map_err(|e| Error::local("open", &hashes_path, e))?,
        hashes_path: hashes_path.clone(),
        progress: opts.progress.clone(),
    };
    let header = Manifest {
        hostname: Some(opts.hostname.clone()),
        localdir: Some(canonical_source(&opts.source)),
        ..Default::default()
    }
    .header_bytes();
    let mut start = header;
    if let Some(r) = &restart {
        for vi in r.manifest.volumes.values() {
            start.extend(vi.to_bytes());
            start.push(b'\n');
        }
    }
    manifest
        .file
        .write_all(&start)
        .and_then(|()| manifest.file.sync_data())
        .map_err(|e| Error::local("write", &man_part, e))?;
    let sig_file = File::create(&sig_part).map_err(|e| Error::local("create", &sig_part, e))?;
    let spool_file = tempfile::tempfile_in(&repo.tempdir)
        .map_err(|e| Error::local("create a spool file in", &repo.tempdir, e))?;

    // One key derivation for the whole run; every file gets its own
    // session key.
    let keys = match &opts.storage {
        Storage::Encrypted(cfg) => {
            Some(MessageKeys::new(cfg).map_err(|source| Error::Encrypt {
                file: "the new backup set".into(),
                source,
            })?)
        }
        _ => None,
    };
    let format = codec::Format {
        encoding,
        keys: keys.as_ref(),
        level: opts.storage.level(),
        packing: opts.storage.packing(),
    };
    let kept = restart
        .as_ref()
        .map_or(0, |r| r.manifest.volumes.len() as u64);
    let mut vw = VolumeWriter::new(
        repo,
        (prev, t),
        format,
        opts.volsize,
        kept + 1,
        opts.concurrency,
    );
    if let Some(r) = restart {
        vw.resume_after(r.stored);
    }
    let (volumes, stored, filelist_file, filelist_count, skipped_walk, sockets) =
        std::thread::scope(|scope| -> Result<_> {
            let mut combined = sig_chain
                .as_ref()
                .map(|sc| Combined::start(scope, repo.signature_sources(sc, None)));
            let mut old = OldSigs {
                combined: combined.as_mut(),
                head: None,
            };
            let mut run = Run {
                em: Emitter {
                    vw,
                    log: &mut manifest,
                    header: Vec::with_capacity(2048),
                    filelist: BufWriter::new(spool_file),
                    filelist_count: 0,
                },
                sigs: SigtarWriter::new(BufWriter::with_capacity(1 << 20, sig_file)),
                owners: OwnerMap::new(false),
                report: BackupReport::default(),
                progress: opts.progress.clone(),
                observer: opts.observer.clone(),
                cancel: opts.cancel.clone(),
            };
            if let Some(o) = &opts.observer {
                o.lock().unwrap_or_else(|e| e.into_inner()).start();
            }
            let mut walker = Walk::new(&opts.source, &opts.selection);
            let mut walk = walker.by_ref().peekable();
            loop {
                if run.cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let new_ix = walk.peek().map(|e| e.index.clone());
                let old_ix = old.peek()?.map(|e| e.index.clone());
                match (new_ix, old_ix) {
                    (None, None) => break,
                    (Some(n), o) if o.as_ref().is_none_or(|o| n < *o) => {
                        let e = walk.next().expect("peeked");
                        run.report.source_files += 1;
                        run.changed_path(&e, None)?;
                    }
                    (n, Some(o)) if n.as_ref().is_none_or(|n| o < *n) => {
                        let s = old.head.take().expect("peeked");
                        if !s.is_deleted() && !s.index.is_root() {
                            run.deleted_path(&s)?;
                        }
                    }
                    _ => {
                        let e = walk.next().expect("peeked");
                        let s = old.head.take().expect("peeked");
                        run.report.source_files += 1;
                        let same =
                            !s.is_deleted() && run.owners.localize(&s.meta).same_state(&e.meta);
                        if same {
                            run.report.source_bytes += e.meta.size;
                            run.progress.advance(e.meta.size);
                        } else {
                            run.changed_path(&e, Some(&s).filter(|s| !s.is_deleted()))?;
                        }
                    }
                }
            }
            drop(walk);
            // The walk's own skips: unreadable directories, vanished paths.
            let (skipped_walk, sockets) = (std::mem::take(&mut walker.skipped), walker.sockets);
            let Run {
                em,
                sigs,
                report: r,
                ..
            } = run;
            report.source_files = r.source_files;
            report.source_bytes = r.source_bytes;
            report.new_files = r.new_files;
            report.changed_files = r.changed_files;
            report.delta_entries = r.delta_entries;
            report.deleted_files = r.deleted_files;
            report.skipped = r.skipped;
            report.changed_while_read = r.changed_while_read;
            sigs.finish()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .and_then(|f| f.sync_all())
                .map_err(Run::sig_io)?;
            let Emitter {
                vw,
                log,
                filelist,
                filelist_count,
                ..
            } = em;
            let (volumes, stored) = vw.finish(log)?;
            let filelist_file = filelist
                .into_inner()
                .map_err(|e| Error::local("write", "the file list spool", e.into_error()))?;
            Ok((
                volumes,
                stored,
                filelist_file,
                filelist_count,
                skipped_walk,
                sockets,
            ))
        })?;
    report.skipped.extend(skipped_walk);
    report.sockets = sockets;
    report.volumes = volumes;
    report.stored_bytes = stored;

    // Filelist last, then the manifest is complete.
    {
        let mut fl = filelist_file;
        use std::io::Seek;
        fl.rewind()
            .map_err(|e| Error::local("read", "the file list spool", e))?;
        let mut text = Vec::new();
        fl.read_to_end(&mut text)
            .map_err(|e| Error::local("read", "the file list spool", e))?;
        let mut files = Vec::new();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(z) = line.iter().position(|&b| b == 0) {
                files.push((
                    String::from_utf8_lossy(&line[..z]).into_owned(),
                    line[z + 1..].to_vec(),
                ));
            }
        }
        debug_assert_eq!(files.len() as u64, filelist_count);
        let m = Manifest {
            files_changed: files,
            ..Default::default()
        };
        manifest
            .file
            .write_all(&m.filelist_bytes())
            .and_then(|()| manifest.file.sync_all())
            .map_err(|e| Error::local("write", &man_part, e))?;
    }

    // Signatures, then the manifest: the manifest makes the set complete.
    let sig_remote = repo.naming.signatures(prev, t, encoding, false);
    report.stored_bytes += upload_file(repo, &sig_part, &sig_remote, format)?;
    let man_remote = repo.naming.manifest(prev, t, encoding, false);
    // Manifests are plain or encrypted, never gzipped.
    let man_format = codec::Format {
        encoding: if encoding == Encoding::Gpg {
            Encoding::Gpg
        } else {
            Encoding::Plain
        },
        ..format
    };
    report.stored_bytes += upload_file(repo, &man_part, &man_remote, man_format)?;

    // The local cache: signatures gzipped, the manifest plain.
    let sig_final = cache.join(repo.naming.signatures(prev, t, Encoding::Gzip, false));
    {
        let err = |e| Error::local("compress", &sig_final, e);
        let mut src = File::open(&sig_part).map_err(|e| Error::local("read", &sig_part, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(crate::repo::TEMP_PREFIX)
            .tempfile_in(&cache)
            .map_err(err)?;
        let mut gz =
            flate2::write::GzEncoder::new(BufWriter::new(tmp), flate2::Compression::new(6));
        io::copy(&mut src, &mut gz).map_err(err)?;
        let tmp = gz
            .finish()
            .map_err(err)?
            .into_inner()
            .map_err(|e| err(e.into_error()))?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&sig_final).map_err(|e| err(e.error))?;
        crate::fault::step();
        fs::remove_file(&sig_part).map_err(|e| Error::local("remove", &sig_part, e))?;
        crate::fault::step();
    }
    let man_final = cache.join(repo.naming.manifest(prev, t, Encoding::Plain, false));
    fs::rename(&man_part, &man_final).map_err(|e| Error::local("rename", &man_part, e))?;
    crate::fault::step();
    let _ = fs::remove_file(&hashes_path);
    Ok(report)
}
