//! Fresh archives written by stock duplicity 0.8 (Debian) and 3.x (PyPI) over
//! a tree of edge cases, a full and three incrementals with deletions, type
//! changes and mode-, owner- and mtime-only changes, restored by Cairn at
//! every point in time and compared with duplicity's own restore.

mod common;

use common::*;
use std::path::Path;

fn backup_chain(
    dup: &Path,
    src: &Path,
    url: &str,
    cache: &Path,
    opts: &[&str],
    env: &[(&str, &str)],
) {
    let cache_s = cache.to_str().unwrap();
    let src_s = src.to_str().unwrap();
    for step in 0..=3 {
        if step > 0 {
            edge::mutate(src, step);
        }
        let action = if step == 0 { "full" } else { "incremental" };
        let mut a = vec![
            action,
            "--volsize",
            "1",
            "--archive-dir",
            cache_s,
            "--name",
            "gen",
        ];
        a.extend_from_slice(opts);
        a.push(src_s);
        a.push(url);
        ok(dup, &args(&a), env);
        // Distinct whole-second backup times.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
}

fn check_version(dup: &Path, path_opt: &str, opts: &[&str], env: &[(&str, &str)]) {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 3 << 20);
    let target = work.path().join("target");
    let url = file_url(&target);
    backup_chain(dup, &src, &url, &work.path().join("dupcache"), opts, env);
    let times = backup_times(&target);
    assert_eq!(times.len(), 4, "one full and three incrementals");
    let cache = work.path().join("cache");
    for (i, t) in times.iter().enumerate() {
        let ours = work.path().join(format!("ours-{i}"));
        let theirs = work.path().join(format!("theirs-{i}"));
        let tool = if i % 2 == 0 {
            cairn_as_duplicity()
        } else {
            cairn()
        };
        let mut a = vec!["restore", "--archive-dir", cache.to_str().unwrap()];
        a.extend(if i % 2 == 0 { ["-t", t] } else { ["--time", t] });
        let ours_s = ours.to_str().unwrap();
        a.extend([url.as_str(), ours_s]);
        ok(&tool, &args(&a), env);
        let mut b = vec!["restore", "-t", t, "--archive-dir", cache.to_str().unwrap()];
        b.extend_from_slice(opts);
        b.extend([url.as_str(), theirs.to_str().unwrap()]);
        ok(dup, &args(&b), env);
        let expected = capture(&theirs);
        assert!(expected.len() > 30, "duplicity restored the tree");
        assert_same_tree(
            &expected,
            &capture(&ours),
            &format!("{} at {t}", dup.display()),
        );
    }
    // A single path from the middle of the chain.
    let ours = work.path().join("one-ours");
    let theirs = work.path().join("one-theirs");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--time",
            &times[1],
            "--path",
            "big.bin",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
            ours.to_str().unwrap(),
        ]),
        env,
    );
    ok(
        dup,
        &args(&[
            "restore",
            "-t",
            &times[1],
            path_opt,
            "big.bin",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
            theirs.to_str().unwrap(),
        ]),
        env,
    );
    assert_eq!(sha256(&ours), sha256(&theirs));
}

#[test]
fn duplicity_08_encrypted_chain() {
    check_version(
        &dup08(),
        "--file-to-restore",
        &[],
        &[("PASSPHRASE", "generated test")],
    );
}

#[test]
fn duplicity_3_gzip_chain() {
    check_version(
        &dup3(),
        "--path-to-restore",
        &["--no-encryption"],
        &[("PASSPHRASE", "unused")],
    );
}
