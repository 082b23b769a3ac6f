//! The board: two LEDs and a button. On a Raspberry Pi they are GPIO pins
//! (rppal, in the appliance build); everywhere else a simulated board whose
//! LEDs and button the daemon's API and the tests can see and drive, so a
//! developer without a Pi sees exactly what the Pi would show.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A change of the button, with when it happened (milliseconds on the
/// board's monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub pressed: bool,
    pub at_ms: u64,
}

/// What the daemon drives.
pub trait Board: Send {
    /// `pi` or `sim`.
    fn kind(&self) -> &'static str;
    fn set_leds(&mut self, green: bool, red: bool);
    /// Waits up to `timeout` for the button to change.
    fn wait_button(&mut self, timeout: Duration) -> Option<Edge>;
    /// Milliseconds on the clock edges are timed with.
    fn now_ms(&self) -> u64;
}

/// The LED half of a board, driven by the daemon's LED thread.
pub trait Leds: Send {
    fn set_leds(&mut self, green: bool, red: bool);
}

/// The button half of a board, read by the daemon's button thread (which
/// blocks in [`Button::wait_button`], so the LEDs must not wait for it).
pub trait Button: Send {
    /// Waits up to `timeout` for the button to change.
    fn wait_button(&mut self, timeout: Duration) -> Option<Edge>;
    /// Milliseconds on the clock edges are timed with.
    fn now_ms(&self) -> u64;
}

/// A board split into its halves, each owned by one thread.
pub struct Parts {
    /// `pi` or `sim`.
    pub kind: &'static str,
    pub leds: Box<dyn Leds>,
    pub button: Box<dyn Button>,
}

/// Which board `--board auto` picks: the Pi's when `/dev/gpiochip0` exists
/// and the device tree names a Raspberry Pi.
pub fn pi_present(root: &Path) -> bool {
    let model = std::fs::read(root.join("proc/device-tree/model")).unwrap_or_default();
    root.join("dev/gpiochip0").exists() && String::from_utf8_lossy(&model).contains("Raspberry Pi")
}

/// The simulated board's visible state.
#[derive(Debug, Default)]
struct SimState {
    green: bool,
    red: bool,
    /// Every LED change: (ms, green, red), the newest last (bounded).
    history: VecDeque<(u64, bool, bool)>,
    presses: VecDeque<Edge>,
}

/// A board in memory. Clones share it: one for the daemon, others for the
/// API and tests.
#[derive(Clone)]
pub struct SimBoard {
    state: Arc<(Mutex<SimState>, Condvar)>,
    start: Instant,
}

impl Default for SimBoard {
    fn default() -> Self {
        SimBoard {
            state: Arc::default(),
            start: Instant::now(),
        }
    }
}

impl SimBoard {
    pub fn new() -> SimBoard {
        SimBoard::default()
    }

    /// The LEDs now: (green, red).
    pub fn leds(&self) -> (bool, bool) {
        let s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        (s.green, s.red)
    }

    /// The last LED changes, oldest first: (ms, green, red).
    pub fn history(&self) -> Vec<(u64, bool, bool)> {
        let s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        s.history.iter().copied().collect()
    }

    /// Presses the button for `hold` (the release is timed `hold` later;
    /// the call does not wait).
    pub fn press(&self, hold: Duration) {
        let at = Board::now_ms(self);
        let (m, cv) = &*self.state;
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        s.presses.push_back(Edge {
            pressed: true,
            at_ms: at,
        });
        s.presses.push_back(Edge {
            pressed: false,
            at_ms: at + hold.as_millis() as u64,
        });
        cv.notify_all();
    }
}

impl SimBoard {
    /// Two handles on the same simulated board.
    pub fn parts(&self) -> Parts {
        Parts {
            kind: "sim",
            leds: Box::new(self.clone()),
            button: Box::new(self.clone()),
        }
    }
}

impl Leds for SimBoard {
    fn set_leds(&mut self, green: bool, red: bool) {
        Board::set_leds(self, green, red)
    }
}

impl Button for SimBoard {
    fn wait_button(&mut self, timeout: Duration) -> Option<Edge> {
        Board::wait_button(self, timeout)
    }
    fn now_ms(&self) -> u64 {
        Board::now_ms(self)
    }
}

impl Board for SimBoard {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn set_leds(&mut self, green: bool, red: bool) {
        let now = Board::now_ms(self);
        let mut s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        if (s.green, s.red) != (green, red) || s.history.is_empty() {
            s.green = green;
            s.red = red;
            if s.history.len() >= 4096 {
                s.history.pop_front();
            }
            s.history.push_back((now, green, red));
        }
    }

    fn wait_button(&mut self, timeout: Duration) -> Option<Edge> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.state;
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // A release scheduled for later is delivered when its time comes.
            let now = self.start.elapsed().as_millis() as u64;
            match s.presses.front() {
                Some(e) if e.at_ms <= now => return s.presses.pop_front(),
                Some(e) => {
                    let wait = Duration::from_millis(e.at_ms - now);
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    s = cv
                        .wait_timeout(s, wait.min(left))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    s = cv
                        .wait_timeout(s, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_board_shows_leds_and_delivers_presses_in_time() {
        let mut b = SimBoard::new();
        let view = b.clone();
        Board::set_leds(&mut b, true, false);
        Board::set_leds(&mut b, true, false);
        Board::set_leds(&mut b, false, true);
        assert_eq!(view.leds(), (false, true));
        assert_eq!(view.history().len(), 2);
        assert_eq!(Board::wait_button(&mut b, Duration::from_millis(10)), None);
        view.press(Duration::from_millis(120));
        let down = Board::wait_button(&mut b, Duration::from_secs(1)).unwrap();
        assert!(down.pressed);
        let up = Board::wait_button(&mut b, Duration::from_secs(1)).unwrap();
        assert!(!up.pressed);
        assert_eq!(up.at_ms - down.at_ms, 120);
        assert!(Board::now_ms(&b) >= up.at_ms);
    }

    #[test]
    fn no_pi_here() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!pi_present(dir.path()));
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/device-tree")).unwrap();
        std::fs::write(dir.path().join("dev/gpiochip0"), b"").unwrap();
        std::fs::write(
            dir.path().join("proc/device-tree/model"),
            b"Raspberry Pi 4 Model B Rev 1.4\0",
        )
        .unwrap();
        assert!(pi_present(dir.path()));
    }
}
