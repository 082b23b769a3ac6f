//! Faults while backing up: unreadable files and directories are reported
//! and skipped and the backup completes; sockets are skipped; a full target
//! disk or a killed run stops with a clear message and leaves no set that
//! looks complete; every earlier set still restores, and the next run
//! completes.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const PW: &str = "faults";

fn backup_args<'a>(src: &'a str, url: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec!["backup", "--volsize", "1", "--archive-dir", cache, src, url]
}

fn out_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn unreadable_paths_are_skipped_and_reported() {
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("secret_dir")).unwrap();
    fs::write(src.join("fine.txt"), b"fine").unwrap();
    fs::write(src.join("secret_dir/inside"), b"hidden").unwrap();
    fs::write(src.join("secret.txt"), b"no").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("a.sock")).unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("secret_dir"), fs::Permissions::from_mode(0o000)).unwrap();
    let target = work.path().join("t");
    let cache = work.path().join("cache");
    // Root reads everything: drop to nobody for the backup itself.
    let mut a = vec![];
    if is_root() {
        for p in [work.path(), &src, &src.join("fine.txt")] {
            let _ = fs::set_permissions(
                p,
                fs::Permissions::from_mode(if p.is_dir() { 0o777 } else { 0o644 }),
            );
        }
        fs::create_dir_all(&target).unwrap();
        fs::create_dir_all(&cache).unwrap();
        for p in [&target, &cache] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        a = vec!["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    }
    let cairn_path = cairn();
    let url = file_url(&target);
    let mut cmd = if is_root() {
        Command::new("setpriv")
    } else {
        Command::new(&cairn_path)
    };
    if is_root() {
        cmd.args(&a).arg(&cairn_path);
    }
    cmd.args(backup_args(
        src.to_str().unwrap(),
        &url,
        cache.to_str().unwrap(),
    ))
    .env("PASSPHRASE", PW)
    .env("HOME", work.path());
    let o = cmd.output().unwrap();
    let text = out_text(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("secret.txt") && text.contains("ermission denied"),
        "{text}"
    );
    assert!(text.contains("secret_dir"), "{text}");
    assert!(
        !text.contains("a.sock"),
        "sockets are skipped quietly: {text}"
    );
    let dest = work.path().join("r");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_eq!(fs::read(dest.join("fine.txt")).unwrap(), b"fine");
    assert!(!dest.join("secret.txt").exists());
    assert!(!dest.join("a.sock").exists());
}

/// Runs `cairn backup` with the target on a 1.5 MiB tmpfs mounted in a
/// private mount namespace (gone when the command exits), so a real
/// "No space left on device" happens mid-backup.
fn backup_on_tiny_disk(work: &Path, src: &Path, cache: &Path) -> std::process::Output {
    let mnt = work.join("tiny");
    fs::create_dir_all(&mnt).unwrap();
    let seed = work.join("seed");
    // The namespace copies earlier sets in and out, so each run sees the
    // target as the last run left it.
    let script = format!(
        "set -e; mount -t tmpfs -o size=1536k tmpfs '{m}'; cp -a '{seed}/.' '{m}/' 2>/dev/null || true; \
         set +e; '{c}' backup --volsize 1 --archive-dir '{cache}' '{s}' 'file://{m}'; rc=$?; \
         rm -rf '{seed}'; mkdir -p '{seed}'; cp -a '{m}/.' '{seed}/'; exit $rc",
        m = mnt.display(),
        seed = seed.display(),
        c = cairn().display(),
        cache = cache.display(),
        s = src.display()
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("PASSPHRASE", PW)
        .output()
        .unwrap()
}

#[test]
fn full_disk_stops_cleanly_and_next_run_completes() {
    if !is_root() {
        eprintln!(
            "SKIPPED full_disk_stops_cleanly_and_next_run_completes: mounting a tmpfs needs root"
        );
        return;
    }
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(work.path().join("seed")).unwrap();
    let rnd = random_bytes(600_000, 1);
    fs::write(src.join("first.bin"), &rnd).unwrap();
    let cache = work.path().join("cache");
    let o = backup_on_tiny_disk(work.path(), &src, &cache);
    assert!(o.status.success(), "first backup fits: {}", out_text(&o));
    // Now far more than fits.
    let big = random_bytes(3_000_000, 2);
    fs::write(src.join("second.bin"), &big).unwrap();
    let o = backup_on_tiny_disk(work.path(), &src, &cache);
    let text = out_text(&o);
    assert!(!o.status.success(), "must fail: {text}");
    assert!(text.contains("No space left on device"), "{text}");
    let seed = work.path().join("seed");
    let names: Vec<String> = fs::read_dir(&seed)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().filter(|n| n.contains(".manifest")).count() == 1,
        "no second complete-looking set: {names:?}"
    );
    assert!(
        names.iter().all(|n| !n.starts_with(".cairn-upload")),
        "no half-written upload: {names:?}"
    );
    // The first set still restores.
    let dest = work.path().join("r1");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            &file_url(&seed),
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert!(
        fs::read(dest.join("first.bin")).unwrap() == rnd,
        "first.bin restored exactly"
    );
    // With room again, the next run completes and restores everything.
    fs::write(src.join("second.bin"), &big[..400_000]).unwrap();
    let o = backup_on_tiny_disk(work.path(), &src, &cache);
    assert!(o.status.success(), "{}", out_text(&o));
    let dest = work.path().join("r2");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            &file_url(&seed),
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert!(
        fs::read(dest.join("second.bin")).unwrap() == big[..400_000],
        "second.bin restored exactly (it changed after the run the full disk stopped)"
    );
}

#[test]
fn killed_backup_leaves_no_complete_set_and_next_run_completes() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 6 << 20);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    ok(
        &cairn(),
        &args(&backup_args(
            src.to_str().unwrap(),
            &url,
            cache.to_str().unwrap(),
        )),
        &[("PASSPHRASE", PW)],
    );
    let first = capture(&src);
    edge::mutate(&src, 1);
    fs::write(src.join("more.bin"), vec![7u8; 4 << 20]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Kill the second backup once its first volume is on the target.
    let mut child = Command::new(cairn())
        .args(backup_args(
            src.to_str().unwrap(),
            &url,
            cache.to_str().unwrap(),
        ))
        .env("PASSPHRASE", PW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let inc_vols = fs::read_dir(&target)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .starts_with("duplicity-inc")
            })
            .count();
        if inc_vols >= 1 || std::time::Instant::now() > deadline {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let inc_manifests = names
        .iter()
        .filter(|n| n.starts_with("duplicity-inc") && n.contains(".manifest"))
        .count();
    // Either it finished before the kill landed, or it left no manifest.
    let dest = work.path().join("r0");
    let times = backup_times(&target);
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--time",
            &times[0],
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(
        &first,
        &capture(&dest),
        "the earlier set after a killed run",
    );
    if inc_manifests == 0 {
        // duplicity sees the leftovers as an incomplete set, not a backup.
        let st = ok(
            &dup08(),
            &args(&[
                "collection-status",
                "--archive-dir",
                work.path().join("dc").to_str().unwrap(),
                &url,
            ]),
            &[("PASSPHRASE", PW)],
        );
        assert!(String::from_utf8_lossy(&st.stdout).contains("Number of contained backup sets: 1"));
    }
    let o = ok(
        &cairn(),
        &args(&backup_args(
            src.to_str().unwrap(),
            &url,
            cache.to_str().unwrap(),
        )),
        &[("PASSPHRASE", PW)],
    );
    let _ = o;
    let now = capture(&src);
    let dest = work.path().join("r1");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&now, &capture(&dest), "after the next run");
    let dest = work.path().join("r2");
    ok(
        &dup08(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("dc2").to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&now, &capture(&dest), "duplicity after the next run");
}

#[test]
fn unwritable_target_is_a_clear_error() {
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    let blocker = work.path().join("not-a-dir");
    fs::write(&blocker, b"x").unwrap();
    let url = format!("file://{}/sub", blocker.display());
    let o = run(
        &cairn(),
        &args(&backup_args(
            src.to_str().unwrap(),
            &url,
            work.path().join("c").to_str().unwrap(),
        )),
        &[("PASSPHRASE", PW)],
    );
    let text = out_text(&o);
    assert!(!o.status.success());
    assert!(text.contains("not-a-dir"), "names the target: {text}");
}
