//! Archives written by Cairn, read by stock duplicity 0.8 (Debian) and 3.x
//! (PyPI) and by gpg; and mixed chains, where duplicity extends Cairn's chain
//! and Cairn extends duplicity's, restored by both tools.

mod common;

use common::*;
use std::fs;
use std::path::Path;

const PW: &str = "interop passphrase";

fn cairn_backup(src: &Path, url: &str, cache: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "backup",
        "--volsize",
        "1",
        "--archive-dir",
        cache.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    a.push(src.to_str().unwrap());
    a.push(url);
    ok(&cairn(), &args(&a), &[("PASSPHRASE", PW)])
}

fn dup_restore(dup: &Path, url: &str, t: &str, dest: &Path, cache: &Path) {
    ok(
        dup,
        &args(&[
            "restore",
            "-t",
            t,
            "--archive-dir",
            cache.to_str().unwrap(),
            url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
}

/// Waits for the next whole second, so set times differ.
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

/// Cairn writes a full and three incrementals of the edge-case tree; both
/// duplicity versions, and Cairn, restore every point in time exactly as the
/// source was.
fn chain_restores_everywhere(extra: &[&str]) {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 3 << 20);
    let target = work.path().join("target");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let mut states = Vec::new();
    for step in 0..=3 {
        if step > 0 {
            edge::mutate(&src, step);
            tick();
        }
        cairn_backup(&src, &url, &cache, extra);
        states.push(capture(&src));
    }
    let times = backup_times(&target);
    assert_eq!(times.len(), 4);
    let names: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .filter(|n| n.contains("duplicity-full.") && n.contains(".vol"))
            .count()
            >= 3,
        "--volsize 1 splits the 3 MiB file: {names:?}"
    );
    for (i, t) in times.iter().enumerate() {
        for (k, dup) in [dup08(), dup3()].iter().enumerate() {
            let dest = work.path().join(format!("r{i}-{k}"));
            dup_restore(
                dup,
                &url,
                t,
                &dest,
                &work.path().join(format!("dupcache{k}")),
            );
            assert_same_tree(
                &states[i],
                &capture(&dest),
                &format!("{} restoring {t}", dup.display()),
            );
        }
        let dest = work.path().join(format!("r{i}-cairn"));
        ok(
            &cairn(),
            &args(&[
                "restore",
                "--time",
                t,
                "--archive-dir",
                cache.to_str().unwrap(),
                &url,
                dest.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", PW)],
        );
        assert_same_tree(&states[i], &capture(&dest), &format!("cairn restoring {t}"));
    }
    // duplicity's own checks accept the target.
    let status = ok(
        &dup08(),
        &args(&[
            "collection-status",
            "--archive-dir",
            work.path().join("dupcache0").to_str().unwrap(),
            &url,
        ]),
        &[("PASSPHRASE", PW)],
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Found primary backup chain with matching signature chain"),
        "{text}"
    );
    assert!(
        text.contains("Number of contained backup sets: 4"),
        "{text}"
    );
    for dup in [dup08(), dup3()] {
        let v = run(
            &dup,
            &args(&[
                "verify",
                "--compare-data",
                "--archive-dir",
                work.path().join("dupcache-v").to_str().unwrap(),
                &url,
                src.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", PW)],
        );
        let out =
            String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr);
        assert!(
            v.status.success(),
            "{} verify failed:\n{out}",
            dup.display()
        );
        assert!(out.contains(" 0 difference"), "{out}");
    }
}

#[test]
fn encrypted_chain_restores_with_duplicity_08_and_3() {
    chain_restores_everywhere(&[]);
}

#[test]
fn gzip_and_plain_chains_restore_with_duplicity() {
    chain_restores_everywhere(&["--no-encryption"]);
    chain_restores_everywhere(&["--no-encryption", "--no-compression"]);
}

#[test]
fn gpg_decrypts_every_encrypted_file() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 400_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    cairn_backup(&src, &url, &work.path().join("c"), &[]);
    edge::mutate(&src, 1);
    tick();
    cairn_backup(&src, &url, &work.path().join("c"), &[]);
    let gnupg = work.path().join("gnupg");
    fs::create_dir_all(&gnupg).unwrap();
    let mut n = 0;
    for e in fs::read_dir(&target).unwrap() {
        let p = e.unwrap().path();
        assert!(
            p.to_str().unwrap().ends_with(".gpg"),
            "every stored file is encrypted: {}",
            p.display()
        );
        let out = run(
            Path::new("gpg"),
            &args(&[
                "--homedir",
                gnupg.to_str().unwrap(),
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                PW,
                "--decrypt",
                p.to_str().unwrap(),
            ]),
            &[],
        );
        assert!(
            out.status.success(),
            "gpg --decrypt {}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
        n += 1;
    }
    assert!(n >= 6);
}

/// duplicity 0.8 full, Cairn incremental, duplicity 3.x incremental, Cairn
/// incremental; and Cairn full, duplicity incremental. Every point restores
/// with every tool.
#[test]
fn mixed_chains() {
    for cairn_first in [false, true] {
        let work = tmpdir();
        let src = work.path().join("src");
        edge::build(&src, 1 << 20);
        let target = work.path().join("t");
        let url = file_url(&target);
        let cairn_cache = work.path().join("cc");
        let dup_cache = work.path().join("dc");
        let mut states = Vec::new();
        for step in 0..=3u32 {
            if step > 0 {
                edge::mutate(&src, step);
                tick();
            }
            let by_cairn = (step % 2 == 0) == cairn_first;
            if by_cairn {
                cairn_backup(&src, &url, &cairn_cache, &[]);
            } else {
                let dup = if step == 2 { dup3() } else { dup08() };
                let action = if step == 0 { "full" } else { "incremental" };
                ok(
                    &dup,
                    &args(&[
                        action,
                        "--volsize",
                        "1",
                        "--archive-dir",
                        dup_cache.to_str().unwrap(),
                        "--name",
                        "n",
                        src.to_str().unwrap(),
                        &url,
                    ]),
                    &[("PASSPHRASE", PW)],
                );
            }
            states.push(capture(&src));
        }
        let times = backup_times(&target);
        assert_eq!(times.len(), 4);
        for (i, t) in times.iter().enumerate() {
            for (k, dup) in [dup08(), dup3()].iter().enumerate() {
                let dest = work.path().join(format!("r{i}{k}"));
                dup_restore(dup, &url, t, &dest, &work.path().join(format!("rc{k}")));
                assert_same_tree(
                    &states[i],
                    &capture(&dest),
                    &format!("cairn_first={cairn_first} {} at {t}", dup.display()),
                );
            }
            let dest = work.path().join(format!("r{i}c"));
            ok(
                &cairn(),
                &args(&[
                    "restore",
                    "--time",
                    t,
                    "--archive-dir",
                    work.path().join("rcc").to_str().unwrap(),
                    &url,
                    dest.to_str().unwrap(),
                ]),
                &[("PASSPHRASE", PW)],
            );
            assert_same_tree(
                &states[i],
                &capture(&dest),
                &format!("cairn_first={cairn_first} cairn at {t}"),
            );
        }
    }
}
