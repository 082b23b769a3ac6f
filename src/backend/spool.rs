//! Uploads to remote targets are staged in a local file first: the transfer
//! can then be retried from the start, its size is known before it begins
//! (multipart uploads), and nothing reaches the target until the caller
//! commits. Dropped without commit, the staged file is removed.

use super::{BackendError, Upload};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

type Finish = Box<dyn FnOnce(&Path, u64) -> Result<(), BackendError> + Send>;

pub struct SpoolUpload {
    out: Option<BufWriter<File>>,
    path: tempfile::TempPath,
    size: u64,
    finish: Option<Finish>,
    target: String,
    name: String,
}

impl SpoolUpload {
    /// Stages in `dir`; `finish(path, size)` sends the staged file on commit.
    pub fn new(
        dir: &Path,
        target: &str,
        name: &str,
        finish: Finish,
    ) -> Result<SpoolUpload, BackendError> {
        let io_err = |source| BackendError::Io {
            target: target.to_string(),
            op: "stage the upload of",
            name: name.to_string(),
            source,
        };
        let (f, path) = tempfile::Builder::new()
            .prefix("cairn-upload-")
            .tempfile_in(dir)
            .map_err(io_err)?
            .into_parts();
        Ok(SpoolUpload {
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            path,
            size: 0,
            finish: Some(finish),
            target: target.to_string(),
            name: name.to_string(),
        })
    }
}

impl Write for SpoolUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.as_mut().expect("open upload").write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("open upload").flush()
    }
}

impl Upload for SpoolUpload {
    fn commit(mut self: Box<Self>) -> Result<(), BackendError> {
        let out = self.out.take().expect("open upload");
        let finish = self.finish.take().expect("open upload");
        let path = self.path.to_path_buf();
        match out.into_inner() {
            Ok(f) => drop(f),
            Err(e) => {
                return Err(BackendError::Io {
                    target: self.target.clone(),
                    op: "stage the upload of",
                    name: self.name.clone(),
                    source: e.into_error(),
                });
            }
        }
        finish(&path, self.size)
        // The staged file goes when `self.path` drops.
    }
}

/// Downloads `name` with `get` into a temporary file in `dir` and returns it
/// open, its name already gone, so nothing is left behind. The file is opened
/// after `get` because a tool like rsync replaces the file it was given.
pub fn download(
    dir: &Path,
    target: &str,
    name: &str,
    get: impl FnOnce(&Path) -> Result<(), BackendError>,
) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
    let io_err = |source| BackendError::Io {
        target: target.to_string(),
        op: "download",
        name: name.to_string(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix("cairn-get-")
        .tempfile_in(dir)
        .map_err(io_err)?
        .into_temp_path();
    get(&tmp)?;
    let f = File::open(&tmp).map_err(io_err)?;
    drop(tmp);
    Ok(Box::new(f))
}
