//! Side-by-side benchmark: Cairn against stock duplicity 0.8 and librsync's
//! `rdiff`, on the same data in one run, printing wall time, peak RSS and
//! ratios. Run with `just bench` (or `cargo bench --bench compare`).
//!
//! Options (after `--`): `--quick` uses a 10× smaller tree; `--memory` adds
//! the memory-bound checks (a single 4 GiB file and a tree of 200,000 files);
//! `--keep` keeps the work directory.

mod common;

use common::{
    FULL, QUICK, Rng, Run, Table, bench_args, bench_tree, copy_tree, machine, measure, settle,
    text, verdict,
};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

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

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

// The comparison's rows: an operation, a tool, its time and peak RSS, and
// its time as a multiple of Cairn's.
impl Table {
    /// One contender's result, with its ratio to `cairn` (Cairn's time).
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

const PASSPHRASE: &str = "benchmark passphrase";

/// Gives a command every tool's passphrase and discards its output.
fn quiet(c: &mut Command) {
    c.env("PASSPHRASE", PASSPHRASE)
        .env("BORG_PASSPHRASE", PASSPHRASE)
        .env("RESTIC_PASSWORD", PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// Runs a command quietly after a `settle`.
fn run_quiet(c: &mut Command) -> Run {
    settle();
    quiet(c);
    measure(c)
}

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// One run's setting: the `cairn` binary, the work directory and the copy
/// of the tree in it that the tools back up.
struct Bench {
    cairn: PathBuf,
    work: PathBuf,
    src: PathBuf,
}

impl Bench {
    /// duplicity's target.
    fn dup_target(&self) -> PathBuf {
        self.work.join("dup-target")
    }

    /// Cairn's target.
    fn our_target(&self) -> PathBuf {
        self.work.join("cairn-target")
    }

    /// `duplicity action --archive-dir dup-cache`.
    fn duplicity(&self, action: &str) -> Command {
        let mut c = Command::new("duplicity");
        c.args([action, "--archive-dir"])
            .arg(self.work.join("dup-cache"));
        c
    }

    /// `cairn args --archive-dir <work>/cache`.
    fn cairn(&self, args: &[&str], cache: &str) -> Command {
        let mut c = Command::new(&self.cairn);
        c.args(args).arg("--archive-dir").arg(self.work.join(cache));
        c
    }
}

/// Sizes of the full backups' archives, for the incrementals' rows.
struct FullSizes {
    dup: u64,
    ours: u64,
}

fn main() {
    let Some(argv) =
        bench_args("compare: a benchmark; run it with `just bench` (cargo bench --bench compare)")
    else {
        return;
    };
    let quick = argv.iter().any(|a| a == "--quick");
    let memory = argv.iter().any(|a| a == "--memory");
    let keep = argv.iter().any(|a| a == "--keep");
    let scale = if quick { QUICK } else { FULL };
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    let b = prepare(&base, quick);
    let size_mb = tree_bytes(&b.src) as f64 / 1e6;
    let (cores, load) = machine();
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
    let mut t = Table::default();
    t.line("| operation | tool | time | peak RSS | time / Cairn's | notes |".into());
    t.line("|---|---|---|---|---|---|".into());
    let sizes = full_backups(&mut t, &b);
    incrementals(&mut t, &b, &sizes);
    restores(&mut t, &b);
    real_text(&mut t, &b, &common::real_text_tree(&base, quick));
    rdiff_rows(&mut t, &b.work);
    if memory {
        memory_rows(&mut t, &b.work, &b.cairn);
    }
    t.write(
        &base.join("results.md"),
        &format!("{size_mb:.0} MB tree, {cores} cores, load {}", load.trim()),
    );
    if !keep {
        let _ = fs::remove_dir_all(&b.work);
    }
}

/// Builds the benchmark tree if needed, and copies it into a fresh work
/// directory, so the 1% change never touches the pristine tree.
fn prepare(base: &Path, quick: bool) -> Bench {
    let cairn = PathBuf::from(env!("CARGO_BIN_EXE_cairn"));
    let data = bench_tree(base, quick);
    let work = base.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let src = work.join("src");
    copy_tree(&data, &src);
    Bench { cairn, work, src }
}

// ---- Full backups -----------------------------------------------------------

/// Full backups by every tool at hand; returns duplicity's and Cairn's
/// archive sizes.
fn full_backups(t: &mut Table, b: &Bench) -> FullSizes {
    let mut c = b.duplicity("full");
    c.arg(&b.src).arg(url(&b.dup_target()));
    let dup_full = run_quiet(&mut c);
    let dup = du(&b.dup_target());
    let mut c = b.cairn(&["backup", "--full"], "cairn-cache");
    c.arg(&b.src).arg(url(&b.our_target()));
    let our_full = run_quiet(&mut c);
    let ours = du(&b.our_target());
    t.cairn("full backup", &our_full, &format!("archive {}", mb(ours)));
    t.row(
        "full backup",
        "duplicity 0.8",
        &dup_full,
        &our_full,
        &format!("archive {}", mb(dup)),
    );
    catalog_cost(t, b, &our_full);
    compress_level_5(t, b, &our_full);
    if which("borg") {
        borg(t, b, &our_full);
    }
    if which("restic") {
        restic(t, b, &our_full);
    }
    tar_gpg(t, b, &our_full);
    FullSizes { dup, ours }
}

/// The catalog's cost: the full backup `our_full` recorded its set in the
/// catalog (the default); the same without it.
fn catalog_cost(t: &mut Table, b: &Bench, our_full: &Run) {
    let bare_t = b.work.join("cairn-target-no-catalog");
    let mut c = b.cairn(
        &["backup", "--full", "--no-catalog"],
        "cairn-cache-no-catalog",
    );
    c.arg(&b.src).arg(url(&bare_t));
    let bare = run_quiet(&mut c);
    let overhead = (our_full.wall / bare.wall - 1.0) * 100.0;
    t.row(
        "full backup",
        "Cairn, `--no-catalog`",
        &bare,
        our_full,
        &format!(
            "the catalog costs {overhead:+.1} % (goal under 5 %: {}); peak RSS with it {:.0} MB (goal under 64 MB: {})",
            verdict(overhead < 5.0),
            our_full.rss_mb,
            verdict(our_full.rss_mb < 64.0)
        ),
    );
    let _ = fs::remove_dir_all(&bare_t);
}

/// The speed setting: deflate level 5 instead of gpg's default 6.
fn compress_level_5(t: &mut Table, b: &Bench, our_full: &Run) {
    let fast_t = b.work.join("cairn-target-z5");
    let mut c = b.cairn(
        &["backup", "--full", "--gpg-options=--compress-level=5"],
        "cairn-cache-z5",
    );
    c.arg(&b.src).arg(url(&fast_t));
    let r = run_quiet(&mut c);
    t.row(
        "full backup",
        "Cairn, `--compress-level=5`",
        &r,
        our_full,
        &format!("archive {}", mb(du(&fast_t))),
    );
    let _ = fs::remove_dir_all(&fast_t);
}

fn borg(t: &mut Table, b: &Bench, our_full: &Run) {
    settle();
    let repo = b.work.join("borg");
    let st = Command::new("borg")
        .args(["init", "--encryption=repokey"])
        .arg(&repo)
        .env("BORG_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = Command::new("borg");
    c.args(["create", "--compression", "lz4"])
        .arg(format!("{}::full", repo.display()))
        .arg(&b.src);
    quiet(&mut c);
    let r = measure(&mut c);
    t.row(
        "full backup",
        "borg (lz4)",
        &r,
        our_full,
        &format!("repository {}", mb(du(&repo))),
    );
}

fn restic(t: &mut Table, b: &Bench, our_full: &Run) {
    settle();
    let repo = b.work.join("restic");
    let st = Command::new("restic")
        .args(["init", "--repo"])
        .arg(&repo)
        .env("RESTIC_PASSWORD", PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = Command::new("restic");
    c.args(["backup", "--repo"]).arg(&repo).arg(&b.src);
    quiet(&mut c);
    let r = measure(&mut c);
    t.row(
        "full backup",
        "restic",
        &r,
        our_full,
        &format!("repository {}", mb(du(&repo))),
    );
}

/// The floor: tar piped into gpg, without compression.
fn tar_gpg(t: &mut Table, b: &Bench, our_full: &Run) {
    settle();
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "tar cf - -C '{}' . | gpg --batch --pinentry-mode loopback --passphrase '{PASSPHRASE}' -c -z0 --homedir '{}' -o '{}'",
        b.src.display(),
        b.work.join("gnupg").display(),
        b.work.join("tar.gpg").display()
    ));
    fs::create_dir_all(b.work.join("gnupg")).unwrap();
    quiet(&mut c);
    let r = measure(&mut c);
    t.row(
        "full backup",
        "tar | gpg -c -z0",
        &r,
        our_full,
        &format!(
            "no compression, no increments: {}",
            mb(du(&b.work.join("tar.gpg")))
        ),
    );
}

// ---- Incrementals after a 1% change -----------------------------------------

fn incrementals(t: &mut Table, b: &Bench, full: &FullSizes) {
    modify_one_percent(&b.src);
    let mut c = b.duplicity("incremental");
    c.arg(&b.src).arg(url(&b.dup_target()));
    let dup_inc = run_quiet(&mut c);
    let dup_inc_bytes = du(&b.dup_target()) - full.dup;
    let mut c = b.cairn(&["backup"], "cairn-cache");
    c.arg(&b.src).arg(url(&b.our_target()));
    let our_inc = run_quiet(&mut c);
    let our_inc_bytes = du(&b.our_target()) - full.ours;
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
}

// ---- Restores ---------------------------------------------------------------

/// The latest backup restored: duplicity's by duplicity and by Cairn, and
/// Cairn's by Cairn; the three restores must be the same.
fn restores(t: &mut Table, b: &Bench) {
    let rdir = restore_dir(&b.work);
    let mut c = b.duplicity("restore");
    c.arg(url(&b.dup_target())).arg(rdir.join("r-dup"));
    let dup_restore = run_quiet(&mut c);
    let mut c = b.cairn(&["restore"], "cairn-cache-2");
    c.arg(url(&b.dup_target())).arg(rdir.join("r-cairn-dup"));
    let our_restore_dup = run_quiet(&mut c);
    let mut c = b.cairn(&["restore"], "cairn-cache");
    c.arg(url(&b.our_target())).arg(rdir.join("r-cairn"));
    let our_restore = run_quiet(&mut c);
    t.cairn("restore latest (duplicity's archive)", &our_restore_dup, "");
    t.row(
        "restore latest (duplicity's archive)",
        "duplicity 0.8",
        &dup_restore,
        &our_restore_dup,
        "",
    );
    t.cairn("restore latest (Cairn's archive)", &our_restore, "");
    for (x, y) in [("r-dup", "r-cairn-dup"), ("r-dup", "r-cairn")] {
        let same = Command::new("diff")
            .arg("-r")
            .arg(rdir.join(x))
            .arg(rdir.join(y))
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(same, "restores {x} and {y} differ");
    }
    if rdir != b.work {
        let _ = fs::remove_dir_all(&rdir);
    }
}

// ---- Real text ---------------------------------------------------------------

/// A full backup and a restore of the real-text corpus by duplicity and
/// Cairn: where deflate's speed on the generated text says little.
fn real_text(t: &mut Table, b: &Bench, tree: &Path) {
    let mb_in = tree_bytes(tree);
    let (dup_t, our_t) = (b.work.join("dup-real"), b.work.join("cairn-real"));
    let mut c = Command::new("duplicity");
    c.args(["full", "--archive-dir"])
        .arg(b.work.join("dup-cache-real"))
        .arg(tree)
        .arg(url(&dup_t));
    let dup_full = run_quiet(&mut c);
    let mut c = b.cairn(&["backup", "--full"], "cairn-cache-real");
    c.arg(tree).arg(url(&our_t));
    let our_full = run_quiet(&mut c);
    let (dup, ours) = (du(&dup_t), du(&our_t));
    let op = format!("full backup, real text ({})", mb(mb_in));
    t.cairn(&op, &our_full, &format!("archive {}", mb(ours)));
    t.row(
        &op,
        "duplicity 0.8",
        &dup_full,
        &our_full,
        &format!("archive {}", mb(dup)),
    );
    let rdir = restore_dir(&b.work);
    let mut c = Command::new("duplicity");
    c.args(["restore", "--archive-dir"])
        .arg(b.work.join("dup-cache-real"))
        .arg(url(&dup_t))
        .arg(rdir.join("real-dup"));
    let dup_restore = run_quiet(&mut c);
    let mut c = b.cairn(&["restore"], "cairn-cache-real");
    c.arg(url(&our_t)).arg(rdir.join("real-cairn"));
    let our_restore = run_quiet(&mut c);
    t.cairn("restore, real text", &our_restore, "");
    t.row(
        "restore, real text",
        "duplicity 0.8",
        &dup_restore,
        &our_restore,
        "",
    );
    let same = Command::new("diff")
        .arg("-r")
        .arg(rdir.join("real-dup"))
        .arg(rdir.join("real-cairn"))
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(same, "the real-text restores differ");
    let _ = fs::remove_dir_all(rdir.join("real-dup"));
    let _ = fs::remove_dir_all(rdir.join("real-cairn"));
    t.line(format!(
        "| archive size, real text | Cairn / duplicity | | | | {:.3} ({}) |",
        ours as f64 / dup as f64,
        verdict(ours <= dup)
    ));
}

// ---- The delta engine against rdiff -------------------------------------------

/// Signature, delta and patch of a 200 MB file with a 1% edit: librsync's
/// `rdiff` (MD4, rollsum, the form duplicity uses) against Cairn's engine.
fn rdiff_rows(t: &mut Table, work: &Path) {
    let old = work.join("delta-old.bin");
    let new = work.join("delta-new.bin");
    make_delta_files(&old, &new);
    let sig = signature_rows(t, work, &old);
    delta_rows(t, work, &new, sig);
    patch_rows(t, work, &old, &new);
}

/// A file of 200 MB of random bytes, and a copy with 200 blocks of 10,000
/// bytes rewritten.
fn make_delta_files(old: &Path, new: &Path) {
    let mut rng = Rng(0xde17a);
    let mut data = vec![0u8; 200 << 20];
    rng.fill(&mut data);
    fs::write(old, &data).unwrap();
    for i in 0..200 {
        let at = (i * 1_000_003) % (data.len() - 12_000);
        let mut patch = vec![0u8; 10_000];
        rng.fill(&mut patch);
        data[at..at + 10_000].copy_from_slice(&patch);
    }
    fs::write(new, &data).unwrap();
}

/// The time `f` takes (no RSS: it runs in this process).
fn timed(f: impl FnOnce()) -> Run {
    let s = Instant::now();
    f();
    Run {
        wall: s.elapsed().as_secs_f64(),
        rss_mb: 0.0,
    }
}

/// `rdiff --force args`.
fn rdiff(args: &[&str]) -> Run {
    let mut c = Command::new("rdiff");
    c.arg("--force").args(args);
    measure(&mut c)
}

fn work_file(work: &Path, name: &str) -> String {
    work.join(name).to_str().unwrap().to_string()
}

/// The signature of `old` by both; returns Cairn's, checked to be
/// byte-identical to rdiff's.
fn signature_rows(t: &mut Table, work: &Path, old: &Path) -> Vec<u8> {
    use cairn::delta::{self, SignatureBuilder};
    let block = delta::block_size(200 << 20);
    let r_sig = rdiff(&[
        "-H",
        "md4",
        "-R",
        "rollsum",
        "-b",
        &block.to_string(),
        "-S",
        "8",
        "signature",
        old.to_str().unwrap(),
        &work_file(work, "r.sig"),
    ]);
    let mut sig = Vec::new();
    let o_sig = timed(|| {
        let mut f = fs::File::open(old).unwrap();
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
    sig
}

/// The delta from `sig` to `new` by both.
fn delta_rows(t: &mut Table, work: &Path, new: &Path, sig: Vec<u8>) {
    use cairn::delta::{self, Differ};
    let r_delta = rdiff(&[
        "delta",
        &work_file(work, "r.sig"),
        new.to_str().unwrap(),
        &work_file(work, "r.delta"),
    ]);
    let parsed = delta::parse_signature(sig).unwrap();
    let o_delta = timed(|| {
        let f = std::io::BufWriter::new(fs::File::create(work.join("o.delta")).unwrap());
        let (f, _stats) = Differ::new(&parsed)
            .diff(fs::File::open(new).unwrap(), f, |_| {})
            .unwrap();
        drop(f);
    });
    let delta_size = |name: &str| mb(fs::metadata(work.join(name)).unwrap().len());
    t.line(format!(
        "| rsync delta, 200 MB, 1% changed | **Cairn** | **{:.2} s** | – | 1.0× | delta {} |",
        o_delta.wall,
        delta_size("o.delta")
    ));
    t.row(
        "rsync delta, 200 MB, 1% changed",
        "rdiff",
        &r_delta,
        &o_delta,
        &format!("delta {}", delta_size("r.delta")),
    );
}

/// `old` patched by both, rdiff with Cairn's delta and Cairn with rdiff's;
/// both results must be as long as `new`.
fn patch_rows(t: &mut Table, work: &Path, old: &Path, new: &Path) {
    let r_patch = rdiff(&[
        "patch",
        old.to_str().unwrap(),
        &work_file(work, "o.delta"),
        &work_file(work, "r.patched"),
    ]);
    let o_patch = timed(|| {
        let out = std::io::BufWriter::new(fs::File::create(work.join("o.patched")).unwrap());
        cairn::delta::apply(
            &fs::File::open(old).unwrap(),
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
            fs::metadata(new).unwrap().len()
        );
    }
}

// ---- Memory -------------------------------------------------------------------

/// Peak RSS for a single 4 GiB file and for a tree of 200,000 files.
fn memory_rows(t: &mut Table, work: &Path, cairn: &Path) {
    let rdir = restore_dir(work);
    let big = work.join("mem-big");
    make_big_file(&big);
    let many = work.join("mem-many");
    make_many_files(&many);
    for (what, src) in [("4 GiB single file", &big), ("200,000 files", &many)] {
        let target = work.join(format!("mem-target-{}", what.len()));
        // The first run is a full backup, the second finds nothing changed.
        for label in ["full backup", "incremental, nothing changed"] {
            settle();
            let mut c = memory_cmd(cairn, "backup", work);
            c.arg(src).arg(url(&target));
            let r = measure(&mut c);
            t.line(format!("| {label}, {what} | **Cairn** | {:.2} s | **{:.0} MB** | – | peak RSS goal: under 64 MB |", r.wall, r.rss_mb));
        }
        let dest = rdir.join(format!("mem-restore-{}", what.len()));
        settle();
        let mut c = memory_cmd(cairn, "restore", work);
        c.arg(url(&target)).arg(&dest);
        let r = measure(&mut c);
        t.line(format!("| restore, {what} | **Cairn** | {:.2} s | **{:.0} MB** | – | peak RSS goal: under 64 MB |", r.wall, r.rss_mb));
        let _ = fs::remove_dir_all(&dest);
        let _ = fs::remove_dir_all(&target);
    }
    if rdir != work {
        let _ = fs::remove_dir_all(&rdir);
    }
}

/// `cairn action --archive-dir <work>/mem-cache`, quiet.
fn memory_cmd(cairn: &Path, action: &str, work: &Path) -> Command {
    let mut c = Command::new(cairn);
    c.args([action, "--archive-dir"])
        .arg(work.join("mem-cache"))
        .env("PASSPHRASE", "memory")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// `dir/four-gib.bin`: 4 GiB, half random, half text-like, so compression
/// has work to do.
fn make_big_file(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut f = std::io::BufWriter::new(fs::File::create(dir.join("four-gib.bin")).unwrap());
    let mut rng = Rng(0xb16);
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..4096 {
        if i % 2 == 0 {
            rng.fill(&mut buf);
        } else {
            buf = text(&mut rng, 1 << 20);
        }
        f.write_all(&buf).unwrap();
    }
}

/// 200,000 tiny files in directories of 500.
fn make_many_files(many: &Path) {
    for i in 0..200_000 {
        let dir = many.join(format!("d{:04}", i / 500));
        if i % 500 == 0 {
            fs::create_dir_all(&dir).unwrap();
        }
        fs::write(dir.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
}
