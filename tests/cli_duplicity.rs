//! The duplicity command line, run through Cairn's `duplicity` entry point
//! and through stock duplicity on twin copies of the same target: the same
//! sets removed, the same files listed, the same verify verdicts, the same
//! exit codes.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const PW: &str = "cli twin test";
const T0: i64 = 1_790_000_000;

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// A target with three chains (full + incrementals each), made by stock
/// duplicity at fixed times, plus its source tree.
fn make_target(work: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = work.join("src");
    edge::build(&src, 100_000);
    let target = work.join("target");
    let url = file_url(&target);
    let cache = work.join("mkcache");
    let mut t = T0;
    for chain in 0..3 {
        for step in 0..=2u32 {
            if step > 0 || chain > 0 {
                fs::write(src.join("counter.txt"), format!("{chain}-{step}")).unwrap();
                edge::set_mtime(&src.join("counter.txt"), t);
            }
            let action = if step == 0 { "full" } else { "incremental" };
            let ts = t.to_string();
            ok(
                &dup08(),
                &args(&[
                    action,
                    "--current-time",
                    &ts,
                    "--archive-dir",
                    cache.to_str().unwrap(),
                    "--name",
                    "mk",
                    src.to_str().unwrap(),
                    &url,
                ]),
                &[("PASSPHRASE", PW)],
            );
            t += 3600;
        }
    }
    (src, target)
}

/// Runs the same duplicity arguments (with `{URL}` replaced per target)
/// through both tools on twin copies, and returns both outputs.
fn twin(
    work: &Path,
    target: &Path,
    tag: &str,
    a: &[&str],
) -> (
    std::process::Output,
    std::process::Output,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let ours = work.join(format!("ours-{tag}"));
    let theirs = work.join(format!("theirs-{tag}"));
    copy_dir(target, &ours);
    copy_dir(target, &theirs);
    let run_one = |tool: &Path, t: &Path, cache: &str| {
        let url = file_url(t);
        let cache_dir = work.join(cache);
        let cache_s = cache_dir.to_str().unwrap().to_string();
        let mut v: Vec<String> = a.iter().map(|x| x.replace("{URL}", &url)).collect();
        v.extend(["--archive-dir".to_string(), cache_s]);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        run(tool, &args(&refs), &[("PASSPHRASE", PW)])
    };
    let o = run_one(&cairn_as_duplicity(), &ours, &format!("c-{tag}"));
    let t = run_one(&dup08(), &theirs, &format!("d-{tag}"));
    (o, t, ours, theirs)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn removal_commands_delete_what_duplicity_deletes() {
    let work = tmpdir();
    let (_src, target) = make_target(work.path());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "rabn",
            vec!["remove-all-but-n-full", "2", "--force", "{URL}"],
        ),
        (
            "rabn1",
            vec!["remove-all-but-n-full", "1", "--force", "{URL}"],
        ),
        (
            "raio",
            vec!["remove-all-inc-of-but-n-full", "1", "--force", "{URL}"],
        ),
        (
            "rot",
            vec!["remove-older-than", &"1790010000", "--force", "{URL}"],
        ),
        (
            "rot-everything",
            vec!["remove-older-than", "now", "--force", "{URL}"],
        ),
        ("dry", vec!["remove-all-but-n-full", "1", "{URL}"]),
    ];
    for (tag, a) in cases {
        let (o, t, ours, theirs) = twin(work.path(), &target, tag, &a);
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}: exit codes\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        assert_eq!(names(&ours), names(&theirs), "{tag}: the same files remain");
        if tag == "dry" {
            assert_eq!(
                names(&ours),
                names(&target),
                "without --force nothing is deleted"
            );
            assert!(stdout(&o).contains("Rerun command with --force option to actually delete."));
        }
        // And the collection status afterwards reads the same.
        let (so, st, _, _) = twin(
            work.path(),
            &ours,
            &format!("{tag}-st"),
            &["collection-status", "{URL}"],
        );
        assert_eq!(
            status_lines(&so),
            status_lines(&st),
            "{tag}: collection-status after"
        );
    }
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status_lines(o: &std::process::Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| {
            !l.starts_with("Connecting with backend")
                && !l.starts_with("Archive dir")
                && !l.starts_with("Synchronizing")
                && !l.starts_with("Copying")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn cleanup_removes_orphans_and_incomplete_sets_like_duplicity() {
    let work = tmpdir();
    let (_src, target) = make_target(work.path());
    // Damage: an orphaned incremental (its base removed) and an incomplete
    // set (a volume without manifest), plus a stray file that is not ours.
    let all = names(&target);
    let victim = all
        .iter()
        .find(|n| n.starts_with("duplicity-inc.") && n.contains(".manifest"))
        .unwrap()
        .clone();
    let start = victim
        .split(".to.")
        .next()
        .unwrap()
        .trim_start_matches("duplicity-inc.")
        .to_string();
    for n in &all {
        if n.contains(&format!("inc.{start}.to")) || n.contains(&format!("signatures.{start}.to")) {
            continue;
        }
    }
    fs::write(
        target.join("duplicity-full.20300101T000000Z.vol1.difftar.gpg"),
        b"incomplete",
    )
    .unwrap();
    fs::write(target.join("unrelated.txt"), b"not a backup file").unwrap();
    for (tag, a) in [
        ("dry", vec!["cleanup", "{URL}"]),
        ("force", vec!["cleanup", "--force", "{URL}"]),
    ] {
        let (o, t, ours, theirs) = twin(work.path(), &target, tag, &a);
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        assert_eq!(names(&ours), names(&theirs), "{tag}: the same files remain");
    }
    let (_, _, ours, _) = twin(
        work.path(),
        &target,
        "check",
        &["cleanup", "--force", "{URL}"],
    );
    assert!(
        !ours
            .join("duplicity-full.20300101T000000Z.vol1.difftar.gpg")
            .exists()
    );
    assert!(
        ours.join("unrelated.txt").exists(),
        "files that are not duplicity's are never touched"
    );
}

#[test]
fn listing_status_and_verify_match() {
    let work = tmpdir();
    let (src, target) = make_target(work.path());
    let (o, t, _, _) = twin(work.path(), &target, "st", &["collection-status", "{URL}"]);
    assert_eq!(status_lines(&o), status_lines(&t));
    for time in ["now", "1790003600", "1790020000"] {
        let (o, t, _, _) = twin(
            work.path(),
            &target,
            &format!("ls{time}"),
            &["list-current-files", "-t", time, "{URL}"],
        );
        let keep = |o: &std::process::Output| -> Vec<Vec<u8>> {
            o.stdout
                .split(|&b| b == b'\n')
                .filter(|l| l.len() > 25 && l[3] == b' ')
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert_eq!(keep(&o), keep(&t), "list-current-files -t {time}");
        assert_eq!(o.status.code(), t.status.code());
    }
    // verify: equal, then with a changed file, with and without --compare-data.
    let s = src.to_str().unwrap();
    for (tag, compare) in [("v-same", true), ("v-nodata", false)] {
        let mut a = vec!["verify"];
        if compare {
            a.push("--compare-data");
        }
        a.extend(["{URL}", s]);
        let (o, t, _, _) = twin(work.path(), &target, tag, &a);
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        assert_eq!(verdict(&o), verdict(&t), "{tag}");
    }
    fs::write(src.join("small.txt"), b"changed after the backup").unwrap();
    fs::write(src.join("brand-new.txt"), b"new").unwrap();
    for (tag, compare) in [("v-diff", true), ("v-diff-nodata", false)] {
        let mut a = vec!["verify"];
        if compare {
            a.push("--compare-data");
        }
        a.extend(["{URL}", s]);
        let (o, t, _, _) = twin(work.path(), &target, tag, &a);
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        assert_eq!(verdict(&o), verdict(&t), "{tag}");
        if compare {
            assert_eq!(o.status.code(), Some(1));
        }
    }
}

fn verdict(o: &std::process::Output) -> Option<String> {
    stdout(o)
        .lines()
        .find(|l| l.starts_with("Verify complete"))
        .map(str::to_string)
}

#[test]
fn errors_and_exit_codes_match() {
    let work = tmpdir();
    let (_src, target) = make_target(work.path());
    let nonempty = work.path().join("nonempty");
    fs::create_dir_all(&nonempty).unwrap();
    fs::write(nonempty.join("x"), b"x").unwrap();
    let ne = nonempty.to_str().unwrap().to_string();
    let missing = work.path().join("no-such-target");
    let missing_url = file_url(&missing);
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "restore-nonempty",
            vec!["restore".into(), "{URL}".into(), ne.clone()],
        ),
        (
            "unknown-option",
            vec!["--frobnicate".into(), "{URL}".into(), ne.clone()],
        ),
        (
            "bad-count",
            vec!["remove-all-but-n-full".into(), "0".into(), "{URL}".into()],
        ),
        (
            "too-many-args",
            vec!["collection-status".into(), "{URL}".into(), "extra".into()],
        ),
        (
            "no-backups",
            vec!["list-current-files".into(), missing_url.clone()],
        ),
    ];
    for (tag, a) in cases {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let (o, t, _, _) = twin(work.path(), &target, tag, &refs);
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}: exit codes\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        if tag == "unknown-option" {
            assert!(
                out(&o).contains("--frobnicate"),
                "names the option: {}",
                out(&o)
            );
        }
    }
}

/// `--num-retries` and `--backend-retry-delay` reach the target: a dead
/// rsync daemon is tried exactly as often as asked, then the exit code is
/// duplicity's for a backend error. Malformed numbers and the certificate
/// options Cairn will not honour are refused by name.
#[test]
fn transfer_options_reach_the_target() {
    let work = tmpdir();
    let home = work.path().to_str().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused.
    let dead = "rsync://u@127.0.0.1:1::m/x";
    let o = run(
        &cairn_as_duplicity(),
        &args(&[
            "collection-status",
            "--num-retries",
            "3",
            "--backend-retry-delay",
            "0",
            dead,
        ]),
        &[("HOME", home)],
    );
    let t = out(&o);
    assert!((50..=59).contains(&o.status.code().unwrap_or(0)), "{t}");
    assert!(t.contains("attempt 2 of 3 failed"), "{t}");
    assert!(t.contains("giving up after 3 attempts"), "{t}");
    assert!(!t.contains("attempt 3 of 3 failed"), "{t}");
    for (bad, named) in [
        (&["--num-retries", "many"][..], "--num-retries"),
        (&["--timeout=1.5"][..], "--timeout"),
        (
            &["--ssl-no-check-certificate"][..],
            "ssl-no-check-certificate",
        ),
        (
            &["--ssl-cacert-path", "/etc/ssl/certs"][..],
            "ssl-cacert-path",
        ),
    ] {
        let mut a = vec!["collection-status"];
        a.extend_from_slice(bad);
        a.push(dead);
        let o = run(&cairn_as_duplicity(), &args(&a), &[("HOME", home)]);
        let t = out(&o);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {t}");
        assert!(t.contains(named), "{bad:?}: {t}");
    }
}
