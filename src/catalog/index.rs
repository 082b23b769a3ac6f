//! Recording one set: what it did to each path, decided by comparing with
//! the chain's state before it. Two feeds use the same [`SetIndexer`]: the
//! backup as it writes the set ([`Recorder`], through
//! [`crate::backup::Observer`]) and the set's signature tar read back from
//! the target or the archive dir ([`super::sync`]).

use super::schema::{DELETED, DELTA, NEW, ROOT, SNAPSHOT};
use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta};
use crate::time::Seconds;
use rusqlite::{OptionalExtension, Transaction, params};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};

/// One path as a set records it. `meta.kind == None`: deleted. For regular
/// files `meta.size` is the size, or an upper bound `slack` bytes above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: Index,
    pub meta: Meta,
    pub slack: u64,
}

/// A set's own facts, from its name, manifest and listing.
#[derive(Debug, Clone)]
pub struct SetFacts {
    pub full: bool,
    /// Incrementals: the time of the set extended.
    pub start_time: Option<Seconds>,
    pub end_time: Seconds,
    /// The chain's full set's time.
    pub chain_start: Seconds,
    pub volumes: Vec<VolumeFacts>,
    pub stored_bytes: Option<u64>,
    pub writer: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct VolumeFacts {
    pub number: u64,
    pub name: String,
    pub size: Option<u64>,
    pub sha1: Option<String>,
}

/// The size bounds a regular file's rsync signature gives: librsync's
/// header (magic, block length, strong-sum length) then one weak and one
/// strong sum per block, the last block possibly short.
pub fn size_from_signature(sig: &[u8]) -> (u64, u64) {
    let be = |i: usize| {
        sig.get(i..i + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as u64)
    };
    let (Some(block), Some(strong)) = (be(4), be(8)) else {
        return (0, 0);
    };
    let blocks = (sig.len() as u64).saturating_sub(12) / (4 + strong).max(1);
    if blocks == 0 || block == 0 {
        return (0, 0);
    }
    (blocks * block, block - 1)
}

/// The chain state a set builds on, carried forward row by row.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    bytes: i64,
    slack: i64,
    files: i64,
    new: i64,
    changed: i64,
    deleted: i64,
}

/// The version of a path the chain held before this set.
struct Before {
    change: i64,
    kind: Option<i64>,
    size: i64,
    slack: i64,
}

/// Path ids for entries that come in index order: the ancestors of the last
/// entry are kept, so a path costs one lookup per new component.
#[derive(Default)]
struct PathIds {
    stack: Vec<(Vec<u8>, i64)>,
}

impl PathIds {
    fn resolve(&mut self, tx: &Transaction<'_>, index: &Index) -> rusqlite::Result<i64> {
        let comps = index.components();
        let same = self
            .stack
            .iter()
            .zip(comps)
            .take_while(|((n, _), c)| n == *c)
            .count();
        self.stack.truncate(same);
        for c in &comps[same..] {
            let parent = self.stack.last().map_or(ROOT, |s| s.1);
            let id = path_id(tx, parent, c)?;
            self.stack.push((c.clone(), id));
        }
        Ok(self.stack.last().map_or(ROOT, |s| s.1))
    }
}

/// FNV-1a, 32 bits, as a signed SQLite integer: the key `path_by_hash`
/// finds names by.
pub fn name_hash(name: &[u8]) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i64::from(h as i32)
}

/// The id of `name` under `parent`, if recorded.
pub(super) fn find_path(
    c: &rusqlite::Connection,
    parent: i64,
    name: &[u8],
) -> rusqlite::Result<Option<i64>> {
    let mut st = c.prepare_cached("SELECT id, name FROM path WHERE parent = ?1 AND hash = ?2")?;
    let mut rows = st.query(params![parent, name_hash(name)])?;
    while let Some(r) = rows.next()? {
        if r.get_ref(1)?.as_blob()? == name {
            return Ok(Some(r.get(0)?));
        }
    }
    Ok(None)
}

/// The id of `name` under `parent`, created if new.
pub(super) fn path_id(tx: &Transaction<'_>, parent: i64, name: &[u8]) -> rusqlite::Result<i64> {
    if let Some(id) = find_path(tx, parent, name)? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO path (parent, hash, name) VALUES (?1, ?2, ?3)")?
        .execute(params![parent, name_hash(name), name])?;
    Ok(tx.last_insert_rowid())
}

/// Owner ids by (uid, gid, user name, group name).
type Owners = std::collections::HashMap<(u64, u64, Vec<u8>, Vec<u8>), i64>;

/// The id of an owner, created if new; the few owners of a set are kept.
fn owner_id(tx: &Transaction<'_>, known: &mut Owners, m: &Meta) -> rusqlite::Result<i64> {
    let key = (m.uid, m.gid, m.uname.clone(), m.gname.clone());
    if let Some(id) = known.get(&key) {
        return Ok(*id);
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO owner (uid, gid, uname, gname) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![m.uid as i64, m.gid as i64, m.uname, m.gname])?;
    let id = tx
        .prepare_cached(
            "SELECT id FROM owner WHERE uid = ?1 AND gid = ?2 AND uname = ?3 AND gname = ?4",
        )?
        .query_row(params![m.uid as i64, m.gid as i64, m.uname, m.gname], |r| {
            r.get(0)
        })?;
    known.insert(key, id);
    Ok(id)
}

/// Writes one set's rows inside the caller's transaction.
pub struct SetIndexer<'t, 'c> {
    tx: &'t Transaction<'c>,
    chain: i64,
    seq: i64,
    set_id: i64,
    totals: Totals,
    paths: PathIds,
    owners: Owners,
}

impl<'t, 'c> SetIndexer<'t, 'c> {
    /// Starts a set: its chain is found or made, and it must extend the
    /// chain's last set (or be a full on an empty chain).
    pub fn begin(tx: &'t Transaction<'c>, target: i64, f: &SetFacts) -> rusqlite::Result<Self> {
        tx.execute(
            "INSERT OR IGNORE INTO chain (target, start_time) VALUES (?1, ?2)",
            params![target, f.chain_start],
        )?;
        let chain: i64 = tx.query_row(
            "SELECT id FROM chain WHERE target = ?1 AND start_time = ?2",
            params![target, f.chain_start],
            |r| r.get(0),
        )?;
        let last = tx
            .query_row(
                "SELECT seq, source_bytes, source_slack, files FROM backup_set
                 WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
                [chain],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        Totals {
                            bytes: r.get(1)?,
                            slack: r.get(2)?,
                            files: r.get(3)?,
                            ..Totals::default()
                        },
                    ))
                },
            )
            .optional()?;
        let (seq, totals) = match (f.full, last) {
            (true, _) | (false, None) => (0, Totals::default()),
            (false, Some((s, t))) => (s + 1, t),
        };
        tx.execute(
            "INSERT INTO backup_set (chain, seq, kind, start_time, end_time, volumes,
                 stored_bytes, source_bytes, source_slack, files, new_paths, changed_paths,
                 deleted_paths, writer, indexed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 0, 0, 0, 0, ?8, 1)",
            params![
                chain,
                seq,
                if f.full { "full" } else { "inc" },
                f.start_time,
                f.end_time,
                f.volumes.len() as i64,
                f.stored_bytes.map(|b| b as i64),
                f.writer,
            ],
        )?;
        let set_id = tx.last_insert_rowid();
        for v in &f.volumes {
            tx.execute(
                "INSERT INTO volume (set_id, number, name, size, sha1) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    set_id,
                    v.number as i64,
                    v.name,
                    v.size.map(|s| s as i64),
                    v.sha1
                ],
            )?;
        }
        Ok(SetIndexer {
            tx,
            chain,
            seq,
            set_id,
            totals,
            paths: PathIds::default(),
            owners: Owners::new(),
        })
    }

    fn before(&self, path: i64) -> rusqlite::Result<Option<Before>> {
        if self.seq == 0 {
            return Ok(None);
        }
        self.tx
            .prepare_cached(
                "SELECT change, kind, size, slack FROM version
                 WHERE path = ?1 AND chain = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![path, self.chain, self.seq], |r| {
                Ok(Before {
                    change: r.get(0)?,
                    kind: r.get(1)?,
                    size: r.get(2)?,
                    slack: r.get(3)?,
                })
            })
            .optional()
            .map(|b| b.filter(|b| b.change != DELETED))
    }

    /// Records one entry of the set.
    pub fn add(&mut self, e: &Entry) -> rusqlite::Result<()> {
        let path = self.paths.resolve(self.tx, &e.index)?;
        let before = self.before(path)?;
        let kind = e.meta.kind.and_then(|k| super::schema::kind_code(k.name()));
        let (size, slack) = match e.meta.kind {
            Some(FileType::Regular) => (e.meta.size as i64, e.slack as i64),
            _ => (0, 0),
        };
        let t = &mut self.totals;
        let change = match (&before, kind) {
            (None, None) => return Ok(()),
            (Some(b), None) => {
                t.deleted += 1;
                t.files -= 1;
                t.bytes -= b.size;
                t.slack -= b.slack;
                DELETED
            }
            (Some(b), Some(k)) => {
                t.changed += 1;
                t.bytes += size - b.size;
                t.slack += slack - b.slack;
                let reg = super::schema::kind_code("reg");
                if Some(k) == reg && b.kind == reg {
                    DELTA
                } else {
                    SNAPSHOT
                }
            }
            (None, Some(_)) => {
                t.new += 1;
                t.files += 1;
                t.bytes += size;
                t.slack += slack;
                NEW
            }
        };
        let m = &e.meta;
        let link = (m.kind == Some(FileType::Symlink)).then_some(&m.link_target);
        let owner = owner_id(self.tx, &mut self.owners, m)?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO version (path, chain, seq, change, kind, size, slack,
                     mode, owner, mtime, link)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                path, self.chain, self.seq, change, kind, size, slack, m.mode, owner, m.mtime,
                link,
            ])?;
        crate::fault::catalog_row();
        Ok(())
    }

    /// Writes the set's totals; the caller commits.
    pub fn finish(self) -> rusqlite::Result<i64> {
        let t = self.totals;
        self.tx.execute(
            "UPDATE backup_set SET source_bytes = ?2, source_slack = ?3, files = ?4,
                 new_paths = ?5, changed_paths = ?6, deleted_paths = ?7 WHERE id = ?1",
            params![
                self.set_id,
                t.bytes,
                t.slack,
                t.files,
                t.new,
                t.changed,
                t.deleted
            ],
        )?;
        Ok(self.set_id)
    }

    /// Marks the set as not indexed (its signatures could not be read).
    pub fn unindexed(self) -> rusqlite::Result<()> {
        self.tx.execute(
            "UPDATE backup_set SET indexed = 0 WHERE id = ?1",
            [self.set_id],
        )?;
        self.tx.execute(
            "DELETE FROM version WHERE chain = ?1 AND seq = ?2",
            params![self.chain, self.seq],
        )?;
        Ok(())
    }
}

/// Collects what a backup writes into its signatures, in a spool file (so
/// memory does not grow with the tree), for [`super::Catalog::record`] to
/// index once the set is complete.
pub struct Recorder {
    spool: Option<BufWriter<std::fs::File>>,
    dir: std::path::PathBuf,
    failed: Option<String>,
    entries: u64,
}

impl Recorder {
    /// A recorder spooling into a file in `tempdir`.
    pub fn new(tempdir: &std::path::Path) -> Self {
        Recorder {
            spool: None,
            dir: tempdir.to_path_buf(),
            failed: None,
            entries: 0,
        }
    }

    /// The spooled entries, in order; an error if spooling failed.
    pub(super) fn entries(&mut self) -> Result<SpoolReader, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(w) = self.spool.take() else {
            return Err("the backup recorded no signatures".into());
        };
        let mut f = w.into_inner().map_err(|e| e.to_string())?;
        f.rewind().map_err(|e| e.to_string())?;
        Ok(SpoolReader {
            r: BufReader::new(f),
        })
    }

    fn write(&mut self, index: &Index, meta: Option<&Meta>) -> std::io::Result<()> {
        let Some(w) = self.spool.as_mut() else {
            return Ok(());
        };
        let default = Meta::default();
        let m = meta.unwrap_or(&default);
        let mut line = Vec::with_capacity(128);
        put(&mut line, &index.joined());
        put(&mut line, m.kind.map_or("-", FileType::name).as_bytes());
        for n in [m.mode as u64, m.uid, m.gid, m.mtime as u64, m.size] {
            put(&mut line, n.to_string().as_bytes());
        }
        put(&mut line, &m.uname);
        put(&mut line, &m.gname);
        put(&mut line, &m.link_target);
        w.write_all(&(line.len() as u32).to_le_bytes())?;
        w.write_all(&line)?;
        self.entries += 1;
        Ok(())
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

impl crate::backup::Observer for Recorder {
    fn start(&mut self) {
        self.entries = 0;
        self.failed = None;
        match tempfile::tempfile_in(&self.dir) {
            Ok(f) => self.spool = Some(BufWriter::new(f)),
            Err(e) => self.failed = Some(format!("cannot spool in {}: {e}", self.dir.display())),
        }
    }

    fn entry(&mut self, index: &Index, meta: Option<&Meta>) {
        if self.failed.is_none()
            && let Err(e) = self.write(index, meta)
        {
            self.failed = Some(format!("cannot spool in {}: {e}", self.dir.display()));
            self.spool = None;
        }
    }
}

/// Reads back a [`Recorder`]'s spool.
pub(super) struct SpoolReader {
    r: BufReader<std::fs::File>,
}

impl Iterator for SpoolReader {
    type Item = std::io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.r.fill_buf().map(|b| b.is_empty()).unwrap_or(false) {
            return None;
        }
        Some(self.read_one())
    }
}

impl SpoolReader {
    fn read_one(&mut self) -> std::io::Result<Entry> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len)?;
        let mut line = vec![0u8; u32::from_le_bytes(len) as usize];
        self.r.read_exact(&mut line)?;
        let mut fields = Vec::with_capacity(11);
        let mut rest = &line[..];
        while rest.len() >= 4 {
            let n = u32::from_le_bytes(rest[..4].try_into().expect("4")) as usize;
            let field = rest.get(4..4 + n).ok_or_else(bad)?;
            fields.push(field);
            rest = &rest[4 + n..];
        }
        let [ix, kind, mode, uid, gid, mtime, size, uname, gname, link] = fields[..] else {
            return Err(bad());
        };
        let num = |b: &[u8]| -> std::io::Result<u64> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)
        };
        let index = if ix.is_empty() {
            Index::root()
        } else {
            Index::from_components(ix.split(|&b| b == b'/').map(<[u8]>::to_vec).collect())
        };
        let meta = Meta {
            kind: kind_of(kind),
            mode: num(mode)? as u32,
            uid: num(uid)?,
            gid: num(gid)?,
            uname: uname.to_vec(),
            gname: gname.to_vec(),
            mtime: num(mtime)? as i64,
            size: num(size)?,
            link_target: link.to_vec(),
            ..Meta::default()
        };
        Ok(Entry {
            index,
            meta,
            slack: 0,
        })
    }
}

fn bad() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the catalog spool is damaged",
    )
}

fn kind_of(name: &[u8]) -> Option<FileType> {
    use FileType::*;
    [Regular, Directory, Symlink, Fifo, CharDevice, BlockDevice]
        .into_iter()
        .find(|k| k.name().as_bytes() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Observer;

    #[test]
    fn signature_sizes() {
        let mut sig = vec![0x72, 0x73, 0x01, 0x36, 0, 0, 8, 0, 0, 0, 0, 8];
        assert_eq!(size_from_signature(&sig), (0, 0));
        sig.extend([0u8; 12 * 3]);
        assert_eq!(size_from_signature(&sig), (3 * 2048, 2047));
        assert_eq!(size_from_signature(b"xx"), (0, 0));
    }

    #[test]
    fn spool_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(dir.path());
        r.start();
        let meta = Meta {
            kind: Some(FileType::Symlink),
            mode: 0o777,
            uid: 1000,
            gid: 100,
            uname: b"me".to_vec(),
            gname: b"users".to_vec(),
            mtime: 1_700_000_000,
            size: 7,
            link_target: b"../a/\xff".to_vec(),
            ..Meta::default()
        };
        let ix = Index::from_components(vec![b"d".to_vec(), b"l\xfe".to_vec()]);
        r.entry(&Index::root(), Some(&Meta::default()));
        r.entry(&ix, Some(&meta));
        r.entry(&ix, None);
        let got: Vec<Entry> = r.entries().unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].index.is_root());
        assert_eq!(got[1].index, ix);
        assert_eq!(got[1].meta, meta);
        assert_eq!(got[2].meta.kind, None);
    }
}
