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
    }
    // Command-line errors exit 23 as in 3.2.1 (0.8.22: 2); Cairn follows 3.x.
    let cli_errors: Vec<(&str, Vec<&str>)> = vec![
        ("unknown-option", vec!["--frobnicate", "{URL}", &ne]),
        ("too-many-args", vec!["collection-status", "{URL}", "extra"]),
    ];
    // 3.2.1 crashes on a count of 0 (exit 30); 0.8.22 refuses it (exit 2).
    let o = run(
        &cairn_as_duplicity(),
        &args(&["remove-all-but-n-full", "0", &file_url(&target)]),
        &[],
    );
    assert_eq!(o.status.code(), Some(23), "{}", out(&o));
    assert!(out(&o).contains("count must be > 0"), "{}", out(&o));
    for (tag, a) in cli_errors {
        let o = same_as_dup3(work.path(), tag, &a);
        assert_eq!(o.status.code(), Some(23), "{tag}");
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
        assert_eq!(o.status.code(), Some(23), "{bad:?}: {t} (3.2.1: 23)");
        assert!(t.contains(named), "{bad:?}: {t}");
    }
}

/// Every file under a directory, recursively (an absent directory is empty).
fn all_files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                v.extend(all_files(&e.path()));
            } else {
                v.push(e.path().display().to_string());
            }
        }
    }
    v
}

/// `--dry-run` with `--force`: duplicity says what it would delete and
/// deletes nothing; so must Cairn.
#[test]
fn dry_run_removals_delete_nothing() {
    let work = tmpdir();
    let (_src, target) = make_target(work.path());
    fs::write(
        target.join("duplicity-full.20300101T000000Z.vol1.difftar.gpg"),
        b"incomplete",
    )
    .unwrap();
    let before = names(&target);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "rabn",
            vec![
                "remove-all-but-n-full",
                "1",
                "--force",
                "--dry-run",
                "{URL}",
            ],
        ),
        (
            "raio",
            vec![
                "remove-all-inc-of-but-n-full",
                "1",
                "--force",
                "--dry-run",
                "{URL}",
            ],
        ),
        (
            "rot",
            vec!["remove-older-than", "now", "--force", "--dry-run", "{URL}"],
        ),
        ("clean", vec!["cleanup", "--force", "--dry-run", "{URL}"]),
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
        assert_eq!(names(&theirs), before, "{tag}: duplicity deletes nothing");
        assert_eq!(names(&ours), before, "{tag}: nothing deleted\n{}", out(&o));
        let said = |o: &std::process::Output| {
            stdout(o)
                .lines()
                .filter(|l| l.starts_with("Deleting") && !l.contains("signature chain"))
                .count()
        };
        assert_eq!(said(&o), said(&t), "{tag}: the same plan is shown");
    }
}

/// `full --dry-run` and `incremental --dry-run` walk the source but store
/// nothing at the target and nothing in the archive directory.
#[test]
fn dry_run_backups_store_nothing() {
    let work = tmpdir();
    let (src, target) = make_target(work.path());
    let s = src.to_str().unwrap();
    fs::write(src.join("new-file.txt"), b"new since the last backup").unwrap();
    let before = names(&target);
    // One archive root exists (the scratch cache goes beside the real one),
    // one does not (it goes to the temporary directory).
    fs::create_dir_all(work.path().join("c-dry-full")).unwrap();
    for (tag, action) in [("dry-inc", "incremental"), ("dry-full", "full")] {
        let (o, t, ours, _) = twin(
            work.path(),
            &target,
            tag,
            &[action, "--dry-run", s, "{URL}"],
        );
        assert_eq!(
            o.status.code(),
            t.status.code(),
            "{tag}\nours: {}\ntheirs: {}",
            out(&o),
            out(&t)
        );
        assert_eq!(names(&ours), before, "{tag}: nothing reaches the target");
        let cache = work.path().join(format!("c-{tag}"));
        assert!(
            all_files(&cache).is_empty(),
            "{tag}: nothing in the archive dir: {:?}",
            all_files(&cache)
        );
        assert!(stdout(&o).contains("SourceFiles"), "{tag}: {}", out(&o));
        assert!(
            fs::read_dir(&cache).map_or(true, |mut d| d.next().is_none()),
            "{tag}: no scratch directory left behind"
        );
    }
    // A new target stays empty.
    let fresh = work.path().join("fresh");
    let o = run(
        &cairn_as_duplicity(),
        &args(&[
            "full",
            "--dry-run",
            "--archive-dir",
            work.path().join("c-fresh").to_str().unwrap(),
            s,
            &file_url(&fresh),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(all_files(&fresh).is_empty(), "{:?}", all_files(&fresh));
    assert!(all_files(&work.path().join("c-fresh")).is_empty());
}

/// The paths a target's latest backup holds, as duplicity 3.2.1 lists them.
fn listed(target: &Path, cache: &Path) -> Vec<String> {
    let o = ok(
        &dup3(),
        &args(&[
            "list-current-files",
            "--archive-dir",
            cache.to_str().unwrap(),
            &file_url(target),
        ]),
        &[("PASSPHRASE", PW)],
    );
    let mut v: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.len() > 25 && l.as_bytes()[3] == b' ')
        .map(|l| l[25..].to_string())
        .collect();
    v.sort();
    v
}

/// A glob character class matches a non-ASCII character as duplicity 3.2.1
/// matches it (one character, not one byte).
#[test]
fn non_ascii_glob_classes_select_what_duplicity3_selects() {
    let work = tmpdir();
    let src = work.path().join("src");
    for d in ["u/пример", "u/приxер", "u/другое", "u/жук"] {
        fs::create_dir_all(src.join(d)).unwrap();
        fs::write(src.join(d).join("f.txt"), d.as_bytes()).unwrap();
    }
    let s = src.to_str().unwrap();
    let include = format!("{s}/u/при[м]ер");
    let include2 = format!("{s}/u/?ук");
    let exclude_neg = format!("{s}/u/при[!м]ер");
    let run_tool = |tool: &Path, tag: &str| -> Vec<String> {
        let target = work.path().join(format!("t-{tag}"));
        let cache = work.path().join(format!("c-{tag}"));
        ok(
            tool,
            &args(&[
                "full",
                "--no-encryption",
                "--archive-dir",
                cache.to_str().unwrap(),
                "--exclude",
                &exclude_neg,
                "--include",
                &include,
                "--include",
                &include2,
                "--exclude",
                "**",
                s,
                &file_url(&target),
            ]),
            &[],
        );
        listed(&target, &work.path().join(format!("l-{tag}")))
    };
    let theirs = run_tool(&dup3(), "dup3");
    let ours = run_tool(&cairn_as_duplicity(), "cairn");
    assert!(
        theirs.iter().any(|p| p == "u/пример/f.txt"),
        "duplicity 3.2.1 includes it: {theirs:?}"
    );
    assert_eq!(ours, theirs);
}

fn prefix_args() -> Vec<&'static str> {
    vec![
        "--file-prefix=pre-",
        "--file-prefix-archive=a-",
        "--file-prefix-manifest=m-",
        "--file-prefix-signature=s-",
    ]
}

/// `--file-prefix*`: Cairn restores what duplicity wrote with prefixes,
/// and duplicity (0.8 and 3.2.1) restores what Cairn wrote with them.
#[test]
fn file_prefixes_round_trip_with_duplicity() {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 50_000);
    let s = src.to_str().unwrap();
    let backup = |tool: &Path, tag: &str| -> std::path::PathBuf {
        let target = work.path().join(format!("t-{tag}"));
        let cache = work.path().join(format!("c-{tag}"));
        let mut a = vec!["full", "--archive-dir", cache.to_str().unwrap()];
        a.extend(prefix_args());
        let url = file_url(&target);
        a.extend([s, url.as_str()]);
        ok(tool, &args(&a), &[("PASSPHRASE", PW)]);
        target
    };
    let restore = |tool: &Path, target: &Path, tag: &str| -> Tree {
        let dest = work.path().join(format!("r-{tag}"));
        let cache = work.path().join(format!("rc-{tag}"));
        let url = file_url(target);
        let mut a = vec!["restore", "--archive-dir", cache.to_str().unwrap()];
        a.extend(prefix_args());
        a.extend([url.as_str(), dest.to_str().unwrap()]);
        ok(tool, &args(&a), &[("PASSPHRASE", PW)]);
        capture(&dest)
    };
    let expected = capture(&src);
    let theirs = backup(&dup08(), "dup08");
    assert!(names(&theirs).iter().all(|n| n.starts_with("pre-")));
    assert_same_tree(
        &expected,
        &restore(&cairn_as_duplicity(), &theirs, "cairn-of-dup08"),
        "Cairn restoring duplicity's prefixed backup",
    );
    let ours = backup(&cairn_as_duplicity(), "cairn");
    assert_eq!(
        names(&ours)
            .iter()
            .map(|n| n.split("duplicity-").next().unwrap().to_string())
            .collect::<BTreeSet<_>>(),
        names(&theirs)
            .iter()
            .map(|n| n.split("duplicity-").next().unwrap().to_string())
            .collect::<BTreeSet<_>>(),
        "the same prefixes on the same kinds of file"
    );
    for (tool, tag) in [(dup08(), "dup08-of-cairn"), (dup3(), "dup3-of-cairn")] {
        assert_same_tree(
            &expected,
            &restore(&tool, &ours, tag),
            &format!("{tag}: duplicity restoring Cairn's prefixed backup"),
        );
    }
}

/// `--copy-links`: a symlink is stored as what it points to; a dangling one
/// is passed over. Both restored with duplicity, the trees are the same.
#[test]
fn copy_links_stores_link_targets_like_duplicity() {
    let work = tmpdir();
    let src = work.path().join("src");
    let outside = work.path().join("outside");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    fs::write(src.join("d/x"), b"inside").unwrap();
    fs::write(outside.join("o"), b"outside").unwrap();
    std::os::unix::fs::symlink("f", src.join("lf")).unwrap();
    std::os::unix::fs::symlink("d", src.join("ld")).unwrap();
    std::os::unix::fs::symlink("nowhere", src.join("dangling")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("lout")).unwrap();
    let s = src.to_str().unwrap();
    let mut trees = Vec::new();
    for (tool, tag) in [(dup08(), "dup08"), (cairn_as_duplicity(), "cairn")] {
        let target = file_url(&work.path().join(format!("t-{tag}")));
        let cache = work.path().join(format!("c-{tag}"));
        let c = cache.to_str().unwrap();
        ok(
            &tool,
            &args(&[
                "full",
                "--copy-links",
                "--no-encryption",
                "--archive-dir",
                c,
                s,
                &target,
            ]),
            &[],
        );
        let dest = work.path().join(format!("r-{tag}"));
        ok(
            &dup08(),
            &args(&[
                "restore",
                "--no-encryption",
                "--archive-dir",
                work.path().join(format!("rc-{tag}")).to_str().unwrap(),
                &target,
                dest.to_str().unwrap(),
            ]),
            &[],
        );
        trees.push(capture(&dest));
    }
    assert!(trees[1].get(&b"lf"[..]).is_some_and(|n| n.kind == "reg"));
    assert!(trees[1].contains_key(&b"lout/o"[..]));
    assert_same_tree(&trees[0], &trees[1], "--copy-links");
}

/// Runs the same arguments (`{URL}` replaced by a fresh target per tool)
/// through duplicity 3.2.1 and Cairn; asserts the same exit code and
/// returns Cairn's output.
fn same_as_dup3(work: &Path, tag: &str, a: &[&str]) -> std::process::Output {
    let mut res = Vec::new();
    for (tool, who) in [(dup3(), "dup3"), (cairn_as_duplicity(), "cairn")] {
        let url = file_url(&work.join(format!("t-{tag}-{who}")));
        let cache = work.join(format!("c-{tag}-{who}"));
        let mut v: Vec<String> = a.iter().map(|x| x.replace("{URL}", &url)).collect();
        v.extend(["--archive-dir".into(), cache.display().to_string()]);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        res.push(run(&tool, &args(&refs), &[("PASSPHRASE", PW)]));
    }
    let (t, o) = (&res[0], &res[1]);
    assert_eq!(
        o.status.code(),
        t.status.code(),
        "{tag}\nours: {}\ntheirs: {}",
        out(o),
        out(t)
    );
    res.pop().unwrap()
}

fn small_source(work: &Path) -> String {
    let src = work.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    src.to_str().unwrap().to_string()
}

/// `--no-encryption` wins over `--encrypt-key`/`--sign-key`, as in duplicity.
#[test]
fn no_encryption_wins_over_keys() {
    let work = tmpdir();
    let s = small_source(work.path());
    let o = same_as_dup3(
        work.path(),
        "noenc",
        &[
            "full",
            "--no-encryption",
            "--encrypt-key",
            "DEADBEEFDEADBEEF",
            "--sign-key",
            "DEADBEEFDEADBEEF",
            &s,
            "{URL}",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let target = work.path().join("t-noenc-cairn");
    assert!(names(&target).iter().all(|n| !n.ends_with(".gpg")));
}

/// `-v0`: nothing on standard error (volume lines are duplicity's INFO).
#[test]
fn quiet_verbosity_prints_no_volume_lines() {
    let work = tmpdir();
    let s = small_source(work.path());
    let o = same_as_dup3(work.path(), "v0", &["full", "-v0", &s, "{URL}"]);
    assert!(
        o.stderr.is_empty(),
        "-v0 is quiet: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout(&o).contains("SourceFiles"),
        "statistics are still printed"
    );
}

/// A target URL that names no target and a missing source exit 23, as in
/// duplicity 3.2.1 (0.8.22: 23 and 13; Cairn follows 3.2.1).
#[test]
fn bad_url_and_missing_source_exit_23() {
    let work = tmpdir();
    let s = small_source(work.path());
    let o = same_as_dup3(work.path(), "scheme", &["full", &s, "foo://bar/x"]);
    assert_eq!(o.status.code(), Some(23));
    same_as_dup3(work.path(), "empty-file-url", &["full", &s, "file://"]);
    let missing = work.path().join("no-such-source");
    let o = same_as_dup3(
        work.path(),
        "nosrc",
        &["full", missing.to_str().unwrap(), "{URL}"],
    );
    assert_eq!(o.status.code(), Some(23));
}

/// `restore --dry-run` lists the volumes it would read, as duplicity does,
/// and writes nothing; a non-empty destination is refused as without it.
#[test]
fn restore_dry_run_lists_volumes_and_writes_nothing() {
    let work = tmpdir();
    let (_src, target) = make_target(work.path());
    let dest = work.path().join("dest");
    let d = dest.to_str().unwrap();
    let volumes = |o: &std::process::Output| -> Vec<String> {
        stdout(o)
            .lines()
            .skip_while(|l| !l.starts_with("Required volumes to restore:"))
            .skip(1)
            .take_while(|l| l.starts_with('\t'))
            .map(str::to_string)
            .collect()
    };
    for (tag, a) in [
        ("rdry", vec!["restore", "--dry-run", "{URL}", d]),
        (
            "rdry-t",
            vec!["restore", "--dry-run", "-t", "1790003600", "{URL}", d],
        ),
    ] {
        let (o, t, _, _) = twin(work.path(), &target, tag, &a);
        assert_eq!(o.status.code(), Some(0), "{tag}: {}", out(&o));
        assert_eq!(o.status.code(), t.status.code(), "{tag}: {}", out(&t));
        assert!(!volumes(&o).is_empty(), "{tag}: {}", out(&o));
        assert_eq!(volumes(&o), volumes(&t), "{tag}: the same volumes");
        assert!(!dest.exists(), "{tag}: nothing restored");
    }
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("x"), b"x").unwrap();
    let (o, t, _, _) = twin(
        work.path(),
        &target,
        "rdry-nonempty",
        &["restore", "--dry-run", "{URL}", d],
    );
    assert_eq!(o.status.code(), t.status.code(), "{}", out(&o));
}

/// One record of duplicity's machine-readable log: the control line's
/// level, code and extra, the data lines, and the `. ` message lines.
#[derive(Debug, Clone)]
struct LogRecord {
    level: String,
    code: u32,
    extra: String,
    data: Vec<String>,
    message: Vec<String>,
}

fn parse_log(text: &str) -> Vec<LogRecord> {
    let mut recs = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let control = lines.next().unwrap();
        let mut words = control.splitn(3, ' ');
        let level = words.next().unwrap().to_string();
        let code = words.next().unwrap().trim().parse().unwrap();
        let extra = words.next().unwrap_or("").to_string();
        let (mut data, mut message) = (Vec::new(), Vec::new());
        for l in lines {
            match l.strip_prefix(". ") {
                Some(m) => message.push(m.to_string()),
                None => data.push(l.to_string()),
            }
        }
        recs.push(LogRecord {
            level,
            code,
            extra,
            data,
            message,
        });
    }
    recs
}

/// Runs the same commands through duplicity 3.2.1 and Cairn, each tool with
/// its own target (`{URL}`), cache and log file (`{LOG}`), and returns each
/// tool's last exit code and log records (3.2.1's first).
fn logs_of(work: &Path, tag: &str, steps: &[&[&str]]) -> Vec<(Option<i32>, Vec<LogRecord>)> {
    let mut res = Vec::new();
    for (tool, who) in [(dup3(), "dup3"), (cairn_as_duplicity(), "cairn")] {
        let url = file_url(&work.join(format!("t-{tag}-{who}")));
        let cache = work.join(format!("c-{tag}-{who}"));
        let log = work.join(format!("log-{tag}-{who}"));
        let mut code = None;
        for step in steps {
            let _ = fs::remove_file(&log);
            let mut v: Vec<String> = step
                .iter()
                .map(|x| {
                    x.replace("{URL}", &url)
                        .replace("{LOG}", log.to_str().unwrap())
                })
                .collect();
            v.extend(["--archive-dir".into(), cache.display().to_string()]);
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            code = run(&tool, &args(&refs), &[("PASSPHRASE", PW)])
                .status
                .code();
        }
        let text = fs::read_to_string(&log).unwrap_or_default();
        res.push((code, parse_log(&text)));
    }
    res
}

/// The (level, code) pairs of the records front-ends act on: progress,
/// collection status, file lists, warnings and errors (generic notices
/// and debug lines differ in number between the tools).
fn key_records(recs: &[LogRecord]) -> BTreeSet<(String, u32)> {
    recs.iter()
        .filter(|r| r.level == "ERROR" || r.level == "WARNING" || r.level == "INFO" && r.code > 1)
        .filter(|r| !(r.level == "INFO" && (4..=6).contains(&r.code)))
        .map(|r| (r.level.clone(), r.code))
        .collect()
}

/// `--log-file` gets duplicity's machine-readable records, as 3.2.1 writes
/// them: progress and statistics for a backup, the collection-status
/// record with its chain lines, file lists, and errors with duplicity's
/// codes and class names.
#[test]
fn log_file_records_match_duplicity3() {
    let work = tmpdir();
    let s = small_source(work.path());
    let full = [
        "full",
        "-v5",
        "--current-time",
        "1790000000",
        "--log-file",
        "{LOG}",
        &s,
        "{URL}",
    ];
    let logs = logs_of(work.path(), "bu", &[&full]);
    let (dup, ours) = (&logs[0], &logs[1]);
    assert_eq!(ours.0, Some(0));
    assert_eq!(
        key_records(&ours.1),
        key_records(&dup.1),
        "backup: {:#?}",
        ours.1
    );
    assert!(key_records(&ours.1).contains(&("INFO".into(), 2)));
    let stats = |recs: &[LogRecord]| {
        recs.iter().any(|r| {
            r.level == "NOTICE"
                && r.message
                    .first()
                    .is_some_and(|m| m.contains("[ Backup Statistics ]"))
        })
    };
    assert!(stats(&dup.1) && stats(&ours.1), "statistics: {:#?}", ours.1);

    let status = ["collection-status", "--log-file", "{LOG}", "{URL}"];
    let logs = logs_of(work.path(), "st", &[&full, &status]);
    let chains = |recs: &[LogRecord]| -> Vec<String> {
        recs.iter()
            .filter(|r| r.level == "INFO" && r.code == 3)
            .flat_map(|r| r.data.clone())
            .filter(|l| !l.starts_with("backend ") && !l.starts_with("archive-dir "))
            .collect()
    };
    assert_eq!(chains(&logs[1].1), chains(&logs[0].1), "{:#?}", logs[1].1);
    assert!(
        chains(&logs[1].1).contains(&" full 20260921T141320Z 1 enc".to_string()),
        "{:#?}",
        logs[1].1
    );

    let list = ["list-current-files", "--log-file", "{LOG}", "{URL}"];
    let logs = logs_of(work.path(), "ls", &[&full, &list]);
    let files = |recs: &[LogRecord]| -> Vec<String> {
        recs.iter()
            .filter(|r| r.level == "INFO" && r.code == 10)
            .map(|r| r.extra.clone())
            .collect()
    };
    assert!(!files(&logs[1].1).is_empty());
    assert_eq!(files(&logs[1].1), files(&logs[0].1));

    for (tag, steps) in [
        (
            "cle",
            vec![vec![
                "full",
                "--log-file",
                "{LOG}",
                "--volsize",
                "abc",
                &s,
                "{URL}",
            ]],
        ),
        (
            "url",
            vec![vec!["full", "--log-file", "{LOG}", &s, "foo://bar/x"]],
        ),
    ] {
        let steps: Vec<&[&str]> = steps.iter().map(Vec::as_slice).collect();
        let logs = logs_of(work.path(), tag, &steps);
        assert_eq!(logs[1].0, logs[0].0, "{tag}: exit codes");
        let errors = |recs: &[LogRecord]| -> Vec<(u32, String)> {
            recs.iter()
                .filter(|r| r.level == "ERROR")
                .map(|r| (r.code, r.extra.clone()))
                .collect()
        };
        assert_eq!(
            errors(&logs[1].1),
            errors(&logs[0].1),
            "{tag}: {:#?}",
            logs[1].1
        );
        assert!(!errors(&logs[1].1).is_empty(), "{tag}");
    }
}

/// `--log-fd N` writes the same records to an inherited descriptor; one
/// that is not open is refused by name.
#[test]
fn log_fd_writes_records_to_the_descriptor() {
    use std::os::unix::process::CommandExt;
    let work = tmpdir();
    let s = small_source(work.path());
    let log = work.path().join("fd-log");
    let f = fs::File::create(&log).unwrap();
    let url = file_url(&work.path().join("t"));
    let cache = work.path().join("c");
    let mut cmd = std::process::Command::new(cairn_as_duplicity());
    cmd.args([
        "full",
        "--log-fd",
        "3",
        &s,
        &url,
        "--archive-dir",
        cache.to_str().unwrap(),
    ])
    .env("PASSPHRASE", PW);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: dup2 in the child before exec, on descriptors it owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let recs = parse_log(&fs::read_to_string(&log).unwrap());
    assert!(
        recs.iter()
            .any(|r| r.level == "NOTICE" && r.message.iter().any(|m| m.contains("SourceFiles"))),
        "{recs:#?}"
    );
    let o = run(
        &cairn_as_duplicity(),
        &args(&["full", "--log-fd", "9", &s, &url]),
        &[("PASSPHRASE", PW)],
    );
    assert_eq!(o.status.code(), Some(23));
    assert!(out(&o).contains("--log-fd 9"), "{}", out(&o));
}

/// Runs the same commands through duplicity 3.2.1 and Cairn, each with its
/// own target (`{URL}`) and cache; returns each tool's outputs and target
/// directory (3.2.1's first).
fn steps_both(
    work: &Path,
    tag: &str,
    steps: &[Vec<String>],
) -> Vec<(Vec<std::process::Output>, std::path::PathBuf)> {
    steps_both_with(work, tag, steps, &|_| {})
}

/// As [`steps_both`], calling `before(i)` before step `i` of each tool
/// (to put the source in the state that step is to see).
fn steps_both_with(
    work: &Path,
    tag: &str,
    steps: &[Vec<String>],
    before: &dyn Fn(usize),
) -> Vec<(Vec<std::process::Output>, std::path::PathBuf)> {
    let mut res = Vec::new();
    for (tool, who) in [(dup3(), "dup3"), (cairn_as_duplicity(), "cairn")] {
        let target = work.join(format!("t-{tag}-{who}"));
        let url = file_url(&target);
        let cache = work.join(format!("c-{tag}-{who}"));
        let outs = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                before(i);
                let mut v: Vec<String> = step.iter().map(|x| x.replace("{URL}", &url)).collect();
                v.extend(["--archive-dir".into(), cache.display().to_string()]);
                let refs: Vec<&str> = v.iter().map(String::as_str).collect();
                run(&tool, &args(&refs), &[("PASSPHRASE", PW)])
            })
            .collect();
        res.push((outs, target));
    }
    res
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The paths `list-current-files` prints (time stamps dropped).
fn listed_paths(o: &std::process::Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| l.len() > 25 && l.as_bytes()[3] == b' ')
        .map(|l| l[25..].to_string())
        .collect()
}

/// duplicity 3.x's selection modes (`--filter-literal`, `-regexp`,
/// `-ignorecase`, `-globbing`, `-strictcase`) and `--files-from` select
/// what 3.2.1 selects; their misuse exits with 3.2.1's codes.
#[test]
fn filter_modes_and_files_from_select_what_duplicity3_selects() {
    let work = tmpdir();
    let src = work.path().join("src");
    for f in [
        "Keep.txt", "keep.TXT", "drop.tmp", "a/b/c", "a/x", "b[1]/f", "other/y",
    ] {
        let p = src.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, f).unwrap();
    }
    edge::fix_times(&src, T0);
    let s = src.to_str().unwrap();
    let list = work.path().join("files-from");
    fs::write(&list, "a/b/c\nb[1]\n").unwrap();
    let l = list.to_str().unwrap();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "literal",
            strings(&[
                "--filter-literal",
                "--include",
                &format!("{s}/b[1]"),
                "--filter-globbing",
                "--exclude",
                "**",
            ]),
        ),
        (
            "regexp",
            strings(&[
                "--filter-regexp",
                "--exclude",
                r"\.tmp$",
                "--include",
                "/a/",
                "--exclude",
                "/other",
            ]),
        ),
        (
            "ignorecase",
            strings(&[
                "--filter-ignorecase",
                "--include",
                &format!("{s}/keep*"),
                "--exclude",
                "**",
            ]),
        ),
        ("files-from", strings(&["--files-from", l])),
        (
            "files-from-excl",
            strings(&["--files-from", l, "--exclude", &format!("{s}/a/b/c")]),
        ),
    ];
    for (tag, sel) in cases {
        let mut full = strings(&["full", "--no-encryption", "--current-time", "1790000000"]);
        full.extend(sel);
        full.extend(strings(&[s, "{URL}"]));
        let list = strings(&["list-current-files", "--no-encryption", "{URL}"]);
        let r = steps_both(work.path(), tag, &[full, list]);
        let (d, c) = (&r[0].0, &r[1].0);
        assert_eq!(c[0].status.code(), Some(0), "{tag}: {}", out(&c[0]));
        assert_eq!(d[0].status.code(), Some(0), "{tag}: {}", out(&d[0]));
        assert!(!listed_paths(&d[1]).is_empty(), "{tag}: {}", out(&d[1]));
        assert_eq!(listed_paths(&c[1]), listed_paths(&d[1]), "{tag}");
    }
    let empty = work.path().join("empty-list");
    fs::write(&empty, "").unwrap();
    let absolute = work.path().join("absolute-list");
    fs::write(&absolute, "/etc/passwd\n").unwrap();
    for (tag, sel, code) in [
        (
            "trailing",
            strings(&["--exclude", "**", "--filter-literal"]),
            71,
        ),
        (
            "redundant",
            strings(&["--filter-strictcase", "--exclude", "**"]),
            70,
        ),
        (
            "absolute",
            strings(&["--files-from", absolute.to_str().unwrap()]),
            72,
        ),
        (
            "empty",
            strings(&["--files-from", empty.to_str().unwrap()]),
            73,
        ),
    ] {
        let mut full = strings(&["full", "--no-encryption"]);
        full.extend(sel);
        full.extend(strings(&[s, "{URL}"]));
        let r = steps_both(work.path(), tag, &[full]);
        assert_eq!(
            r[0].0[0].status.code(),
            Some(code),
            "{tag}: {}",
            out(&r[0].0[0])
        );
        assert_eq!(
            r[1].0[0].status.code(),
            Some(code),
            "{tag}: {}",
            out(&r[1].0[0])
        );
    }
}

/// `--skip-if-no-change` stores no incremental when nothing changed (a
/// changed directory mode is a change), and `--full-if-n-inc` starts a new
/// chain: the same files at the target as 3.2.1 leaves.
#[test]
fn skip_if_no_change_and_full_if_n_inc_store_what_duplicity3_stores() {
    let work = tmpdir();
    let s = small_source(work.path());
    fs::create_dir_all(work.path().join("src/d")).unwrap();
    edge::fix_times(&work.path().join("src"), T0);
    let at = |t: i64, a: &[&str]| -> Vec<String> {
        let mut v = strings(a);
        v.extend(strings(&[
            "--no-encryption",
            "--current-time",
            &t.to_string(),
            &s,
            "{URL}",
        ]));
        v
    };
    let skip = ["incremental", "--skip-if-no-change"];
    let mut steps = vec![at(T0, &["full"]), at(T0 + 10, &skip)];
    let r = steps_both(work.path(), "skip", &steps);
    for (outs, _) in &r {
        assert!(
            outs.iter().all(|o| o.status.success()),
            "{}",
            out(outs.last().unwrap())
        );
    }
    assert_eq!(names(&r[1].1), names(&r[0].1), "nothing changed");
    assert_eq!(backup_times(&r[1].1).len(), 1, "{:?}", names(&r[1].1));
    // A directory's mode is a change too (from step 2 on).
    steps.push(at(T0 + 20, &skip));
    steps.push(at(T0 + 30, &["--full-if-n-inc", "1"]));
    let dir = work.path().join("src/d");
    let mode = |i: usize| {
        let m = if i >= 2 { 0o700 } else { 0o755 };
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    };
    let r = steps_both_with(work.path(), "skip2", &steps, &mode);
    for (outs, _) in &r {
        assert!(
            outs.iter().all(|o| o.status.success()),
            "{}",
            out(outs.last().unwrap())
        );
    }
    assert_eq!(
        names(&r[1].1),
        names(&r[0].1),
        "a changed mode, then a full"
    );
    assert!(
        names(&r[1].1)
            .iter()
            .any(|n| n.starts_with("duplicity-inc."))
    );
    assert_eq!(
        names(&r[1].1)
            .iter()
            .filter(|n| n.starts_with("duplicity-full.") && n.contains("manifest"))
            .count(),
        2
    );
}

/// A single regular file as the backup source: backed up (full, then an
/// incremental of its change) and given back by a restore, by Cairn and by
/// duplicity 3.2.1 from each other's targets.
#[test]
fn a_single_file_source_backs_up_and_restores() {
    let work = tmpdir();
    let file = work.path().join("file.bin");
    let f = file.to_str().unwrap();
    let versions = [random_bytes(300_000, 1), {
        let mut v = random_bytes(300_000, 1);
        v[1000..1100].fill(7);
        v
    }];
    let step =
        |t: i64, action: &str| strings(&[action, "--current-time", &t.to_string(), f, "{URL}"]);
    let steps = [step(T0, "full"), step(T0 + 60, "incremental")];
    let write = |i: usize| {
        fs::write(&file, &versions[i]).unwrap();
        edge::set_mtime(&file, T0 + i as i64);
    };
    let r = steps_both_with(work.path(), "onefile", &steps, &write);
    for (outs, _) in &r {
        for o in outs {
            assert_eq!(o.status.code(), Some(0), "{}", out(o));
        }
    }
    assert_eq!(names(&r[1].1), names(&r[0].1), "the same sets");
    for (i, (_, target)) in r.iter().enumerate() {
        for (j, tool) in [dup3(), cairn_as_duplicity()].iter().enumerate() {
            for (k, t) in [T0, T0 + 60].iter().enumerate() {
                let dest = work.path().join(format!("r-{i}-{j}-{k}"));
                let cache = work.path().join(format!("rc-{i}-{j}-{k}"));
                let o = run(
                    tool,
                    &args(&[
                        "restore",
                        "-t",
                        &t.to_string(),
                        "--archive-dir",
                        cache.to_str().unwrap(),
                        &file_url(target),
                        dest.to_str().unwrap(),
                    ]),
                    &[("PASSPHRASE", PW)],
                );
                assert_eq!(o.status.code(), Some(0), "{}", out(&o));
                assert!(
                    fs::read(&dest).unwrap() == versions[k],
                    "target {i}, tool {j}, time {k}"
                );
            }
        }
    }
}

/// Without PASSPHRASE and without a terminal to ask on, the message fits
/// the command: a restore speaks of the archive, a backup of the new one.
#[test]
fn missing_passphrase_messages_fit_the_command() {
    let work = tmpdir();
    let s = small_source(work.path());
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("c");
    let c = cache.to_str().unwrap();
    ok(
        &cairn_as_duplicity(),
        &args(&["full", "--archive-dir", c, &s, &url]),
        &[("PASSPHRASE", PW)],
    );
    let dest = work.path().join("r");
    let o = run(
        &cairn_as_duplicity(),
        &args(&["restore", "--archive-dir", c, &url, dest.to_str().unwrap()]),
        &[],
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(31), "{t}");
    assert!(
        t.contains("encrypted with a passphrase") && t.contains("PASSPHRASE"),
        "{t}"
    );
    assert!(
        !t.contains("new backup"),
        "a restore makes no new backup: {t}"
    );
    let o = run(
        &cairn_as_duplicity(),
        &args(&["full", "--archive-dir", c, &s, &url]),
        &[],
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(31), "{t}");
    assert!(
        t.contains("encrypt the new backup") && t.contains("PASSPHRASE"),
        "{t}"
    );
}

/// Runs a duplicity command line on a pseudo-terminal (util-linux
/// `script`), typing `lines` one by one; returns what the terminal showed.
fn on_terminal(a: &[&str], lines: &[&str]) -> String {
    use std::io::Write;
    let cmd = std::iter::once(cairn_as_duplicity().display().to_string())
        .chain(a.iter().map(|x| format!("'{x}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("PASSPHRASE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let mut stdin = child.stdin.take().unwrap();
    for l in lines {
        std::thread::sleep(std::time::Duration::from_millis(700));
        writeln!(stdin, "{l}").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).replace('\r', "")
}

/// On a terminal, as duplicity: a backup asks for the passphrase twice
/// (again if the two differ), a restore once.
#[test]
fn passphrase_is_asked_on_a_terminal() {
    let work = tmpdir();
    let s = small_source(work.path());
    let url = file_url(&work.path().join("t"));
    let c = work.path().join("c");
    let c = c.to_str().unwrap();
    let shown = on_terminal(
        &["full", "--archive-dir", c, &s, &url],
        &["one", "two", "pw", "pw"],
    );
    assert!(
        shown.contains("Retype passphrase for decryption to confirm:"),
        "{shown}"
    );
    assert!(
        shown.contains("First and second passphrases do not match!"),
        "{shown}"
    );
    assert!(shown.contains("SourceFiles"), "{shown}");
    let dest = work.path().join("r");
    let shown = on_terminal(
        &["restore", "--archive-dir", c, &url, dest.to_str().unwrap()],
        &["pw"],
    );
    assert_eq!(
        shown.matches("GnuPG passphrase for decryption:").count(),
        1,
        "{shown}"
    );
    assert_eq!(fs::read(dest.join("a")).unwrap(), b"a", "{shown}");
}

/// `--jsonstat`: the statistics file duplicity 3.2.1 stores beside the
/// manifest, under the same name, with the same counts.
#[test]
fn jsonstat_stores_the_statistics_file_duplicity3_stores() {
    let work = tmpdir();
    let s = small_source(work.path());
    fs::create_dir_all(work.path().join("src/d")).unwrap();
    fs::write(work.path().join("src/d/f"), b"f").unwrap();
    edge::fix_times(&work.path().join("src"), T0);
    let step = |t: i64, action: &str| {
        strings(&[
            action,
            "--jsonstat",
            "--no-encryption",
            "--current-time",
            &t.to_string(),
            &s,
            "{URL}",
        ])
    };
    let write = |i: usize| {
        let a = work.path().join("src/a");
        fs::write(&a, if i == 0 { &b"a"[..] } else { b"changed" }).unwrap();
        edge::set_mtime(&a, T0 + i as i64);
    };
    let r = steps_both_with(
        work.path(),
        "json",
        &[step(T0, "full"), step(T0 + 60, "incremental")],
        &write,
    );
    for (outs, _) in &r {
        for o in outs {
            assert_eq!(o.status.code(), Some(0), "{}", out(o));
        }
    }
    assert_eq!(
        names(&r[1].1),
        names(&r[0].1),
        "the same files, .jsonstat included"
    );
    let stats = |target: &Path, name: &str| -> serde_json::Value {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(fs::File::open(target.join(name)).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let jsonstats: Vec<String> = names(&r[0].1)
        .into_iter()
        .filter(|n| n.contains(".jsonstat"))
        .collect();
    assert_eq!(jsonstats.len(), 2, "{jsonstats:?}");
    for name in &jsonstats {
        let (d, c) = (stats(&r[0].1, name), stats(&r[1].1, name));
        // NewFiles/ChangedFiles: Cairn counts regular files only, duplicity
        // every entry (the statistics block differs the same way).
        for key in ["SourceFiles", "DeletedFiles", "DeltaEntries", "Errors"] {
            assert_eq!(c[key], d[key], "{name}: {key}\nours: {c:#}\ntheirs: {d:#}");
        }
        for key in ["action", "time_full_bkp", "no_of_inc"] {
            assert_eq!(
                c["backup_meta"][key], d["backup_meta"][key],
                "{name}: {key}"
            );
        }
    }
}
