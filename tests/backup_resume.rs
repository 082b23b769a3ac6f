//! Killing a backup (SIGKILL, not a polite signal) at many points: after
//! every kill the earlier sets still restore exactly, the next run resumes
//! the partial set (or starts it cleanly), and the finished chain restores
//! exactly with Cairn and with stock duplicity. A backup asked to stop (a
//! cancel token, as the daemon uses on SIGTERM) is resumed the same way.

mod common;

use common::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "kill test";

#[test]
fn sigkill_at_many_points_then_resume() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 8 << 20);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let cache_s = cache.to_str().unwrap().to_string();
    let backup_args = [
        "backup",
        "--volsize",
        "1",
        "--archive-dir",
        &cache_s,
        src.to_str().unwrap(),
        &url,
    ];
    ok(&cairn(), &args(&backup_args), &[("PASSPHRASE", PW)]);
    let first = capture(&src);
    let first_time = backup_times(&target)[0].clone();
    edge::mutate(&src, 1);
    fs::write(src.join("grown.bin"), random_bytes(6 << 20, 9)).unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    // How long an uninterrupted run takes, to spread the kill points over it.
    let probe_target = work.path().join("probe");
    copy_dir(&target, &probe_target);
    let probe_cache = work.path().join("probe-cache");
    copy_dir(&cache, &probe_cache);
    let started = Instant::now();
    ok(
        &cairn(),
        &args(&[
            "backup",
            "--volsize",
            "1",
            "--archive-dir",
            probe_cache.to_str().unwrap(),
            src.to_str().unwrap(),
            &file_url(&probe_target),
        ]),
        &[("PASSPHRASE", PW)],
    );
    let full_run = started.elapsed();

    let mut survived = 0;
    let mut resumed = 0;
    let mut completed = false;
    let points = 16;
    for i in 0..points {
        // Spread over the run; each resumed run has less left to do, so the
        // later points land ever earlier in it.
        let delay = full_run.mul_f64(0.05 + 0.9 * f64::from(i) / f64::from(points));
        let mut child = Command::new(cairn())
            .args(backup_args)
            .env("PASSPHRASE", PW)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if String::from_utf8_lossy(&out.stderr).contains("partial set") {
            resumed += 1;
        }
        // A run killed after its manifest was stored (while it recorded
        // the set in the catalog, say) has completed its set: the next run
        // would rightly make another.
        if out.status.success() || backup_times(&target).len() == 2 {
            completed = true;
            break;
        }
        // The earlier set is untouched and restores exactly.
        let dest = work.path().join(format!("check{i}"));
        ok(
            &cairn(),
            &args(&[
                "restore",
                "--time",
                &first_time,
                "--archive-dir",
                work.path().join("rc").to_str().unwrap(),
                &url,
                dest.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", PW)],
        );
        assert_same_tree(
            &first,
            &capture(&dest),
            &format!("first set after kill point {i}"),
        );
        let _ = fs::remove_dir_all(&dest);
        // Nothing looks complete that is not.
        let names: Vec<String> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().filter(|n| n.contains(".manifest")).count() <= 2);
        survived += 1;
    }
    // Finish, if no run got to the end before its kill.
    if !completed {
        let o = ok(&cairn(), &args(&backup_args), &[("PASSPHRASE", PW)]);
        if String::from_utf8_lossy(&o.stderr).contains("partial set") {
            resumed += 1;
        }
    }
    println!("survived {survived} SIGKILL points; {resumed} runs resumed a partial set");
    assert!(
        survived >= 5,
        "the kill points must land inside runs (survived {survived})"
    );
    assert!(resumed >= 1, "at least one run resumed");
    let now = capture(&src);
    let times = backup_times(&target);
    assert_eq!(times.len(), 2, "one full and one incremental: {times:?}");
    let dest = work.path().join("final-cairn");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("rc2").to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&now, &capture(&dest), "latest, Cairn");
    let dest = work.path().join("final-dup");
    ok(
        &dup08(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("dc").to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&now, &capture(&dest), "latest, duplicity");
    let dest = work.path().join("first-dup");
    ok(
        &dup08(),
        &args(&[
            "restore",
            "-t",
            &first_time,
            "--archive-dir",
            work.path().join("dc").to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&first, &capture(&dest), "first, duplicity");
}

/// Regression: a run killed after storing volumes, then a change to the file
/// those volumes end inside, then the next run. Resuming blindly (as
/// duplicity does) would join the old file's first part to the new file's
/// rest; Cairn checks the regenerated entries against the stored volumes'
/// plaintext hashes, sees the change, and makes the set again.
#[test]
fn resume_after_the_source_changed_makes_the_set_again() {
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("small.txt"), b"unchanged\n").unwrap();
    fs::write(src.join("big.bin"), random_bytes(64 << 20, 21)).unwrap();
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let backup_args = [
        "backup",
        "--volsize",
        "1",
        "--archive-dir",
        cache.to_str().unwrap(),
        src.to_str().unwrap(),
        &url,
    ];
    let mut child = Command::new(cairn())
        .args(backup_args)
        .env("PASSPHRASE", PW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as two volumes are recorded as stored.
    let deadline = Instant::now() + Duration::from_secs(120);
    'wait: loop {
        assert!(
            Instant::now() < deadline,
            "no volume was stored in 2 minutes"
        );
        for d in fs::read_dir(&cache).into_iter().flatten().flatten() {
            for e in fs::read_dir(d.path()).into_iter().flatten().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with("cairn-plain-sha1.")
                    && fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .count()
                        >= 2
                {
                    break 'wait;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the backup finished before it could be interrupted"
    );
    // Same size, new content, so only the data shows the change.
    let new_big = random_bytes(64 << 20, 22);
    fs::write(src.join("big.bin"), &new_big).unwrap();
    let o = ok(&cairn(), &args(&backup_args), &[("PASSPHRASE", PW)]);
    let said =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("could not be resumed: the source changed"),
        "the change was noticed: {said}"
    );
    let now = capture(&src);
    for (prog, name) in [(cairn(), "Cairn"), (dup08(), "duplicity 0.8")] {
        let dest = work.path().join(format!("restored-{name}"));
        ok(
            &prog,
            &args(&[
                "restore",
                "--archive-dir",
                work.path().join(format!("rc-{name}")).to_str().unwrap(),
                &url,
                dest.to_str().unwrap(),
            ]),
            &[("PASSPHRASE", PW)],
        );
        assert_same_tree(&now, &capture(&dest), name);
    }
    assert_eq!(backup_times(&target).len(), 1, "one full set, no leftovers");
}

/// The files of a target whose names contain `part`, with their hashes.
fn stored(target: &std::path::Path, part: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fs::read_dir(target)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(part))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                sha256(&e.path()),
            )
        })
        .collect();
    v.sort();
    v
}

/// duplicity stopped after volume 2 of a full backup (its own test hook,
/// `--fail-on-volume 2`, leaves exactly what an interrupted run leaves).
fn interrupted_by_duplicity(work: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let src = work.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("big.bin"), random_bytes(3_500_000, 21)).unwrap();
    fs::write(src.join("d/small.txt"), b"small").unwrap();
    let url = file_url(&work.join("t"));
    let cache = work.join("cache").to_str().unwrap().to_string();
    let o = run(
        &dup08(),
        &args(&[
            "full",
            "--volsize",
            "1",
            "--fail-on-volume",
            "2",
            "--archive-dir",
            &cache,
            "--name",
            "n",
            src.to_str().unwrap(),
            &url,
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert!(!o.status.success(), "duplicity stopped at volume 2");
    (src, url, cache)
}

fn cairn_full(src: &std::path::Path, url: &str, cache: &str) -> String {
    let o = ok(
        &cairn_as_duplicity(),
        &args(&[
            "full",
            "--volsize",
            "1",
            "--archive-dir",
            cache,
            "--name",
            "n",
            src.to_str().unwrap(),
            url,
        ]),
        &[("PASSPHRASE", PW)],
    );
    String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
}

fn restore_with_dup3(url: &str, dest: &std::path::Path) {
    ok(
        &dup3(),
        &args(&["restore", url, dest.to_str().unwrap()]),
        &[("PASSPHRASE", PW)],
    );
}

/// A set duplicity left partial is resumed after its last stored volume, as
/// duplicity would; the stored volumes are read back and checked against
/// what Cairn regenerates, so the resume is never unchecked.
#[test]
fn a_set_duplicity_interrupted_is_resumed_after_its_stored_volumes() {
    let work = tmpdir();
    let (src, url, cache) = interrupted_by_duplicity(work.path());
    let target = work.path().join("t");
    let before = stored(&target, ".vol");
    assert_eq!(before.len(), 2, "{before:?}");
    let out = cairn_full(&src, &url, &cache);
    assert!(out.contains("restarting after volume 2"), "{out}");
    let after = stored(&target, ".vol");
    assert_eq!(
        &after[..2],
        &before[..],
        "volumes 1 and 2 kept as duplicity stored them"
    );
    assert!(after.len() > 2);
    let dest = work.path().join("r");
    restore_with_dup3(&url, &dest);
    assert_same_tree(&capture(&src), &capture(&dest), "resumed set");
}

/// The same, but the source changed in what volume 1 holds: the check
/// finds it, and the set is made again rather than joined from two states.
#[test]
fn a_set_duplicity_interrupted_over_a_changed_source_is_made_again() {
    let work = tmpdir();
    let (src, url, cache) = interrupted_by_duplicity(work.path());
    let mut big = fs::read(src.join("big.bin")).unwrap();
    big[1000] ^= 0xff;
    fs::write(src.join("big.bin"), &big).unwrap();
    let out = cairn_full(&src, &url, &cache);
    assert!(out.contains("source changed"), "{out}");
    let dest = work.path().join("r");
    restore_with_dup3(&url, &dest);
    assert_same_tree(&capture(&src), &capture(&dest), "set made again");
}

/// A `Progress` that asks the backup to stop once `after` volumes are stored.
struct StopAfter {
    cancel: cairn::progress::Cancel,
    after: u64,
}

impl cairn::progress::Progress for StopAfter {
    fn volume(&self, number: u64, _stored: u64) {
        if number >= self.after {
            self.cancel.cancel();
        }
    }
}

/// A backup asked to stop (the daemon's SIGTERM) stops at the next chunk,
/// keeps the volumes stored, and the next backup resumes after them.
#[test]
fn a_stopped_backup_is_resumed_by_the_next() {
    use cairn::backup::{BackupOptions, Storage, backup};
    use cairn::crypto::EncryptConfig;
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..12u64 {
        fs::write(src.join(format!("f{i:02}")), random_bytes(700 << 10, i)).unwrap();
    }
    let target = work.path().join("t");
    let url = file_url(&target);
    let open = || {
        let mut repo = cairn::repo::Repo::open(&url).unwrap();
        repo.archive_dir = Some(work.path().join("cache"));
        repo.keys.passphrase = Some(PW.into());
        repo
    };
    let cancel = cairn::progress::Cancel::new();
    let mut opts = BackupOptions::new(
        &src,
        Storage::Encrypted(Box::new(EncryptConfig::symmetric(PW))),
    );
    opts.volsize = 1 << 20;
    opts.cancel = cancel.clone();
    opts.progress = std::sync::Arc::new(StopAfter { cancel, after: 3 });
    let err = backup(&open(), &opts).unwrap_err();
    assert!(matches!(err, cairn::Error::Cancelled), "{err}");
    assert!(err.to_string().contains("resumes"), "{err}");
    // Stopped promptly: three or four volumes stored, no manifest yet.
    let names: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let vols = names.iter().filter(|n| n.contains(".vol")).count();
    assert!((3..=4).contains(&vols), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".manifest")), "{names:?}");
    // The next run resumes after the stored volumes and completes.
    let mut opts2 = BackupOptions::new(
        &src,
        Storage::Encrypted(Box::new(EncryptConfig::symmetric(PW))),
    );
    opts2.volsize = 1 << 20;
    let report = backup(&open(), &opts2).unwrap();
    let note = report.note.unwrap_or_default();
    assert!(note.contains("restarting after volume"), "{note}");
    let dest = work.path().join("restored");
    restore_with_dup3(&url, &dest);
    assert_same_tree(
        &capture(&src),
        &capture(&dest),
        "restored after a stop and a resume",
    );
}

/// Volumes an interrupted run stored beyond its partial manifest (an upload
/// that ran ahead with `--concurrency` above 1, or ended just before the
/// kill) are removed when the set is resumed, so none outlasts the resumed
/// set's last volume beside its manifest.
#[test]
fn volumes_stored_ahead_of_the_manifest_are_removed_on_resume() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 6 << 20);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let a = [
        "backup",
        "--volsize",
        "1",
        "--archive-dir",
        cache.to_str().unwrap(),
        src.to_str().unwrap(),
        &url,
    ];
    // Step 6 (step 1 is the resume record): volume 1 is stored, with its
    // manifest line and hash; volume 2 is not yet recorded, stored or not.
    let o = run(
        &cairn(),
        &args(&a),
        &[("PASSPHRASE", PW), ("CAIRN_KILL_AT_STEP", "6")],
    );
    assert!(!o.status.success(), "the kill point is inside the run");
    let names = || -> Vec<String> {
        fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let vol1 = names()
        .into_iter()
        .find(|n| n.contains(".vol1.difftar"))
        .expect("volume 1 is stored");
    let ahead = vol1.replace(".vol1.", ".vol90.");
    fs::copy(target.join(&vol1), target.join(&ahead)).unwrap();
    let o = ok(&cairn(), &args(&a), &[("PASSPHRASE", PW)]);
    let said = servers::text(&o);
    assert!(said.contains("restarting after volume 1"), "{said}");
    assert!(
        said.contains("made again") && said.contains(".vol90."),
        "{said}"
    );
    assert!(
        !target.join(&ahead).exists(),
        "the volume ahead of the manifest is gone: {:?}",
        names()
    );
    let dest = work.path().join("out");
    ok(
        &cairn(),
        &args(&["restore", &url, dest.to_str().unwrap()]),
        &[("PASSPHRASE", PW)],
    );
    assert_same_tree(&capture(&src), &capture(&dest), "resumed set");
}
