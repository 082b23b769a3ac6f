//! The Raspberry Pi's board: two LEDs and a button on GPIO pins, through
//! rppal. The wiring, the pins and why those pins are in `docs/wiring.md`.
//!
//! - **LEDs** are active high: GPIO → resistor → LED → ground, so a high pin
//!   lights the LED.
//! - **The button** connects its GPIO to ground; the pin's internal pull-up
//!   holds it high, so pressed = low. It is interrupt-driven: the kernel
//!   debounces the line and timestamps each edge, and
//!   [`Board::wait_button`] sleeps in `epoll` until an edge or the timeout.
//! - **When the daemon stops**, dropping the board turns both LEDs off, so
//!   "both dark" means "Cairn is not running". A crash (`kill -9`, a panic
//!   that aborts) runs no drop: the last state stays lit until systemd
//!   restarts the daemon, which redraws it within seconds.
//!
//! rppal compiles on any Linux; off a Pi, [`PiBoard::open`] fails with an
//! error that says so.

use super::board::{Board, Button, Edge, Leds, Parts};
use rppal::gpio::{Event, Gpio, InputPin, Level, OutputPin, Trigger};
use std::time::{Duration, Instant};

/// The kernel's debounce on the button line: an edge counts once the line
/// has been stable this long. Contact bounce lasts a few milliseconds; the
/// gestures (`button.rs`) ignore presses under 50 ms on top of this.
const DEBOUNCE: Duration = Duration::from_millis(10);

/// The longest single wait in the kernel (epoll takes milliseconds as an
/// `int`); a longer timeout returns `None` after this.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Which GPIOs (BCM numbers, not header pin numbers) carry the LEDs and the
/// button: the `[gpio]` table of the configuration. Fields left out keep
/// their default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinMap {
    /// The green LED (default GPIO17, header pin 11).
    pub green: u8,
    /// The red LED (default GPIO27, header pin 13).
    pub red: u8,
    /// The button (default GPIO22, header pin 15).
    pub button: u8,
}

impl Default for PinMap {
    fn default() -> Self {
        let d = super::config::GpioPins::default();
        PinMap {
            green: d.green,
            red: d.red,
            button: d.button,
        }
    }
}

impl PinMap {
    /// Refuses pins that are not on the header (above 27), that another bus
    /// or the firmware uses (see [`reserved`]), and a pin given twice.
    pub fn validate(&self) -> Result<(), PinError> {
        for (field, pin) in self.fields() {
            check_pin(field, pin)?;
        }
        let [a, b, c] = self.fields();
        for ((field, pin), (other, again)) in [(a, b), (a, c), (b, c)] {
            if pin == again {
                return Err(PinError::Duplicate { field, other, pin });
            }
        }
        Ok(())
    }

    fn fields(&self) -> [(&'static str, u8); 3] {
        [
            ("green", self.green),
            ("red", self.red),
            ("button", self.button),
        ]
    }
}

/// The default pin of a `[gpio]` field, for the error messages.
fn default_of(field: &str) -> u8 {
    let d = PinMap::default();
    match field {
        "green" => d.green,
        "red" => d.red,
        _ => d.button,
    }
}

fn check_pin(field: &'static str, pin: u8) -> Result<(), PinError> {
    let default = default_of(field);
    if pin > 27 {
        return Err(PinError::OutOfRange {
            field,
            pin,
            default,
        });
    }
    match reserved(pin) {
        Some(why) => Err(PinError::Reserved {
            field,
            pin,
            why,
            default,
        }),
        None => Ok(()),
    }
}

/// What a header GPIO is kept for, if Cairn must not take it.
pub fn reserved(pin: u8) -> Option<&'static str> {
    Some(match pin {
        0 | 1 => "the HAT ID EEPROM's I²C bus (ID_SD/ID_SC), which the firmware reads at boot",
        2 => "I²C SDA (i2c-1: RTCs, sensors, displays)",
        3 => {
            "I²C SCL (i2c-1), and the pin the gpio-shutdown overlay uses to halt the Pi \
             and to wake it from halt"
        }
        7 | 8 => "an SPI0 chip select (CE1/CE0)",
        9..=11 => "SPI0 (MISO, MOSI, SCLK)",
        14 | 15 => "the UART (TXD/RXD) of the serial console",
        _ => return None,
    })
}

/// A pin map that cannot be used, or GPIO that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// Not on the 40-pin header.
    #[error(
        "[gpio] {field} = {pin}: the 40-pin header has GPIO0 to GPIO27 only (the numbers \
         are BCM GPIO numbers, not header pin numbers); use e.g. the default {field} = {default}"
    )]
    OutOfRange {
        field: &'static str,
        pin: u8,
        default: u8,
    },

    /// Kept for a bus or the firmware ([`reserved`]).
    #[error(
        "[gpio] {field} = {pin} is refused: GPIO{pin} is {why} (the numbers are BCM GPIO \
         numbers, not header pin numbers); use a free pin such as the default {field} = {default}"
    )]
    Reserved {
        field: &'static str,
        pin: u8,
        why: &'static str,
        default: u8,
    },

    /// Two fields on one pin.
    #[error(
        "[gpio] {field} and {other} are both GPIO{pin}: each needs its own pin (the defaults \
         are green = 17, red = 27, button = 22)"
    )]
    Duplicate {
        field: &'static str,
        other: &'static str,
        pin: u8,
    },

    /// rppal could not open the GPIO or a pin; `hint` says what to check.
    #[error("cannot open {what}: {source}; {hint}")]
    Open {
        what: String,
        #[source]
        source: rppal::gpio::Error,
        hint: String,
    },
}

impl PinError {
    fn open(what: impl Into<String>, source: rppal::gpio::Error) -> PinError {
        PinError::Open {
            what: what.into(),
            hint: hint(&source),
            source,
        }
    }
}

/// What to check for an rppal error.
fn hint(e: &rppal::gpio::Error) -> String {
    use rppal::gpio::Error as E;
    match e {
        E::UnknownModel => "this is not a Raspberry Pi, or its model cannot be read from \
             /proc/device-tree; elsewhere use the simulated board"
            .into(),
        E::PermissionDenied(path) if path == "/dev/mem" => "rppal maps the GPIO registers \
             through /dev/gpiomem, which only the Raspberry Pi kernel has; its fallback \
             /dev/mem needs root and a kernel without CONFIG_IO_STRICT_DEVMEM"
            .into(),
        E::PermissionDenied(path) => format!(
            "the service user may not open {path}: add it to the `gpio` group, which owns \
             /dev/gpiomem and /dev/gpiochip* on Raspberry Pi OS, or run as root"
        ),
        E::PinUsed(p) => {
            format!("GPIO{p} is already taken in this process (is a board open twice?)")
        }
        E::PinNotAvailable(p) => format!("this Pi has no GPIO{p}"),
        E::Io(io) if io.kind() == std::io::ErrorKind::ResourceBusy => {
            "the pin is in use by another process or a kernel driver (an overlay in \
             config.txt such as gpio-shutdown, gpio-key or w1-gpio); `gpioinfo` shows who \
             holds it; choose other pins in [gpio]"
                .into()
        }
        _ => "check that this is a Raspberry Pi, that /dev/gpiomem (/dev/gpiomem0 on a Pi 5) \
             and /dev/gpiochip0 exist and the service may read and write them (a systemd \
             unit with PrivateDevices=yes hides them), and that no other process holds the pins"
            .into(),
    }
}

/// The Pi's LEDs and button, opened together; [`PiBoard::parts`] splits them
/// for a daemon that drives the LEDs and waits for the button on separate
/// threads. Dropping the LEDs turns both off; see the module documentation
/// for what a crash leaves.
#[derive(Debug)]
pub struct PiBoard {
    leds: PiLeds,
    button: PiButton,
}

/// The two LED pins. Dropping them turns both LEDs off.
#[derive(Debug)]
pub struct PiLeds {
    green: OutputPin,
    red: OutputPin,
}

/// The button pin, waited on in the kernel.
#[derive(Debug)]
pub struct PiButton {
    pin: InputPin,
    /// `CLOCK_MONOTONIC` when the board was opened: 0 ms on its clock.
    origin: Duration,
    /// The button as last reported (or read at open).
    pressed: bool,
    /// A failed wait was reported (once, not at every call).
    wait_failed: bool,
}

impl PiBoard {
    /// Opens the pins of `pins` (validated first): both LEDs off, the button
    /// with its pull-up and an edge interrupt.
    pub fn open(pins: PinMap) -> Result<PiBoard, PinError> {
        pins.validate()?;
        let origin = monotonic();
        let gpio = Gpio::new().map_err(|e| PinError::open("the Raspberry Pi's GPIO", e))?;
        let leds = PiLeds {
            green: output(&gpio, "green", pins.green)?,
            red: output(&gpio, "red", pins.red)?,
        };
        let pin = input(&gpio, pins.button)?;
        let button = PiButton {
            pressed: pin.is_low(),
            pin,
            origin,
            wait_failed: false,
        };
        Ok(PiBoard { leds, button })
    }

    /// The LEDs and the button as halves, each for its own thread. The
    /// button's wait holds no lock the LEDs need: rppal writes outputs
    /// straight to the GPIO registers.
    pub fn parts(self) -> Parts {
        Parts {
            kind: "pi",
            leds: Box::new(self.leds),
            button: Box::new(self.button),
        }
    }
}

impl PiButton {
    /// One wait in the kernel. Events that came between two calls are kept
    /// (`reset = false`): a press during an LED redraw is not lost.
    fn poll(&mut self, left: Duration) -> Option<Event> {
        match self.pin.poll_interrupt(false, Some(left)) {
            Ok(event) => event,
            Err(rppal::gpio::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => None,
            Err(e) => {
                self.wait_failed(e, left);
                None
            }
        }
    }

    /// Reports a failed wait once, and sleeps instead so the caller does not spin.
    fn wait_failed(&mut self, e: rppal::gpio::Error, left: Duration) {
        if !self.wait_failed {
            self.wait_failed = true;
            eprintln!("cairn: waiting for the button failed: {e}; {}", hint(&e));
        }
        std::thread::sleep(left);
    }
}

fn output(gpio: &Gpio, field: &str, pin: u8) -> Result<OutputPin, PinError> {
    let p = gpio
        .get(pin)
        .map_err(|e| PinError::open(format!("GPIO{pin} for the {field} LED"), e))?;
    Ok(p.into_output_low())
}

fn input(gpio: &Gpio, pin: u8) -> Result<InputPin, PinError> {
    let what = || format!("GPIO{pin} for the button");
    let mut p = gpio
        .get(pin)
        .map_err(|e| PinError::open(what(), e))?
        .into_input_pullup();
    p.set_interrupt(Trigger::Both, Some(DEBOUNCE))
        .map_err(|e| PinError::open(what(), e))?;
    Ok(p)
}

/// The edge an event is (falling = pressed, as the button pulls the line
/// low), unless it repeats the state last reported in `pressed`.
fn edge(pressed: &mut bool, event: Event, origin: Duration) -> Option<Edge> {
    let now_pressed = event.trigger == Trigger::FallingEdge;
    if now_pressed == *pressed {
        return None;
    }
    *pressed = now_pressed;
    Some(Edge {
        pressed: now_pressed,
        at_ms: ms_since(origin, event.timestamp),
    })
}

/// Milliseconds from `origin` to `t`, both `CLOCK_MONOTONIC` times.
fn ms_since(origin: Duration, t: Duration) -> u64 {
    t.saturating_sub(origin).as_millis() as u64
}

/// `CLOCK_MONOTONIC`: the clock the kernel stamps GPIO edges with.
fn monotonic() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Leds for PiLeds {
    fn set_leds(&mut self, green: bool, red: bool) {
        self.green.write(Level::from(green));
        self.red.write(Level::from(red));
    }
}

impl Drop for PiLeds {
    /// Both LEDs off: "Cairn is not running". rppal's own reset (on by
    /// default) then restores each pin's earlier mode; turning the LEDs off
    /// first matters when that mode was output, as after a crash.
    fn drop(&mut self) {
        self.green.set_low();
        self.red.set_low();
    }
}

impl Button for PiButton {
    /// Sleeps in the kernel until the button changes or `timeout` passes
    /// (at most an hour); the edge carries the kernel's timestamp.
    fn wait_button(&mut self, timeout: Duration) -> Option<Edge> {
        let deadline = Instant::now() + timeout.min(MAX_WAIT);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.poll(left)?;
            if let Some(edge) = edge(&mut self.pressed, event, self.origin) {
                return Some(edge);
            }
        }
    }

    fn now_ms(&self) -> u64 {
        ms_since(self.origin, monotonic())
    }
}

impl Board for PiBoard {
    fn kind(&self) -> &'static str {
        "pi"
    }

    fn set_leds(&mut self, green: bool, red: bool) {
        self.leds.set_leds(green, red)
    }

    fn wait_button(&mut self, timeout: Duration) -> Option<Edge> {
        self.button.wait_button(timeout)
    }

    fn now_ms(&self) -> u64 {
        self.button.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(green: u8, red: u8, button: u8) -> PinMap {
        PinMap { green, red, button }
    }

    #[test]
    fn the_default_pins_are_valid() {
        assert_eq!(PinMap::default(), map(17, 27, 22));
        PinMap::default().validate().unwrap();
        map(4, 5, 6).validate().unwrap();
        map(23, 24, 25).validate().unwrap();
    }

    #[test]
    fn pins_off_the_header_are_refused() {
        let e = map(17, 28, 22).validate().unwrap_err();
        assert!(matches!(
            e,
            PinError::OutOfRange {
                field: "red",
                pin: 28,
                ..
            }
        ));
        let msg = e.to_string();
        assert!(
            msg.contains("red = 28") && msg.contains("red = 27"),
            "{msg}"
        );
        assert!(msg.contains("not header pin numbers"), "{msg}");
    }

    #[test]
    fn bus_and_firmware_pins_are_refused() {
        for pin in [0, 1, 2, 3, 7, 8, 9, 10, 11, 14, 15] {
            let e = map(17, 27, pin).validate().unwrap_err();
            assert!(
                matches!(e, PinError::Reserved { field: "button", pin: p, .. } if p == pin),
                "GPIO{pin}: {e}"
            );
        }
        let msg = map(17, 27, 3).validate().unwrap_err().to_string();
        assert!(msg.contains("gpio-shutdown"), "{msg}");
        assert!(
            msg.contains("button = 3") && msg.contains("button = 22"),
            "{msg}"
        );
        let msg = map(9, 27, 22).validate().unwrap_err().to_string();
        assert!(msg.contains("SPI0") && msg.contains("green = 17"), "{msg}");
        let free = (0..=27).filter(|p| reserved(*p).is_none()).count();
        assert_eq!(free, 28 - 11);
    }

    #[test]
    fn a_pin_given_twice_is_refused() {
        let e = map(17, 17, 22).validate().unwrap_err();
        assert!(matches!(
            e,
            PinError::Duplicate {
                field: "green",
                other: "red",
                pin: 17
            }
        ));
        let msg = map(17, 27, 27).validate().unwrap_err().to_string();
        assert!(msg.contains("red and button are both GPIO27"), "{msg}");
    }

    #[test]
    fn the_gpio_table_reads_partially_and_refuses_unknown_keys() {
        #[derive(serde::Deserialize)]
        struct Config {
            gpio: PinMap,
        }
        let c: Config = toml::from_str("[gpio]\ngreen = 17\nred = 27\nbutton = 22\n").unwrap();
        assert_eq!(c.gpio, PinMap::default());
        let c: Config = toml::from_str("[gpio]\nbutton = 5\n").unwrap();
        assert_eq!(c.gpio, map(17, 27, 5));
        assert!(toml::from_str::<Config>("[gpio]\nblue = 5\n").is_err());
    }

    #[test]
    fn opening_fails_with_advice_off_a_pi() {
        let e = PiBoard::open(map(3, 27, 22)).unwrap_err();
        assert!(matches!(e, PinError::Reserved { .. }), "{e}");
        if super::super::board::pi_present(std::path::Path::new("/")) {
            return;
        }
        let msg = PiBoard::open(PinMap::default()).unwrap_err().to_string();
        assert!(
            msg.starts_with("cannot open the Raspberry Pi's GPIO: "),
            "{msg}"
        );
        assert!(msg.contains("Raspberry Pi"), "{msg}");
    }

    #[test]
    fn edges_are_timed_from_open_and_repeats_are_dropped() {
        let origin = monotonic();
        let at = |ms: u64, trigger| Event {
            timestamp: origin + Duration::from_millis(ms),
            seqno: 0,
            trigger,
        };
        let mut pressed = false;
        let down = edge(&mut pressed, at(120, Trigger::FallingEdge), origin);
        assert_eq!(
            down,
            Some(Edge {
                pressed: true,
                at_ms: 120
            })
        );
        assert_eq!(
            edge(&mut pressed, at(125, Trigger::FallingEdge), origin),
            None
        );
        let up = edge(&mut pressed, at(400, Trigger::RisingEdge), origin);
        assert_eq!(
            up,
            Some(Edge {
                pressed: false,
                at_ms: 400
            })
        );
        assert!(ms_since(origin, monotonic()) < 60_000);
        assert_eq!(ms_since(origin + Duration::from_secs(1), origin), 0);
    }
}
