//! The delta engine against librsync's own `rdiff` (Debian's): signatures are
//! byte-identical to `rdiff -H md4 -R rollsum -b B -S 8 signature`, our deltas
//! patch correctly with `rdiff patch`, and rdiff's deltas patch correctly
//! with ours.

mod common;

use cairn::delta::{self, Differ, SignatureBuilder};
use common::*;
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

fn rdiff(a: &[&str]) {
    let st = Command::new("rdiff")
        .arg("--force")
        .args(a)
        .status()
        .expect("rdiff is installed (apt install rdiff)");
    assert!(st.success(), "rdiff {a:?}");
}

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

fn our_signature(data: &[u8], block: u32) -> Vec<u8> {
    let mut b = SignatureBuilder::new(block);
    for piece in data.chunks(100_003) {
        b.update(piece);
    }
    b.finish()
}

fn edit(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    if new.len() > 10_000 {
        new.splice(5_000..5_000, pseudo(3_000, 99));
        let l = new.len();
        new[l / 2..l / 2 + 700].copy_from_slice(&pseudo(700, 98));
        new.truncate(l - 1234);
    } else {
        new.extend_from_slice(b"appended");
    }
    new
}

fn check_case(dir: &Path, old: &[u8], block: u32) {
    let old_p = dir.join("old");
    let new_p = dir.join("new");
    fs::write(&old_p, old).unwrap();
    let new = edit(old);
    fs::write(&new_p, &new).unwrap();
    let b = block.to_string();

    // Signatures: byte-identical.
    let rsig = dir.join("r.sig");
    rdiff(&[
        "-H",
        "md4",
        "-R",
        "rollsum",
        "-b",
        &b,
        "-S",
        "8",
        "signature",
        old_p.to_str().unwrap(),
        rsig.to_str().unwrap(),
    ]);
    let ours = our_signature(old, block);
    assert_eq!(
        ours,
        fs::read(&rsig).unwrap(),
        "signature of {} bytes, block {block}",
        old.len()
    );

    // Our delta, rdiff's patch.
    let sig = delta::parse_signature(ours).unwrap();
    let (d, stats) = Differ::new(&sig)
        .diff(&new[..], Vec::new(), |_| {})
        .unwrap();
    assert_eq!(stats.new_len, new.len() as u64);
    let dp = dir.join("ours.delta");
    fs::write(&dp, &d).unwrap();
    let out = dir.join("patched-by-rdiff");
    rdiff(&[
        "patch",
        old_p.to_str().unwrap(),
        dp.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(&out).unwrap(), new, "rdiff patch of our delta");

    // rdiff's delta, our patch.
    let rd = dir.join("r.delta");
    rdiff(&[
        "delta",
        rsig.to_str().unwrap(),
        new_p.to_str().unwrap(),
        rd.to_str().unwrap(),
    ]);
    let mut patched = Vec::new();
    let n = delta::apply(
        &File::open(&old_p).unwrap(),
        File::open(&rd).unwrap(),
        &mut patched,
        u64::MAX,
    )
    .unwrap();
    assert_eq!(n, new.len() as u64);
    assert_eq!(patched, new, "our patch of rdiff's delta");

    // And rdiff's default (RabinKarp + BLAKE2) delta, which only the patcher sees.
    let rsig2 = dir.join("r2.sig");
    let rd2 = dir.join("r2.delta");
    rdiff(&[
        "signature",
        old_p.to_str().unwrap(),
        rsig2.to_str().unwrap(),
    ]);
    rdiff(&[
        "delta",
        rsig2.to_str().unwrap(),
        new_p.to_str().unwrap(),
        rd2.to_str().unwrap(),
    ]);
    let mut patched = Vec::new();
    delta::apply(
        &File::open(&old_p).unwrap(),
        File::open(&rd2).unwrap(),
        &mut patched,
        u64::MAX,
    )
    .unwrap();
    assert_eq!(patched, new, "our patch of rdiff's default delta");
}

#[test]
fn byte_compatible_with_rdiff() {
    let work = tmpdir();
    for (len, block) in [
        (0usize, 512u32),
        (100, 512),
        (65_536, 512),
        (65_537, 512),
        (1_000_000, 1024),
        (3_000_000, 2048),
        (3_000_000, 1_000),
        (9_000_000, delta::block_size(9_000_000)),
    ] {
        check_case(work.path(), &pseudo(len, len as u64 + 1), block);
    }
}

#[test]
fn rdiff_rejects_nothing_we_write_for_large_files() {
    // A file bigger than one diff segment (8 MiB) exercises the carry between
    // segments against the real librsync.
    let work = tmpdir();
    let old = pseudo(20 << 20, 5);
    check_case(work.path(), &old, delta::block_size(old.len() as u64));
}
