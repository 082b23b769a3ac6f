//! The local archive directory, kept as duplicity keeps it: an incremental
//! reads signatures from the cache when they are there (the remote copies are
//! not even downloaded), fetches and decrypts them when they are not, and the
//! cache Cairn writes is one stock duplicity uses.

mod common;

use common::*;
use std::fs;
use std::path::Path;

const PW: &str = "cache test";

fn backup(src: &Path, url: &str, cache: &Path) -> std::process::Output {
    run(
        &cairn(),
        &args(&[
            "backup",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--name",
            "n",
            src.to_str().unwrap(),
            url,
        ]),
        &[("PASSPHRASE", PW)],
    )
}

fn sig_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("signatures."))
        .collect();
    v.sort();
    v
}

fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn incremental_uses_the_cache_and_fetches_when_it_is_gone() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 500_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    assert!(backup(&src, &url, &cache).status.success());
    let local = cache.join("n");
    assert_eq!(sig_files(&local).len(), 1);
    assert!(
        sig_files(&local)[0]
            .to_str()
            .unwrap()
            .ends_with(".sigtar.gz"),
        "cached signatures are gzip"
    );
    assert!(
        fs::read_dir(&local).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .ends_with(".manifest")),
        "cached manifest is plain"
    );

    // With the cache there, the remote signatures are never read: garbage
    // in their place changes nothing.
    let remote_sig = sig_files(&target).remove(0);
    let good = fs::read(&remote_sig).unwrap();
    fs::write(&remote_sig, b"garbage").unwrap();
    edge::mutate(&src, 1);
    tick();
    let o = backup(&src, &url, &cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ChangedFiles"),
        "an incremental ran"
    );
    assert!(fs::read_dir(&target).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .starts_with("duplicity-inc.")
    }));

    // Without the cache, the remote signatures are fetched and decrypted —
    // garbage is now an error that names the file.
    fs::remove_dir_all(&local).unwrap();
    edge::mutate(&src, 2);
    tick();
    let o = backup(&src, &url, &cache);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(remote_sig.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );

    // With the real file back, the cache is rebuilt and the backup runs.
    fs::write(&remote_sig, &good).unwrap();
    let o = backup(&src, &url, &cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sig_files(&local).len(), 3, "all signatures cached again");
    let dest = work.path().join("r");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--name",
            "n",
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(
        &capture(&src),
        &capture(&dest),
        "after rebuilding the cache",
    );
}

#[test]
fn duplicity_uses_the_cache_cairn_wrote() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 300_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    assert!(backup(&src, &url, &cache).status.success());
    // Spoil the remote signatures: duplicity can only succeed from the cache.
    for s in sig_files(&target) {
        fs::write(&s, b"garbage").unwrap();
    }
    edge::mutate(&src, 1);
    tick();
    ok(
        &dup08(),
        &args(&[
            "incremental",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--name",
            "n",
            src.to_str().unwrap(),
            &url,
        ]),
        &[("PASSPHRASE", PW)],
    );
    let dest = work.path().join("r");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            "--name",
            "n",
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(
        &capture(&src),
        &capture(&dest),
        "duplicity's incremental from Cairn's cache",
    );
}
