//! Restoring the stored duplicity sample archives (0.8.22 and 3.2.1; gzip,
//! plain and symmetric OpenPGP) at every point in time, and comparing the
//! result, contents and metadata, with what stock duplicity restores from the
//! same archive into a twin directory.

mod common;

use common::*;
use std::fs;
use std::path::Path;

const SETS: &[&str] = &[
    "dup0822-noenc",
    "dup0822-plain",
    "dup0822-sym",
    "dup321-noenc",
    "dup321-sym",
];

/// Restores `target` at `time` with Cairn (through the `duplicity` entry
/// point when `as_duplicity`) and with stock duplicity, and compares.
fn restore_both(target: &Path, time: &str, as_duplicity: bool, work: &Path) -> Tree {
    let url = file_url(target);
    let ours = work.join(format!("cairn-{time}"));
    let theirs = work.join(format!("dup-{time}"));
    let cache = work.join("cache");
    let env = [("PASSPHRASE", "test")];
    let ours_s = ours.to_str().unwrap();
    let cache_s = cache.to_str().unwrap();
    if as_duplicity {
        ok(
            &cairn_as_duplicity(),
            &args(&[
                "restore",
                "-t",
                time,
                "--archive-dir",
                cache_s,
                &url,
                ours_s,
            ]),
            &env,
        );
    } else {
        ok(
            &cairn(),
            &args(&[
                "restore",
                "--time",
                time,
                "--archive-dir",
                cache_s,
                &url,
                ours_s,
            ]),
            &env,
        );
    }
    ok(
        &dup08(),
        &args(&[
            "restore",
            "-t",
            time,
            "--archive-dir",
            cache_s,
            &url,
            theirs.to_str().unwrap(),
        ]),
        &env,
    );
    let expected = capture(&theirs);
    let got = capture(&ours);
    assert_same_tree(&expected, &got, &format!("{} at {time}", target.display()));
    got
}

fn sha_list(tree: &Tree) -> Vec<String> {
    let mut v: Vec<String> = tree
        .iter()
        .filter(|(_, n)| n.kind == "reg")
        .map(|(k, n)| {
            format!(
                "{}  {}",
                n.sha256.as_ref().unwrap(),
                String::from_utf8_lossy(k)
            )
        })
        .collect();
    v.sort_by(|a, b| {
        a.split_once("  ")
            .unwrap()
            .1
            .cmp(b.split_once("  ").unwrap().1)
    });
    v
}

fn expected_list(file: &str) -> Vec<String> {
    let text = fs::read(samples().join(file)).unwrap();
    // sha256sum escapes names holding a backslash: a leading "\\", and "\\\\".
    let mut v: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| match l.strip_prefix('\\') {
            Some(rest) => rest.replace("\\\\", "\\").replace("\\n", "\n"),
            None => l.to_string(),
        })
        .collect();
    v.sort_by(|a, b| {
        a.split_once("  ")
            .unwrap()
            .1
            .cmp(b.split_once("  ").unwrap().1)
    });
    v
}

#[test]
fn every_sample_set_at_every_time_matches_stock_duplicity() {
    for (i, set) in SETS.iter().enumerate() {
        let work = tmpdir();
        let target = work.path().join(set);
        copy_dir(&samples().join(set), &target);
        let times = backup_times(&target);
        assert_eq!(times.len(), 2, "{set}: a full and an incremental");
        let full = restore_both(&target, &times[0], i % 2 == 0, work.path());
        let inc = restore_both(&target, &times[1], i % 2 == 1, work.path());
        let (ef, ei) = if *set == "dup0822-noenc" {
            (
                "expected-0822-noenc-full.sha256",
                "expected-0822-noenc-inc.sha256",
            )
        } else {
            ("expected-small-full.sha256", "expected-small-inc.sha256")
        };
        assert_eq!(sha_list(&full), expected_list(ef), "{set} full contents");
        assert_eq!(
            sha_list(&inc),
            expected_list(ei),
            "{set} incremental contents"
        );
        // The incremental's changes are really there.
        assert!(inc.contains_key(&b"new.txt"[..]) && !full.contains_key(&b"new.txt"[..]));
        assert!(full.contains_key(&b"emptydir"[..]) && !inc.contains_key(&b"emptydir"[..]));
        assert_eq!(full[&b"link_to_a"[..]].link.as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(
            inc[&b"link_to_a"[..]].link.as_deref(),
            Some(&b"sub/b.txt"[..])
        );
        assert_eq!(full[&b"a.txt"[..]].mode, 0o600);
        assert_eq!(inc[&b"a.txt"[..]].mode, 0o644);
        assert_eq!(full[&b"fifo1"[..]].kind, "fifo");
    }
}

#[test]
fn single_paths_restore_as_the_destination() {
    let work = tmpdir();
    let target = work.path().join("t");
    copy_dir(&samples().join("dup0822-noenc"), &target);
    let url = file_url(&target);
    let cache = work.path().join("cache");
    for (path, kind) in [
        ("sub", "dir"),
        ("sub/changeme.txt", "reg"),
        ("big.bin", "reg"),
        ("link_to_a", "sym"),
    ] {
        let ours = work.path().join(format!("ours-{}", path.replace('/', "_")));
        let theirs = work
            .path()
            .join(format!("theirs-{}", path.replace('/', "_")));
        ok(
            &cairn_as_duplicity(),
            &args(&[
                "restore",
                "--file-to-restore",
                path,
                "--archive-dir",
                cache.to_str().unwrap(),
                &url,
                ours.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", "test")],
        );
        ok(
            &dup08(),
            &args(&[
                "restore",
                "--file-to-restore",
                path,
                "--archive-dir",
                cache.to_str().unwrap(),
                &url,
                theirs.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", "test")],
        );
        let got = capture(&ours);
        assert_eq!(
            got[&b"."[..]].kind,
            kind,
            "{path} is written as DEST itself"
        );
        assert_same_tree(&capture(&theirs), &got, path);
    }
}

#[test]
fn local_archive_dir_manifests_are_used() {
    // The sym set with its cache: manifests come from the plain local copies.
    let work = tmpdir();
    let target = work.path().join("t");
    copy_dir(&samples().join("dup0822-sym"), &target);
    let cache = work.path().join("cache");
    copy_dir(
        &samples().join("dup0822-sym-archive-dir"),
        &cache.join("s2"),
    );
    // Break the remote manifests: only the cached ones can make this work.
    for e in fs::read_dir(&target).unwrap() {
        let p = e.unwrap().path();
        if p.to_str().unwrap().ends_with(".manifest.gpg") {
            fs::write(&p, b"garbage").unwrap();
        }
    }
    let dest = work.path().join("out");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--name",
            "s2",
            &file_url(&target),
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", "test")],
    );
    assert_eq!(
        sha_list(&capture(&dest)),
        expected_list("expected-small-inc.sha256")
    );
}

#[test]
fn collection_status_matches_duplicity_layout() {
    let work = tmpdir();
    let target = work.path().join("t");
    copy_dir(&samples().join("dup0822-noenc"), &target);
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let ours = ok(
        &cairn_as_duplicity(),
        &args(&[
            "collection-status",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
        ]),
        &[],
    );
    let theirs = ok(
        &dup08(),
        &args(&[
            "collection-status",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
        ]),
        &[("PASSPHRASE", "test")],
    );
    let strip = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("Connecting with backend")
                    && !l.starts_with("Synchronizing")
                    && !l.starts_with("Copying")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(&ours), strip(&theirs));
}

#[test]
fn list_current_files_matches_duplicity() {
    let work = tmpdir();
    let target = work.path().join("t");
    copy_dir(&samples().join("dup321-sym"), &target);
    let url = file_url(&target);
    let times = backup_times(&target);
    for t in [&times[0], &times[1]] {
        let c1 = work.path().join(format!("c1{t}"));
        let c2 = work.path().join(format!("c2{t}"));
        let ours = ok(
            &cairn_as_duplicity(),
            &args(&[
                "list-current-files",
                "-t",
                t,
                "--archive-dir",
                c1.to_str().unwrap(),
                &url,
            ]),
            &[("PASSPHRASE", "test")],
        );
        let theirs = ok(
            &dup08(),
            &args(&[
                "list-current-files",
                "-t",
                t,
                "--archive-dir",
                c2.to_str().unwrap(),
                &url,
            ]),
            &[("PASSPHRASE", "test")],
        );
        let keep = |o: &std::process::Output| -> Vec<Vec<u8>> {
            o.stdout
                .split(|&b| b == b'\n')
                .filter(|l| l.len() > 25 && l[3] == b' ' && l[7] == b' ')
                .map(<[u8]>::to_vec)
                .collect()
        };
        let (a, b) = (keep(&ours), keep(&theirs));
        assert!(a.len() > 15, "listing has the tree");
        assert_eq!(a, b, "at {t}");
    }
}
