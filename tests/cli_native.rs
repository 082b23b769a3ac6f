//! The native `cairn` command line: a TOML profile drives backups, pruning
//! and cleanup; destructive commands only show their plan without --force;
//! help reads like a manual; errors name what is wrong.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn profile_drives_backup_prune_and_cleanup() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 200_000);
    fs::create_dir_all(src.join("cache-dir")).unwrap();
    fs::write(src.join("cache-dir/junk"), b"junk").unwrap();
    fs::write(src.join("keep.tmp"), b"tmp").unwrap();
    let target = work.path().join("t");
    let secret = work.path().join("passphrase");
    fs::write(&secret, "profile passphrase\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let profile = work.path().join("cairn.toml");
    fs::write(
        &profile,
        format!(
            "source = {:?}\ntarget = {:?}\narchive_dir = {:?}\nvolsize = 1\nselection = [\"- **/cache-dir\", \"- **.tmp\"]\n\n[encryption]\npassphrase_file = {:?}\n\n[retention]\nkeep_full = 2\n",
            src.display().to_string(),
            file_url(&target),
            work.path().join("cache").display().to_string(),
            secret.display().to_string()
        ),
    )
    .unwrap();
    let cfg = profile.to_str().unwrap();
    // Three chains: full, full, full (a fresh chain each time with --full).
    for i in 0..3 {
        let mut a = vec!["--config", cfg, "backup", "--quiet"];
        if i > 0 {
            a.push("--full");
            std::thread::sleep(std::time::Duration::from_millis(1100));
            fs::write(src.join("round.txt"), format!("round {i}")).unwrap();
        }
        let o = ok(&cairn(), &args(&a), &[]);
        assert!(text(&o).contains("SourceFiles"), "{}", text(&o));
    }
    assert_eq!(backup_times(&target).len(), 3);
    // The selection applied: excluded paths are not in the listing.
    let ls = ok(&cairn(), &args(&["--config", cfg, "ls"]), &[]);
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(listing.contains(" small.txt"), "{listing}");
    assert!(
        !listing.contains("cache-dir") && !listing.contains("keep.tmp"),
        "{listing}"
    );
    // Prune shows the plan, deletes only with --force, keeps 2 chains.
    let before: Vec<_> = fs::read_dir(&target).unwrap().collect();
    let o = ok(&cairn(), &args(&["--config", cfg, "prune"]), &[]);
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(
        fs::read_dir(&target).unwrap().count(),
        before.len(),
        "nothing deleted without --force"
    );
    ok(&cairn(), &args(&["--config", cfg, "prune", "--force"]), &[]);
    assert_eq!(backup_times(&target).len(), 2);
    let st = ok(&cairn(), &args(&["--config", cfg, "status"]), &[]);
    assert!(String::from_utf8_lossy(&st.stdout).contains("Found 1 secondary backup chain."));
    // Cleanup of an orphan, again only with --force.
    fs::write(
        target.join("duplicity-full.20300101T000000Z.vol1.difftar.gpg"),
        b"orphan",
    )
    .unwrap();
    let o = ok(&cairn(), &args(&["--config", cfg, "cleanup"]), &[]);
    assert!(text(&o).contains("20300101T000000Z"));
    assert!(
        target
            .join("duplicity-full.20300101T000000Z.vol1.difftar.gpg")
            .exists()
    );
    ok(
        &cairn(),
        &args(&["--config", cfg, "cleanup", "--force"]),
        &[],
    );
    assert!(
        !target
            .join("duplicity-full.20300101T000000Z.vol1.difftar.gpg")
            .exists()
    );
    // Verify with the profile's passphrase file, against the source.
    let v = run(
        &cairn(),
        &args(&[
            "--config",
            cfg,
            "verify",
            "--compare-data",
            &file_url(&target),
            src.to_str().unwrap(),
        ]),
        &[],
    );
    // The live tree has the excluded paths the backup lacks: 3 differences.
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("New file"), "{}", text(&v));
}

#[test]
fn bad_profiles_and_missing_pieces_are_clear() {
    let work = tmpdir();
    let p = work.path().join("p.toml");
    fs::write(&p, "sorce = \"/x\"\n").unwrap();
    let o = run(
        &cairn(),
        &args(&["--config", p.to_str().unwrap(), "status"]),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("sorce"),
        "names the bad key: {}",
        text(&o)
    );
    let o = run(&cairn(), &args(&["backup"]), &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no source"), "{}", text(&o));
    let o = run(&cairn(), &args(&["prune", "file:///nonexistent"]), &[]);
    assert!(text(&o).contains("no retention rule"), "{}", text(&o));
    let o = run(
        &cairn(),
        &args(&["backup", "--volsize", "x", "/tmp", "file:///x"]),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_reads_like_a_manual() {
    let o = ok(&cairn(), &args(&["--help"]), &[]);
    let h = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "EXAMPLES",
        "EXIT STATUS",
        "duplicity",
        "backup",
        "restore",
        "prune",
    ] {
        assert!(h.contains(needle), "--help mentions {needle}");
    }
    for sub in [
        "backup", "restore", "status", "ls", "verify", "prune", "cleanup",
    ] {
        let o = ok(&cairn(), &args(&[sub, "--help"]), &[]);
        assert!(o.stdout.len() > 400, "{sub} --help has substance");
    }
}

/// Transfer settings from the command line and from the profile's
/// `[remote]` table reach the target (the command line wins); a bad Tor mode
/// is an error that lists the good ones.
#[test]
fn remote_settings_reach_the_target() {
    let work = tmpdir();
    let home = work.path().to_str().unwrap();
    let dead = "rsync://u@127.0.0.1:1::m/x";
    let profile = work.path().join("cairn.toml");
    fs::write(
        &profile,
        format!("target = {dead:?}\n[remote]\nnum_retries = 2\nretry_delay = 0\n"),
    )
    .unwrap();
    let p = profile.to_str().unwrap();
    let o = run(
        &cairn(),
        &args(&["--config", p, "status"]),
        &[("HOME", home)],
    );
    let t = text(&o);
    assert!(t.contains("giving up after 2 attempts"), "profile: {t}");
    let o = run(
        &cairn(),
        &args(&["--config", p, "status", "--num-retries", "4"]),
        &[("HOME", home)],
    );
    let t = text(&o);
    assert!(
        t.contains("giving up after 4 attempts"),
        "command line wins: {t}"
    );
    let o = run(
        &cairn(),
        &args(&["status", "--tor", "onion", dead]),
        &[("HOME", home)],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("socks:HOST:PORT"), "{t}");
}
