//! The error type of Cairn's engines (restore, backup, maintenance). Every
//! message says what went wrong, where, and what to do about it.

use crate::archive::collection::CollectionError;
use crate::archive::difftar::DifftarError;
use crate::archive::manifest::ManifestError;
use crate::backend::BackendError;
use crate::crypto::CryptoError;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Backend(#[from] BackendError),

    #[error("cannot decrypt {file}: {source}")]
    Crypto {
        file: String,
        #[source]
        source: CryptoError,
    },

    /// A volume the keys given cannot open (no or wrong passphrase, no
    /// secret key), met during a restore; the message names the volume.
    #[error("{0}")]
    Undecryptable(String),

    #[error("cannot encrypt {file}: {source}")]
    Encrypt {
        file: String,
        #[source]
        source: CryptoError,
    },

    #[error(
        "manifest {file} is corrupt: {source}; restore an earlier time, or run \
         `cleanup` to move past the damaged set"
    )]
    Manifest {
        file: String,
        #[source]
        source: ManifestError,
    },

    #[error("{0}")]
    Collection(#[from] CollectionError),

    #[error(
        "no backups at {0}: nothing to restore (check the URL, and --name/--file-prefix \
         if you used them when backing up)"
    )]
    NoBackups(String),

    #[error(
        "the backup was stopped before it finished; what was stored is kept, and the next \
         backup resumes it"
    )]
    Cancelled,

    #[error("the {set} has no manifest at the target; it cannot be restored from")]
    NoManifest { set: String },

    #[error("cannot read {file}: {source}")]
    Volume {
        file: String,
        #[source]
        source: DifftarError,
    },

    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "restore destination {0} exists and is not empty; choose an empty or new \
         directory, or pass --force to restore over what is there"
    )]
    DestinationNotEmpty(PathBuf),

    #[error(
        "restore destination {0} is a file, not a directory; choose a new or empty \
         directory to restore into"
    )]
    DestinationIsFile(PathBuf),

    /// A restore over the original location that was refused before anything
    /// was replaced.
    #[error("cannot restore over {path}: {why}")]
    Replace { path: PathBuf, why: String },

    #[error(
        "cannot do an incremental backup: {0}; run a full backup (or `cleanup --force`, then \
         a full backup)"
    )]
    IncrementalWithoutSignatures(String),

    #[error(
        "--file-to-restore {path:?}: {reason}; give the path as it is inside the backup, \
         relative to the backed-up directory (see list-current-files)"
    )]
    BadRestorePath { path: String, reason: String },

    /// The chain being extended was made from another host or directory.
    #[error(
        "backup source {} has changed ({detail}); a backup of another data set would extend \
         this chain — if this is not a mistake, use --allow-source-mismatch",
        if *host { "host" } else { "directory" }
    )]
    SourceMismatch { host: bool, detail: String },

    #[error("{path} was not found in the backup of {time}")]
    PathNotInBackup { path: String, time: String },

    #[error("{op} {path}: {source}")]
    Local {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("invalid option: {0}")]
    Usage(String),

    /// A key named for encryption, signing or decryption cannot be used.
    #[error(transparent)]
    Keys(#[from] CryptoError),

    #[error(transparent)]
    GpgOptions(#[from] crate::crypto::gpgopts::GpgOptionsError),

    /// Resuming an interrupted set found the source no longer matches what
    /// the stored volume holds; the backup starts the set again instead.
    #[error(
        "the source changed since the interrupted backup stored volume {volume}; \
         the set has to be made again"
    )]
    SourceChanged { volume: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn local(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Local {
            op,
            path: path.into(),
            source,
        }
    }
}
