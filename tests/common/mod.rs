//! Helpers shared by the integration tests: running Cairn and the reference
//! duplicity versions, building trees of edge cases, and capturing a restored
//! tree's contents and metadata for comparison.
#![allow(dead_code)]

pub mod edge;
pub mod servers;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn cairn() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn"))
}

/// A `duplicity` symlink to the Cairn binary, so tests exercise the
/// argv[0] dispatch exactly as an installed appliance does.
pub fn cairn_as_duplicity() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cairn-as-duplicity");
    let link = dir.join("duplicity");
    if !link.exists() {
        fs::create_dir_all(&dir).unwrap();
        let _ = std::os::unix::fs::symlink(cairn(), &link);
    }
    link
}

/// Stock duplicity 0.8 from Debian.
pub fn dup08() -> PathBuf {
    PathBuf::from(std::env::var("DUP08").unwrap_or_else(|_| "/usr/bin/duplicity".into()))
}

/// duplicity 3.x from PyPI (installed by scripts/setup).
pub fn dup3() -> PathBuf {
    PathBuf::from(std::env::var("DUP3").unwrap_or_else(|_| "/opt/duplicity3/bin/duplicity".into()))
}

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/duplicity-samples")
}

pub fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Runs a command with a clean environment apart from PATH, HOME and the
/// given variables, and returns its output.
pub fn run(cmd: &Path, args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(cmd);
    c.args(args).env_clear();
    for k in ["PATH", "HOME", "TZ", "LANG"] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd.display()))
}

pub fn args<'a>(v: &'a [&'a str]) -> Vec<&'a OsStr> {
    v.iter().map(OsStr::new).collect()
}

/// Runs and insists on success, printing the output otherwise.
pub fn ok(cmd: &Path, a: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let out = run(cmd, a, env);
    assert!(
        out.status.success(),
        "{} {:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        cmd.display(),
        a,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One path's state as restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Not compared for symlinks: neither tool restores their mtime.
    pub mtime: Option<i64>,
    pub size: u64,
    pub sha256: Option<String>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
}

pub type Tree = BTreeMap<Vec<u8>, Node>;

pub fn sha256(p: &Path) -> String {
    use sha2::Digest;
    let mut f = fs::File::open(p).unwrap();
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

/// Captures a tree (relative paths as bytes, the root as ".").
pub fn capture(root: &Path) -> Tree {
    let mut t = Tree::new();
    fn walk(root: &Path, rel: &Path, t: &mut Tree) {
        let p = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "sym"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "chr"
        } else if ft.is_block_device() {
            "blk"
        } else if ft.is_socket() {
            "sock"
        } else {
            "reg"
        };
        let key = if rel.as_os_str().is_empty() {
            b".".to_vec()
        } else {
            rel.as_os_str().as_bytes().to_vec()
        };
        t.insert(
            key,
            Node {
                kind,
                mode: m.permissions().mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: (kind != "sym").then(|| m.mtime()),
                size: if kind == "reg" { m.len() } else { 0 },
                sha256: (kind == "reg").then(|| sha256(&p)),
                link: (kind == "sym")
                    .then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                rdev: if kind == "chr" || kind == "blk" {
                    m.rdev()
                } else {
                    0
                },
            },
        );
        if kind == "dir" {
            let mut names: Vec<_> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), t);
            }
        }
    }
    walk(root, Path::new(""), &mut t);
    t
}

/// Lists the differences between two captured trees (empty if equal).
pub fn diff_trees(expected: &Tree, got: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match got.get(k) {
            None => out.push(format!("missing {}", String::from_utf8_lossy(k))),
            Some(g) if g != v => out.push(format!(
                "{}: expected {v:?}, got {g:?}",
                String::from_utf8_lossy(k)
            )),
            _ => {}
        }
    }
    for k in got.keys() {
        if !expected.contains_key(k) {
            out.push(format!("unexpected {}", String::from_utf8_lossy(k)));
        }
    }
    out
}

pub fn assert_same_tree(expected: &Tree, got: &Tree, what: &str) {
    let d = diff_trees(expected, got);
    assert!(d.is_empty(), "{what}: trees differ:\n{}", d.join("\n"));
}

/// Whether the tests run as root (ownership and device nodes need it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cairn-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Copies a sample set into a fresh directory (tests must never write into
/// the fixtures).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// The set times in a target, oldest first, read from its manifest names.
pub fn backup_times(target: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(target)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.contains(".manifest"))
        .map(|n| {
            let t = n.split(".manifest").next().unwrap();
            t.rsplit('.').next().unwrap().to_string()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Incompressible pseudo-random bytes (xorshift), deterministic per seed.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}
