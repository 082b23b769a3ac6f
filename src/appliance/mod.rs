//! The appliance: what runs the backup policy unattended on the Pi. So far
//! the parts that decide, each testable on its own; the daemon that drives
//! them (jobs, the HTTP API, systemd) is built on these.
//!
//! | file | concept |
//! | --- | --- |
//! | `schedule` | when a plan runs: cron, missed runs, a clock that moved |
//! | `leds` | the LED language: state → what green and red do |
//! | `button` | press, long press, confirm, bounce and stuck, from edges |
//! | `board` | the LEDs and button: a trait, and a simulated board |

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
