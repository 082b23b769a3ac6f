//! duplicity's path key: a tuple of byte-string components relative to the
//! backup root, ordered as Python orders tuples of bytes. Volumes, signature
//! tars and restores are all merged in this order, so it must be exact:
//! `("a", "x") < ("a.txt",)`, which is not the order of the joined paths.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Index(Vec<Vec<u8>>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error(
        "security violation: archive path {0:?} contains a \"..\" component; refusing to \
         restore anything outside the destination"
    )]
    ParentComponent(String),
    #[error("archive path {0:?} is absolute or empty in the middle; refusing it")]
    Malformed(String),
}

impl Index {
    pub fn root() -> Self {
        Index(Vec::new())
    }

    pub fn from_components(c: Vec<Vec<u8>>) -> Self {
        Index(c)
    }

    /// Parses the path text found in tar entry names and manifests: components
    /// separated by `/`, with `""` and `"."` meaning the root. Components that are
    /// `..` are refused, as duplicity refuses them ("Security violation").
    pub fn parse(path: &[u8]) -> Result<Self, IndexError> {
        if path.is_empty() || path == b"." {
            return Ok(Index::root());
        }
        let mut out = Vec::new();
        for comp in path.split(|&b| b == b'/') {
            if comp == b".." {
                return Err(IndexError::ParentComponent(
                    String::from_utf8_lossy(path).into_owned(),
                ));
            }
            if comp.is_empty() {
                return Err(IndexError::Malformed(
                    String::from_utf8_lossy(path).into_owned(),
                ));
            }
            out.push(comp.to_vec());
        }
        Ok(Index(out))
    }

    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, comp: Vec<u8>) {
        self.0.push(comp);
    }

    pub fn child(&self, comp: &[u8]) -> Index {
        let mut c = self.0.clone();
        c.push(comp.to_vec());
        Index(c)
    }

    pub fn parent(&self) -> Option<Index> {
        if self.0.is_empty() {
            None
        } else {
            Some(Index(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    pub fn starts_with(&self, prefix: &Index) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    /// This index with `prefix` removed from its front.
    pub fn strip_prefix(&self, prefix: &Index) -> Option<Index> {
        self.starts_with(prefix)
            .then(|| Index(self.0[prefix.0.len()..].to_vec()))
    }

    /// The first `n` components.
    pub fn truncated(&self, n: usize) -> Index {
        Index(self.0[..n.min(self.0.len())].to_vec())
    }

    /// `"/".join(index)`, or `.` for the root: the text duplicity writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            return b".".to_vec();
        }
        self.0.join(&b'/')
    }

    /// `"/".join(index)` with the root as the empty string, as tar names need.
    pub fn joined(&self) -> Vec<u8> {
        self.0.join(&b'/')
    }

    /// The path of this index below `base`.
    pub fn to_path(&self, base: &Path) -> PathBuf {
        let mut p = base.to_path_buf();
        for c in &self.0 {
            p.push(OsStr::from_bytes(c));
        }
        p
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Index({:?})", String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// The bytes duplicity escapes in manifests: Python's `\s` and `\ " '`.
fn needs_quote(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'\\' | b'"' | b'\''
    )
}

/// `manifest.Quote`: wrap in `"…"` and write each special byte as `\xNN`.
pub fn quote(s: &[u8]) -> Vec<u8> {
    if !s.iter().any(|&b| needs_quote(b)) {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len() + 8);
    out.push(b'"');
    for &b in s {
        if needs_quote(b) {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
    out
}

/// `manifest.Unquote`. Returns `None` when a quoted string is malformed.
pub fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    if s.first() != Some(&b'"') {
        return Some(s.to_vec());
    }
    if s.len() < 2 || s.last() != Some(&b'"') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' {
            if inner.get(i + 1) != Some(&b'x') || i + 4 > inner.len() {
                return None;
            }
            let hex = std::str::from_utf8(&inner[i + 2..i + 4]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn tuple_order_is_not_string_order() {
        assert!(ix("a/x") < ix("a.txt"));
        assert!(ix("a") < ix("a/x"));
        assert!(Index::root() < ix("a"));
        assert!(ix("a/x") > ix("a"));
    }

    #[test]
    fn parse_root_and_reject_dotdot() {
        assert!(ix(".").is_root());
        assert!(ix("").is_root());
        assert!(matches!(
            Index::parse(b"a/../b"),
            Err(IndexError::ParentComponent(_))
        ));
        assert!(Index::parse(b"/etc/passwd").is_err());
        assert_eq!(ix("a/b").to_bytes(), b"a/b");
        assert_eq!(Index::root().to_bytes(), b".");
    }

    #[test]
    fn quoting_matches_duplicity() {
        assert_eq!(
            quote(b"tab\there back\\slash.txt"),
            b"\"tab\\x09here\\x20back\\x5cslash.txt\"".to_vec()
        );
        assert_eq!(quote(b"plain.txt"), b"plain.txt".to_vec());
        let odd = b"with space 'q\".txt\n\xe9";
        assert_eq!(unquote(&quote(odd)).unwrap(), odd.to_vec());
        assert_eq!(unquote(b"\"bad\\y00\""), None);
    }
}
