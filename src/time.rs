//! Time as duplicity writes and reads it: archive-name time strings
//! (`20261125T073022Z`, the old w3 form, base-36 short names) and the TIME
//! arguments users type (`now`, epoch seconds, dates, intervals like `2W3D`).
//!
//! Ported from `duplicity/dup_time.py`; every accepted form there is accepted
//! here, with the same results, so cron lines keep meaning what they meant.

use chrono::{Datelike, Local, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use std::fmt;

/// Seconds since the Unix epoch, UTC. Whole seconds, as duplicity keeps them.
pub type Seconds = i64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error(
        "bad time string {0:?}: use an interval such as 2W3D (s m h D W M Y), a date such as \
         2026-11-25 or 11/25/2026, a w3 time such as 2026-11-25T07:30:22Z, \
         20261125T073022Z, epoch seconds, or \"now\""
    )]
    BadTime(String),
    #[error(
        "bad interval string {0:?}: intervals look like 2Y or 2h30m; the units are \
         s, m, h (seconds, minutes, hours) and D, W, M, Y (days, weeks, 30-day months, \
         365-day years), case-sensitive"
    )]
    BadInterval(String),
}

/// The name form: `YYYYMMDDTHHMMSSZ`, UTC (`dup_time.timetostring`).
pub fn to_string(t: Seconds) -> String {
    match Utc.timestamp_opt(t, 0).single() {
        Some(dt) => dt.format("%Y%m%dT%H%M%SZ").to_string(),
        None => format!("{t}"),
    }
}

/// `time.asctime(time.localtime(t))`, as duplicity prints times to people.
pub fn to_pretty(t: Seconds) -> String {
    match Local.timestamp_opt(t, 0).single() {
        Some(dt) => dt.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => format!("@{t}"),
    }
}

/// A [`Seconds`] shown in the archive-name form, for messages.
pub struct Display(pub Seconds);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_string(self.0))
    }
}

/// Parses a time string as found in file names (`dup_time.stringtotime`):
/// the 16-character UTC form, or the old w3 form with a zone designator.
pub fn from_string(s: &str) -> Option<Seconds> {
    from_string_sep(s, ':')
}

fn from_string_sep(s: &str, sep: char) -> Option<Seconds> {
    let head: String = s.chars().take(19).collect();
    let (date, daytime) = head.split_once('T')?;
    if daytime.contains('T') {
        return None;
    }
    let nums = |v: &str| -> Option<i64> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    };
    let (year, month, day, hour, minute, second);
    if s.chars().count() == 16 {
        if date.len() < 8 || daytime.len() < 6 || !date.is_ascii() || !daytime.is_ascii() {
            return None;
        }
        year = nums(&date[0..4])?;
        month = nums(&date[4..6])?;
        day = nums(&date[6..8])?;
        hour = nums(&daytime[0..2])?;
        minute = nums(&daytime[2..4])?;
        second = nums(&daytime[4..6])?;
    } else {
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = daytime.split(sep).collect();
        if d.len() != 3 || t.len() != 3 {
            return None;
        }
        year = nums(d[0])?;
        month = nums(d[1])?;
        day = nums(d[2])?;
        hour = nums(t[0])?;
        minute = nums(t[1])?;
        second = nums(t[2])?;
    }
    if !(1901..2100).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&hour)
        || !(0..=59).contains(&minute)
        || !(0..=61).contains(&second)
    {
        return None;
    }
    let utc = timegm(year, month, day, hour, minute, second)?;
    if s.chars().count() == 16 {
        return Some(utc);
    }
    let tzd: String = s.chars().skip(19).collect();
    Some(utc + tzd_to_seconds(&tzd, sep)?)
}

/// `calendar.timegm`, which normalises out-of-range days (Feb 31 → Mar 3).
fn timegm(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<Seconds> {
    let first = NaiveDate::from_ymd_opt(y as i32, mo as u32, 1)?;
    let days = first.and_hms_opt(0, 0, 0)?.and_utc().timestamp() / 86400 + (d - 1);
    Some(days * 86400 + h * 3600 + mi * 60 + s)
}

/// How far ahead UTC is of a w3 zone designator (`Z`, `+08:00`).
fn tzd_to_seconds(tzd: &str, sep: char) -> Option<Seconds> {
    if tzd == "Z" {
        return Some(0);
    }
    let b: Vec<char> = tzd.chars().collect();
    if b.len() != 6 || !(b[0] == '-' || b[0] == '+') || b[3] != sep {
        return None;
    }
    let hours: i64 = tzd[..3].parse().ok()?;
    let minutes: i64 = tzd[4..].parse().ok()?;
    let sign = if hours < 0 || tzd.starts_with('-') {
        -1
    } else {
        1
    };
    Some(-60 * (60 * hours + sign * minutes))
}

/// The local zone's standard (non-DST) offset as w3 text, `gettzd(0)`.
fn local_standard_tzd() -> String {
    let year = Local::now().year();
    let offsets = [1, 7].map(|m| {
        let naive = NaiveDate::from_ymd_opt(year, m, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap_or_default();
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|dt| dt.offset().fix().local_minus_utc())
            .unwrap_or(0)
    });
    let offset = offsets[0].min(offsets[1]) / 60;
    if offset == 0 {
        return "Z".to_string();
    }
    let prefix = if offset > 0 { '+' } else { '-' };
    let a = offset.abs();
    format!("{prefix}{:02}:{:02}", a / 60, a % 60)
}

/// Parses an interval such as `2h30m` to seconds (`intstringtoseconds`).
pub fn interval_to_seconds(s: &str) -> Result<Seconds, TimeError> {
    let err = || TimeError::BadInterval(s.to_string());
    if s.len() < 2 {
        return Err(err());
    }
    let mut rest = s;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits >= rest.len() {
            return Err(err());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| err())?;
        let unit = match rest.as_bytes()[digits] {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'D' => 86400,
            b'W' => 7 * 86400,
            b'M' => 30 * 86400,
            b'Y' => 365 * 86400,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

/// Parses a user TIME argument relative to `now` (`dup_time.genstrtotime`).
pub fn parse_user_time(s: &str, now: Seconds) -> Result<Seconds, TimeError> {
    if s == "now" {
        return Ok(now);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| TimeError::BadTime(s.to_string()));
    }
    if let Some(t) = from_string(s).or_else(|| from_string(&format!("{s}{}", local_standard_tzd())))
    {
        // duplicity treats a parsed time of 0 as "not parsed"; keep that quirk out:
        // the epoch itself is a legal, if odd, answer.
        return Ok(t);
    }
    if let Ok(secs) = interval_to_seconds(s) {
        return Ok(now - secs);
    }
    if let Some((y, m, d)) = parse_date(s) {
        let text = format!("{y}-{m:02}-{d:02}T00:00:00{}", local_standard_tzd());
        if let Some(t) = from_string(&text) {
            return Ok(t);
        }
    }
    Err(TimeError::BadTime(s.to_string()))
}

/// `YYYY/MM/DD`, `YYYY-MM-DD`, `MM/DD/YYYY`, `MM-DD-YYYY`, `YYYYMMDDZ`.
fn parse_date(s: &str) -> Option<(i64, i64, i64)> {
    let digits = |v: &str, lo: usize, hi: usize| -> Option<i64> {
        (v.len() >= lo && v.len() <= hi && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse().ok())
            .flatten()
    };
    if let Some(body) = s.strip_suffix('Z') {
        if body.len() == 8 && body.bytes().all(|b| b.is_ascii_digit()) {
            return Some((
                body[0..4].parse().ok()?,
                body[4..6].parse().ok()?,
                body[6..8].parse().ok()?,
            ));
        }
        return None;
    }
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    if parts.len() != 3 {
        return None;
    }
    if let (Some(y), Some(m), Some(d)) = (
        digits(parts[0], 4, 4),
        digits(parts[1], 1, 2),
        digits(parts[2], 1, 2),
    ) {
        return Some((y, m, d));
    }
    if let (Some(m), Some(d), Some(y)) = (
        digits(parts[0], 1, 2),
        digits(parts[1], 1, 2),
        digits(parts[2], 4, 4),
    ) {
        return Some((y, m, d));
    }
    None
}

/// Parses a time embedded in an archive file name (`file_naming.str2time`).
pub fn from_name_part(s: &str, short: bool, now: Seconds) -> Option<Seconds> {
    if short {
        return from_base36(s);
    }
    parse_user_time(&s.to_uppercase(), now)
        .ok()
        .filter(|&t| t != 0)
}

/// Base-36 (`0-9a-z`), as short file names spell times and volume numbers.
pub fn to_base36(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        let d = (n % 36) as u8;
        out.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

pub fn from_base36(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        total = total.checked_mul(36)?.checked_add(i64::from(d))?;
    }
    Some(total)
}

/// The current time in whole seconds.
pub fn now() -> Seconds {
    Utc::now().timestamp()
}

/// Local calendar fields of a time, for messages that need them.
pub fn local_naive(t: Seconds) -> Option<NaiveDateTime> {
    Local.timestamp_opt(t, 0).single().map(|d| {
        d.naive_local()
            .with_nanosecond(0)
            .unwrap_or_else(|| d.naive_local())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Seconds = 1_795_591_822; // 20261125T073022Z

    #[test]
    fn name_form_round_trips() {
        assert_eq!(to_string(NOW), "20261125T073022Z");
        assert_eq!(from_string("20261125T073022Z"), Some(NOW));
        assert_eq!(from_string("2026-11-25T07:30:22Z"), Some(NOW));
        assert_eq!(from_string("2026-11-25T09:30:22+02:00"), Some(NOW));
        assert_eq!(from_string("2026-11-25T02:00:22-05:30"), Some(NOW));
        assert_eq!(from_string("20261325T073022Z"), None);
        assert_eq!(from_string("garbage"), None);
    }

    #[test]
    fn user_times() {
        assert_eq!(parse_user_time("now", NOW), Ok(NOW));
        assert_eq!(parse_user_time("123", NOW), Ok(123));
        assert_eq!(parse_user_time("20261125T073022Z", NOW), Ok(NOW));
        assert_eq!(parse_user_time("2M", NOW), Ok(NOW - 60 * 86400));
        assert_eq!(parse_user_time("1W", NOW), Ok(NOW - 7 * 86400));
        assert_eq!(
            parse_user_time("2W3D", NOW),
            Ok(NOW - 14 * 86400 - 3 * 86400)
        );
        assert_eq!(parse_user_time("1h30m", NOW), Ok(NOW - 5400));
        assert!(
            parse_user_time("3d", NOW).is_err(),
            "units are case-sensitive"
        );
        assert!(parse_user_time("yesterday", NOW).is_err());
    }

    #[test]
    fn dates_are_local_midnight() {
        let tzd = local_standard_tzd();
        let expect = from_string(&format!("2026-11-25T00:00:00{tzd}")).unwrap();
        for s in [
            "2026-11-25",
            "2026/11/25",
            "11/25/2026",
            "11-25-2026",
            "20261125Z",
        ] {
            assert_eq!(parse_user_time(s, NOW), Ok(expect), "{s}");
        }
    }

    #[test]
    fn base36() {
        assert_eq!(to_base36(0), "0");
        assert_eq!(to_base36(35), "z");
        assert_eq!(to_base36(36), "10");
        assert_eq!(from_base36(&to_base36(NOW as u64)), Some(NOW));
        assert_eq!(from_base36("A"), None);
    }

    #[test]
    fn interval_errors() {
        assert!(interval_to_seconds("5").is_err());
        assert!(interval_to_seconds("5x").is_err());
        assert!(interval_to_seconds("5D3").is_err());
        assert_eq!(interval_to_seconds("5D3s"), Ok(5 * 86400 + 3));
    }
}
