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
    // A child's peak RSS starts at this process's peak (Linux carries the
    // old address space's high-water mark across fork and exec), so reset
    // ours first; without this, one tool was charged 80 MB it never used.
    let _ = fs::write("/proc/self/clear_refs", "5");
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

/// Where restores write: a tmpfs when there is one, because a virtual
/// machine's disk throttles bursts of writes so unevenly that the same
/// restore took 2 s or 14 s; on tmpfs every tool is measured doing its own
/// work. Falls back to the work directory.
fn restore_dir(work: &Path) -> PathBuf {
    let shm = PathBuf::from(format!("/dev/shm/cairn-bench-{}", std::process::id()));
    if fs::create_dir_all(&shm).is_ok() {
        shm
    } else {
        work.to_path_buf()
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

/// Flushes dirty pages before a timed run, so no contender pays for the
/// writeback of the one before it.
fn settle() {
    let _ = Command::new("sync").status();
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

struct Table {
    rows: Vec<String>,
}

impl Table {
    fn line(&mut self, line: String) {
        println!("{line}");
        self.rows.push(line);
    }

    /// One contender's result, with its ratio to `base` (Cairn's time).
    fn row(&mut self, op: &str, who: &str, r: &Run, cairn: &Run, extra: &str) {
        self.line(format!(
            "| {op} | {who} | {:.2} s | {:.0} MB | {:.1}× | {extra} |",
            r.wall,
            r.rss_mb,
            r.wall / cairn.wall
        ));
    }

    fn cairn(&mut self, op: &str, r: &Run, extra: &str) {
        self.line(format!(
            "| {op} | **Cairn** | **{:.2} s** | {:.0} MB | 1.0× | {extra} |",
            r.wall, r.rss_mb
        ));
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs benches
    // without it, and a debug-build benchmark measures nothing useful.
    if !argv.iter().any(|a| a == "--bench") {
        println!("compare: a benchmark; run it with `just bench` (cargo bench --bench compare)");
        return;
    }
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
    // A copy, so the 1% change never touches the pristine tree.
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );
    let size_mb = tree_bytes(&src) as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nCairn benchmark: {size_mb:.0} MB tree ({} random, {} text, {} small files), {cores} cores, load {}",
        scale.random_files * scale.random_size / 1_000_000,
        scale.text_files * scale.text_size / 1_000_000,
        scale.small_files,
        load.split_whitespace().next().unwrap_or("?")
    );
    println!(
        "Encrypted with a passphrase (AES-256) everywhere; times are wall clock; RSS is the peak of the process tree;\nrestores write to a tmpfs (/dev/shm) when there is one.\n"
    );
    let mut t = Table { rows: Vec::new() };
    t.line("| operation | tool | time | peak RSS | time / Cairn's | notes |".into());
    t.line("|---|---|---|---|---|---|".into());
    let pw = "benchmark passphrase";
    let quiet = |c: &mut Command| {
        c.env("PASSPHRASE", pw)
            .env("BORG_PASSPHRASE", pw)
            .env("RESTIC_PASSWORD", pw)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    };
    let url = |p: &Path| format!("file://{}", p.display());
    let dup_t = work.join("dup-target");
    let our_t = work.join("cairn-target");

    // ---- Full backups -------------------------------------------------
    settle();
    let mut c = Command::new("duplicity");
    c.args(["full", "--archive-dir"])
        .arg(work.join("dup-cache"))
        .arg(&src)
        .arg(url(&dup_t));
    quiet(&mut c);
    let dup_full = measure(&mut c);
    let dup_full_size = du(&dup_t);
    settle();
    let mut c = Command::new(&cairn);
    c.args(["backup", "--full", "--archive-dir"])
        .arg(work.join("cairn-cache"))
        .arg(&src)
        .arg(url(&our_t));
    quiet(&mut c);
    let our_full = measure(&mut c);
    let our_full_size = du(&our_t);
    t.cairn(
        "full backup",
        &our_full,
        &format!("archive {}", mb(our_full_size)),
    );
    t.row(
        "full backup",
        "duplicity 0.8",
        &dup_full,
        &our_full,
        &format!("archive {}", mb(dup_full_size)),
    );
    // The catalog's cost: the full backup above recorded its set in the
    // catalog (the default); the same without it.
    settle();
    let bare_t = work.join("cairn-target-no-catalog");
    let mut c = Command::new(&cairn);
    c.args(["backup", "--full", "--no-catalog", "--archive-dir"])
        .arg(work.join("cairn-cache-no-catalog"))
        .arg(&src)
        .arg(url(&bare_t));
    quiet(&mut c);
    let bare = measure(&mut c);
    let overhead = (our_full.wall / bare.wall - 1.0) * 100.0;
    let pass = |ok: bool| if ok { "PASS" } else { "MISS" };
    t.row(
        "full backup",
        "Cairn, `--no-catalog`",
        &bare,
        &our_full,
        &format!(
            "the catalog costs {overhead:+.1} % (goal under 5 %: {}); peak RSS with it {:.0} MB (goal under 64 MB: {})",
            pass(overhead < 5.0),
            our_full.rss_mb,
            pass(our_full.rss_mb < 64.0)
        ),
    );
    let _ = fs::remove_dir_all(&bare_t);
    // The speed setting: deflate level 5 instead of gpg's default 6.
    settle();
    let fast_t = work.join("cairn-target-z5");
    let mut c = Command::new(&cairn);
    c.args([
        "backup",
        "--full",
        "--gpg-options=--compress-level=5",
        "--archive-dir",
    ])
    .arg(work.join("cairn-cache-z5"))
    .arg(&src)
    .arg(url(&fast_t));
    quiet(&mut c);
    let r = measure(&mut c);
    t.row(
        "full backup",
        "Cairn, `--compress-level=5`",
        &r,
        &our_full,
        &format!("archive {}", mb(du(&fast_t))),
    );
    let _ = fs::remove_dir_all(&fast_t);
    if which("borg") {
        settle();
        let repo = work.join("borg");
        let st = Command::new("borg")
            .args(["init", "--encryption=repokey"])
            .arg(&repo)
            .env("BORG_PASSPHRASE", pw)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let mut c = Command::new("borg");
        c.args(["create", "--compression", "lz4"])
            .arg(format!("{}::full", repo.display()))
            .arg(&src);
        quiet(&mut c);
        let r = measure(&mut c);
        t.row(
            "full backup",
            "borg (lz4)",
            &r,
            &our_full,
            &format!("repository {}", mb(du(&repo))),
        );
    }
    if which("restic") {
        settle();
        let repo = work.join("restic");
        let st = Command::new("restic")
            .args(["init", "--repo"])
            .arg(&repo)
            .env("RESTIC_PASSWORD", pw)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let mut c = Command::new("restic");
        c.args(["backup", "--repo"]).arg(&repo).arg(&src);
        quiet(&mut c);
        let r = measure(&mut c);
        t.row(
            "full backup",
            "restic",
            &r,
            &our_full,
            &format!("repository {}", mb(du(&repo))),
        );
    }
    settle();
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "tar cf - -C '{}' . | gpg --batch --pinentry-mode loopback --passphrase '{pw}' -c -z0 --homedir '{}' -o '{}'",
        src.display(),
        work.join("gnupg").display(),
        work.join("tar.gpg").display()
    ));
    fs::create_dir_all(work.join("gnupg")).unwrap();
    quiet(&mut c);
    let r = measure(&mut c);
    t.row(
        "full backup",
        "tar | gpg -c -z0",
        &r,
        &our_full,
        &format!(
            "no compression, no increments: {}",
            mb(du(&work.join("tar.gpg")))
        ),
    );

    // ---- Incrementals after a 1% change -------------------------------
    modify_one_percent(&src);
    settle();
    let mut c = Command::new("duplicity");
    c.args(["incremental", "--archive-dir"])
        .arg(work.join("dup-cache"))
        .arg(&src)
        .arg(url(&dup_t));
    quiet(&mut c);
    let dup_inc = measure(&mut c);
    let dup_inc_bytes = du(&dup_t) - dup_full_size;
    settle();
    let mut c = Command::new(&cairn);
    c.args(["backup", "--archive-dir"])
        .arg(work.join("cairn-cache"))
        .arg(&src)
        .arg(url(&our_t));
    quiet(&mut c);
    let our_inc = measure(&mut c);
    let our_inc_bytes = du(&our_t) - our_full_size;
    t.cairn(
        "incremental (1% changed)",
        &our_inc,
        &format!("wrote {}", mb(our_inc_bytes)),
    );
    t.row(
        "incremental (1% changed)",
        "duplicity 0.8",
        &dup_inc,
        &our_inc,
        &format!("wrote {}", mb(dup_inc_bytes)),
    );

    // ---- Restores -----------------------------------------------------
    let rdir = restore_dir(&work);
    settle();
    let mut c = Command::new("duplicity");
    c.args(["restore", "--archive-dir"])
        .arg(work.join("dup-cache"))
        .arg(url(&dup_t))
        .arg(rdir.join("r-dup"));
    quiet(&mut c);
    let dup_restore = measure(&mut c);
    settle();
    let mut c = Command::new(&cairn);
    c.args(["restore", "--archive-dir"])
        .arg(work.join("cairn-cache-2"))
        .arg(url(&dup_t))
        .arg(rdir.join("r-cairn-dup"));
    quiet(&mut c);
    let our_restore_dup = measure(&mut c);
    settle();
    let mut c = Command::new(&cairn);
    c.args(["restore", "--archive-dir"])
        .arg(work.join("cairn-cache"))
        .arg(url(&our_t))
        .arg(rdir.join("r-cairn"));
    quiet(&mut c);
    let our_restore = measure(&mut c);
    t.cairn("restore latest (duplicity's archive)", &our_restore_dup, "");
    t.row(
        "restore latest (duplicity's archive)",
        "duplicity 0.8",
        &dup_restore,
        &our_restore_dup,
        "",
    );
    t.cairn("restore latest (Cairn's archive)", &our_restore, "");
    for (a, b) in [("r-dup", "r-cairn-dup"), ("r-dup", "r-cairn")] {
        let same = Command::new("diff")
            .arg("-r")
            .arg(rdir.join(a))
            .arg(rdir.join(b))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(same, "restores {a} and {b} differ");
    }
    if rdir != work {
        let _ = fs::remove_dir_all(&rdir);
    }

    // ---- The delta engine against rdiff ---------------------------------
    rdiff_rows(&mut t, &work);

    if memory {
        memory_rows(&mut t, &work, &cairn);
    }

    let results = base.join("results.md");
    let mut f = fs::File::create(&results).unwrap();
    writeln!(
        f,
        "{size_mb:.0} MB tree, {cores} cores, load {}\n",
        load.trim()
    )
    .unwrap();
    for r in &t.rows {
        writeln!(f, "{r}").unwrap();
    }
    println!("\nresults written to {}", results.display());
    if !keep {
        let _ = fs::remove_dir_all(&work);
    }
}

/// Signature, delta and patch of a 200 MB file with a 1% edit: librsync's
/// `rdiff` (MD4, rollsum, the form duplicity uses) against Cairn's engine.
fn rdiff_rows(t: &mut Table, work: &Path) {
    use cairn::delta::{self, Differ, SignatureBuilder};
    let old = work.join("delta-old.bin");
    let new = work.join("delta-new.bin");
    let mut rng = Rng(0xde17a);
    let mut data = vec![0u8; 200 << 20];
    rng.fill(&mut data);
    fs::write(&old, &data).unwrap();
    for i in 0..200 {
        let at = (i * 1_000_003) % (data.len() - 12_000);
        let mut patch = vec![0u8; 10_000];
        rng.fill(&mut patch);
        data[at..at + 10_000].copy_from_slice(&patch);
    }
    fs::write(&new, &data).unwrap();
    drop(data);
    let block = delta::block_size(200 << 20);
    let b = block.to_string();
    let timed = |f: &mut dyn FnMut()| {
        let s = Instant::now();
        f();
        Run {
            wall: s.elapsed().as_secs_f64(),
            rss_mb: 0.0,
        }
    };
    let w = |n: &str| work.join(n).to_str().unwrap().to_string();
    let rdiff = |args: &[&str]| {
        let mut c = Command::new("rdiff");
        c.arg("--force").args(args);
        measure(&mut c)
    };
    let r_sig = rdiff(&[
        "-H",
        "md4",
        "-R",
        "rollsum",
        "-b",
        &b,
        "-S",
        "8",
        "signature",
        old.to_str().unwrap(),
        &w("r.sig"),
    ]);
    let mut sig = Vec::new();
    let o_sig = timed(&mut || {
        let mut f = fs::File::open(&old).unwrap();
        let mut sb = SignatureBuilder::new(block);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            sb.update(&buf[..n]);
        }
        sig = sb.finish();
    });
    assert_eq!(
        sig,
        fs::read(work.join("r.sig")).unwrap(),
        "signatures byte-identical"
    );
    t.line(format!("| rsync signature, 200 MB (block {block}) | **Cairn** | **{:.2} s** | – | 1.0× | byte-identical to rdiff's |", o_sig.wall));
    t.row(
        "rsync signature, 200 MB",
        "rdiff -H md4 -R rollsum",
        &r_sig,
        &o_sig,
        "",
    );
    let r_delta = rdiff(&["delta", &w("r.sig"), new.to_str().unwrap(), &w("r.delta")]);
    let parsed = delta::parse_signature(sig.clone()).unwrap();
    let mut out_len = 0u64;
    let o_delta = timed(&mut || {
        let f = std::io::BufWriter::new(fs::File::create(work.join("o.delta")).unwrap());
        let (f, stats) = Differ::new(&parsed)
            .diff(fs::File::open(&new).unwrap(), f, |_| {})
            .unwrap();
        drop(f);
        out_len = stats.literal;
    });
    t.line(format!(
        "| rsync delta, 200 MB, 1% changed | **Cairn** | **{:.2} s** | – | 1.0× | delta {} |",
        o_delta.wall,
        mb(fs::metadata(work.join("o.delta")).unwrap().len())
    ));
    t.row(
        "rsync delta, 200 MB, 1% changed",
        "rdiff",
        &r_delta,
        &o_delta,
        &format!(
            "delta {}",
            mb(fs::metadata(work.join("r.delta")).unwrap().len())
        ),
    );
    let _ = out_len;
    let r_patch = rdiff(&[
        "patch",
        old.to_str().unwrap(),
        &w("o.delta"),
        &w("r.patched"),
    ]);
    let o_patch = timed(&mut || {
        let out = std::io::BufWriter::new(fs::File::create(work.join("o.patched")).unwrap());
        delta::apply(
            &fs::File::open(&old).unwrap(),
            fs::File::open(work.join("r.delta")).unwrap(),
            out,
            u64::MAX,
        )
        .unwrap();
    });
    t.line(format!("| rsync patch, 200 MB | **Cairn** | **{:.2} s** | – | 1.0× | streaming, basis read by offset |", o_patch.wall));
    t.row("rsync patch, 200 MB", "rdiff", &r_patch, &o_patch, "");
    for p in ["o.patched", "r.patched"] {
        assert_eq!(
            fs::metadata(work.join(p)).unwrap().len(),
            fs::metadata(&new).unwrap().len()
        );
    }
}

/// Peak RSS for a single 4 GiB file and for a tree of 200,000 files.
fn memory_rows(t: &mut Table, work: &Path, cairn: &Path) {
    let rdir = restore_dir(work);
    let big = work.join("mem-big");
    fs::create_dir_all(&big).unwrap();
    {
        let mut f = std::io::BufWriter::new(fs::File::create(big.join("four-gib.bin")).unwrap());
        let mut rng = Rng(0xb16);
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..4096 {
            // Half random, half text-like, so compression has work to do.
            if i % 2 == 0 {
                rng.fill(&mut buf);
            } else {
                buf = text(&mut rng, 1 << 20);
            }
            f.write_all(&buf).unwrap();
        }
    }
    let many = work.join("mem-many");
    for i in 0..200_000 {
        let dir = many.join(format!("d{:04}", i / 500));
        if i % 500 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        fs::write(dir.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    for (what, src) in [("4 GiB single file", &big), ("200,000 files", &many)] {
        for (label, extra) in [
            ("full backup", None),
            ("incremental, nothing changed", Some(())),
        ] {
            let target = work.join(format!("mem-target-{}", what.len()));
            let _ = extra;
            settle();
            let mut c = Command::new(cairn);
            c.args(["backup", "--archive-dir"])
                .arg(work.join("mem-cache"))
                .arg(src)
                .arg(format!("file://{}", target.display()))
                .env("PASSPHRASE", "memory")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let r = measure(&mut c);
            t.line(format!("| {label}, {what} | **Cairn** | {:.2} s | **{:.0} MB** | – | peak RSS goal: under 64 MB |", r.wall, r.rss_mb));
        }
        let target = work.join(format!("mem-target-{}", what.len()));
        let dest = rdir.join(format!("mem-restore-{}", what.len()));
        settle();
        let mut c = Command::new(cairn);
        c.args(["restore", "--archive-dir"])
            .arg(work.join("mem-cache"))
            .arg(format!("file://{}", target.display()))
            .arg(&dest)
            .env("PASSPHRASE", "memory")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let r = measure(&mut c);
        t.line(format!("| restore, {what} | **Cairn** | {:.2} s | **{:.0} MB** | – | peak RSS goal: under 64 MB |", r.wall, r.rss_mb));
        let _ = fs::remove_dir_all(&dest);
        let _ = fs::remove_dir_all(&target);
    }
    if rdir != work {
        let _ = fs::remove_dir_all(&rdir);
    }
}
