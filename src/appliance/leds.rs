//! The LED language: two LEDs, green and red, and what they say.
//!
//! | what | green | red |
//! | --- | --- | --- |
//! | last backup succeeded and is fresh (younger than twice the schedule's interval) | on | off |
//! | a backup, retention, verify or rebuild is running | slow blink (1 Hz) | as before the job |
//! | a restore is running | fast blink (4 Hz) | as before the job |
//! | needs attention: not configured, configuration error, stale, verify found a problem | off | on (amber with green: never both steady) |
//! | the last run failed | off | fast blink |
//! | waiting for the button to confirm (claim, restore) | alternate with red (2 Hz) | alternate |
//! | daemon stopped | off | off (turned off when the board is dropped) |
//! | daemon crashed | as last drawn, until systemd restarts it (2 s) | as last drawn |
//!
//! One LED carries several alerts, so they are ordered: a failure outranks a
//! stale backup, which outranks "good"; activity (a job) shows on green
//! without hiding red.

/// What one LED does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blink {
    Off,
    On,
    /// 1 Hz, half on.
    Slow,
    /// 4 Hz, half on.
    Fast,
    /// 2 Hz, on in the first half (its partner takes the second).
    AlternateA,
    AlternateB,
}

impl Blink {
    /// Whether the LED is lit `ms` milliseconds into the pattern.
    pub fn lit_at(self, ms: u64) -> bool {
        match self {
            Blink::Off => false,
            Blink::On => true,
            Blink::Slow => ms % 1000 < 500,
            Blink::Fast => ms % 250 < 125,
            Blink::AlternateA => ms % 500 < 250,
            Blink::AlternateB => ms % 500 >= 250,
        }
    }

    /// Whether the LED ever changes (a steady LED needs no timer).
    pub fn is_steady(self) -> bool {
        matches!(self, Blink::Off | Blink::On)
    }
}

/// How the last backups stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No plan yet (first run).
    Unconfigured,
    /// The configuration does not parse or validate.
    ConfigError,
    /// No backup has succeeded yet, or the last success is older than
    /// twice the schedule's interval.
    Stale,
    /// Verify found a damaged or missing volume.
    VerifyProblem,
    /// The last run failed.
    Failed,
    /// The last backup succeeded and is fresh.
    Good,
}

/// What is going on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activity {
    #[default]
    Idle,
    /// A backup, retention, cleanup, verify or catalog rebuild.
    Job,
    Restore,
    /// Waiting for a button press to confirm (dashboard claim, restore).
    AwaitingPress,
}

/// The two LEDs' patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    pub green: Blink,
    pub red: Blink,
}

impl Health {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unconfigured => "unconfigured",
            Health::ConfigError => "config_error",
            Health::Stale => "stale",
            Health::VerifyProblem => "problem",
            Health::Failed => "failed",
            Health::Good => "good",
        }
    }
}

impl Activity {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Idle => "idle",
            Activity::Job => "job",
            Activity::Restore => "restore",
            Activity::AwaitingPress => "awaiting_press",
        }
    }
}

/// The pattern for a state (the table in the module documentation).
pub fn pattern(health: Health, activity: Activity) -> Pattern {
    let red = match health {
        Health::Good => Blink::Off,
        Health::Failed => Blink::Fast,
        _ => Blink::On,
    };
    let green_idle = if health == Health::Good {
        Blink::On
    } else {
        Blink::Off
    };
    match activity {
        Activity::AwaitingPress => Pattern {
            green: Blink::AlternateA,
            red: Blink::AlternateB,
        },
        Activity::Restore => Pattern {
            green: Blink::Fast,
            red,
        },
        Activity::Job => Pattern {
            green: Blink::Slow,
            red,
        },
        Activity::Idle => Pattern {
            green: green_idle,
            red,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_own_look() {
        let states = [
            Health::Unconfigured,
            Health::ConfigError,
            Health::Stale,
            Health::VerifyProblem,
            Health::Failed,
            Health::Good,
        ];
        assert_eq!(
            pattern(Health::Good, Activity::Idle),
            Pattern {
                green: Blink::On,
                red: Blink::Off
            }
        );
        assert_eq!(pattern(Health::Failed, Activity::Idle).red, Blink::Fast);
        assert_eq!(
            pattern(Health::Stale, Activity::Idle),
            Pattern {
                green: Blink::Off,
                red: Blink::On
            }
        );
        for h in states {
            // A job shows on green and never hides a problem on red.
            let p = pattern(h, Activity::Job);
            assert_eq!(p.green, Blink::Slow);
            assert_eq!(p.red, pattern(h, Activity::Idle).red);
            assert_eq!(pattern(h, Activity::Restore).green, Blink::Fast);
        }
        let claim = pattern(Health::Unconfigured, Activity::AwaitingPress);
        for ms in (0..2000).step_by(50) {
            assert_ne!(
                claim.green.lit_at(ms),
                claim.red.lit_at(ms),
                "alternate at {ms}"
            );
        }
    }

    #[test]
    fn blink_rates() {
        let lit = |b: Blink| (0..1000).filter(|ms| b.lit_at(*ms)).count();
        assert_eq!(lit(Blink::Slow), 500);
        assert_eq!(lit(Blink::Fast), 500);
        assert_eq!(lit(Blink::On), 1000);
        let edges = |b: Blink| {
            (1..1000)
                .filter(|ms| b.lit_at(*ms) != b.lit_at(ms - 1))
                .count()
        };
        assert_eq!(edges(Blink::Slow), 1);
        assert_eq!(edges(Blink::Fast), 7);
        assert!(Blink::On.is_steady() && !Blink::Slow.is_steady());
    }
}
