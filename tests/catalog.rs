//! The catalog: what a backup records equals what a rebuild from the target
//! finds, for chains written by Cairn and by stock duplicity 0.8 and 3.x;
//! the tree it gives for every point in time is what a real restore of that
//! point produces; a power cut while it is written leaves a sound file; a
//! damaged, missing, unwritable or full catalog never costs a backup; sets
//! removed behind its back disappear from it.

mod common;

use cairn::archive::index::Index;
use cairn::catalog::{Catalog, Change, Version};
use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

const PASS: (&str, &str) = ("PASSPHRASE", "catalog test passphrase");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A target, its archive dir and the catalog inside it.
struct Target {
    url: String,
    dir: PathBuf,
    archive: PathBuf,
}

impl Target {
    fn new(work: &Path, name: &str) -> Target {
        let dir = work.join(name);
        Target {
            url: file_url(&dir),
            archive: work.join(format!("{name}-cache")),
            dir,
        }
    }

    /// `cairn CMD URL --archive-dir A [extra…]`.
    fn cairn(&self, cmd: &[&str], extra: &[&str]) -> Output {
        let mut a: Vec<&str> = cmd.to_vec();
        a.push(&self.url);
        a.extend(["--archive-dir", self.archive.to_str().unwrap()]);
        a.extend(extra);
        run(&cairn(), &args(&a), &[PASS])
    }

    fn ok(&self, cmd: &[&str], extra: &[&str]) -> Output {
        let o = self.cairn(cmd, extra);
        assert!(o.status.success(), "cairn {cmd:?} {extra:?}: {}", text(&o));
        o
    }

    fn backup(&self, src: &Path, extra: &[&str]) {
        let mut a = vec!["backup", src.to_str().unwrap(), &self.url, "--quiet"];
        a.extend(["--archive-dir", self.archive.to_str().unwrap()]);
        a.extend(extra);
        let o = ok(&cairn(), &args(&a), &[PASS]);
        assert!(
            !text(&o).contains("catalog could not"),
            "backup: {}",
            text(&o)
        );
    }

    /// The catalog file (there is one backup name in the archive dir).
    fn catalog_path(&self) -> PathBuf {
        let name = fs::read_dir(&self.archive)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        name.path().join(cairn::catalog::FILE_NAME)
    }

    fn catalog(&self) -> Catalog {
        Catalog::open(&self.catalog_path()).unwrap()
    }

    fn times(&self) -> Vec<i64> {
        backup_times(&self.dir)
            .iter()
            .map(|t| cairn::time::from_string(t).unwrap())
            .collect()
    }

    /// `cairn catalog check`: agrees, and (with `current`) nothing left to index.
    fn check(&self, current: bool) {
        let o = self.ok(&["catalog", "check"], &[]);
        let out = text(&o);
        assert!(out.contains("agrees with the target"), "{out}");
        if current {
            assert!(!out.contains("not indexed yet"), "{out}");
        }
    }

    fn ls(&self, t: i64, catalog: bool) -> String {
        let ts = t.to_string();
        let mut extra = vec!["--time", ts.as_str()];
        if !catalog {
            extra.push("--no-catalog");
        }
        String::from_utf8_lossy(&self.ok(&["ls"], &extra).stdout).into_owned()
    }
}

fn sleep_past_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

/// The catalog's tree at `t`, as restored trees are captured.
fn catalog_tree(cat: &Catalog, url: &str, t: i64) -> Vec<(Vec<u8>, Version)> {
    let mut out = Vec::new();
    cat.walk(url, t, &Index::root(), |p, v| {
        let key = if p.is_root() {
            b".".to_vec()
        } else {
            p.to_bytes()
        };
        out.push((key, v.clone()));
        Ok(())
    })
    .unwrap();
    out
}

/// Compares the catalog's tree with a restored one: names, types, modes,
/// owners, times, link targets, and sizes (exact, or within the bound a
/// rebuild knows).
fn assert_matches_restore(got: &[(Vec<u8>, Version)], restored: &Tree, what: &str) {
    let mut problems = Vec::new();
    for (path, v) in got {
        let Some(n) = restored.get(path) else {
            problems.push(format!(
                "{} is in the catalog, not in the restore",
                String::from_utf8_lossy(path)
            ));
            continue;
        };
        let size_ok = v.size >= n.size && v.size - v.slack <= n.size;
        let same = v.kind.as_deref() == Some(n.kind)
            && v.mode == n.mode
            && v.uid == u64::from(n.uid)
            && v.gid == u64::from(n.gid)
            && n.mtime.is_none_or(|m| m == v.mtime)
            && v.link == n.link
            && size_ok;
        if !same {
            problems.push(format!(
                "{}: catalog {v:?}, restored {n:?}",
                String::from_utf8_lossy(path)
            ));
        }
    }
    for k in restored.keys() {
        if !got.iter().any(|(p, _)| p == k) {
            problems.push(format!(
                "{} was restored but is not in the catalog",
                String::from_utf8_lossy(k)
            ));
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

/// Edge-case chain by Cairn: full, then the three change sets (deletions,
/// type changes, mode/owner/time-only changes, names coming back).
fn cairn_chain(work: &Path) -> (Target, PathBuf) {
    let src = work.join("src");
    edge::build(&src, 600_000);
    let t = Target::new(work, "t");
    t.backup(&src, &[]);
    for step in 1..=3 {
        sleep_past_second();
        edge::mutate(&src, step);
        t.backup(&src, &[]);
    }
    (t, src)
}

#[test]
fn what_backups_record_equals_a_rebuild_and_every_restore() {
    let work = tmpdir();
    let (t, _src) = cairn_chain(work.path());
    let times = t.times();
    assert_eq!(times.len(), 4);
    // Recorded as written; nothing left to index.
    t.check(true);
    let recorded = t.catalog();
    assert_eq!(recorded.sets(&t.url).unwrap().len(), 4);
    assert!(
        recorded
            .sets(&t.url)
            .unwrap()
            .iter()
            .all(|s| s.writer.as_deref() == Some("cairn"))
    );
    let before: Vec<_> = times
        .iter()
        .map(|&at| catalog_tree(&recorded, &t.url, at))
        .collect();
    drop(recorded);
    // The same tree, point by point, as a real restore of that point.
    for (i, &at) in times.iter().enumerate() {
        let dest = work.path().join(format!("restored-{i}"));
        let ts = at.to_string();
        let dest_s = dest.to_str().unwrap();
        ok(
            &cairn(),
            &args(&[
                "restore",
                "--time",
                &ts,
                &t.url,
                dest_s,
                "--archive-dir",
                t.archive.to_str().unwrap(),
            ]),
            &[PASS],
        );
        let restored = capture(&dest);
        assert_matches_restore(
            &before[i],
            &restored,
            &format!("recorded catalog at set {i}"),
        );
        // Recorded sizes are exact.
        assert!(before[i].iter().all(|(_, v)| v.slack == 0));
        // `cairn ls` from the catalog prints what it prints from the signatures.
        assert_eq!(t.ls(at, true), t.ls(at, false), "ls at set {i}");
    }
    // A rebuild from the target alone finds the same, sizes to a block.
    let o = t.ok(&["catalog", "rebuild"], &[]);
    assert!(text(&o).contains("4 sets indexed"), "{}", text(&o));
    t.check(true);
    let rebuilt = t.catalog();
    assert!(
        rebuilt
            .sets(&t.url)
            .unwrap()
            .iter()
            .all(|s| s.writer.is_none())
    );
    for (i, &at) in times.iter().enumerate() {
        let restored = capture(&work.path().join(format!("restored-{i}")));
        let after = catalog_tree(&rebuilt, &t.url, at);
        assert_matches_restore(&after, &restored, &format!("rebuilt catalog at set {i}"));
        assert_eq!(
            t.ls(at, true),
            t.ls(at, false),
            "ls after rebuild at set {i}"
        );
    }
    // The run log survives the rebuild.
    assert_eq!(
        rebuilt
            .runs(10)
            .unwrap()
            .iter()
            .filter(|r| r.kind == "backup")
            .count(),
        4
    );
}

#[test]
fn history_find_and_changes_answer_from_the_catalog() {
    let work = tmpdir();
    let (t, _src) = cairn_chain(work.path());
    let cat = t.catalog();
    let ix = |p: &str| Index::parse(p.as_bytes()).unwrap();
    // notes.txt: new in the full, deleted in step 1, back in step 3.
    let h = cat.history(&t.url, &ix("text/notes.txt")).unwrap();
    let changes: Vec<Change> = h.iter().map(|(_, v)| v.change).collect();
    assert_eq!(
        changes,
        [Change::New, Change::Deleted, Change::New],
        "{h:?}"
    );
    // small.txt: a file, then a directory (a type change is stored whole).
    let h = cat.history(&t.url, &ix("small.txt")).unwrap();
    assert_eq!(h.last().unwrap().1.change, Change::Snapshot);
    assert_eq!(h.last().unwrap().1.kind.as_deref(), Some("dir"));
    // big.bin: changed as deltas, and shrunk in step 3.
    let h = cat.history(&t.url, &ix("big.bin")).unwrap();
    assert_eq!(
        h.iter().filter(|(_, v)| v.change == Change::Delta).count(),
        2,
        "{h:?}"
    );
    assert!(h[2].1.size < h[1].1.size);
    // The CLI says the same, one line per version.
    let o = t.ok(&["history"], &["text/notes.txt"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().nth(1).unwrap().contains("deleted"), "{out}");
    let o = t.cairn(&["history"], &["no/such/path"]);
    assert_eq!(o.status.code(), Some(19), "{}", text(&o));
    // find: names by glob or word, latest version, sorted.
    let found = cat.find(&t.url, "*.txt", 1000).unwrap();
    let names: Vec<String> = found.iter().map(|f| f.path.to_string()).collect();
    assert!(names.contains(&"text/notes.txt".to_string()), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
    let deep = cat.find(&t.url, "DEEP", 10).unwrap();
    assert!(
        deep.iter().any(|f| f.path.to_string() == "tree/deep"),
        "{deep:?}"
    );
    // changes of step 1: the deleted tree and the new files, nothing unchanged.
    let sets = cat.sets(&t.url).unwrap();
    let mut seen = Vec::new();
    cat.changes(&sets[1], |p, v| {
        seen.push((p.to_string(), v.change));
        Ok(())
    })
    .unwrap();
    assert!(
        seen.contains(&("added/one.txt".into(), Change::New)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("text/notes.txt".into(), Change::Deleted)),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|(p, _)| p == "small.txt"), "{seen:?}");
    assert_eq!(
        seen.len() as u64,
        sets[1].new_paths + sets[1].changed_paths + sets[1].deleted_paths
    );
    // list_dir: a directory at two points in time.
    let at0 = cat.list_dir(&t.url, sets[0].end_time, &ix("text")).unwrap();
    let at1 = cat.list_dir(&t.url, sets[1].end_time, &ix("text")).unwrap();
    assert!(at0.iter().any(|e| e.name == b"notes.txt"));
    assert!(!at1.iter().any(|e| e.name == b"notes.txt"));
    let err = cat
        .list_dir(&t.url, sets[1].end_time, &ix("tree"))
        .unwrap_err();
    assert!(
        err.to_string().contains("not a directory in the backup"),
        "{err}"
    );
    let err = cat.list_dir(&t.url, 1000, &Index::root()).unwrap_err();
    assert!(err.to_string().contains("no backup at or before"), "{err}");
}

/// A chain written by stock duplicity: the catalog indexes it from the
/// target (its own archive dir is empty), and lists what duplicity lists.
fn duplicity_chain(dup: &Path) {
    let work = tmpdir();
    let src = work.path().join("src");
    edge::build(&src, 600_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    let dup_cache = work.path().join("dup-cache");
    let base = 1_790_000_000i64;
    for step in 0..=3u32 {
        if step > 0 {
            edge::mutate(&src, step);
        }
        let when = (base + i64::from(step) * 86_400).to_string();
        ok(
            dup,
            &args(&[
                if step == 0 { "full" } else { "incremental" },
                "--current-time",
                &when,
                "--archive-dir",
                dup_cache.to_str().unwrap(),
                src.to_str().unwrap(),
                &url,
            ]),
            &[PASS],
        );
    }
    let t = Target::new(work.path(), "t");
    for step in 0..=3u32 {
        let at = base + i64::from(step) * 86_400;
        let listed = t.ls(at, true);
        let theirs = ok(
            dup,
            &args(&[
                "list-current-files",
                "--time",
                &at.to_string(),
                "--archive-dir",
                dup_cache.to_str().unwrap(),
                &url,
            ]),
            &[PASS],
        );
        let theirs: String = String::from_utf8_lossy(&theirs.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("Local and Remote")
                    && !l.starts_with("Last full backup")
                    && !l.starts_with("Duplicity backup complete")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let differ: Vec<_> = listed
            .lines()
            .zip(theirs.lines())
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        assert!(
            differ.is_empty() && listed.lines().count() == theirs.lines().count(),
            "set {step}: {differ:?}"
        );
        assert_eq!(listed, t.ls(at, false), "set {step}");
    }
    t.check(true);
    let cat = t.catalog();
    let sets = cat.sets(&t.url).unwrap();
    assert_eq!(sets.len(), 4);
    assert!(sets.iter().all(|s| s.indexed && s.writer.is_none()));
    assert!(sets[1].deleted_paths > 0 && sets[2].changed_paths > 0);
}

#[test]
fn chains_by_duplicity_0_8_are_indexed() {
    duplicity_chain(&dup08());
}

#[test]
fn chains_by_duplicity_3_are_indexed() {
    duplicity_chain(&dup3());
}

/// A small chain written without the catalog, for the kill and damage tests.
fn small_chain(work: &Path) -> (Target, PathBuf) {
    let src = work.join("src");
    for d in 0..6 {
        for f in 0..40 {
            let p = src.join(format!("d{d}/f{f}.txt"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, format!("file {d}/{f}\n").repeat(f + 1)).unwrap();
        }
    }
    let t = Target::new(work, "t");
    t.backup(&src, &["--no-catalog"]);
    for round in 1..=2 {
        sleep_past_second();
        for f in 0..10 {
            fs::write(
                src.join(format!("d{round}/f{f}.txt")),
                format!("round {round}\n"),
            )
            .unwrap();
        }
        fs::remove_file(src.join(format!("d3/f{round}.txt"))).unwrap();
        t.backup(&src, &["--no-catalog"]);
    }
    (t, src)
}

fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_power_cut_while_the_catalog_is_written_leaves_a_sound_file() {
    let work = tmpdir();
    let (t, src) = small_chain(work.path());
    let expected: Vec<String> = t.times().iter().map(|&at| t.ls(at, false)).collect();
    let path = t.catalog_path();
    // Rows the sync writes: one per path of each set.
    let total = {
        t.ok(&["ls"], &[]);
        let cat = t.catalog();
        let n: u64 = cat
            .sets(&t.url)
            .unwrap()
            .iter()
            .map(|s| s.new_paths + s.changed_paths + s.deleted_paths)
            .sum();
        n as usize
    };
    let mut kills = 0;
    for at in [1, 2, 3, 40, 120, 241, 242, 243, 250, total - 1, total] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let env_at = at.to_string();
        let o = run(
            &cairn(),
            &args(&["ls", &t.url, "--archive-dir", t.archive.to_str().unwrap()]),
            &[PASS, ("CAIRN_KILL_AT_CATALOG_ROW", &env_at)],
        );
        assert_eq!(o.status.signal(), Some(9), "row {at}: {}", text(&o));
        kills += 1;
        assert_eq!(integrity(&path), "ok", "after a kill at row {at}");
        // What was committed agrees with the target; the rest is indexed on next use.
        t.check(false);
        for (i, &when) in t.times().iter().enumerate() {
            assert_eq!(
                t.ls(when, true),
                expected[i],
                "after a kill at row {at}, set {i}"
            );
        }
        t.check(true);
    }
    assert_eq!(kills, 11);
    // Killed while a backup records its set: the set is complete at the
    // target, and the catalog catches up from it.
    sleep_past_second();
    fs::write(src.join("d0/late.txt"), b"late\n").unwrap();
    let o = run(
        &cairn(),
        &args(&[
            "backup",
            src.to_str().unwrap(),
            &t.url,
            "--quiet",
            "--archive-dir",
            t.archive.to_str().unwrap(),
        ]),
        &[PASS, ("CAIRN_KILL_AT_CATALOG_ROW", "1")],
    );
    assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
    assert_eq!(integrity(&path), "ok");
    let last = *t.times().last().unwrap();
    assert!(t.ls(last, true).contains("d0/late.txt"));
    t.check(true);
    let dest = work.path().join("restored");
    ok(
        &dup3(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("dup-cache").to_str().unwrap(),
            &t.url,
            dest.to_str().unwrap(),
        ]),
        &[PASS],
    );
    assert_eq!(fs::read(dest.join("d0/late.txt")).unwrap(), b"late\n");
}

#[test]
fn a_damaged_or_missing_catalog_is_rebuilt_on_use() {
    let work = tmpdir();
    let (t, _) = small_chain(work.path());
    let last = *t.times().last().unwrap();
    let expected = t.ls(last, false);
    assert_eq!(t.ls(last, true), expected);
    let path = t.catalog_path();
    // Truncated to half: moved aside (kept), rebuilt, same answer.
    let len = fs::metadata(&path).unwrap().len();
    let _ = Catalog::open(&path).unwrap(); // checkpointed on close
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let o = t.ok(&["ls"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected);
    assert!(
        text(&o).contains("is rebuilt from the target"),
        "{}",
        text(&o)
    );
    let kept = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".damaged-")
        })
        .count();
    assert_eq!(kept, 1);
    // Garbage, then nothing at all.
    fs::write(&path, b"not a database at all").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&t.ok(&["ls"], &[]).stdout),
        expected
    );
    fs::remove_file(&path).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&t.ok(&["ls"], &[]).stdout),
        expected
    );
    t.check(true);
    // Stock duplicity leaves the catalog alone in the archive dir it shares.
    ok(
        &dup3(),
        &args(&[
            "cleanup",
            "--force",
            "--archive-dir",
            t.archive.to_str().unwrap(),
            &t.url,
        ]),
        &[PASS],
    );
    ok(
        &dup3(),
        &args(&[
            "collection-status",
            "--archive-dir",
            t.archive.to_str().unwrap(),
            &t.url,
        ]),
        &[PASS],
    );
    assert!(path.exists());
    t.check(true);
}

#[test]
fn sets_removed_behind_its_back_leave_the_catalog() {
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    let t = Target::new(work.path(), "t");
    t.backup(&src, &[]);
    sleep_past_second();
    fs::write(src.join("a"), b"two").unwrap();
    t.backup(&src, &["--full"]);
    for i in 0..2 {
        sleep_past_second();
        fs::write(src.join("b"), format!("inc {i}")).unwrap();
        t.backup(&src, &[]);
    }
    assert_eq!(t.catalog().sets(&t.url).unwrap().len(), 4);
    // duplicity removes the old chain, with its own archive dir.
    let dup_cache = work.path().join("dup-cache");
    ok(
        &dup3(),
        &args(&[
            "remove-all-but-n-full",
            "1",
            "--force",
            "--archive-dir",
            dup_cache.to_str().unwrap(),
            &t.url,
        ]),
        &[PASS],
    );
    let o = t.ok(&["status"], &[]);
    assert!(text(&o).contains("Sets in the catalog"), "{}", text(&o));
    let sets = t.catalog().sets(&t.url).unwrap();
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert!(sets[0].full);
    t.check(true);
    // The last incremental's manifest removed by hand: the set is gone.
    let last = backup_times(&t.dir).pop().unwrap();
    for e in fs::read_dir(&t.dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.contains(&format!("{last}.manifest")) {
            fs::remove_file(t.dir.join(n)).unwrap();
        }
    }
    t.ok(&["ls"], &[]);
    assert_eq!(t.catalog().sets(&t.url).unwrap().len(), 2);
    t.check(true);
}

#[test]
fn an_unwritable_or_full_catalog_never_stops_a_backup() {
    let work = tmpdir();
    let src = work.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"data").unwrap();
    let t = Target::new(work.path(), "t");
    // The catalog's directory cannot be made (its parent is a file).
    let blocker = work.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("catalog.sqlite");
    let with_catalog = |cmd: &[&str], catalog: &Path| {
        let mut a: Vec<&str> = cmd.to_vec();
        a.extend([&t.url, "--archive-dir", t.archive.to_str().unwrap()]);
        a.extend(["--catalog", catalog.to_str().unwrap()]);
        run(&cairn(), &args(&a), &[PASS])
    };
    let backup_cmd = ["backup", src.to_str().unwrap(), "--quiet"];
    let o = with_catalog(&backup_cmd, &bad);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the catalog could not be updated"),
        "{}",
        text(&o)
    );
    assert_eq!(t.times().len(), 1);
    // Nor a listing: it comes from the signatures instead.
    let o = with_catalog(&["ls"], &bad);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("listing from the signatures instead"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with(" a\n"),
        "{}",
        text(&o)
    );
    // A full disk: a 64 KiB file system for the catalog.
    assert!(
        is_root(),
        "the full-disk case mounts a tmpfs: run the tests as root"
    );
    let mnt = work.path().join("small");
    fs::create_dir_all(&mnt).unwrap();
    let m = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(m.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    fs::write(mnt.join("filler"), vec![7u8; 40 << 10]).unwrap();
    for i in 0..40 {
        fs::write(src.join(format!("n{i:03}-{}", "x".repeat(100))), b"new").unwrap();
    }
    sleep_past_second();
    let full = mnt.join("catalog.sqlite");
    let o = with_catalog(&backup_cmd, &full);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the catalog could not be updated"),
        "{}",
        text(&o)
    );
    assert_eq!(t.times().len(), 2);
    // A full disk is not a damaged file: nothing was moved aside.
    let names: Vec<String> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".damaged-")), "{names:?}");
    // The default catalog catches up from the target.
    let last = *t.times().last().unwrap();
    assert!(t.ls(last, true).contains("n039-"));
    t.check(true);
}

#[test]
fn a_wrong_passphrase_is_named_and_loses_nothing() {
    let work = tmpdir();
    let (t, _) = small_chain(work.path());
    // A new archive dir: the signatures must come from the target, encrypted.
    let other = Target {
        url: t.url.clone(),
        dir: t.dir.clone(),
        archive: work.path().join("elsewhere"),
    };
    let o = run(
        &cairn(),
        &args(&[
            "ls",
            &other.url,
            "--archive-dir",
            other.archive.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", "wrong")],
    );
    assert_eq!(o.status.code(), Some(31), "{}", text(&o));
    assert_eq!(
        text(&o).matches("cannot decrypt").count(),
        1,
        "said once: {}",
        text(&o)
    );
    // `status` needs no passphrase: the catalog's summary is left out, said why.
    let o = run(
        &cairn(),
        &args(&[
            "status",
            &other.url,
            "--archive-dir",
            other.archive.to_str().unwrap(),
        ]),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Found primary backup chain"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("summary is left out"), "{}", text(&o));
    // Nothing at the target changed; with the right passphrase it indexes.
    assert_eq!(other.times().len(), 3);
    let last = *other.times().last().unwrap();
    assert_eq!(other.ls(last, true), t.ls(last, false));
    other.check(true);
}
