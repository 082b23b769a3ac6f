//! The appliance: the daemon that runs the backup policy unattended on the
//! Pi, and the parts it is made of, each testable on its own. Nothing here
//! knows HTTP ([`crate::serve`] sits on top) or the terminal.
//!
//! | file | concept |
//! | --- | --- |
//! | `config` | `cairn.toml`: plans (profile + schedule), GPIO pins, notifications, the seed's defaults, errors with file and line |
//! | `schedule` | when a plan runs: cron, missed runs, a clock that moved |
//! | `clock` | the system clock, or a simulated one for tests |
//! | `jobs` | the queue: merge, cancel, live progress, finished jobs |
//! | `runner` | one job of one plan on the engine, through [`crate::target`] |
//! | `daemon` | the threads (scheduler, worker, LEDs, button) around the shared state |
//! | `leds` | the LED language: state → what green and red do |
//! | `button` | press, long press, confirm, bounce and stuck, from edges |
//! | `board` | the LEDs and button: traits, and a simulated board |
//! | `pi` | the Raspberry Pi's GPIO (rppal) |
//! | `notify` | webhook, ntfy and Healthchecks notifications |
//! | `metrics` | Prometheus text for `/metrics` |

pub mod board;
pub mod button;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod jobs;
pub mod leds;
pub mod metrics;
pub mod notify;
#[cfg(target_os = "linux")]
pub mod pi;
pub mod runner;
pub mod schedule;
