//! Removing old backups and leftovers, with duplicity's rules
//! (`dup_main.remove_old`, `cleanup`; `dup_collections` for what depends on
//! what): whole chains go, never the chain a backup would extend, never a set
//! that a newer set needs; signature chains go with them; nothing is deleted
//! without `force` — without it the plan is only shown.
//!
//! # Interrupted at any step
//!
//! The target's listing is the truth; the archive directory only caches it
//! and keeps the state of one unfinished backup. Every multi-file change is
//! ordered so that each prefix of its steps is a state that the next run
//! recognises and completes, and so that nothing complete is ever taken for
//! partial:
//!
//! | operation | steps, in order | killed after step k, the next run… |
//! | --- | --- | --- |
//! | backup | resume record, `.part` manifest and signatures in the cache → each volume (temporary name, rename) → signatures at the target → manifest at the target → cache: signatures, manifest renamed → resume record removed | before the manifest: the set is partial (its volumes, no manifest); the next backup resumes it after the last stored volume whose hash it recorded, `cleanup` removes it. After the manifest: the set is complete whatever the cache says (a manifest at the target outranks a local `.part`, see `archive::collection`); the next backup, `cleanup` or removal finishes the cache ([`Repo::tidy_cache`]) |
//! | removal (`remove-*`) | per set, newest set first: signatures → manifest → volumes; then cached files; then [`Repo::tidy_cache`] | a set whose signatures went is still complete and still planned; a set whose manifest went is an incomplete set older than the cut-off and than every complete set — a *leftover* the same removal plans and deletes ([`Plan::leftovers`]); a backup in progress is never a leftover (it is newer than every complete set) |
//! | cleanup | the sets `collection-status` reports (orphaned, incomplete, and a partial last set wherever the grouping put it), each: signatures → manifest → volumes; cached files (a resume record before its `.part` manifest); then [`Repo::tidy_cache`] | lists and removes the rest: every step removes files the plan of the next run still finds |
//! | cache sync | fetch missing metadata (each written atomically) → [`Repo::tidy_cache`] | fetches the rest; a half-written cache file never has its final name |
//!
//! Deleting a file that is already gone is not an error anywhere, so a step
//! repeated after a kill is harmless.

use crate::archive::collection::{BackupChain, BackupSet, Collection, SetKind, SignatureChain};
use crate::archive::names::Kind;
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::time::{self, Seconds};
use std::path::PathBuf;

/// Which removal to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Chains that ended before this time (`remove-older-than`).
    OlderThan(Seconds),
    /// All chains but the newest N (`remove-all-but-n-full`).
    AllButNFull(usize),
    /// The incrementals of all chains but the newest N, keeping their fulls
    /// (`remove-all-inc-of-but-n-full`).
    IncrementalsOfAllButNFull(usize),
}

/// What a removal or cleanup deletes (or would).
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// End times of the chains affected, for messages.
    pub chains: Vec<Seconds>,
    /// Whether only incrementals go (fulls kept).
    pub keep_full: bool,
    /// Sets that cannot go because newer sets depend on them.
    pub required: Vec<Seconds>,
    /// The active chain is older than the cut-off but is never removed.
    pub active_chain_kept: bool,
    /// Incomplete sets older than the cut-off that an interrupted removal
    /// left (volumes whose manifest was already deleted): removed with the
    /// plan, so running the same removal again completes it.
    pub leftovers: Vec<Seconds>,
    /// Files at the target, in deletion order (newest first).
    pub remote: Vec<String>,
    /// Files in the archive directory.
    pub local: Vec<PathBuf>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remote.is_empty() && self.local.is_empty()
    }
}

/// Every file of a set at the target (including its signature files, in
/// any encoding) and in the cache (`BackupSet.delete`).
fn set_files(repo: &Repo, set: &BackupSet, remote: &[String], local: &[String], plan: &mut Plan) {
    let mut files = set.remote_files(&repo.naming);
    for r in remote {
        if let Some(p) = repo.naming.parse(r)
            && matches!(p.kind, Kind::FullSig | Kind::NewSig)
            && p.time == set.time
            && p.start_time == set.start_time
            && p.end_time == set.end_time
            && !files.contains(r)
        {
            files.push(r.clone());
        }
    }
    files.reverse();
    files.retain(|f| !plan.remote.contains(f));
    plan.remote.extend(files);
    if let Some(dir) = &repo.archive_dir {
        let mut mine: Vec<(bool, PathBuf)> = local
            .iter()
            .filter_map(|l| Some((l, repo.naming.parse(l)?)))
            .filter(|(_, p)| {
                p.time == set.time && p.start_time == set.start_time && p.end_time == set.end_time
            })
            .map(|(l, p)| (p.manifest, dir.join(l)))
            .filter(|(_, path)| !plan.local.contains(path))
            .collect();
        // The manifest last: it is what makes the set.
        mine.sort_by_key(|(manifest, _)| *manifest);
        plan.local.extend(mine.into_iter().map(|(_, p)| p));
    }
}

fn chain_files(
    repo: &Repo,
    chain: &BackupChain,
    keep_full: bool,
    remote: &[String],
    local: &[String],
    plan: &mut Plan,
) {
    for inc in chain.incs.iter().rev() {
        set_files(repo, inc, remote, local, plan);
    }
    if !keep_full {
        set_files(repo, &chain.full, remote, local, plan);
    }
}

fn sig_chain_files(repo: &Repo, chain: &SignatureChain, keep_full: bool, plan: &mut Plan) {
    let mut names: Vec<String> = chain.incs.iter().rev().map(|i| i.0.clone()).collect();
    if !keep_full {
        names.push(chain.full.clone());
    }
    for n in names {
        if chain.local {
            if let Some(dir) = &repo.archive_dir {
                let p = dir.join(&n);
                if !plan.local.contains(&p) {
                    plan.local.push(p);
                }
            }
        } else if !plan.remote.contains(&n) {
            plan.remote.push(n);
        }
    }
}

/// Plans a removal (`remove_old`).
pub fn plan_removal(repo: &Repo, coll: &Collection, how: Removal) -> Plan {
    let mut plan = Plan::default();
    let (cutoff, keep_full) = match how {
        Removal::OlderThan(t) => (t, false),
        Removal::AllButNFull(n) => (coll.nth_last_full_time(n).unwrap_or(0), false),
        Removal::IncrementalsOfAllButNFull(n) => (coll.nth_last_full_time(n).unwrap_or(0), true),
    };
    plan.keep_full = keep_full;
    // Sets older than the cut-off that newer sets still need.
    for c in coll.chains.iter().filter(|c| c.end_time() >= cutoff) {
        plan.required.extend(
            c.all_sets()
                .map(BackupSet::set_time)
                .filter(|&t| t < cutoff),
        );
    }
    plan.required.sort_unstable();
    plan.active_chain_kept = coll.matched_chain().is_some_and(|c| c.end_time() < cutoff);
    let mut chains: Vec<&BackupChain> = coll
        .chains_older_than(cutoff)
        .into_iter()
        .map(|i| &coll.chains[i])
        .collect();
    if keep_full {
        chains.retain(|c| !c.incs.is_empty());
    }
    let leftovers = leftover_sets(coll, cutoff);
    if chains.is_empty() && leftovers.is_empty() {
        return plan;
    }
    let remote = repo.backend.list().unwrap_or_default();
    let local = repo.local_names();
    plan.chains = chains.iter().map(|c| c.end_time()).collect();
    plan.leftovers = leftovers.iter().map(|s| s.set_time()).collect();
    for s in leftovers {
        set_files(repo, s, &remote, &local, &mut plan);
    }
    // Newest first, so an interrupted removal never leaves a chain whose
    // later sets lost their base.
    for c in chains.iter().rev() {
        chain_files(repo, c, keep_full, &remote, &local, &mut plan);
    }
    for i in coll.sig_chains_older_than(cutoff).into_iter().rev() {
        let sc = &coll.sig_chains[i];
        if keep_full && sc.incs.is_empty() {
            continue;
        }
        sig_chain_files(repo, sc, keep_full, &mut plan);
    }
    plan
}

/// Sets without a manifest that are older than `cutoff` and than every
/// complete set's end: what a removal killed half-way left behind. A backup
/// in progress is never among them (its set is newer than every complete
/// one), nor is a partial set this archive directory can resume.
fn leftover_sets(coll: &Collection, cutoff: Seconds) -> Vec<&BackupSet> {
    let newest = coll.latest_time().unwrap_or(0);
    coll.incomplete_sets
        .iter()
        .filter(|s| s.manifest.is_none() && !s.partial)
        .filter(|s| s.set_time() < cutoff && s.set_time() < newest)
        .collect()
}

/// Plans a cleanup (`get_extraneous`): orphaned and incomplete sets, sets
/// an interrupted backup left partial (wherever the grouping put them: the
/// end of a chain, or among the incomplete sets when their signatures were
/// never stored), and orphaned signature files, at the target and in the
/// cache. It lists exactly the sets `collection-status` reports as needing
/// cleanup, plus the partial set.
pub fn plan_cleanup(repo: &Repo, coll: &Collection) -> Plan {
    let mut plan = Plan::default();
    let partial_last = coll
        .chains
        .iter()
        .map(BackupChain::last)
        .filter(|s| s.partial);
    let sets: Vec<&BackupSet> = coll
        .orphaned_sets
        .iter()
        .chain(coll.incomplete_sets.iter())
        .chain(partial_last)
        .collect();
    if !sets.is_empty() {
        let remote = repo.backend.list().unwrap_or_default();
        let local = repo.local_names();
        for s in sets {
            set_files(repo, s, &remote, &local, &mut plan);
            plan.chains.push(s.set_time());
        }
    }
    for r in &coll.remote_orphaned_sigs {
        if !plan.remote.contains(r) {
            plan.remote.push(r.clone());
        }
    }
    if let Some(dir) = &repo.archive_dir {
        for l in &coll.local_orphaned_sigs {
            let p = dir.join(l);
            if !plan.local.contains(&p) {
                plan.local.push(p);
            }
        }
    }
    plan
}

/// Carries out a plan: the target's files first, then the cache's.
pub fn apply(repo: &Repo, plan: &Plan) -> Result<()> {
    if !plan.remote.is_empty() {
        repo.backend.delete(&plan.remote)?;
    }
    for p in &plan.local {
        // A partial manifest's resume record goes first: a record without its
        // manifest would be a leftover, a manifest without its record is a
        // partial set the next backup starts again.
        if let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str()))
            && std::fs::remove_file(crate::backup::plain_hashes_path(dir, name)).is_ok()
        {
            crate::fault::step();
        }
        match std::fs::remove_file(p) {
            Ok(()) => crate::fault::step(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::local("remove", p, e)),
        }
    }
    Ok(())
}

/// A set's description for plans: "Full" or "Incremental" and its time.
pub fn describe(set: &BackupSet) -> String {
    format!(
        "{} {}",
        if set.kind == SetKind::Full {
            "Full"
        } else {
            "Incremental"
        },
        time::to_pretty(set.set_time())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::collection::tests::{T0, full, inc};
    use crate::archive::names::{Encoding, default_naming};
    use crate::backend::FileBackend;

    fn repo_with(names: &[String]) -> (tempfile::TempDir, Repo) {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        std::fs::create_dir_all(&t).unwrap();
        for n in names {
            std::fs::write(t.join(n), b"x").unwrap();
        }
        let repo = Repo {
            backend: Box::new(FileBackend::new(t)),
            naming: Default::default(),
            archive_dir: Some(d.path().join("cache")),
            keys: Default::default(),
            tempdir: d.path().to_path_buf(),
        };
        (d, repo)
    }

    #[test]
    fn all_but_n_full_removes_whole_old_chains_only() {
        let mut names = full(T0, 1);
        names.extend(inc(T0, T0 + 10));
        names.extend(full(T0 + 100, 1));
        names.extend(inc(T0 + 100, T0 + 110));
        names.extend(full(T0 + 200, 1));
        let (_d, repo) = repo_with(&names);
        let coll = repo.collection().unwrap();
        let plan = plan_removal(&repo, &coll, Removal::AllButNFull(2));
        assert_eq!(plan.chains, vec![T0 + 10]);
        assert_eq!(plan.remote.len(), 6, "{:?}", plan.remote);
        let oldest = time::to_string(T0);
        assert!(
            plan.remote.iter().all(|n| n.contains(&oldest)),
            "only the oldest chain: {:?}",
            plan.remote
        );
        apply(&repo, &plan).unwrap();
        let after = repo.collection().unwrap();
        assert_eq!(after.chains.len(), 2);

        let plan = plan_removal(&repo, &after, Removal::IncrementalsOfAllButNFull(1));
        assert!(plan.keep_full);
        assert_eq!(
            plan.remote.len(),
            3,
            "the incremental set and its signatures: {:?}",
            plan.remote
        );
        apply(&repo, &plan).unwrap();
        let after = repo.collection().unwrap();
        assert_eq!(after.chains.len(), 2);
        assert!(after.chains.iter().all(|c| c.incs.is_empty()));
    }

    #[test]
    fn older_than_never_removes_the_active_chain() {
        let mut names = full(T0, 1);
        names.extend(inc(T0, T0 + 10));
        let (_d, repo) = repo_with(&names);
        let coll = repo.collection().unwrap();
        let plan = plan_removal(&repo, &coll, Removal::OlderThan(T0 + 1000));
        assert!(plan.is_empty());
        assert!(plan.active_chain_kept);
        let plan = plan_removal(&repo, &coll, Removal::OlderThan(T0 + 5));
        assert!(plan.is_empty());
        assert_eq!(
            plan.required,
            vec![T0],
            "the full is needed by the incremental"
        );
    }

    #[test]
    fn cleanup_finds_orphans_and_incomplete_sets() {
        let n = default_naming();
        let mut names = full(T0, 1);
        names.push(n.full_volume(T0 + 50, 1, Encoding::Gpg)); // incomplete
        names.extend(inc(T0 + 500, T0 + 600)); // orphan set + orphan sig
        let (_d, repo) = repo_with(&names);
        let coll = repo.collection().unwrap();
        let plan = plan_cleanup(&repo, &coll);
        assert_eq!(plan.remote.len(), 4, "{:?}", plan.remote);
        apply(&repo, &plan).unwrap();
        assert_eq!(repo.backend.list().unwrap().len(), 3);
    }
}
