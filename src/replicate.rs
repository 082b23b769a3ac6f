//! Copying a target's archive files to another target: duplicity's
//! `replicate`, done by the appliance right after each backup so that a
//! set encoded once lives at several targets. Archive files never change
//! once written, so a name the copy already holds is skipped; what the copy
//! lacks (this backup's files, or a backlog after it was unreachable) is
//! copied, volumes and signatures before manifests, so an interrupted copy
//! looks like an interrupted backup (which the next copy completes), never
//! like a complete set.

use crate::error::Result;
use crate::repo::Repo;
use std::collections::HashSet;

/// What a replication copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub files: usize,
    pub bytes: u64,
}

/// Copies the files `from` holds and `to` lacks (temporary and partial
/// uploads aside), streaming each one through.
pub fn replicate(from: &Repo, to: &Repo) -> Result<Copied> {
    let there: HashSet<String> = to.backend.list()?.into_iter().collect();
    let mut missing: Vec<(bool, String)> = from
        .backend
        .list()?
        .into_iter()
        .filter(|n| !there.contains(n) && !n.starts_with('.') && !n.ends_with(".part"))
        .filter_map(|n| {
            let p = from.naming.parse(&n).filter(|p| !p.partial)?;
            Some((p.manifest, n))
        })
        .collect();
    // Manifests last: a set is complete at the copy only once its volumes are.
    missing.sort();
    let mut copied = Copied::default();
    for (_, name) in &missing {
        copied.bytes += copy_file(from, to, name)?;
        copied.files += 1;
    }
    Ok(copied)
}

/// One file, streamed from one backend into the other's atomic upload.
fn copy_file(from: &Repo, to: &Repo, name: &str) -> Result<u64> {
    let mut reader = from.backend.open(name)?;
    let mut upload = to.backend.create(name)?;
    let n = std::io::copy(&mut reader, &mut upload).map_err(|e| crate::Error::Read {
        file: format!("{name} (copying it to {})", to.describe()),
        source: e,
    })?;
    upload.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_is_missing_manifests_last_and_skips_partials() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let names = [
            "duplicity-full.20240102T030600Z.manifest.gpg",
            "duplicity-full.20240102T030600Z.vol1.difftar.gpg",
            "duplicity-full-signatures.20240102T030600Z.sigtar.gpg",
            ".cairn-upload.1.duplicity-full.20240102T030600Z.vol2.difftar.gpg",
            "unrelated.txt",
        ];
        for n in names {
            std::fs::write(a.path().join(n), n.as_bytes()).unwrap();
        }
        std::fs::write(b.path().join(names[2]), b"already there").unwrap();
        let url = |p: &std::path::Path| format!("file://{}", p.display());
        let from = Repo::open(&url(a.path())).unwrap();
        let to = Repo::open(&url(b.path())).unwrap();
        let c = replicate(&from, &to).unwrap();
        assert_eq!(c.files, 2);
        assert_eq!(c.bytes, (names[0].len() + names[1].len()) as u64);
        let got = std::fs::read(b.path().join(names[1])).unwrap();
        assert_eq!(got, names[1].as_bytes());
        assert_eq!(
            std::fs::read(b.path().join(names[2])).unwrap(),
            b"already there"
        );
        assert!(!b.path().join(names[3]).exists());
        assert!(!b.path().join(names[4]).exists());
        assert_eq!(replicate(&from, &to).unwrap(), Copied::default());
    }
}
