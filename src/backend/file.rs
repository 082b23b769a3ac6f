//! `file://` targets: a local directory, such as a USB disk.

use super::{Backend, BackendError, Upload};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    pub fn new(dir: PathBuf) -> Self {
        FileBackend { dir }
    }

    fn err(&self, op: &'static str, name: &str, source: io::Error) -> BackendError {
        if source.kind() == io::ErrorKind::NotFound && op != "create" && op != "list" {
            return BackendError::NotFound {
                target: self.describe(),
                name: name.to_string(),
            };
        }
        BackendError::Io {
            target: self.describe(),
            op,
            name: name.to_string(),
            source,
        }
    }

    /// Refuses names that would escape the directory.
    fn path_of(&self, name: &str) -> Result<PathBuf, BackendError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(BackendError::BadUrl {
                url: self.describe(),
                reason: format!("refusing file name {name:?}"),
            });
        }
        Ok(self.dir.join(name))
    }
}

struct FileUpload {
    out: Option<BufWriter<File>>,
    temp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    target: String,
    name: String,
}

impl Write for FileUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().expect("open upload").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.as_mut().expect("open upload").write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("open upload").flush()
    }
}

impl Upload for FileUpload {
    fn commit(mut self: Box<Self>) -> Result<(), BackendError> {
        let out = self.out.take().expect("open upload");
        let finished = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| fs::rename(&self.temp, &self.dest));
        if let Err(source) = finished {
            // Nothing half-written may stay behind, under any name.
            let _ = fs::remove_file(&self.temp);
            return Err(BackendError::Io {
                target: self.target.clone(),
                op: "write",
                name: self.name.clone(),
                source,
            });
        }
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        crate::fault::step();
        Ok(())
    }
}

impl Drop for FileUpload {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Backend for FileBackend {
    fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn list(&self) -> Result<Vec<String>, BackendError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            // A target that does not exist yet holds nothing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list", "", e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| self.err("list", "", e))?;
            if let Some(name) = entry.file_name().to_str()
                && !name.starts_with(".cairn-upload.")
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
        let p = self.path_of(name)?;
        let f = File::open(&p).map_err(|e| self.err("read", name, e))?;
        Ok(Box::new(f))
    }

    fn local_path(&self, name: &str) -> Option<PathBuf> {
        self.path_of(name).ok()
    }

    fn create(&self, name: &str) -> Result<Box<dyn Upload>, BackendError> {
        let dest = self.path_of(name)?;
        fs::create_dir_all(&self.dir).map_err(|e| self.err("create", name, e))?;
        let temp = self
            .dir
            .join(format!(".cairn-upload.{}.{name}", std::process::id()));
        let f = File::create(&temp).map_err(|e| self.err("create", name, e))?;
        Ok(Box::new(FileUpload {
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            temp,
            dest,
            dir: self.dir.clone(),
            target: self.describe(),
            name: name.to_string(),
        }))
    }

    fn remove_stale_uploads(&self) -> Result<(), BackendError> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for e in rd.flatten() {
            if e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(".cairn-upload."))
            {
                fs::remove_file(e.path())
                    .map_err(|err| self.err("delete", &e.file_name().to_string_lossy(), err))?;
            }
        }
        Ok(())
    }

    fn delete(&self, names: &[String]) -> Result<(), BackendError> {
        for name in names {
            let p = self.path_of(name)?;
            match fs::remove_file(&p) {
                Ok(()) => crate::fault::step(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err("delete", name, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_is_invisible_until_commit() {
        let d = tempfile::tempdir().unwrap();
        let b = FileBackend::new(d.path().join("target"));
        assert!(b.list().unwrap().is_empty());
        let mut u = b.create("a.gpg").unwrap();
        u.write_all(b"data").unwrap();
        assert!(b.list().unwrap().is_empty(), "temp names are not listed");
        u.commit().unwrap();
        assert_eq!(b.list().unwrap(), vec!["a.gpg".to_string()]);
        let mut s = String::new();
        b.open("a.gpg").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");

        let mut u = b.create("b.gpg").unwrap();
        u.write_all(b"half").unwrap();
        drop(u);
        assert_eq!(
            fs::read_dir(d.path().join("target")).unwrap().count(),
            1,
            "aborted upload leaves nothing"
        );

        b.delete(&["a.gpg".into(), "never-there".into()]).unwrap();
        assert!(b.list().unwrap().is_empty());
        assert!(matches!(
            b.open("a.gpg"),
            Err(BackendError::NotFound { .. })
        ));
        assert!(b.open("../etc").is_err());
    }
}
