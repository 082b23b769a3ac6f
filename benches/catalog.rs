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

use cairn::archive::index::Index;
use cairn::archive::meta::{FileType, Meta};
use cairn::catalog::{Catalog, Entry, SetFacts, VolumeFacts};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

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

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
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

struct Table {
    rows: Vec<String>,
}

impl Table {
    fn line(&mut self, line: String) {
        println!("{line}");
        self.rows.push(line);
    }

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
    // The full set.
    let full_rows = 1 + TOPS.len() + dirs.len() + files;
    // One pass to size the set, which also times making the entries.
    let start = Instant::now();
    let bytes: u64 = full_entries(&dirs).map(|e| e.meta.size).sum();
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
    cat.index_entries(URL, &facts, full_entries(&dirs)).unwrap();
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
    // The incrementals.
    let mut rng = Rng(0xca7a_1095);
    let mut inc_rows = 0usize;
    let mut inc_time = 0.0;
    let mut inc_max = 0.0f64;
    let mut times = vec![T0];
    for k in 1..=incs as i64 {
        let time = T0 + 7 * DAY * k;
        let entries = incremental(&mut dirs, &mut rng, time);
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

    // list_dir at several times: 50 calls each, on different directories.
    let mut all = Vec::new();
    let points = [0usize, incs / 3, 2 * incs / 3, incs];
    let first = {
        let s = Instant::now();
        cat.list_dir(URL, times[incs], &dirs[0].index).unwrap();
        s.elapsed()
    };
    for &p in &points {
        let mut v = Vec::new();
        let mut entries = 0;
        // Between two sets, as a person asks: the set before is the answer.
        let at = times[p] + 3 * DAY;
        for i in 0..50 {
            let d = &dirs[(i * 7919 + p * 31) % dirs.len()];
            let s = Instant::now();
            let got = cat.list_dir(URL, at, &d.index).unwrap();
            v.push(s.elapsed());
            entries += got.len();
        }
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

    // history: the file changed in every set, then 50 random files.
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

    // find over every path name.
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

    // Size on disk.
    let open_size = db_size(&db);
    drop(cat);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64;
    let version_rows = count("SELECT count(*) FROM version");
    let path_rows = count("SELECT count(*) FROM path");
    let page = count("PRAGMA page_size");
    let name_len: f64 = conn
        .query_row("SELECT avg(length(name)) FROM path", [], |r| r.get(0))
        .unwrap();
    // Where the bytes are, when SQLite has its dbstat table.
    let by_table: Vec<(String, i64)> = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .unwrap_or_default();
    drop(conn);
    let size = db_size(&db);
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
    if !keep {
        remove_db(&db);
    }
}

// ---- Part 2: a real target ------------------------------------------------

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

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
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

fn small_file(root: &Path, i: usize) -> PathBuf {
    root.join(format!("d{:03}/f{i:06}.txt", i / 1000))
}

fn marker(root: &Path) -> PathBuf {
    root.parent().unwrap().join(format!(
        "{}.complete",
        root.file_name().unwrap().to_str().unwrap()
    ))
}

/// `files` small text files in directories of 1,000 (deterministic; reused
/// when complete).
fn make_small_tree(root: &Path, files: usize) {
    if marker(root).exists() {
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
    fs::write(marker(root), b"").unwrap();
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

struct Run {
    wall: f64,
    rss_mb: f64,
}

/// Runs a command, returning wall time and peak RSS (of the child and its
/// descendants, via wait4), as benches/compare.rs does.
fn measure(cmd: &mut Command) -> Run {
    // A child's peak RSS starts at this process's peak (Linux carries the
    // old address space's high-water mark across fork and exec): reset ours.
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

fn settle() {
    let _ = Command::new("sync").status();
}

fn rebuild(t: &mut Table, base: &Path, cairn: &Path, quick: bool, keep: bool) {
    let files = if quick { 20_000 } else { 200_000 };
    let sets = 10;
    let tree = base.join(format!("tree-{files}"));
    make_small_tree(&tree, files);
    let work = base.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let src = work.join("src");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&tree)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let target = work.join("target");
    let url = format!("file://{}", target.display());
    let archive = work.join("archive");
    println!(
        "\nPart 2: a real target: {} small files in directories of 1,000, a full backup and {} \
         incrementals each rewriting 1 % of the files (`cairn backup --no-catalog`, encrypted); \
         then the catalog rebuilt from it, and the listing of the latest backup with and without it\n",
        thousands(files as u64),
        sets - 1
    );
    t.line("| operation | time | peak RSS | notes |".into());
    t.line("|---|---|---|---|".into());
    let cmd = |args: &[&str], archive: &Path, out: Option<&Path>| {
        let mut c = Command::new(cairn);
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
    };
    let src_s = src.to_str().unwrap();
    settle();
    let full = measure(&mut cmd(
        &["backup", "--full", "--no-catalog", "--quiet", src_s, &url],
        &archive,
        None,
    ));
    t.line(format!(
        "| full backup, `--no-catalog` | {:.1} s | {:.0} MB | |",
        full.wall, full.rss_mb
    ));
    let (mut inc_wall, mut inc_rss) = (0.0, 0.0f64);
    for round in 1..sets {
        touch_one_percent(&src, files, round as u64);
        settle();
        let r = measure(&mut cmd(
            &["backup", "--no-catalog", "--quiet", src_s, &url],
            &archive,
            None,
        ));
        inc_wall += r.wall;
        inc_rss = inc_rss.max(r.rss_mb);
    }
    t.line(format!(
        "| {} incrementals, 1 % rewritten each, `--no-catalog` | {:.1} s each | {:.0} MB (max) | |",
        sets - 1,
        inc_wall / (sets - 1) as f64,
        inc_rss
    ));
    settle();
    let rebuilt = measure(&mut cmd(&["catalog", "rebuild", &url], &archive, None));
    let fresh = work.join("archive-fresh");
    settle();
    let rebuilt_remote = measure(&mut cmd(&["catalog", "rebuild", &url], &fresh, None));
    let direct_out = work.join("ls-direct.txt");
    settle();
    let direct = measure(&mut cmd(
        &["ls", "--no-catalog", &url],
        &archive,
        Some(&direct_out),
    ));
    let cat_out = work.join("ls-catalog.txt");
    settle();
    let listed = measure(&mut cmd(&["ls", &url], &archive, Some(&cat_out)));
    let (a, b) = (fs::read(&direct_out).unwrap(), fs::read(&cat_out).unwrap());
    let lines = b.iter().filter(|&&c| c == b'\n').count();
    let catalog = fs::read_dir(&archive)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(cairn::catalog::FILE_NAME))
        .find(|p| p.exists())
        .expect("the rebuilt catalog");
    let indexed = Catalog::open(&catalog).unwrap().sets(&url).unwrap();
    assert_eq!(indexed.len(), sets, "sets in the rebuilt catalog");
    assert!(indexed.iter().all(|s| s.indexed));
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
    t.line(format!(
        "| `cairn ls --no-catalog` (the signatures read directly) | {:.2} s | {:.0} MB | {} lines |",
        direct.wall,
        direct.rss_mb,
        thousands(a.iter().filter(|&&c| c == b'\n').count() as u64)
    ));
    t.line(format!(
        "| `cairn ls` (from the catalog) | {:.2} s | {:.0} MB | {} lines, {} `--no-catalog`'s; {:.2}× its time; rebuild + ls {:.2}× |",
        listed.wall,
        listed.rss_mb,
        thousands(lines as u64),
        if a == b { "identical to" } else { "DIFFERENT from" },
        listed.wall / direct.wall,
        (rebuilt.wall + listed.wall) / direct.wall
    ));
    if !keep {
        let _ = fs::remove_dir_all(&work);
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs benches
    // without it, and a debug-build benchmark measures nothing useful.
    if !argv.iter().any(|a| a == "--bench") {
        println!(
            "catalog: a benchmark; run it with `just bench-catalog` (cargo bench --bench catalog)"
        );
        return;
    }
    let flag = |f: &str| argv.iter().any(|a| a == f);
    let (quick, keep) = (flag("--quick"), flag("--keep"));
    let (only_synthetic, only_rebuild) = (flag("--synthetic"), flag("--rebuild"));
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-catalog");
    fs::create_dir_all(&base).unwrap();
    let cairn = PathBuf::from(env!("CARGO_BIN_EXE_cairn"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let when = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    println!(
        "\nCairn catalog benchmark{}: {cores} cores, load {}, {}",
        if quick { " (--quick)" } else { "" },
        load.split_whitespace().next().unwrap_or("?"),
        cairn::time::to_string(when)
    );
    let mut t = Table { rows: Vec::new() };
    if !only_rebuild {
        synthetic(&mut t, &base, quick, keep);
    }
    if !only_synthetic {
        rebuild(&mut t, &base, &cairn, quick, keep);
    }
    let results = base.join("results.md");
    let mut f = fs::File::create(&results).unwrap();
    writeln!(f, "{cores} cores, load {}\n", load.trim()).unwrap();
    for r in &t.rows {
        writeln!(f, "{r}").unwrap();
    }
    println!("\nresults written to {}", results.display());
}
