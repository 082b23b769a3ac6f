//! Progress as people see it: a bar with rate and ETA when standard error is
//! a terminal, plain log lines when it is not (cron mail, the journal).

use crate::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Console {
    bar: Option<ProgressBar>,
    /// duplicity's verbosity: notes from 3 (notice), volume lines from 5
    /// (info), as duplicity logs them.
    verbosity: u8,
    /// Bytes of source read so far: the number duplicity's progress
    /// records carry.
    read: AtomicU64,
}

/// duplicity's NOTICE and INFO levels.
const NOTICE: u8 = 3;
const INFO: u8 = 5;

impl Console {
    /// `bar`: whether a bar may be drawn (it is only drawn on a terminal).
    pub fn new(bar: bool, verbosity: u8) -> Arc<Console> {
        let bar = (bar && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Arc::new(Console {
            bar,
            verbosity,
            read: AtomicU64::new(0),
        })
    }

    pub fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Console {
    fn note(&self, msg: &str) {
        super::machine_log::notice(msg);
        match &self.bar {
            Some(b) => b.println(msg),
            None if self.verbosity >= NOTICE => eprintln!("{msg}"),
            None => {}
        }
    }

    fn total(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }

    fn advance(&self, bytes: u64) {
        self.read.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn volume(&self, number: u64, stored: u64) {
        use super::machine_log as mlog;
        let read = self.read.load(Ordering::Relaxed).to_string();
        let msg = format!("Processed volume {number}");
        mlog::log(mlog::INFO, mlog::info::PROGRESS, Some(&read), &msg);
        match &self.bar {
            Some(b) => b.set_message(format!("volume {number}")),
            None if self.verbosity >= INFO => {
                eprintln!("Processed volume {number} ({stored} bytes stored)")
            }
            None => {}
        }
    }

    fn wants_total(&self) -> bool {
        self.bar.is_some()
    }
}
