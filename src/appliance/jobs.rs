//! Jobs: what the daemon runs, one at a time per target, in the order asked.
//! A second request for the same job while it waits is merged into the
//! first. Progress lives in memory only (the SD card sees outcomes, never a
//! write per second); a running job can be cancelled.

use crate::progress::{Cancel, Progress};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A backup, then the plan's retention.
    Backup,
    /// The plan's retention alone.
    Retention,
    /// duplicity's `cleanup --force`: files of failed sets removed.
    Cleanup,
    /// Every file of the newest chain restored in memory and compared with
    /// the source (duplicity's `verify --compare-data`).
    Verify,
    /// The newest set, restored into a new directory under `restore_dir`.
    Restore,
    /// The catalog built anew from the target's signatures (a new card
    /// for an old target, or a catalog that disagrees with it).
    Rebuild,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Retention => "retention",
            Kind::Cleanup => "cleanup",
            Kind::Verify => "verify",
            Kind::Restore => "restore",
            Kind::Rebuild => "rebuild",
        }
    }
}

/// Who asked for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Schedule,
    /// Resuming a run a power cut or kill interrupted.
    Resume,
    Button,
    Api,
}

/// A job waiting or running.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: u64,
    pub plan: String,
    pub kind: Kind,
    pub origin: Origin,
    /// The schedule slot a scheduled job stands for.
    pub slot: Option<i64>,
    pub requested: i64,
    /// What a restore restores, and where (None: the newest set, whole,
    /// into a new directory named after the plan and the time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// A restore's point in time, path and destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreSpec {
    /// The backup time (None: the newest set).
    pub time: Option<i64>,
    /// A path inside the backup, as the catalog shows it (None: everything).
    pub path: Option<String>,
    /// The new directory's name under `restore_dir` (None: `<plan>-<time>`).
    pub into: Option<String>,
    /// Put `path` back where it was instead: the absolute path it replaces,
    /// spelled out as the confirmation (the version there is kept beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
}

impl RestoreSpec {
    /// Checks what a client sent: `into` is one new name, `path` a relative
    /// path inside the backup; neither can reach outside.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(into) = &self.into
            && (into.is_empty()
                || into == "."
                || into == ".."
                || into.contains('/')
                || into.contains('\0')
                || into.len() > 200)
        {
            return Err(format!(
                "`into` must be one new directory name (no `/`, not `.` or `..`), not {into:?}"
            ));
        }
        if let Some(path) = &self.path
            && (path.starts_with('/')
                || path.contains('\0')
                || path.split('/').any(|c| c == ".." || c == ".")
                || crate::archive::index::Index::parse(path.as_bytes()).is_err())
        {
            return Err(format!(
                "`path` must be a path inside the backup such as \"docs/2024\", not {path:?}"
            ));
        }
        if let Some(replace) = &self.replace {
            if self.into.is_some() {
                return Err(
                    "give `into` (a new folder) or `replace` (the original location), not both"
                        .into(),
                );
            }
            if self.path.as_deref().unwrap_or("").is_empty() {
                return Err("`replace` needs a `path`: the whole source is never replaced; restore it into a new folder".into());
            }
            if !replace.starts_with('/') {
                return Err(format!(
                    "`replace` must be the absolute path being replaced, not {replace:?}"
                ));
            }
        }
        Ok(())
    }

    /// For a restore over the original location: that `replace` names the
    /// path it replaces in `source`, so the client knows what it confirms.
    pub fn check_replace(&self, source: &std::path::Path) -> Result<(), String> {
        let (Some(replace), Some(path)) = (&self.replace, &self.path) else {
            return Ok(());
        };
        let original = source.join(path);
        if std::path::Path::new(replace) != original {
            return Err(format!(
                "`replace` must repeat the path being replaced, {}, as the confirmation; it says {replace:?}",
                original.display()
            ));
        }
        Ok(())
    }
}

/// Live progress, shared between the engine (which advances it) and
/// whoever asks (the API).
#[derive(Debug, Default)]
pub struct Live {
    pub total: AtomicU64,
    pub done: AtomicU64,
    pub volumes: AtomicU64,
    pub stored: AtomicU64,
    pub started_ms: AtomicU64,
}

impl Progress for Live {
    fn total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn volume(&self, _number: u64, stored: u64) {
        self.volumes.fetch_add(1, Ordering::Relaxed);
        self.stored.fetch_add(stored, Ordering::Relaxed);
    }
    fn wants_total(&self) -> bool {
        true
    }
}

/// A snapshot of [`Live`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgressView {
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub volumes: u64,
    pub bytes_stored: u64,
}

impl Live {
    pub fn view(&self) -> ProgressView {
        ProgressView {
            bytes_total: self.total.load(Ordering::Relaxed),
            bytes_done: self.done.load(Ordering::Relaxed),
            volumes: self.volumes.load(Ordering::Relaxed),
            bytes_stored: self.stored.load(Ordering::Relaxed),
        }
    }
}

/// The job running now.
pub struct Running {
    pub job: Job,
    pub cancel: Cancel,
    pub live: Arc<Live>,
    pub started: i64,
}

/// How a job ended.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub job: Job,
    pub started: i64,
    pub ended: i64,
    /// `ok`, `failed` or `cancelled`.
    pub outcome: &'static str,
    pub message: String,
}

/// The queue: waiting jobs, the running one, the last finished ones.
#[derive(Default)]
pub struct Queue {
    next_id: u64,
    pub waiting: VecDeque<Job>,
    pub running: Option<Running>,
    pub finished: VecDeque<Finished>,
}

/// How many finished jobs are kept in memory.
const KEEP_FINISHED: usize = 50;

impl Queue {
    /// Adds a job unless the same (plan, kind) already waits; returns the
    /// id of the job that will do it and whether it was merged.
    pub fn push(
        &mut self,
        plan: &str,
        kind: Kind,
        origin: Origin,
        slot: Option<i64>,
        now: i64,
    ) -> (u64, bool) {
        if let Some(j) = self
            .waiting
            .iter()
            .find(|j| j.plan == plan && j.kind == kind && j.restore.is_none())
        {
            return (j.id, true);
        }
        (self.add(plan, kind, origin, slot, now, None), false)
    }

    /// Adds a restore of `spec`: never merged (each asks for its own).
    pub fn push_restore(&mut self, plan: &str, spec: RestoreSpec, origin: Origin, now: i64) -> u64 {
        self.add(plan, Kind::Restore, origin, None, now, Some(spec))
    }

    fn add(
        &mut self,
        plan: &str,
        kind: Kind,
        origin: Origin,
        slot: Option<i64>,
        now: i64,
        restore: Option<RestoreSpec>,
    ) -> u64 {
        self.next_id += 1;
        self.waiting.push_back(Job {
            id: self.next_id,
            plan: plan.to_string(),
            kind,
            origin,
            slot,
            requested: now,
            restore,
        });
        self.next_id
    }

    /// Cancels job `id`: a waiting one is dropped, a running one asked to
    /// stop. False if there is no such job.
    pub fn cancel(&mut self, id: u64) -> bool {
        if let Some(i) = self.waiting.iter().position(|j| j.id == id) {
            self.waiting.remove(i);
            return true;
        }
        match &self.running {
            Some(r) if r.job.id == id => {
                r.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Records a finished job, forgetting the oldest beyond the limit.
    pub fn finish(&mut self, f: Finished) {
        if self.finished.len() >= KEEP_FINISHED {
            self.finished.pop_front();
        }
        self.finished.push_back(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_merge_and_cancel_drops_or_stops() {
        let mut q = Queue::default();
        let (a, merged) = q.push("main", Kind::Backup, Origin::Api, None, 1);
        assert!(!merged);
        assert_eq!(
            q.push("main", Kind::Backup, Origin::Button, None, 2),
            (a, true)
        );
        let (b, _) = q.push("main", Kind::Verify, Origin::Api, None, 3);
        assert_ne!(a, b);
        assert_eq!(q.waiting.len(), 2);
        assert!(q.cancel(b));
        assert!(!q.cancel(b));
        let job = q.waiting.pop_front().unwrap();
        let cancel = Cancel::new();
        q.running = Some(Running {
            job,
            cancel: cancel.clone(),
            live: Arc::default(),
            started: 4,
        });
        assert!(q.cancel(a));
        assert!(cancel.is_cancelled());
        // Once running, a new request queues behind it.
        assert!(!q.push("main", Kind::Backup, Origin::Api, None, 5).1);
    }

    #[test]
    fn restores_are_never_merged_and_their_names_stay_inside() {
        let mut q = Queue::default();
        let spec = RestoreSpec {
            into: Some("a".into()),
            ..RestoreSpec::default()
        };
        let a = q.push_restore("main", spec.clone(), Origin::Api, 1);
        let b = q.push_restore("main", spec, Origin::Api, 2);
        assert_ne!(a, b);
        assert!(!q.push("main", Kind::Restore, Origin::Button, None, 3).1);
        for bad in ["..", ".", "a/b", ""] {
            let s = RestoreSpec {
                into: Some(bad.into()),
                ..RestoreSpec::default()
            };
            assert!(s.validate().is_err(), "{bad}");
        }
        for bad in ["/etc", "a/../../b", "./a", "docs/", "a//b"] {
            let s = RestoreSpec {
                path: Some(bad.into()),
                ..RestoreSpec::default()
            };
            assert!(s.validate().is_err(), "{bad}");
        }
        let ok = RestoreSpec {
            time: Some(5),
            path: Some("docs/2024".into()),
            into: Some("docs-back".into()),
            replace: None,
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn a_restore_over_the_original_spells_out_what_it_replaces() {
        let spec = |path: Option<&str>, into: Option<&str>, replace: &str| RestoreSpec {
            time: None,
            path: path.map(Into::into),
            into: into.map(Into::into),
            replace: Some(replace.into()),
        };
        let src = std::path::Path::new("/data/share");
        let ok = spec(Some("docs/2024"), None, "/data/share/docs/2024");
        assert!(ok.validate().is_ok());
        assert!(ok.check_replace(src).is_ok());
        assert!(
            ok.check_replace(std::path::Path::new("/elsewhere"))
                .is_err()
        );
        assert!(spec(None, None, "/data/share").validate().is_err());
        assert!(spec(Some(""), None, "/data/share").validate().is_err());
        assert!(
            spec(Some("docs"), Some("x"), "/data/share/docs")
                .validate()
                .is_err()
        );
        assert!(spec(Some("docs"), None, "docs").validate().is_err());
        let wrong = spec(Some("docs"), None, "/data/share/other");
        assert!(wrong.validate().is_ok() && wrong.check_replace(src).is_err());
    }

    #[test]
    fn live_progress_adds_up() {
        let l = Live::default();
        l.total(100);
        l.advance(30);
        l.advance(20);
        l.volume(1, 7);
        let v = l.view();
        assert_eq!(
            (v.bytes_total, v.bytes_done, v.volumes, v.bytes_stored),
            (100, 50, 1, 7)
        );
    }
}
