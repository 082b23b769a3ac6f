//! Deterministic kill points, for the crash tests (`tests/nothing_lost.rs`).
//!
//! Every step boundary of a multi-file change — a file stored at the target,
//! renamed or removed, locally or remotely — calls [`step`] right after the
//! step is durable. With `CAIRN_KILL_AT_STEP=N` in the environment, the N-th
//! boundary of the process kills it with SIGKILL, as a power cut would; the
//! tests run a command with N = 1, 2, … until it completes, and check that
//! the next command finds a state it recognises and completes. Without the
//! variable, [`step`] is a relaxed atomic increment.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static STEPS: AtomicUsize = AtomicUsize::new(0);

fn kill_at() -> Option<usize> {
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    *AT.get_or_init(|| std::env::var("CAIRN_KILL_AT_STEP").ok()?.parse().ok())
}

/// Marks a step boundary (see the module documentation).
pub fn step() {
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if kill_at() == Some(n) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

static ROWS: AtomicUsize = AtomicUsize::new(0);

/// Marks a row written to the catalog: with `CAIRN_KILL_AT_CATALOG_ROW=N`,
/// the N-th kills the process (a power cut in the middle of a transaction).
/// Counted apart from [`step`], so the archive's kill points stay put.
pub fn catalog_row() {
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    let at = *AT.get_or_init(|| {
        std::env::var("CAIRN_KILL_AT_CATALOG_ROW")
            .ok()?
            .parse()
            .ok()
    });
    let n = ROWS.fetch_add(1, Ordering::Relaxed) + 1;
    if at == Some(n) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
