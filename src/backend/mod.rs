//! Where archives live. A [`Backend`] lists, reads, writes and deletes whole
//! files by name; everything duplicity-specific happens above it. Uploads go
//! through [`Upload`], which never leaves a complete-looking name for a
//! half-written file.

mod file;

pub use file::FileBackend;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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
        "unsupported target URL {0:?}: use file:///path (more schemes arrive with remote targets)"
    )]
    UnsupportedUrl(String),
    #[error("bad target URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
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

/// Opens a target by URL, as duplicity spells them.
pub fn open(url: &str) -> Result<Box<dyn Backend>, BackendError> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(BackendError::BadUrl {
                url: url.into(),
                reason: "no path after file://".into(),
            });
        }
        return Ok(Box::new(FileBackend::new(PathBuf::from(path))));
    }
    Err(BackendError::UnsupportedUrl(url.to_string()))
}

/// Whether an argument names a target rather than a local directory:
/// duplicity's rule is "contains `://`".
pub fn is_url(arg: &str) -> bool {
    arg.contains("://")
}
