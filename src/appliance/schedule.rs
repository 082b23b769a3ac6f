//! When a plan runs: a 5-field cron expression (`croner`) in the local time
//! zone, and what to do after downtime or a clock that moved.
//!
//! - After a power cut or any downtime, a missed run runs **once** at start,
//!   however many slots were missed.
//! - A clock that went backwards (no NTP yet on first boot, a wrong RTC)
//!   never makes a run happen again: nothing runs until the clock has passed
//!   the last run.

use crate::time::Seconds;
use chrono::{Local, TimeZone};
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "schedule {expr:?}: {why}; write five fields, minute hour day-of-month month day-of-week, \
         e.g. \"5 3 * * 2\" for Tuesdays at 03:05"
    )]
    Invalid { expr: String, why: String },
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    expr: String,
}

/// What the scheduler should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Run now: `slot` is the (latest) scheduled time it stands for.
    Now { slot: Seconds },
    /// Sleep until this time.
    At(Seconds),
}

impl Schedule {
    /// Parses a 5-field expression (or a nickname such as `@weekly`).
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |why: String| ScheduleError::Invalid {
            expr: expr.to_string(),
            why,
        };
        let fields = expr.split_whitespace().count();
        if !expr.trim_start().starts_with('@') && fields != 5 {
            return Err(invalid(format!("{fields} fields")));
        }
        let cron = croner::Cron::from_str(expr).map_err(|e| invalid(e.to_string()))?;
        Ok(Schedule {
            cron,
            expr: expr.to_string(),
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The schedule in words ("At 03:05 on Tuesday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: Seconds) -> Option<Seconds> {
        let local = Local.timestamp_opt(t, 0).single()?;
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.timestamp())
    }

    /// The latest slot at or before `t`.
    pub fn last_at_or_before(&self, t: Seconds) -> Option<Seconds> {
        let local = Local.timestamp_opt(t, 0).single()?;
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.timestamp())
    }

    /// The next `n` slots after `t`.
    pub fn next_n(&self, t: Seconds, n: usize) -> Vec<Seconds> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(s) => {
                    out.push(s);
                    at = s;
                }
                None => break,
            }
        }
        out
    }

    /// The gap between the slot before `t` and the one after: what "fresh"
    /// is measured against (a backup is fresh for twice this).
    pub fn interval_around(&self, t: Seconds) -> Option<Seconds> {
        let next = self.next_after(t)?;
        let prev = self.last_at_or_before(t)?;
        Some(next - prev)
    }

    /// What to do at `now`, given the slot of the last run (started, whether
    /// it succeeded or not). With no run yet, the next slot.
    pub fn due(&self, last_run: Option<Seconds>, now: Seconds) -> Due {
        let next = |t| self.next_after(t).map_or(Due::At(Seconds::MAX), Due::At);
        let Some(last) = last_run else {
            return next(now);
        };
        if now < last {
            // The clock went back: wait until it has passed the last run.
            return next(last);
        }
        match self.last_at_or_before(now) {
            Some(slot) if slot > last => Due::Now { slot },
            _ => next(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Seconds {
        Local
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn five_fields_or_a_nickname() {
        assert!(Schedule::parse("5 3 * * 2").is_ok());
        assert!(Schedule::parse("@weekly").is_ok());
        let e = Schedule::parse("0 5 3 * * 2").unwrap_err().to_string();
        assert!(
            e.contains("6 fields") && e.contains("Tuesdays at 03:05"),
            "{e}"
        );
        assert!(Schedule::parse("61 * * * *").is_err());
    }

    #[test]
    fn the_seeds_schedule_runs_on_tuesdays_at_0305() {
        let s = Schedule::parse("5 3 * * 2").unwrap();
        // Monday 2026-12-07 10:00 → Tuesday 2026-12-08 03:05.
        let next = s.next_after(local(2026, 12, 7, 10, 0)).unwrap();
        assert_eq!(next, local(2026, 12, 8, 3, 5));
        assert_eq!(
            s.next_n(next, 2),
            [local(2026, 12, 15, 3, 5), local(2026, 12, 22, 3, 5)]
        );
        assert_eq!(s.interval_around(next + 60), Some(7 * 86_400));
        assert!(s.describe().contains("03:05"), "{}", s.describe());
    }

    #[test]
    fn missed_slots_run_once_and_a_clock_that_went_back_runs_nothing_again() {
        let s = Schedule::parse("5 3 * * 2").unwrap();
        let ran = local(2026, 11, 3, 3, 5);
        // Down for three weeks: one run now, for the latest slot.
        let now = local(2026, 11, 26, 12, 0);
        assert_eq!(
            s.due(Some(ran), now),
            Due::Now {
                slot: local(2026, 11, 24, 3, 5)
            }
        );
        // After that run, the next Tuesday.
        let slot = local(2026, 11, 24, 3, 5);
        assert_eq!(s.due(Some(slot), now), Due::At(local(2026, 12, 1, 3, 5)));
        // The clock jumped back a year: nothing until it passes the last run.
        let back = local(2025, 11, 26, 12, 0);
        assert_eq!(s.due(Some(slot), back), Due::At(local(2026, 12, 1, 3, 5)));
        // First start: the next slot, no catch-up.
        assert_eq!(s.due(None, now), Due::At(local(2026, 12, 1, 3, 5)));
    }
}
