//! Helpers shared by the benchmarks (`mod common;` in each): the command
//! line, a deterministic random-number generator and text to fill files
//! with, a child process's wall time and peak RSS, and the results table.

// Each benchmark uses only part of this.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The command line, or `None` after printing `usage` when run without
/// `--bench`: `cargo bench` passes it; `cargo test --all-targets` runs
/// benches without it, and a debug-build benchmark measures nothing useful.
pub fn bench_args(usage: &str) -> Option<Vec<String>> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.iter().any(|a| a == "--bench") {
        Some(argv)
    } else {
        println!("{usage}");
        None
    }
}

/// The number of cores and the contents of /proc/loadavg.
pub fn machine() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    (cores, load)
}

/// A xorshift generator: fast, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const TEXT: &[&str] = &[
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

/// `n` bytes of text-like data (words, now and then a number).
pub fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        let r = rng.next();
        out.extend_from_slice(TEXT[(r % TEXT.len() as u64) as usize].as_bytes());
        if r.is_multiple_of(97) {
            out.extend_from_slice(format!("{} ", r % 100_000).as_bytes());
        }
    }
    out.truncate(n);
    out
}

/// The file whose presence says the tree at `root` was built completely:
/// `<root>.complete`, next to it.
pub fn complete_marker(root: &Path) -> PathBuf {
    root.parent().unwrap().join(format!(
        "{}.complete",
        root.file_name().unwrap().to_str().unwrap()
    ))
}

/// `cp -a from to`.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A child process's wall time (seconds) and peak RSS (MB).
pub struct Run {
    pub wall: f64,
    pub rss_mb: f64,
}

/// Runs a command, returning wall time and peak RSS (of the child and its
/// descendants, via wait4).
pub fn measure(cmd: &mut Command) -> Run {
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

/// Flushes dirty pages before a timed run, so no run pays for the
/// writeback of the one before it.
pub fn settle() {
    let _ = Command::new("sync").status();
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// The results: each line printed as it comes, and kept for results.md.
/// Each benchmark adds its own kinds of row.
#[derive(Default)]
pub struct Table {
    rows: Vec<String>,
}

impl Table {
    pub fn line(&mut self, line: String) {
        println!("{line}");
        self.rows.push(line);
    }

    /// Writes `header`, a blank line and the lines so far to `path`.
    pub fn write(&self, path: &Path, header: &str) {
        let mut f = fs::File::create(path).unwrap();
        writeln!(f, "{header}\n").unwrap();
        for r in &self.rows {
            writeln!(f, "{r}").unwrap();
        }
        println!("\nresults written to {}", path.display());
    }
}

/// How big the benchmark tree is: the full one is 618 MB (random, text
/// and 20,000 small files), the quick one a tenth.
#[derive(Clone, Copy)]
pub struct Scale {
    pub random_files: usize,
    pub random_size: usize,
    pub text_files: usize,
    pub text_size: usize,
    pub small_files: usize,
}

pub const FULL: Scale = Scale {
    random_files: 20,
    random_size: 10 << 20,
    text_files: 30,
    text_size: 10 << 20,
    small_files: 20_000,
};

pub const QUICK: Scale = Scale {
    random_files: 2,
    random_size: 10 << 20,
    text_files: 3,
    text_size: 10 << 20,
    small_files: 2_000,
};

/// Builds the benchmark tree (deterministic; reused when present).
pub fn make_tree(root: &Path, s: Scale) {
    if complete_marker(root).exists() {
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
    fs::write(complete_marker(root), b"").unwrap();
}

/// Real text, next to the generated tree (whose 23-word vocabulary fills
/// every hash chain and so sets deflate's pace unlike any real file): the
/// text files (sources, documentation, manifests) of the crates Cargo.lock
/// names, as cargo unpacked them, in name order, up to `cap` bytes (160 MB;
/// 16 MB quick). The lock file fixes the set; `cargo fetch --locked`
/// (which `just bench` runs) unpacks all of it. Built once under `base`.
pub fn real_text_tree(base: &Path, quick: bool) -> PathBuf {
    let root = base.join(if quick {
        "real-text-quick"
    } else {
        "real-text"
    });
    if complete_marker(&root).exists() {
        return root;
    }
    let cap: u64 = if quick { 16_000_000 } else { 160_000_000 };
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registry = fs::read_dir(home.join("registry/src"))
        .expect("cargo's registry sources (run `cargo fetch --locked`)")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("an unpacked registry");
    let lock = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let mut crates: Vec<String> = lock
        .split("[[package]]")
        .filter(|p| p.contains("source = \"registry+"))
        .filter_map(|p| {
            let field = |k: &str| {
                let at = p.find(&format!("{k} = \""))? + k.len() + 4;
                Some(p[at..at + p[at..].find('"')?].to_string())
            };
            Some(format!("{}-{}", field("name")?, field("version")?))
        })
        .collect();
    crates.sort();
    let mut total = 0u64;
    for c in crates {
        for f in text_files(&registry.join(&c)) {
            let len = fs::metadata(&f).map_or(0, |m| m.len());
            if total + len > cap {
                fs::write(complete_marker(&root), b"").unwrap();
                return root;
            }
            let dest = root.join(f.strip_prefix(&registry).unwrap());
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(&f, &dest).unwrap();
            total += len;
        }
    }
    panic!(
        "only {total} bytes of crate sources in {}: run `cargo fetch --locked`",
        registry.display()
    );
}

/// The text files under `dir`, sorted by path.
fn text_files(dir: &Path) -> Vec<PathBuf> {
    const EXT: &[&str] = &["rs", "md", "c", "h", "toml", "txt", "json", "py", "html"];
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file()
                && p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| EXT.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The benchmark tree under `base` (`tree` or `tree-quick`), built the
/// first time.
pub fn bench_tree(base: &Path, quick: bool) -> PathBuf {
    let data = base.join(if quick { "tree-quick" } else { "tree" });
    fs::create_dir_all(base).unwrap();
    if !complete_marker(&data).exists() {
        eprintln!("building the benchmark tree in {} …", data.display());
        make_tree(&data, if quick { QUICK } else { FULL });
    }
    data
}
