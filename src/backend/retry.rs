//! Retries with backoff, as duplicity's `--num-retries` and
//! `--backend-retry-delay` ask, for the errors that may go away.

use super::{BackendError, BackendOptions};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries in all (at least 1).
    pub attempts: u32,
    pub delay: Duration,
}

impl Retry {
    pub fn new(opts: &BackendOptions) -> Retry {
        Retry {
            attempts: opts.num_retries.max(1),
            delay: opts.retry_delay,
        }
    }

    /// The wait after failed attempt `n` (1-based): the delay, doubled for
    /// each further attempt, at most 8 times the delay.
    pub fn backoff(&self, n: u32) -> Duration {
        self.delay * (1u32 << n.saturating_sub(1).min(3))
    }

    /// Runs `f` until it succeeds, fails for good, or the attempts are used
    /// up. `f` gets the attempt number (1-based). Each retry is announced
    /// on stderr; the error messages name the target and carry no secrets.
    pub fn run<T>(
        &self,
        mut f: impl FnMut(u32) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut n = 1;
        loop {
            match f(n) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && n < self.attempts => {
                    let wait = self.backoff(n);
                    eprintln!(
                        "cairn: attempt {n} of {} failed: {e}; retrying in {:.1} s",
                        self.attempts,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    n += 1;
                }
                Err(e) => {
                    if n > 1 && e.is_transient() {
                        eprintln!("cairn: giving up after {n} attempts");
                    }
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> BackendError {
        BackendError::Unreachable {
            target: "t".into(),
            detail: "down".into(),
        }
    }

    #[test]
    fn retries_transient_errors_only() {
        let r = Retry {
            attempts: 3,
            delay: Duration::ZERO,
        };
        let mut calls = 0;
        let out: Result<(), _> = r.run(|_| {
            calls += 1;
            Err(transient())
        });
        assert!(out.is_err());
        assert_eq!(calls, 3);

        let mut calls = 0;
        let out = r.run(|n| {
            calls += 1;
            if n < 2 { Err(transient()) } else { Ok(n) }
        });
        assert_eq!(out.unwrap(), 2);
        assert_eq!(calls, 2);

        let mut calls = 0;
        let out: Result<(), _> = r.run(|_| {
            calls += 1;
            Err(BackendError::Auth {
                target: "t".into(),
                detail: "no".into(),
            })
        });
        assert!(matches!(out, Err(BackendError::Auth { .. })));
        assert_eq!(calls, 1, "authentication failures are not retried");

        let r = Retry {
            attempts: 9,
            delay: Duration::from_secs(1),
        };
        let waits: Vec<u64> = (1..=6).map(|n| r.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
    }
}
