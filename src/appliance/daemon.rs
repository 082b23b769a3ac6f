//! The daemon: four threads around one shared state.
//!
//! - the **scheduler** queues each plan's backup when its schedule says so
//!   (a missed run once, a clock that went back waits);
//! - the **worker** runs queued jobs one at a time ([`super::runner`]) and
//!   records each run in the catalog (begun before, ended after, so a kill
//!   leaves an `interrupted` run that the next start resumes);
//! - the **LED thread** shows the state ([`super::leds`]), waking only to
//!   blink or when the state changes;
//! - the **button thread** blocks on the button and turns edges into
//!   gestures ([`super::button`]): back up now, or arm and confirm a restore.
//!
//! The HTTP service ([`crate::serve`]) reads and drives the same state
//! through [`Daemon`]'s methods.

use super::board::{Button, Leds, Parts, SimBoard};
use super::button::{Gesture, Gestures};
use super::clock::Clock;
use super::config::{Config, ConfigError};
use super::jobs::{Finished, Kind, Live, Origin, ProgressView, Queue, Running};
use super::leds::{Activity, Health, pattern};
use super::notify::{Notice, Notifier, Transition, transition};
use super::runner;
use super::schedule::Due;
use crate::catalog::{Catalog, RunEnd};
use crate::time::Seconds;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A clock before this (2020-01-01) is one no network time has set yet (a
/// Pi has no real-time clock): backups wait, so that no set is stamped
/// 1970 and then followed by a second full when the clock jumps.
pub const PLAUSIBLE_SINCE: Seconds = 1_577_836_800;

/// What the daemon knows of one plan, kept in memory and loaded from the
/// catalog at start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanState {
    pub id: String,
    pub target: String,
    pub schedule: String,
    /// The schedule in words.
    pub describe: String,
    pub next_run: Option<Seconds>,
    /// When the last backup started (the slot it stands for, for the
    /// schedule).
    pub last_run: Option<Seconds>,
    pub last_ok: Option<bool>,
    pub last_success: Option<Seconds>,
    pub last_error: Option<String>,
    /// A problem found by a job that ran (verify damage, catalog trouble).
    pub problem: Option<String>,
    pub last_bytes: Option<u64>,
    pub last_volumes: Option<u64>,
    pub last_duration: Option<i64>,
    /// The share of volumes the rotating check read within its period.
    pub verify_coverage: Option<f64>,
    /// The further targets the plan's sets are copied to.
    pub replicas: Vec<ReplicaState>,
    #[serde(skip)]
    queued_slot: Option<Seconds>,
    /// When the last "no backup for N days" notice went out.
    #[serde(skip)]
    stale_notified: Option<Seconds>,
    /// When the daemon first knew this plan: a plan that never ran runs
    /// at its first slot after this.
    #[serde(skip)]
    since: Seconds,
}

/// A further target of a plan: how the last copy to it went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicaState {
    pub target: String,
    pub last_ok: Option<bool>,
    pub last_success: Option<Seconds>,
    pub last_error: Option<String>,
    pub last_message: Option<String>,
}

/// The shared state.
pub struct State {
    pub config: Result<Config, ConfigError>,
    pub plans: BTreeMap<String, PlanState>,
    pub queue: Queue,
    /// A long press armed a restore; the next press confirms it.
    pub armed: bool,
    /// The dashboard waits for a press to prove presence (its claim).
    pub claim: Option<ClaimWait>,
    pub stopping: bool,
}

/// A claim of the dashboard waiting for the button.
#[derive(Debug, Clone, Copy)]
pub struct ClaimWait {
    pub until: Instant,
    pub pressed: bool,
}

impl ClaimWait {
    /// Waiting for its press now (not pressed, not expired).
    fn waiting(&self) -> bool {
        !self.pressed && Instant::now() < self.until
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    clock: Clock,
    config_file: PathBuf,
    board_kind: &'static str,
    board_error: Option<String>,
    sim: Option<SimBoard>,
    started: Instant,
    runtime: Option<tokio::runtime::Handle>,
    notifier: Mutex<Option<Arc<Notifier>>>,
    /// Whether plans were loaded before (the first load closes the runs
    /// a kill left running).
    loaded_once: std::sync::atomic::AtomicBool,
    /// The configuration file as last loaded (mtime, size), to notice edits.
    loaded: Mutex<Option<(std::time::SystemTime, u64)>>,
}

/// The running daemon; dropping it does not stop it, [`Daemon::stop`] does.
#[derive(Clone)]
pub struct Daemon {
    shared: Arc<Shared>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// How the daemon is started.
pub struct Options {
    pub config: PathBuf,
    pub clock: Clock,
    pub board: Parts,
    /// The simulated board's handle, for the API (None on a Pi).
    pub sim: Option<SimBoard>,
    /// Why the Pi's board was asked for but not used.
    pub board_error: Option<String>,
    /// Where notifications are sent from (the HTTP service's runtime).
    pub runtime: Option<tokio::runtime::Handle>,
}

/// Writes a log line for journald (`<N>` level prefixes when stderr is the
/// journal) or a terminal.
pub fn log(level: u8, msg: &str) {
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        eprintln!("<{level}>{msg}");
    } else {
        let name = [
            "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
        ];
        eprintln!("cairn serve: {}: {msg}", name[usize::from(level.min(7))]);
    }
}

impl Daemon {
    /// Loads the configuration and the plans' last runs, and starts the
    /// threads. A bad configuration is not an error: it is the state.
    pub fn start(opts: Options) -> Daemon {
        let Parts { kind, leds, button } = opts.board;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                config: Err(ConfigError {
                    file: opts.config.display().to_string(),
                    line: None,
                    message: "not loaded yet".into(),
                }),
                plans: BTreeMap::new(),
                queue: Queue::default(),
                armed: false,
                claim: None,
                stopping: false,
            }),
            changed: Condvar::new(),
            clock: opts.clock,
            config_file: opts.config,
            board_kind: kind,
            board_error: opts.board_error,
            runtime: opts.runtime,
            notifier: Mutex::new(None),
            sim: opts.sim,
            started: Instant::now(),
            loaded: Mutex::new(None),
            loaded_once: std::sync::atomic::AtomicBool::new(false),
        });
        let d = Daemon {
            shared,
            workers: Arc::default(),
        };
        d.reload();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .expect("starting a daemon thread")
        };
        let (a, b, c) = (d.clone(), d.clone(), d.clone());
        let mut w = d.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.push(spawn("scheduler", Box::new(move || a.schedule_loop())));
        w.push(spawn("worker", Box::new(move || b.work_loop())));
        w.push(spawn("leds", Box::new(move || c.led_loop(leds))));
        drop(w);
        let e = d.clone();
        // The button thread blocks in the kernel; it is not joined at stop.
        spawn("button", Box::new(move || e.button_loop(button)));
        d
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.shared.changed.notify_all();
    }

    pub fn now(&self) -> Seconds {
        self.shared.clock.now()
    }

    /// Reads the configuration again; plans that are gone are forgotten,
    /// new ones loaded from the catalog. Queues the resumption of a backup
    /// a kill or power cut interrupted.
    pub fn reload(&self) {
        let at_start = !self
            .shared
            .loaded_once
            .swap(true, std::sync::atomic::Ordering::SeqCst);
        *self.shared.loaded.lock().unwrap_or_else(|e| e.into_inner()) = self.file_stamp();
        let config = Config::load(&self.shared.config_file);
        match &config {
            Err(e) if !self.configured() => log(5, &format!("not configured yet: {e}")),
            Err(e) => log(3, &format!("configuration not used: {e}")),
            Ok(_) => {}
        }
        let mut plans = BTreeMap::new();
        let mut resume = Vec::new();
        if let Ok(c) = &config {
            for p in &c.plans {
                let (ps, interrupted) = load_plan(c, p, at_start);
                if interrupted {
                    resume.push(p.id.clone());
                }
                plans.insert(p.id.clone(), ps);
            }
        }
        let now = self.now();
        let mut s = self.lock();
        for (id, ps) in plans.iter_mut() {
            ps.since = now;
            if let Some(old) = s.plans.get(id) {
                *ps = carry_over(std::mem::take(ps), old);
            }
        }
        *self
            .shared
            .notifier
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            config.as_ref().ok().and_then(|c| notifier(&c.notify));
        s.config = config;
        s.plans = plans;
        for id in resume {
            log(
                5,
                &format!("plan {id}: the last backup was interrupted; resuming it"),
            );
            s.queue.push(&id, Kind::Backup, Origin::Resume, None, now);
        }
        drop(s);
        self.changed();
    }

    /// The configuration file's mtime and size, None if it is not a file.
    fn file_stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let m = std::fs::metadata(&self.shared.config_file)
            .ok()
            .filter(|m| m.is_file())?;
        Some((m.modified().ok()?, m.len()))
    }

    /// Reloads if the configuration file changed since it was loaded.
    pub fn refresh(&self) {
        let now = self.file_stamp();
        let loaded = *self.shared.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if now != loaded {
            self.reload();
        }
    }

    /// Whether the configuration file says what to back up (more than the
    /// appliance's own settings). Read each time: a small file, and setup
    /// must see a file written a moment ago.
    pub fn configured(&self) -> bool {
        std::fs::read_to_string(&self.shared.config_file)
            .is_ok_and(|text| super::config::describes_backups(&text))
    }

    /// The state, locked, if it takes a job for `plan`.
    fn accepting(&self, plan: &str) -> Result<MutexGuard<'_, State>, String> {
        let s = self.lock();
        if s.stopping {
            return Err("the daemon is stopping".into());
        }
        if !s.plans.contains_key(plan) {
            return Err(format!("no plan called `{plan}`"));
        }
        Ok(s)
    }

    /// Queues a job; returns its id and whether it merged with one waiting.
    pub fn submit(&self, plan: &str, kind: Kind, origin: Origin) -> Result<(u64, bool), String> {
        let now = self.now();
        let mut s = self.accepting(plan)?;
        if kind == Kind::Backup && now < PLAUSIBLE_SINCE {
            return Err(format!(
                "the clock says {}: network time has not set it yet; a backup now would be \
                 stamped with that date, so it waits for the clock",
                crate::time::to_pretty(now)
            ));
        }
        let r = s.queue.push(plan, kind, origin, None, now);
        drop(s);
        self.changed();
        Ok(r)
    }

    /// Queues a restore of `spec` (checked first); returns its id.
    pub fn submit_restore(
        &self,
        plan: &str,
        spec: super::jobs::RestoreSpec,
        origin: Origin,
    ) -> Result<u64, String> {
        spec.validate()?;
        if spec.replace.is_some() {
            let config = self.config().map_err(|e| e.to_string())?;
            let p = config
                .plan(plan)
                .ok_or_else(|| format!("no plan called `{plan}`"))?;
            spec.check_replace(p.source())?;
        }
        let now = self.now();
        let mut s = self.accepting(plan)?;
        let id = s.queue.push_restore(plan, spec, origin, now);
        drop(s);
        self.changed();
        Ok(id)
    }

    /// The configuration as last loaded, or why it is not used.
    pub fn config(&self) -> Result<Config, ConfigError> {
        self.refresh();
        self.lock().config.clone()
    }

    /// The configuration file's path.
    pub fn config_file(&self) -> &std::path::Path {
        &self.shared.config_file
    }

    /// Waits up to `ttl` for a button press that claims the dashboard; the
    /// LEDs alternate meanwhile, and that press backs nothing up.
    pub fn arm_claim(&self, ttl: Duration) {
        self.lock().claim = Some(ClaimWait {
            until: Instant::now() + ttl,
            pressed: false,
        });
        self.changed();
    }

    /// Whether the armed claim's press came (None: none armed, or expired
    /// without a press).
    pub fn claim_pressed(&self) -> Option<bool> {
        let s = self.lock();
        let c = s.claim?;
        (c.pressed || c.waiting()).then_some(c.pressed)
    }

    /// Ends a claim's wait.
    pub fn disarm_claim(&self) {
        self.lock().claim = None;
        self.changed();
    }

    /// Cancels a waiting or running job.
    pub fn cancel(&self, id: u64) -> bool {
        let r = self.lock().queue.cancel(id);
        self.changed();
        r
    }

    /// The first plan (what the button and a job request without a plan
    /// act on).
    pub fn first_plan(&self) -> Option<String> {
        self.lock().plans.keys().next().cloned()
    }

    /// Stops: no new jobs, the running one cancelled (a backup stops at its
    /// next file, leaving a set the next start resumes), threads joined
    /// within `grace`.
    pub fn stop(&self, grace: Duration) {
        let mut s = self.lock();
        s.stopping = true;
        if let Some(r) = &s.queue.running {
            r.cancel.cancel();
        }
        drop(s);
        self.changed();
        let deadline = Instant::now() + grace;
        let handles: Vec<_> = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for h in handles {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }

    /// Whether a stop was asked for (long-lived answers end then).
    pub fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Sets a simulated clock; false with the system clock.
    pub fn set_clock(&self, t: Seconds) -> bool {
        let ok = self.shared.clock.set(t);
        self.changed();
        ok
    }

    /// The simulated board, if that is the board.
    pub fn sim_board(&self) -> Option<&SimBoard> {
        self.shared.sim.as_ref()
    }

    pub fn board_kind(&self) -> &'static str {
        self.shared.board_kind
    }
}

/// A plan's state after a reload: what the configuration says from
/// `fresh`, what the daemon learnt while running from `old` (a further
/// target's status is kept while it is still configured).
fn carry_over(fresh: PlanState, old: &PlanState) -> PlanState {
    let replicas = fresh
        .replicas
        .into_iter()
        .map(|r| {
            old.replicas
                .iter()
                .find(|o| o.target == r.target)
                .cloned()
                .unwrap_or(r)
        })
        .collect();
    PlanState {
        id: fresh.id,
        target: fresh.target,
        schedule: fresh.schedule,
        describe: fresh.describe,
        replicas,
        ..old.clone()
    }
}

/// A plan's state from the catalog; true if its last backup was
/// interrupted. At the daemon's start, every run of the plan still marked
/// running is one a kill or power cut ended (the pid it names may be a
/// new process's after a reboot).
fn load_plan(c: &Config, p: &super::config::Plan, at_start: bool) -> (PlanState, bool) {
    let mut ps = PlanState {
        id: p.id.clone(),
        target: crate::catalog::public_url(p.target()),
        schedule: p.schedule.expr().to_string(),
        describe: p.schedule.describe(),
        replicas: p
            .replicas
            .iter()
            .map(|u| ReplicaState {
                target: crate::catalog::public_url(u),
                ..ReplicaState::default()
            })
            .collect(),
        ..PlanState::default()
    };
    let args = runner::target_args(c, p);
    let Some(path) = args.catalog.clone() else {
        return (ps, false);
    };
    let found = Catalog::open(&path).and_then(|cat| {
        if at_start {
            cat.interrupt_plan_runs(&p.id)?;
        }
        load_replicas(&cat, &p.id, &mut ps.replicas);
        cat.last_plan_run(&p.id, Kind::Backup.name())
    });
    match found {
        Ok((last, success)) => {
            ps.last_success = success;
            let interrupted = last.as_ref().is_some_and(|r| r.outcome == "interrupted");
            if let Some(r) = last {
                ps.last_run = Some(r.started);
                ps.last_ok =
                    matches!(r.outcome.as_str(), "ok" | "failed").then(|| r.outcome == "ok");
                ps.last_error = r.error;
            }
            (ps, interrupted)
        }
        Err(e) => {
            ps.problem = Some(format!("the catalog cannot be read: {e}"));
            (ps, false)
        }
    }
}

/// The further targets' last copies, from their `replicate` runs.
fn load_replicas(cat: &Catalog, plan: &str, replicas: &mut [ReplicaState]) {
    for r in replicas {
        if let Ok((last, success)) = cat.last_plan_run_to(plan, "replicate", &r.target) {
            r.last_success = success;
            r.last_ok = last.as_ref().map(|l| l.outcome == "ok");
            r.last_error = last.and_then(|l| l.error);
        }
    }
}

/// The scheduler: queues due backups, sleeps until the next slot (at most
/// a minute with the system clock, so a clock set by NTP is noticed).
impl Daemon {
    fn schedule_loop(&self) {
        let mut s = self.lock();
        while !s.stopping {
            let now = self.now();
            let queued = s.queue.waiting.len();
            let next = queue_due(&mut s, now);
            self.notify_stale(&mut s, now);
            if s.queue.waiting.len() != queued {
                self.changed();
            }
            let wait = if self.shared.clock.is_simulated() {
                Duration::from_secs(3600)
            } else {
                Duration::from_secs(next.saturating_sub(now).clamp(1, 60) as u64)
            };
            s = self
                .shared
                .changed
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Queues each plan's backup if due; returns the next slot of any plan.
fn queue_due(s: &mut State, now: Seconds) -> Seconds {
    let Ok(config) = &s.config else {
        return Seconds::MAX;
    };
    if now < PLAUSIBLE_SINCE {
        return Seconds::MAX;
    }
    let mut next = Seconds::MAX;
    let mut due = Vec::new();
    for p in &config.plans {
        let Some(ps) = s.plans.get_mut(&p.id) else {
            continue;
        };
        match p.schedule.due(ps.last_run.or(Some(ps.since)), now) {
            Due::Now { slot } if ps.queued_slot != Some(slot) => {
                ps.queued_slot = Some(slot);
                due.push((p.id.clone(), slot));
            }
            Due::Now { .. } => {}
            Due::At(t) => {
                ps.next_run = Some(t);
                next = next.min(t);
            }
        }
    }
    for (id, slot) in due {
        s.queue
            .push(&id, Kind::Backup, Origin::Schedule, Some(slot), now);
    }
    next
}

/// The worker: one job at a time.
impl Daemon {
    fn work_loop(&self) {
        // Before any job, off the start's path (removing a large partial
        // copy takes a while): put-backs a power cut interrupted, whether or
        // not the configuration is usable (the notes are beside it).
        for done in runner::recover_put_backs(&self.shared.config_file) {
            log(4, &done);
        }
        loop {
            let Some((job, config, running)) = self.next_job() else {
                return;
            };
            let started = self.now();
            let result = self.run_job(&job, &config, &running, started);
            self.finish_job(job, started, result, &running);
            give_back_memory();
        }
    }

    /// Waits for a job and marks it running; None when stopping.
    fn next_job(&self) -> Option<(super::jobs::Job, Config, Arc<Live>)> {
        let mut s = self.lock();
        loop {
            if s.stopping {
                return None;
            }
            if let (Ok(c), Some(job)) = (&s.config, s.queue.waiting.front()) {
                if c.plan(&job.plan).is_none() {
                    s.queue.waiting.pop_front();
                    continue;
                }
                let config = c.clone();
                let job = s.queue.waiting.pop_front().expect("front");
                let live = Arc::new(Live::default());
                s.queue.running = Some(Running {
                    job: job.clone(),
                    cancel: crate::progress::Cancel::new(),
                    live: live.clone(),
                    started: self.now(),
                });
                drop(s);
                self.changed();
                return Some((job, config, live));
            }
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn run_job(
        &self,
        job: &super::jobs::Job,
        config: &Config,
        live: &Arc<Live>,
        started: Seconds,
    ) -> (
        Result<runner::Report, runner::RunError>,
        Option<(Catalog, i64)>,
    ) {
        let plan = config.plan(&job.plan).expect("checked when taken");
        let cancel = self
            .lock()
            .queue
            .running
            .as_ref()
            .map(|r| r.cancel.clone())
            .unwrap_or_default();
        log(
            6,
            &format!(
                "plan {}: {} started ({:?})",
                job.plan,
                job.kind.name(),
                job.origin
            ),
        );
        if job.kind == Kind::Backup {
            self.notify(Notice::Started {
                plan: plan.id.clone(),
                target: crate::catalog::public_url(plan.target()),
            });
        }
        let run = runner::target_args(config, plan).catalog.and_then(|path| {
            let cat = Catalog::open(&path).ok()?;
            let id = cat
                .begin_run(plan.target(), job.kind.name(), &plan.id, started)
                .ok()?;
            Some((cat, id))
        });
        let cx = runner::Context {
            config,
            now: started,
            fixed_time: self.shared.clock.is_simulated(),
            progress: live.clone(),
            cancel,
            restore: job.restore.clone(),
        };
        (runner::run(plan, job.kind, &cx), run)
    }

    /// Records the outcome: the catalog's run and event, the plan's state.
    fn finish_job(
        &self,
        job: super::jobs::Job,
        started: Seconds,
        (result, run): (
            Result<runner::Report, runner::RunError>,
            Option<(Catalog, i64)>,
        ),
        _live: &Arc<Live>,
    ) {
        let ended = self.now();
        // A simulated clock stands still between the test's moves; a second
        // passes with each job, so two sets are never stamped alike.
        if self.shared.clock.is_simulated() {
            self.shared.clock.set(ended + 1);
        }
        let cancelled = matches!(
            &result,
            Err(runner::RunError::Engine(crate::Error::Cancelled))
        );
        let outcome = match (&result, cancelled) {
            (Ok(_), _) => "ok",
            (Err(_), true) => "cancelled",
            (Err(_), false) => "failed",
        };
        let message = match &result {
            Ok(r) => r.message.clone(),
            Err(e) => e.to_string(),
        };
        let level = if outcome == "failed" { 3 } else { 6 };
        log(
            level,
            &format!(
                "plan {}: {} {outcome}: {message}",
                job.plan,
                job.kind.name()
            ),
        );
        if let Some((cat, id)) = &run {
            let end = RunEnd {
                bytes: result.as_ref().ok().and_then(|r| r.bytes),
                set_time: result.as_ref().ok().and_then(|r| r.set_time),
                error: result.as_ref().err().map(|e| e.to_string()),
            };
            // A cancelled run stays `interrupted` for the next start to resume.
            let outcome = if cancelled { "interrupted" } else { outcome };
            let _ = cat.end_run(*id, ended, outcome, &end);
            if let Ok(r) = &result {
                record_replicas(cat, &job.plan, started, ended, &r.replicas);
            }
            if let Ok(r) = &result {
                for (level, line) in &r.log {
                    let _ = cat.event(Some(*id), level, "log", line);
                }
            }
            let _ = cat.event(
                Some(*id),
                if outcome == "failed" { "error" } else { "info" },
                job.kind.name(),
                &message,
            );
        }
        let mut s = self.lock();
        if let Some(ps) = s.plans.get_mut(&job.plan) {
            if job.kind == Kind::Backup && !cancelled {
                self.notify_backup(ps, &result);
            }
            update_plan(ps, &job, started, &result, cancelled);
            if job.kind == Kind::Backup && !cancelled {
                ps.last_duration = Some(ended - started);
            }
        }
        s.queue.running = None;
        s.queue.finish(Finished {
            job,
            started,
            ended,
            outcome,
            message,
        });
        drop(s);
        self.changed();
    }
}

/// Returns the memory a job used to the system, so the idle daemon stays
/// small: the encoder's recycled buffers, then what glibc keeps in its
/// arenas (44 MB after a backup of the 618 MB tree without this).
fn give_back_memory() {
    crate::archive::codec::release_buffers();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What a finished job changes in its plan's state.
fn update_plan(
    ps: &mut PlanState,
    job: &super::jobs::Job,
    started: Seconds,
    result: &Result<runner::Report, runner::RunError>,
    cancelled: bool,
) {
    if cancelled {
        return;
    }
    match (job.kind, result) {
        (Kind::Backup, Ok(r)) => {
            ps.last_bytes = r.bytes;
            ps.verify_coverage = r.verify_coverage.or(ps.verify_coverage);
            update_replicas(&mut ps.replicas, &r.replicas, started);
            ps.last_volumes = r.volumes;
            ps.last_run = Some(started);
            ps.last_ok = Some(true);
            ps.last_success = Some(started);
            ps.last_error = None;
            ps.problem = r.problem.clone();
        }
        (Kind::Backup, Err(e)) => {
            ps.last_run = Some(started);
            ps.last_ok = Some(false);
            ps.last_error = Some(e.to_string());
        }
        (Kind::Verify, Ok(r)) => ps.problem = r.problem.clone(),
        (Kind::Verify, Err(e)) => ps.problem = Some(format!("verify failed: {e}")),
        (_, Ok(r)) if r.problem.is_some() => ps.problem = r.problem.clone(),
        _ => {}
    }
}

/// Each copy to a further target is a `replicate` run of the plan at that
/// target, so its state survives a restart.
fn record_replicas(
    cat: &Catalog,
    plan: &str,
    started: Seconds,
    ended: Seconds,
    done: &[(String, Result<String, String>)],
) {
    for (target, result) in done {
        let Ok(id) = cat.begin_run(target, "replicate", plan, started) else {
            continue;
        };
        let end = RunEnd {
            error: result.as_ref().err().cloned(),
            ..RunEnd::default()
        };
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        let _ = cat.end_run(id, ended, outcome, &end);
    }
}

/// Each further target's state after a backup copied to it.
fn update_replicas(
    states: &mut [ReplicaState],
    done: &[(String, Result<String, String>)],
    at: Seconds,
) {
    for (target, result) in done {
        let Some(st) = states.iter_mut().find(|s| &s.target == target) else {
            continue;
        };
        st.last_ok = Some(result.is_ok());
        match result {
            Ok(m) => {
                st.last_success = Some(at);
                st.last_error = None;
                st.last_message = Some(m.clone());
            }
            Err(e) => st.last_error = Some(e.clone()),
        }
    }
}

/// The state the LEDs and `/api/status` show.
impl Daemon {
    /// Health and activity now.
    pub fn health(&self) -> (Health, Activity) {
        let s = self.lock();
        (health_of(&s, self.now()), activity_of(&s))
    }
}

fn health_of(s: &State, now: Seconds) -> Health {
    let Ok(config) = &s.config else {
        return match &s.config {
            Err(e) if e.message.starts_with("cannot read it") => Health::Unconfigured,
            _ => Health::ConfigError,
        };
    };
    if now < PLAUSIBLE_SINCE {
        return Health::Stale;
    }
    let plans: Vec<_> = config
        .plans
        .iter()
        .filter_map(|p| Some((p, s.plans.get(&p.id)?)))
        .collect();
    let replica_failed = |ps: &PlanState| ps.replicas.iter().any(|r| r.last_ok == Some(false));
    if plans
        .iter()
        .any(|(_, ps)| ps.last_ok == Some(false) || replica_failed(ps))
    {
        return Health::Failed;
    }
    if plans.iter().any(|(_, ps)| ps.problem.is_some()) {
        return Health::VerifyProblem;
    }
    let fresh = |(p, ps): &(&super::config::Plan, &PlanState)| {
        let interval = p.schedule.interval_around(now).unwrap_or(7 * 86400);
        ps.last_success.is_some_and(|t| now - t <= 2 * interval)
    };
    if plans.iter().all(fresh) {
        Health::Good
    } else {
        Health::Stale
    }
}

fn activity_of(s: &State) -> Activity {
    match &s.queue.running {
        Some(r) if r.job.kind == Kind::Restore => Activity::Restore,
        Some(_) => Activity::Job,
        None if s.armed => Activity::AwaitingPress,
        None if s.claim.is_some_and(|c| c.waiting()) => Activity::AwaitingPress,
        None => Activity::Idle,
    }
}

/// The LED thread: draws the pattern, sleeps until the next blink edge or
/// a change of state (a minute at most, for freshness running out).
impl Daemon {
    fn led_loop(&self, mut leds: Box<dyn Leds>) {
        let mut s = self.lock();
        loop {
            if s.stopping {
                leds.set_leds(false, false);
                return;
            }
            let p = pattern(health_of(&s, self.now()), activity_of(&s));
            let ms = self.shared.started.elapsed().as_millis() as u64;
            leds.set_leds(p.green.lit_at(ms), p.red.lit_at(ms));
            let wait = if p.green.is_steady() && p.red.is_steady() {
                Duration::from_secs(60)
            } else {
                Duration::from_millis(125 - ms % 125)
            };
            s = self
                .shared
                .changed
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The button thread: edges into gestures, gestures into jobs.
impl Daemon {
    fn button_loop(&self, mut button: Box<dyn Button>) {
        let mut g = Gestures::default();
        loop {
            if self.lock().stopping {
                return;
            }
            let now = button.now_ms();
            let timeout = g.deadline().map_or(5_000, |d| d.saturating_sub(now).max(1));
            let gesture = match button.wait_button(Duration::from_millis(timeout)) {
                Some(e) if e.pressed => g.press(e.at_ms),
                Some(e) => g.release(e.at_ms),
                None => g.tick(button.now_ms()),
            };
            if let Some(gesture) = gesture {
                self.on_gesture(gesture, g.is_armed());
            }
        }
    }

    fn on_gesture(&self, gesture: Gesture, armed: bool) {
        let plan = self.first_plan();
        if gesture == Gesture::Short && self.take_claim_press() {
            let what = "short press: the dashboard's claim confirmed";
            log(5, &format!("button: {what}"));
            self.button_event(plan.as_deref(), what);
            return;
        }
        let (what, job) = match gesture {
            Gesture::Short => ("short press: back up now", Some(Kind::Backup)),
            Gesture::Armed => (
                "long press: restore armed; press again within 10 s to confirm",
                None,
            ),
            Gesture::Confirmed => ("press: restore confirmed", Some(Kind::Restore)),
            Gesture::Expired => ("restore not confirmed in time; nothing done", None),
            Gesture::Stuck => (
                "the button is held down for 30 s; ignored until released",
                None,
            ),
        };
        log(5, &format!("button: {what}"));
        self.lock().armed = armed;
        self.changed();
        if let (Some(plan), Some(kind)) = (&plan, job) {
            let _ = self.submit(plan, kind, Origin::Button);
        }
        self.button_event(plan.as_deref(), what);
    }

    /// A short press while a claim waits is the claim's.
    fn take_claim_press(&self) -> bool {
        let mut s = self.lock();
        match &mut s.claim {
            Some(c) if c.waiting() => {
                c.pressed = true;
                drop(s);
                self.changed();
                true
            }
            _ => false,
        }
    }

    /// Every press is an event in the catalog of the first plan.
    fn button_event(&self, plan: Option<&str>, what: &str) {
        let s = self.lock();
        let Ok(c) = &s.config else { return };
        let Some(p) = plan.and_then(|id| c.plan(id)) else {
            return;
        };
        let path = runner::target_args(c, p).catalog;
        drop(s);
        if let Some(cat) = path.and_then(|p| Catalog::open(&p).ok()) {
            let _ = cat.event(None, "info", "button", what);
        }
    }
}

/// A plan's state with its next run as of `now` (now itself if it is due).
fn with_next_run(s: &State, ps: &PlanState, now: Seconds) -> PlanState {
    let mut ps = ps.clone();
    if let Some(p) = s.config.as_ref().ok().and_then(|c| c.plan(&ps.id)) {
        ps.next_run = match p.schedule.due(ps.last_run.or(Some(ps.since)), now) {
            Due::Now { .. } => Some(now),
            Due::At(t) => (t != Seconds::MAX).then_some(t),
        };
    }
    ps
}

/// `/api/status`: the overview.
#[derive(Debug, Serialize)]
pub struct Status {
    pub health: &'static str,
    pub activity: &'static str,
    pub leds: LedView,
    pub board: &'static str,
    pub board_error: Option<String>,
    pub now: Seconds,
    /// False while the clock is before 2020 (not set by network time yet):
    /// backups wait.
    pub clock_ok: bool,
    pub config_file: String,
    /// Whether the configuration file exists (it may still be invalid).
    pub configured: bool,
    pub config_error: Option<ConfigError>,
    pub plans: Vec<PlanState>,
    pub running: Option<RunningView>,
    pub waiting: Vec<super::jobs::Job>,
    pub finished: Vec<Finished>,
}

#[derive(Debug, Serialize)]
pub struct LedView {
    pub green: bool,
    pub red: bool,
}

#[derive(Debug, Serialize)]
pub struct RunningView {
    pub job: super::jobs::Job,
    pub started: Seconds,
    pub progress: ProgressView,
}

impl serde::Serialize for ConfigError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ConfigError", 3)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

impl Daemon {
    pub fn status(&self) -> Status {
        self.refresh();
        let now = self.now();
        let s = self.lock();
        let (health, activity) = (health_of(&s, now), activity_of(&s));
        let p = pattern(health, activity);
        let ms = self.shared.started.elapsed().as_millis() as u64;
        Status {
            health: health.name(),
            activity: activity.name(),
            leds: LedView {
                green: p.green.lit_at(ms),
                red: p.red.lit_at(ms),
            },
            board: self.shared.board_kind,
            board_error: self.shared.board_error.clone(),
            now,
            clock_ok: now >= PLAUSIBLE_SINCE,
            config_file: self.shared.config_file.display().to_string(),
            configured: self.configured(),
            config_error: s.config.as_ref().err().cloned(),
            plans: s
                .plans
                .values()
                .map(|p| with_next_run(&s, p, now))
                .collect(),
            running: s.queue.running.as_ref().map(|r| RunningView {
                job: r.job.clone(),
                started: r.started,
                progress: r.live.view(),
            }),
            waiting: s.queue.waiting.iter().cloned().collect(),
            finished: s.queue.finished.iter().rev().cloned().collect(),
        }
    }
}

impl Daemon {
    /// `/metrics`: Prometheus text.
    pub fn metrics(&self) -> String {
        use super::metrics::{Snapshot, TargetMetrics, render};
        let st = self.status();
        let targets = st
            .plans
            .iter()
            .map(|p| TargetMetrics {
                plan: p.id.clone(),
                target: p.target.clone(),
                last_success: p.last_success,
                last_run_ok: p.last_ok,
                last_run_time: p.last_run,
                last_bytes: p.last_bytes,
                last_duration_seconds: p.last_duration.map(|d| d as f64),
                last_volumes: p.last_volumes,
                verify_coverage: p.verify_coverage,
                next_run: p.next_run,
            })
            .collect();
        render(&Snapshot {
            targets,
            jobs_running: usize::from(st.running.is_some()),
            jobs_queued: st.waiting.len(),
            config_ok: st.config_error.is_none(),
        })
    }
}

/// A notifier when any channel is configured.
fn notifier(config: &super::notify::NotifyConfig) -> Option<Arc<Notifier>> {
    if config.webhook.is_none() && config.ntfy.is_none() && config.healthchecks.is_none() {
        return None;
    }
    match Notifier::new(config.clone()) {
        Ok(n) => Some(Arc::new(n)),
        Err(e) => {
            log(3, &format!("notifications are off: {e}"));
            None
        }
    }
}

/// Notifications: sent in the background, failures logged (never retried
/// beyond the notifier's own retries).
impl Daemon {
    fn notify(&self, notice: Notice) {
        let n = self
            .shared
            .notifier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (Some(n), Some(rt)) = (n, &self.shared.runtime) else {
            return;
        };
        rt.spawn(async move {
            for e in n.send(&notice).await {
                log(4, &format!("notification not delivered: {e}"));
            }
        });
    }

    /// The notices a finished backup calls for.
    fn notify_backup(&self, ps: &PlanState, result: &Result<runner::Report, runner::RunError>) {
        let (plan, target) = (ps.id.clone(), ps.target.clone());
        if let Ok(r) = result {
            self.notify(Notice::Succeeded {
                plan: plan.clone(),
                target: target.clone(),
                set_time: r.set_time.unwrap_or_default(),
                bytes: r.bytes.unwrap_or_default(),
            });
        }
        match (transition(ps.last_ok, result.is_ok()), result) {
            (Some(Transition::Failed), Err(e)) => self.notify(Notice::Failed {
                plan,
                target,
                error: e.to_string(),
            }),
            (Some(Transition::Recovered), _) => self.notify(Notice::Recovered { plan, target }),
            _ => {}
        }
    }

    /// "No backup for N days", once a day while it lasts.
    fn notify_stale(&self, s: &mut State, now: Seconds) {
        let Ok(c) = &s.config else { return };
        let days = c.notify.stale_days();
        let limit = i64::from(days) * 86400;
        let mut notices = Vec::new();
        for ps in s.plans.values_mut() {
            let since = ps.last_success.unwrap_or(ps.since);
            let quiet = ps.stale_notified.is_some_and(|t| now - t < 86400);
            if now - since > limit && !quiet {
                ps.stale_notified = Some(now);
                notices.push(Notice::Stale {
                    plan: ps.id.clone(),
                    target: ps.target.clone(),
                    days,
                    last_success: ps.last_success,
                });
            }
        }
        for n in notices {
            self.notify(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01 00:00 UTC, a Monday; the seed's slot is Tuesday 03:05.
    const MONDAY: Seconds = 1_704_067_200;

    fn state(text: &str) -> State {
        let config = Config::parse(text, std::path::Path::new("cairn.toml")).unwrap();
        let plans = config
            .plans
            .iter()
            .map(|p| {
                let ps = PlanState {
                    id: p.id.clone(),
                    since: MONDAY,
                    ..PlanState::default()
                };
                (p.id.clone(), ps)
            })
            .collect();
        State {
            config: Ok(config),
            plans,
            queue: Queue::default(),
            armed: false,
            claim: None,
            stopping: false,
        }
    }

    const PLAN: &str = "source = \"/a\"\ntarget = \"file:///b\"\n";
    const MAIN: &str = crate::appliance::config::MAIN_PLAN;

    #[test]
    fn a_slot_is_queued_once_and_not_before_the_clock_is_set() {
        let mut s = state(PLAN);
        let tuesday = MONDAY + 86400 + 3 * 3600 + 5 * 60;
        assert_eq!(queue_due(&mut s, MONDAY), tuesday);
        assert!(s.queue.waiting.is_empty());
        queue_due(&mut s, tuesday + 60);
        queue_due(&mut s, tuesday + 120);
        assert_eq!(s.queue.waiting.len(), 1);
        assert_eq!(s.queue.waiting[0].slot, Some(tuesday));
        // Days later, with the job still waiting: still one.
        queue_due(&mut s, tuesday + 3 * 86400);
        assert_eq!(s.queue.waiting.len(), 1);
        let mut s = state(PLAN);
        assert_eq!(queue_due(&mut s, 86_400 * 365), Seconds::MAX);
        assert!(s.queue.waiting.is_empty());
    }

    #[test]
    fn health_follows_runs_checks_and_freshness() {
        let mut s = state(PLAN);
        let now = MONDAY + 86400;
        assert_eq!(health_of(&s, now), Health::Stale);
        let ps = s.plans.get_mut(MAIN).unwrap();
        ps.last_success = Some(now - 3600);
        ps.last_ok = Some(true);
        assert_eq!(health_of(&s, now), Health::Good);
        // Older than twice the weekly interval: stale.
        assert_eq!(health_of(&s, now + 15 * 86400), Health::Stale);
        s.plans.get_mut(MAIN).unwrap().problem = Some("vol3 damaged".into());
        assert_eq!(health_of(&s, now), Health::VerifyProblem);
        s.plans.get_mut(MAIN).unwrap().last_ok = Some(false);
        assert_eq!(health_of(&s, now), Health::Failed);
        // A clock not set yet: attention, whatever the runs say.
        assert_eq!(health_of(&s, 1000), Health::Stale);
    }

    #[test]
    fn a_reload_keeps_what_the_daemon_learnt() {
        let old = PlanState {
            id: "main".into(),
            target: "file:///old".into(),
            last_success: Some(5),
            problem: Some("x".into()),
            replicas: vec![ReplicaState {
                target: "file:///usb".into(),
                last_ok: Some(false),
                ..ReplicaState::default()
            }],
            ..PlanState::default()
        };
        let fresh = PlanState {
            id: "main".into(),
            target: "file:///new".into(),
            schedule: "@daily".into(),
            replicas: vec![
                ReplicaState {
                    target: "file:///usb".into(),
                    ..ReplicaState::default()
                },
                ReplicaState {
                    target: "file:///nas".into(),
                    ..ReplicaState::default()
                },
            ],
            ..PlanState::default()
        };
        let got = carry_over(fresh, &old);
        assert_eq!(
            (got.target.as_str(), got.schedule.as_str()),
            ("file:///new", "@daily")
        );
        assert_eq!(
            (got.last_success, got.problem.as_deref()),
            (Some(5), Some("x"))
        );
        assert_eq!(got.replicas[0].last_ok, Some(false));
        assert_eq!(got.replicas[1].last_ok, None);
    }
}
