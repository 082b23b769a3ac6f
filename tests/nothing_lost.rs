//! Nothing lost, ever: a command killed at any step boundary leaves a state
//! the next command recognises and completes, and nothing complete is ever
//! taken for partial. Kills are injected deterministically with
//! `strace -e inject=SYSCALL:signal=KILL:when=N` for N = 1, 2, … until the
//! command runs to its end; after each, the next command runs and a full
//! check follows: every set listed complete restores byte-exact with stock
//! duplicity 3.x, Cairn's and duplicity's `collection-status` agree, and
//! nothing is left that `cleanup` would remove.
//!
//! Also here: the bad-input findings of the same issue (exit codes and
//! messages that say what happened) and permanent backend errors that must
//! not be retried.

mod common;

use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PW: &str = "nothing-lost";
const T0: u64 = 1_790_000_000;

struct Lab {
    _work: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    target: PathBuf,
    cache: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let work = tmpdir();
        let root = work.path().to_path_buf();
        let lab = Lab {
            src: root.join("src"),
            target: root.join("target"),
            cache: root.join("cache"),
            root,
            _work: work,
        };
        fs::create_dir_all(&lab.src).unwrap();
        lab
    }

    /// A copy of this lab's target and cache, for one kill point. The
    /// source stays where it is (a backup's manifest names its directory).
    fn fork(&self) -> Lab {
        let mut l = Lab::new();
        fs::remove_dir_all(&l.src).unwrap();
        l.src = self.src.clone();
        for (a, b) in [(&self.target, &l.target), (&self.cache, &l.cache)] {
            if a.exists() {
                copy_dir(a, b);
            }
        }
        l
    }

    /// The archive directory proper: duplicity's per-target subdirectory.
    fn archive(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = fs::read_dir(&self.cache)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert_eq!(dirs.len(), 1, "one archive dir: {dirs:?}");
        dirs[0].clone()
    }

    fn archive_names(&self) -> Vec<String> {
        fs::read_dir(self.archive())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn url(&self) -> String {
        file_url(&self.target)
    }

    /// `cairn duplicity ARGS --archive-dir CACHE …` as a command line.
    fn argv(&self, a: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        // A fixed --name: the archive subdirectory stays the same in a fork.
        v.extend([
            "--archive-dir".into(),
            self.cache.display().to_string(),
            "--name".into(),
            "lab".into(),
        ]);
        v
    }

    fn cairn(&self, a: &[&str]) -> Output {
        let argv = self.argv(a);
        let refs: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
        run(&cairn_as_duplicity(), &refs, &[("PASSPHRASE", PW)])
    }

    fn cairn_ok(&self, a: &[&str]) -> String {
        let o = self.cairn(a);
        assert!(o.status.success(), "cairn {a:?}: {}", text(&o));
        text(&o)
    }

    /// Runs the command with a SIGKILL at its `step`-th step boundary
    /// (`CAIRN_KILL_AT_STEP`, see `cairn::fault`). Returns whether the kill
    /// happened (false: the command ran to its end, successfully).
    fn cairn_killed_at(&self, step: usize, a: &[&str]) -> bool {
        let o = Command::new(cairn_as_duplicity())
            .args(self.argv(a))
            .env("PASSPHRASE", PW)
            .env("CAIRN_KILL_AT_STEP", step.to_string())
            .output()
            .unwrap();
        let killed = o.status.signal() == Some(9);
        assert!(
            killed || o.status.success(),
            "{a:?} failed without the kill: {}",
            text(&o)
        );
        killed
    }

    /// Kills the command at each of its step boundaries in turn, each time
    /// on a new fork of this lab made ready by `prepare`, and hands the fork
    /// to `after`. Returns the number of kill points.
    fn sweep(
        &self,
        prepare: impl Fn(&Lab),
        a: impl Fn(&Lab) -> Vec<String>,
        after: impl Fn(&Lab, &str),
    ) -> usize {
        for step in 1..200 {
            let l = self.fork();
            prepare(&l);
            let argv = a(&l);
            if !l.cairn_killed_at(step, &strs(&argv)) {
                return step - 1;
            }
            after(&l, &format!("{} killed at step {step}", argv[0]));
        }
        panic!("more than 200 steps");
    }

    /// Kills at seeded random moments: SIGKILL after a pseudo-random delay
    /// within the command's normal run time.
    fn random_kills(
        &self,
        seed: u64,
        count: usize,
        prepare: impl Fn(&Lab),
        a: impl Fn(&Lab) -> Vec<String>,
        after: impl Fn(&Lab, &str),
    ) {
        let probe = self.fork();
        prepare(&probe);
        let start = std::time::Instant::now();
        probe.cairn_ok(&strs(&a(&probe)));
        let span = start.elapsed().as_micros().max(1) as u64;
        let mut x = seed | 1;
        for i in 0..count {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let delay = std::time::Duration::from_micros(x % span);
            let l = self.fork();
            prepare(&l);
            let mut child = Command::new(cairn_as_duplicity())
                .args(l.argv(&strs(&a(&l))))
                .env("PASSPHRASE", PW)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
            after(&l, &format!("kill {i} after {delay:?} (seed {seed})"));
        }
    }

    fn backup(&self, kind: &str, t: u64) -> String {
        let t = t.to_string();
        self.cairn_ok(&[
            kind,
            "--current-time",
            &t,
            "--volsize",
            "1",
            self.src.to_str().unwrap(),
            &self.url(),
        ])
    }

    fn inc_args(&self, t: &str) -> Vec<String> {
        [
            "incremental",
            "--current-time",
            t,
            "--volsize",
            "1",
            self.src.to_str().unwrap(),
            &self.url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Writes the source tree for step `step`, the same bytes and times each
/// time: some files change, one goes, one is new, and a 2.5 MiB file makes
/// several 1 MiB volumes.
fn write_source(src: &Path, step: u64) {
    fs::create_dir_all(src.join("dir")).unwrap();
    for e in fs::read_dir(src).unwrap().filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with("only-") {
            fs::remove_file(e.path()).unwrap();
        }
    }
    fs::write(src.join("big.bin"), random_bytes(2_500_000, 7 + step)).unwrap();
    fs::write(src.join("dir/same.txt"), b"never changes").unwrap();
    fs::write(src.join("dir/step.txt"), format!("step {step}")).unwrap();
    fs::write(src.join(format!("only-{step}.txt")), b"x").unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + step * 10);
    let paths = [
        "big.bin".to_string(),
        "dir/same.txt".into(),
        "dir/step.txt".into(),
        format!("only-{step}.txt"),
        "dir".into(),
        ".".into(),
    ];
    for p in paths {
        fs::File::open(src.join(p))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

/// The lines of `collection-status` that say what the target holds: the
/// sets (type, time, volumes) and the orphaned/incomplete summary.
fn status_facts(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Full ")
                || l.starts_with("Incremental ")
                || l.starts_with("Found ")
                || l.starts_with("No orphaned")
                || l.starts_with("Also found")
                || l.starts_with("and ")
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        // 0.8 says "chain."/"chains.", 3.x "chain(s).".
        .map(|l| {
            l.replace("(s)", "")
                .replace("chains", "chain")
                .replace("sets", "set")
        })
        .collect()
}

/// The full check after the next command: Cairn's and duplicity's views
/// agree, nothing is left for cleanup, the cache holds no leftovers, and
/// every set restores byte-exact with stock duplicity as the tree of its
/// time.
fn check(l: &Lab, expected: &[(u64, Tree)], what: &str) {
    let ours = l.cairn_ok(&["collection-status", &l.url()]);
    assert!(
        ours.contains("No orphaned or incomplete backup sets found."),
        "{what}: left for cleanup:\n{ours}"
    );
    let dup_cache = l.root.join(format!("dup-cache-{}", rand_suffix()));
    let theirs = ok(
        &dup3(),
        &args(&[
            "collection-status",
            "--archive-dir",
            dup_cache.to_str().unwrap(),
            &l.url(),
        ]),
        &[("PASSPHRASE", PW)],
    );
    assert_eq!(
        status_facts(&ours),
        status_facts(&String::from_utf8_lossy(&theirs.stdout)),
        "{what}: Cairn and duplicity disagree:\n{ours}"
    );
    let again = l.cairn_ok(&["cleanup", &l.url()]);
    assert!(
        again.contains("No extraneous files found"),
        "{what}: cleanup still finds files:\n{again}"
    );
    let leftovers: Vec<String> = l
        .archive_names()
        .into_iter()
        .filter(|n| n.contains(".part") || n.contains("cairn-") || n == "lockfile")
        .collect();
    assert!(
        leftovers.is_empty(),
        "{what}: cache leftovers {leftovers:?}"
    );
    for time in backup_times(&l.target) {
        let t = parse_set_time(&time);
        let tree = &expected
            .iter()
            .find(|(et, _)| *et == t)
            .unwrap_or_else(|| panic!("{what}: unexpected set {time}"))
            .1;
        let dest = l.root.join(format!("restore-{}", rand_suffix()));
        let (dest_s, t_s) = (dest.to_str().unwrap(), t.to_string());
        // duplicity at the end of each chain (which reads every volume of
        // every set in it), Cairn at the times in between.
        if extended(&l.target, &time) {
            l.cairn_ok(&["restore", "-t", &t_s, &l.url(), dest_s]);
        } else {
            let cache = dup_cache.to_str().unwrap();
            let a = [
                "restore",
                "-t",
                &t_s,
                "--archive-dir",
                cache,
                &l.url(),
                dest_s,
            ];
            ok(&dup3(), &args(&a), &[("PASSPHRASE", PW)]);
        }
        assert_same_tree(tree, &capture(&dest), &format!("{what}: set {time}"));
    }
}

/// Whether an incremental at the target extends the set of `time`.
fn extended(target: &Path, time: &str) -> bool {
    let prefix = format!("duplicity-inc.{time}.to.");
    fs::read_dir(target)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// `20260903T054640Z` → epoch seconds.
fn parse_set_time(s: &str) -> u64 {
    let out = Command::new("date")
        .args(["-u", "-d"])
        .arg(format!(
            "{}-{}-{} {}:{}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        ))
        .arg("+%s")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A chain with a full at T0, and the tree the next incremental will hold.
fn one_full() -> (Lab, Vec<(u64, Tree)>) {
    let l = Lab::new();
    write_source(&l.src, 0);
    l.backup("full", T0);
    let tree0 = capture(&l.src);
    write_source(&l.src, 1);
    (l, vec![(T0, tree0)])
}

/// After an incremental was killed: `cleanup --force`, the full check, then
/// a backup and the check again. Findings 1 and 3 of the issue: a set whose
/// manifest reached the target is complete and cleanup keeps it; a set with
/// nothing at the target yet is cleaned up, and both commands agree.
fn cleanup_then_backup(l: &Lab, expected: &[(u64, Tree)], what: &str) {
    let stored = backup_times(&l.target).len() == 2;
    l.cairn_ok(&["cleanup", "--force", &l.url()]);
    assert_eq!(
        backup_times(&l.target).len() == 2,
        stored,
        "{what}: cleanup changed which sets are complete"
    );
    check(l, expected, what);
    let mut exp = expected.to_vec();
    write_source(&l.src, 2);
    exp.push((T0 + 200, capture(&l.src)));
    l.backup("incremental", T0 + 200);
    check(l, &exp, &format!("{what}, then a backup"));
}

/// After an incremental was killed: the backup itself again, which resumes
/// or finishes what the killed run left.
fn backup_again(l: &Lab, expected: &[(u64, Tree)], what: &str) {
    let t = if backup_times(&l.target).len() < 2 {
        T0 + 100
    } else {
        T0 + 150 // complete already: the next backup is a later one
    };
    write_source(&l.src, 1);
    l.cairn_ok(&strs(&l.inc_args(&t.to_string())));
    let mut exp = expected.to_vec();
    exp.push((T0 + 150, capture(&l.src)));
    check(l, &exp, what);
}

/// An incremental killed at every step boundary: each volume stored, each
/// manifest line, the signatures and manifest at the target, each step of
/// the local bookkeeping.
#[test]
fn incremental_killed_at_every_step() {
    let (base, mut expected) = one_full();
    expected.push((T0 + 100, capture(&base.src)));
    let t = (T0 + 100).to_string();
    let prepare = |l: &Lab| write_source(&l.src, 1);
    let points = base.sweep(
        prepare,
        |l| l.inc_args(&t),
        |l, what| cleanup_then_backup(l, &expected, &format!("{what}, then cleanup")),
    );
    assert!(points >= 10, "only {points} kill points");
    let again = base.sweep(
        prepare,
        |l| l.inc_args(&t),
        |l, what| backup_again(l, &expected, &format!("{what}, then the backup again")),
    );
    assert_eq!(points, again);
    eprintln!("incremental: {points} kill points, each followed by cleanup and by a backup");
}

/// The same at seeded random moments (20 of them), whatever the process is
/// doing then.
#[test]
fn incremental_killed_at_random_moments() {
    let (base, mut expected) = one_full();
    expected.push((T0 + 100, capture(&base.src)));
    let t = (T0 + 100).to_string();
    let prepare = |l: &Lab| write_source(&l.src, 1);
    base.random_kills(
        0x5eed_0009,
        10,
        prepare,
        |l| l.inc_args(&t),
        |l, what| cleanup_then_backup(l, &expected, what),
    );
    base.random_kills(
        0x5eed_0010,
        10,
        prepare,
        |l| l.inc_args(&t),
        |l, what| backup_again(l, &expected, what),
    );
}

/// The issue's exact reproduction: the incremental killed after its
/// manifest reached the target, before it renamed its local `.part` files;
/// then `cleanup --force` must keep the set.
#[test]
fn cleanup_keeps_a_set_whose_manifest_reached_the_target() {
    let (base, _) = one_full();
    for step in 1..200 {
        let l = base.fork();
        write_source(&l.src, 1);
        let argv = l.inc_args(&(T0 + 100).to_string());
        assert!(l.cairn_killed_at(step, &strs(&argv)), "no such kill point");
        let part = l
            .archive_names()
            .iter()
            .any(|n| n.ends_with(".manifest.part"));
        if backup_times(&l.target).len() == 2 && part {
            let out = l.cairn_ok(&["cleanup", "--force", &l.url()]);
            assert!(!out.contains("partial"), "{out}");
            assert_eq!(
                backup_times(&l.target).len(),
                2,
                "cleanup deleted it: {out}"
            );
            return;
        }
    }
}

/// Kill each removal command at every step, run the same removal again: it
/// must complete (finding 2), and stock duplicity must agree.
#[test]
fn removals_killed_at_every_step_are_completed_by_running_them_again() {
    let base = Lab::new();
    let mut expected = Vec::new();
    for (i, kind) in ["full", "incremental", "full", "incremental", "full"]
        .iter()
        .enumerate()
    {
        write_source(&base.src, i as u64);
        base.backup(kind, T0 + 100 * i as u64);
        expected.push((T0 + 100 * i as u64, capture(&base.src)));
    }
    let older = (T0 + 250).to_string();
    // (command, sets left)
    let removals: [(Vec<&str>, usize); 3] = [
        (vec!["remove-all-but-n-full", "2"], 3),
        (vec!["remove-older-than", &older], 3),
        (vec!["remove-all-inc-of-but-n-full", "1"], 3),
    ];
    for (cmd, left) in removals {
        let argv = |l: &Lab| -> Vec<String> {
            let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            v.extend(["--force".to_string(), l.url()]);
            v
        };
        let points = base.sweep(
            |_| {},
            argv,
            |l, what| {
                l.cairn_ok(&strs(&argv(l)));
                check(l, &expected, what);
                assert_eq!(backup_times(&l.target).len(), left, "{what}: sets left");
            },
        );
        assert!(points >= 5, "{cmd:?}: only {points} kill points");
        eprintln!("{cmd:?}: {points} kill points, each completed by running it again");
    }
}

/// A new archive directory (a new card in the old Pi): the backup first
/// fetches the target's manifests and signatures into it. Killed at every
/// step of that sync and of the backup, the next backup completes.
#[test]
fn cache_sync_and_backup_killed_at_every_step() {
    let (base, mut expected) = one_full();
    base.backup("incremental", T0 + 100);
    expected.push((T0 + 100, capture(&base.src)));
    fs::remove_dir_all(base.archive()).unwrap();
    write_source(&base.src, 2);
    expected.push((T0 + 200, capture(&base.src)));
    // When the killed run's set is complete, the next backup is a later one.
    expected.push((T0 + 250, capture(&base.src)));
    let t = (T0 + 200).to_string();
    let points = base.sweep(
        |l| write_source(&l.src, 2),
        |l| l.inc_args(&t),
        |l, what| {
            let next = if backup_times(&l.target).len() < 3 {
                t.clone()
            } else {
                (T0 + 250).to_string()
            };
            l.cairn_ok(&strs(&l.inc_args(&next)));
            check(l, &expected, what);
        },
    );
    assert!(points >= 10, "only {points} kill points");
    eprintln!("cache sync + incremental: {points} kill points");
}

/// Kill `cleanup --force` at every step while it removes an interrupted
/// incremental with its volumes and signatures at the target; the next cleanup finishes, and
/// nothing stale remains in the archive dir (finding 7).
#[test]
fn cleanup_killed_at_every_step_is_completed_by_the_next_one() {
    let (base, expected) = one_full();
    write_source(&base.src, 1);
    let argv = base.inc_args(&(T0 + 100).to_string());
    // Killed once its signatures are stored: step 1 is the resume record,
    // then 3 steps per volume (stored, manifest line, hash line), then the
    // signatures (step 11). Volumes and signatures at the target, no manifest.
    assert!(base.cairn_killed_at(11, &strs(&argv)));
    let at_target = fs::read_dir(&base.target).unwrap().filter_map(|e| e.ok());
    let names: Vec<String> = at_target
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("duplicity-new-signatures")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("duplicity-inc") && n.contains("manifest"))
    );
    let points = base.sweep(
        |_| {},
        |l| vec!["cleanup".into(), "--force".into(), l.url()],
        |l, what| {
            l.cairn_ok(&["cleanup", "--force", &l.url()]);
            check(l, &expected, what);
        },
    );
    assert!(points >= 3, "only {points} kill points");
    eprintln!("cleanup: {points} kill points, each completed by the next cleanup");
}

/// Finding 4: a newest incremental without its manifest is named, and the
/// point in time restored instead is said.
#[test]
fn restore_says_which_set_is_incomplete_and_what_it_restores_instead() {
    let (l, expected) = one_full();
    l.backup("incremental", T0 + 100);
    let man = fs::read_dir(&l.target)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("duplicity-inc.") && n.contains(".manifest")
        })
        .unwrap();
    fs::remove_file(man).unwrap();
    fs::remove_dir_all(&l.cache).unwrap();
    let dest = l.root.join("r");
    let o = l.cairn(&["restore", &l.url(), dest.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("incremental backup of") && t.contains("manifest is missing"),
        "{t}"
    );
    assert!(t.contains("restoring the backup of"), "{t}");
    assert_same_tree(&expected[0].1, &capture(&dest), "restored instead");
}

/// Finding 5: the right exit codes and messages.
#[test]
fn bad_input_gets_duplicitys_codes_and_a_true_message() {
    let (l, _) = one_full();
    // An incremental whose signatures are gone: duplicity's 17.
    for e in fs::read_dir(&l.target).unwrap().filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().contains("signatures") {
            fs::remove_file(e.path()).unwrap();
        }
    }
    fs::remove_dir_all(&l.cache).unwrap();
    let argv = l.inc_args(&(T0 + 100).to_string());
    let o = l.cairn(&strs(&argv));
    assert_eq!(o.status.code(), Some(17), "{}", text(&o));
    assert!(!text(&o).contains("invalid option"), "{}", text(&o));

    let (l, _) = one_full();
    let dest = l.root.join("r");
    let o = l.cairn(&[
        "restore",
        "--file-to-restore",
        "../x",
        &l.url(),
        dest.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(19), "{}", text(&o));
    assert!(text(&o).contains("../x"), "{}", text(&o));

    let file = l.root.join("a-file");
    fs::write(&file, b"keep me").unwrap();
    let o = l.cairn(&["restore", &l.url(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11), "{}", text(&o));
    assert!(text(&o).contains("is a file"), "{}", text(&o));
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
}

/// Finding 6: an error that waiting cannot cure fails at once.
#[test]
fn a_missing_connect_program_is_not_retried() {
    let l = Lab::new();
    write_source(&l.src, 0);
    let start = std::time::Instant::now();
    let argv = l.argv(&[
        "full",
        l.src.to_str().unwrap(),
        "rsync://127.0.0.1::nothing/here",
    ]);
    let o = Command::new(cairn_as_duplicity())
        .args(&argv)
        .env("PASSPHRASE", PW)
        .env("RSYNC_CONNECT_PROG", "cairn-no-such-program-here")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("cairn-no-such-program-here"), "{t}");
    assert!(!t.contains("retrying"), "retried: {t}");
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
}

/// Finding 7: a clean run leaves no lock file, and cleanup removes a resume
/// record whose partial manifest is gone.
#[test]
fn no_lock_file_or_stale_resume_record_is_left() {
    let (l, _) = one_full();
    let archive = l.archive();
    assert!(!archive.join("lockfile").exists(), "the lock file stays");
    let stale = archive
        .join("cairn-plain-sha1.duplicity-inc.20260101T000000Z.to.20260102T000000Z.manifest.part");
    fs::write(&stale, b"1 00\n").unwrap();
    l.cairn_ok(&["cleanup", "--force", &l.url()]);
    assert!(!stale.exists());
    assert!(!archive.join("lockfile").exists());
}

/// Every target file with its hash, to prove a command left the target alone.
fn target_state(l: &Lab) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fs::read_dir(&l.target)
        .unwrap()
        .filter_map(|e| e.ok())
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

fn volume(l: &Lab, set: &str, n: u32) -> PathBuf {
    let suffix = format!(".vol{n}.difftar.gpg");
    fs::read_dir(&l.target)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(set) && name.ends_with(&suffix)
        })
        .unwrap_or_else(|| panic!("no {set} volume {n}"))
}

/// The target fails in the middle of reading a volume (an I/O error on its
/// second read, as when a disk or a connection goes away): the restore
/// names the volume, restores everything that does not depend on it, exits
/// non-zero, and changes nothing at the target.
#[test]
fn a_volume_failing_mid_read_is_named_and_the_rest_restores() {
    let (l, _) = one_full();
    let before = target_state(&l);
    let vol2 = volume(&l, "duplicity-full.", 2);
    let dest = l.root.join("r");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(&vol2)
        .args(["-e", "trace=read", "-e", "inject=read:error=EIO:when=2"])
        .arg(cairn_as_duplicity())
        .args(l.argv(&["restore", &l.url(), dest.to_str().unwrap()]))
        .env("PASSPHRASE", PW)
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(21), "{t}");
    assert!(t.contains("vol2"), "the volume is named: {t}");
    let got = capture(&dest);
    assert!(!got.contains_key(&b"big.bin"[..]), "no half-restored file");
    for p in ["dir/same.txt", "dir/step.txt", "only-0.txt"] {
        assert!(got.contains_key(p.as_bytes()), "{p} restored: {t}");
    }
    assert_eq!(target_state(&l), before, "the target changed");
}

/// Truncated signatures: a restore does not need them and works; the
/// commands that do (listing, an incremental) fail naming the file; the
/// target is never changed.
#[test]
fn truncated_signatures_are_named_and_never_break_a_restore() {
    let (l, expected) = one_full();
    let sig = fs::read_dir(&l.target)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("full-signatures"))
        .unwrap();
    let len = fs::metadata(&sig).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&sig)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    fs::remove_dir_all(&l.cache).unwrap();
    let before = target_state(&l);
    let dest = l.root.join("r");
    let o = l.cairn(&["restore", &l.url(), dest.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_tree(
        &expected[0].1,
        &capture(&dest),
        "restore without signatures",
    );
    let name = sig.file_name().unwrap().to_string_lossy().into_owned();
    for a in [
        vec!["list-current-files".to_string(), l.url()],
        l.inc_args(&(T0 + 100).to_string()),
    ] {
        let o = l.cairn(&strs(&a));
        assert!(!o.status.success(), "{a:?} succeeded: {}", text(&o));
        assert!(
            text(&o).contains(&name),
            "{a:?} names the file: {}",
            text(&o)
        );
        assert_eq!(target_state(&l), before, "{a:?} changed the target");
    }
}
