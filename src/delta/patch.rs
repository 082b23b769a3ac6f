//! Applying a librsync delta as a stream: commands are read from the delta as
//! they come, literals are copied through, and copies are served from the
//! basis file by positioned reads. Neither the delta nor the basis is ever
//! held in memory, and the output is capped, because a delta from an archive
//! is untrusted input: a few bytes of COPY commands could otherwise expand
//! into terabytes.

use super::command::{Command, CommandReader};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("corrupt rsync delta: {0}")]
    Corrupt(String),
    #[error(
        "rsync delta copies {len} bytes at offset {offset}, beyond the end of the \
         {basis_len}-byte previous version: the delta does not belong to this file"
    )]
    OutOfRange {
        offset: u64,
        len: u64,
        basis_len: u64,
    },
    #[error("rsync delta would produce more than {0} bytes; refusing to continue")]
    TooLarge(u64),
    #[error("I/O error while applying rsync delta: {0}")]
    Io(#[from] io::Error),
}

const BUF: usize = 256 * 1024;

/// Applies `delta` to `basis`, writing the new version to `out`; returns the
/// number of bytes written. Fails if the result would exceed `limit` bytes.
pub fn apply(
    basis: &File,
    delta: impl Read,
    mut out: impl Write,
    limit: u64,
) -> Result<u64, PatchError> {
    let basis_len = basis.metadata()?.len();
    let mut cmds = CommandReader::new(delta);
    let mut written: u64 = 0;
    let mut buf = vec![0u8; BUF];
    let corrupt = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            PatchError::Corrupt("delta ends before its END command".into())
        }
        io::ErrorKind::InvalidData => PatchError::Corrupt(e.to_string()),
        _ => PatchError::Io(e),
    };
    loop {
        let cmd = cmds.next_command().map_err(corrupt)?;
        let len = match cmd {
            Command::End => break,
            Command::Literal(n) | Command::Copy { len: n, .. } => n,
        };
        if written.checked_add(len).is_none_or(|t| t > limit) {
            return Err(PatchError::TooLarge(limit));
        }
        match cmd {
            Command::Literal(n) => {
                let copied = io::copy(&mut cmds.inner().take(n), &mut out)?;
                if copied != n {
                    return Err(PatchError::Corrupt(
                        "literal runs past the end of the delta".into(),
                    ));
                }
            }
            Command::Copy { offset, len } => {
                if offset.checked_add(len).is_none_or(|e| e > basis_len) {
                    return Err(PatchError::OutOfRange {
                        offset,
                        len,
                        basis_len,
                    });
                }
                let mut at = offset;
                let end = offset + len;
                while at < end {
                    let n = ((end - at) as usize).min(BUF);
                    basis.read_exact_at(&mut buf[..n], at).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            PatchError::OutOfRange {
                                offset,
                                len,
                                basis_len,
                            }
                        } else {
                            PatchError::Io(e)
                        }
                    })?;
                    out.write_all(&buf[..n])?;
                    at += n as u64;
                }
            }
            Command::End => unreachable!(),
        }
        written += len;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::DeltaEncoder;

    fn basis(data: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, data).unwrap();
        let f = File::open(&p).unwrap();
        (dir, f)
    }

    fn delta(build: impl FnOnce(&mut DeltaEncoder<Vec<u8>>)) -> Vec<u8> {
        let mut e = DeltaEncoder::new(Vec::new());
        build(&mut e);
        e.finish().unwrap()
    }

    #[test]
    fn applies_copies_and_literals() {
        let (_d, b) = basis(b"hello world\n");
        let d = delta(|e| {
            e.copy(6, 5).unwrap();
            e.literal(b", ").unwrap();
            e.copy(0, 5).unwrap();
        });
        let mut out = Vec::new();
        assert_eq!(apply(&b, &d[..], &mut out, 100).unwrap(), 12);
        assert_eq!(out, b"world, hello");
    }

    #[test]
    fn hostile_deltas_are_refused() {
        let (_d, b) = basis(b"0123456789");
        let past_end = delta(|e| e.copy(5, 6).unwrap());
        assert!(matches!(
            apply(&b, &past_end[..], io::sink(), 100),
            Err(PatchError::OutOfRange { .. })
        ));
        let bomb = delta(|e| {
            for _ in 0..1000 {
                e.copy(0, 10).unwrap();
                e.literal(b"x").unwrap();
            }
        });
        assert!(matches!(
            apply(&b, &bomb[..], io::sink(), 5000),
            Err(PatchError::TooLarge(5000))
        ));
        let truncated = &delta(|e| e.literal(b"abcdef").unwrap())[..7];
        assert!(matches!(
            apply(&b, truncated, io::sink(), 100),
            Err(PatchError::Corrupt(_))
        ));
        let no_end = &delta(|e| e.copy(0, 3).unwrap());
        assert!(matches!(
            apply(&b, &no_end[..no_end.len() - 1], io::sink(), 100),
            Err(PatchError::Corrupt(_))
        ));
    }
}
