//! Answers from the catalog: the sets, a directory at any point in time, the
//! history of one path, a search over names, what a set changed, the runs.

use super::schema::{DELETED, DELTA, NEW, ROOT, SNAPSHOT};
use super::{Catalog, CatalogError, Result};
use crate::archive::index::Index;
use crate::time::{self, Seconds};
use rusqlite::{OptionalExtension, Row, params};
use std::collections::HashMap;

/// What a set did to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not in the chain before (every path of a full set).
    New,
    /// A regular file stored as an rsync delta.
    Delta,
    /// Stored whole (a type change, or anything but a regular file).
    Snapshot,
    Deleted,
}

impl Change {
    fn from_code(c: i64) -> Change {
        match c {
            NEW => Change::New,
            DELTA => Change::Delta,
            SNAPSHOT => Change::Snapshot,
            _ => Change::Deleted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Delta => "changed (delta)",
            Change::Snapshot => "changed (whole)",
            Change::Deleted => "deleted",
        }
    }
}

/// One path's recorded state in one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub change: Change,
    /// `reg`, `dir`, `sym`, `fifo`, `chr`, `blk`; None if deleted.
    pub kind: Option<String>,
    /// Regular files: the size, or an upper bound if `slack` > 0 (a set
    /// indexed from its signatures, which keep sizes to a block).
    pub size: u64,
    pub slack: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mtime: i64,
    pub link: Option<Vec<u8>>,
}

/// A version's columns; the query joins `owner o ON o.id = v.owner`, as a
/// CROSS JOIN after `version` (SQLite then keeps that order: the owner
/// table is tiny, and starting from it would scan every version).
const VERSION_COLS: &str =
    "v.change, v.kind, v.size, v.slack, v.mode, o.uid, o.gid, o.uname, o.gname, v.mtime, v.link";

impl Version {
    /// From the row's columns `at`.. in [`VERSION_COLS`] order.
    fn from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Version> {
        Ok(Version {
            change: Change::from_code(r.get(at)?),
            kind: r
                .get::<_, Option<i64>>(at + 1)?
                .and_then(super::schema::kind_name)
                .map(str::to_string),
            size: r.get::<_, i64>(at + 2)? as u64,
            slack: r.get::<_, i64>(at + 3)? as u64,
            mode: r.get(at + 4)?,
            uid: r.get::<_, i64>(at + 5)? as u64,
            gid: r.get::<_, i64>(at + 6)? as u64,
            uname: r.get(at + 7)?,
            gname: r.get(at + 8)?,
            mtime: r.get(at + 9)?,
            link: r.get(at + 10)?,
        })
    }

    /// The size as a person reads it: exact, or "≤ N".
    pub fn size_text(&self) -> String {
        if self.slack == 0 {
            self.size.to_string()
        } else {
            format!("<={}", self.size)
        }
    }
}

/// One set, with what it holds and changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRow {
    pub id: i64,
    pub chain_start: Seconds,
    pub seq: i64,
    pub full: bool,
    pub start_time: Option<Seconds>,
    pub end_time: Seconds,
    pub volumes: u64,
    pub stored_bytes: Option<u64>,
    /// Regular files' bytes in the tree at this set, give or take `source_slack`.
    pub source_bytes: u64,
    pub source_slack: u64,
    /// Paths in the tree at this set.
    pub files: u64,
    pub new_paths: u64,
    pub changed_paths: u64,
    pub deleted_paths: u64,
    pub writer: Option<String>,
    /// False when its signatures could not be read: no paths recorded.
    pub indexed: bool,
}

const SET_COLS: &str = "s.id, c.start_time, s.seq, s.kind, s.start_time, s.end_time, s.volumes,
     s.stored_bytes, s.source_bytes, s.source_slack, s.files, s.new_paths, s.changed_paths,
     s.deleted_paths, s.writer, s.indexed";

impl SetRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<SetRow> {
        let u = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
        Ok(SetRow {
            id: r.get(0)?,
            chain_start: r.get(1)?,
            seq: r.get(2)?,
            full: r.get::<_, String>(3)? == "full",
            start_time: r.get(4)?,
            end_time: r.get(5)?,
            volumes: u(6)?,
            stored_bytes: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
            source_bytes: u(8)?,
            source_slack: u(9)?,
            files: u(10)?,
            new_paths: u(11)?,
            changed_paths: u(12)?,
            deleted_paths: u(13)?,
            writer: r.get(14)?,
            indexed: r.get::<_, i64>(15)? != 0,
        })
    }
}

/// A directory's child at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub version: Version,
    id: i64,
}

/// A path found by [`Catalog::find`], with its latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: Index,
    /// The time of the set that recorded `version`.
    pub set_time: Seconds,
    pub version: Version,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub started: Seconds,
    pub ended: Option<Seconds>,
    pub outcome: String,
    pub bytes: Option<u64>,
    pub set_time: Option<Seconds>,
    pub error: Option<String>,
}

/// A run from `SELECT id, kind, started, ended, outcome, bytes, set_time, error`.
fn run_row(r: &Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        started: r.get(2)?,
        ended: r.get(3)?,
        outcome: r.get(4)?,
        bytes: r.get::<_, Option<i64>>(5)?.map(|b| b as u64),
        set_time: r.get(6)?,
        error: r.get(7)?,
    })
}

/// Full paths of path ids, with the ancestors looked up kept (bounded).
#[derive(Default)]
struct Paths {
    known: HashMap<i64, Index>,
}

impl Paths {
    fn get(&mut self, c: &rusqlite::Connection, id: i64) -> rusqlite::Result<Index> {
        if id == ROOT {
            return Ok(Index::root());
        }
        if let Some(p) = self.known.get(&id) {
            return Ok(p.clone());
        }
        let (parent, name): (i64, Vec<u8>) = c
            .prepare_cached("SELECT parent, name FROM path WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let p = self.get(c, parent)?.child(&name);
        if self.known.len() > 4096 {
            self.known.clear();
        }
        self.known.insert(id, p.clone());
        Ok(p)
    }
}

impl Catalog {
    fn q(&self, e: rusqlite::Error) -> CatalogError {
        self.err(e)
    }

    /// Every set at the target, oldest first.
    pub fn sets(&self, url: &str) -> Result<Vec<SetRow>> {
        let target = self.target_id(url)?;
        let sql = format!(
            "SELECT {SET_COLS} FROM backup_set s JOIN chain c ON s.chain = c.id
             WHERE c.target = ?1 ORDER BY s.end_time"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.q(e))?;
        st.query_map([target], SetRow::from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.q(e))
    }

    /// The set a restore of time `t` reads: the latest at or before `t`.
    pub fn set_at(&self, url: &str, t: Seconds) -> Result<SetRow> {
        let sets = self.sets(url)?;
        let set = sets.iter().rev().find(|s| s.end_time <= t).cloned();
        match (set, sets.first()) {
            (Some(s), _) if s.indexed => Ok(s),
            (Some(s), _) => Err(CatalogError::Query(format!(
                "the set of {} could not be indexed: its signatures, or those of a set before it \
                 in its chain, are missing or unreadable (see `cairn status`)",
                time::to_string(s.end_time)
            ))),
            (None, Some(first)) => Err(CatalogError::Query(format!(
                "there is no backup at or before {}; the first is of {}",
                time::to_string(t),
                time::to_string(first.end_time)
            ))),
            (None, None) => Err(CatalogError::Query(
                "there are no backups at the target".into(),
            )),
        }
    }

    /// The id of a path, if any set ever recorded it.
    fn path_id(&self, path: &Index) -> Result<Option<i64>> {
        let mut id = ROOT;
        for c in path.components() {
            match super::index::find_path(&self.conn, id, c).map_err(|e| self.q(e))? {
                Some(n) => id = n,
                None => return Ok(None),
            }
        }
        Ok(Some(id))
    }

    /// A path's version in `set`'s state, None if it does not exist then.
    fn state_of(&self, set: &SetRow, id: i64) -> Result<Option<Version>> {
        let sql = format!(
            "SELECT {VERSION_COLS} FROM version v CROSS JOIN owner o ON o.id = v.owner
             JOIN chain c ON v.chain = c.id
             JOIN backup_set s ON s.chain = c.id AND s.id = ?4
             WHERE v.path = ?1 AND c.start_time = ?2 AND v.seq <= ?3
             ORDER BY v.seq DESC LIMIT 1"
        );
        let v = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_row(params![id, set.chain_start, set.seq, set.id], |r| {
                    Version::from_row(r, 0)
                })
                .optional()
            })
            .map_err(|e| self.q(e))?;
        Ok(v.filter(|v| v.change != Change::Deleted))
    }

    fn chain_id(&self, set: &SetRow) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT chain FROM backup_set WHERE id = ?1",
                [set.id],
                |r| r.get(0),
            )
            .map_err(|e| self.q(e))
    }

    /// The children of directory `dir` as of time `t`, sorted by name.
    pub fn list_dir(&self, url: &str, t: Seconds, dir: &Index) -> Result<Vec<DirEntry>> {
        let set = self.set_at(url, t)?;
        self.list_in(&set, dir)
    }

    fn list_in(&self, set: &SetRow, dir: &Index) -> Result<Vec<DirEntry>> {
        let missing = || {
            CatalogError::Query(format!(
                "{dir} is not a directory in the backup of {}",
                time::to_string(set.end_time)
            ))
        };
        let id = self.path_id(dir)?.ok_or_else(missing)?;
        if !dir.is_root() && self.state_of(set, id)?.and_then(|v| v.kind).as_deref() != Some("dir")
        {
            return Err(missing());
        }
        self.children(self.chain_id(set)?, set.seq, id)
    }

    fn children(&self, chain: i64, seq: i64, dir: i64) -> Result<Vec<DirEntry>> {
        let sql = format!(
            "SELECT p.id, p.name, {VERSION_COLS} FROM path p CROSS JOIN version v
               ON v.path = p.id AND v.chain = ?1
              CROSS JOIN owner o ON o.id = v.owner
              AND v.seq = (SELECT max(w.seq) FROM version w
                           WHERE w.path = p.id AND w.chain = ?1 AND w.seq <= ?2)
             WHERE p.parent = ?3 AND v.change != {DELETED} ORDER BY p.name"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.q(e))?;
        st.query_map(params![chain, seq, dir], |r| {
            Ok(DirEntry {
                id: r.get(0)?,
                name: r.get(1)?,
                version: Version::from_row(r, 2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.q(e))
    }

    /// Every path under `under` (itself included) as of time `t`, in
    /// duplicity's index order, as `cairn ls` lists them.
    pub fn walk(
        &self,
        url: &str,
        t: Seconds,
        under: &Index,
        mut f: impl FnMut(&Index, &Version) -> std::io::Result<()>,
    ) -> Result<()> {
        let set = self.set_at(url, t)?;
        let chain = self.chain_id(&set)?;
        let not_found = || {
            CatalogError::Query(format!(
                "{under} is not in the backup of {}",
                time::to_string(set.end_time)
            ))
        };
        let id = self.path_id(under)?.ok_or_else(not_found)?;
        let top = self.state_of(&set, id)?.ok_or_else(not_found)?;
        let io = |e: std::io::Error| CatalogError::Query(e.to_string());
        f(under, &top).map_err(io)?;
        // Depth first; each level's children are fetched sorted, so the
        // stack holds one directory listing per level.
        let mut stack: Vec<(Index, std::vec::IntoIter<DirEntry>)> = Vec::new();
        if top.kind.as_deref() == Some("dir") {
            stack.push((
                under.clone(),
                self.children(chain, set.seq, id)?.into_iter(),
            ));
        }
        while let Some((dir, it)) = stack.last_mut() {
            let Some(e) = it.next() else {
                stack.pop();
                continue;
            };
            let path = dir.child(&e.name);
            f(&path, &e.version).map_err(io)?;
            if e.version.kind.as_deref() == Some("dir") {
                let kids = self.children(chain, set.seq, e.id)?;
                stack.push((path, kids.into_iter()));
            }
        }
        Ok(())
    }

    /// Every recorded version of `path`, oldest first, with its set's time.
    pub fn history(&self, url: &str, path: &Index) -> Result<Vec<(SetRow, Version)>> {
        let Some(id) = self.path_id(path)? else {
            return Ok(Vec::new());
        };
        let target = self.target_id(url)?;
        let sql = format!(
            "SELECT {SET_COLS}, {VERSION_COLS} FROM version v
             CROSS JOIN owner o ON o.id = v.owner
             JOIN chain c ON v.chain = c.id
             JOIN backup_set s ON s.chain = c.id AND s.seq = v.seq
             WHERE v.path = ?1 AND c.target = ?2 ORDER BY s.end_time"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.q(e))?;
        st.query_map(params![id, target], |r| {
            Ok((SetRow::from_row(r)?, Version::from_row(r, 16)?))
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.q(e))
    }

    /// Paths whose name matches `pattern` (a glob with `*` and `?`, or a
    /// plain word matched anywhere in the name; ASCII case ignored), with
    /// their latest version at the target, sorted; at most `limit`. Names
    /// are matched in one pass over the path table.
    pub fn find(&self, url: &str, pattern: &str, limit: usize) -> Result<Vec<Found>> {
        let target = self.target_id(url)?;
        let re = name_matcher(pattern)?;
        let sql = format!(
            "SELECT s.end_time, {VERSION_COLS} FROM version v CROSS JOIN owner o ON o.id = v.owner
             JOIN chain c ON v.chain = c.id AND c.target = ?2
             JOIN backup_set s ON s.chain = c.id AND s.seq = v.seq
             WHERE v.path = ?1 ORDER BY s.end_time DESC LIMIT 1"
        );
        let mut latest = self.conn.prepare_cached(&sql).map_err(|e| self.q(e))?;
        let mut scan = self
            .conn
            .prepare("SELECT id, name FROM path WHERE id != ?1")
            .map_err(|e| self.q(e))?;
        let mut rows = scan.query([ROOT]).map_err(|e| self.q(e))?;
        let mut paths = Paths::default();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.q(e))? {
            let name = r
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(|e| self.q(e))?;
            if !re.is_match(name) {
                continue;
            }
            let id: i64 = r.get(0).map_err(|e| self.q(e))?;
            let found = latest
                .query_row(params![id, target], |r| {
                    Ok((r.get(0)?, Version::from_row(r, 1)?))
                })
                .optional()
                .map_err(|e| self.q(e))?;
            if let Some((set_time, version)) = found {
                let path = paths.get(&self.conn, id).map_err(|e| self.q(e))?;
                out.push(Found {
                    path,
                    set_time,
                    version,
                });
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// What set `set` did, path by path (in the order paths were first
    /// seen, not sorted).
    pub fn changes(
        &self,
        set: &SetRow,
        mut f: impl FnMut(&Index, &Version) -> std::io::Result<()>,
    ) -> Result<()> {
        let chain = self.chain_id(set)?;
        let sql = format!(
            "SELECT v.path, {VERSION_COLS} FROM version v CROSS JOIN owner o ON o.id = v.owner
             WHERE v.chain = ?1 AND v.seq = ?2"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.q(e))?;
        let mut rows = st.query(params![chain, set.seq]).map_err(|e| self.q(e))?;
        let mut paths = Paths::default();
        while let Some(r) = rows.next().map_err(|e| self.q(e))? {
            let id: i64 = r.get(0).map_err(|e| self.q(e))?;
            let v = Version::from_row(r, 1).map_err(|e| self.q(e))?;
            let p = paths.get(&self.conn, id).map_err(|e| self.q(e))?;
            f(&p, &v).map_err(|e| CatalogError::Query(e.to_string()))?;
        }
        Ok(())
    }

    /// The newest runs first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, started, ended, outcome, bytes, set_time, error FROM run
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.q(e))?;
        st.query_map([limit as i64], run_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.q(e))
    }

    /// One run's events (its log), oldest first: (time, level, kind, message).
    pub fn run_events(&self, run: i64) -> Result<Vec<(Seconds, String, String, String)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT time, level, kind, message FROM event WHERE run = ?1 ORDER BY id",
            )
            .map_err(|e| self.q(e))?;
        st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.q(e))
    }

    /// The newest events, newest first: (time, level, kind, message).
    pub fn events(&self, limit: usize) -> Result<Vec<(Seconds, String, String, String)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT time, level, kind, message FROM event ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.q(e))?;
        st.query_map([limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.q(e))
    }

    /// The newest run of an appliance plan's `kind`, and the start of its
    /// newest successful one.
    pub fn last_plan_run(
        &self,
        plan: &str,
        kind: &str,
    ) -> Result<(Option<RunRow>, Option<Seconds>)> {
        self.last_run_where(plan, kind, None)
    }

    /// [`Catalog::last_plan_run`] of the runs to one target (a plan's
    /// further targets each have their own `replicate` runs).
    pub fn last_plan_run_to(
        &self,
        plan: &str,
        kind: &str,
        url: &str,
    ) -> Result<(Option<RunRow>, Option<Seconds>)> {
        let target = self.target_id(url)?;
        self.last_run_where(plan, kind, Some(target))
    }

    fn last_run_where(
        &self,
        plan: &str,
        kind: &str,
        target: Option<i64>,
    ) -> Result<(Option<RunRow>, Option<Seconds>)> {
        let last = self
            .conn
            .query_row(
                "SELECT id, kind, started, ended, outcome, bytes, set_time, error FROM run
                 WHERE plan = ?1 AND kind = ?2 AND (?3 IS NULL OR target = ?3)
                 ORDER BY id DESC LIMIT 1",
                params![plan, kind, target],
                run_row,
            )
            .optional()
            .map_err(|e| self.q(e))?;
        let success = self
            .conn
            .query_row(
                "SELECT max(started) FROM run
                 WHERE plan = ?1 AND kind = ?2 AND (?3 IS NULL OR target = ?3) AND outcome = 'ok'",
                params![plan, kind, target],
                |r| r.get(0),
            )
            .map_err(|e| self.q(e))?;
        Ok((last, success))
    }

    /// A digest of what `set` records, order-independent and blind to sizes
    /// (which a rebuild knows only to a block): for comparing catalogs.
    pub fn set_digest(&self, set: &SetRow) -> Result<[u8; 20]> {
        use sha1::Digest;
        let mut sum = [0u8; 20];
        self.changes(set, |p, v| {
            let mut h = sha1::Sha1::new();
            h.update(p.to_bytes());
            h.update(format!(
                "\0{:?}\0{:?}\0{}\0{}\0{}\0{}\0",
                v.change, v.kind, v.mode, v.uid, v.gid, v.mtime
            ));
            h.update(&v.uname);
            h.update(b"\0");
            h.update(&v.gname);
            h.update(b"\0");
            h.update(v.link.as_deref().unwrap_or(b"-"));
            let d = h.finalize();
            let mut carry = 0u16;
            for i in (0..20).rev() {
                let s = sum[i] as u16 + d[i] as u16 + carry;
                sum[i] = s as u8;
                carry = s >> 8;
            }
            Ok(())
        })?;
        Ok(sum)
    }
}

/// `find`'s pattern as a byte regex: a glob (`*`, `?`) matches the whole
/// name, a plain word any part of it; ASCII case is ignored.
fn name_matcher(pattern: &str) -> Result<regex::bytes::Regex> {
    let glob = pattern.contains(['*', '?']);
    let mut re = String::from(if glob { "(?s-u)^" } else { "(?s-u)" });
    for ch in pattern.chars() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c if c.is_ascii_alphanumeric() => re.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    re.push_str(&format!("\\x{b:02x}"));
                }
            }
        }
    }
    if glob {
        re.push('$');
    }
    regex::bytes::RegexBuilder::new(&re)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .map_err(|e| CatalogError::Query(format!("cannot search for {pattern:?}: {e}")))
}

/// One way two catalogs of the same target differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The set is at the target but not yet in the catalog: it is indexed on
    /// next use, not an error.
    pub behind: bool,
    pub what: String,
}

/// Where catalog `a` differs from `b` (a rebuild from the target), set by
/// set: the sets, their counts and totals, and a digest of every path's
/// recorded state. Sizes count as equal when one is within the other's
/// bounds (a rebuild knows sizes to a signature block).
pub fn compare(a: &Catalog, b: &Catalog, url: &str) -> Result<Vec<Difference>> {
    let (sa, sb) = (a.sets(url)?, b.sets(url)?);
    let key = |s: &SetRow| (s.chain_start, s.end_time);
    let mut out = Vec::new();
    let mut differs = |behind, what: String| out.push(Difference { behind, what });
    for s in &sb {
        if !sa.iter().any(|x| key(x) == key(s)) {
            differs(true, format!("the set of {}", time::to_string(s.end_time)));
        }
    }
    for s in &sa {
        let name = format!("the set of {}", time::to_string(s.end_time));
        let Some(r) = sb.iter().find(|x| key(x) == key(s)) else {
            differs(
                false,
                format!("{name} is in the catalog but not at the target"),
            );
            continue;
        };
        let counts = |x: &SetRow| {
            (
                x.seq,
                x.full,
                x.start_time,
                x.volumes,
                x.files,
                x.new_paths,
                x.changed_paths,
                x.deleted_paths,
                x.indexed,
            )
        };
        if counts(s) != counts(r) {
            differs(
                false,
                format!("{name}: catalog {:?}, target {:?}", counts(s), counts(r)),
            );
        }
        let within = |x: &SetRow, y: &SetRow| {
            x.source_bytes <= y.source_bytes && x.source_bytes + y.source_slack >= y.source_bytes
        };
        if !(within(s, r) || within(r, s)) {
            differs(
                false,
                format!(
                    "{name}: source size {} (±{}) against {} (±{})",
                    s.source_bytes, s.source_slack, r.source_bytes, r.source_slack
                ),
            );
        }
        if let (Some(x), Some(y)) = (s.stored_bytes, r.stored_bytes)
            && x != y
        {
            differs(false, format!("{name}: stored size {x} against {y}"));
        }
        if s.indexed && a.set_digest(s)? != b.set_digest(r)? {
            differs(
                false,
                format!("{name}: the recorded paths differ from its signatures"),
            );
        }
    }
    Ok(out)
}

impl Catalog {
    /// Copies the run log of `old` (another catalog file) into this one.
    /// (With the appliance's plans, and when each volume was last checked:
    /// none of it can be learnt from the target again.)
    pub fn copy_runs_from(&self, old: &Catalog) -> Result<()> {
        let sql = "
            INSERT OR IGNORE INTO target (url) SELECT url FROM old.target;
            INSERT INTO run (id, target, kind, started, ended, outcome, bytes, set_time, error, pid, plan)
                SELECT r.id, (SELECT t.id FROM main.target t WHERE t.url = ot.url), r.kind,
                       r.started, r.ended, r.outcome, r.bytes, r.set_time, r.error, r.pid, r.plan
                FROM old.run r LEFT JOIN old.target ot ON ot.id = r.target;
            INSERT INTO event (id, time, run, level, kind, message)
                SELECT id, time, run, level, kind, message FROM old.event;
            INSERT OR REPLACE INTO volume_check (target, name, checked, problem)
                SELECT (SELECT t.id FROM main.target t WHERE t.url = ot.url), c.name, c.checked, c.problem
                FROM old.volume_check c JOIN old.target ot ON ot.id = c.target;";
        self.conn
            .execute("ATTACH DATABASE ?1 AS old", [old.path.to_string_lossy()])
            .map_err(|e| self.q(e))?;
        let r = self.conn.execute_batch(sql).map_err(|e| self.q(e));
        self.conn
            .execute_batch("DETACH DATABASE old")
            .map_err(|e| self.q(e))?;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::name_matcher;

    #[test]
    fn names_match_globs_and_words_ignoring_ascii_case() {
        let m = |p: &str, n: &[u8]| name_matcher(p).unwrap().is_match(n);
        assert!(m("report", b"Q3-REPORT.odt"));
        assert!(!m("report", b"repo.odt"));
        assert!(m("*.JPG", b"img_0001.jpg"));
        assert!(!m("*.jpg", b"img_0001.jpg.bak"));
        assert!(m("img_????.jpg", b"IMG_0042.JPG"));
        assert!(m("été", "l'été.txt".as_bytes()));
        assert!(m("a.b", b"a.b") && !m("a.b", b"axb"));
        assert!(m("*", b"\xff\xfe"));
        assert!(m("(x)+[y]", b"(x)+[y]"));
    }
}
