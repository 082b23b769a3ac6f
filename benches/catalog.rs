//! The catalog's benchmark, one run, every figure printed. `just
//! bench-catalog` (or `cargo bench --bench catalog`).
//!
//! Part 1, synthetic: one chain of 1,000,000 files in 1,000 directories of
//! 1,000 and 26 incrementals each changing 1 % of the files, built through
//! the library ([`Catalog::index_entries`]); then the time to build it,
//! `list_dir` of a 1,000-entry directory at several times, `history` of one
//! path, `find` over every path, and its size on disk, each against its goal.
//!
//! Part 2, a real target: a tree of 200,000 small files backed up with the
//! `cairn` binary (`--no-catalog`), then 9 incrementals touching 1 % of the
//! files each; then `cairn catalog rebuild` (time, peak RSS) next to `cairn
//! ls --no-catalog` (the signatures read directly) and `cairn ls` (from the
//! catalog).
//!
//! Options (after `--`): `--quick` (100,000 synthetic files; 20,000 real
//! files), `--synthetic` or `--rebuild` (only that part), `--keep` (keep the
//! work files).

mod common;

use cairn::archive::index::Index;
use cairn::archive::meta::{FileType, Meta};
use cairn::catalog::{Catalog, Entry, SetFacts, VolumeFacts};
use common::{
    Rng, Run, Table, bench_args, complete_marker, copy_tree, machine, measure, settle, text,
    verdict,
};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A well-mixed hash of two numbers (splitmix64's finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const WORDS: &[&str] = &[
    "invoice",
    "holiday",
    "garden",
    "kitchen",
    "report",
    "budget",
    "letter",
    "notes",
    "summer",
    "winter",
    "birthday",
    "wedding",
    "school",
    "contract",
    "tax",
    "receipt",
    "draft",
    "final",
    "meeting",
    "project",
    "backup",
    "photo",
    "scan",
    "recipe",
    "travel",
    "family",
    "house",
    "car",
    "insurance",
    "bank",
    "doctor",
    "music",
    "concert",
    "lecture",
    "thesis",
    "slides",
    "parser",
    "server",
    "client",
    "config",
];

fn word(h: u64, i: u32) -> &'static str {
    WORDS[((h >> (i * 8)) % WORDS.len() as u64) as usize]
}

fn capital(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The top-level directories of the synthetic home, by name style.
const TOPS: &[&str] = &[
    "Documents",
    "Music",
    "Pictures",
    "Maildir",
    "src",
    "Downloads",
    "Videos",
    "Archive",
    ".config",
    "Projects",
];

fn mid_name(top: usize, k: usize) -> String {
    let h = mix(top as u64, k as u64);
    match top % 5 {
        1 => format!(
            "{} - {} {} ({})",
            capital(word(h, 0)),
            capital(word(h, 1)),
            capital(word(h, 2)),
            1970 + k
        ),
        2 => format!(
            "{}-{:02} {}",
            2000 + k / 12,
            k % 12 + 1,
            capital(word(h, 0))
        ),
        3 => format!(".{}.{}-{k}", capital(word(h, 0)), word(h, 1)),
        4 => format!("{}-{}-{k}", word(h, 0), word(h, 1)),
        _ => format!("{} {} {k:03}", capital(word(h, 0)), word(h, 1)),
    }
}

/// A file name in the style of its top-level directory; `n` keeps it unique
/// in its directory.
fn file_name(top: usize, d: usize, n: u32) -> Vec<u8> {
    let h = mix(d as u64, n as u64);
    let pick = |xs: &[&'static str]| xs[(h >> 40) as usize % xs.len()];
    match top % 5 {
        1 => format!(
            "{n:04} - {} {}.{}",
            capital(word(h, 0)),
            capital(word(h, 1)),
            pick(&["flac", "mp3", "ogg"])
        ),
        2 => format!(
            "IMG_{}{:02}{:02}_{:02}{:02}{:02}_{n}.{}",
            2010 + h % 15,
            (h >> 8) % 12 + 1,
            (h >> 16) % 28 + 1,
            (h >> 24) % 24,
            (h >> 32) % 60,
            (h >> 48) % 60,
            pick(&["jpg", "jpg", "jpg", "png", "heic", "CR2"])
        ),
        3 => format!(
            "{}.M{}P{}.raspberrypi,S={}:2,S",
            1_500_000_000 + h % 300_000_000,
            (h >> 20) % 1_000_000,
            n,
            2_000 + (h >> 36) % 200_000
        ),
        4 => format!(
            "{}_{}_{n}.{}",
            word(h, 0),
            word(h, 1),
            pick(&["rs", "py", "c", "h", "js", "go", "toml", "md"])
        ),
        _ => format!(
            "{}-{}-{n}.{}",
            word(h, 0),
            word(h, 1),
            pick(&["pdf", "docx", "odt", "xlsx", "txt", "md"])
        ),
    }
    .into_bytes()
}

/// Sizes from a few hundred bytes to a few MB, most small.
fn file_size(h: u64) -> u64 {
    (1u64 << (8 + h % 14)) + (h >> 20) % 4096
}

fn file_meta(size: u64, mtime: i64) -> Meta {
    Meta {
        kind: Some(FileType::Regular),
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        uname: b"pi".to_vec(),
        gname: b"pi".to_vec(),
        mtime,
        size,
        ..Meta::default()
    }
}

fn dir_meta(mtime: i64) -> Meta {
    Meta {
        kind: Some(FileType::Directory),
        mode: 0o755,
        size: 0,
        ..file_meta(0, mtime)
    }
}

fn entry(index: Index, meta: Meta) -> Entry {
    Entry {
        index,
        meta,
        slack: 0,
    }
}

/// One leaf directory of the synthetic tree.
struct Dir {
    top: usize,
    index: Index,
    /// Whether it is the first leaf under its top-level directory (which is
    /// then listed just before it).
    first_in_top: bool,
    /// The numbers of the files that exist now.
    live: Vec<u32>,
    next: u32,
}

impl Dir {
    fn file(&self, d: usize, n: u32) -> Index {
        self.index.child(&file_name(self.top, d, n))
    }
}

/// Leaf directories, in index order.
fn synthetic_dirs(leaves: usize, per_dir: usize) -> Vec<Dir> {
    let mids = leaves / TOPS.len();
    let mut dirs: Vec<Dir> = (0..TOPS.len())
        .flat_map(|top| {
            (0..mids).map(move |k| Dir {
                top,
                index: Index::from_components(vec![
                    TOPS[top].as_bytes().to_vec(),
                    mid_name(top, k).into_bytes(),
                ]),
                first_in_top: false,
                live: (0..per_dir as u32).collect(),
                next: per_dir as u32,
            })
        })
        .collect();
    dirs.sort_by(|a, b| a.index.cmp(&b.index));
    for i in 0..dirs.len() {
        dirs[i].first_in_top = i == 0 || dirs[i - 1].top != dirs[i].top;
    }
    dirs
}

const DAY: i64 = 86_400;
const T0: i64 = 1_735_689_600; // 2025-01-01
const URL: &str = "file:///srv/backup/home";

fn volumes(full: bool, time: i64, bytes: u64) -> Vec<VolumeFacts> {
    let n = (bytes / (200 << 20)).max(1);
    let kind = if full { "full" } else { "inc" };
    let name = cairn::time::to_string(time);
    (1..=n)
        .map(|v| VolumeFacts {
            number: v,
            name: format!("duplicity-{kind}.{name}.vol{v}.difftar.gpg"),
            size: Some((bytes / n).min(200 << 20)),
            sha1: Some(format!(
                "{:040x}",
                mix(time as u64, v) as u128 * 0x1_0000_0001
            )),
        })
        .collect()
}

/// The full set's entries, streamed in index order.
fn full_entries(dirs: &[Dir]) -> impl Iterator<Item = Entry> + '_ {
    std::iter::once(entry(Index::root(), dir_meta(T0 - DAY))).chain(
        dirs.iter().enumerate().flat_map(|(d, dir)| {
            let mut out = Vec::with_capacity(dir.live.len() + 2);
            if dir.first_in_top {
                out.push(entry(
                    Index::from_components(vec![dir.index.components()[0].clone()]),
                    dir_meta(T0 - 2 * DAY),
                ));
            }
            out.push(entry(dir.index.clone(), dir_meta(T0 - 3 * DAY)));
            let mut files: Vec<Entry> = dir
                .live
                .iter()
                .map(|&n| {
                    let h = mix(d as u64, n as u64);
                    entry(
                        dir.file(d, n),
                        file_meta(
                            file_size(h),
                            T0 - 30 * DAY - (h % (3000 * DAY as u64)) as i64,
                        ),
                    )
                })
                .collect();
            files.sort_by(|a, b| a.index.cmp(&b.index));
            out.extend(files);
            out
        }),
    )
}

/// An incremental at `time` changing 1 % of the files (80 % of those
/// changed, 10 % deleted, and as many new), in index order. The first file
/// of the first directory changes in every set.
fn incremental(dirs: &mut [Dir], rng: &mut Rng, time: i64) -> Vec<Entry> {
    let files: usize = dirs.iter().map(|d| d.live.len()).sum();
    let mut touched: HashSet<(usize, u32)> = HashSet::new();
    let mut per_dir: BTreeMap<usize, (bool, Vec<Entry>)> = BTreeMap::new();
    let changed = |dirs: &[Dir], d: usize, n: u32, rng: &mut Rng| {
        entry(
            dirs[d].file(d, n),
            file_meta(file_size(rng.next()), time - (rng.next() % 86_000) as i64),
        )
    };
    per_dir
        .entry(0)
        .or_default()
        .1
        .push(changed(dirs, 0, 0, rng));
    touched.insert((0, 0));
    let mut deleted: Vec<(usize, u32)> = Vec::new();
    let mut new: Vec<(usize, u32)> = Vec::new();
    for _ in 1..files / 100 {
        let d = rng.below(dirs.len());
        match rng.below(10) {
            0 => {
                let n = dirs[d].next;
                dirs[d].next += 1;
                new.push((d, n));
            }
            r => {
                let n = dirs[d].live[rng.below(dirs[d].live.len())];
                if !touched.insert((d, n)) {
                    continue;
                }
                if r == 1 {
                    deleted.push((d, n));
                } else {
                    let e = changed(dirs, d, n, rng);
                    per_dir.entry(d).or_default().1.push(e);
                }
            }
        }
    }
    for &(d, n) in &new {
        dirs[d].live.push(n);
        let e = changed(dirs, d, n, rng);
        let slot = per_dir.entry(d).or_default();
        slot.0 = true;
        slot.1.push(e);
    }
    for &(d, n) in &deleted {
        let dir = &mut dirs[d];
        let at = dir.live.iter().position(|&x| x == n).expect("live");
        dir.live.swap_remove(at);
        let e = entry(dir.file(d, n), Meta::default());
        let slot = per_dir.entry(d).or_default();
        slot.0 = true;
        slot.1.push(e);
    }
    let mut out = Vec::new();
    for (d, (dir_changed, mut es)) in per_dir {
        if dir_changed {
            out.push(entry(
                dirs[d].index.clone(),
                dir_meta(time - (rng.next() % 86_000) as i64),
            ));
        }
        es.sort_by(|a, b| a.index.cmp(&b.index));
        out.extend(es);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and max of some timings, in ms.
fn spread(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// The catalog benchmark's rows: what was measured, the result, the goal and
// whether it was met.
impl Table {
    fn row(&mut self, what: &str, result: &str, goal: &str, verdict: &str) {
        self.line(format!("| {what} | {result} | {goal} | {verdict} |"));
    }
}

fn db_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn remove_db(path: &Path) {
    for s in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{s}", path.display()));
    }
}

// ---- Part 1: a synthetic catalog --------------------------------------------

fn synthetic(t: &mut Table, base: &Path, quick: bool, keep: bool) {
    let (leaves, per_dir, incs) = if quick {
        (100, 1_000, 26)
    } else {
        (1_000, 1_000, 26)
    };
    let files = leaves * per_dir;
    let db = base.join(format!("synthetic-{files}.sqlite"));
    remove_db(&db);
    println!(
        "\nPart 1: a synthetic catalog, one chain: a full of {} files in {} directories of {}, then \
         {incs} weekly incrementals each changing 1 % of the files (80 % changed, 10 % deleted, 10 % \
         new); built with Catalog::index_entries, one transaction per set; {}\n",
        thousands(files as u64),
        thousands(leaves as u64),
        thousands(per_dir as u64),
        db.display()
    );
    t.line("| measurement | result | goal | |".into());
    t.line("|---|---|---|---|".into());
    let mut dirs = synthetic_dirs(leaves, per_dir);
    let mut cat = Catalog::open(&db).unwrap();
    let times = build(t, &mut cat, &mut dirs, incs);
    list_dir_timings(t, &cat, &dirs, &times, per_dir);
    history_timings(t, &cat, &dirs);
    find_timings(t, &cat);
    size_on_disk(t, cat, &db);
    if !keep {
        remove_db(&db);
    }
}

/// Builds the catalog, the full set then `incs` incrementals, and checks its
/// last set; returns the sets' times.
fn build(t: &mut Table, cat: &mut Catalog, dirs: &mut [Dir], incs: usize) -> Vec<i64> {
    let (full_rows, full_time) = build_full(t, cat, dirs);
    let (inc_rows, inc_time, times) = build_incrementals(t, cat, dirs, incs);
    let total_rows = full_rows + inc_rows;
    t.row(
        &format!(
            "build: all {} sets ({} rows)",
            incs + 1,
            thousands(total_rows as u64)
        ),
        &format!(
            "{:.1} s, {} rows/s",
            full_time + inc_time,
            thousands((total_rows as f64 / (full_time + inc_time)) as u64)
        ),
        "–",
        "",
    );
    let sets = cat.sets(URL).unwrap();
    assert_eq!(sets.len(), incs + 1);
    let live: usize = dirs.iter().map(|d| d.live.len()).sum();
    let in_catalog = sets.last().unwrap().files as usize;
    assert_eq!(
        in_catalog,
        live + 1 + TOPS.len() + dirs.len(),
        "paths at the last set"
    );
    times
}

/// Indexes the full set; returns its rows and the seconds it took.
fn build_full(t: &mut Table, cat: &mut Catalog, dirs: &[Dir]) -> (usize, f64) {
    let files: usize = dirs.iter().map(|d| d.live.len()).sum();
    let full_rows = 1 + TOPS.len() + dirs.len() + files;
    // One pass to size the set, which also times making the entries.
    let start = Instant::now();
    let bytes: u64 = full_entries(dirs).map(|e| e.meta.size).sum();
    let generate = start.elapsed().as_secs_f64();
    let facts = SetFacts {
        full: true,
        start_time: None,
        end_time: T0,
        chain_start: T0,
        volumes: volumes(true, T0, bytes),
        stored_bytes: Some(bytes / 2),
        writer: Some("cairn"),
    };
    let start = Instant::now();
    cat.index_entries(URL, &facts, full_entries(dirs)).unwrap();
    let full_time = start.elapsed().as_secs_f64();
    t.row(
        &format!("build: the full set ({} rows)", thousands(full_rows as u64)),
        &format!(
            "{full_time:.1} s, {} rows/s (of which making the entries in the benchmark: {generate:.1} s)",
            thousands((full_rows as f64 / full_time) as u64)
        ),
        "–",
        "",
    );
    (full_rows, full_time)
}

/// Indexes `incs` weekly incrementals; returns their rows, the seconds they
/// took, and every set's time (the full's first).
fn build_incrementals(
    t: &mut Table,
    cat: &mut Catalog,
    dirs: &mut [Dir],
    incs: usize,
) -> (usize, f64, Vec<i64>) {
    let mut rng = Rng(0xca7a_1095);
    let mut inc_rows = 0usize;
    let mut inc_time = 0.0;
    let mut inc_max = 0.0f64;
    let mut times = vec![T0];
    for k in 1..=incs as i64 {
        let time = T0 + 7 * DAY * k;
        let entries = incremental(dirs, &mut rng, time);
        inc_rows += entries.len();
        let bytes: u64 = entries.iter().map(|e| e.meta.size).sum();
        let facts = SetFacts {
            full: false,
            start_time: Some(*times.last().unwrap()),
            end_time: time,
            chain_start: T0,
            volumes: volumes(false, time, bytes),
            stored_bytes: Some(bytes / 4),
            writer: Some("cairn"),
        };
        let start = Instant::now();
        cat.index_entries(URL, &facts, entries).unwrap();
        let s = start.elapsed().as_secs_f64();
        inc_time += s;
        inc_max = inc_max.max(s);
        times.push(time);
    }
    t.row(
        &format!(
            "build: {incs} incrementals ({} rows, {} per set)",
            thousands(inc_rows as u64),
            thousands((inc_rows / incs) as u64)
        ),
        &format!(
            "{inc_time:.1} s: {:.2} s per set (max {inc_max:.2} s), {} rows/s",
            inc_time / incs as f64,
            thousands((inc_rows as f64 / inc_time) as u64)
        ),
        "–",
        "",
    );
    (inc_rows, inc_time, times)
}

/// `list_dir` at several times: 50 calls each, on different directories.
fn list_dir_timings(t: &mut Table, cat: &Catalog, dirs: &[Dir], times: &[i64], per_dir: usize) {
    let incs = times.len() - 1;
    let mut all = Vec::new();
    let points = [0usize, incs / 3, 2 * incs / 3, incs];
    let first = {
        let s = Instant::now();
        cat.list_dir(URL, times[incs], &dirs[0].index).unwrap();
        s.elapsed()
    };
    for &p in &points {
        // Between two sets, as a person asks: the set before is the answer.
        let (v, entries) = list_dirs_at(cat, dirs, times[p] + 3 * DAY, p);
        let (med, max) = spread(v.clone());
        all.extend(v);
        t.row(
            &format!(
                "list_dir of a directory of ~{} at set {p} of {incs} ({}), 50 directories",
                thousands(per_dir as u64),
                if p == 0 { "the full" } else { "an incremental" }
            ),
            &format!(
                "median {med:.1} ms, max {max:.1} ms ({} entries on average)",
                entries / 50
            ),
            "< 20 ms",
            verdict(max < 20.0),
        );
    }
    let (med, max) = spread(all);
    t.row(
        &format!(
            "list_dir, all {} calls (the first call of all, untimed above: {:.1} ms)",
            points.len() * 50,
            ms(first)
        ),
        &format!("median {med:.1} ms, max {max:.1} ms"),
        "< 20 ms",
        verdict(max < 20.0),
    );
}

/// 50 `list_dir` calls at time `at`, on directories picked by `p`; returns
/// their timings and the entries listed.
fn list_dirs_at(cat: &Catalog, dirs: &[Dir], at: i64, p: usize) -> (Vec<Duration>, usize) {
    let mut v = Vec::new();
    let mut entries = 0;
    for i in 0..50 {
        let d = &dirs[(i * 7919 + p * 31) % dirs.len()];
        let s = Instant::now();
        let got = cat.list_dir(URL, at, &d.index).unwrap();
        v.push(s.elapsed());
        entries += got.len();
    }
    (v, entries)
}

/// `history` of the file changed in every set, then of 50 random files.
fn history_timings(t: &mut Table, cat: &Catalog, dirs: &[Dir]) {
    let hot = dirs[0].file(0, 0);
    let mut v = Vec::new();
    let mut versions = 0;
    for _ in 0..50 {
        let s = Instant::now();
        versions = cat.history(URL, &hot).unwrap().len();
        v.push(s.elapsed());
    }
    let (med, max) = spread(v);
    t.row(
        &format!("history of a file changed in every set ({versions} versions), 50 calls"),
        &format!("median {med:.2} ms, max {max:.2} ms"),
        "< 5 ms",
        verdict(max < 5.0),
    );
    let mut v = Vec::new();
    let mut versions = 0;
    let mut rng = Rng(0x4157);
    for _ in 0..50 {
        let d = rng.below(dirs.len());
        let dir = &dirs[d];
        let n = dir.live[rng.below(dir.live.len())];
        let p = dir.file(d, n);
        let s = Instant::now();
        versions += cat.history(URL, &p).unwrap().len();
        v.push(s.elapsed());
    }
    let (med, max) = spread(v);
    t.row(
        &format!(
            "history of 50 random files ({:.2} versions on average)",
            versions as f64 / 50.0
        ),
        &format!("median {med:.2} ms, max {max:.2} ms"),
        "< 5 ms",
        verdict(max < 5.0),
    );
}

/// `find` over every path name, with a few patterns.
fn find_timings(t: &mut Table, cat: &Catalog) {
    for (pattern, limit, what) in [
        ("zebra", 100, "a word no name has: every name read"),
        ("IMG_2019*.heic", 1000, "a glob"),
        ("invoice", 100, "a word in many names, limit 100"),
        ("*.flac", 10_000, "a glob matching many names"),
    ] {
        let mut v = Vec::new();
        let mut found = 0;
        for _ in 0..3 {
            let s = Instant::now();
            found = cat.find(URL, pattern, limit).unwrap().len();
            v.push(s.elapsed());
        }
        let (med, max) = spread(v);
        t.row(
            &format!("find \"{pattern}\" (limit {limit}): {what}; {found} found, 3 calls"),
            &format!("median {med:.0} ms, max {max:.0} ms"),
            "< 1 s",
            verdict(max < 1000.0),
        );
    }
}

/// The catalog's size on disk, with the WAL, then closed and checkpointed;
/// and by table and index when SQLite has its dbstat table.
fn size_on_disk(t: &mut Table, cat: Catalog, db: &Path) {
    let open_size = db_size(db);
    drop(cat);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64;
    let version_rows = count("SELECT count(*) FROM version");
    let path_rows = count("SELECT count(*) FROM path");
    let page = count("PRAGMA page_size");
    let name_len: f64 = conn
        .query_row("SELECT avg(length(name)) FROM path", [], |r| r.get(0))
        .unwrap();
    let by_table = size_by_table(&conn);
    drop(conn);
    let size = db_size(db);
    let per_million = size as f64 / 1e6 / (version_rows as f64 / 1e6);
    t.row(
        &format!(
            "size on disk: {} version rows, {} paths of {name_len:.1} bytes on average (page size {page})",
            thousands(version_rows),
            thousands(path_rows)
        ),
        &format!(
            "{:.1} MB after a checkpoint ({:.1} MB with the WAL before), {per_million:.1} MB per million file-versions",
            size as f64 / 1e6,
            open_size as f64 / 1e6
        ),
        "< 100 MB per million",
        verdict(per_million < 100.0),
    );
    if !by_table.is_empty() {
        let parts: Vec<String> = by_table
            .iter()
            .filter(|(_, b)| *b >= 100_000)
            .map(|(n, b)| format!("{n} {:.1} MB", *b as f64 / 1e6))
            .collect();
        t.row(
            "size by table and index (dbstat; those over 0.1 MB)",
            &parts.join(", "),
            "–",
            "",
        );
    }
}

/// Bytes in each table and index, largest first; none when SQLite has no
/// dbstat table.
fn size_by_table(conn: &rusqlite::Connection) -> Vec<(String, i64)> {
    conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .unwrap_or_default()
}

// ---- Part 2: a real target ------------------------------------------------

fn small_file(root: &Path, i: usize) -> PathBuf {
    root.join(format!("d{:03}/f{i:06}.txt", i / 1000))
}

/// `files` small text files in directories of 1,000 (deterministic; reused
/// when complete).
fn make_small_tree(root: &Path, files: usize) {
    if complete_marker(root).exists() {
        return;
    }
    eprintln!("building {} …", root.display());
    let _ = fs::remove_dir_all(root);
    let mut rng = Rng(0x5eed);
    for i in 0..files {
        let p = small_file(root, i);
        if i.is_multiple_of(1000) {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        let n = 100 + rng.below(1_900);
        fs::write(p, text(&mut rng, n)).unwrap();
    }
    fs::write(complete_marker(root), b"").unwrap();
}

/// Rewrites 1 % of the files and moves their mtime a few seconds on.
fn touch_one_percent(root: &Path, files: usize, round: u64) {
    let mut rng = Rng(0x70c4 + round);
    for _ in 0..files / 100 {
        let p = small_file(root, rng.below(files));
        let old = fs::metadata(&p).unwrap().modified().unwrap();
        let n = 100 + rng.below(1_900);
        let f = fs::File::create(&p).unwrap();
        (&f).write_all(&text(&mut rng, n)).unwrap();
        f.set_modified(old + Duration::from_secs(3 + rng.below(5) as u64))
            .unwrap();
    }
}

/// Part 2's setting: the `cairn` binary, and in the work directory a copy
/// of the tree, a target and an archive dir.
struct Real<'a> {
    cairn: &'a Path,
    work: PathBuf,
    src: PathBuf,
    url: String,
    archive: PathBuf,
}

impl Real<'_> {
    /// `cairn args --archive-dir archive`, with the passphrase, stderr
    /// discarded and stdout discarded or written to `out`.
    fn cmd(&self, args: &[&str], archive: &Path, out: Option<&Path>) -> Command {
        let mut c = Command::new(self.cairn);
        c.args(args)
            .arg("--archive-dir")
            .arg(archive)
            .env("PASSPHRASE", "catalog benchmark")
            .stderr(Stdio::null())
            .stdout(match out {
                Some(p) => Stdio::from(fs::File::create(p).unwrap()),
                None => Stdio::null(),
            });
        c
    }

    /// Runs `cmd` with the archive dir after a `settle`.
    fn run(&self, args: &[&str], out: Option<&Path>) -> Run {
        settle();
        measure(&mut self.cmd(args, &self.archive, out))
    }
}

fn rebuild(t: &mut Table, base: &Path, cairn: &Path, quick: bool, keep: bool) {
    let files = if quick { 20_000 } else { 200_000 };
    let sets = 10;
    let tree = base.join(format!("tree-{files}"));
    make_small_tree(&tree, files);
    let work = base.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let real = Real {
        cairn,
        src: work.join("src"),
        url: format!("file://{}", work.join("target").display()),
        archive: work.join("archive"),
        work,
    };
    copy_tree(&tree, &real.src);
    println!(
        "\nPart 2: a real target: {} small files in directories of 1,000, a full backup and {} \
         incrementals each rewriting 1 % of the files (`cairn backup --no-catalog`, encrypted); \
         then the catalog rebuilt from it, and the listing of the latest backup with and without it\n",
        thousands(files as u64),
        sets - 1
    );
    t.line("| operation | time | peak RSS | notes |".into());
    t.line("|---|---|---|---|".into());
    backups(t, &real, files, sets);
    let rebuilt = rebuild_from_archive_dir(&real);
    let rebuilt_remote = rebuild_from_empty_archive_dir(&real);
    let ls = ls_both_ways(&real);
    let catalog = rebuilt_catalog(&real, sets);
    t.line(format!(
        "| `cairn catalog rebuild` ({sets} sets, the archive dir's signatures) | {:.1} s | **{:.0} MB** | peak RSS goal under 64 MB: {}; catalog {:.1} MB |",
        rebuilt.wall,
        rebuilt.rss_mb,
        verdict(rebuilt.rss_mb < 64.0),
        db_size(&catalog) as f64 / 1e6
    ));
    t.line(format!(
        "| `cairn catalog rebuild`, empty archive dir (signatures fetched and decrypted) | {:.1} s | **{:.0} MB** | peak RSS goal under 64 MB: {}; {:.1}× the time with the archive dir |",
        rebuilt_remote.wall,
        rebuilt_remote.rss_mb,
        verdict(rebuilt_remote.rss_mb < 64.0),
        rebuilt_remote.wall / rebuilt.wall
    ));
    ls_comparison(t, &ls, &rebuilt);
    if !keep {
        let _ = fs::remove_dir_all(&real.work);
    }
}

/// A full backup and `sets - 1` incrementals, each rewriting 1 % of the
/// files, all `--no-catalog`.
fn backups(t: &mut Table, real: &Real, files: usize, sets: usize) {
    let src = real.src.to_str().unwrap();
    let full = real.run(
        &[
            "backup",
            "--full",
            "--no-catalog",
            "--quiet",
            src,
            &real.url,
        ],
        None,
    );
    t.line(format!(
        "| full backup, `--no-catalog` | {:.1} s | {:.0} MB | |",
        full.wall, full.rss_mb
    ));
    let (mut inc_wall, mut inc_rss) = (0.0, 0.0f64);
    for round in 1..sets {
        touch_one_percent(&real.src, files, round as u64);
        let r = real.run(&["backup", "--no-catalog", "--quiet", src, &real.url], None);
        inc_wall += r.wall;
        inc_rss = inc_rss.max(r.rss_mb);
    }
    t.line(format!(
        "| {} incrementals, 1 % rewritten each, `--no-catalog` | {:.1} s each | {:.0} MB (max) | |",
        sets - 1,
        inc_wall / (sets - 1) as f64,
        inc_rss
    ));
}

/// `cairn catalog rebuild` from the signatures in the archive dir.
fn rebuild_from_archive_dir(real: &Real) -> Run {
    real.run(&["catalog", "rebuild", &real.url], None)
}

/// `cairn catalog rebuild` with an empty archive dir: the signatures are
/// fetched from the target and decrypted.
fn rebuild_from_empty_archive_dir(real: &Real) -> Run {
    let fresh = real.work.join("archive-fresh");
    settle();
    measure(&mut real.cmd(&["catalog", "rebuild", &real.url], &fresh, None))
}

/// The catalog in the archive dir, checked to hold every set, indexed.
fn rebuilt_catalog(real: &Real, sets: usize) -> PathBuf {
    let catalog = fs::read_dir(&real.archive)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(cairn::catalog::FILE_NAME))
        .find(|p| p.exists())
        .expect("the rebuilt catalog");
    let indexed = Catalog::open(&catalog).unwrap().sets(&real.url).unwrap();
    assert_eq!(indexed.len(), sets, "sets in the rebuilt catalog");
    assert!(indexed.iter().all(|s| s.indexed));
    catalog
}

/// The latest backup listed with `cairn ls --no-catalog` and with `cairn ls`.
struct Listings {
    direct: Run,
    listed: Run,
    direct_lines: usize,
    lines: usize,
    identical: bool,
}

fn ls_both_ways(real: &Real) -> Listings {
    let direct_out = real.work.join("ls-direct.txt");
    let direct = real.run(&["ls", "--no-catalog", &real.url], Some(&direct_out));
    let cat_out = real.work.join("ls-catalog.txt");
    let listed = real.run(&["ls", &real.url], Some(&cat_out));
    let (a, b) = (fs::read(&direct_out).unwrap(), fs::read(&cat_out).unwrap());
    let lines = |s: &[u8]| s.iter().filter(|&&c| c == b'\n').count();
    Listings {
        direct,
        listed,
        direct_lines: lines(&a),
        lines: lines(&b),
        identical: a == b,
    }
}

/// `cairn ls` without and with the catalog, next to the rebuild's time.
fn ls_comparison(t: &mut Table, ls: &Listings, rebuilt: &Run) {
    t.line(format!(
        "| `cairn ls --no-catalog` (the signatures read directly) | {:.2} s | {:.0} MB | {} lines |",
        ls.direct.wall,
        ls.direct.rss_mb,
        thousands(ls.direct_lines as u64)
    ));
    t.line(format!(
        "| `cairn ls` (from the catalog) | {:.2} s | {:.0} MB | {} lines, {} `--no-catalog`'s; {:.2}× its time; rebuild + ls {:.2}× |",
        ls.listed.wall,
        ls.listed.rss_mb,
        thousands(ls.lines as u64),
        if ls.identical { "identical to" } else { "DIFFERENT from" },
        ls.listed.wall / ls.direct.wall,
        (rebuilt.wall + ls.listed.wall) / ls.direct.wall
    ));
}

fn main() {
    let Some(argv) = bench_args(
        "catalog: a benchmark; run it with `just bench-catalog` (cargo bench --bench catalog)",
    ) else {
        return;
    };
    let flag = |f: &str| argv.iter().any(|a| a == f);
    let (quick, keep) = (flag("--quick"), flag("--keep"));
    let (only_synthetic, only_rebuild) = (flag("--synthetic"), flag("--rebuild"));
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-catalog");
    fs::create_dir_all(&base).unwrap();
    let cairn = PathBuf::from(env!("CARGO_BIN_EXE_cairn"));
    let (cores, load) = machine();
    let when = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    println!(
        "\nCairn catalog benchmark{}: {cores} cores, load {}, {}",
        if quick { " (--quick)" } else { "" },
        load.split_whitespace().next().unwrap_or("?"),
        cairn::time::to_string(when)
    );
    let mut t = Table::default();
    if !only_rebuild {
        synthetic(&mut t, &base, quick, keep);
    }
    if !only_synthetic {
        rebuild(&mut t, &base, &cairn, quick, keep);
    }
    t.write(
        &base.join("results.md"),
        &format!("{cores} cores, load {}", load.trim()),
    );
}
