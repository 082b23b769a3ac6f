//! Volume ("difftar") entries: `snapshot/`, `diff/`, `deleted/` and the
//! 64 KiB `multivol_snapshot/`/`multivol_diff/` chunks of larger data
//! (`diffdir.DeltaTarBlockIter`, `patchdir.get_index_from_tarinfo`).
//!
//! Reading is callback-driven over the `tar` crate, which takes ustar, pax
//! (including `hdrcharset=BINARY` raw names) and GNU long names, and stops at
//! the first zero block or at end of input, so the 0.8 volumes without a
//! footer and the top-off bytes after an encrypted volume's footer both work.

use super::index::{Index, IndexError};
use super::meta::{FileType, Meta, MetaError};
use std::io::{self, Read};

/// duplicity reads and writes data in pieces of exactly this size
/// (`get_read_size`); restarting a backup depends on it.
pub const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffType {
    Snapshot,
    Diff,
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum DifftarError {
    #[error(
        "unrecognized entry {0:?} in a backup volume (not snapshot/, diff/, deleted/ or multivol_*)"
    )]
    UnknownEntry(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("unreadable tar stream: {0}")]
    Tar(io::Error),
}

/// What an entry name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    pub index: Index,
    pub difftype: DiffType,
    pub multivol: bool,
}

/// `patchdir.get_index_from_tarinfo`. `name` is the tar name with a directory
/// name normalised to end in exactly one `/` (`util.get_tarinfo_name`).
pub fn parse_entry_name(name: &[u8]) -> Result<EntryName, DifftarError> {
    let unknown = || DifftarError::UnknownEntry(String::from_utf8_lossy(name).into_owned());
    let plain: [(&[u8], DiffType); 3] = [
        (b"snapshot/", DiffType::Snapshot),
        (b"diff/", DiffType::Diff),
        (b"deleted/", DiffType::Deleted),
    ];
    for (prefix, difftype) in plain {
        if let Some(rest) = name.strip_prefix(prefix) {
            let rest = rest.strip_suffix(b"/").unwrap_or(rest);
            return Ok(EntryName {
                index: Index::parse(rest)?,
                difftype,
                multivol: false,
            });
        }
    }
    for (prefix, difftype) in [
        (&b"multivol_diff/"[..], DiffType::Diff),
        (&b"multivol_snapshot/"[..], DiffType::Snapshot),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            // `(?s)^multivol_(diff|snapshot)/?(.*)/[0-9]+$`
            let slash = rest.iter().rposition(|&b| b == b'/').ok_or_else(unknown)?;
            let num = &rest[slash + 1..];
            if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
                return Err(unknown());
            }
            return Ok(EntryName {
                index: Index::parse(&rest[..slash])?,
                difftype,
                multivol: true,
            });
        }
    }
    Err(unknown())
}

/// The tar name duplicity gives an entry. `chunk` is the 1-based multivol
/// chunk number, for data of 64 KiB or more.
pub fn entry_name(index: &Index, difftype: DiffType, chunk: Option<u64>, is_dir: bool) -> Vec<u8> {
    let path = if index.is_root() {
        b".".to_vec()
    } else {
        index.joined()
    };
    let mut out = Vec::with_capacity(path.len() + 24);
    match (difftype, chunk) {
        (DiffType::Snapshot, Some(k)) | (DiffType::Diff, Some(k)) => {
            out.extend_from_slice(if difftype == DiffType::Diff {
                b"multivol_diff/"
            } else {
                b"multivol_snapshot/"
            });
            out.extend_from_slice(&path);
            out.extend_from_slice(format!("/{k}").as_bytes());
            return out;
        }
        (DiffType::Snapshot, None) => out.extend_from_slice(b"snapshot/"),
        (DiffType::Diff, None) => out.extend_from_slice(b"diff/"),
        (DiffType::Deleted, _) => out.extend_from_slice(b"deleted/"),
    }
    out.extend_from_slice(&path);
    if is_dir && difftype != DiffType::Deleted {
        out.push(b'/');
    }
    out
}

/// One tar entry of a volume or signature tar, with its data unread.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The name, directories normalised to end in one `/`.
    pub name: Vec<u8>,
    pub meta: Meta,
}

/// Calls `f` for every entry of a tar stream, with a reader over its data.
/// Stops at the tar end-of-archive marker or at end of input; bytes after
/// the marker are never looked at.
pub fn for_each_entry<R, F>(reader: R, mut f: F) -> Result<(), DifftarError>
where
    R: Read,
    F: FnMut(RawEntry, &mut dyn Read) -> Result<(), DifftarError>,
{
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(DifftarError::Tar)?;
    for entry in entries {
        let mut entry = entry.map_err(DifftarError::Tar)?;
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut pax = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(DifftarError::Tar)? {
            for ext in exts {
                let ext = ext.map_err(DifftarError::Tar)?;
                pax.push((ext.key_bytes().to_vec(), ext.value_bytes().to_vec()));
            }
        }
        let size = entry.size();
        let meta = Meta::from_tar(entry.header(), &path, link.as_deref(), &pax, size)?;
        let mut name = path;
        if meta.kind == Some(FileType::Directory) {
            while name.last() == Some(&b'/') {
                name.pop();
            }
            name.push(b'/');
        }
        f(RawEntry { name, meta }, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn names_parse_as_duplicity_parses_them() {
        let cases: [(&[u8], &str, DiffType, bool); 8] = [
            (b"snapshot/./", ".", DiffType::Snapshot, false),
            (b"snapshot/", ".", DiffType::Snapshot, false),
            (b"snapshot/sub/", "sub", DiffType::Snapshot, false),
            (b"diff/a.txt", "a.txt", DiffType::Diff, false),
            (b"deleted/emptydir", "emptydir", DiffType::Deleted, false),
            (
                b"multivol_snapshot/big.bin/481",
                "big.bin",
                DiffType::Snapshot,
                true,
            ),
            (b"multivol_diff/sub/x y/2", "sub/x y", DiffType::Diff, true),
            (
                b"snapshot/with/slash/in/name",
                "with/slash/in/name",
                DiffType::Snapshot,
                false,
            ),
        ];
        for (name, path, t, mv) in cases {
            let e = parse_entry_name(name).unwrap();
            assert_eq!(
                (e.index, e.difftype, e.multivol),
                (ix(path), t, mv),
                "{name:?}"
            );
        }
        assert!(matches!(
            parse_entry_name(b"snapshot/../../etc/passwd"),
            Err(DifftarError::Index(IndexError::ParentComponent(_)))
        ));
        assert!(parse_entry_name(b"multivol_snapshot/big.bin/x").is_err());
        assert!(parse_entry_name(b"other/a").is_err());
    }

    #[test]
    fn written_names_round_trip() {
        for (index, t, chunk, dir) in [
            (ix("a/b"), DiffType::Snapshot, None, false),
            (Index::root(), DiffType::Snapshot, None, true),
            (ix("d"), DiffType::Snapshot, None, true),
            (ix("big"), DiffType::Diff, Some(3), false),
            (ix("gone"), DiffType::Deleted, None, false),
        ] {
            let name = entry_name(&index, t, chunk, dir);
            let back = parse_entry_name(&name).unwrap();
            assert_eq!(
                (back.index, back.difftype, back.multivol),
                (index, t, chunk.is_some())
            );
        }
        assert_eq!(
            entry_name(&Index::root(), DiffType::Snapshot, None, true),
            b"snapshot/./"
        );
        assert_eq!(
            entry_name(&ix("big.bin"), DiffType::Snapshot, Some(16), false),
            b"multivol_snapshot/big.bin/16"
        );
    }
}
