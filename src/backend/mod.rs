//! Where archives live. A [`Backend`] lists, reads, writes and deletes whole
//! files by name; everything duplicity-specific happens above it. Uploads go
//! through [`Upload`], which never leaves a complete-looking name for a
//! half-written file.
//!
//! Targets, as duplicity spells them:
//! - `file:///path` ([`FileBackend`]);
//! - `rsync://[user[:pw]@]host[:port]::[/]module[/path]` (rsync daemon) and
//!   `rsync://user@host[:port]/rel/path`, `rsync://user@host//abs/path` (rsync
//!   over ssh), run with the real `rsync` binary ([`rsync`]); `.onion` hosts
//!   are reached over Tor ([`tor`], [`socks`]);
//! - `sftp://user@host[:port]/rel/path` or `//abs/path` (feature `sftp`);
//! - `s3://bucket[/prefix]` against any S3-compatible store (feature `s3`).
//!
//! [`BackendOptions`] carries duplicity's backend options; its `Default` is
//! duplicity's defaults.

pub mod discard;
mod file;
pub mod retry;
pub mod rsync;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sftp")]
pub mod sftp;
pub mod socks;
mod spool;
pub mod tor;
pub mod url;

pub use file::FileBackend;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{target}: {name} does not exist")]
    NotFound { target: String, name: String },
    #[error("{target}: cannot {op} {name}: {source}")]
    Io {
        target: String,
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "unsupported target URL {0:?}: use file:///path, rsync://host::module/path, \
         rsync://user@host/path, sftp://user@host/path or s3://bucket/prefix"
    )]
    UnsupportedUrl(String),
    #[error("bad target URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The target refused the credentials.
    #[error("{target}: authentication failed: {detail}")]
    Auth { target: String, detail: String },
    /// The target could not be reached at all (refused, no route, name
    /// unknown, Tor could not build a circuit to it).
    #[error("{target}: cannot reach the target: {detail}")]
    Unreachable { target: String, detail: String },
    /// The SSH host key is unknown or has changed.
    #[error("{target}: {detail}")]
    HostKey { target: String, detail: String },
    /// The server refused to create or change a file (its permissions).
    #[error(
        "{target}: the server refused to write {name}: {detail}; check that the directory \
         (or the rsync module, which must not be `read only`) is writable by the user the \
         server runs as"
    )]
    Denied {
        target: String,
        name: String,
        detail: String,
    },
    /// The target's disk or quota is full.
    #[error("{target}: no space left for {name} (disk or quota full): {detail}")]
    NoSpace {
        target: String,
        name: String,
        detail: String,
    },
    /// The rsync daemon has no such module, or the S3 bucket does not exist.
    #[error("{target}: {what} does not exist on the server: {detail}")]
    MissingContainer {
        target: String,
        what: String,
        detail: String,
    },
    /// An operation took longer than the configured timeout.
    #[error("{target}: {op} {name} timed out after {secs} s (see --timeout)")]
    Timeout {
        target: String,
        op: &'static str,
        name: String,
        secs: u64,
    },
    /// The server or the transfer program reported another failure.
    #[error("{target}: cannot {op} {name}: {detail}")]
    Remote {
        target: String,
        op: &'static str,
        name: String,
        detail: String,
    },
    /// The options or the local setup cannot work (a missing program, a
    /// feature not built in, an option that would break atomic uploads).
    #[error("{target}: {detail}")]
    Setup { target: String, detail: String },
}

impl BackendError {
    /// Whether trying again may help: network trouble, timeouts and
    /// unclassified server errors. Wrong credentials, unknown host keys,
    /// missing modules, full disks and bad settings are reported at once.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BackendError::Io { .. }
                | BackendError::Unreachable { .. }
                | BackendError::Timeout { .. }
                | BackendError::Remote { .. }
        )
    }
}

/// How to reach Tor for `.onion` hosts (and for every host when set
/// explicitly).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TorMode {
    /// `.onion` hosts go through the system tor's SOCKS port at
    /// [`tor::DEFAULT_SOCKS`], unless `RSYNC_CONNECT_PROG` is set in the
    /// environment (then rsync uses it, as with duplicity). Other hosts are
    /// reached directly.
    #[default]
    Auto,
    /// Never use Tor; `.onion` hosts are refused rather than looked up in DNS.
    Off,
    /// Every host through this SOCKS5 proxy (`HOST:PORT`, normally the system
    /// tor's SocksPort). Host names are sent unresolved.
    Socks(String),
    /// Every host through the embedded arti client (feature `tor`), run in a
    /// short-lived child process `cairn tor-connect`.
    Arti {
        /// Holds arti's `state/` and `cache/`; keep it between runs so that
        /// bootstrapping is quick.
        dir: PathBuf,
        /// An arti TOML file for a private or test network (optional).
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
pub struct TorOptions {
    pub mode: TorMode,
    /// The program run as `PROGRAM tor-connect ...` (default: this executable).
    pub helper: Option<PathBuf>,
    /// How long one Tor connection may take to bootstrap and connect.
    pub connect_timeout: Duration,
}

impl Default for TorOptions {
    fn default() -> Self {
        TorOptions {
            mode: TorMode::Auto,
            helper: None,
            connect_timeout: Duration::from_secs(120),
        }
    }
}

/// S3 settings. Unset fields fall back to the standard AWS environment
/// variables, then to AWS's defaults.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// `--s3-endpoint-url`; else `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`;
    /// else AWS (`https://s3.REGION.amazonaws.com`).
    pub endpoint: Option<String>,
    /// `--s3-region-name`; else `AWS_REGION`, `AWS_DEFAULT_REGION`; else
    /// `us-east-1`.
    pub region: Option<String>,
    /// Path-style (`endpoint/bucket/key`) instead of virtual-host addressing.
    /// `None`: path style for custom endpoints (MinIO, Garage, Ceph RGW
    /// usually need it), virtual hosts for AWS.
    pub path_style: Option<bool>,
    /// `--s3-unencrypted-connection`: plain http to AWS's default endpoint.
    pub unencrypted_connection: bool,
    /// Volumes larger than this are uploaded in parts of this size
    /// (`--s3-multipart-chunk-size`; duplicity's default 20 MiB; at least 5 MiB).
    pub multipart_chunk_size: u64,
    /// An AWS shared credentials file (default `AWS_SHARED_CREDENTIALS_FILE`
    /// or `~/.aws/credentials`), read when `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` are not set.
    pub credentials_file: Option<PathBuf>,
    /// The profile in the credentials file (default `AWS_PROFILE` or `default`).
    pub profile: Option<String>,
    /// Extra CA certificate(s) in PEM (`--ssl-cacert-file`).
    pub ca_file: Option<PathBuf>,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            path_style: None,
            unencrypted_connection: false,
            multipart_chunk_size: 20 << 20,
            credentials_file: None,
            profile: None,
            ca_file: None,
        }
    }
}

/// SFTP settings; `--ssh-options` `-oIdentityFile=`, `-i` and
/// `-oUserKnownHostsFile=` are honoured too.
#[derive(Clone, Debug, Default)]
pub struct SftpOptions {
    /// Private keys to offer (default `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`).
    pub identity_files: Vec<PathBuf>,
    /// known_hosts files to check the server's key against (default
    /// `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`). An unknown or
    /// changed key is an error; nothing is trusted blindly.
    pub known_hosts: Vec<PathBuf>,
}

/// duplicity's backend options. `BackendOptions::default()` is duplicity's
/// defaults.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// Attempts per operation before giving up (`--num-retries`, default 5),
    /// as duplicity counts them: 5 means one try and four retries.
    pub num_retries: u32,
    /// Wait before the first retry (`--backend-retry-delay`, default 30 s);
    /// it doubles with each further retry, up to 8 times this.
    pub retry_delay: Duration,
    /// Network timeout (`--timeout`, default 30 s): connecting, and any
    /// stretch without progress during a transfer.
    pub timeout: Duration,
    /// Where uploads are staged before they are sent (`--tempdir`; default
    /// `$TMPDIR` or `/tmp`).
    pub tempdir: Option<PathBuf>,
    /// `--rsync-options`, already split (see [`split_options`]).
    pub rsync_options: Vec<String>,
    /// `--ssh-options`, already split (see [`split_options`]).
    pub ssh_options: Vec<String>,
    /// The rsync program (default `rsync` on PATH).
    pub rsync_program: PathBuf,
    pub tor: TorOptions,
    pub s3: S3Options,
    pub sftp: SftpOptions,
    /// Uploads at most this many bytes per second (`max_upload_rate`);
    /// rsync:// targets only, through rsync's `--bwlimit`.
    pub max_upload_rate: Option<u64>,
}

/// A rate such as `500K` or `2.5M`: bytes per second, K = 1024, the unit
/// required (rsync reads a bare number as KiB, people as bytes).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let unit = |c: char| match c.to_ascii_uppercase() {
        'K' => Some(1u64 << 10),
        'M' => Some(1 << 20),
        'G' => Some(1 << 30),
        _ => None,
    };
    let bad = || format!("{text:?} is not a rate; give one with its unit, e.g. 500K or 2M");
    let last = t.chars().last().ok_or_else(bad)?;
    let mul = unit(last).ok_or_else(bad)?;
    let n: f64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
    let bytes = n * mul as f64;
    if !bytes.is_finite() || bytes < 1024.0 {
        return Err(format!("{text:?}: the rate must be at least 1K"));
    }
    Ok(bytes as u64)
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            num_retries: 5,
            retry_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            tempdir: None,
            rsync_options: Vec::new(),
            ssh_options: Vec::new(),
            rsync_program: PathBuf::from("rsync"),
            tor: TorOptions::default(),
            s3: S3Options::default(),
            sftp: SftpOptions::default(),
            max_upload_rate: None,
        }
    }
}

impl BackendOptions {
    pub fn tempdir(&self) -> PathBuf {
        self.tempdir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

/// Splits repeatable options such as `--rsync-options` the way duplicity
/// does: the values are joined with spaces, then split like a POSIX shell
/// would (quotes and backslashes honoured).
pub fn split_options(values: &[String]) -> Result<Vec<String>, String> {
    let joined = values.join(" ");
    shlex::split(&joined).ok_or_else(|| format!("unbalanced quotes in {joined:?}"))
}

/// A file being uploaded. Dropped without [`Upload::commit`], it vanishes.
pub trait Upload: Write + Send {
    /// Makes the file visible under its final name, durably.
    fn commit(self: Box<Self>) -> Result<(), BackendError>;
}

pub trait Backend: Send + Sync {
    /// The target as shown to people (no secrets).
    fn describe(&self) -> String;

    /// Names of the files at the target (not recursive).
    fn list(&self) -> Result<Vec<String>, BackendError>;

    /// The files with the sizes the same listing gives (None where it
    /// gives none), for what is stored where [`Backend::local_path`] cannot
    /// say: one listing answers both.
    fn list_sized(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        Ok(self.list()?.into_iter().map(|n| (n, None)).collect())
    }

    /// Opens a file for reading.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError>;

    /// A local path holding the file, if the backend is local, so it can be
    /// read twice (hash, then decode) without a download.
    fn local_path(&self, _name: &str) -> Option<PathBuf> {
        None
    }

    /// Downloads a file to `dest`.
    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        let mut r = self.open(name)?;
        let io_err = |source| BackendError::Io {
            target: self.describe(),
            op: "download",
            name: name.to_string(),
            source,
        };
        let mut f = File::create(dest).map_err(io_err)?;
        io::copy(&mut r, &mut f).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        Ok(())
    }

    /// Starts an upload that becomes visible as `name` on commit.
    fn create(&self, name: &str) -> Result<Box<dyn Upload>, BackendError>;

    /// Deletes files; names that are already gone are not an error.
    fn delete(&self, names: &[String]) -> Result<(), BackendError>;

    /// Removes temporary files a killed upload left (called with the
    /// archive directory's lock held, so no upload of ours is running).
    fn remove_stale_uploads(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Opens a target by URL, as duplicity spells them. Nothing is contacted
/// yet; the first operation connects.
pub fn open(url: &str, opts: &BackendOptions) -> Result<Box<dyn Backend>, BackendError> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    // A local disk shares no uplink: nothing to hold back there.
    if opts.max_upload_rate.is_some() && !matches!(scheme, "rsync" | "file") {
        return Err(BackendError::Setup {
            target: url::redact(url),
            detail: "max_upload_rate is applied by rsync (--bwlimit), so it works with \
                     rsync:// targets only; remove it for this target"
                .into(),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(BackendError::BadUrl {
                url: url.into(),
                reason: "no path after file://".into(),
            });
        }
        return Ok(Box::new(FileBackend::new(PathBuf::from(path))));
    }
    match scheme {
        "rsync" => Ok(Box::new(rsync::RsyncBackend::new(url, opts)?)),
        #[cfg(feature = "sftp")]
        "sftp" => Ok(Box::new(sftp::SftpBackend::new(url, opts)?)),
        #[cfg(feature = "s3")]
        "s3" | "s3+http" | "s3+https" => Ok(Box::new(s3::S3Backend::new(url, opts)?)),
        #[cfg(not(feature = "sftp"))]
        "sftp" => Err(BackendError::Setup {
            target: url::redact(url),
            detail: "this Cairn was built without sftp:// support (cargo feature `sftp`)".into(),
        }),
        #[cfg(not(feature = "s3"))]
        "s3" | "s3+http" | "s3+https" => Err(BackendError::Setup {
            target: url::redact(url),
            detail: "this Cairn was built without s3:// support (cargo feature `s3`)".into(),
        }),
        _ => Err(BackendError::UnsupportedUrl(url::redact(url))),
    }
}

/// Whether an argument names a target rather than a local directory:
/// duplicity's rule is "contains `://`".
pub fn is_url(arg: &str) -> bool {
    arg.contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_need_their_unit() {
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("2m"), Ok(2 << 20));
        assert_eq!(parse_rate(" 1.5M "), Ok(3 << 19));
        for bad in ["", "500", "K", "fast", "-1M", "0.5K", "infM"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_upload_limit_is_refused_where_rsync_does_not_carry_it() {
        let opts = BackendOptions {
            max_upload_rate: Some(1 << 20),
            ..BackendOptions::default()
        };
        for url in ["sftp://me@host/x", "s3://bucket/x"] {
            let e = open(url, &opts).err().expect(url).to_string();
            assert!(e.contains("max_upload_rate"), "{url}: {e}");
        }
        assert!(open("rsync://me@host::module/x", &opts).is_ok());
        assert!(
            open("file:///tmp/x", &opts).is_ok(),
            "a local disk is not held back"
        );
    }
}
