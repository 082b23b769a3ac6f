//! The metadata duplicity records for each path (`path.ROPath`): type, mode,
//! owner by number and name, whole-second mtime, link target, device numbers.
//! Read from and written to tar headers exactly as duplicity's `tarfile` use
//! does, and compared as `ROPath.__eq__` compares, since that comparison
//! decides what an incremental stores.

use std::collections::HashMap;
use std::sync::Mutex;
use tar::{EntryType, Header};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::Regular => "reg",
            FileType::Directory => "dir",
            FileType::Symlink => "sym",
            FileType::Fifo => "fifo",
            FileType::CharDevice => "chr",
            FileType::BlockDevice => "blk",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("hard link entries are not part of duplicity's format (entry {0:?})")]
    HardLink(String),
    #[error("unknown tar entry type {1:?} for {0:?}")]
    UnknownType(String, char),
    #[error("unreadable tar header field in {0:?}: {1}")]
    BadField(String, String),
}

/// One path's recorded state. `kind == None` means "does not exist" (a
/// `deleted/` entry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub kind: Option<FileType>,
    /// Permission bits (07777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    /// Whole seconds; negative times are recorded as 0.
    pub mtime: i64,
    /// Data size in the tar entry (for regular files: this chunk's size).
    pub size: u64,
    pub link_target: Vec<u8>,
    pub devmajor: u32,
    pub devminor: u32,
}

/// A numeric header field, read as Python's `tarfile.nti` reads it: an
/// empty field (all NULs or spaces) is 0.
fn lenient<T: Default>(parsed: std::io::Result<T>, field: &[u8]) -> std::io::Result<T> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(T::default()),
        other => other,
    }
}

fn field_str(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

impl Meta {
    pub fn exists(&self) -> bool {
        self.kind.is_some()
    }

    pub fn is_regular(&self) -> bool {
        self.kind == Some(FileType::Regular)
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Some(FileType::Directory)
    }

    /// Reads a tar header as `ROPath.init_from_tarinfo` does. `name` is the
    /// full entry name (for messages and the old "regular file ending in /"
    /// directory convention); `pax` holds the entry's pax records.
    pub fn from_tar(
        header: &Header,
        name: &[u8],
        link: Option<&[u8]>,
        pax: &[(Vec<u8>, Vec<u8>)],
        size: u64,
    ) -> Result<Meta, MetaError> {
        let shown = || String::from_utf8_lossy(name).into_owned();
        let bad = |e: std::io::Error| MetaError::BadField(shown(), e.to_string());
        let raw = header.as_bytes();
        let et = header.entry_type();
        let kind = match et {
            EntryType::Regular | EntryType::Continuous => {
                if name.ends_with(b"/") && header.as_bytes()[156] == 0 {
                    FileType::Directory
                } else {
                    FileType::Regular
                }
            }
            EntryType::Directory => FileType::Directory,
            EntryType::Symlink => FileType::Symlink,
            EntryType::Fifo => FileType::Fifo,
            EntryType::Char => FileType::CharDevice,
            EntryType::Block => FileType::BlockDevice,
            EntryType::Link => return Err(MetaError::HardLink(shown())),
            other => return Err(MetaError::UnknownType(shown(), other.as_byte() as char)),
        };
        let mut m = Meta {
            kind: Some(kind),
            mode: lenient(header.mode(), &raw[100..108]).map_err(bad)? & 0o7777,
            uid: lenient(header.uid(), &raw[108..116]).map_err(bad)?,
            gid: lenient(header.gid(), &raw[116..124]).map_err(bad)?,
            uname: header.username_bytes().map(field_str).unwrap_or_default(),
            gname: header.groupname_bytes().map(field_str).unwrap_or_default(),
            mtime: lenient(header.mtime(), &raw[136..148]).map_err(bad)? as i64,
            size,
            link_target: link.map(<[u8]>::to_vec).unwrap_or_default(),
            devmajor: 0,
            devminor: 0,
        };
        if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
            m.devmajor = header.device_major().ok().flatten().unwrap_or(0);
            m.devminor = header.device_minor().ok().flatten().unwrap_or(0);
        }
        for (k, v) in pax {
            match k.as_slice() {
                b"uname" => m.uname = v.clone(),
                b"gname" => m.gname = v.clone(),
                b"mtime" => {
                    if let Some(t) = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.split('.').next())
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        m.mtime = t;
                    }
                }
                _ => {}
            }
        }
        if m.mtime < 0 {
            m.mtime = 0;
        }
        Ok(m)
    }

    /// Whether two states are "equal" for change detection (`ROPath.__eq__`):
    /// files, directories and FIFOs by mode, owner and whole-second mtime
    /// (sizes are not compared); symlinks by target only; devices by mode,
    /// owner and device numbers.
    pub fn same_state(&self, other: &Meta) -> bool {
        let (Some(a), Some(b)) = (self.kind, other.kind) else {
            return self.kind.is_none() && other.kind.is_none();
        };
        if a != b {
            return false;
        }
        let perms = self.mode == other.mode && self.uid == other.uid && self.gid == other.gid;
        match a {
            FileType::Regular | FileType::Directory | FileType::Fifo => {
                perms && (self.mtime == other.mtime || (self.mtime <= 0 && other.mtime <= 0))
            }
            FileType::Symlink => self.link_target == other.link_target,
            FileType::CharDevice | FileType::BlockDevice => {
                perms && self.devmajor == other.devmajor && self.devminor == other.devminor
            }
        }
    }
}

/// Maps recorded owners to local ids as duplicity does on restore: the name
/// first (`getpwnam`/`getgrnam`), then the recorded number; `--numeric-owner`
/// skips the names. Lookups are cached, since every entry asks.
#[derive(Default)]
pub struct OwnerMap {
    numeric: bool,
    users: Mutex<HashMap<Vec<u8>, Option<u32>>>,
    groups: Mutex<HashMap<Vec<u8>, Option<u32>>>,
}

impl OwnerMap {
    pub fn new(numeric: bool) -> Self {
        OwnerMap {
            numeric,
            ..Default::default()
        }
    }

    pub fn uid(&self, m: &Meta) -> u32 {
        if !self.numeric && !m.uname.is_empty() {
            let mut cache = self.users.lock().unwrap_or_else(|e| e.into_inner());
            let hit = cache.entry(m.uname.clone()).or_insert_with(|| {
                std::str::from_utf8(&m.uname)
                    .ok()
                    .and_then(|n| nix::unistd::User::from_name(n).ok().flatten())
                    .map(|u| u.uid.as_raw())
            });
            if let Some(id) = *hit {
                return id;
            }
        }
        m.uid as u32
    }

    pub fn gid(&self, m: &Meta) -> u32 {
        if !self.numeric && !m.gname.is_empty() {
            let mut cache = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            let hit = cache.entry(m.gname.clone()).or_insert_with(|| {
                std::str::from_utf8(&m.gname)
                    .ok()
                    .and_then(|n| nix::unistd::Group::from_name(n).ok().flatten())
                    .map(|g| g.gid.as_raw())
            });
            if let Some(id) = *hit {
                return id;
            }
        }
        m.gid as u32
    }

    /// `m` with uid/gid remapped through the names, as duplicity remaps a
    /// signature entry before comparing it with the disk.
    pub fn localize(&self, m: &Meta) -> Meta {
        let mut out = m.clone();
        if m.kind.is_some() {
            out.uid = u64::from(self.uid(m));
            out.gid = u64::from(self.gid(m));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_rules() {
        let f = Meta {
            kind: Some(FileType::Regular),
            mode: 0o644,
            mtime: 100,
            size: 5,
            ..Default::default()
        };
        let mut g = f.clone();
        g.size = 99;
        assert!(f.same_state(&g), "size is not compared");
        g.mode = 0o600;
        assert!(!f.same_state(&g));
        let mut h = f.clone();
        h.mtime = -5;
        let mut i = f.clone();
        i.mtime = 0;
        assert!(h.same_state(&i), "non-positive mtimes are equal");
        let s1 = Meta {
            kind: Some(FileType::Symlink),
            link_target: b"a".to_vec(),
            mtime: 1,
            ..Default::default()
        };
        let mut s2 = s1.clone();
        s2.mtime = 2;
        s2.uid = 7;
        assert!(s1.same_state(&s2), "symlinks compare by target only");
        s2.link_target = b"b".to_vec();
        assert!(!s1.same_state(&s2));
        assert!(Meta::default().same_state(&Meta::default()));
        assert!(!Meta::default().same_state(&f));
    }

    #[test]
    fn owner_names_win_over_numbers() {
        let map = OwnerMap::new(false);
        let m = Meta {
            kind: Some(FileType::Regular),
            uid: 4242,
            gid: 4242,
            uname: b"root".to_vec(),
            gname: b"no-such-group-here".to_vec(),
            ..Default::default()
        };
        assert_eq!(map.uid(&m), 0);
        assert_eq!(map.gid(&m), 4242);
        assert_eq!(OwnerMap::new(true).uid(&m), 4242);
    }
}
