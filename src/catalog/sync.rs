//! Bringing the catalog in line with the target: the listing says which
//! complete sets exist; sets the catalog lacks are indexed from their
//! signature files (the archive dir's copy when there is one, else the
//! target's) and manifests, never from volumes; sets and chains the target
//! no longer has are dropped. Each set is one transaction.

use super::index::{Entry, SetFacts, SetIndexer, VolumeFacts, size_from_signature};
use super::{Catalog, CatalogError, Result};
use crate::archive::collection::{BackupChain, BackupSet, Collection, SetKind};
use crate::archive::names::Encoding;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::time::Seconds;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::HashMap;

/// What a sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Sets indexed.
    pub added: usize,
    /// Sets dropped because the target no longer has them (or has them
    /// differently).
    pub removed: usize,
    /// Sets whose signatures could not be read: listed, without paths.
    pub unindexed: Vec<String>,
}

impl SyncReport {
    pub fn changed(&self) -> bool {
        self.added + self.removed > 0
    }
}

/// The chain start of the chain whose last set ended at the set's start
/// time, if the catalog holds it.
pub(super) fn extends_last(
    tx: &Transaction<'_>,
    target: i64,
    f: &SetFacts,
) -> rusqlite::Result<Option<Seconds>> {
    tx.query_row(
        "SELECT c.start_time FROM chain c JOIN backup_set s ON s.chain = c.id
         WHERE c.target = ?1 AND s.end_time = ?2
           AND s.seq = (SELECT max(seq) FROM backup_set WHERE chain = c.id)",
        params![target, f.start_time],
        |r| r.get(0),
    )
    .optional()
}

/// Drops the set with these facts' time from its chain, and every later set
/// of that chain (they extend it).
pub(super) fn drop_set(tx: &Transaction<'_>, target: i64, f: &SetFacts) -> rusqlite::Result<()> {
    let found: Option<(i64, i64)> = tx
        .query_row(
            "SELECT c.id, s.seq FROM chain c JOIN backup_set s ON s.chain = c.id
             WHERE c.target = ?1 AND c.start_time = ?2 AND s.end_time = ?3",
            params![target, f.chain_start, f.end_time],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((chain, seq)) = found {
        drop_from(tx, chain, seq)?;
    }
    Ok(())
}

/// Drops the sets of `chain` from `seq` on, and the chain if none is left.
fn drop_from(tx: &Transaction<'_>, chain: i64, seq: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM version WHERE chain = ?1 AND seq >= ?2",
        params![chain, seq],
    )?;
    let n = tx.execute(
        "DELETE FROM backup_set WHERE chain = ?1 AND seq >= ?2",
        params![chain, seq],
    )?;
    if seq == 0 {
        tx.execute("DELETE FROM chain WHERE id = ?1", [chain])?;
    }
    Ok(n)
}

/// Where a set's signatures are: `(local, name)`.
fn signature_file(
    coll: &Collection,
    chain_start: Seconds,
    set: &BackupSet,
) -> Option<(bool, String)> {
    let mut chains: Vec<_> = coll
        .sig_chains
        .iter()
        .filter(|c| c.full_time == chain_start)
        .collect();
    // The archive dir's copy first: no download, no decryption.
    chains.sort_by_key(|c| !c.local);
    chains.into_iter().find_map(|c| match set.kind {
        SetKind::Full => Some((c.local, c.full.clone())),
        SetKind::Inc => c
            .incs
            .iter()
            .find(|i| i.2 == set.set_time())
            .map(|i| (c.local, i.0.clone())),
    })
}

/// The stored size of a file at the target: a local directory's, else the
/// one a listing gave (rsync, SFTP, S3: [`Collection::remote_sizes`]).
fn stored_size(repo: &Repo, listed: &HashMap<String, u64>, name: &str) -> Option<u64> {
    match repo.backend.local_path(name) {
        Some(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        None => listed.get(name).copied(),
    }
}

/// Sums sizes, or None if one is unknown.
fn total(sizes: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    sizes.into_iter().sum()
}

/// A listed set's facts: volumes from its manifest, sizes from the target.
fn listed_facts(
    repo: &Repo,
    coll: &Collection,
    chain_start: Seconds,
    set: &BackupSet,
) -> Result<SetFacts> {
    let manifest = repo.manifest(set)?;
    let volumes: Vec<VolumeFacts> = set
        .volumes
        .iter()
        .map(|(n, name)| VolumeFacts {
            number: *n,
            name: name.clone(),
            size: stored_size(repo, &coll.remote_sizes, name),
            sha1: manifest
                .volumes
                .get(n)
                .and_then(|v| v.best_hash())
                .map(|(_, h)| h.to_ascii_lowercase()),
        })
        .collect();
    let remote_sig = coll
        .sig_chains
        .iter()
        .filter(|c| !c.local && c.full_time == chain_start)
        .find_map(|c| match set.kind {
            SetKind::Full => Some(c.full.clone()),
            SetKind::Inc => c
                .incs
                .iter()
                .find(|i| i.2 == set.set_time())
                .map(|i| i.0.clone()),
        });
    let stored = total(
        volumes
            .iter()
            .map(|v| v.size)
            .chain([set
                .manifest
                .as_deref()
                .and_then(|m| stored_size(repo, &coll.remote_sizes, m))])
            .chain([remote_sig
                .as_deref()
                .and_then(|s| stored_size(repo, &coll.remote_sizes, s))]),
    );
    Ok(SetFacts {
        full: set.kind == SetKind::Full,
        start_time: set.start_time.filter(|_| set.kind == SetKind::Inc),
        end_time: set.set_time(),
        chain_start,
        volumes,
        stored_bytes: stored,
        writer: None,
    })
}

impl SetFacts {
    /// The facts of the set a backup just wrote, from the archive dir's
    /// manifest and the names the backup used; no request to the target.
    pub fn after_backup(
        repo: &Repo,
        report: &crate::backup::BackupReport,
        encoding: Encoding,
    ) -> crate::Result<SetFacts> {
        use crate::archive::manifest::Manifest;
        let (prev, t) = (report.previous, report.time);
        let cache = repo.cache_dir()?;
        let man_path = cache.join(repo.naming.manifest(prev, t, Encoding::Plain, false));
        let bytes =
            std::fs::read(&man_path).map_err(|e| crate::Error::local("read", &man_path, e))?;
        let manifest = Manifest::parse(&bytes).map_err(|source| crate::Error::Manifest {
            file: man_path.display().to_string(),
            source,
        })?;
        let volumes: Vec<VolumeFacts> = manifest
            .volumes
            .iter()
            .map(|(n, v)| {
                let name = repo.naming.volume(prev, t, *n, encoding);
                VolumeFacts {
                    number: *n,
                    size: stored_size(repo, &HashMap::new(), &name),
                    name,
                    sha1: v.best_hash().map(|(_, h)| h.to_ascii_lowercase()),
                }
            })
            .collect();
        let man_enc = if encoding == Encoding::Gpg {
            Encoding::Gpg
        } else {
            Encoding::Plain
        };
        let stored = total(
            volumes
                .iter()
                .map(|v| v.size)
                .chain([stored_size(
                    repo,
                    &HashMap::new(),
                    &repo.naming.manifest(prev, t, man_enc, false),
                )])
                .chain([stored_size(
                    repo,
                    &HashMap::new(),
                    &repo.naming.signatures(prev, t, encoding, false),
                )]),
        )
        // A remote target: what this run uploaded, if it wrote the whole set
        // (a resumed run counts only its own volumes).
        .or((report.volumes == volumes.len() as u64).then_some(report.stored_bytes));
        Ok(SetFacts {
            full: prev.is_none(),
            start_time: prev,
            end_time: t,
            chain_start: t,
            volumes,
            stored_bytes: stored,
            writer: Some("cairn"),
        })
    }
}

/// The catalog's chains for a target: `(id, start, end times by seq)`.
fn chains_held(
    tx: &Transaction<'_>,
    target: i64,
) -> rusqlite::Result<Vec<(i64, Seconds, Vec<Seconds>)>> {
    let mut st = tx.prepare(
        "SELECT c.id, c.start_time, s.end_time FROM chain c
         LEFT JOIN backup_set s ON s.chain = c.id WHERE c.target = ?1 ORDER BY c.id, s.seq",
    )?;
    let mut out: Vec<(i64, Seconds, Vec<Seconds>)> = Vec::new();
    let rows = st.query_map([target], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?))
    })?;
    for row in rows {
        let (id, start, end) = row?;
        if out.last().is_none_or(|l| l.0 != id) {
            out.push((id, start, Vec::new()));
        }
        if let Some(e) = end {
            out.last_mut().expect("pushed").2.push(e);
        }
    }
    Ok(out)
}

impl Catalog {
    /// Brings the catalog in line with the target's listing (see the module
    /// documentation). Cheap when nothing changed: one listing.
    pub fn sync(&mut self, repo: &Repo, url: &str, progress: &dyn Progress) -> Result<SyncReport> {
        let coll = repo.collection()?;
        self.sync_with(repo, url, &coll, progress)
    }

    /// [`Catalog::sync`] with a listing already made.
    pub fn sync_with(
        &mut self,
        repo: &Repo,
        url: &str,
        coll: &Collection,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let target = self.target_id(url)?;
        let mut report = SyncReport::default();
        let (path, conn) = (self.path.clone(), &mut self.conn);
        let wrap = |cause| CatalogError::Sqlite {
            path: path.clone(),
            cause,
        };
        let tx = conn.transaction().map_err(wrap)?;
        let held = chains_held(&tx, target).map_err(wrap)?;
        let mut todo: Vec<(&BackupChain, usize)> = Vec::new();
        for (id, start, ends) in &held {
            let Some(chain) = coll.chains.iter().find(|c| c.full.set_time() == *start) else {
                report.removed += drop_from(&tx, *id, 0).map_err(wrap)?;
                continue;
            };
            let want: Vec<Seconds> = chain.all_sets().map(BackupSet::set_time).collect();
            let keep = ends.iter().zip(&want).take_while(|(a, b)| a == b).count();
            if keep < ends.len() {
                report.removed += drop_from(&tx, *id, keep as i64).map_err(wrap)?;
            }
            todo.push((chain, keep));
        }
        for chain in &coll.chains {
            if !held.iter().any(|h| h.1 == chain.full.set_time()) {
                todo.push((chain, 0));
            }
        }
        tx.commit().map_err(wrap)?;
        let sets: Vec<(&BackupChain, &BackupSet)> = todo
            .iter()
            .flat_map(|(c, keep)| c.all_sets().skip(*keep).map(move |s| (*c, s)))
            .collect();
        if !sets.is_empty() {
            progress.total(sets.len() as u64);
        }
        for (chain, set) in sets {
            let start = chain.full.set_time();
            let facts = listed_facts(repo, coll, start, set)?;
            let sig = signature_file(coll, start, set);
            let indexed = self.index_listed(repo, target, &facts, sig)?;
            if indexed {
                report.added += 1;
            } else {
                report.unindexed.push(set.describe());
            }
            progress.advance(1);
        }
        Ok(report)
    }

    /// Indexes one listed set from its signature file, in one transaction.
    /// False if the signatures are missing or the chain before it is not
    /// indexed (it is then listed without paths).
    fn index_listed(
        &mut self,
        repo: &Repo,
        target: i64,
        facts: &SetFacts,
        sig: Option<(bool, String)>,
    ) -> Result<bool> {
        let (path, conn) = (self.path.clone(), &mut self.conn);
        let wrap = |cause| CatalogError::Sqlite {
            path: path.clone(),
            cause,
        };
        let tx = conn.transaction().map_err(wrap)?;
        let before_ok: bool = facts.full
            || tx
                .query_row(
                    "SELECT min(s.indexed) FROM chain c JOIN backup_set s ON s.chain = c.id
                     WHERE c.target = ?1 AND c.start_time = ?2",
                    params![target, facts.chain_start],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .map_err(wrap)?
                .unwrap_or(0)
                == 1;
        let mut ix = SetIndexer::begin(&tx, target, facts).map_err(wrap)?;
        let Some((local, name)) = sig.filter(|_| before_ok) else {
            ix.unindexed().map_err(wrap)?;
            tx.commit().map_err(wrap)?;
            return Ok(false);
        };
        let reader = repo.open_signature_file(local, &name)?;
        let mut failed: Option<rusqlite::Error> = None;
        let read = crate::archive::sigtar::read(reader, |e| {
            let (size, slack) = match &e.signature {
                Some(sig) => size_from_signature(sig),
                None => (0, 0),
            };
            let mut meta = e.meta;
            meta.size = size;
            let entry = Entry {
                index: e.index,
                meta,
                slack,
            };
            ix.add(&entry).map_err(|err| {
                failed = Some(err);
                crate::archive::difftar::DifftarError::Tar(std::io::Error::other(
                    "catalog write failed",
                ))
            })
        });
        if let Some(e) = failed {
            return Err(wrap(e));
        }
        read.map_err(|e| {
            CatalogError::Target(crate::Error::Usage(format!(
                "cannot read the signatures {name}: {e}"
            )))
        })?;
        ix.finish().map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(true)
    }
}
