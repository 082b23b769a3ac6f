//! duplicity's machine-readable log (`--log-file FILE`, `--log-fd N`), in
//! the format of duplicity's `log.py` `MachineFormatter`, which front-ends
//! such as Déjà Dup parse:
//!
//! ```text
//! LEVEL CODE[ EXTRA]
//! . first line of the message
//! . next line
//!
//! ```
//!
//! Levels and codes are duplicity's (`log.InfoCode`, `WarningCode`,
//! `ErrorCode`); a record below the verbosity is not written, unless it is
//! one duplicity writes regardless (the statistics, collection-status).

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

/// duplicity's verbosity levels.
pub const ERROR: u8 = 0;
pub const WARNING: u8 = 2;
pub const NOTICE: u8 = 3;
pub const INFO: u8 = 5;

/// `log.InfoCode`.
pub mod info {
    pub const GENERIC: u32 = 1;
    pub const PROGRESS: u32 = 2;
    pub const COLLECTION_STATUS: u32 = 3;
    pub const FILE_LIST: u32 = 10;
}

/// `log.WarningCode`.
pub mod warning {
    pub const GENERIC: u32 = 1;
    pub const CANNOT_READ: u32 = 10;
}

struct Sink {
    outs: Vec<Box<dyn Write + Send>>,
    verbosity: u8,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "cannot open the log file {path}: {source}; check that its directory exists and is writable"
    )]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--log-fd wants a file descriptor number, not {0:?}")]
    FdNumber(String),
    #[error(
        "--log-fd {0}: that file descriptor is not open for writing; open it in the calling process (e.g. `3>log`) or drop the option"
    )]
    FdNotWritable(i32),
}

/// duplicity's `LevelName`.
fn level_name(level: u8) -> &'static str {
    match level {
        9.. => "DEBUG",
        5..=8 => "INFO",
        3..=4 => "NOTICE",
        1..=2 => "WARNING",
        0 => "ERROR",
    }
}

/// One record, exactly as `MachineFormatter` lays it out (blank line after).
pub fn format_record(level: u8, code: u32, extra: Option<&str>, msg: &str) -> String {
    let mut s = format!("{} {code}", level_name(level));
    if let Some(x) = extra.filter(|x| !x.is_empty()) {
        s.push(' ');
        s.push_str(x);
    }
    if !msg.is_empty() {
        s.push_str(&format!("\n{msg}").replace('\n', "\n. "));
    }
    s.push_str("\n\n");
    s
}

/// Opens every `--log-file` (appended to, as duplicity's `FileHandler`)
/// and `--log-fd`. Records below `verbosity` are not written.
pub fn open(files: &[String], fds: &[String], verbosity: u8) -> Result<(), LogError> {
    let mut outs: Vec<Box<dyn Write + Send>> = Vec::new();
    for path in files {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LogError::File {
                path: path.clone(),
                source,
            })?;
        outs.push(Box::new(f));
    }
    for fd in fds {
        outs.push(Box::new(open_fd(fd)?));
    }
    if !outs.is_empty() {
        *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink { outs, verbosity });
    }
    Ok(())
}

/// The file behind an inherited descriptor, checked to be open for writing.
fn open_fd(text: &str) -> Result<File, LogError> {
    use std::os::fd::FromRawFd;
    let fd: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| LogError::FdNumber(text.to_string()))?;
    // SAFETY: F_GETFL only reads the descriptor's flags; an unknown
    // descriptor gives -1 (EBADF).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(LogError::FdNotWritable(fd));
    }
    // SAFETY: the descriptor is open, was given to us for this log, and is
    // owned by the log from here on (duplicity's `os.fdopen` does the same).
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Whether a machine log is being written.
pub fn is_open() -> bool {
    SINK.lock().map(|s| s.is_some()).unwrap_or(false)
}

fn write(level: u8, code: u32, extra: Option<&str>, msg: &str, force: bool) {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sink) = guard.as_mut() else {
        return;
    };
    if level > sink.verbosity && !force {
        return;
    }
    let rec = format_record(level, code, extra, msg);
    for out in &mut sink.outs {
        // A log that cannot be written must not stop the backup.
        let _ = out.write_all(rec.as_bytes()).and_then(|()| out.flush());
    }
}

/// A record, written when the verbosity allows it.
pub fn log(level: u8, code: u32, extra: Option<&str>, msg: &str) {
    write(level, code, extra, msg, false);
}

/// A record duplicity writes at any verbosity (`force_print`).
pub fn always(level: u8, code: u32, extra: Option<&str>, msg: &str) {
    write(level, code, extra, msg, true);
}

pub fn notice(msg: &str) {
    log(NOTICE, info::GENERIC, None, msg);
}

/// A fatal error, with duplicity's code and, where duplicity names one,
/// its exception class as the extra and message prefix.
pub fn error(code: i32, class: Option<&str>, msg: &str) {
    let code = u32::try_from(code).unwrap_or(1);
    match class {
        Some(c) => log(ERROR, code, Some(c), &format!("{c}: {msg}")),
        None => log(ERROR, code, None, msg),
    }
}

/// duplicity's `util.escape`: a path as Python's `unicode-escape` writes
/// it (undecodable bytes as the `\udcNN` surrogates `os.fsdecode` makes),
/// quoted, with `'` as `\x27`.
pub fn escape(path: &[u8]) -> String {
    let mut s = String::from("'");
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut s, c);
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\udc{b:02x}"));
        }
    }
    s.push('\'');
    s
}

fn push_escaped(s: &mut String, c: char) {
    let n = u32::from(c);
    match c {
        '\\' => s.push_str("\\\\"),
        '\t' => s.push_str("\\t"),
        '\n' => s.push_str("\\n"),
        '\r' => s.push_str("\\r"),
        '\'' => s.push_str("\\x27"),
        ' '..='~' => s.push(c),
        _ if n < 0x100 => s.push_str(&format!("\\x{n:02x}")),
        _ if n < 0x10000 => s.push_str(&format!("\\u{n:04x}")),
        _ => s.push_str(&format!("\\U{n:08x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_laid_out_as_machine_formatter_does() {
        assert_eq!(
            format_record(NOTICE, 1, None, "Last full backup date: none"),
            "NOTICE 1\n. Last full backup date: none\n\n"
        );
        assert_eq!(
            format_record(INFO, 2, Some("8200"), "Processed volume 1"),
            "INFO 2 8200\n. Processed volume 1\n\n"
        );
        assert_eq!(
            format_record(ERROR, 23, Some("CommandLineError"), "a\nb"),
            "ERROR 23 CommandLineError\n. a\n. b\n\n"
        );
        assert_eq!(format_record(9, 1, None, ""), "DEBUG 1\n\n");
        assert_eq!(format_record(WARNING, 10, None, "x"), "WARNING 10\n. x\n\n");
    }

    /// As `util.escape` in duplicity 3.2.1 gives them.
    #[test]
    fn paths_are_escaped_as_python_does() {
        assert_eq!(escape(b"sub/b"), "'sub/b'");
        assert_eq!(escape("it's".as_bytes()), "'it\\x27s'");
        assert_eq!(escape("при\t".as_bytes()), "'\\u043f\\u0440\\u0438\\t'");
        assert_eq!(escape(b"a\xffb\\"), "'a\\udcffb\\\\'");
        assert_eq!(escape("é😀".as_bytes()), "'\\xe9\\U0001f600'");
    }
}
