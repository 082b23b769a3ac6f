//! A target as the engines see it: the backend holding the archive, the local
//! archive directory (duplicity's signature and manifest cache), the naming
//! prefixes and the keys. It answers "what is there" and hands out verified,
//! decoded files.

use crate::archive::codec;
use crate::archive::collection::{BackupSet, Collection, SignatureChain};
use crate::archive::manifest::{Manifest, VolumeInfo};
use crate::archive::names::{Encoding, Kind, Naming};
use crate::archive::sigtar::OpenFn;
use crate::backend::{self, Backend, BackendError};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use sha1::{Digest, Sha1};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An upload as an encoder's destination: the target's error travels inside
/// the I/O error, for [`crate::backup`] to take out again.
struct ToTarget(Box<dyn crate::backend::Upload>);

impl io::Write for ToTarget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl crate::archive::codec::Destination for ToTarget {
    fn commit(self: Box<Self>) -> io::Result<()> {
        self.0.commit().map_err(io::Error::other)
    }
}

pub struct Repo {
    pub backend: Box<dyn Backend>,
    pub naming: Naming,
    /// The local archive directory for this target (`--archive-dir`/`--name`).
    pub archive_dir: Option<PathBuf>,
    pub keys: Keyring,
    /// Where downloads and work files go (`--tempdir`).
    pub tempdir: PathBuf,
}

/// duplicity's default backup name: the MD5 of the URL exactly as typed.
pub fn default_backup_name(url: &str) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(url.as_bytes()))
}

/// duplicity's default archive directory: `$XDG_CACHE_HOME/duplicity`, or
/// `~/.cache/duplicity`.
pub fn default_archive_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("duplicity");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache").join("duplicity")
}

/// A volume ready to decode: its bytes are on local disk and their SHA1
/// matched the manifest.
pub struct VerifiedVolume {
    pub name: String,
    pub path: PathBuf,
    /// Set when `path` is a download that must be removed after use.
    temp: Option<tempfile::TempPath>,
}

impl VerifiedVolume {
    pub fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    pub fn is_download(&self) -> bool {
        self.temp.is_some()
    }
}

/// Why a volume cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeProblem {
    Missing,
    HashMismatch { expected: String, actual: String },
    Unreadable(String),
}

impl std::fmt::Display for VolumeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeProblem::Missing => f.write_str("it is missing from the target"),
            VolumeProblem::HashMismatch { expected, actual } => write!(
                f,
                "its SHA1 is {actual}, the manifest says {expected}: it is corrupt or truncated"
            ),
            VolumeProblem::Unreadable(e) => write!(f, "it cannot be read: {e}"),
        }
    }
}

/// The prefix of the archive directory's temporary files.
pub(crate) const TEMP_PREFIX: &str = ".cairn-tmp-";

/// The prefix of the resume record kept beside a partial manifest.
pub const PLAIN_HASHES_PREFIX: &str = "cairn-plain-sha1.";

/// The archive directory's lock (see [`Repo::lock`]).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Locks `path`, retrying when the file it opened was removed by the
    /// previous holder in the meantime (the lock would then guard nothing).
    fn take(path: &Path, dir: &Path) -> Result<Lock> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| Error::local("open", path, e))?;
            if !try_record_lock(&f) {
                return Err(Error::Usage(format!(
                    "another duplicity or Cairn instance is already running with this archive \
                     directory ({}); wait for it to finish",
                    dir.display()
                )));
            }
            let held = f.metadata().map_err(|e| Error::local("stat", path, e))?;
            let now = fs::metadata(path).ok();
            if now.is_some_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
                return Ok(Lock {
                    _file: f,
                    path: path.to_path_buf(),
                });
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held, so no other process can lock this inode
        // and believe it holds the lock the next run creates.
        let _ = fs::remove_file(&self.path);
    }
}

/// A non-blocking `fcntl(F_SETLK)` write lock on the whole file.
fn try_record_lock(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain fcntl(F_SETLK) on a file descriptor we own.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) == 0 }
}

/// Writes a file so that its name never holds partial contents: a temporary
/// file in the same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |e| Error::local("write", path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(err)?;
    std::io::Write::write_all(&mut tmp, data).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    crate::fault::step();
    Ok(())
}

pub fn sha1_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl Repo {
    /// Opens a target with duplicity's default backend options.
    pub fn open(url: &str) -> Result<Repo> {
        Self::open_with(url, &backend::BackendOptions::default())
    }

    /// Opens a target with the given backend options (retries, timeouts,
    /// rsync/ssh options, Tor, S3 and SFTP settings).
    pub fn open_with(url: &str, opts: &backend::BackendOptions) -> Result<Repo> {
        Ok(Repo {
            backend: backend::open(url, opts)?,
            naming: Naming::default(),
            archive_dir: None,
            keys: Keyring::default(),
            tempdir: std::env::temp_dir(),
        })
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Names in the local archive directory (empty if there is none).
    pub fn local_names(&self) -> Vec<String> {
        let Some(dir) = &self.archive_dir else {
            return Vec::new();
        };
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }

    /// Lists the target and the cache and groups what is there.
    pub fn collection(&self) -> Result<Collection> {
        let listed = self.backend.list_sized()?;
        let remote: Vec<String> = listed.iter().map(|(n, _)| n.clone()).collect();
        let mut c = Collection::build(&remote, &self.local_names(), &self.naming);
        c.remote_sizes = listed
            .into_iter()
            .filter_map(|(n, s)| Some((n, s?)))
            .collect();
        Ok(c)
    }

    /// A cached plain manifest for the set, if the archive directory has one.
    fn local_manifest_path(&self, set: &BackupSet) -> Option<PathBuf> {
        let dir = self.archive_dir.as_ref()?;
        for n in self.local_names() {
            let Some(p) = self.naming.parse(&n) else {
                continue;
            };
            if p.manifest
                && (set.partial || !p.partial)
                && p.time == set.time
                && p.start_time == set.start_time
                && p.end_time == set.end_time
                && (p.kind == crate::archive::names::Kind::Full)
                    == (set.kind == crate::archive::collection::SetKind::Full)
            {
                return Some(dir.join(n));
            }
        }
        None
    }

    /// Reads a whole stored file and removes its encoding.
    pub fn read_decoded(&self, name: &str) -> Result<Vec<u8>> {
        let enc = self
            .naming
            .parse(name)
            .map_or(Encoding::Plain, |p| p.encoding());
        // Metadata files are small: read them whole, then decode in memory.
        let mut bytes = Vec::new();
        self.backend
            .open(name)?
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                file: name.to_string(),
                source,
            })?;
        let mut r =
            codec::decode(std::io::Cursor::new(bytes), enc, &self.keys).map_err(|source| {
                Error::Crypto {
                    file: name.to_string(),
                    source,
                }
            })?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|source| Error::Read {
            file: name.to_string(),
            source,
        })?;
        Ok(out)
    }

    /// Opens one file of a signature chain, decoded: from the archive
    /// directory for a local chain, from the target otherwise.
    pub fn open_signature_file(
        &self,
        local: bool,
        name: &str,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let enc = self
            .naming
            .parse(name)
            .map_or(Encoding::Plain, |p| p.encoding());
        let raw: File = if local {
            let dir = self
                .archive_dir
                .as_ref()
                .ok_or_else(|| Error::Usage("no archive directory".into()))?;
            let p = dir.join(name);
            File::open(&p).map_err(|e| Error::local("open", &p, e))?
        } else if let Some(p) = self.backend.local_path(name) {
            File::open(&p).map_err(|e| Error::local("open", &p, e))?
        } else {
            // A remote file: download it first (signature files can be large).
            let tmp = tempfile::tempfile_in(&self.tempdir)
                .map_err(|e| Error::local("create a temporary file in", &self.tempdir, e))?;
            let mut w = std::io::BufWriter::new(tmp);
            std::io::copy(&mut self.backend.open(name)?, &mut w).map_err(|source| Error::Read {
                file: name.to_string(),
                source,
            })?;
            let mut f = w
                .into_inner()
                .map_err(|e| Error::local("write", &self.tempdir, e.into_error()))?;
            std::io::Seek::rewind(&mut f).map_err(|e| Error::local("read", &self.tempdir, e))?;
            f
        };
        codec::decode(raw, enc, &self.keys).map_err(|source| Error::Crypto {
            file: name.to_string(),
            source,
        })
    }

    /// A new file at the target, for an encoder to write and commit.
    pub fn create(&self, name: &str) -> Result<Box<dyn crate::archive::codec::Destination>> {
        Ok(Box::new(ToTarget(self.backend.create(name)?)))
    }

    /// Takes the archive directory's lock, as duplicity does (a POSIX record
    /// lock on `lockfile`, so a duplicity run and a Cairn run on the same
    /// cache exclude each other). Held until the guard is dropped, which
    /// removes the file, as duplicity removes its own.
    pub fn lock(&self) -> Result<Lock> {
        let dir = self.cache_dir()?;
        Lock::take(&dir.join("lockfile"), dir)
    }

    /// The archive directory, created if needed.
    pub fn cache_dir(&self) -> Result<&Path> {
        let dir = self
            .archive_dir
            .as_deref()
            .ok_or_else(|| Error::Usage("no archive directory".into()))?;
        fs::create_dir_all(dir).map_err(|e| Error::local("create archive directory", dir, e))?;
        Ok(dir)
    }

    /// The plain name a manifest or signature file has in the archive
    /// directory: manifests plain, signatures gzipped (`.sigtar.gz`).
    fn cache_name(&self, remote: &str) -> Option<String> {
        let p = self.naming.parse(remote)?;
        if p.partial {
            return None;
        }
        let prev = p.start_time;
        let t = p.set_time();
        match p.kind {
            Kind::Full | Kind::Inc if p.manifest => {
                Some(self.naming.manifest(prev, t, Encoding::Plain, false))
            }
            Kind::FullSig | Kind::NewSig => {
                Some(self.naming.signatures(prev, t, Encoding::Gzip, false))
            }
            _ => None,
        }
    }

    /// Brings the archive directory in line with the target, as duplicity's
    /// `sync_archive` does: fetches the manifests and signatures it lacks
    /// (decrypted; signatures re-gzipped) and removes metadata the target no
    /// longer has. Partial files of an interrupted run are left alone.
    /// Returns the names fetched.
    pub fn sync_cache(&self) -> Result<Vec<String>> {
        let dir = self.cache_dir()?.to_path_buf();
        let remote = self.backend.list()?;
        let local = self.local_names();
        let mut wanted = std::collections::BTreeSet::new();
        let mut fetched = Vec::new();
        for r in &remote {
            let Some(cached) = self.cache_name(r) else {
                continue;
            };
            wanted.insert(cached.clone());
            if local.contains(&cached) {
                continue;
            }
            let data = self.read_decoded(r)?;
            let bytes = if cached.ends_with(".gz") {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                std::io::Write::write_all(&mut gz, &data)
                    .and_then(|()| gz.finish())
                    .map_err(|e| Error::local("compress", dir.join(&cached), e))?
            } else {
                data
            };
            write_atomic(&dir.join(&cached), &bytes)?;
            fetched.push(r.clone());
        }
        self.tidy_cache(&remote)?;
        Ok(fetched)
    }

    /// Finishes the archive directory's side of whatever an interrupted run
    /// left, from the target's listing alone (no download, no passphrase):
    /// removes cached metadata of sets the target no longer has, the `.part`
    /// files of sets whose manifest did reach the target, and resume records
    /// whose partial manifest is gone. The `.part` files of sets still
    /// partial at the target are left for the next backup to resume.
    pub fn tidy_cache(&self, remote: &[String]) -> Result<Vec<PathBuf>> {
        let Some(dir) = self.archive_dir.as_deref() else {
            return Ok(Vec::new());
        };
        let local = self.local_names();
        let wanted: std::collections::BTreeSet<String> =
            remote.iter().filter_map(|r| self.cache_name(r)).collect();
        let complete: Vec<_> = remote
            .iter()
            .filter_map(|r| self.naming.parse(r))
            .filter(|p| p.manifest && !p.partial)
            .map(|p| (p.time, p.start_time, p.end_time))
            .collect();
        let partial_sets: Vec<_> = local
            .iter()
            .filter_map(|l| self.naming.parse(l))
            .filter(|p| p.manifest && p.partial)
            .map(|p| (p.time, p.start_time, p.end_time))
            .collect();
        let mut stale = Vec::new();
        for l in &local {
            let Some(p) = self.naming.parse(l) else {
                continue;
            };
            let set = (p.time, p.start_time, p.end_time);
            let metadata = p.manifest || matches!(p.kind, Kind::FullSig | Kind::NewSig);
            let done = p.partial && complete.contains(&set);
            // Partial signatures whose partial manifest is gone belong to no set.
            let orphan = p.partial && !p.manifest && !partial_sets.contains(&set);
            if metadata && ((!p.partial && !wanted.contains(l)) || done || orphan) {
                stale.push(l);
            }
        }
        // A resume record goes with its partial manifest; a temporary file
        // is what a run killed while writing one left (the lock is ours).
        for l in &local {
            if l.starts_with(TEMP_PREFIX) {
                stale.push(l);
            }
            if let Some(part) = l.strip_prefix(PLAIN_HASHES_PREFIX)
                && (!local.iter().any(|n| n == part) || stale.iter().any(|n| *n == part))
            {
                stale.push(l);
            }
        }
        // Resume records, then signatures, then manifests: a manifest is what
        // makes a set, so it goes last.
        stale.sort_by_key(|l| (!l.starts_with(PLAIN_HASHES_PREFIX), l.contains(".manifest")));
        let mut removed = Vec::new();
        for l in stale {
            let path = dir.join(l);
            match fs::remove_file(&path) {
                Ok(()) => {
                    crate::fault::step();
                    removed.push(path)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::local("remove stale cache file", &path, e)),
            }
        }
        Ok(removed)
    }

    /// Openers for the files of a signature chain up to `t` (all for `None`),
    /// for [`crate::archive::sigtar::Combined`].
    pub fn signature_sources(
        &self,
        chain: &SignatureChain,
        t: Option<crate::time::Seconds>,
    ) -> Vec<(String, OpenFn<'_>)> {
        let local = chain.local;
        chain
            .files_at(t)
            .into_iter()
            .map(|name| {
                let n2 = name.to_string();
                let open: OpenFn<'_> = Box::new(move || {
                    self.open_signature_file(local, &n2)
                        .map_err(|e| e.to_string())
                });
                (name.to_string(), open)
            })
            .collect()
    }

    /// The set's manifest, preferring the local cache as duplicity does.
    pub fn manifest(&self, set: &BackupSet) -> Result<Manifest> {
        let (name, bytes) = match self.local_manifest_path(set) {
            Some(p) => {
                let bytes = fs::read(&p).map_err(|e| Error::local("read", &p, e))?;
                (p.display().to_string(), bytes)
            }
            None => {
                let name = set.manifest.clone().ok_or_else(|| Error::NoManifest {
                    set: set.describe(),
                })?;
                let bytes = self.read_decoded(&name)?;
                (name, bytes)
            }
        };
        Manifest::parse(&bytes).map_err(|source| Error::Manifest { file: name, source })
    }

    /// Makes a volume available locally and checks it against its manifest
    /// entry before anything reads its contents.
    pub fn fetch_volume(
        &self,
        name: &str,
        info: Option<&VolumeInfo>,
    ) -> std::result::Result<VerifiedVolume, VolumeProblem> {
        let (path, temp) = match self.backend.local_path(name) {
            Some(p) if p.exists() => (p, None),
            Some(_) => return Err(VolumeProblem::Missing),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("cairn-volume-")
                    .tempfile_in(&self.tempdir)
                    .map_err(|e| VolumeProblem::Unreadable(e.to_string()))?
                    .into_temp_path();
                match self.backend.get(name, &tmp) {
                    Ok(()) => {}
                    Err(BackendError::NotFound { .. }) => return Err(VolumeProblem::Missing),
                    Err(e) => return Err(VolumeProblem::Unreadable(e.to_string())),
                }
                (tmp.to_path_buf(), Some(tmp))
            }
        };
        if let Some((algo, expected)) = info.and_then(VolumeInfo::best_hash)
            && algo == "SHA1"
        {
            let actual = sha1_file(&path).map_err(|e| VolumeProblem::Unreadable(e.to_string()))?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(VolumeProblem::HashMismatch {
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        Ok(VerifiedVolume {
            name: name.to_string(),
            path,
            temp,
        })
    }
}
