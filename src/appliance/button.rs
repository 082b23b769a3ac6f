//! The button's gestures, from its press and release edges (timed by the
//! kernel on the Pi, by the caller in the simulated board):
//!
//! - a **short press** (50 ms to 3 s) backs up now;
//! - a **long press** (held 3 s) arms a restore; the LEDs acknowledge while
//!   it is still held; a **second press within 10 s** confirms it;
//! - a bounce (under 50 ms) is nothing; a button held longer than 30 s is
//!   taken as stuck and disarms, and nothing more happens until it is
//!   released and pressed again.

/// Milliseconds on a monotonic clock.
pub type Millis = u64;

pub const BOUNCE: Millis = 50;
pub const LONG: Millis = 3_000;
pub const CONFIRM_WITHIN: Millis = 10_000;
pub const STUCK: Millis = 30_000;

/// What a press meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    /// Back up now.
    Short,
    /// Held long enough: a restore is armed, waiting for a confirming press.
    Armed,
    /// The confirming press came: restore.
    Confirmed,
    /// No confirming press within the time: disarmed.
    Expired,
    /// Held so long it is taken as stuck: disarmed, ignored until released.
    Stuck,
}

/// Turns edges into gestures. Call [`Gestures::tick`] at
/// [`Gestures::deadline`] so long presses and expiries are seen on time.
#[derive(Debug, Default)]
pub struct Gestures {
    down_since: Option<Millis>,
    /// Armed by the press in progress (its release does nothing more).
    armed_by_this_press: bool,
    stuck: bool,
    armed_until: Option<Millis>,
}

impl Gestures {
    pub fn press(&mut self, at: Millis) -> Option<Gesture> {
        if self.down_since.is_none() {
            self.down_since = Some(at);
            self.armed_by_this_press = false;
            self.stuck = false;
        }
        None
    }

    pub fn release(&mut self, at: Millis) -> Option<Gesture> {
        let since = self.down_since.take()?;
        if self.stuck || self.armed_by_this_press {
            if self.armed_by_this_press {
                self.armed_until = Some(at + CONFIRM_WITHIN);
            }
            return None;
        }
        let held = at.saturating_sub(since);
        if held < BOUNCE {
            return None;
        }
        if held >= LONG {
            // A release seen late (no tick in between): arm now.
            self.armed_until = Some(at + CONFIRM_WITHIN);
            return Some(Gesture::Armed);
        }
        if self.armed_until.take().is_some_and(|until| since <= until) {
            return Some(Gesture::Confirmed);
        }
        Some(Gesture::Short)
    }

    /// Time-driven transitions: a press held 3 s arms, 30 s is stuck, an
    /// armed restore expires.
    pub fn tick(&mut self, now: Millis) -> Option<Gesture> {
        if let Some(since) = self.down_since {
            let held = now.saturating_sub(since);
            if !self.stuck && held >= STUCK {
                self.stuck = true;
                self.armed_by_this_press = false;
                self.armed_until = None;
                return Some(Gesture::Stuck);
            }
            if !self.stuck && !self.armed_by_this_press && held >= LONG {
                self.armed_by_this_press = true;
                self.armed_until = None;
                return Some(Gesture::Armed);
            }
            return None;
        }
        if self.armed_until.is_some_and(|until| now > until) {
            self.armed_until = None;
            return Some(Gesture::Expired);
        }
        None
    }

    /// When [`Gestures::tick`] next has something to decide.
    pub fn deadline(&self) -> Option<Millis> {
        match self.down_since {
            Some(_) if self.stuck => None,
            Some(since) if self.armed_by_this_press => Some(since + STUCK),
            Some(since) => Some(since + LONG),
            None => self.armed_until.map(|u| u + 1),
        }
    }

    /// Whether a restore is armed and waiting for its confirming press.
    pub fn is_armed(&self) -> bool {
        self.armed_until.is_some() || self.armed_by_this_press
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds presses `(down, up)` and ticks at every deadline up to `end`.
    fn run(presses: &[(Millis, Millis)], end: Millis) -> Vec<(Millis, Gesture)> {
        let mut g = Gestures::default();
        let mut edges: Vec<(Millis, bool)> = presses
            .iter()
            .flat_map(|&(d, u)| [(d, true), (u, false)])
            .collect();
        edges.sort();
        let mut out = Vec::new();
        let mut now = 0;
        let mut i = 0;
        while now <= end {
            let next_edge = edges.get(i).map(|e| e.0);
            let next_tick = g.deadline();
            let t = match (next_edge, next_tick) {
                (Some(e), Some(d)) => e.min(d),
                (Some(e), None) => e,
                (None, Some(d)) => d,
                (None, None) => break,
            };
            if t > end {
                break;
            }
            now = t;
            if next_edge == Some(t) {
                let (_, down) = edges[i];
                i += 1;
                let r = if down { g.press(t) } else { g.release(t) };
                out.extend(r.map(|x| (t, x)));
            } else {
                out.extend(g.tick(t).map(|x| (t, x)));
            }
        }
        out
    }

    #[test]
    fn short_press_backs_up_and_bounces_are_nothing() {
        assert_eq!(run(&[(100, 300)], 20_000), [(300, Gesture::Short)]);
        assert_eq!(run(&[(100, 120), (130, 140)], 20_000), []);
    }

    #[test]
    fn long_press_then_a_second_press_restores() {
        let got = run(&[(0, 3_500), (8_000, 8_200)], 30_000);
        assert_eq!(got, [(3_000, Gesture::Armed), (8_200, Gesture::Confirmed)]);
    }

    #[test]
    fn an_armed_restore_expires_after_ten_seconds() {
        let got = run(&[(0, 3_500), (14_000, 14_200)], 30_000);
        assert_eq!(
            got,
            [
                (3_000, Gesture::Armed),
                (13_501, Gesture::Expired),
                (14_200, Gesture::Short)
            ]
        );
    }

    #[test]
    fn a_button_held_for_minutes_is_stuck_and_does_nothing() {
        let got = run(&[(0, 300_000)], 400_000);
        assert_eq!(got, [(3_000, Gesture::Armed), (30_000, Gesture::Stuck)]);
        // After release, a short press works again.
        let got = run(&[(0, 300_000), (310_000, 310_200)], 400_000);
        assert_eq!(got.last(), Some(&(310_200, Gesture::Short)));
    }
}
