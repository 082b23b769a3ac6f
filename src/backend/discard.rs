//! A dry run's target (`--dry-run`): everything is read from the real target,
//! nothing is written to it or deleted from it.

use super::{Backend, BackendError, Upload};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Wraps a target so that uploads are discarded and deletions do nothing.
pub struct DiscardWrites {
    inner: Box<dyn Backend>,
}

impl DiscardWrites {
    pub fn new(inner: Box<dyn Backend>) -> Self {
        DiscardWrites { inner }
    }
}

/// An upload that goes nowhere.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload for Sink {
    fn commit(self: Box<Self>) -> Result<(), BackendError> {
        Ok(())
    }
}

impl Backend for DiscardWrites {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn list(&self) -> Result<Vec<String>, BackendError> {
        self.inner.list()
    }

    fn list_sized(&self) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        self.inner.list_sized()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + Sync>, BackendError> {
        self.inner.open(name)
    }

    fn local_path(&self, name: &str) -> Option<PathBuf> {
        self.inner.local_path(name)
    }

    fn get(&self, name: &str, dest: &Path) -> Result<(), BackendError> {
        self.inner.get(name, dest)
    }

    fn create(&self, _name: &str) -> Result<Box<dyn Upload>, BackendError> {
        Ok(Box::new(Sink))
    }

    fn delete(&self, _names: &[String]) -> Result<(), BackendError> {
        Ok(())
    }

    fn remove_stale_uploads(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_through_and_writes_go_nowhere() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"kept").unwrap();
        let b = DiscardWrites::new(Box::new(super::super::FileBackend::new(
            d.path().to_path_buf(),
        )));
        let mut up = b.create("new").unwrap();
        up.write_all(b"data").unwrap();
        up.commit().unwrap();
        b.delete(&["a".to_string()]).unwrap();
        assert_eq!(b.list().unwrap(), vec!["a".to_string()]);
        let mut s = String::new();
        b.open("a").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "kept");
    }
}
