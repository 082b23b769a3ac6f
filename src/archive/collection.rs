//! Backup sets, backup chains and signature chains, grouped exactly as
//! `duplicity/dup_collections.py` groups them, so that Cairn and duplicity
//! agree on what a target holds, which chain a restore uses, which chain a
//! backup extends, and what `cleanup` and the `remove-*` commands delete.

use super::names::{Kind, Naming, ParsedName};
use crate::time::{self, Seconds};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    Full,
    Inc,
}

/// The files of one backup session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSet {
    pub kind: SetKind,
    /// Full sets: the backup time.
    pub time: Option<Seconds>,
    /// Incremental sets: the time extended and the backup time.
    pub start_time: Option<Seconds>,
    pub end_time: Option<Seconds>,
    /// Volume number → file name.
    pub volumes: BTreeMap<u64, String>,
    /// The manifest's name: remote, or a local `.manifest.part`.
    pub manifest: Option<String>,
    pub jsonstat: Option<String>,
    /// The set came from an interrupted run (its manifest is a local `.part`).
    pub partial: bool,
    pub encrypted: bool,
    /// Volume numbers seen twice (a target holding e.g. `vol1.difftar.gz` and
    /// `vol1.difftar.gpg`); duplicity stops with an assertion here.
    pub duplicate_volumes: Vec<String>,
}

impl BackupSet {
    fn from_parsed(p: &ParsedName) -> Self {
        BackupSet {
            kind: if p.kind == Kind::Inc || p.kind == Kind::IncStat {
                SetKind::Inc
            } else {
                SetKind::Full
            },
            time: p.time,
            start_time: p.start_time,
            end_time: p.end_time,
            volumes: BTreeMap::new(),
            manifest: None,
            jsonstat: None,
            partial: p.partial,
            encrypted: p.encrypted,
            duplicate_volumes: Vec::new(),
        }
    }

    /// `BackupSet.add_filename`: true if the file belongs to this set.
    fn add(&mut self, name: &str, p: &ParsedName) -> bool {
        let kind = match p.kind {
            Kind::Full | Kind::FullStat => SetKind::Full,
            Kind::Inc | Kind::IncStat => SetKind::Inc,
            _ => return false,
        };
        if kind != self.kind
            || p.time != self.time
            || p.start_time != self.start_time
            || p.end_time != self.end_time
        {
            return false;
        }
        if p.encrypted && !self.encrypted && self.partial {
            self.encrypted = true;
        }
        if matches!(p.kind, Kind::FullStat | Kind::IncStat) {
            self.jsonstat = Some(name.to_string());
        } else if p.manifest {
            // The target's manifest outranks a local `.part` one: a run
            // killed after its manifest reached the target but before its
            // local bookkeeping left a complete set, not a partial one.
            if self.manifest.is_some() && !p.partial {
                self.partial = false;
            }
            if !(p.partial && self.manifest.is_some()) {
                self.manifest = Some(name.to_string());
            }
        } else if let Some(n) = p.volume {
            match self.volumes.entry(n) {
                std::collections::btree_map::Entry::Occupied(_) => {
                    self.duplicate_volumes.push(name.to_string())
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(name.to_string());
                }
            }
        }
        true
    }

    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }

    /// The set's time: `time` for a full, `end_time` for an incremental.
    pub fn set_time(&self) -> Seconds {
        self.time.or(self.end_time).unwrap_or(0)
    }

    /// Every file of the set on the target, volumes first, as
    /// `BackupSet.get_filenames` lists them (a local `.part` manifest is not
    /// a remote file).
    pub fn remote_files(&self, naming: &Naming) -> Vec<String> {
        let mut out: Vec<String> = self.volumes.values().cloned().collect();
        if let Some(m) = &self.manifest
            && naming.parse(m).is_some_and(|p| !p.partial)
        {
            out.push(m.clone());
        }
        out.extend(self.jsonstat.iter().cloned());
        out
    }

    pub fn describe(&self) -> String {
        match self.kind {
            SetKind::Full => format!("full backup of {}", time::to_string(self.set_time())),
            SetKind::Inc => format!(
                "incremental backup of {} (on top of {})",
                time::to_string(self.set_time()),
                time::to_string(self.start_time.unwrap_or(0))
            ),
        }
    }
}

/// A full set and the incrementals that extend it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupChain {
    pub full: BackupSet,
    pub incs: Vec<BackupSet>,
}

impl BackupChain {
    pub fn start_time(&self) -> Seconds {
        self.full.set_time()
    }

    pub fn end_time(&self) -> Seconds {
        self.incs
            .last()
            .map_or(self.start_time(), BackupSet::set_time)
    }

    /// `BackupChain.add_inc`.
    fn add_inc(&mut self, inc: BackupSet) -> Result<(), Box<BackupSet>> {
        if Some(self.end_time()) == inc.start_time {
            self.incs.push(inc);
            return Ok(());
        }
        if let Some(last) = self.incs.last_mut()
            && inc.start_time == last.start_time
            && inc.end_time > last.end_time
        {
            // "Preferring Backupset over previous one!"
            *last = inc;
            return Ok(());
        }
        Err(Box::new(inc))
    }

    /// The full set and every incremental finished by `t`.
    pub fn sets_at(&self, t: Seconds) -> Vec<&BackupSet> {
        std::iter::once(&self.full)
            .chain(self.incs.iter().filter(|s| s.end_time.unwrap_or(0) <= t))
            .collect()
    }

    pub fn all_sets(&self) -> impl Iterator<Item = &BackupSet> {
        std::iter::once(&self.full).chain(self.incs.iter())
    }

    pub fn last(&self) -> &BackupSet {
        self.incs.last().unwrap_or(&self.full)
    }

    pub fn volume_count(&self) -> usize {
        self.all_sets().map(|s| s.volumes.len()).sum()
    }
}

/// A full-signatures file and the new-signatures that extend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureChain {
    /// True for a chain in the local archive directory.
    pub local: bool,
    pub full: String,
    pub full_time: Seconds,
    /// `(name, start_time, end_time)` in chain order.
    pub incs: Vec<(String, Seconds, Seconds)>,
}

impl SignatureChain {
    pub fn start_time(&self) -> Seconds {
        self.full_time
    }

    pub fn end_time(&self) -> Seconds {
        self.incs.last().map_or(self.full_time, |i| i.2)
    }

    /// The chain cut after the set that ended at `t`, if it has one: what an
    /// interrupted set whose signatures did reach the target extends.
    pub fn truncated_to(&self, t: Seconds) -> Option<SignatureChain> {
        let mut c = self.clone();
        c.incs.retain(|i| i.2 <= t);
        (c.end_time() == t).then_some(c)
    }

    /// The files to read for the state at `t` (all of them for `None`).
    pub fn files_at(&self, t: Option<Seconds>) -> Vec<&str> {
        std::iter::once(self.full.as_str())
            .chain(
                self.incs
                    .iter()
                    .filter(|i| t.is_none_or(|t| i.2 <= t))
                    .map(|i| i.0.as_str()),
            )
            .collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CollectionError {
    #[error("no backups found at the target")]
    NoChains,
    #[error(
        "two backup chains cover the requested time; remove one of them (see collection-status)"
    )]
    Ambiguous,
}

/// Everything found at a target and in the local archive directory.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    /// Every backup chain, oldest first (by end time).
    pub chains: Vec<BackupChain>,
    pub orphaned_sets: Vec<BackupSet>,
    pub incomplete_sets: Vec<BackupSet>,
    /// Signature chains, remote and local, sorted by end time (remote first on ties).
    pub sig_chains: Vec<SignatureChain>,
    pub local_orphaned_sigs: Vec<String>,
    pub remote_orphaned_sigs: Vec<String>,
    /// Indexes into `sig_chains` and `chains` of the pair a backup extends.
    pub matched: Option<(usize, usize)>,
    /// The last incremental was dropped because its signatures are missing.
    pub dropped_unsigned_set: bool,
    /// The remote files' sizes, from the same listing (where it gave them).
    pub remote_sizes: std::collections::HashMap<String, u64>,
}

fn sig_chains(
    names: &[String],
    local: bool,
    naming: &Naming,
) -> (Vec<SignatureChain>, Vec<String>) {
    let mut chains = Vec::new();
    let mut news: Vec<(String, Seconds, Seconds)> = Vec::new();
    for n in names {
        // A partial signature file belongs to an unfinished set; it is
        // rewritten when that set is resumed and extends nothing.
        let Some(p) = naming.parse(n).filter(|p| !p.partial) else {
            continue;
        };
        match p.kind {
            Kind::FullSig => chains.push(SignatureChain {
                local,
                full: n.clone(),
                full_time: p.time.unwrap_or(0),
                incs: Vec::new(),
            }),
            Kind::NewSig => news.push((
                n.clone(),
                p.start_time.unwrap_or(0),
                p.end_time.unwrap_or(0),
            )),
            _ => {}
        }
    }
    news.sort_by_key(|n| n.1);
    let mut orphans = Vec::new();
    'next: for n in news {
        for c in chains.iter_mut() {
            if n.1 == c.end_time() {
                c.incs.push(n);
                continue 'next;
            }
        }
        orphans.push(n.0);
    }
    (chains, orphans)
}

impl Collection {
    /// Groups the names found remotely and in the local archive directory
    /// (`CollectionsStatus.set_values`).
    pub fn build(remote: &[String], local: &[String], naming: &Naming) -> Collection {
        // Local partial files come first, as in duplicity.
        let mut all: Vec<&String> = local
            .iter()
            .filter(|n| naming.parse(n).is_some_and(|p| p.partial))
            .collect();
        all.extend(remote.iter());

        let mut sets: Vec<BackupSet> = Vec::new();
        for name in all {
            let Some(p) = naming.parse(name) else {
                continue;
            };
            if !matches!(
                p.kind,
                Kind::Full | Kind::Inc | Kind::FullStat | Kind::IncStat
            ) {
                continue;
            }
            if sets.iter_mut().any(|s| s.add(name, &p)) {
                continue;
            }
            let mut s = BackupSet::from_parsed(&p);
            s.add(name, &p);
            sets.push(s);
        }
        let mut c = Collection::default();
        let mut complete = Vec::new();
        for s in sets {
            if s.is_complete() {
                complete.push(s);
            } else {
                c.incomplete_sets.push(s);
            }
        }
        // Only complete sets form chains (0.8's `get_sorted_sets`).
        let mut ordered: Vec<BackupSet> = complete;
        ordered.sort_by_key(BackupSet::set_time);
        for s in ordered {
            match s.kind {
                SetKind::Full => c.chains.push(BackupChain {
                    full: s,
                    incs: Vec::new(),
                }),
                SetKind::Inc => {
                    let mut pending = Some(s);
                    for chain in c.chains.iter_mut() {
                        match chain.add_inc(pending.take().expect("set")) {
                            Ok(()) => break,
                            Err(back) => pending = Some(*back),
                        }
                    }
                    if let Some(s) = pending {
                        c.orphaned_sets.push(s);
                    }
                }
            }
        }
        c.chains.sort_by_key(BackupChain::end_time);

        let (mut lc, lo) = sig_chains(local, true, naming);
        let (rc, ro) = sig_chains(remote, false, naming);
        c.local_orphaned_sigs = lo;
        c.remote_orphaned_sigs = ro;
        let mut sigs = rc;
        sigs.append(&mut lc);
        // Sorted by end time; on ties remote first, local last (stable sort of
        // remote-then-local input).
        sigs.sort_by_key(SignatureChain::end_time);
        c.sig_chains = sigs;
        c.match_chains();
        c
    }

    /// `set_matched_chain_pair`.
    fn match_chains(&mut self) {
        let Some(latest_i) = self.chains.len().checked_sub(1) else {
            return;
        };
        for i in (0..self.sig_chains.len()).rev() {
            let sig_end = self.sig_chains[i].end_time();
            let latest = &self.chains[latest_i];
            if sig_end == latest.end_time() {
            } else if latest.incs.len() + 1 >= 2 && {
                let sets: Vec<&BackupSet> = latest.all_sets().collect();
                sig_end == sets[sets.len() - 2].set_time()
            } {
                // "discarding last backup set, because of missing signature file"
                let dropped = self.chains[latest_i].incs.pop().expect("has incs");
                self.incomplete_sets.push(dropped);
                self.dropped_unsigned_set = true;
            } else {
                continue;
            }
            self.matched = Some((i, latest_i));
            break;
        }
    }

    /// Chains other than the matched one (duplicity's "secondary" chains).
    pub fn secondary_chains(&self) -> Vec<&BackupChain> {
        self.chains
            .iter()
            .enumerate()
            .filter(|(i, _)| self.matched.is_none_or(|m| m.1 != *i))
            .map(|(_, c)| c)
            .collect()
    }

    pub fn matched_chain(&self) -> Option<&BackupChain> {
        self.matched.map(|(_, b)| &self.chains[b])
    }

    pub fn matched_sig_chain(&self) -> Option<&SignatureChain> {
        self.matched.map(|(s, _)| &self.sig_chains[s])
    }

    /// The chain a restore at `t` uses (`get_backup_chain_at_time`): the one
    /// covering `t`, else the latest that ended before it, else the first.
    pub fn chain_at(&self, t: Seconds) -> Result<&BackupChain, CollectionError> {
        let complete: Vec<&BackupChain> = self.chains.iter().collect();
        if complete.is_empty() {
            return Err(CollectionError::NoChains);
        }
        let covering: Vec<&&BackupChain> = complete
            .iter()
            .filter(|c| c.start_time() <= t && t <= c.end_time())
            .collect();
        match covering.len() {
            0 => {}
            1 => return Ok(covering[0]),
            _ => return Err(CollectionError::Ambiguous),
        }
        Ok(complete
            .iter()
            .rev()
            .find(|c| c.end_time() < t)
            .copied()
            .unwrap_or(complete[0]))
    }

    /// The signature chain for the state at `t` (`get_signature_chain_at_time`).
    pub fn sig_chain_at(&self, t: Seconds) -> Option<&SignatureChain> {
        let covering: Vec<&SignatureChain> = self
            .sig_chains
            .iter()
            .filter(|c| c.start_time() <= t && t <= c.end_time())
            .collect();
        if let Some(c) = covering.last() {
            return Some(c);
        }
        self.sig_chains
            .iter()
            .rev()
            .find(|c| c.end_time() < t)
            .or_else(|| self.sig_chains.first())
    }

    /// The newest time any backup covers.
    pub fn latest_time(&self) -> Option<Seconds> {
        self.chains.iter().map(BackupChain::end_time).max()
    }

    /// Chains entirely older than `t`, never the matched one
    /// (`get_chains_older_than`).
    pub fn chains_older_than(&self, t: Seconds) -> Vec<usize> {
        let matched_end = self.matched_chain().map(BackupChain::end_time);
        (0..self.chains.len())
            .filter(|&i| {
                let c = &self.chains[i];
                c.end_time() < t && matched_end.is_none_or(|m| c.end_time() != m)
            })
            .collect()
    }

    /// Signature chains older than `t`, never the matched one.
    pub fn sig_chains_older_than(&self, t: Seconds) -> Vec<usize> {
        let matched_end = self.matched_sig_chain().map(SignatureChain::end_time);
        (0..self.sig_chains.len())
            .filter(|&i| {
                let c = &self.sig_chains[i];
                c.end_time() < t && matched_end.is_none_or(|m| c.end_time() != m)
            })
            .collect()
    }

    /// The time of the n-th newest full backup (1 = newest).
    pub fn nth_last_full_time(&self, n: usize) -> Option<Seconds> {
        if n == 0 {
            return None;
        }
        let mut fulls: Vec<Seconds> = self.chains.iter().map(BackupChain::start_time).collect();
        fulls.sort_unstable_by(|a, b| b.cmp(a));
        fulls.get(n - 1).copied()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::archive::names::{Encoding, default_naming};

    pub(crate) const T0: Seconds = 1_795_000_000;

    /// The file names of a complete full set with `vols` volumes.
    pub(crate) fn full(t: Seconds, vols: u64) -> Vec<String> {
        let n = default_naming();
        let mut v: Vec<String> = (1..=vols)
            .map(|i| n.full_volume(t, i, Encoding::Gpg))
            .collect();
        v.push(n.manifest(None, t, Encoding::Gpg, false));
        v.push(n.signatures(None, t, Encoding::Gpg, false));
        v
    }

    /// The file names of a complete one-volume incremental set.
    pub(crate) fn inc(p: Seconds, t: Seconds) -> Vec<String> {
        let n = default_naming();
        vec![
            n.inc_volume(p, t, 1, Encoding::Gpg),
            n.manifest(Some(p), t, Encoding::Gpg, false),
            n.signatures(Some(p), t, Encoding::Gpg, false),
        ]
    }

    #[test]
    fn chains_and_matching() {
        let mut names = full(T0, 2);
        names.extend(inc(T0, T0 + 10));
        names.extend(inc(T0 + 10, T0 + 20));
        names.extend(full(T0 + 30, 1));
        names.extend(inc(T0 + 30, T0 + 40));
        names.push("unrelated.txt".into());
        let c = Collection::build(&names, &[], default_naming());
        assert_eq!(c.chains.len(), 2);
        assert_eq!(c.chains[0].incs.len(), 2);
        assert_eq!(c.chains[0].end_time(), T0 + 20);
        assert_eq!(c.matched, Some((1, 1)));
        assert!(c.orphaned_sets.is_empty() && c.incomplete_sets.is_empty());
        assert_eq!(c.chain_at(T0 + 15).unwrap().start_time(), T0);
        assert_eq!(
            c.chain_at(T0 + 25).unwrap().start_time(),
            T0,
            "latest ending before"
        );
        assert_eq!(
            c.chain_at(T0 - 100).unwrap().start_time(),
            T0,
            "first chain"
        );
        assert_eq!(c.chain_at(T0 + 1000).unwrap().start_time(), T0 + 30);
        assert_eq!(c.chain_at(T0 + 15).unwrap().sets_at(T0 + 15).len(), 2);
        assert_eq!(c.chains_older_than(T0 + 25), vec![0]);
        assert_eq!(c.nth_last_full_time(2), Some(T0));
    }

    #[test]
    fn orphans_incomplete_and_missing_signatures() {
        let n = default_naming();
        let mut names = full(T0, 1);
        names.extend(inc(T0, T0 + 10));
        // An incremental whose signatures never arrived.
        names.push(n.inc_volume(T0 + 10, T0 + 20, 1, Encoding::Gpg));
        names.push(n.manifest(Some(T0 + 10), T0 + 20, Encoding::Gpg, false));
        // Orphan: extends nothing.
        names.extend(inc(T0 + 500, T0 + 600));
        // Incomplete: volumes without a manifest.
        names.push(n.full_volume(T0 + 700, 1, Encoding::Gpg));
        let c = Collection::build(&names, &[], default_naming());
        assert_eq!(c.orphaned_sets.len(), 1);
        assert!(c.dropped_unsigned_set);
        assert_eq!(c.matched_chain().unwrap().incs.len(), 1);
        assert_eq!(c.incomplete_sets.len(), 2);
        assert_eq!(c.remote_orphaned_sigs.len(), 1);
    }

    #[test]
    fn local_partial_manifest_makes_a_partial_set() {
        let n = default_naming();
        let remote = vec![
            n.full_volume(T0, 1, Encoding::Gzip),
            n.full_volume(T0, 2, Encoding::Gzip),
        ];
        let local = vec![
            n.manifest(None, T0, Encoding::Plain, true),
            n.signatures(None, T0, Encoding::Plain, true),
        ];
        let c = Collection::build(&remote, &local, default_naming());
        assert_eq!(c.chains.len(), 1);
        assert!(c.chains[0].full.partial);
        assert_eq!(c.chains[0].full.volumes.len(), 2);
        assert_eq!(c.chains[0].full.remote_files(default_naming()).len(), 2);
    }

    #[test]
    fn a_manifest_at_the_target_outranks_a_local_part() {
        let n = default_naming();
        let mut remote = full(T0, 1);
        remote.extend(inc(T0, T0 + 10));
        // The incremental's run was killed after its manifest was stored,
        // before it renamed its local `.part` files.
        let local = vec![
            n.manifest(Some(T0), T0 + 10, Encoding::Plain, true),
            n.signatures(Some(T0), T0 + 10, Encoding::Plain, true),
        ];
        let c = Collection::build(&remote, &local, default_naming());
        let last = c.chains[0].last();
        assert_eq!(last.set_time(), T0 + 10);
        assert!(!last.partial, "the target says the set is complete");
        assert_eq!(
            last.manifest.as_deref(),
            Some(n.manifest(Some(T0), T0 + 10, Encoding::Gpg, false).as_str())
        );
    }

    #[test]
    fn later_inc_with_same_start_replaces() {
        let mut names = full(T0, 1);
        names.extend(inc(T0, T0 + 10));
        names.extend(inc(T0, T0 + 20));
        let c = Collection::build(&names, &[], default_naming());
        assert_eq!(c.chains[0].incs.len(), 1);
        assert_eq!(c.chains[0].end_time(), T0 + 20);
    }
}
