//! Restoring a point in time (`duplicity restore`): pick the chain and sets
//! for the time, stream every set's volumes in parallel, collate their entries
//! by index, and write each path's final state (`patchdir.integrate_patch_iters`
//! and `Write_ROPaths`): the last snapshot, with every later delta applied in
//! chain order, or nothing if the path was deleted.
//!
//! Damage is contained: a volume that is missing or fails its manifest SHA1 is
//! named, every path it could affect is reported and left out, and every other
//! path is restored.

pub mod check;
mod dest;
pub mod replace;
pub mod stream;
pub mod tar;
pub mod verify;
pub mod zip;

pub use dest::DestTree;

use crate::archive::collection::{BackupSet, Collection, SetKind};
use crate::archive::difftar::DiffType;
use crate::archive::index::Index;
use crate::archive::meta::{FileType, Meta, OwnerMap};
use crate::archive::names::Encoding;
use crate::delta;
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::time::{self, Seconds};
use std::io::{self, BufWriter, Seek, Write};
use std::path::PathBuf;
use stream::{Head, SetCursor, VolumeJob};

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The time to restore; `None` means the latest backup.
    pub time: Option<Seconds>,
    /// Restore only this path (and what is below it), written as DEST itself.
    pub path: Option<Index>,
    pub dest: PathBuf,
    /// Restore into a non-empty destination, replacing what is in the way.
    pub force: bool,
    /// Map owners by recorded number only, not by name.
    pub numeric_owner: bool,
    /// Try to restore ownership (as duplicity always does unless told not to).
    pub restore_owner: bool,
}

impl RestoreOptions {
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        RestoreOptions {
            time: None,
            path: None,
            dest: dest.into(),
            force: false,
            numeric_owner: false,
            restore_owner: true,
        }
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// The backup time that was restored.
    pub backup_time: Seconds,
    pub files: u64,
    pub directories: u64,
    pub others: u64,
    pub bytes: u64,
    /// Volumes that could not be used, with why.
    pub damaged_volumes: Vec<String>,
    /// Paths that could not be restored, with why.
    pub unrestored: Vec<String>,
    /// Attributes that could not be set, and similar lesser trouble.
    pub problems: Vec<String>,
}

impl RestoreReport {
    /// True when everything in the backup was restored.
    pub fn complete(&self) -> bool {
        self.damaged_volumes.is_empty() && self.unrestored.is_empty()
    }
}

/// Where reconstructed paths go: a destination tree (restore), or a
/// comparison with the live tree (verify). Regular files are rebuilt in
/// scratch files the output provides, deltas applied between them.
pub trait Output {
    type Scratch;
    fn scratch(&mut self, ix: &Index) -> Result<Self::Scratch>;
    fn scratch_file<'a>(&self, s: &'a mut Self::Scratch) -> &'a mut std::fs::File;
    fn discard(&mut self, s: Self::Scratch);
    /// A rebuilt regular file (the scratch is positioned at its start).
    fn file(&mut self, ix: &Index, s: Self::Scratch, meta: &Meta) -> Result<()>;
    fn dir(&mut self, ix: &Index, meta: &Meta) -> Result<()>;
    /// A symlink, FIFO or device.
    fn special(&mut self, ix: &Index, meta: &Meta) -> Result<()>;
    /// How to name `ix` in messages.
    fn shown(&self, ix: &Index) -> String;
}

impl<'o> Output for DestTree<'o> {
    type Scratch = dest::Scratch;

    fn scratch(&mut self, ix: &Index) -> Result<dest::Scratch> {
        DestTree::scratch(self, ix)
    }

    fn scratch_file<'a>(&self, s: &'a mut dest::Scratch) -> &'a mut std::fs::File {
        &mut s.file
    }

    fn discard(&mut self, s: dest::Scratch) {
        DestTree::discard(self, s);
    }

    fn file(&mut self, ix: &Index, s: dest::Scratch, meta: &Meta) -> Result<()> {
        self.commit_file(ix, s, meta)
    }

    fn dir(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        self.put_dir(ix, meta)
    }

    fn special(&mut self, ix: &Index, meta: &Meta) -> Result<()> {
        self.put_special(ix, meta)
    }

    fn shown(&self, ix: &Index) -> String {
        if ix.is_root() {
            self.dest().display().to_string()
        } else {
            ix.to_string()
        }
    }
}

/// The sets a restore at `t` reads, oldest first. A set an interrupted
/// backup left partial is never read: its volumes hold only part of its
/// changes.
pub fn sets_for_time(coll: &Collection, t: Seconds) -> Result<Vec<BackupSet>> {
    let mut chain = coll.chain_at(t)?;
    // An interrupted full set starts no usable chain: take the one before.
    while chain.full.partial {
        let before = chain.start_time().saturating_sub(1);
        match coll.chains.iter().any(|c| c.start_time() <= before) {
            true => chain = coll.chain_at(before)?,
            false => return Err(crate::archive::collection::CollectionError::NoChains.into()),
        }
    }
    Ok(chain
        .sets_at(t)
        .into_iter()
        .take_while(|s| !s.partial)
        .cloned()
        .collect())
}

/// Why a restore at `t` restores an earlier point than the newest set up
/// to `t`: each set newer than `restored` that cannot be used, with what is
/// wrong with it.
pub fn passed_over(coll: &Collection, t: Seconds, restored: Seconds) -> Vec<String> {
    let why = |s: &BackupSet| {
        if s.partial {
            "its backup was interrupted (run the backup again to finish it, or cleanup to remove it)"
        } else if s.manifest.is_none() {
            "its manifest is missing"
        } else if coll.orphaned_sets.contains(s) {
            "the set it extends is missing"
        } else {
            "its signatures are missing"
        }
    };
    let chained = coll.chains.iter().flat_map(|c| c.all_sets());
    let mut out: Vec<(Seconds, String)> = chained
        .chain(coll.incomplete_sets.iter())
        .chain(coll.orphaned_sets.iter())
        .filter(|s| s.set_time() > restored && s.set_time() <= t)
        .filter(|s| s.partial || !coll.chains.iter().any(|c| c.all_sets().any(|x| x == *s)))
        .map(|s| {
            (
                s.set_time(),
                format!("the {} is incomplete: {}", s.describe(), why(s)),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, m)| m).collect()
}

/// The volumes of a set that may hold `restrict` (all of them for `None`).
pub(crate) fn volume_jobs(
    repo: &Repo,
    set: &BackupSet,
    restrict: Option<&Index>,
) -> Result<Vec<VolumeJob>> {
    let manifest = repo.manifest(set)?;
    let default_enc = if set.encrypted {
        Encoding::Gpg
    } else {
        Encoding::Plain
    };
    let mut jobs = Vec::new();
    for (n, info) in &manifest.volumes {
        if let Some(p) = restrict
            && !info.contains(p)
        {
            continue;
        }
        let present = set.volumes.get(n).cloned();
        let encoding = present
            .as_deref()
            .and_then(|nm| repo.naming.parse(nm))
            .map_or(default_enc, |p| p.encoding());
        let prev = (set.kind == SetKind::Inc).then(|| set.start_time.unwrap_or(0));
        jobs.push(VolumeJob {
            number: *n,
            name: present
                .clone()
                .unwrap_or_else(|| repo.naming.volume(prev, set.set_time(), *n, encoding)),
            present: present.is_some(),
            info: info.clone(),
            encoding,
        });
    }
    Ok(jobs)
}

/// Free space on the filesystem holding `p`: the ceiling for what one delta
/// may expand to, so a hostile delta cannot fill the disk.
fn free_space(p: &std::path::Path) -> u64 {
    let probe = p.ancestors().find(|a| a.exists()).unwrap_or(p);
    nix::sys::statvfs::statvfs(probe)
        // The fields are 32 bits wide on armv7.
        .map(|s| {
            #[allow(clippy::useless_conversion)]
            let (blocks, size) = (
                u64::from(s.blocks_available()),
                u64::from(s.fragment_size()),
            );
            blocks.saturating_mul(size)
        })
        .unwrap_or(u64::MAX)
}

/// What a reconstruction reads: the sets for a time, the volumes of each
/// that may hold the path asked for.
pub struct Selected {
    pub sets: Vec<BackupSet>,
    /// Newer sets that could not be used, and why (see [`passed_over`]).
    pub passed_over: Vec<String>,
    jobs: Vec<Vec<VolumeJob>>,
}

impl Selected {
    /// The volume files a restore reads, set by set (`restore --dry-run`
    /// lists them).
    pub fn volume_names(&self) -> Vec<&str> {
        self.jobs
            .iter()
            .flatten()
            .map(|j| j.name.as_str())
            .collect()
    }
}

/// Picks the sets for `t` (latest if `None`) and reads their manifests.
pub fn select(repo: &Repo, t: Option<Seconds>, path: Option<&Index>) -> Result<Selected> {
    let coll = repo.collection()?;
    if coll.chains.is_empty() {
        return Err(Error::NoBackups(repo.describe()));
    }
    let t = t.unwrap_or_else(time::now);
    let sets = sets_for_time(&coll, t)?;
    let restored = sets.last().map_or(0, BackupSet::set_time);
    let passed_over = passed_over(&coll, t, restored)
        .into_iter()
        .map(|m| {
            format!(
                "{m}; restoring the backup of {} instead",
                time::to_pretty(restored)
            )
        })
        .collect();
    let mut jobs = Vec::new();
    for set in &sets {
        jobs.push(volume_jobs(repo, set, path)?);
    }
    Ok(Selected {
        sets,
        passed_over,
        jobs,
    })
}

/// Rebuilds every path of the selected sets (under `path`, if given) into
/// `out`, streaming all sets' volumes in parallel.
pub fn reconstruct<O: Output>(
    repo: &Repo,
    sel: Selected,
    path: Option<&Index>,
    out: O,
    limit: u64,
) -> Result<(RestoreReport, O, bool)> {
    let Selected {
        sets,
        passed_over,
        jobs,
    } = sel;
    let report = RestoreReport {
        backup_time: sets.last().map_or(0, BackupSet::set_time),
        problems: passed_over,
        ..Default::default()
    };
    std::thread::scope(|scope| {
        let mut cursors: Vec<SetCursor> = jobs
            .into_iter()
            .map(|j| stream::spawn(scope, repo, j, path.cloned()))
            .collect();
        let mut w = Walker {
            out,
            set_times: sets.iter().map(BackupSet::set_time).collect(),
            report,
            limit,
            wrote_any: false,
        };
        let outcome = w.run(&mut cursors);
        // Stop the producers before the scope joins them.
        drop(cursors);
        outcome?;
        Ok((w.report, w.out, w.wrote_any))
    })
}

/// Restores a point in time into `opts.dest`.
pub fn restore(repo: &Repo, opts: &RestoreOptions) -> Result<RestoreReport> {
    let sel = select(repo, opts.time, opts.path.as_ref())?;
    let owners = OwnerMap::new(opts.numeric_owner);
    let tree = DestTree::open(&opts.dest, opts.force, &owners, opts.restore_owner)?;
    let limit = free_space(tree.dest());
    let (mut report, tree, wrote_any) = reconstruct(repo, sel, opts.path.as_ref(), tree, limit)?;
    report.problems.extend(tree.finish());
    if !wrote_any && report.complete() {
        return Err(match &opts.path {
            Some(p) => Error::PathNotInBackup {
                path: p.to_string(),
                time: time::to_pretty(report.backup_time),
            },
            None => Error::NoBackups(repo.describe()),
        });
    }
    Ok(report)
}

struct Walker<O: Output> {
    out: O,
    /// Each set's time, in chain order, for messages.
    set_times: Vec<Seconds>,
    report: RestoreReport,
    limit: u64,
    wrote_any: bool,
}

impl<O: Output> Walker<O> {
    fn run(&mut self, cursors: &mut [SetCursor]) -> Result<()> {
        loop {
            let mut next: Option<Index> = None;
            for c in cursors.iter_mut() {
                if let Some(h) = c.peek()
                    && next.as_ref().is_none_or(|n| h.index < *n)
                {
                    next = Some(h.index.clone());
                }
            }
            self.collect_gaps(cursors);
            if let Some(f) = cursors.iter().find_map(|c| c.fatal.clone()) {
                return Err(Error::Undecryptable(f));
            }
            let Some(ix) = next else { break };
            let heads: Vec<Option<Head>> = cursors
                .iter_mut()
                .map(|c| match c.peek() {
                    Some(h) if h.index == ix => c.take(),
                    _ => None,
                })
                .collect();
            self.one_path(&ix, heads, cursors)?;
        }
        self.collect_gaps(cursors);
        Ok(())
    }

    fn collect_gaps(&mut self, cursors: &mut [SetCursor]) {
        for c in cursors.iter_mut() {
            for r in c.refused.drain(..) {
                self.report
                    .unrestored
                    .push(format!("refused archive entry: {r}"));
            }
            for g in &c.gaps {
                let msg = format!(
                    "{} (volume {}, paths {} to {}): {}",
                    g.file, g.volume, g.start, g.end, g.reason
                );
                if !self.report.damaged_volumes.contains(&msg) {
                    self.report.damaged_volumes.push(msg);
                }
            }
        }
    }

    fn unrestored(&mut self, ix: &Index, why: impl std::fmt::Display) {
        let shown = self.out.shown(ix);
        self.report.unrestored.push(format!("{shown}: {why}"));
    }

    /// Decides and writes one path from the entries the sets hold for it.
    fn one_path(
        &mut self,
        ix: &Index,
        heads: Vec<Option<Head>>,
        cursors: &mut [SetCursor],
    ) -> Result<()> {
        // `normalize_ps`: the last non-diff entry and the diffs after it.
        let base = heads
            .iter()
            .rposition(|h| h.as_ref().is_some_and(|h| h.difftype != DiffType::Diff));
        let damaged = cursors
            .iter()
            .enumerate()
            .find(|(k, c)| base.is_none_or(|b| *k >= b) && c.damaged(ix).is_some())
            .map(|(_, c)| c.damaged(ix).expect("found").file.clone());
        let Some(base) = base else {
            for (k, h) in heads.iter().enumerate() {
                if h.is_some() {
                    cursors[k].skip();
                }
            }
            let why = match damaged {
                Some(f) => format!("its earlier version is in damaged volume {f}"),
                None => "the backup holds only a delta for it, with no full version to apply it to"
                    .into(),
            };
            self.unrestored(ix, why);
            return Ok(());
        };
        for k in 0..base {
            if heads[k].is_some() {
                cursors[k].skip();
            }
        }
        if let Some(f) = damaged {
            for k in base..heads.len() {
                if heads[k].is_some() {
                    cursors[k].skip();
                }
            }
            self.unrestored(ix, format!("it may have changed in damaged volume {f}"));
            return Ok(());
        }
        let seq: Vec<(usize, Head)> = heads
            .into_iter()
            .enumerate()
            .skip(base)
            .filter_map(|(k, h)| h.map(|h| (k, h)))
            .collect();
        let final_meta = seq.last().expect("base present").1.meta.clone();
        let first = &seq[0].1;
        match first.meta.kind {
            None => {
                for (k, _) in &seq {
                    cursors[*k].skip();
                }
                Ok(())
            }
            Some(FileType::Regular) => self.regular(ix, &seq, &final_meta, cursors),
            Some(kind) => {
                for (k, _) in &seq {
                    cursors[*k].skip();
                }
                if seq.len() > 1 {
                    self.unrestored(
                        ix,
                        "the backup applies a delta to something that is not a file",
                    );
                    return Ok(());
                }
                if kind == FileType::Directory {
                    self.out.dir(ix, &final_meta)?;
                    self.report.directories += 1;
                } else {
                    self.out.special(ix, &final_meta)?;
                    self.report.others += 1;
                }
                self.wrote_any = true;
                Ok(())
            }
        }
    }

    fn regular(
        &mut self,
        ix: &Index,
        seq: &[(usize, Head)],
        meta: &Meta,
        cursors: &mut [SetCursor],
    ) -> Result<()> {
        let mut scratch = self.out.scratch(ix)?;
        let (k0, _) = seq[0];
        let copied = {
            let mut data = cursors[k0].data();
            let mut out = BufWriter::with_capacity(256 * 1024, self.out.scratch_file(&mut scratch));
            io::copy(&mut data, &mut out).and_then(|n| out.flush().map(|()| n))
        };
        let mut size = match copied {
            Ok(n) => n,
            Err(e) => {
                for (k, _) in &seq[1..] {
                    cursors[*k].skip();
                }
                self.out.discard(scratch);
                self.unrestored(ix, e);
                return Ok(());
            }
        };
        for (i, (k, _)) in seq.iter().enumerate().skip(1) {
            let mut next = self.out.scratch(ix)?;
            let result = {
                let mut data = cursors[*k].data();
                let basis = self.out.scratch_file(&mut scratch).try_clone();
                let mut out =
                    BufWriter::with_capacity(256 * 1024, self.out.scratch_file(&mut next));
                let r = basis
                    .map_err(|e| e.to_string())
                    .and_then(|basis| {
                        delta::apply(&basis, &mut data, &mut out, self.limit)
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|n| out.flush().map(|()| n).map_err(|e| e.to_string()));
                if r.is_err() {
                    // Leave the stream at the next entry.
                    let _ = io::copy(&mut data, &mut io::sink());
                }
                r
            };
            self.out.discard(scratch);
            scratch = next;
            match result {
                Ok(n) => size = n,
                Err(e) => {
                    for (k2, _) in &seq[i + 1..] {
                        cursors[*k2].skip();
                    }
                    self.out.discard(scratch);
                    self.unrestored(
                        ix,
                        format!(
                            "cannot apply the delta from the backup of {}: {e}",
                            time::to_string(self.set_times[*k])
                        ),
                    );
                    return Ok(());
                }
            }
        }
        let _ = self.out.scratch_file(&mut scratch).rewind();
        self.out.file(ix, scratch, meta)?;
        self.report.files += 1;
        self.report.bytes += size;
        self.wrote_any = true;
        Ok(())
    }
}
