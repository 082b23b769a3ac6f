//! The daemon's clock: the system's, or a simulated one that only moves
//! when told (through the API), so a test lives through three years of
//! Tuesdays in a minute.

use crate::time::Seconds;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Simulated(Arc<AtomicI64>),
}

impl Clock {
    /// A simulated clock standing at `t`.
    pub fn simulated(t: Seconds) -> Clock {
        Clock::Simulated(Arc::new(AtomicI64::new(t)))
    }

    pub fn now(&self) -> Seconds {
        match self {
            Clock::System => crate::time::now(),
            Clock::Simulated(t) => t.load(Ordering::SeqCst),
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, Clock::Simulated(_))
    }

    /// Sets a simulated clock (it may go back, as a real one can); false for
    /// the system's.
    pub fn set(&self, t: Seconds) -> bool {
        match self {
            Clock::System => false,
            Clock::Simulated(c) => {
                c.store(t, Ordering::SeqCst);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_moves_only_when_set() {
        let c = Clock::simulated(100);
        assert_eq!(c.now(), 100);
        assert!(c.set(50));
        assert_eq!(c.clone().now(), 50);
        assert!(!Clock::System.set(1));
        assert!(Clock::System.now() > 1_700_000_000);
    }
}
