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
            .find(|j| j.plan == plan && j.kind == kind)
        {
            return (j.id, true);
        }
        self.next_id += 1;
        self.waiting.push_back(Job {
            id: self.next_id,
            plan: plan.to_string(),
            kind,
            origin,
            slot,
            requested: now,
        });
        (self.next_id, false)
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
