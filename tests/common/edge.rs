//! A tree of edge cases and the changes applied between backups: odd names,
//! boundary sizes, sparse files, links, FIFOs, devices (as root), odd modes,
//! owners and times; then deletions, type changes, and mode-, owner- and
//! mtime-only changes.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

fn pseudo(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ", "eta\n",
    ];
    let r = pseudo(n / 4 + 1, seed);
    let mut out = Vec::with_capacity(n);
    for b in r {
        out.extend_from_slice(words[b as usize % words.len()].as_bytes());
        if out.len() >= n {
            break;
        }
    }
    out.truncate(n);
    out
}

pub fn set_mtime(p: &Path, t: i64) {
    let ts = nix::sys::time::TimeSpec::new(t, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap_or_else(|e| panic!("utime {}: {e}", p.display()));
}

fn chown(p: &Path, uid: u32, gid: u32) {
    let _ = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn write(p: &Path, data: &[u8]) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, data).unwrap();
}

/// Builds the initial tree in `root` (which must not exist). `big` is the size
/// of the large random file, which spans volumes at `--volsize 1`.
pub fn build(root: &Path, big: usize) {
    fs::create_dir_all(root).unwrap();
    let r = |s: &str| root.join(s);
    write(&r("empty"), b"");
    write(&r("small.txt"), b"hello world\n");
    for n in [65_535usize, 65_536, 65_537] {
        write(&r(&format!("size_{n}.bin")), &pseudo(n, n as u64));
    }
    write(&r("big.bin"), &pseudo(big, 7));
    write(&r("text/book.txt"), &text(300_000, 3));
    write(&r("text/notes.txt"), &text(20_000, 4));
    // Names.
    let long_dir = "d".repeat(120);
    write(
        &r(&format!("{long_dir}/{}", "f".repeat(200))),
        b"long path and name\n",
    );
    write(&r("with space 'single' \"double\".txt"), b"quotes\n");
    write(&r("new\nline.txt"), b"newline in name\n");
    write(&r("tab\tand\\backslash"), b"tab\n");
    write(&r("ünïcødé_文件.txt"), b"utf-8 name\n");
    let latin1 = root.join(OsStr::from_bytes(b"latin1_\xe9t\xe9.txt"));
    fs::write(&latin1, b"not utf-8\n").unwrap();
    let odd_dir = root.join(OsStr::from_bytes(b"dir_\xff\xfe"));
    fs::create_dir(&odd_dir).unwrap();
    fs::write(odd_dir.join("inside"), b"in an odd dir\n").unwrap();
    // a/x sorts before a.txt in duplicity's index order.
    write(&r("a/x"), b"a/x\n");
    write(&r("a.txt"), b"a.txt\n");
    // Sparse: 2 MiB hole then data.
    {
        let f = fs::File::create(r("sparse.img")).unwrap();
        f.set_len(2 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(b"end of sparse file", 2 << 20).unwrap();
    }
    // Links and special files.
    symlink("small.txt", r("link_rel")).unwrap();
    symlink("/nonexistent/target", r("link_dangling")).unwrap();
    symlink("text", r("link_to_dir")).unwrap();
    fs::hard_link(r("small.txt"), r("hardlink_to_small")).unwrap();
    nix::unistd::mkfifo(&r("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    if super::is_root() {
        nix::sys::stat::mknod(
            &r("null_dev"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            libc::makedev(1, 3),
        )
        .unwrap();
    }
    // Modes, owners, times.
    fs::create_dir_all(r("modes/sticky")).unwrap();
    write(&r("modes/setuid"), b"#!/bin/sh\n");
    write(&r("modes/private"), b"secret\n");
    write(&r("modes/none"), b"no permissions\n");
    chmod(&r("modes/setuid"), 0o4755);
    chmod(&r("modes/private"), 0o600);
    chmod(&r("modes/none"), 0o000);
    chmod(&r("modes/sticky"), 0o1777);
    write(&r("owners/numeric"), b"uid 1234\n");
    write(&r("owners/nobody"), b"nobody\n");
    chown(&r("owners/numeric"), 1234, 2345);
    chown(&r("owners/nobody"), 65534, 65534);
    chown(&r("link_rel"), 65534, 65534);
    write(&r("times/old"), b"1970\n");
    write(&r("times/nineties"), b"1990s\n");
    write(&r("times/future"), b"2100\n");
    fs::create_dir_all(r("emptydir")).unwrap();
    fs::create_dir_all(r("tree/deep/er/est")).unwrap();
    write(&r("tree/deep/file"), b"deep\n");
    write(&r("tree/deep/er/est/file"), b"deepest\n");

    // Fixed times everywhere, then the odd ones.
    fix_times(root, 1_704_164_645);
    set_mtime(&r("times/old"), 86_400);
    set_mtime(&r("times/nineties"), 650_000_000);
    set_mtime(&r("times/future"), 4_102_444_800);
}

/// Sets every mtime under `root` (depth first, so directories keep theirs).
pub fn fix_times(root: &Path, t: i64) {
    fn walk(p: &Path, t: i64) {
        let m = fs::symlink_metadata(p).unwrap();
        if m.is_dir() {
            for e in fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), t);
            }
        }
        set_mtime(p, t);
    }
    walk(root, t);
}

/// Applies change set `step` (1, 2, 3) to the tree.
pub fn mutate(root: &Path, step: u32) {
    let r = |s: &str| root.join(s);
    let t = 1_704_164_645 + i64::from(step) * 100_000;
    match step {
        1 => {
            // Content edits: insert into the big file, edit text, append.
            let mut big = fs::read(r("big.bin")).unwrap();
            big.splice(300_000..300_000, pseudo(70_000, 11));
            fs::write(r("big.bin"), &big).unwrap();
            let mut book = fs::read(r("text/book.txt")).unwrap();
            book[150_000..150_020].copy_from_slice(b"CHANGED CHANGED !!!!");
            fs::write(r("text/book.txt"), &book).unwrap();
            let mut s = fs::read(r("size_65536.bin")).unwrap();
            s.push(b'!');
            fs::write(r("size_65536.bin"), &s).unwrap();
            // Deletions: a file and a whole tree.
            fs::remove_file(r("text/notes.txt")).unwrap();
            fs::remove_dir_all(r("tree")).unwrap();
            fs::remove_dir(r("emptydir")).unwrap();
            // New files.
            write(&r("added/one.txt"), b"added in step 1\n");
            write(&r("added/big_new.bin"), &pseudo(200_000, 12));
            for p in [
                "big.bin",
                "text/book.txt",
                "size_65536.bin",
                "added/one.txt",
                "added/big_new.bin",
                "added",
                "text",
                ".",
            ] {
                set_mtime(&r(p), t);
            }
        }
        2 => {
            // Type changes.
            fs::remove_file(r("small.txt")).unwrap();
            fs::create_dir(r("small.txt")).unwrap();
            write(&r("small.txt/now_a_dir"), b"was a file\n");
            fs::remove_dir_all(r("a")).unwrap();
            write(&r("a"), b"was a directory\n");
            fs::remove_file(r("link_rel")).unwrap();
            write(&r("link_rel"), b"was a symlink\n");
            fs::remove_file(r("size_65535.bin")).unwrap();
            symlink("size_65537.bin", r("size_65535.bin")).unwrap();
            fs::remove_file(r("fifo")).unwrap();
            write(&r("fifo"), b"was a fifo\n");
            // Mode only, mtime only, owner only.
            chmod(&r("modes/private"), 0o640);
            set_mtime(&r("times/nineties"), 650_000_001);
            chown(&r("owners/numeric"), 4321, 5432);
            // Retarget a symlink.
            fs::remove_file(r("link_to_dir")).unwrap();
            symlink("modes", r("link_to_dir")).unwrap();
            for p in [
                "small.txt/now_a_dir",
                "small.txt",
                "a",
                "link_rel",
                "fifo",
                ".",
            ] {
                set_mtime(&r(p), t);
            }
        }
        3 => {
            // Names come back, big file shrinks, new deep tree.
            write(&r("tree/deep/file"), b"resurrected\n");
            write(&r("text/notes.txt"), &text(25_000, 5));
            let mut big = fs::read(r("big.bin")).unwrap();
            big.truncate(big.len() / 2);
            fs::write(r("big.bin"), &big).unwrap();
            fs::remove_file(r("added/big_new.bin")).unwrap();
            for p in [
                "tree/deep/file",
                "tree/deep",
                "tree",
                "text/notes.txt",
                "text",
                "big.bin",
                "added",
                ".",
            ] {
                set_mtime(&r(p), t);
            }
        }
        _ => panic!("no step {step}"),
    }
}
